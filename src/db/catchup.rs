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

use super::rows::{event_columns_from_row, KeyRow, EVENT_COLUMNS, KEY_COLUMNS};
use super::sql::Sql;
use super::{applied_state, DbError};
use crate::task::{Event, EventKind, EventPayload, TaskId};
use crate::time::Timestamp;

/// Events per page at most.
pub const PAGE_EVENTS: usize = 2_000;
/// Bytes of event payloads and key outcomes per page at most (a single
/// entry larger than this still makes a page of its own): what a page
/// holds in memory on both sides, and on the wire about twice that.
pub const PAGE_BYTES: usize = 2 << 20;

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
    /// On the page that reaches the requested `upto` only: every account
    /// row as the source holds it (at its applied index, at or past
    /// `upto`). Account rows are state, not history: the asking node
    /// replaces its tables with them, and re-applies the account entries
    /// between (they are idempotent, see `crate::accounts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<super::accounts::AccountRows>,
    /// The `cluster_versions` rows of the page's entries: the asking node
    /// applies what follows as the log's cluster version says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_versions: Vec<(u64, String)>,
}

/// A `task_events` row, its payload exactly as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub seq: u64,
    pub raft_index: u64,
    pub ordinal: u32,
    pub term: u64,
    pub event_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    pub kind: EventKind,
    pub payload: String,
    pub at: Timestamp,
    pub request_id: Uuid,
}

/// A row whose payload is not an event's.
#[derive(Debug, thiserror::Error)]
#[error("event {seq}: payload: {source}")]
pub struct EventRowError {
    pub seq: u64,
    pub source: serde_json::Error,
}

impl EventRow {
    pub fn event(&self) -> Result<Event, EventRowError> {
        let payload: EventPayload =
            serde_json::from_str(&self.payload).map_err(|source| EventRowError {
                seq: self.seq,
                source,
            })?;
        Ok(Event {
            seq: self.seq,
            raft_index: self.raft_index,
            ordinal: self.ordinal,
            term: self.term,
            event_id: self.event_id,
            kind: self.kind,
            task_id: self.task_id,
            task: payload.task,
            user: payload.user,
            member: payload.member,
            recovery: payload.recovery,
            board: payload.board,
            column: payload.column,
            board_member: payload.board_member,
            comment: payload.comment,
            checklist: payload.checklist,
            checklist_change: payload.checklist_change,
            notification: payload.notification,
            webhook: payload.webhook,
            changes: payload.changes,
            at: self.at,
            request_id: self.request_id,
            actor: payload.actor,
        })
    }
}

/// Where a page ends: after the entry at which its rows reach `max_bytes`
/// (or `max_rows` events), never inside an entry, and always after at
/// least one event. `events` are `(raft_index, term, bytes)` in seq order
/// (at most `max_rows + 1` of them), `keys` `(raft_index, bytes)` in
/// raft_index order. `None`: no cut, the page runs to the end asked for.
pub fn cut(
    events: &[(u64, u64, usize)],
    keys: &[(u64, usize)],
    max_rows: usize,
    max_bytes: usize,
) -> Option<(u64, u64)> {
    let mut bytes = 0;
    let mut k = 0;
    let mut last: Option<(u64, u64)> = None;
    let mut i = 0;
    while i < events.len() {
        let index = events[i].0;
        // The entry's events and the keys up to it.
        let mut entry_bytes = 0;
        let mut j = i;
        while j < events.len() && events[j].0 == index {
            entry_bytes += events[j].2;
            j += 1;
        }
        while k < keys.len() && keys[k].0 <= index {
            entry_bytes += keys[k].1;
            k += 1;
        }
        if last.is_some() && (j > max_rows || bytes + entry_bytes > max_bytes) {
            return last;
        }
        bytes += entry_bytes;
        last = Some((index, events[i].1));
        i = j;
    }
    // Keys of entries after the last event (no event of their own).
    let rest: usize = keys[k..].iter().map(|(_, bytes)| bytes).sum();
    if events.len() > max_rows || keys.len() > max_rows || bytes + rest > max_bytes {
        return last;
    }
    None
}

