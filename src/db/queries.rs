//! The reads the api serves, from the local projection and event table.
//! Whether they are linearizable is decided before they run (ReadIndex in
//! the api); here they are plain SELECTs on one node's database.

use std::fmt;
use std::str::FromStr;

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts, Value};

use super::rows::{event_from_row, task_from_row, EVENT_COLUMNS, TASK_COLUMNS};
use super::search::{self, Words};
use super::sql::Sql;
use super::DbError;
use crate::task::{BoardId, ColumnId, Event, Priority, Status, Task, TaskId};

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
    /// Tasks whose title or description has every one of these words (as
    /// a word or the start of one), through the FULLTEXT index.
    pub text: Option<Words>,
    /// The words of `text` (bit i: the i-th) that are common
    /// ([`search::choose_plan`]): checked by regular expression on the
    /// rows read, not through the FULLTEXT index, which would read every
    /// task that has them. With every word common, the list is read in
    /// board order through the filters' index, as without `text`. Set by
    /// [`tasks`].
    pub common: u16,
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

/// One statement of a list read: SQL text and its parameters.
#[derive(Clone, Debug)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

/// The statement that reads up to `limit` tasks of one column (`status`)
/// in board order, after `after` (a position and id in that column), under
/// `filter`'s other filters.
///
/// Each shape reads one index in board order from the cursor on, so a page
/// costs about its own size whatever the table holds, not a scan from the
/// start (no OFFSET, and no ENUM range, which MariaDB would scan from the
/// first column):
/// - label (with any others): `task_labels_assignee`, `_priority` or
///   `_board`, each (label, [assignee | priority,] status, position,
///   task_id), joined to `tasks` by primary key;
/// - assignee (with or without priority): `tasks_assignee_board`;
/// - priority: `tasks_priority_board`; none: `tasks_board_list` (V9:
///   board, archived, status, position, id).
///
/// The list is the default board's cards that are not archived: with no
/// filter the index starts with both; with a filter, the rows the filter's
/// index leads to are checked for them one by one (a filtered page on a
/// cluster whose cards are mostly on other boards reads more rows than it
/// returns).
///
/// With `text`, the FULLTEXT index finds the tasks with its uncommon words
/// first (the others filter them, and they are sorted): its cost grows
/// with how many tasks have those words, not with the table. Common words
/// (`filter.common`) are checked by regular expression on the rows read;
/// with every word common, the rows are read in board order through the
/// filters' index, as without text (a page reads about its size divided by
/// how common the words are on this board).
pub fn column_statement(
    filter: &TaskFilter,
    status: Status,
    after: Option<(f64, TaskId)>,
    limit: usize,
) -> Statement {
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    // Words for the FULLTEXT index: those not common.
    let indexed = filter
        .text
        .as_ref()
        .map(|words| words.boolean_without(filter.common))
        .filter(|query| !query.is_empty());
    let by_label = filter.label.is_some() && indexed.is_none();
    // By label, `task_labels` holds the board order and the filter columns.
    let id_column = if by_label {
        sql.push("SELECT ")
            .push(TASK_COLUMNS_T)
            .push(" FROM task_labels l FORCE INDEX (");
        sql.push(if filter.assignee.is_some() {
            "task_labels_assignee"
        } else if filter.priority.is_some() {
            "task_labels_priority"
        } else {
            "task_labels_board"
        });
        sql.push(") STRAIGHT_JOIN tasks t ON t.id = l.task_id WHERE l.label = ?");
        params.push(filter.label.clone().into());
        "l.task_id"
    } else if let Some(query) = indexed {
        sql.push("SELECT ")
            .push(TASK_COLUMNS_T)
            .push(" FROM tasks t WHERE MATCH (t.title, t.description) AGAINST (? IN BOOLEAN MODE)");
        params.push(query.into());
        if filter.label.is_some() {
            sql.push(
                " AND EXISTS (SELECT 1 FROM task_labels l WHERE l.task_id = t.id AND l.label = ?)",
            );
            params.push(filter.label.clone().into());
        }
        "t.id"
    } else {
        sql.push("SELECT ")
            .push(TASK_COLUMNS_T)
            .push(" FROM tasks t FORCE INDEX (");
        sql.push(if filter.assignee.is_some() {
            "tasks_assignee_board"
        } else if filter.priority.is_some() {
            "tasks_priority_board"
        } else {
            "tasks_board_list"
        });
        sql.push(") WHERE 1 = 1");
        "t.id"
    };
    let column = |sql: &mut Sql, name: &'static str| {
        sql.push(if by_label { "l." } else { "t." }).push(name);
    };
    if let Some(assignee) = &filter.assignee {
        sql.push(" AND ");
        column(&mut sql, "assignee");
        sql.push(" = ?");
        params.push(assignee.clone().into());
    }
    if let Some(priority) = filter.priority {
        sql.push(" AND ");
        column(&mut sql, "priority");
        sql.push(" = ?");
        params.push(priority.as_str().into());
    }
    sql.push(" AND ");
    column(&mut sql, "status");
    sql.push(" = ?");
    params.push(status.as_str().into());
    if let Some(words) = &filter.text {
        for (i, word) in words.as_slice().iter().enumerate() {
            if filter.common & (1 << i) != 0 {
                sql.push(" AND (t.title REGEXP ? OR t.description REGEXP ?)");
                params.extend([search::pattern(word).into(), search::pattern(word).into()]);
            }
        }
    }
    // The list is the default board's cards on the board (`/api/boards/…`
    // pages the others): a filter on the row the index led to.
    sql.push(" AND t.board_id = '00000000-0000-0000-0000-000000000001' AND t.archived = 0");
    if let Some((position, id)) = after {
        sql.push(" AND (");
        column(&mut sql, "position");
        sql.push(" > ? OR (");
        column(&mut sql, "position");
        sql.push(" = ? AND ").push(id_column).push(" > ?))");
        params.extend([position.into(), position.into(), id.to_string().into()]);
    }
    sql.push(" ORDER BY ");
    column(&mut sql, "position");
    sql.push(", ").push(id_column).push(" LIMIT ?");
    params.push((limit as u64).into());
    Statement {
        sql: sql.into_string(),
        params,
    }
}

