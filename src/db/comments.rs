//! The `comments` table (V12): rows to comments and back, the applier's
//! load of the comments a batch names, and the api's reads.
//!
//! A row has no board: a comment's board is its task's, read by a join
//! (`t.board_id`), so a card moved to another board takes its comments
//! along without a write. The thread is read oldest first, and a board
//! page's counts are taken, through `comments_task (task_id, created_at,
//! id)`.

use std::collections::HashMap;

use mysql_async::prelude::*;
use mysql_async::{Row, Value};

use super::rows::{column, parsed, timestamp_from, Table};
use super::sql::Sql;
use super::DbError;
use crate::accounts::Actor;
use crate::task::{BoardId, Comment, CommentId, TaskId};
use crate::time::Timestamp;

pub const COMMENT: Table = Table {
    name: "comments",
    columns: "id, task_id, author_id, author_name, body, version, created_at, updated_at",
};

/// The columns a comment is read with: the row's, then its task's board.
const SELECTED: &str = "c.id, c.task_id, c.author_id, c.author_name, c.body, c.version, \
                        c.created_at, c.updated_at, t.board_id";

/// A row selected as [`SELECTED`].
pub fn comment_from_row(mut row: Row) -> Result<Comment, DbError> {
    let row = &mut row;
    let at = |row: &mut Row, name: &str| -> Result<Value, DbError> {
        column(row, COMMENT.at(name), name)
    };
    let id: String = column(row, COMMENT.at("id"), "id")?;
    let task_id: String = column(row, COMMENT.at("task_id"), "task_id")?;
    let board: String = column(row, COMMENT.count(), "board_id")?;
    Ok(Comment {
        id: parsed::<CommentId>(&id, "comments.id")?,
        task_id: parsed::<TaskId>(&task_id, "comments.task_id")?,
        board_id: parsed::<BoardId>(&board, "tasks.board_id")?,
        author: Actor {
            id: column(row, COMMENT.at("author_id"), "author_id")?,
            name: column(row, COMMENT.at("author_name"), "author_name")?,
        },
        body: column(row, COMMENT.at("body"), "body")?,
        version: column(row, COMMENT.at("version"), "version")?,
        created_at: timestamp_from(at(row, "created_at")?, "created_at")?,
        updated_at: timestamp_from(at(row, "updated_at")?, "updated_at")?,
    })
}

/// A row as a `(…)` literal, in [`COMMENT`]'s column order.
pub fn write_comment(sql: &mut Sql, comment: &Comment) {
    sql.push("(")
        .ascii(&comment.id.to_string())
        .push(", ")
        .ascii(&comment.task_id.to_string())
        .push(", ")
        .text(&comment.author.id)
        .push(", ")
        .text(&comment.author.name)
        .push(", ")
        .text(&comment.body)
        .push(", ")
        .uint(comment.version)
        .push(", ")
        .timestamp(comment.created_at)
        .push(", ")
        .timestamp(comment.updated_at)
        .push(")");
}

/// What an upsert changes when the id exists (an edit).
pub const COMMENT_UPSERT: &str = " ON DUPLICATE KEY UPDATE body = VALUES(body), \
     version = VALUES(version), updated_at = VALUES(updated_at)";

/// Upserts `upserts` and deletes `deletes`, multi-row statements cut at
/// `limit` bytes.
pub fn write(sql: &mut Sql, limit: usize, upserts: &[Comment], deletes: &[CommentId]) {
    if !deletes.is_empty() {
        sql.end()
            .push("DELETE FROM comments WHERE id IN ")
            .list(deletes, |s, id| {
                s.ascii(&id.to_string());
            })
            .end();
    }
    sql.rows(
        limit,
        &["INSERT INTO comments (", COMMENT.columns, ") VALUES "],
        COMMENT_UPSERT,
        upserts,
        write_comment,
    );
}

