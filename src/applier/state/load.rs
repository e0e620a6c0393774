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
/// idempotency key held. The rows are streamed and only their 64-bit
/// hashes kept until the filters are sized and filled, so a node with
/// millions of them reads them with a few tens of MB, given back at once.
pub async fn load_filters(conn: &mut Conn) -> Result<(Filter, Filter), DbError> {
    // The index (task_id, seq) answers this alone, one row per task; events
    // about no task (a user's, a member's) have none.
    let (ids, bad) = conn
        .query_fold(
            "SELECT DISTINCT task_id FROM task_events WHERE task_id IS NOT NULL",
            (Vec::new(), None),
            |(mut hashes, mut bad): (Vec<u64>, Option<String>), id: String| {
                match id.parse::<TaskId>() {
                    Ok(id) => hashes.push(hash_id(&id)),
                    Err(_) => bad = bad.or(Some(id)),
                }
                (hashes, bad)
            },
        )
        .await?;
    if let Some(id) = bad {
        return Err(DbError::Corrupt(format!("task id `{id}`")));
    }
    let ids = Filter::of(&ids);
    // A secondary index holds the primary key too: reading the keys from
    // the one on raft_index leaves the outcomes (most of each row) unread.
    let keys: Vec<u64> = conn
        .query_fold(
            "SELECT idem_key FROM idempotency_keys FORCE INDEX (idempotency_keys_raft_index)",
            Vec::new(),
            |mut hashes: Vec<u64>, key: String| {
                hashes.push(hash_key(&key));
                hashes
            },
        )
        .await?;
    Ok((ids, Filter::of(&keys)))
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
