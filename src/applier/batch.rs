//! One batch of committed entries as one MySQL transaction.
//!
//! ```text
//!   (only for what the in-memory state lacks: SELECT tasks, idempotency_keys)
//!   -- the pure state machine decides every command, in log order --
//! START TRANSACTION;                                                     ┐
//!   UPDATE raft_applied SET applied_index = the batch's last entry       │ one
//!          … but NULL (an error) unless it is still where we think;      │ round
//!   INSERT task_events (multi-row); upsert/delete tasks and task_labels; │ trip
//!   INSERT idempotency_keys; UPDATE board_columns;                       │
//! COMMIT                                                                 ┘
//! ```
//!
//! The applied index commits with the rows it covers, so after any crash
//! the node resumes at applied + 1 and nothing is applied twice or lost.
//! Any error rolls the whole transaction back; the caller drops its
//! in-memory state, reads it again and retries the batch.
//!
//! Reads are prepared statements (exact doubles over the binary protocol)
//! with IN-lists padded to a power of two, so few statement shapes exist and
//! all stay cached. The write is one multi-statement text query built by
//! [`Sql`]: values are escaped literals, never pasted raw.

use std::collections::{BTreeSet, HashMap};

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use uuid::Uuid;

use super::state::{ApplyState, Lookup};
use crate::db::rows::{labels_json, task_from_row, KeyRow, EVENT_COLUMNS, TASK_COLUMNS};
use crate::db::sql::Sql;
use crate::db::{applied_state, column_tails, DbError};
use crate::projection::ProjectionCache;
use crate::task::{
    self, Board, Changes, ColumnTails, Command, Event, EventPayload, Outcome, Remembered, Slot,
    Task, TaskId,
};

/// Rows per INSERT statement: keeps each statement, and the batch's query,
/// well under MySQL's `max_allowed_packet` (16 MiB on MariaDB) even with
/// 20,000-character descriptions.
const ROWS_PER_STATEMENT: usize = 64;

/// A committed log entry, decoded for the state machine.
#[derive(Clone, Debug)]
pub struct BatchEntry {
    pub index: u64,
    pub term: u64,
    /// `None` for entries that carry no command (a new leader's empty entry,
    /// a membership change, or one that could not be decoded).
    pub command: Option<Command>,
    /// The node that took the request.
    pub origin: Option<u64>,
}

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub applied_index: u64,
    /// Outcomes of the commands this node took, by request id.
    pub outcomes: Vec<(Uuid, task::Applied)>,
    pub events: Vec<Event>,
}

/// Reads the applier's state from MySQL: where it stands, and every id and
/// key in use.
pub async fn load_state(conn: &mut Conn, rows: ProjectionCache) -> Result<ApplyState, DbError> {
    let applied = applied_state(conn).await?;
    let tails = column_tails(conn).await?;
    let parse = |id: String| {
        id.parse::<TaskId>()
            .map_err(|_| DbError::Corrupt(format!("task id `{id}`")))
    };
    let live: Vec<String> = conn.query("SELECT id FROM tasks").await?;
    let live = live.into_iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let used: Vec<String> = conn
        .query("SELECT DISTINCT task_id FROM task_events")
        .await?;
    let used = used.into_iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<String> = conn.query("SELECT idem_key FROM idempotency_keys").await?;
    // Ids with history and no row were deleted; `new` lets live ids win.
    Ok(ApplyState::new(
        applied.applied_index,
        applied.applied_term,
        applied.last_seq,
        tails,
        live,
        used,
        keys,
        rows,
    ))
}

/// Applies `entries` (consecutive, starting right after `state`'s applied
/// index) and records them in `state` once MySQL has committed them.
pub async fn apply(
    conn: &mut Conn,
    state: &mut ApplyState,
    node_id: u64,
    entries: &[BatchEntry],
) -> Result<BatchResult, DbError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(BatchResult {
            applied_index: state.applied_index,
            ..BatchResult::default()
        });
    };
    assert_eq!(
        first.index,
        state.applied_index + 1,
        "a batch starts right after the applied index"
    );

    let board = load(conn, state, entries).await?;
    let (changes, outcomes) = decide(board, entries, node_id);

    let mut sql = Sql::new();
    // Fails (NULL into a NOT NULL column, in strict mode) unless MySQL is
    // where the state says: nothing after it runs, nothing is committed.
    sql.push("START TRANSACTION;\nUPDATE raft_applied SET applied_index = IF(applied_index = ")
        .uint(state.applied_index)
        .push(", ")
        .uint(last.index)
        .push(", NULL), applied_term = ")
        .uint(last.term)
        .push(", last_seq = ")
        .uint(changes.last_seq)
        .push(" WHERE id = 1;\n");
    writes(&mut sql, &changes);
    sql.push("COMMIT");
    crate::crash::point("apply_before_commit");
    if let Err(e) = conn.query_drop(sql.into_string()).await {
        // Best effort: a broken connection rolls back on the server anyway.
        let _ = conn.query_drop("ROLLBACK").await;
        return Err(e.into());
    }
    crate::crash::point("apply_after_commit");
    state.committed(&changes, last.index, last.term);
    Ok(BatchResult {
        applied_index: last.index,
        outcomes,
        events: changes.events,
    })
}

