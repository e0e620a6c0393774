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
    let range = Range {
        after,
        through: None,
    };
    read_statement(filter, columns, archived, range, Select::Rows(limit))
}

/// Where in board order a read starts (after this card) and ends (with
/// this one).
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub after: Option<(f64, TaskId)>,
    pub through: Option<(f64, TaskId)>,
}

/// What a read answers: up to this many cards, or the board-order key
/// (position, id) of the n-th card alone, read from the filters' index
/// without the rows (a filter without text only).
#[derive(Clone, Copy, Debug)]
pub enum Select {
    Rows(usize),
    KeyAt(usize),
}

/// [`column_statement`] within `range`, answering `select`.
pub fn read_statement(
    filter: &TaskFilter,
    columns: &[ColumnId],
    archived: bool,
    range: Range,
    select: Select,
) -> Statement {
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    // `take` cards after skipping `skip`.
    let (keys, take, skip) = match select {
        Select::Rows(limit) => (false, limit, 0),
        Select::KeyAt(n) => (true, 1, n.max(1) - 1),
    };
    if indexed_words(filter).is_some() || columns.len() <= 1 {
        let read = Read {
            keys,
            limit: take,
            offset: skip,
        };
        one_read(
            &mut sql,
            &mut params,
            filter,
            columns,
            archived,
            range,
            read,
        );
    } else {
        // Each column's first cards, then the first of all of them.
        let read = Read {
            keys,
            limit: take + skip,
            offset: 0,
        };
        for (i, column) in columns.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { " UNION ALL (" });
            let one = std::slice::from_ref(column);
            one_read(&mut sql, &mut params, filter, one, archived, range, read);
            sql.push(")");
        }
        sql.push(" ORDER BY position, id LIMIT ? OFFSET ?");
        params.push((take as u64).into());
        params.push((skip as u64).into());
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

/// How one read of [`read_statement`] ends: `limit` cards (their rows,
/// or with `keys` only their (position, id), read from the index) after
/// skipping `offset`.
#[derive(Clone, Copy)]
struct Read {
    keys: bool,
    limit: usize,
    offset: usize,
}

