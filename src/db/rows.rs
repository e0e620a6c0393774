//! Rows to domain values and back: one definition per table. Each table's
//! column list is written once, here; the position of a column is looked up
//! by its name in that list ([`TASK`], [`EVENT`], [`KEY`]), and the bound
//! values (`*_values`), the SQL literal writer (`write_*`) and the reader
//! (`*_from_row`) of a table sit together and follow that one list.

use mysql_async::prelude::FromValue;
use mysql_async::{Row, Value};

use super::sql::Sql;
use super::DbError;
use crate::task::{BoardId, ColumnId, Event, EventKind, EventPayload, Task, TaskId};
use crate::time::{Date, Timestamp};

/// A table's column list, written once.
pub struct Table {
    pub name: &'static str,
    /// `a, b, c`, for SELECT and INSERT.
    pub columns: &'static str,
}

impl Table {
    /// The position of `column` in [`Table::columns`] (a programming error
    /// if it is not there; every use is exercised by the tests).
    pub fn at(&self, column: &str) -> usize {
        self.columns
            .split(", ")
            .position(|c| c == column)
            .unwrap_or_else(|| panic!("{} has no column {column}", self.name))
    }

    pub fn count(&self) -> usize {
        self.columns.split(", ").count()
    }

    /// Column `name` of `row`, converted, or an error naming it.
    fn get<T: FromValue>(&self, row: &mut Row, name: &str) -> Result<T, DbError> {
        column(row, self.at(name), name)
    }
}

pub const TASK: Table = Table {
    name: "tasks",
    columns: "id, title, description, status, position, priority, assignee, \
              labels, due_date, version, created_at, updated_at, board_id, column_id, archived",
};

pub const EVENT: Table = Table {
    name: "task_events",
    columns: "seq, raft_index, ordinal, term, event_id, task_id, kind, payload, occurred_at, \
              request_id, board_id, actor_id",
};

pub const KEY: Table = Table {
    name: "idempotency_keys",
    columns: "idem_key, fingerprint, raft_index, outcome, created_at",
};

/// A task's label, with a copy of the task's place and the filter columns
/// (V7, V10), so that a label filter reads one index in column order.
pub const LABEL: Table = Table {
    name: "task_labels",
    columns: "task_id, label, status, position, priority, assignee, column_id, archived",
};

pub const TASK_COLUMNS: &str = TASK.columns;
pub const EVENT_COLUMNS: &str = EVENT.columns;
pub const KEY_COLUMNS: &str = KEY.columns;
pub const LABEL_COLUMNS: &str = LABEL.columns;

/// Column `i` of `row`, converted, or an error naming the column.
pub(crate) fn column<T: FromValue>(row: &mut Row, i: usize, name: &str) -> Result<T, DbError> {
    match row.take_opt::<T, usize>(i) {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(DbError::Corrupt(format!("column {name}: {e}"))),
        None => Err(DbError::Corrupt(format!("column {name} missing"))),
    }
}

pub(crate) fn parsed<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, DbError> {
    text.parse()
        .map_err(|_| DbError::Corrupt(format!("column {name}: unexpected value `{text}`")))
}

pub fn timestamp_value(at: Timestamp) -> Value {
    let (date, hour, minute, second, millis) = at.to_parts();
    Value::Date(
        date.year as u16,
        date.month as u8,
        date.day as u8,
        hour as u8,
        minute as u8,
        second as u8,
        millis * 1000,
    )
}

pub(crate) fn timestamp_from(value: Value, name: &str) -> Result<Timestamp, DbError> {
    match value {
        Value::Date(y, mo, d, h, mi, s, us) => {
            let date = Date::new(i32::from(y), u32::from(mo), u32::from(d))
                .ok_or_else(|| DbError::Corrupt(format!("column {name}: impossible date")))?;
            Ok(Timestamp::from_parts(
                date,
                u32::from(h),
                u32::from(mi),
                u32::from(s),
                us,
            ))
        }
        Value::Bytes(bytes) => {
            // The text protocol sends `YYYY-MM-DD HH:MM:SS.fff`.
            let text = String::from_utf8_lossy(&bytes).replace(' ', "T");
            Timestamp::parse(&format!("{text}Z"))
                .ok_or_else(|| DbError::Corrupt(format!("column {name}: `{text}`")))
        }
        other => Err(DbError::Corrupt(format!(
            "column {name}: {other:?} is not a datetime"
        ))),
    }
}

pub fn date_value(date: Option<Date>) -> Value {
    match date {
        Some(d) => Value::Date(d.year as u16, d.month as u8, d.day as u8, 0, 0, 0, 0),
        None => Value::NULL,
    }
}

