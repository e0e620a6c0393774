//! One batch of committed entries as one MySQL transaction.
//!
//! ```text
//! BEGIN
//!   SELECT … FROM raft_applied FOR UPDATE      where are we? (guards the batch)
//!   SELECT … tasks, task_events, idempotency_keys, board_columns
//!                                              what the batch's commands touch
//!   -- the pure state machine decides every command, in log order --
//!   INSERT task_events (multi-row); upsert/delete tasks and task_labels;
//!   INSERT idempotency_keys; UPDATE board_columns
//!   UPDATE raft_applied SET applied_index = last entry of the batch
//! COMMIT
//! ```
//!
//! The applied index commits with the rows it covers, so after any crash
//! the node resumes at applied + 1 and nothing is applied twice or lost.
//! Any error rolls the whole transaction back; the caller retries the batch.

use std::collections::{BTreeSet, HashMap};

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, TxOpts, Value};
use uuid::Uuid;

use crate::db::rows::{
    event_values, placeholders, task_from_row, task_values, EVENT_COLUMNS, TASK_COLUMNS,
};
use crate::db::DbError;
use crate::task::{
    self, Board, Changes, ColumnTails, Command, Event, Outcome, Remembered, Slot, Status, TaskId,
};

/// Rows per INSERT statement: keeps each statement well under MySQL's
/// `max_allowed_packet` even with 20,000-character descriptions.
const ROWS_PER_STATEMENT: usize = 128;

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
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let result = apply_in(&mut tx, node_id, expected_applied, entries).await;
    match result {
        Ok(Applied::Done(done)) => {
            tx.commit().await?;
            Ok(Applied::Done(done))
        }
        Ok(other) => {
            tx.rollback().await?;
            Ok(other)
        }
        Err(e) => {
            // Best effort: a broken connection rolls back on the server anyway.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn apply_in(
    tx: &mut mysql_async::Transaction<'_>,
    node_id: u64,
    expected_applied: u64,
    entries: &[BatchEntry],
) -> Result<Applied, DbError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(Applied::AlreadyAt(expected_applied));
    };
    assert_eq!(
        first.index,
        expected_applied + 1,
        "a batch starts right after the applied index"
    );
    let locked: Option<(u64, u64)> = tx
        .query_first("SELECT applied_index, last_seq FROM raft_applied WHERE id = 1 FOR UPDATE")
        .await?;
    let (applied_index, last_seq) =
        locked.ok_or_else(|| DbError::Schema("raft_applied has no row".into()))?;
    if applied_index != expected_applied {
        return Ok(Applied::AlreadyAt(applied_index));
    }

    let mut board = load(tx, last_seq, entries).await?;
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
    write(tx, &changes).await?;
    tx.exec_drop(
        "UPDATE raft_applied SET applied_index = ?, applied_term = ?, last_seq = ? WHERE id = 1",
        (last.index, last.term, changes.last_seq),
    )
    .await?;
    Ok(Applied::Done(BatchResult {
        applied_index: last.index,
        outcomes,
        events: changes.events,
    }))
}

