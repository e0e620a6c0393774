//! The node's own MySQL database at start-up: created and migrated if
//! needed, locked to this node for the life of the process, and asked how
//! far it has applied the log.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Pool};

use super::ServeError;
use crate::config::{redact, Settings};
use crate::db::{self, migrate, rebuild::NodeLock, AppliedState};

/// The database, ready for the node.
pub struct Database {
    /// Read connections for the api and the hub; the applier has its own.
    pub pool: Pool,
    /// Where MySQL stands: the log is replayed from the entry after this.
    pub applied: AppliedState,
    /// Holds the node lock; outside the pool, so nothing else releases it.
    lock: Conn,
}

impl Database {
    /// Migrates (with the migration account if one is configured: the
    /// node's own needs no DDL rights) only when the schema lacks a
    /// migration, reads the applied index, and takes the node lock; a
    /// second node on the same database is refused.
    pub async fn open(settings: &Settings) -> Result<Database, ServeError> {
        if let Some(url) = &settings.mysql_migrate_url {
            migrate_with(url).await?;
        }
        let pool = db::connect(&settings.mysql_url, 32).await?;
        let mut conn = pool.get_conn().await?;
        if migrate::pending(&mut conn).await? > 0 {
            migrate::run(&mut conn).await?;
        }
        let applied = db::applied_state(&mut conn).await?;
        drop(conn);
        let mut lock =
            Conn::new(Opts::from_url(&settings.mysql_url).map_err(db::DbError::from)?).await?;
        if !NodeLock::acquire(&mut lock).await? {
            return Err(ServeError::DatabaseInUse {
                url: redact(&settings.mysql_url),
            });
        }
        Ok(Database {
            pool,
            applied,
            lock,
        })
    }

    /// Releases the node lock and the connections, at the very end.
    pub async fn close(mut self) {
        let _ = NodeLock::release(&mut self.lock).await;
        let _ = self.lock.disconnect().await;
        self.pool.disconnect().await.ok();
    }
}

/// Creates the database in `url` if missing and applies the migrations it lacks.
pub async fn migrate_with(url: &str) -> Result<usize, ServeError> {
    let pool = db::connect(url, 1).await?;
    let mut conn = pool.get_conn().await?;
    let applied = if migrate::pending(&mut conn).await? > 0 {
        migrate::run(&mut conn).await?
    } else {
        0
    };
    conn.query_drop("SELECT 1").await?;
    drop(conn);
    pool.disconnect().await?;
    Ok(applied)
}