fn date_from(value: Value, name: &str) -> Result<Option<Date>, DbError> {
    match value {
        Value::NULL => Ok(None),
        Value::Date(y, m, d, ..) => Date::new(i32::from(y), u32::from(m), u32::from(d))
            .map(Some)
            .ok_or_else(|| DbError::Corrupt(format!("column {name}: impossible date"))),
        Value::Bytes(bytes) => Date::parse(&String::from_utf8_lossy(&bytes))
            .map(Some)
            .ok_or_else(|| DbError::Corrupt(format!("column {name}: not a date"))),
        other => Err(DbError::Corrupt(format!(
            "column {name}: {other:?} is not a date"
        ))),
    }
}

/// A `tasks` row, selected as [`TASK_COLUMNS`].
pub fn task_from_row(mut row: Row) -> Result<Task, DbError> {
    let row = &mut row;
    let id: String = TASK.get(row, "id")?;
    let status: String = TASK.get(row, "status")?;
    let priority: String = TASK.get(row, "priority")?;
    let labels: String = TASK.get(row, "labels")?;
    let board: String = TASK.get(row, "board_id")?;
    let column: String = TASK.get(row, "column_id")?;
    let column: ColumnId = parsed(&column, "column_id")?;
    let status: crate::task::Status = parsed(&status, "status")?;
    Ok(Task {
        board_id: parsed::<BoardId>(&board, "board_id")?,
        // A fixed column is implied by the status (`task::catalog`).
        column_id: (column != crate::task::catalog::fixed_column(status)).then_some(column),
        archived: TASK.get(row, "archived")?,
        id: parsed::<TaskId>(&id, "id")?,
        title: TASK.get(row, "title")?,
        description: TASK.get(row, "description")?,
        status,
        position: TASK.get(row, "position")?,
        priority: parsed(&priority, "priority")?,
        assignee: TASK.get(row, "assignee")?,
        labels: serde_json::from_str(&labels)
            .map_err(|e| DbError::Corrupt(format!("column labels: {e}")))?,
        due_date: date_from(TASK.get(row, "due_date")?, "due_date")?,
        version: TASK.get(row, "version")?,
        created_at: timestamp_from(TASK.get(row, "created_at")?, "created_at")?,
        updated_at: timestamp_from(TASK.get(row, "updated_at")?, "updated_at")?,
    })
}

/// A `tasks` row as a `(…)` literal, in [`TASK_COLUMNS`] order.
pub fn write_task(sql: &mut Sql, task: &Task) {
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
        .push(", ")
        .ascii(&task.board_id.to_string())
        .push(", ")
        .ascii(&task.column().to_string())
        .push(", ")
        .uint(u64::from(task.archived))
        .push(")");
}

/// What an upsert of a `tasks` row changes when the id exists.
pub const TASK_UPSERT: &str = " ON DUPLICATE KEY UPDATE title = VALUES(title), \
     description = VALUES(description), status = VALUES(status), position = VALUES(position), \
     priority = VALUES(priority), assignee = VALUES(assignee), labels = VALUES(labels), \
     due_date = VALUES(due_date), version = VALUES(version), created_at = VALUES(created_at), \
     updated_at = VALUES(updated_at), board_id = VALUES(board_id), column_id = VALUES(column_id), \
     archived = VALUES(archived)";

/// The values of a `tasks` row, in [`TASK_COLUMNS`] order.
pub fn task_values(task: &Task) -> Vec<Value> {
    vec![
        task.id.to_string().into(),
        task.title.clone().into(),
        task.description.clone().into(),
        task.status.as_str().into(),
        task.position.into(),
        task.priority.as_str().into(),
        task.assignee.clone().into(),
        labels_json(&task.labels).into(),
        date_value(task.due_date),
        task.version.into(),
        timestamp_value(task.created_at),
        timestamp_value(task.updated_at),
        task.board_id.to_string().into(),
        task.column().to_string().into(),
        u64::from(task.archived).into(),
    ]
}

/// A `task_labels` row of `task` as a `(…)` literal, in [`LABEL_COLUMNS`] order.
pub fn write_label(sql: &mut Sql, task: &Task, label: &str) {
    sql.push("(")
        .ascii(&task.id.to_string())
        .push(", ")
        .text(label)
        .push(", ")
        .ascii(task.status.as_str())
        .push(", ")
        .double(task.position)
        .push(", ")
        .ascii(task.priority.as_str())
        .push(", ")
        .optional_text(task.assignee.as_deref())
        .push(", ")
        .ascii(&task.column().to_string())
        .push(if task.archived { ", 1)" } else { ", 0)" });
}

