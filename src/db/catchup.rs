//! The source side of a catch-up: one page of committed rows for a peer
//! whose log was replaced by a snapshot (see `applier::catchup`).
//!
//! Only rows of entries this node has applied are read, and those never
//! change (the event table is append-only, keys are insert-only), so a page
//! needs no transaction to be consistent with the next one.

use mysql_async::prelude::*;
use mysql_async::Row;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rows::{column, parsed, timestamp_from, KeyRow, EVENT_COLUMNS};
use super::{applied_state, DbError};
use crate::task::{Event, EventKind, EventPayload, TaskId};
use crate::time::Timestamp;

/// Events per page: about a megabyte of JSON.
pub const PAGE_EVENTS: usize = 2_000;

/// What the asking node holds, and how far it must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// MySQL's applied index on the asking node.
    pub after_index: u64,
    /// Its last event seq.
    pub after_seq: u64,
    /// The snapshot's index: the page stops there.
    pub upto: u64,
}

impl PageRequest {
    /// What a peer signs to prove it may read this page.
    pub fn challenge(&self) -> Vec<u8> {
        format!(
            "catchup:{}:{}:{}",
            self.after_index, self.after_seq, self.upto
        )
        .into_bytes()
    }
}

/// One page: every event and key of the log entries `(after_index, upto]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The source's applied index when it read the page.
    pub source_applied: u64,
    /// The last log entry the page covers.
    pub upto: u64,
    /// That entry's term, when the source knows it (otherwise `upto` is the
    /// requested index, whose term the asking node's snapshot names).
    pub upto_term: Option<u64>,
    pub events: Vec<EventRow>,
    pub keys: Vec<KeyRow>,
}

/// A `task_events` row, its payload exactly as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub seq: u64,
    pub raft_index: u64,
    pub ordinal: u32,
    pub term: u64,
    pub event_id: Uuid,
    pub task_id: TaskId,
    pub kind: EventKind,
    pub payload: String,
    pub at: Timestamp,
    pub request_id: Uuid,
}

impl EventRow {
    pub fn event(&self) -> Result<Event, String> {
        let payload: EventPayload = serde_json::from_str(&self.payload)
            .map_err(|e| format!("event {}: payload: {e}", self.seq))?;
        Ok(Event {
            seq: self.seq,
            raft_index: self.raft_index,
            ordinal: self.ordinal,
            term: self.term,
            event_id: self.event_id,
            kind: self.kind,
            task_id: self.task_id,
            task: payload.task,
            changes: payload.changes,
            at: self.at,
            request_id: self.request_id,
        })
    }
}

/// Reads the next page for `request`: at most `limit` events, cut at an
/// entry boundary, and the keys of the same entries.
pub async fn read_page(
    conn: &mut impl Queryable,
    request: PageRequest,
    limit: usize,
) -> Result<Page, DbError> {
    let source = applied_state(conn).await?;
    let end = request.upto.min(source.applied_index);
    if end <= request.after_index {
        return Ok(Page {
            source_applied: source.applied_index,
            upto: request.after_index,
            upto_term: None,
            events: Vec::new(),
            keys: Vec::new(),
        });
    }
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT {EVENT_COLUMNS} FROM task_events WHERE seq > ? AND raft_index <= ? \
                 ORDER BY seq LIMIT ?"
            ),
            (request.after_seq, end, limit as u64 + 1),
        )
        .await?;
    let mut events = rows
        .into_iter()
        .map(event_row)
        .collect::<Result<Vec<_>, _>>()?;
    let (upto, upto_term) = if events.len() > limit {
        // Full: stop before the entry the next row belongs to, so that no
        // entry is split between pages.
        let next = events[limit].raft_index;
        events.retain(|e| e.raft_index < next);
        match events.last() {
            Some(last) => (last.raft_index, Some(last.term)),
            None => {
                return Err(DbError::Corrupt(format!(
                    "entry {next} has more than {limit} events"
                )))
            }
        }
    } else if end == source.applied_index {
        (end, Some(source.applied_term))
    } else {
        (end, None)
    };
    let keys: Vec<(String, String, u64, String)> = conn
        .exec(
            "SELECT idem_key, fingerprint, raft_index, outcome FROM idempotency_keys \
             WHERE raft_index > ? AND raft_index <= ? ORDER BY raft_index, idem_key",
            (request.after_index, upto),
        )
        .await?;
    let keys = keys
        .into_iter()
        .map(|(key, fingerprint, raft_index, outcome)| KeyRow {
            key,
            fingerprint,
            raft_index,
            outcome,
        })
        .collect();
    Ok(Page {
        source_applied: source.applied_index,
        upto,
        upto_term,
        events,
        keys,
    })
}

/// A `task_events` row, selected as [`EVENT_COLUMNS`], payload untouched.
fn event_row(mut row: Row) -> Result<EventRow, DbError> {
    let event_id: String = column(&mut row, 4, "event_id")?;
    let task_id: String = column(&mut row, 5, "task_id")?;
    let kind: String = column(&mut row, 6, "kind")?;
    let request_id: String = column(&mut row, 9, "request_id")?;
    Ok(EventRow {
        seq: column(&mut row, 0, "seq")?,
        raft_index: column(&mut row, 1, "raft_index")?,
        ordinal: column(&mut row, 2, "ordinal")?,
        term: column(&mut row, 3, "term")?,
        event_id: parsed(&event_id, "event_id")?,
        task_id: parsed(&task_id, "task_id")?,
        kind: parsed(&kind, "kind")?,
        payload: column(&mut row, 7, "payload")?,
        at: timestamp_from(column(&mut row, 8, "occurred_at")?, "occurred_at")?,
        request_id: parsed(&request_id, "request_id")?,
    })
}
