//! Catching MySQL up from a peer when the log no longer holds the entries
//! it needs.
//!
//! A node's log is compacted once its MySQL has applied the entries; a
//! follower that missed them is sent a snapshot, which names an index and
//! stands for the state the cluster's databases hold there. That state is
//! already in every peer's MySQL, and all of it follows from rows that
//! never change once committed: the events (append-only, dense `seq`,
//! tagged with their `raft_index`) and the idempotency keys (insert-only,
//! tagged too). So the follower copies them, a page of log entries at a
//! time, from any peer that has applied that far:
//!
//! ```text
//!   GET {peer}/internal/catchup?after_index=A&after_seq=S&upto=T
//!     ← events with seq > S and raft_index ≤ min(T, the peer's applied),
//!       cut at an entry boundary X; keys with raft_index in (A, X]
//!   START TRANSACTION;
//!     UPDATE raft_applied: A → X (an error unless MySQL is still at A, S)
//!     INSERT the events byte for byte; upsert/delete the tasks they touch
//!     (each event carries the task as it left it); INSERT the keys; raise
//!     the column tails
//!   COMMIT
//! ```
//!
//! Each page is one transaction, like an applied batch: a crash between
//! pages resumes from the last one, and nothing is ever half-copied. The
//! copy never holds more than a page in memory and never goes past the
//! snapshot's index: the entries after it come from the log as usual.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::Conn;

use super::batch::{insert_events, insert_keys, transaction, write_tails, write_tasks};
use crate::db::catchup::{Page, PageRequest};
use crate::db::rows::EventRecord;
use crate::db::sql::Sql;
use crate::db::{column_tails, AppliedState, DbError};
use crate::task::{Event, EventKind, Task, TaskId};
use crate::transport::auth::PeerAuth;

/// How long one page may take to arrive.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CatchupError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    /// The peer could not be asked, or answered something unusable.
    #[error("{0}")]
    Peer(String),
}

/// Asks the peer at `url` for the next page (blocking: run it off the
/// actor's thread).
pub fn fetch(
    url: &str,
    request: PageRequest,
    node_id: u64,
    auth: &PeerAuth,
) -> Result<Page, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(3))
        .timeout(PAGE_TIMEOUT)
        .build();
    let mut call = agent
        .get(&format!("{url}/internal/catchup"))
        .query("after_index", &request.after_index.to_string())
        .query("after_seq", &request.after_seq.to_string())
        .query("upto", &request.upto.to_string())
        .set("x-taskraft-node", &node_id.to_string())
        .set("x-taskraft-cluster", &auth.cluster_id());
    if let Some(proof) = auth.prove(&request.challenge(), node_id) {
        call = call.set("x-taskraft-proof", &proof);
    }
    match call.call() {
        Ok(response) => response
            .into_json::<Page>()
            .map_err(|e| format!("{url}: unreadable page: {e}")),
        Err(ureq::Error::Status(status, response)) => Err(format!(
            "{url}: {status} {}",
            response.into_string().unwrap_or_default()
        )),
        Err(ureq::Error::Transport(e)) => Err(format!("{url}: {e}")),
    }
}

/// Checks `page` against where MySQL is, and commits it in one
/// transaction. Returns the events it added, for live subscribers.
pub async fn install(
    conn: &mut Conn,
    local: AppliedState,
    request: PageRequest,
    upto_term: u64,
    page: &Page,
    budget: usize,
) -> Result<Vec<Event>, CatchupError> {
    let events = check(local, request, page)?;
    let mut board_tails = column_tails(conn).await?;
    // Each task as its last event in the page left it.
    let mut last: BTreeMap<TaskId, Option<Task>> = BTreeMap::new();
    let mut tails_moved = false;
    for event in &events {
        match event.kind {
            EventKind::TaskCreated | EventKind::TaskUpdated => {
                tails_moved |= board_tails.raise(event.task.status, event.task.position);
                last.insert(event.task_id, Some(event.task.clone()));
            }
            EventKind::TaskDeleted => {
                last.insert(event.task_id, None);
            }
        }
    }
    let (upserts, deletes): (Vec<_>, Vec<_>) = last.into_iter().partition(|(_, t)| t.is_some());
    let upserts: Vec<Task> = upserts.into_iter().filter_map(|(_, t)| t).collect();
    let deletes: Vec<TaskId> = deletes.into_iter().map(|(id, _)| id).collect();
    let last_seq = page.events.last().map_or(local.last_seq, |e| e.seq);

    let mut sql = Sql::new();
    sql.push("START TRANSACTION")
        .end()
        .push("UPDATE raft_applied SET applied_index = IF(applied_index = ")
        .uint(local.applied_index)
        .push(" AND last_seq = ")
        .uint(local.last_seq)
        .push(", ")
        .uint(page.upto)
        .push(", NULL), applied_term = ")
        .uint(upto_term)
        .push(", last_seq = ")
        .uint(last_seq)
        .push(" WHERE id = 1")
        .end();
    let rows: Vec<EventRecord<'_>> = events
        .iter()
        .zip(&page.events)
        .map(|(event, row)| EventRecord::of(event, &row.payload))
        .collect();
    insert_events(&mut sql, budget, &rows);
    write_tasks(&mut sql, budget, &upserts, &deletes);
    insert_keys(&mut sql, budget, &page.keys);
    if tails_moved {
        write_tails(&mut sql, board_tails);
    }
    sql.push("COMMIT");
    transaction(conn, sql, budget).await?;
    crate::crash::point("catchup_after_page");
    Ok(events)
}

/// The page must continue exactly where MySQL is: dense seqs, entries in
/// the range asked for, and progress.
fn check(local: AppliedState, request: PageRequest, page: &Page) -> Result<Vec<Event>, String> {
    let bad = |why: String| Err(format!("the peer's page does not fit: {why}"));
    if page.upto <= local.applied_index || page.upto > request.upto {
        return bad(format!(
            "it ends at entry {} (applied here: {}, asked up to {})",
            page.upto, local.applied_index, request.upto
        ));
    }
    let mut seq = local.last_seq;
    let mut index = local.applied_index;
    let mut events = Vec::with_capacity(page.events.len());
    for row in &page.events {
        if row.seq != seq + 1 {
            return bad(format!("event seq {} follows seq {seq}", row.seq));
        }
        if row.raft_index < index.max(local.applied_index + 1) || row.raft_index > page.upto {
            return bad(format!(
                "event {} is from entry {}, outside ({}, {}]",
                row.seq, row.raft_index, local.applied_index, page.upto
            ));
        }
        seq = row.seq;
        index = row.raft_index;
        events.push(row.event().map_err(|e| format!("the peer's page: {e}"))?);
    }
    if let Some(key) = page
        .keys
        .iter()
        .find(|k| k.raft_index <= local.applied_index || k.raft_index > page.upto)
    {
        return bad(format!(
            "idempotency key from entry {} is outside the page",
            key.raft_index
        ));
    }
    Ok(events)
}

impl From<String> for CatchupError {
    fn from(message: String) -> Self {
        CatchupError::Peer(message)
    }
}

#[cfg(test)]
mod tests;
