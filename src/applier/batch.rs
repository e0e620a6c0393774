//! One batch of committed entries as one MySQL transaction.
//!
//! ```text
//! START TRANSACTION
//!   SELECT … raft_applied, board_columns FOR UPDATE   where are we?
//!   SELECT … tasks, task_events, idempotency_keys     what the commands touch
//!   -- the pure state machine decides every command, in log order --
//!   INSERT task_events (multi-row); upsert/delete tasks and task_labels;  ┐ one
//!   INSERT idempotency_keys; UPDATE board_columns;                        │ round
//!   UPDATE raft_applied SET applied_index = the batch's last entry;       │ trip
//! COMMIT                                                                  ┘
//! ```
//!
//! The applied index commits with the rows it covers, so after any crash
//! the node resumes at applied + 1 and nothing is applied twice or lost.
//! Any error rolls the whole transaction back; the caller retries the batch.
//!
//! The reads are prepared statements (exact doubles over the binary
//! protocol) whose IN-lists are padded to a power of two, so a handful of
//! statement shapes stay cached; the writes are one multi-statement text
//! query built by [`Sql`], ending in COMMIT.

use std::collections::{BTreeSet, HashMap};

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use uuid::Uuid;

use crate::db::rows::{labels_json, task_from_row, EVENT_COLUMNS, TASK_COLUMNS};
use crate::db::sql::Sql;
use crate::db::DbError;
use crate::task::{
    self, Board, Changes, ColumnTails, Command, Event, EventPayload, Outcome, Remembered, Slot,
    Status, TaskId,
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

pub enum Applied {
    Done(BatchResult),
    /// MySQL is already past the batch's start (a COMMIT whose reply was
    /// lost): resume from this applied index.
    AlreadyAt(u64),
}

/// Applies `entries` (consecutive, starting at `expected_applied + 1`).
pub async fn apply(
    conn: &mut Conn,
    node_id: u64,
    expected_applied: u64,
    entries: &[BatchEntry],
) -> Result<Applied, DbError> {
    conn.query_drop("START TRANSACTION").await?;
    match apply_in(conn, node_id, expected_applied, entries).await {
        Ok(applied) => Ok(applied),
        Err(e) => {
            // Best effort: a broken connection rolls back on the server anyway.
            let _ = conn.query_drop("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Everything after START TRANSACTION; ends in COMMIT or ROLLBACK.
async fn apply_in(
    conn: &mut Conn,
    node_id: u64,
    expected_applied: u64,
    entries: &[BatchEntry],
) -> Result<Applied, DbError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        conn.query_drop("ROLLBACK").await?;
        return Ok(Applied::AlreadyAt(expected_applied));
    };
    assert_eq!(
        first.index,
        expected_applied + 1,
        "a batch starts right after the applied index"
    );
    let rows: Vec<(u64, u64, String, f64)> = conn
        .exec(
            "SELECT a.applied_index, a.last_seq, c.status, c.tail_position \
             FROM raft_applied a JOIN board_columns c WHERE a.id = 1 FOR UPDATE",
            (),
        )
        .await?;
    let Some((applied_index, last_seq, _, _)) = rows.first().cloned() else {
        return Err(DbError::Schema(
            "raft_applied or board_columns has no rows".into(),
        ));
    };
    if applied_index != expected_applied {
        conn.query_drop("ROLLBACK").await?;
        return Ok(Applied::AlreadyAt(applied_index));
    }
    let mut tails = ColumnTails::default();
    for (_, _, status, tail) in rows {
        let status: Status = status
            .parse()
            .map_err(|_| DbError::Corrupt(format!("board_columns.status `{status}`")))?;
        tails.0[status.rank()] = tail;
    }

    let mut board = load(conn, Board::partial(last_seq, tails), entries).await?;
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
    let changes = board.take_changes();
    let mut sql = writes(&changes);
    sql.push("UPDATE raft_applied SET applied_index = ")
        .uint(last.index)
        .push(", applied_term = ")
        .uint(last.term)
        .push(", last_seq = ")
        .uint(changes.last_seq)
        .push(" WHERE id = 1;\nCOMMIT");
    conn.query_drop(sql.into_string()).await?;
    Ok(Applied::Done(BatchResult {
        applied_index: last.index,
        outcomes,
        events: changes.events,
    }))
}

/// Fills `board` with what the batch's commands refer to.
async fn load(conn: &mut Conn, mut board: Board, entries: &[BatchEntry]) -> Result<Board, DbError> {
    let commands = entries.iter().filter_map(|e| e.command.as_ref());
    let ids: BTreeSet<TaskId> = commands.clone().map(|c| c.op.task_id()).collect();
    let keys: BTreeSet<String> = commands
        .filter_map(|c| c.idempotency.as_ref().map(|i| i.key.clone()))
        .collect();

    if !ids.is_empty() {
        let id_values = padded(ids.iter().map(|id| id.to_string().into()).collect());
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({})",
                    marks(id_values.len())
                ),
                id_values.clone(),
            )
            .await?;
        let mut slots: HashMap<TaskId, Slot> = HashMap::new();
        for row in rows {
            let task = task_from_row(row)?;
            slots.insert(task.id, Slot::Live(task));
        }
        // Ids with history but no row were deleted.
        let used: Vec<String> = conn
            .exec(
                format!(
                    "SELECT DISTINCT task_id FROM task_events WHERE task_id IN ({})",
                    marks(id_values.len())
                ),
                id_values,
            )
            .await?;
        for id in used {
            let id: TaskId = id
                .parse()
                .map_err(|_| DbError::Corrupt(format!("task_events.task_id `{id}`")))?;
            slots.entry(id).or_insert(Slot::Deleted);
        }
        for id in ids {
            board.load_task(id, slots.remove(&id));
        }
    }

    if !keys.is_empty() {
        let key_values = padded(keys.iter().map(|k| k.clone().into()).collect());
        let rows: Vec<(String, String, String, u64)> = conn
            .exec(
                format!(
                    "SELECT idem_key, fingerprint, outcome, raft_index FROM idempotency_keys \
                     WHERE idem_key IN ({})",
                    marks(key_values.len())
                ),
                key_values,
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
        for key in keys {
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

/// The statements that store `changes`, each ended by `;\n`.
fn writes(changes: &Changes) -> Sql {
    let mut sql = Sql::new();
    for chunk in changes.events.chunks(ROWS_PER_STATEMENT) {
        sql.push("INSERT INTO task_events (")
            .push(EVENT_COLUMNS)
            .push(") VALUES ");
        for (i, event) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let payload = EventPayload {
                task: event.task.clone(),
                changes: event.changes.clone(),
            };
            // An event holds only serializable values.
            let payload = serde_json::to_string(&payload).expect("event payload serializes");
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
                .text(&payload)
                .push(", ")
                .timestamp(event.at)
                .push(", ")
                .ascii(&event.request_id.to_string())
                .push(")");
        }
        sql.push(";\n");
    }

    let touched: Vec<String> = changes
        .upserts
        .iter()
        .map(|t| t.id)
        .chain(changes.deletes.iter().copied())
        .map(|id| id.to_string())
        .collect();
    if !touched.is_empty() {
        sql.push("DELETE FROM task_labels WHERE task_id IN ")
            .list(&touched, |s, id| {
                s.ascii(id);
            })
            .push(";\n");
    }
    if !changes.deletes.is_empty() {
        sql.push("DELETE FROM tasks WHERE id IN ")
            .list(&changes.deletes, |s, id| {
                s.ascii(&id.to_string());
            })
            .push(";\n");
    }
    for chunk in changes.upserts.chunks(ROWS_PER_STATEMENT) {
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

    for chunk in changes.keys.chunks(ROWS_PER_STATEMENT) {
        sql.push(
            "INSERT INTO idempotency_keys (idem_key, fingerprint, raft_index, outcome) VALUES ",
        );
        for (i, (key, remembered)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            // Outcomes hold only serializable values.
            let outcome = serde_json::to_string(&remembered.outcome).expect("outcome serializes");
            sql.push("(")
                .text(key)
                .push(", ")
                .ascii(&remembered.fingerprint)
                .push(", ")
                .uint(remembered.raft_index)
                .push(", ")
                .text(&outcome)
                .push(")");
        }
        sql.push(";\n");
    }

    if let Some(tails) = changes.tails {
        sql.push("UPDATE board_columns SET tail_position = CASE status WHEN 'todo' THEN ")
            .double(tails.0[0])
            .push(" WHEN 'in_progress' THEN ")
            .double(tails.0[1])
            .push(" WHEN 'done' THEN ")
            .double(tails.0[2])
            .push(" END;\n");
    }
    sql
}