/// [`TASK_COLUMNS`] of `tasks t`.
const TASK_COLUMNS_T: &str = "t.id, t.title, t.description, t.status, t.position, t.priority, \
     t.assignee, t.labels, t.due_date, t.version, t.created_at, t.updated_at, t.board_id, \
     t.column_id, t.archived";

/// A page of one board column's cards (or, `column` `None`, of the
/// board's archived cards), in position order after `after`: one read of
/// `tasks_column` (or `tasks_board_archive`) from the cursor on.
pub async fn column_page(
    pool: &Pool,
    board: BoardId,
    column: Option<ColumnId>,
    archived: bool,
    after: Option<(f64, TaskId)>,
    limit: usize,
) -> Result<(Vec<Task>, bool, u64), DbError> {
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    sql.push("SELECT ").push(TASK_COLUMNS_T);
    match column {
        Some(column) => {
            sql.push(" FROM tasks t FORCE INDEX (tasks_column) WHERE t.column_id = ?");
            params.push(column.to_string().into());
        }
        None => {
            sql.push(" FROM tasks t FORCE INDEX (tasks_board_archive) WHERE t.board_id = ?");
            params.push(board.to_string().into());
        }
    }
    sql.push(" AND t.archived = ?");
    params.push(u64::from(archived).into());
    if let Some((position, id)) = after {
        sql.push(" AND (t.position > ? OR (t.position = ? AND t.id > ?))");
        params.extend([position.into(), position.into(), id.to_string().into()]);
    }
    sql.push(" ORDER BY t.position, t.id LIMIT ?");
    params.push((limit as u64 + 1).into());
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
    let more = tasks.len() > limit;
    tasks.truncate(limit);
    Ok((tasks, more, last_seq))
}

/// A page of tasks in board order, read in one consistent snapshot with the
/// last seq it reflects: a column at a time (one indexed statement each,
/// see [`column_statement`]), from the cursor's column on.
pub async fn tasks(pool: &Pool, filter: &TaskFilter) -> Result<TaskPage, DbError> {
    let mut conn = pool.get_conn().await?;
    let mut snapshot = TxOpts::default();
    snapshot
        .with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(snapshot).await?;
    let mut filter = filter.clone();
    if let Some(words) = &filter.text {
        filter.common = match search::choose_plan(&mut tx, words, search::Sizes::DEFAULT).await? {
            search::Plan::Fulltext { common } => common,
            search::Plan::Newest { .. } => ((1u32 << words.as_slice().len()) - 1) as u16,
        };
    }
    let filter = &filter;
    let mut rows: Vec<mysql_async::Row> = Vec::new();
    for status in Status::ALL {
        if filter.status.is_some_and(|s| s != status) {
            continue;
        }
        let after = match &filter.after {
            Some(cursor) if cursor.status.rank() > status.rank() => continue,
            Some(cursor) if cursor.status == status => Some((cursor.position, cursor.id)),
            _ => None,
        };
        // One more than the page: whether there is a next page.
        let wanted = filter.limit + 1 - rows.len();
        let statement = column_statement(filter, status, after, wanted);
        let mut more: Vec<mysql_async::Row> = tx.exec(statement.sql, statement.params).await?;
        rows.append(&mut more);
        if rows.len() > filter.limit {
            break;
        }
    }
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
}