/// One read of [`read_statement`]: of one column, or with indexed words
/// of all `columns` at once (an empty list reads nothing).
fn one_read(
    sql: &mut Sql,
    params: &mut Vec<Value>,
    filter: &TaskFilter,
    columns: &[ColumnId],
    archived: bool,
    range: Range,
    read: Read,
) {
    let indexed = indexed_words(filter);
    let by_label = filter.label.is_some() && indexed.is_none();
    // Keys come from the filters' index alone: no row, so no text.
    debug_assert!(!read.keys || filter.text.is_none());
    // By label, `task_labels` holds the column order and the filter columns.
    let (table, id_column) = if by_label {
        sql.push("SELECT ").push(if read.keys {
            "l.position AS position, l.task_id AS id"
        } else {
            TASK_COLUMNS_T
        });
        sql.push(" FROM task_labels l FORCE INDEX (");
        sql.push(if filter.assignee.is_some() {
            "task_labels_column_assignee"
        } else if filter.priority.is_some() {
            "task_labels_column_priority"
        } else {
            "task_labels_column"
        });
        sql.push(")");
        if !read.keys {
            sql.push(" STRAIGHT_JOIN tasks t ON t.id = l.task_id");
        }
        sql.push(" WHERE l.label = ?");
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
        sql.push("SELECT ").push(if read.keys {
            "t.position AS position, t.id AS id"
        } else {
            TASK_COLUMNS_T
        });
        sql.push(" FROM tasks t FORCE INDEX (");
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
    // After `after`: (position, id) > it; through `through`: <= it.
    let bounds = [(range.after, " > ", " > "), (range.through, " < ", " <= ")];
    for (key, position_op, id_op) in bounds {
        let Some((position, id)) = key else { continue };
        sql.push(" AND (")
            .push(table)
            .push("position")
            .push(position_op);
        sql.push("? OR (").push(table).push("position = ? AND ");
        sql.push(id_column).push(id_op).push("?))");
        params.extend([position.into(), position.into(), id.to_string().into()]);
    }
    sql.push(" ORDER BY ").push(table).push("position, ");
    sql.push(id_column).push(" LIMIT ?");
    params.push((read.limit as u64).into());
    if read.offset > 0 {
        sql.push(" OFFSET ?");
        params.push((read.offset as u64).into());
    }
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
    column: Option<(ColumnId, u64)>,
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
    let rows: Vec<mysql_async::Row> = match column {
        Some((column, cards)) => {
            let columns = Columns {
                ids: &[column],
                cards,
                archived,
            };
            let rarest = rarest(planner, filter);
            let budget = ScanBudget::DEFAULT;
            read_cards(&mut tx, filter, columns, after, limit + 1, budget, rarest).await?
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
            tx.exec(sql.into_string(), params).await?
        }
    };
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

/// How far a read filtered by common words goes in board order before it
/// weighs the FULLTEXT index instead ([`read_cards`]).
#[derive(Clone, Copy, Debug)]
pub struct ScanBudget {
    /// The cards read in board order first.
    pub cards: usize,
    /// What a match the FULLTEXT index finds costs, in cards read in board
    /// order and checked.
    pub match_cost: u64,
}

impl ScanBudget {
    /// On 1.4 M tasks: about 2.5 µs a match found, fetched and sorted,
    /// against 1.4 µs a card read and checked; 10,000 cards about 10 ms.
    pub const DEFAULT: ScanBudget = ScanBudget {
        cards: 10_000,
        match_cost: 2,
    };
}

/// The columns a read is of, and how many cards they hold (live, or
/// archived with `archived`) as the node counts them.
#[derive(Clone, Copy)]
pub struct Columns<'a> {
    pub ids: &'a [ColumnId],
    pub cards: u64,
    pub archived: bool,
}

/// Up to `limit` cards of `columns` under `filter`, in board order after
/// `after` ([`column_statement`]).
///
/// With every word of the text common, cards are read in board order and
/// checked for the words: about the page's size divided by how common the
/// words are in the column. A column whose first cards lack them (cards
/// with other words, then the ones searched for) would be read whole; a
/// column of 500,000 cards took 0.7 s. So when the columns hold more than
/// `budget.cards` cards, those are read first; if they hold no page, and
/// the `rarest` word (its index in the text and about how many tasks have
/// it, as the planner measured: [`search::Planner::rarest`]) is in fewer
/// tasks than the cards left divided by `budget.match_cost`, the page
/// comes from the FULLTEXT index instead (that word's matches in the
/// columns, sorted; 25–150 ms for a word in 8,000–58,000 tasks, against
/// 0.7 s); else reading goes on. The answer is the same cards either way.
pub async fn read_cards(
    tx: &mut mysql_async::Transaction<'_>,
    filter: &TaskFilter,
    columns: Columns<'_>,
    after: Option<(f64, TaskId)>,
    limit: usize,
    budget: ScanBudget,
    rarest: Option<(usize, u64)>,
) -> Result<Vec<mysql_async::Row>, DbError> {
    let Columns {
        ids,
        cards,
        archived,
    } = columns;
    let read = |filter: &TaskFilter, range: Range, limit: usize| {
        read_statement(filter, ids, archived, range, Select::Rows(limit))
    };
    let whole = Range {
        after,
        through: None,
    };
    let scan = filter.text.is_some() && indexed_words(filter).is_none();
    if !scan || cards <= budget.cards as u64 {
        let statement = read(filter, whole, limit);
        return Ok(tx.exec(statement.sql, statement.params).await?);
    }
    let plain = TaskFilter {
        text: None,
        common: 0,
        checks: Vec::new(),
        ..filter.clone()
    };
    let key = read_statement(&plain, ids, archived, whole, Select::KeyAt(budget.cards));
    let last: Option<(f64, String)> = tx.exec_first(key.sql, key.params).await?;
    let Some((position, id)) = last else {
        // Fewer cards than the budget after `after`.
        let statement = read(filter, whole, limit);
        return Ok(tx.exec(statement.sql, statement.params).await?);
    };
    let last = (
        position,
        id.parse()
            .map_err(|_| DbError::Corrupt(format!("tasks.id `{id}`")))?,
    );
    let first = Range {
        after,
        through: Some(last),
    };
    let statement = read(filter, first, limit);
    let mut rows: Vec<mysql_async::Row> = tx.exec(statement.sql, statement.params).await?;
    if rows.len() >= limit {
        return Ok(rows);
    }
    let left = cards.saturating_sub(budget.cards as u64);
    if let Some((rarest, matches)) = rarest {
        if matches.saturating_mul(budget.match_cost) < left {
            let indexed = TaskFilter {
                common: filter.common & !(1 << rarest),
                ..filter.clone()
            };
            let statement = read(&indexed, whole, limit);
            return Ok(tx.exec(statement.sql, statement.params).await?);
        }
    }
    let rest = Range {
        after: Some(last),
        through: None,
    };
    let statement = read(filter, rest, limit - rows.len());
    rows.extend(
        tx.exec::<mysql_async::Row, _, _>(statement.sql, statement.params)
            .await?,
    );
    Ok(rows)
}

/// The rarest word of `filter`'s text as `planner` remembers it.
fn rarest(planner: &search::Planner, filter: &TaskFilter) -> Option<(usize, u64)> {
    filter.text.as_ref().and_then(|words| planner.rarest(words))
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
    columns: impl Fn(Status) -> (Vec<ColumnId>, u64),
) -> Result<TaskPage, DbError> {
    let mut conn = pool.get_conn().await?;
    let mut snapshot = TxOpts::default();
    snapshot
        .with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(snapshot).await?;
    let filter = &planned(&mut tx, planner, filter).await?;
    let (budget, rarest) = (ScanBudget::DEFAULT, rarest(planner, filter));
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
        let (ids, cards) = columns(status);
        let columns = Columns {
            ids: &ids,
            cards,
            archived: false,
        };
        let more = read_cards(&mut tx, filter, columns, after, wanted, budget, rarest).await?;
        rows.extend(more);
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