/// The values of a `task_labels` row of `task`, in [`LABEL_COLUMNS`] order.
pub fn label_values(task: &Task, label: &str) -> Vec<Value> {
    vec![
        task.id.to_string().into(),
        label.into(),
        task.status.as_str().into(),
        task.position.into(),
        task.priority.as_str().into(),
        task.assignee.clone().into(),
        task.column().to_string().into(),
        u64::from(task.archived).into(),
    ]
}

pub fn labels_json(labels: &[String]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(labels).expect("labels serialize")
}

/// The payload text of an event, as stored.
pub fn event_payload(event: &Event) -> String {
    let payload = EventPayload::of(event);
    // An event holds only serializable values.
    serde_json::to_string(&payload).expect("event payload serializes")
}

/// A `task_events` row: the event's columns, the payload as stored.
#[derive(Clone, Debug)]
pub struct EventRecord<'a> {
    pub seq: u64,
    pub raft_index: u64,
    pub ordinal: u32,
    pub term: u64,
    pub event_id: uuid::Uuid,
    /// `None` for an event that is not about a task.
    pub task_id: Option<TaskId>,
    pub kind: EventKind,
    pub payload: &'a str,
    pub at: Timestamp,
    pub request_id: uuid::Uuid,
    /// The board the event belongs to ([`Event::board_id`]), for a board's
    /// activity (V11); `None` for an event about no board.
    pub board_id: Option<BoardId>,
    /// Who caused it (`system` when no one did).
    pub actor_id: String,
}

impl<'a> EventRecord<'a> {
    pub fn of(event: &Event, payload: &'a str) -> EventRecord<'a> {
        EventRecord {
            seq: event.seq,
            raft_index: event.raft_index,
            ordinal: event.ordinal,
            term: event.term,
            event_id: event.event_id,
            task_id: event.task_id,
            kind: event.kind,
            payload,
            at: event.at,
            request_id: event.request_id,
            board_id: event.board_id(),
            actor_id: event.actor.id.clone(),
        }
    }
}

/// A `task_events` row as a `(…)` literal, in [`EVENT_COLUMNS`] order.
pub fn write_event(sql: &mut Sql, event: &EventRecord<'_>) {
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
        .push(", ");
    match event.task_id {
        Some(id) => sql.ascii(&id.to_string()),
        None => sql.push("NULL"),
    };
    sql.push(", ")
        .ascii(event.kind.as_str())
        .push(", ")
        .text(event.payload)
        .push(", ")
        .timestamp(event.at)
        .push(", ")
        .ascii(&event.request_id.to_string())
        .push(", ");
    match event.board_id {
        Some(id) => sql.ascii(&id.to_string()),
        None => sql.push("NULL"),
    };
    sql.push(", ").text(&event.actor_id).push(")");
}

/// The values of a `task_events` row, in [`EVENT_COLUMNS`] order.
pub fn event_values(event: &EventRecord<'_>) -> Vec<Value> {
    vec![
        event.seq.into(),
        event.raft_index.into(),
        event.ordinal.into(),
        event.term.into(),
        event.event_id.to_string().into(),
        event
            .task_id
            .map_or(Value::NULL, |id| id.to_string().into()),
        event.kind.as_str().into(),
        event.payload.into(),
        timestamp_value(event.at),
        event.request_id.to_string().into(),
        event
            .board_id
            .map_or(Value::NULL, |id| id.to_string().into()),
        event.actor_id.as_str().into(),
    ]
}

/// The columns of a `task_events` row, selected as [`EVENT_COLUMNS`], and
/// its payload text untouched.
pub fn event_columns_from_row(mut row: Row) -> Result<(EventRecord<'static>, String), DbError> {
    let row = &mut row;
    let event_id: String = EVENT.get(row, "event_id")?;
    let task_id: Option<String> = EVENT.get(row, "task_id")?;
    let kind: String = EVENT.get(row, "kind")?;
    let request_id: String = EVENT.get(row, "request_id")?;
    let payload: String = EVENT.get(row, "payload")?;
    let board_id: Option<String> = EVENT.get(row, "board_id")?;
    // NULL only in a row V11 has not filled in yet.
    let actor_id: Option<String> = EVENT.get(row, "actor_id")?;
    let record = EventRecord {
        seq: EVENT.get(row, "seq")?,
        raft_index: EVENT.get(row, "raft_index")?,
        ordinal: EVENT.get(row, "ordinal")?,
        term: EVENT.get(row, "term")?,
        event_id: parsed(&event_id, "event_id")?,
        task_id: task_id.map(|id| parsed(&id, "task_id")).transpose()?,
        kind: parsed::<EventKind>(&kind, "kind")?,
        payload: "",
        at: timestamp_from(EVENT.get(row, "occurred_at")?, "occurred_at")?,
        request_id: parsed(&request_id, "request_id")?,
        board_id: board_id.map(|id| parsed(&id, "board_id")).transpose()?,
        actor_id: actor_id.unwrap_or_default(),
    };
    Ok((record, payload))
}

/// A `task_events` row, selected as [`EVENT_COLUMNS`].
pub fn event_from_row(row: Row) -> Result<Event, DbError> {
    let (record, payload) = event_columns_from_row(row)?;
    let payload: EventPayload = serde_json::from_str(&payload)
        .map_err(|e| DbError::Corrupt(format!("column payload: {e}")))?;
    Ok(Event {
        seq: record.seq,
        raft_index: record.raft_index,
        ordinal: record.ordinal,
        term: record.term,
        event_id: record.event_id,
        kind: record.kind,
        task_id: record.task_id,
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
        at: record.at,
        request_id: record.request_id,
        actor: payload.actor,
    })
}

/// An `idempotency_keys` row, its outcome as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyRow {
    pub key: String,
    pub fingerprint: String,
    pub raft_index: u64,
    pub outcome: String,
    /// When the key was first used (its command's stamp): it expires
    /// `idempotency_retention` later.
    pub created_at: Timestamp,
}