/// Deletes the comments of deleted tasks (they go with them).
pub fn delete_of_tasks(sql: &mut Sql, tasks: &[String]) {
    if tasks.is_empty() {
        return;
    }
    sql.end()
        .push("DELETE FROM comments WHERE task_id IN ")
        .list(tasks, |s, id| {
            s.ascii(id);
        })
        .end();
}

/// The comments with these ids (`values`: the ids, padded by the caller).
pub async fn by_ids(
    conn: &mut impl Queryable,
    values: Vec<Value>,
) -> Result<Vec<Comment>, DbError> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let mut select = Sql::new();
    select
        .push("SELECT ")
        .push(SELECTED)
        .push(" FROM comments c JOIN tasks t ON t.id = c.task_id WHERE c.id IN (")
        .marks(values.len())
        .push(")");
    let rows: Vec<Row> = conn.exec(select.into_string(), values).await?;
    rows.into_iter().map(comment_from_row).collect()
}

/// Where a page of a thread ended: the last comment's time and id.
pub type After = (Timestamp, CommentId);

/// Up to `limit` comments of `task` after `after`, oldest first, and
/// whether more follow.
pub async fn thread(
    conn: &mut impl Queryable,
    task: TaskId,
    after: Option<After>,
    limit: usize,
) -> Result<(Vec<Comment>, bool), DbError> {
    let mut select = Sql::new();
    let mut params: Vec<Value> = vec![task.to_string().into()];
    select.push("SELECT ").push(SELECTED).push(
        " FROM comments c FORCE INDEX (comments_task) JOIN tasks t ON t.id = c.task_id \
             WHERE c.task_id = ?",
    );
    if let Some((at, id)) = after {
        select.push(" AND (c.created_at > ? OR (c.created_at = ? AND c.id > ?))");
        params.extend([
            super::rows::timestamp_value(at),
            super::rows::timestamp_value(at),
            id.to_string().into(),
        ]);
    }
    select.push(" ORDER BY c.created_at, c.id LIMIT ?");
    params.push((limit as u64 + 1).into());
    let rows: Vec<Row> = conn.exec(select.into_string(), params).await?;
    let mut comments = rows
        .into_iter()
        .map(comment_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = comments.len() > limit;
    comments.truncate(limit);
    Ok((comments, more))
}

/// How many comments each of `tasks` has (absent: none), in one grouped
/// read of `comments_task`.
pub async fn counts(
    conn: &mut impl Queryable,
    tasks: &[TaskId],
) -> Result<HashMap<TaskId, u64>, DbError> {
    if tasks.is_empty() {
        return Ok(HashMap::new());
    }
    let mut select = Sql::new();
    select
        .push(
            "SELECT task_id, COUNT(*) FROM comments FORCE INDEX (comments_task) WHERE task_id IN (",
        )
        .marks(tasks.len())
        .push(") GROUP BY task_id");
    let params: Vec<Value> = tasks.iter().map(|t| t.to_string().into()).collect();
    let rows: Vec<(String, u64)> = conn.exec(select.into_string(), params).await?;
    rows.into_iter()
        .map(|(id, n)| Ok((parsed::<TaskId>(&id, "comments.task_id")?, n)))
        .collect()
}

/// Every comment, by id, with the board its task is on (rebuild, check).
/// A comment whose task is gone (which the applier never leaves) reads
/// as on the default board, and the check reports it.
pub async fn all(conn: &mut impl Queryable) -> Result<Vec<Comment>, DbError> {
    let rows: Vec<Row> = conn
        .query(
            "SELECT c.id, c.task_id, c.author_id, c.author_name, c.body, c.version, \
             c.created_at, c.updated_at, \
             COALESCE(t.board_id, '00000000-0000-0000-0000-000000000001') \
             FROM comments c LEFT JOIN tasks t ON t.id = c.task_id ORDER BY c.id",
        )
        .await?;
    rows.into_iter().map(comment_from_row).collect()
}
