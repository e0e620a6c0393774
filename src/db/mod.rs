//! MySQL: each node's own database, holding the event log and projection.
//!
//! - [`connect`] creates the node's database if it is missing and opens a
//!   pool on it;
//! - [`migrate`] applies the `sql/` migrations, in order, once each;
//! - [`rows`] converts between rows and domain values;
//! - [`queries`] holds the reads the api serves (the applier owns the writes);
//! - [`rebuild`] folds the event table into the projection, or checks it;
//! - [`catchup`] reads a page of committed rows for a peer catching up.

pub mod catchup;
pub mod migrate;
pub mod queries;
pub mod rebuild;
pub mod rows;
pub mod sql;

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::config::{redact, valid_database_name};
use crate::task::{ColumnTails, Status};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("MySQL URL: {0}")]
    Url(String),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
    #[error("schema: {0}")]
    Schema(String),
}

impl From<mysql_async::UrlError> for DbError {
    fn from(e: mysql_async::UrlError) -> Self {
        DbError::Url(e.to_string())
    }
}

/// Every connection runs in strict mode (a value that does not fit is an
/// error, never silently truncated) and with backslash escapes, which the
/// applier's SQL text relies on ([`sql`]).
pub const SESSION_INIT: &str = "SET SESSION sql_mode = \
    'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'";

/// Creates the database named in `url` if needed and opens a pool of up to
/// `max_connections` on it.
pub async fn connect(url: &str, max_connections: usize) -> Result<Pool, DbError> {
    let opts = Opts::from_url(url)?;
    let name = opts
        .db_name()
        .filter(|name| valid_database_name(name))
        .ok_or_else(|| DbError::Url(format!("{} names no usable database", redact(url))))?
        .to_string();
    create_database(&opts, &name).await?;
    let max = max_connections.max(1);
    let constraints = PoolConstraints::new(1, max).expect("1 <= max");
    let opts = OptsBuilder::from_opts(opts)
        .init(vec![SESSION_INIT])
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                // Without an idle TTL the pool keeps only `min` idle
                // connections and closes every other one on return: a new
                // connection per request. Keep up to `max`, shrink when idle.
                .with_inactive_connection_ttl(Duration::from_secs(60))
                .with_reset_connection(false),
        )
        .stmt_cache_size(64);
    Ok(Pool::new(opts))
}

async fn create_database(opts: &Opts, name: &str) -> Result<(), DbError> {
    let server = OptsBuilder::from_opts(opts.clone()).db_name(None::<String>);
    let mut conn = mysql_async::Conn::new(server).await?;
    // `name` is checked against [A-Za-z0-9_$]{1,64}: safe to quote as is.
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .await?;
    conn.disconnect().await?;
    Ok(())
}

/// Where the applier stands, as committed in MySQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedState {
    pub applied_index: u64,
    pub applied_term: u64,
    pub last_seq: u64,
}

pub async fn applied_state(conn: &mut impl Queryable) -> Result<AppliedState, DbError> {
    let row: Option<(u64, u64, u64)> = conn
        .query_first("SELECT applied_index, applied_term, last_seq FROM raft_applied WHERE id = 1")
        .await?;
    let (applied_index, applied_term, last_seq) = row
        .ok_or_else(|| DbError::Schema("raft_applied has no row; run `taskraft migrate`".into()))?;
    Ok(AppliedState {
        applied_index,
        applied_term,
        last_seq,
    })
}

/// Where new cards go in each column, as `board_columns` holds it.
pub async fn column_tails(conn: &mut impl Queryable) -> Result<ColumnTails, DbError> {
    let rows: Vec<(String, f64)> = conn
        .query("SELECT status, tail_position FROM board_columns")
        .await?;
    let mut tails = ColumnTails::default();
    for (status, tail) in rows {
        let status: Status = status
            .parse()
            .map_err(|_| DbError::Corrupt(format!("board_columns.status `{status}`")))?;
        tails.0[status.rank()] = tail;
    }
    Ok(tails)
}