/// Reads the next page for `request`: events cut at an entry boundary once
/// they reach `limit` rows or, with the keys of the same entries,
/// `max_bytes` bytes of payload and outcome text.
pub async fn read_page(
    conn: &mut impl Queryable,
    request: PageRequest,
    limit: usize,
    max_bytes: usize,
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
            accounts: None,
            cluster_versions: Vec::new(),
        });
    }
    // Sizes first: a page is cut by bytes before a byte of it is read.
    let sizes: Vec<(u64, u64, u64)> = conn
        .exec(
            "SELECT raft_index, term, LENGTH(payload) FROM task_events \
             WHERE seq > ? AND raft_index <= ? ORDER BY seq LIMIT ?",
            (request.after_seq, end, limit as u64 + 1),
        )
        .await?;
    let sizes: Vec<(u64, u64, usize)> = sizes
        .into_iter()
        .map(|(index, term, bytes)| (index, term, bytes as usize))
        .collect();
    let key_end = sizes.get(limit).map_or(end, |(index, ..)| *index);
    let key_sizes: Vec<(u64, u64)> = conn
        .exec(
            "SELECT raft_index, LENGTH(outcome) FROM idempotency_keys \
             WHERE raft_index > ? AND raft_index <= ? ORDER BY raft_index LIMIT ?",
            (request.after_index, key_end, limit as u64 + 1),
        )
        .await?;
    let key_sizes: Vec<(u64, usize)> = key_sizes
        .into_iter()
        .map(|(index, bytes)| (index, bytes as usize))
        .collect();
    let (upto, upto_term) = match cut(&sizes, &key_sizes, limit, max_bytes) {
        Some((index, term)) => (index, Some(term)),
        None if sizes.len() > limit => {
            return Err(DbError::Corrupt(format!(
                "entry {} has more than {limit} events",
                sizes[0].0
            )))
        }
        None if end == source.applied_index => (end, Some(source.applied_term)),
        None => (end, None),
    };
    let mut select = Sql::new();
    select
        .push("SELECT ")
        .push(EVENT_COLUMNS)
        .push(" FROM task_events WHERE seq > ? AND raft_index <= ? ORDER BY seq LIMIT ?");
    let rows: Vec<Row> = conn
        .exec(
            select.into_string(),
            (request.after_seq, upto, limit as u64),
        )
        .await?;
    let events = rows
        .into_iter()
        .map(event_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut select = Sql::new();
    select.push("SELECT ").push(KEY_COLUMNS).push(
        " FROM idempotency_keys WHERE raft_index > ? AND raft_index <= ? \
         ORDER BY raft_index, idem_key",
    );
    let keys: Vec<Row> = conn
        .exec(select.into_string(), (request.after_index, upto))
        .await?;
    let keys = keys
        .into_iter()
        .map(KeyRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let accounts = if upto == request.upto {
        Some(super::accounts::load(conn).await?)
    } else {
        None
    };
    let cluster_versions: Vec<(u64, String)> = conn
        .exec(
            "SELECT raft_index, version FROM cluster_versions \
             WHERE raft_index > ? AND raft_index <= ? ORDER BY raft_index",
            (request.after_index, upto),
        )
        .await?;
    Ok(Page {
        source_applied: source.applied_index,
        upto,
        upto_term,
        events,
        keys,
        accounts,
        cluster_versions,
    })
}

/// A `task_events` row, selected as [`EVENT_COLUMNS`], payload untouched.
pub fn event_row(row: Row) -> Result<EventRow, DbError> {
    let (record, payload) = event_columns_from_row(row)?;
    Ok(EventRow {
        seq: record.seq,
        raft_index: record.raft_index,
        ordinal: record.ordinal,
        term: record.term,
        event_id: record.event_id,
        task_id: record.task_id,
        kind: record.kind,
        payload,
        at: record.at,
        request_id: record.request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn pages_are_cut_by_bytes_and_rows_at_entry_boundaries() {
        // (raft_index, term, bytes): entry 3 has two events.
        let events = [
            (2, 1, 100),
            (3, 1, 100),
            (3, 1, 100),
            (4, 2, 100),
            (5, 2, 100),
        ];
        assert_eq!(cut(&events, &[], 10, 10_000), None, "all of it fits");
        assert_eq!(
            cut(&events, &[], 10, 250),
            Some((2, 1)),
            "entry 3 would pass 250"
        );
        assert_eq!(cut(&events, &[], 10, 300), Some((3, 1)));
        assert_eq!(
            cut(&events, &[], 10, 10),
            Some((2, 1)),
            "at least one entry"
        );
        assert_eq!(
            cut(&events, &[(2, 200)], 10, 350),
            Some((2, 1)),
            "keys count"
        );
        assert_eq!(cut(&events, &[], 4, 10_000), Some((4, 2)), "rows too");
        assert_eq!(cut(&events, &[], 2, 10_000), Some((2, 1)), "no entry split");
    }
}
