//! The reads the api serves, from the local projection and event table.
//! Whether they are linearizable is decided before they run (ReadIndex in
//! the api); here they are plain SELECTs on one node's database.

use std::fmt;
use std::str::FromStr;

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts, Value};

use super::rows::{event_from_row, task_from_row, EVENT_COLUMNS, TASK_COLUMNS};
use super::sql::Sql;
use super::DbError;
use crate::task::{Event, Priority, Status, Task, TaskId};

/// `SELECT columns rest`, from static text only.
pub fn select(columns: &'static str, rest: &'static str) -> String {
    let mut sql = Sql::new();
    sql.push("SELECT ").push(columns).push(rest);
    sql.into_string()
}

pub async fn task(pool: &Pool, id: TaskId) -> Result<Option<Task>, DbError> {
    let mut conn = pool.get_conn().await?;
    let row: Option<mysql_async::Row> = conn
        .exec_first(
            select(TASK_COLUMNS, " FROM tasks WHERE id = ?"),
            (id.to_string(),),
        )
        .await?;
    row.map(task_from_row).transpose()
}

/// Filters and a page of the task list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<Status>,
    pub assignee: Option<String>,
    pub label: Option<String>,
    pub priority: Option<Priority>,
    /// Matched anywhere in title or description, case-insensitively.
    pub text: Option<String>,
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// Where a page ended, in board order: column, position, id.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    pub status: Status,
    pub position: f64,
    pub id: TaskId,
}

impl Cursor {
    pub fn after(task: &Task) -> Cursor {
        Cursor {
            status: task.status,
            position: task.position,
            id: task.id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // f64's Display is the shortest text that parses back to the same value.
        write!(f, "{}~{}~{}", self.status.as_str(), self.position, self.id)
    }
}

/// A cursor that is not one this server wrote.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a page cursor")]
pub struct BadCursor;

impl FromStr for Cursor {
    type Err = BadCursor;
    fn from_str(text: &str) -> Result<Cursor, BadCursor> {
        let mut parts = text.splitn(3, '~');
        let status = parts
            .next()
            .ok_or(BadCursor)?
            .parse()
            .map_err(|_| BadCursor)?;
        let position: f64 = parts
            .next()
            .ok_or(BadCursor)?
            .parse()
            .map_err(|_| BadCursor)?;
        let id = parts
            .next()
            .ok_or(BadCursor)?
            .parse()
            .map_err(|_| BadCursor)?;
        if !position.is_finite() {
            return Err(BadCursor);
        }
        Ok(Cursor {
            status,
            position,
            id,
        })
    }
}

/// A page of the task list and where the feed stood when it was read.
#[derive(Debug)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    pub next: Option<Cursor>,
    /// The last event seq included in this page's state: a WebSocket opened
    /// with `since` = this continues exactly where the page left off.
    pub last_seq: u64,
}

/// A page of tasks in board order, read in one consistent snapshot with the
/// last seq it reflects.
pub async fn tasks(pool: &Pool, filter: &TaskFilter) -> Result<TaskPage, DbError> {
    let mut sql = Sql::new();
    sql.push("SELECT ")
        .push(TASK_COLUMNS)
        .push(" FROM tasks t WHERE 1 = 1");
    let mut params: Vec<Value> = Vec::new();
    if let Some(status) = filter.status {
        sql.push(" AND t.status = ?");
        params.push(status.as_str().into());
    }
    if let Some(assignee) = &filter.assignee {
        sql.push(" AND t.assignee = ?");
        params.push(assignee.clone().into());
    }
    if let Some(priority) = filter.priority {
        sql.push(" AND t.priority = ?");
        params.push(priority.as_str().into());
    }
    if let Some(label) = &filter.label {
        sql.push(
            " AND EXISTS (SELECT 1 FROM task_labels l WHERE l.task_id = t.id AND l.label = ?)",
        );
        params.push(label.clone().into());
    }
    if let Some(text) = &filter.text {
        sql.push(" AND (t.title LIKE ? OR t.description LIKE ?)");
        let pattern = format!("%{}%", escape_like(text));
        params.push(pattern.clone().into());
        params.push(pattern.into());
    }
    if let Some(cursor) = &filter.after {
        // An ENUM compared with a number compares its 1-based index, which
        // is board order; the (status, position, id) index serves this.
        sql.push(
            " AND (t.status > ? OR (t.status = ? AND (t.position > ? OR (t.position = ? AND t.id > ?))))",
        );
        let rank = cursor.status.rank() as u64 + 1;
        params.extend([
            rank.into(),
            rank.into(),
            cursor.position.into(),
            cursor.position.into(),
            cursor.id.to_string().into(),
        ]);
    }
    sql.push(" ORDER BY t.status, t.position, t.id LIMIT ?");
    params.push((filter.limit as u64 + 1).into());

    let mut conn = pool.get_conn().await?;
    let mut snapshot = TxOpts::default();
    snapshot
        .with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(snapshot).await?;
    let rows: Vec<mysql_async::Row> = tx.exec(sql.into_string(), params).await?;
    let last_seq = super::applied_state(&mut tx).await?.last_seq;
    tx.commit().await?;
    let mut tasks = rows
        .into_iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if tasks.len() > filter.limit {
        tasks.truncate(filter.limit);
        tasks.last().map(Cursor::after)
    } else {
        None
    };
    Ok(TaskPage {
        tasks,
        next,
        last_seq,
    })
}

/// `%` and `_` in user text match themselves.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One task's history, oldest first.
pub async fn task_events(pool: &Pool, id: TaskId) -> Result<Vec<Event>, DbError> {
    let mut conn = pool.get_conn().await?;
    let rows: Vec<mysql_async::Row> = conn
        .exec(
            select(
                EVENT_COLUMNS,
                " FROM task_events WHERE task_id = ? ORDER BY seq",
            ),
            (id.to_string(),),
        )
        .await?;
    rows.into_iter().map(event_from_row).collect()
}

/// Up to `limit` events after `since`, in seq order.
pub async fn events_since(pool: &Pool, since: u64, limit: usize) -> Result<Vec<Event>, DbError> {
    let mut conn = pool.get_conn().await?;
    let rows: Vec<mysql_async::Row> = conn
        .exec(
            select(
                EVENT_COLUMNS,
                " FROM task_events WHERE seq > ? ORDER BY seq LIMIT ?",
            ),
            (since, limit as u64),
        )
        .await?;
    rows.into_iter().map(event_from_row).collect()
}

pub async fn last_seq(pool: &Pool) -> Result<u64, DbError> {
    let mut conn = pool.get_conn().await?;
    Ok(super::applied_state(&mut conn).await?.last_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_exactly() {
        let cursor = Cursor {
            status: Status::InProgress,
            position: 1_024.000_000_000_1,
            id: TaskId::generate(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        for bad in [
            "",
            "todo",
            "todo~x~y",
            "nope~1~0192f0c4-0000-7000-8000-000000000000",
            "todo~inf~0192f0c4-0000-7000-8000-000000000000",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn like_wildcards_in_search_text_are_literal() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