fn decide(
    mut board: Board,
    entries: &[BatchEntry],
    node_id: u64,
) -> (Changes, Vec<(Uuid, task::Applied)>) {
    let mut outcomes = Vec::new();
    for entry in entries {
        let Some(command) = &entry.command else {
            continue;
        };
        let applied = board.apply(entry.index, entry.term, command);
        if entry.origin == Some(node_id) {
            outcomes.push((command.request_id, applied));
        }
    }
    (board.take_changes(), outcomes)
}

/// A board holding what the batch's commands refer to: from `state`, and
/// from MySQL for what `state` does not hold.
async fn load(
    conn: &mut Conn,
    state: &mut ApplyState,
    entries: &[BatchEntry],
) -> Result<Board, DbError> {
    let mut board = Board::partial(state.last_seq, state.tails);
    let commands = entries.iter().filter_map(|e| e.command.as_ref());
    let ids: BTreeSet<TaskId> = commands.clone().map(|c| c.op.task_id()).collect();
    let keys: BTreeSet<String> = commands
        .filter_map(|c| c.idempotency.as_ref().map(|i| i.key.clone()))
        .collect();

    let mut fetch = Vec::new();
    for id in ids {
        match state.task(&id) {
            Lookup::Known(slot) => board.load_task(id, slot),
            Lookup::Fetch => fetch.push(id),
        }
    }
    if !fetch.is_empty() {
        let values = padded(fetch.iter().map(|id| id.to_string().into()).collect());
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({})",
                    marks(values.len())
                ),
                values,
            )
            .await?;
        let mut found: HashMap<TaskId, task::Task> = HashMap::new();
        for row in rows {
            let task = task_from_row(row)?;
            found.insert(task.id, task);
        }
        for id in fetch {
            let task = found.remove(&id).ok_or_else(|| {
                DbError::Corrupt(format!("task {id} should be live but has no row"))
            })?;
            state.cache_task(&task);
            board.load_task(id, Some(Slot::Live(task)));
        }
    }

    let mut fetch_keys = Vec::new();
    for key in keys {
        match state.key(&key) {
            Ok(remembered) => board.load_key(key, remembered),
            Err(()) => fetch_keys.push(key),
        }
    }
    if !fetch_keys.is_empty() {
        let values = padded(fetch_keys.iter().map(|k| k.clone().into()).collect());
        let rows: Vec<(String, String, String, u64)> = conn
            .exec(
                format!(
                    "SELECT idem_key, fingerprint, outcome, raft_index FROM idempotency_keys \
                     WHERE idem_key IN ({})",
                    marks(values.len())
                ),
                values,
            )
            .await?;
        let mut remembered: HashMap<String, Remembered> = HashMap::new();
        for (key, fingerprint, outcome, raft_index) in rows {
            let outcome: Outcome = serde_json::from_str(&outcome)
                .map_err(|e| DbError::Corrupt(format!("idempotency_keys.outcome: {e}")))?;
            remembered.insert(
                key,
                Remembered {
                    fingerprint,
                    outcome,
                    raft_index,
                },
            );
        }
        for key in fetch_keys {
            let found = remembered.remove(&key);
            board.load_key(key, found);
        }
    }
    Ok(board)
}

