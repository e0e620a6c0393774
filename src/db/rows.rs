//! Rows to domain values and back. Column lists live here, next to the code
//! that reads them in that order.

use mysql_async::prelude::FromValue;
use mysql_async::{Row, Value};

use super::DbError;
use crate::task::{Event, EventKind, EventPayload, Task, TaskId};
use crate::time::{Date, Timestamp};

pub const TASK_COLUMNS: &str = "id, title, description, status, position, priority, assignee, \
                                labels, due_date, version, created_at, updated_at";

pub const EVENT_COLUMNS: &str =
    "seq, raft_index, ordinal, term, event_id, task_id, kind, payload, occurred_at, request_id";

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
    let id: String = column(&mut row, 0, "id")?;
    let status: String = column(&mut row, 3, "status")?;
    let priority: String = column(&mut row, 5, "priority")?;
    let labels: String = column(&mut row, 7, "labels")?;
    Ok(Task {
        id: parsed::<TaskId>(&id, "id")?,
        title: column(&mut row, 1, "title")?,
        description: column(&mut row, 2, "description")?,
        status: parsed(&status, "status")?,
        position: column(&mut row, 4, "position")?,
        priority: parsed(&priority, "priority")?,
        assignee: column(&mut row, 6, "assignee")?,
        labels: serde_json::from_str(&labels)
            .map_err(|e| DbError::Corrupt(format!("column labels: {e}")))?,
        due_date: date_from(column(&mut row, 8, "due_date")?, "due_date")?,
        version: column(&mut row, 9, "version")?,
        created_at: timestamp_from(column(&mut row, 10, "created_at")?, "created_at")?,
        updated_at: timestamp_from(column(&mut row, 11, "updated_at")?, "updated_at")?,
    })
}

/// The values of a `tasks` row, in [`TASK_COLUMNS`] order.
pub fn task_values(task: &Task) -> [Value; 12] {
    [
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
    ]
}

pub fn labels_json(labels: &[String]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(labels).expect("labels serialize")
}

/// A `task_events` row, selected as [`EVENT_COLUMNS`].
pub fn event_from_row(mut row: Row) -> Result<Event, DbError> {
    let event_id: String = column(&mut row, 4, "event_id")?;
    let task_id: String = column(&mut row, 5, "task_id")?;
    let kind: String = column(&mut row, 6, "kind")?;
    let payload: String = column(&mut row, 7, "payload")?;
    let request_id: String = column(&mut row, 9, "request_id")?;
    let payload: EventPayload = serde_json::from_str(&payload)
        .map_err(|e| DbError::Corrupt(format!("column payload: {e}")))?;
    Ok(Event {
        seq: column(&mut row, 0, "seq")?,
        raft_index: column(&mut row, 1, "raft_index")?,
        ordinal: column(&mut row, 2, "ordinal")?,
        term: column(&mut row, 3, "term")?,
        event_id: parsed(&event_id, "event_id")?,
        kind: parsed::<EventKind>(&kind, "kind")?,
        task_id: parsed(&task_id, "task_id")?,
        task: payload.task,
        changes: payload.changes,
        at: timestamp_from(column(&mut row, 8, "occurred_at")?, "occurred_at")?,
        request_id: parsed(&request_id, "request_id")?,
    })
}

/// The values of a `task_events` row, in [`EVENT_COLUMNS`] order.
pub fn event_values(event: &Event) -> [Value; 10] {
    let payload = EventPayload {
        task: event.task.clone(),
        changes: event.changes.clone(),
    };
    [
        event.seq.into(),
        event.raft_index.into(),
        event.ordinal.into(),
        event.term.into(),
        event.event_id.to_string().into(),
        event.task_id.to_string().into(),
        event.kind.as_str().into(),
        // An event holds only serializable values.
        serde_json::to_string(&payload)
            .expect("event payload serializes")
            .into(),
        timestamp_value(event.at),
        event.request_id.to_string().into(),
    ]
}

/// An `idempotency_keys` row, its outcome as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyRow {
    pub key: String,
    pub fingerprint: String,
    pub raft_index: u64,
    pub outcome: String,
}

/// `(?, ?, …)` repeated `rows` times, for a multi-row INSERT.
pub fn placeholders(columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
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
        assert_eq!(placeholders(2, 3), "(?, ?), (?, ?), (?, ?)");
    }
}
