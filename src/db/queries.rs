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
    /// ([`search::Planner`]): checked by regular expression on the
    /// rows read, not through the FULLTEXT index, which would read every
    /// task that has them. With every word common, the list is read in
    /// board order through the filters' index, as without `text`. Set by
    /// [`tasks`].
    pub common: u16,
    /// The order the common words are checked in, by index, the rarest
    /// first ([`search::check_order`]; empty: the query's). Set by
    /// [`tasks`].
    pub checks: Vec<usize>,
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

/// The statement that reads up to `limit` cards of `columns` (live, or
/// `archived`) in board order, after `after` (a position and id), under
/// `filter`'s assignee, label, priority and text (its status, cursor and
/// limit are the caller's business: the status chose the columns).
///
/// Each shape reads one index in column order from the cursor on, so a
/// page costs about its own size whatever the table holds, other boards
/// included (no OFFSET, and no ENUM range, which MariaDB would scan from
/// the first value):
/// - label (with any others): `task_labels_column_assignee`,
///   `_column_priority` or `_column`, each (label, column, archived,
///   [assignee | priority,] position, task_id), joined to `tasks` by
///   primary key;
/// - assignee (with or without priority): `tasks_column_assignee`;
/// - priority: `tasks_column_priority`; none: `tasks_column` (column,
///   archived, position, id).
///
/// With assignee and priority both, the rows of the assignee are checked
/// for the priority one by one (about four read for one returned).
///
/// Several columns (the default board's list, when it has more than one
/// column of a status) are one such read each, `UNION ALL`, merged by
/// position: at most `limit` rows from each.
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
    columns: &[ColumnId],
    archived: bool,
    after: Option<(f64, TaskId)>,
    limit: usize,
) -> Statement {
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    if indexed_words(filter).is_some() || columns.len() <= 1 {
        one_read(
            &mut sql,
            &mut params,
            filter,
            columns,
            archived,
            after,
            limit,
        );
    } else {
        for (i, column) in columns.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { " UNION ALL (" });
            let one = std::slice::from_ref(column);
            one_read(&mut sql, &mut params, filter, one, archived, after, limit);
            sql.push(")");
        }
        sql.push(" ORDER BY position, id LIMIT ?");
        params.push((limit as u64).into());
    }
    Statement {
        sql: sql.into_string(),
        params,
    }
}

/// The boolean-mode query of `filter`'s words for the FULLTEXT index: those
/// not common (`None`: no text, or every word common).
fn indexed_words(filter: &TaskFilter) -> Option<String> {
    filter
        .text
        .as_ref()
        .map(|words| words.boolean_without(filter.common))
        .filter(|query| !query.is_empty())
}