impl KeyRow {
    /// Selected as [`KEY_COLUMNS`].
    pub fn from_row(mut row: Row) -> Result<KeyRow, DbError> {
        let row = &mut row;
        Ok(KeyRow {
            key: KEY.get(row, "idem_key")?,
            fingerprint: KEY.get(row, "fingerprint")?,
            raft_index: KEY.get(row, "raft_index")?,
            outcome: KEY.get(row, "outcome")?,
            created_at: timestamp_from(KEY.get(row, "created_at")?, "created_at")?,
        })
    }

    /// As a `(…)` literal, in [`KEY_COLUMNS`] order.
    pub fn write(&self, sql: &mut Sql) {
        sql.push("(")
            .text(&self.key)
            .push(", ")
            .ascii(&self.fingerprint)
            .push(", ")
            .uint(self.raft_index)
            .push(", ")
            .text(&self.outcome)
            .push(", ")
            .timestamp(self.created_at)
            .push(")");
    }

    pub fn values(&self) -> Vec<Value> {
        vec![
            self.key.clone().into(),
            self.fingerprint.clone().into(),
            self.raft_index.into(),
            self.outcome.clone().into(),
            timestamp_value(self.created_at),
        ]
    }
}

/// `(?, ?, …)` for each of `rows` rows of `table`, for a multi-row INSERT.
pub fn placeholders(sql: &mut Sql, table: &Table, rows: usize) {
    for r in 0..rows {
        sql.push(if r == 0 { "(" } else { ", (" })
            .marks(table.count())
            .push(")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_dates_map_to_mysql_values_and_back() {
        let at = Timestamp(1_795_774_512_345);
        assert_eq!(timestamp_from(timestamp_value(at), "t").unwrap(), at);
        let text = Value::Bytes(b"2026-11-27 10:15:12.345".to_vec());
        assert_eq!(timestamp_from(text, "t").unwrap(), at);
        let date = Date::parse("2026-12-01");
        assert_eq!(date_from(date_value(date), "d").unwrap(), date);
        assert_eq!(date_from(Value::NULL, "d").unwrap(), None);
    }

    #[test]
    fn placeholders_repeat_a_row_shape() {
        let mut sql = Sql::new();
        placeholders(&mut sql, &LABEL, 3);
        assert_eq!(
            sql.as_str(),
            "(?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?)"
        );
    }

    #[test]
    fn every_writer_follows_its_tables_column_list() {
        let task = Task {
            id: TaskId::generate(),
            title: "t".into(),
            description: String::new(),
            status: crate::task::Status::Todo,
            position: 1.0,
            priority: crate::task::Priority::Medium,
            assignee: None,
            labels: vec![],
            due_date: None,
            version: 1,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            archived: false,
            board_id: crate::task::DEFAULT_BOARD,
            column_id: None,
        };
        assert_eq!(task_values(&task).len(), TASK.count());
        assert_eq!(label_values(&task, "b").len(), LABEL.count());
        let mut literal = Sql::new();
        write_label(&mut literal, &task, "b");
        assert_eq!(literal.as_str().matches(", ").count() + 1, LABEL.count());
        let key = KeyRow {
            key: "k".into(),
            fingerprint: "f".into(),
            raft_index: 1,
            outcome: "{}".into(),
            created_at: Timestamp(0),
        };
        assert_eq!(key.values().len(), KEY.count());
        for name in ["id", "title", "labels", "updated_at"] {
            assert!(TASK.at(name) < TASK.count());
        }
        for name in ["seq", "payload", "occurred_at", "request_id"] {
            assert!(EVENT.at(name) < EVENT.count());
        }
    }
}
