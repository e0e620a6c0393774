//! Reading the filters of [`super::ApplyState`] from MySQL, and what a
//! filter's "perhaps" needs asked.

use std::collections::HashSet;

use mysql_async::prelude::*;
use mysql_async::{Conn, Value};

use super::ages::KeyAges;
use super::filter::{hash_id, hash_key, Filter};
use crate::db::DbError;
use crate::task::TaskId;

/// The filters of every task id ever used (those with events: every task
/// has its creation's, and events are never deleted) and of every
/// idempotency key held, with the keys' ages. Each is sized from InnoDB's
/// estimate of its table's rows (twice that, as [`Filter::of`]; an
/// estimate short of the truth only adds a layer) and filled as the rows
/// stream in, so reading millions of them takes no memory beyond the
/// filters' bits (a `Vec` of their hashes took 80 MB at 5 M events, and the
/// allocator kept it).
pub async fn load_filters(conn: &mut Conn) -> Result<(Filter, Filter, KeyAges), DbError> {
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
    let (keys, ages) = load_key_filter(conn).await?;
    Ok((ids, keys, ages))
}

/// The filter of every idempotency key held, and when each was first used
/// (by the minute): a scan of the keys kept for the retention period, not
/// of the history.
pub async fn load_key_filter(conn: &mut Conn) -> Result<(Filter, KeyAges), DbError> {
    let keys: Option<u64> = conn.query_first(estimate("idempotency_keys")).await?;
    // A secondary index holds the primary key too: reading the keys from
    // the one on created_at leaves the outcomes (most of each row) unread.
    // Times are stored as UTC without a zone, so the difference from the
    // epoch is the minute since the epoch whatever the session's zone.
    let (keys, ages) = conn
        .query_fold(
            "SELECT idem_key, TIMESTAMPDIFF(MINUTE, '1970-01-01 00:00:00', created_at) \
             FROM idempotency_keys FORCE INDEX (idempotency_keys_created_at)",
            (room(keys), KeyAges::default()),
            |(mut keys, mut ages): (Filter, KeyAges), (key, minute): (String, i64)| {
                keys.insert(hash_key(&key));
                ages.add_minute(minute, 1);
                (keys, ages)
            },
        )
        .await?;
    Ok((keys, ages))
}

/// InnoDB's estimate of a table's rows.
fn estimate(table: &'static str) -> String {
    format!(
        "SELECT COALESCE(MAX(TABLE_ROWS), 0) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
    )
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
