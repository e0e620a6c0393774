//! Reading the filters of [`super::ApplyState`] from MySQL, and what a
//! filter's "perhaps" needs asked.

use std::collections::HashSet;

use mysql_async::prelude::*;
use mysql_async::{Conn, Value};

use super::filter::{hash_id, hash_key, Filter};
use crate::db::DbError;
use crate::task::TaskId;

/// The filters of every task id ever used (those with events: every task
/// has its creation's, and events are never deleted) and of every
/// idempotency key held. Each is sized from InnoDB's estimate of its
/// table's rows (twice that, as [`Filter::of`]; an estimate short of the
/// truth only adds a layer) and filled as the rows stream in, so reading
/// millions of them takes no memory beyond the filters' bits (a `Vec` of
/// their hashes took 80 MB at 5 M events, and the allocator kept it).
pub async fn load_filters(conn: &mut Conn) -> Result<(Filter, Filter), DbError> {
    let estimate = |table: &'static str| {
        format!(
            "SELECT COALESCE(MAX(TABLE_ROWS), 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
        )
    };
    let tasks: Option<u64> = conn.query_first(estimate("tasks")).await?;
    // The index (task_id, seq) answers this alone, one row per task; events
    // about no task (a user's, a member's) have none.
    let (ids, bad) = conn
        .query_fold(
            "SELECT DISTINCT task_id FROM task_events WHERE task_id IS NOT NULL",
            (room(tasks), None),
            |(mut ids, mut bad): (Filter, Option<String>), id: String| {
                match id.parse::<TaskId>() {
                    Ok(id) => ids.insert(hash_id(&id)),
                    Err(_) => bad = bad.or(Some(id)),
                }
                (ids, bad)
            },
        )
        .await?;
    if let Some(id) = bad {
        return Err(DbError::Corrupt(format!("task id `{id}`")));
    }
    let keys: Option<u64> = conn.query_first(estimate("idempotency_keys")).await?;
    // A secondary index holds the primary key too: reading the keys from
    // the one on raft_index leaves the outcomes (most of each row) unread.
    let keys = conn
        .query_fold(
            "SELECT idem_key FROM idempotency_keys FORCE INDEX (idempotency_keys_raft_index)",
            room(keys),
            |mut keys: Filter, key: String| {
                keys.insert(hash_key(&key));
                keys
            },
        )
        .await?;
    Ok((ids, keys))
}

/// An empty filter for about `rows` values: room for twice as many.
fn room(rows: Option<u64>) -> Filter {
    Filter::with_room(rows.map_or(0, |n| 2 * n as usize))
}

/// Which of `ids` have events: without a row, those were deleted and the
/// others never used.
pub async fn with_events(conn: &mut Conn, ids: &[TaskId]) -> Result<HashSet<TaskId>, DbError> {
    let Some(last) = ids.last() else {
        return Ok(HashSet::new());
    };
    // Padded to a power of two, so few statement shapes exist.
    let mut values: Vec<Value> = ids.iter().map(|id| id.to_string().into()).collect();
    values.resize(ids.len().next_power_of_two(), last.to_string().into());
    let marks = vec!["?"; values.len()].join(", ");
    let found: Vec<String> = conn
        .exec(
            format!("SELECT DISTINCT task_id FROM task_events WHERE task_id IN ({marks})"),
            values,
        )
        .await?;
    found
        .into_iter()
        .map(|id| {
            id.parse::<TaskId>()
                .map_err(|_| DbError::Corrupt(format!("task id `{id}`")))
        })
        .collect()
}
