//! `taskraft recover --force-new-cluster`: run on a stopped surviving node,
//! with the settings it serves with, when its cluster lost a majority for
//! good. The node becomes the only voter of its cluster, keeping every row
//! its MySQL applied and every entry of its log (see
//! `raft::storage::recover` for which entries and why); on its next
//! `serve` it elects itself, and new nodes join it with empty data.
//!
//! It refuses, changing nothing, while the node runs (the node lock on its
//! database, raft-engine's lock on its data_dir), when the data_dir holds
//! no log of this node, and when MySQL applied more than the log holds.

use mysql_async::{Conn, Opts};

use crate::config::{redact, Settings};
use crate::db::{self, rebuild::NodeLock};
use crate::raft::membership::MemberAddr;
use crate::raft::{LogError, LogStore};
use crate::raft::{RecoverError, Recovery};

#[derive(Debug, thiserror::Error)]
pub enum RecoverCmdError {
    #[error(
        "a taskraft node is running on the database in {url} (it holds the node lock): \
         stop it first"
    )]
    Running { url: String },
    #[error(
        "the data_dir {dir} does not exist or is empty: there is nothing to recover \
         (run recover with the same settings as `serve`)"
    )]
    NoData { dir: String },
    #[error(
        "cannot open the Raft log in {dir}: {cause} (if the node is still running, stop it first)"
    )]
    Open { dir: String, cause: LogError },
    #[error("{0}")]
    Db(#[from] db::DbError),
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("{0}")]
    Log(#[from] LogError),
    #[error("{0}")]
    Refused(#[from] RecoverError),
}

/// Rewrites the node's Raft state as the only voter of its cluster.
pub async fn force_new_cluster(settings: &Settings) -> Result<Recovery, RecoverCmdError> {
    let dir = settings.data_dir.display().to_string();
    let empty = std::fs::read_dir(&settings.data_dir)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(true);
    if empty {
        return Err(RecoverCmdError::NoData { dir });
    }
    let url = redact(&settings.mysql_url);
    let mut lock =
        Conn::new(Opts::from_url(&settings.mysql_url).map_err(db::DbError::from)?).await?;
    if !NodeLock::acquire(&mut lock).await? {
        let _ = lock.disconnect().await;
        return Err(RecoverCmdError::Running { url });
    }
    let result = rewrite(settings, &mut lock, dir).await;
    let _ = NodeLock::release(&mut lock).await;
    let _ = lock.disconnect().await;
    result
}

async fn rewrite(
    settings: &Settings,
    conn: &mut Conn,
    dir: String,
) -> Result<Recovery, RecoverCmdError> {
    let applied = db::applied_state(conn).await?;
    let store =
        LogStore::open(&settings.data_dir).map_err(|cause| RecoverCmdError::Open { dir, cause })?;
    // The same check `serve` makes: rows the log never held mean this
    // data_dir and this database are not one node's.
    store.recover_commit(applied.applied_index)?;
    let own = MemberAddr {
        raft_addr: settings.raft_advertise_addr.clone(),
        url: Some(settings.advertise_url.clone()),
    };
    let recovery = store.force_new_cluster(
        settings.node_id,
        own,
        crate::time::Timestamp::now().to_string(),
    )?;
    tracing::warn!(
        ?recovery,
        applied = applied.applied_index,
        "recovered with --force-new-cluster: this node is now the only voter of its cluster"
    );
    Ok(recovery)
}
