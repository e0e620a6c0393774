//! The `notifications` table (V14): the fold of the notification events
//! into rows, the applier's check for a due reminder that rang already,
//! and the api's reads.
//!
//! Every writer (the applier, catch-up, restore, rebuild) turns the events
//! it writes into SQL here, in seq order: an added notification is an
//! insert, a read mark an update of the user's rows it covers. So the
//! table is a function of the events wherever it was written.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::*;
use mysql_async::{Row, Value};
use serde::Serialize;

use super::rows::{column, parsed, timestamp_from};
use super::sql::Sql;
use super::DbError;
use crate::accounts::Actor;
use crate::task::{
    BoardId, CommentId, Event, NotificationChange, NotificationKind, ReadMark, TaskId,
};
use crate::time::{Date, Timestamp};

/// A notification as the api shows it and the table holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    /// The seq of the event that added it.
    pub id: u64,
    pub user_id: String,
    pub kind: NotificationKind,
    pub board_id: BoardId,
    pub task_id: TaskId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<Date>,
    /// Who mentioned the user (for a reminder: the sweep).
    pub actor: Actor,
    pub excerpt: String,
    pub at: Timestamp,
    pub read: bool,
    /// The card's title now (`None`: the card is gone); only the api's
    /// reads fill it in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_title: Option<String>,
}

impl Notification {
    /// The notification an event adds, if it adds one.
    pub fn of(event: &Event) -> Option<Notification> {
        let Some(NotificationChange::Added(notice)) = &event.notification else {
            return None;
        };
        Some(Notification {
            id: event.seq,
            user_id: notice.user_id.clone(),
            kind: notice.kind,
            board_id: notice.board_id,
            task_id: notice.task_id,
            comment_id: notice.comment_id,
            due_date: notice.due_date,
            actor: event.actor.clone(),
            excerpt: notice.excerpt.clone(),
            at: event.at,
            read: false,
            task_title: None,
        })
    }
}

/// The SQL for the notification events among `events`, in their order.
pub fn write<'a>(sql: &mut Sql, events: impl IntoIterator<Item = &'a Event>) {
    for event in events {
        match &event.notification {
            Some(NotificationChange::Added(_)) => {
                if let Some(n) = Notification::of(event) {
                    insert(sql, &n);
                }
            }
            Some(NotificationChange::Read(mark)) => {
                sql.end()
                    .push("UPDATE notifications SET is_read = 1 WHERE user_id = ")
                    .text(&mark.user_id)
                    .push(" AND is_read = 0 AND (id <= ")
                    .uint(mark.upto.unwrap_or(0))
                    .push(" OR id IN ")
                    .list(mark.ids.iter().chain(std::iter::once(&0)), |s, id| {
                        s.uint(*id);
                    })
                    .push(")")
                    .end();
            }
            None => {}
        }
    }
}

/// The row of `n` (with its read flag).
pub fn insert(sql: &mut Sql, n: &Notification) {
    sql.end()
        .push(
            "INSERT INTO notifications (id, user_id, kind, board_id, task_id, \
             comment_id, due_date, actor_id, actor_name, excerpt, at, is_read) VALUES (",
        )
        .uint(n.id)
        .push(", ")
        .text(&n.user_id)
        .push(", ")
        .ascii(n.kind.as_str())
        .push(", ")
        .ascii(&n.board_id.to_string())
        .push(", ")
        .ascii(&n.task_id.to_string())
        .push(", ");
    match n.comment_id {
        Some(id) => sql.ascii(&id.to_string()),
        None => sql.push("NULL"),
    };
    sql.push(", ")
        .date(n.due_date)
        .push(", ")
        .text(&n.actor.id)
        .push(", ")
        .text(&n.actor.name)
        .push(", ")
        .text(&n.excerpt)
        .push(", ")
        .timestamp(n.at)
        .push(if n.read { ", 1)" } else { ", 0)" })
        .end();
}

/// The notifications `events` (from the first, in seq order) leave, by id.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> BTreeMap<u64, Notification> {
    let mut rows = BTreeMap::new();
    for event in events {
        match &event.notification {
            Some(NotificationChange::Added(_)) => {
                if let Some(n) = Notification::of(event) {
                    rows.insert(n.id, n);
                }
            }
            Some(NotificationChange::Read(mark)) => mark_read(&mut rows, mark),
            None => {}
        }
    }
    rows
}

fn mark_read(rows: &mut BTreeMap<u64, Notification>, mark: &ReadMark) {
    for n in rows.values_mut() {
        if mark.covers(&n.user_id, n.id) {
            n.read = true;
        }
    }
}

const SELECTED: &str = "n.id, n.user_id, n.kind, n.board_id, n.task_id, n.comment_id, \
     DATE_FORMAT(n.due_date, '%Y-%m-%d'), n.actor_id, n.actor_name, n.excerpt, n.at, n.is_read";

