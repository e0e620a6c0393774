//! Auto-archive: a column may archive its cards once they have gone
//! `archive_after_days` days without a change (`Column::archive_after_days`,
//! as Trello's and Planka's automations do for "Done").
//!
//! Every `auto_archive_interval` the leader reads, in its own database, the
//! cards of each such column last changed before now (its clock) minus the
//! days, a bounded batch per column, and proposes for each the command a
//! user's archive would be: `archived: true`, conditional on the version it
//! read (`If-Match`), by the actor `auto-archive`. So it is an entry of the
//! log like any other (every node applies it, the card's history says who
//! archived it, and it can be restored), and a card changed after it was
//! read (a stale read of a lagging applier, an edit racing the sweep) is
//! refused as a conflict and looked at again at the next sweep, with its new
//! time. A follower proposes nothing; a leader whose cluster does not yet
//! run a version with boards is refused by the version gate and tries again
//! next time.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Pool;

use crate::accounts::Actor;
use crate::projection::ProjectionCache;
use crate::raft::{ConsensusError, RaftHandle};
use crate::task::{ColumnId, Command, Op, Outcome, TaskId, TaskPatch};
use crate::time::Timestamp;

/// `auto_archive_interval` unless configured.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Cards of one column archived per sweep at most: a column holding years
/// of stale cards is emptied over several sweeps, never in one burst.
pub const BATCH: usize = 500;

const DAY_MS: i64 = 86_400_000;

/// Who archives: named in each card's history.
pub fn actor() -> Actor {
    Actor {
        id: "auto-archive".into(),
        name: "auto-archive".into(),
    }
}

/// The cut-off of a column archiving after `days`: cards last changed
/// before it are due.
pub fn cutoff(now: Timestamp, days: u32) -> Timestamp {
    Timestamp(now.millis() - i64::from(days) * DAY_MS)
}

/// The command archiving the card `id`, if it is still at `version`.
pub fn archive(id: TaskId, version: u64, now: Timestamp) -> Command {
    Command {
        request_id: crate::task::new_request_id(),
        idempotency: None,
        at: now,
        actor: actor(),
        op: Op::Update {
            id,
            expected_version: Some(version),
            patch: TaskPatch {
                archived: Some(true),
                ..TaskPatch::default()
            },
        },
    }
}

/// The live cards of `column` last changed before `before` (id, version),
/// oldest change first, at most [`BATCH`]. Reads `tasks_column`'s range of
/// the column: the column's own rows, whatever the table holds.
async fn due(
    pool: &Pool,
    column: ColumnId,
    before: Timestamp,
) -> Result<Vec<(String, u64)>, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.exec(
        "SELECT id, version FROM tasks FORCE INDEX (tasks_column) \
         WHERE column_id = ? AND archived = 0 AND updated_at < ? \
         ORDER BY updated_at, id LIMIT ?",
        (column.to_string(), before.to_sql(), BATCH as u64),
    )
    .await
}

/// One sweep at `now`: every auto-archiving column's due cards proposed.
/// Returns how many were archived.
pub async fn sweep(
    raft: &RaftHandle,
    pool: &Pool,
    rows: &ProjectionCache,
    now: Timestamp,
) -> usize {
    let catalog = rows.catalog();
    let columns: Vec<(ColumnId, u32)> = catalog
        .boards()
        .filter(|b| !b.archived)
        .flat_map(|b| catalog.columns_of(&b.id))
        .filter_map(|c| c.archive_after_days.map(|days| (c.id, days)))
        .collect();
    let mut archived = 0;
    for (column, days) in columns {
        let cards = match due(pool, column, cutoff(now, days)).await {
            Ok(cards) => cards,
            Err(e) => {
                tracing::warn!(error = %e, %column, "auto-archive: could not read the column");
                continue;
            }
        };
        for (id, version) in cards {
            let Ok(id) = id.parse::<TaskId>() else {
                continue;
            };
            match raft.propose(archive(id, version, now)).await {
                Ok(applied) if matches!(applied.outcome, Outcome::Updated { .. }) => archived += 1,
                // Changed or gone since it was read: next sweep.
                Ok(_) => {}
                Err(ConsensusError::ClusterTooOld(e)) => {
                    tracing::info!(%e, "auto-archive waits for every voter to run boards");
                    return archived;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "auto-archive stopped for this sweep");
                    return archived;
                }
            }
        }
    }
    archived
}

/// Runs for the node's life: a sweep every `every` while this node leads.
pub async fn run(raft: RaftHandle, pool: Pool, rows: ProjectionCache, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let status = raft.status();
        if status.removed || status.leader_id != status.node_id {
            continue;
        }
        let archived = sweep(&raft, &pool, &rows, Timestamp::now()).await;
        if archived > 0 {
            tracing::info!(
                archived,
                "auto-archive: cards unchanged for their column's days archived"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_archives_what_is_older_than_its_days_conditionally() {
        let now = Timestamp(100 * DAY_MS + 5);
        assert_eq!(cutoff(now, 30), Timestamp(70 * DAY_MS + 5));
        let id = TaskId::generate();
        let command = archive(id, 7, now);
        assert_eq!(command.actor.id, "auto-archive");
        assert!(!command.actor.is_system(), "its name reaches the log");
        let Op::Update {
            id: target,
            expected_version,
            patch,
        } = command.op
        else {
            panic!("an update");
        };
        assert_eq!((target, expected_version), (id, Some(7)));
        assert_eq!(
            patch,
            TaskPatch {
                archived: Some(true),
                ..TaskPatch::default()
            }
        );
    }
}