/// One read of [`column_statement`]: of one column, or with indexed words
/// of all `columns` at once (an empty list reads nothing).
fn one_read(
    sql: &mut Sql,
    params: &mut Vec<Value>,
    filter: &TaskFilter,
    columns: &[ColumnId],
    archived: bool,
    after: Option<(f64, TaskId)>,
    limit: usize,
) {
    let indexed = indexed_words(filter);
    let by_label = filter.label.is_some() && indexed.is_none();
    // By label, `task_labels` holds the column order and the filter columns.
    let (table, id_column) = if by_label {
        sql.push("SELECT ")
            .push(TASK_COLUMNS_T)
            .push(" FROM task_labels l FORCE INDEX (");
        sql.push(if filter.assignee.is_some() {
            "task_labels_column_assignee"
        } else if filter.priority.is_some() {
            "task_labels_column_priority"
        } else {
            "task_labels_column"
        });
        sql.push(") STRAIGHT_JOIN tasks t ON t.id = l.task_id WHERE l.label = ?");
        params.push(filter.label.clone().into());
        ("l.", "l.task_id")
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
        ("t.", "t.id")
    } else {
        sql.push("SELECT ")
            .push(TASK_COLUMNS_T)
            .push(" FROM tasks t FORCE INDEX (");
        sql.push(if filter.assignee.is_some() {
            "tasks_column_assignee"
        } else if filter.priority.is_some() {
            "tasks_column_priority"
        } else {
            "tasks_column"
        });
        sql.push(") WHERE 1 = 1");
        ("t.", "t.id")
    };
    match columns {
        [one] => {
            sql.push(" AND ").push(table).push("column_id = ?");
            params.push(one.to_string().into());
        }
        [] => {
            sql.push(" AND 1 = 0");
        }
        many => {
            sql.push(" AND ")
                .push(table)
                .push("column_id IN (")
                .marks(many.len())
                .push(")");
            params.extend(many.iter().map(|c| c.to_string().into()));
        }
    }
    sql.push(" AND ").push(table).push("archived = ?");
    params.push(u64::from(archived).into());
    if let Some(assignee) = &filter.assignee {
        sql.push(" AND ").push(table).push("assignee = ?");
        params.push(assignee.clone().into());
    }
    if let Some(priority) = filter.priority {
        sql.push(" AND ").push(table).push("priority = ?");
        params.push(priority.as_str().into());
    }
    if let Some(words) = &filter.text {
        let words = words.as_slice();
        for i in search::check_order(&filter.checks, words.len()) {
            if filter.common & (1 << i) != 0 {
                let pattern = search::pattern(&words[i]);
                sql.push(" AND (t.title REGEXP ? OR t.description REGEXP ?)");
                params.extend([pattern.clone().into(), pattern.into()]);
            }
        }
    }
    if let Some((position, id)) = after {
        sql.push(" AND (").push(table).push("position > ? OR (");
        sql.push(table)
            .push("position = ? AND ")
            .push(id_column)
            .push(" > ?))");
        params.extend([position.into(), position.into(), id.to_string().into()]);
    }
    sql.push(" ORDER BY ").push(table).push("position, ");
    sql.push(id_column).push(" LIMIT ?");
    params.push((limit as u64).into());
}

/// [`TASK_COLUMNS`] of `tasks t`.
const TASK_COLUMNS_T: &str = "t.id, t.title, t.description, t.status, t.position, t.priority, \
     t.assignee, t.labels, t.due_date, t.version, t.created_at, t.updated_at, t.board_id, \
     t.column_id, t.archived";

/// A page (`filter.limit` cards) of one board column's cards under `filter` ([`column_statement`]),
/// or, `column` `None`, of the board's archived cards (unfiltered: one read
/// of `tasks_board_archive`), in position order after `after`.
pub async fn column_page(
    pool: &Pool,
    planner: &search::Planner,
    board: BoardId,
    column: Option<ColumnId>,
    archived: bool,
    filter: &TaskFilter,
    after: Option<(f64, TaskId)>,
) -> Result<ColumnPage, DbError> {
    let limit = filter.limit;
    let mut conn = pool.get_conn().await?;
    let mut snapshot = TxOpts::default();
    snapshot
        .with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(snapshot).await?;
    let filter = &planned(&mut tx, planner, filter).await?;
    let (sql, params) = match column {
        Some(column) => {
            let statement = column_statement(filter, &[column], archived, after, limit + 1);
            (statement.sql, statement.params)
        }
        None => {
            let mut sql = Sql::new();
            let mut params: Vec<Value> = Vec::new();
            sql.push("SELECT ").push(TASK_COLUMNS_T).push(
                " FROM tasks t FORCE INDEX (tasks_board_archive) WHERE t.board_id = ? AND t.archived = ?",
            );
            params.push(board.to_string().into());
            params.push(u64::from(archived).into());
            if let Some((position, id)) = after {
                sql.push(" AND (t.position > ? OR (t.position = ? AND t.id > ?))");
                params.extend([position.into(), position.into(), id.to_string().into()]);
            }
            sql.push(" ORDER BY t.position, t.id LIMIT ?");
            params.push((limit as u64 + 1).into());
            (sql.into_string(), params)
        }
    };
    let rows: Vec<mysql_async::Row> = tx.exec(sql, params).await?;
    let mut tasks = rows
        .into_iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = tasks.len() > limit;
    tasks.truncate(limit);
    // In the same snapshot, so the counts are those at `last_seq`.
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
    let comment_counts = super::comments::counts(&mut tx, &ids).await?;
    let checklist_progress = super::checklists::progress(&mut tx, &ids).await?;
    let last_seq = super::applied_state(&mut tx).await?.last_seq;
    tx.commit().await?;
    Ok(ColumnPage {
        tasks,
        more,
        last_seq,
        comment_counts,
        checklist_progress,
    })
}