fn from_row(mut row: Row, with_title: bool) -> Result<Notification, DbError> {
    let row = &mut row;
    let kind: String = column(row, 2, "kind")?;
    let board: String = column(row, 3, "board_id")?;
    let task: String = column(row, 4, "task_id")?;
    let comment: Option<String> = column(row, 5, "comment_id")?;
    let due: Option<String> = column(row, 6, "due_date")?;
    let at: Value = column(row, 10, "at")?;
    let read: u8 = column(row, 11, "is_read")?;
    Ok(Notification {
        id: column(row, 0, "id")?,
        user_id: column(row, 1, "user_id")?,
        kind: match kind.as_str() {
            "mention" => NotificationKind::Mention,
            "due" => NotificationKind::Due,
            other => return Err(DbError::Corrupt(format!("notifications.kind `{other}`"))),
        },
        board_id: parsed(&board, "notifications.board_id")?,
        task_id: parsed(&task, "notifications.task_id")?,
        comment_id: comment
            .map(|c| parsed(&c, "notifications.comment_id"))
            .transpose()?,
        due_date: due
            .map(|d| {
                Date::parse(&d)
                    .ok_or_else(|| DbError::Corrupt(format!("notifications.due_date `{d}`")))
            })
            .transpose()?,
        actor: Actor {
            id: column(row, 7, "actor_id")?,
            name: column(row, 8, "actor_name")?,
        },
        excerpt: column(row, 9, "excerpt")?,
        at: timestamp_from(at, "at")?,
        read: read != 0,
        task_title: if with_title {
            column(row, 12, "title")?
        } else {
            None
        },
    })
}

/// Up to `limit` of `user`'s notifications with ids below `before`,
/// newest first, with their card's title; and whether more follow.
pub async fn page(
    conn: &mut impl Queryable,
    user: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<Notification>, bool), DbError> {
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT {SELECTED}, t.title FROM notifications n \
                 FORCE INDEX (notifications_user) LEFT JOIN tasks t ON t.id = n.task_id \
                 WHERE n.user_id = ? AND n.id < ? ORDER BY n.id DESC LIMIT ?"
            ),
            (user, before.unwrap_or(u64::MAX), limit as u64 + 1),
        )
        .await?;
    let mut page = rows
        .into_iter()
        .map(|r| from_row(r, true))
        .collect::<Result<Vec<_>, _>>()?;
    let more = page.len() > limit;
    page.truncate(limit);
    Ok((page, more))
}

/// How many of `user`'s notifications are unread.
pub async fn unread(conn: &mut impl Queryable, user: &str) -> Result<u64, DbError> {
    let count: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM notifications FORCE INDEX (notifications_user) \
             WHERE user_id = ? AND is_read = 0",
            (user,),
        )
        .await?;
    Ok(count.unwrap_or(0))
}

/// Every notification, by id (rebuild, check).
pub async fn all(conn: &mut impl Queryable) -> Result<BTreeMap<u64, Notification>, DbError> {
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT {SELECTED} FROM notifications n ORDER BY n.id"
        ))
        .await?;
    rows.into_iter()
        .map(|r| from_row(r, false).map(|n| (n.id, n)))
        .collect()
}

/// Which of the (card, due date) pairs `asked` have rung already.
pub async fn reminded(
    conn: &mut impl Queryable,
    asked: &BTreeSet<(TaskId, Date)>,
) -> Result<BTreeSet<(TaskId, Date)>, DbError> {
    let mut found = BTreeSet::new();
    for (task, due) in asked {
        let hit: Option<u64> = conn
            .exec_first(
                "SELECT id FROM notifications FORCE INDEX (notifications_due) \
                 WHERE task_id = ? AND due_date = ? AND kind = 'due' LIMIT 1",
                (task.to_string(), super::rows::date_value(Some(*due))),
            )
            .await?;
        if hit.is_some() {
            found.insert((*task, *due));
        }
    }
    Ok(found)
}

/// The cards due from `?` to `?` with an assignee and no reminder for that
/// date, at most `?`: a range of `tasks_due` (V16), not the whole table.
pub const DUE_UNREMINDED: &str =
    "SELECT t.id, DATE_FORMAT(t.due_date, '%Y-%m-%d'), t.assignee FROM tasks t \
     WHERE t.due_date BETWEEN ? AND ? AND t.archived = 0 \
     AND t.assignee IS NOT NULL AND t.assignee <> '' \
     AND NOT EXISTS (SELECT 1 FROM notifications n \
       WHERE n.task_id = t.id AND n.due_date = t.due_date AND n.kind = 'due') \
     ORDER BY t.due_date, t.id LIMIT ?";

/// The cards whose due date is in `[from, to]`, with an assignee and no
/// reminder for that date yet, at most `limit`, with their assignee: what
/// the sweep proposes.
pub async fn due_unreminded(
    conn: &mut impl Queryable,
    from: Date,
    to: Date,
    limit: usize,
) -> Result<Vec<(TaskId, Date, String)>, DbError> {
    let rows: Vec<(String, String, String)> = conn
        .exec(
            DUE_UNREMINDED,
            (
                super::rows::date_value(Some(from)),
                super::rows::date_value(Some(to)),
                limit as u64,
            ),
        )
        .await?;
    rows.into_iter()
        .map(|(id, due, assignee)| {
            let due = Date::parse(&due)
                .ok_or_else(|| DbError::Corrupt(format!("tasks.due_date `{due}`")))?;
            Ok((parsed(&id, "tasks.id")?, due, assignee))
        })
        .collect()
}