/// Pads an IN-list to the next power of two by repeating its last value,
/// so that few statement shapes exist and all stay in the statement cache.
fn padded(mut values: Vec<Value>) -> Vec<Value> {
    let target = values.len().next_power_of_two();
    if let Some(last) = values.last().cloned() {
        values.resize(target, last);
    }
    values
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Appends the statements that store `changes`, each ended by `;\n`.
fn writes(sql: &mut Sql, changes: &Changes) {
    let payloads: Vec<(&Event, String)> = changes
        .events
        .iter()
        .map(|event| {
            let payload = EventPayload {
                task: event.task.clone(),
                changes: event.changes.clone(),
            };
            // An event holds only serializable values.
            let payload = serde_json::to_string(&payload).expect("event payload serializes");
            (event, payload)
        })
        .collect();
    insert_events(sql, &payloads);
    write_tasks(sql, &changes.upserts, &changes.deletes);
    let keys: Vec<KeyRow> = changes
        .keys
        .iter()
        .map(|(key, remembered)| KeyRow {
            key: key.clone(),
            fingerprint: remembered.fingerprint.clone(),
            raft_index: remembered.raft_index,
            // Outcomes hold only serializable values.
            outcome: serde_json::to_string(&remembered.outcome).expect("outcome serializes"),
        })
        .collect();
    insert_keys(sql, &keys);
    if let Some(tails) = changes.tails {
        write_tails(sql, tails);
    }
}

/// Multi-row INSERTs of events, each with its payload text as stored.
pub(super) fn insert_events<P: AsRef<str>>(sql: &mut Sql, events: &[(&Event, P)]) {
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        sql.push("INSERT INTO task_events (")
            .push(EVENT_COLUMNS)
            .push(") VALUES ");
        for (i, (event, payload)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .uint(event.seq)
                .push(", ")
                .uint(event.raft_index)
                .push(", ")
                .uint(u64::from(event.ordinal))
                .push(", ")
                .uint(event.term)
                .push(", ")
                .ascii(&event.event_id.to_string())
                .push(", ")
                .ascii(&event.task_id.to_string())
                .push(", ")
                .ascii(event.kind.as_str())
                .push(", ")
                .text(payload.as_ref())
                .push(", ")
                .timestamp(event.at)
                .push(", ")
                .ascii(&event.request_id.to_string())
                .push(")");
        }
        sql.push(";\n");
    }
}

/// Upserts `upserts` (with their labels) and deletes `deletes`.
pub(super) fn write_tasks(sql: &mut Sql, upserts: &[Task], deletes: &[TaskId]) {
    // Labels of updated and deleted tasks are replaced; a created task has none yet.
    let touched: Vec<String> = upserts
        .iter()
        .filter(|t| t.version > 1)
        .map(|t| t.id)
        .chain(deletes.iter().copied())
        .map(|id| id.to_string())
        .collect();
    if !touched.is_empty() {
        sql.push("DELETE FROM task_labels WHERE task_id IN ")
            .list(&touched, |s, id| {
                s.ascii(id);
            })
            .push(";\n");
    }
    if !deletes.is_empty() {
        sql.push("DELETE FROM tasks WHERE id IN ")
            .list(deletes, |s, id| {
                s.ascii(&id.to_string());
            })
            .push(";\n");
    }
    for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
        sql.push("INSERT INTO tasks (")
            .push(TASK_COLUMNS)
            .push(") VALUES ");
        for (i, task) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .ascii(&task.id.to_string())
                .push(", ")
                .text(&task.title)
                .push(", ")
                .text(&task.description)
                .push(", ")
                .ascii(task.status.as_str())
                .push(", ")
                .double(task.position)
                .push(", ")
                .ascii(task.priority.as_str())
                .push(", ")
                .optional_text(task.assignee.as_deref())
                .push(", ")
                .text(&labels_json(&task.labels))
                .push(", ")
                .date(task.due_date)
                .push(", ")
                .uint(task.version)
                .push(", ")
                .timestamp(task.created_at)
                .push(", ")
                .timestamp(task.updated_at)
                .push(")");
        }
        // VALUES(col) is the form both MySQL 8 and MariaDB accept here.
        sql.push(
            " ON DUPLICATE KEY UPDATE title = VALUES(title), description = VALUES(description), \
             status = VALUES(status), position = VALUES(position), priority = VALUES(priority), \
             assignee = VALUES(assignee), labels = VALUES(labels), due_date = VALUES(due_date), \
             version = VALUES(version), created_at = VALUES(created_at), updated_at = VALUES(updated_at);\n",
        );
        let labels: Vec<(String, &String)> = chunk
            .iter()
            .flat_map(|t| t.labels.iter().map(move |l| (t.id.to_string(), l)))
            .collect();
        if !labels.is_empty() {
            sql.push("INSERT INTO task_labels (task_id, label) VALUES ");
            for (i, (id, label)) in labels.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(").ascii(id).push(", ").text(label).push(")");
            }
            sql.push(";\n");
        }
    }
}

pub(super) fn insert_keys(sql: &mut Sql, keys: &[KeyRow]) {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        sql.push(
            "INSERT INTO idempotency_keys (idem_key, fingerprint, raft_index, outcome) VALUES ",
        );
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .text(&row.key)
                .push(", ")
                .ascii(&row.fingerprint)
                .push(", ")
                .uint(row.raft_index)
                .push(", ")
                .text(&row.outcome)
                .push(")");
        }
        sql.push(";\n");
    }
}

pub(super) fn write_tails(sql: &mut Sql, tails: ColumnTails) {
    sql.push("UPDATE board_columns SET tail_position = CASE status WHEN 'todo' THEN ")
        .double(tails.0[0])
        .push(" WHEN 'in_progress' THEN ")
        .double(tails.0[1])
        .push(" WHEN 'done' THEN ")
        .double(tails.0[2])
        .push(" END;\n");
}