/// A page of a column's cards ([`column_page`]).
#[derive(Debug)]
pub struct ColumnPage {
    pub tasks: Vec<Task>,
    /// Whether more cards follow the page.
    pub more: bool,
    /// The feed's position when the page was read.
    pub last_seq: u64,
    /// How many comments each card of the page has (absent: none).
    pub comment_counts: std::collections::HashMap<TaskId, u64>,
    /// Ticked and all checklist items of each card (absent: no checklist).
    pub checklist_progress: std::collections::HashMap<TaskId, (u64, u64)>,
}

/// `filter` with its common words marked (`search::Planner`): those go
/// to a regular expression on the rows read, the others to the FULLTEXT
/// index.
async fn planned(
    tx: &mut mysql_async::Transaction<'_>,
    planner: &search::Planner,
    filter: &TaskFilter,
) -> Result<TaskFilter, DbError> {
    let mut filter = filter.clone();
    if let Some(words) = &filter.text {
        filter.common = planner.common(tx, words).await?;
        filter.checks = planner.rarest_first(words);
    }
    Ok(filter)
}

/// A page of tasks in board order, read in one consistent snapshot with the
/// last seq it reflects: a status at a time (one indexed statement each,
/// see [`column_statement`], of `columns(status)`: the default board's
/// columns of that status), from the cursor's status on.
pub async fn tasks(
    pool: &Pool,
    planner: &search::Planner,
    filter: &TaskFilter,
    columns: impl Fn(Status) -> Vec<ColumnId>,
) -> Result<TaskPage, DbError> {
    let mut conn = pool.get_conn().await?;
    let mut snapshot = TxOpts::default();
    snapshot
        .with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(snapshot).await?;
    let filter = &planned(&mut tx, planner, filter).await?;
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
        let statement = column_statement(filter, &columns(status), false, after, wanted);
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

/// A board's activity: its events newest first, those of one actor only
/// when `actor` is given, older than `before` (a seq), at most `limit`, and
/// whether there are more. One range of `task_events_board` or
/// `task_events_board_actor` (V11), whatever the history of other boards.
pub async fn board_activity(
    pool: &Pool,
    board: BoardId,
    actor: Option<&str>,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<Event>, bool), DbError> {
    let mut sql = Sql::new();
    sql.push("SELECT ")
        .push(EVENT_COLUMNS)
        .push(" FROM task_events WHERE board_id = ?");
    let mut params: Vec<Value> = vec![board.to_string().into()];
    if let Some(actor) = actor {
        sql.push(" AND actor_id = ?");
        params.push(actor.into());
    }
    if let Some(before) = before {
        sql.push(" AND seq < ?");
        params.push(before.into());
    }
    sql.push(" ORDER BY seq DESC LIMIT ?");
    params.push((limit as u64 + 1).into());
    let mut conn = pool.get_conn().await?;
    let rows: Vec<mysql_async::Row> = conn.exec(sql.into_string(), params).await?;
    let mut events = rows
        .into_iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = events.len() > limit;
    events.truncate(limit);
    Ok((events, more))
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