/// Builds a board holding what the batch's commands refer to.
async fn load(
    tx: &mut mysql_async::Transaction<'_>,
    last_seq: u64,
    entries: &[BatchEntry],
) -> Result<Board, DbError> {
    let tails_rows: Vec<(String, f64)> = tx
        .query("SELECT status, tail_position FROM board_columns")
        .await?;
    let mut tails = ColumnTails::default();
    for (status, tail) in tails_rows {
        let status: Status = status
            .parse()
            .map_err(|_| DbError::Corrupt(format!("board_columns.status `{status}`")))?;
        tails.0[status.rank()] = tail;
    }
    let mut board = Board::partial(last_seq, tails);

    let commands = entries.iter().filter_map(|e| e.command.as_ref());
    let ids: BTreeSet<TaskId> = commands.clone().map(|c| c.op.task_id()).collect();
    let keys: BTreeSet<String> = commands
        .filter_map(|c| c.idempotency.as_ref().map(|i| i.key.clone()))
        .collect();

    let mut live: HashMap<TaskId, Slot> = HashMap::new();
    if !ids.is_empty() {
        let id_values: Vec<Value> = ids.iter().map(|id| id.to_string().into()).collect();
        let rows: Vec<Row> = tx
            .exec(
                format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({})",
                    marks(ids.len())
                ),
                id_values,
            )
            .await?;
        for row in rows {
            let task = task_from_row(row)?;
            live.insert(task.id, Slot::Live(task));
        }
        // Ids not in the projection: deleted, if they ever had an event.
        let missing: Vec<Value> = ids
            .iter()
            .filter(|id| !live.contains_key(id))
            .map(|id| id.to_string().into())
            .collect();
        if !missing.is_empty() {
            let used: Vec<String> = tx
                .exec(
                    format!(
                        "SELECT DISTINCT task_id FROM task_events WHERE task_id IN ({})",
                        marks(missing.len())
                    ),
                    missing,
                )
                .await?;
            for id in used {
                let id: TaskId = id
                    .parse()
                    .map_err(|_| DbError::Corrupt(format!("task_events.task_id `{id}`")))?;
                live.insert(id, Slot::Deleted);
            }
        }
    }
    for id in ids {
        board.load_task(id, live.remove(&id));
    }

    if !keys.is_empty() {
        let key_values: Vec<Value> = keys.iter().map(|k| k.clone().into()).collect();
        let rows: Vec<(String, String, String, u64)> = tx
            .exec(
                format!(
                    "SELECT idem_key, fingerprint, outcome, raft_index FROM idempotency_keys \
                     WHERE idem_key IN ({})",
                    marks(keys.len())
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

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

async fn write(tx: &mut mysql_async::Transaction<'_>, changes: &Changes) -> Result<(), DbError> {
    for chunk in changes.events.chunks(ROWS_PER_STATEMENT) {
        let params: Vec<Value> = chunk.iter().flat_map(event_values).collect();
        tx.exec_drop(
            format!(
                "INSERT INTO task_events ({EVENT_COLUMNS}) VALUES {}",
                placeholders(10, chunk.len())
            ),
            params,
        )
        .await?;
    }

    let touched: Vec<Value> = changes
        .upserts
        .iter()
        .map(|t| t.id)
        .chain(changes.deletes.iter().copied())
        .map(|id| id.to_string().into())
        .collect();
    if !touched.is_empty() {
        tx.exec_drop(
            format!(
                "DELETE FROM task_labels WHERE task_id IN ({})",
                marks(touched.len())
            ),
            touched,
        )
        .await?;
    }
    if !changes.deletes.is_empty() {
        let ids: Vec<Value> = changes
            .deletes
            .iter()
            .map(|id| id.to_string().into())
            .collect();
        tx.exec_drop(
            format!("DELETE FROM tasks WHERE id IN ({})", marks(ids.len())),
            ids,
        )
        .await?;
    }
    for chunk in changes.upserts.chunks(ROWS_PER_STATEMENT) {
        let params: Vec<Value> = chunk.iter().flat_map(task_values).collect();
        // VALUES(col) is what both MySQL 8 and MariaDB accept here.
        tx.exec_drop(
            format!(
                "INSERT INTO tasks ({TASK_COLUMNS}) VALUES {} ON DUPLICATE KEY UPDATE \
                 title = VALUES(title), description = VALUES(description), status = VALUES(status), \
                 position = VALUES(position), priority = VALUES(priority), assignee = VALUES(assignee), \
                 labels = VALUES(labels), due_date = VALUES(due_date), version = VALUES(version), \
                 created_at = VALUES(created_at), updated_at = VALUES(updated_at)",
                placeholders(12, chunk.len())
            ),
            params,
        )
        .await?;
        let labels: Vec<Value> = chunk
            .iter()
            .flat_map(|t| {
                t.labels
                    .iter()
                    .flat_map(|l| [t.id.to_string().into(), l.clone().into()])
            })
            .collect();
        if !labels.is_empty() {
            tx.exec_drop(
                format!(
                    "INSERT INTO task_labels (task_id, label) VALUES {}",
                    placeholders(2, labels.len() / 2)
                ),
                labels,
            )
            .await?;
        }
    }

    for chunk in changes.keys.chunks(ROWS_PER_STATEMENT) {
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (key, remembered) in chunk {
            // Outcomes hold only serializable values.
            let outcome = serde_json::to_string(&remembered.outcome).expect("outcome serializes");
            params.extend([
                key.clone().into(),
                remembered.fingerprint.clone().into(),
                remembered.raft_index.into(),
                outcome.into(),
            ]);
        }
        tx.exec_drop(
            format!(
                "INSERT INTO idempotency_keys (idem_key, fingerprint, raft_index, outcome) VALUES {}",
                placeholders(4, chunk.len())
            ),
            params,
        )
        .await?;
    }

    if let Some(tails) = changes.tails {
        tx.exec_drop(
            "UPDATE board_columns SET tail_position = CASE status \
             WHEN 'todo' THEN ? WHEN 'in_progress' THEN ? WHEN 'done' THEN ? END",
            (tails.0[0], tails.0[1], tails.0[2]),
        )
        .await?;
    }
    Ok(())
}
