//! The catalog's tables (`boards`, `kanban_columns`, `board_members`, V8):
//! read whole at start-up, written row by row as commands change them.

use std::collections::HashMap;

use mysql_async::prelude::*;

use super::rows::parsed;
use super::sql::Sql;
use super::DbError;
use crate::task::catalog::{fixed_status, CatalogDirty, Counts};
use crate::task::{BoardId, BoardRecord, Catalog, Column, ColumnId};

type ColumnRow = (
    String,
    String,
    String,
    String,
    String,
    f64,
    Option<u32>,
    Option<String>,
    f64,
    Option<u32>,
);

/// The catalog as MySQL holds it, with the cards of each column counted.
pub async fn load(conn: &mut impl Queryable) -> Result<Catalog, DbError> {
    load_rows(conn, true).await
}

/// The catalog's rows; the cards per column only if `count` (a pass over
/// an index of every task: the applier's start needs it, a catch-up page
/// does not, since the applier reloads its state after one).
pub async fn load_rows(conn: &mut impl Queryable, count: bool) -> Result<Catalog, DbError> {
    let boards: Vec<(String, String, bool)> =
        conn.query("SELECT id, name, archived FROM boards").await?;
    let boards = boards
        .into_iter()
        .map(|(id, name, archived)| {
            Ok(BoardRecord {
                id: parsed(&id, "boards.id")?,
                name,
                archived,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    let columns: Vec<ColumnRow> = conn
        .query(
            "SELECT id, board_id, name, col_key, category, position, wip_limit, color, \
             tail_position, archive_after_days FROM kanban_columns",
        )
        .await?;
    let columns = columns
        .into_iter()
        .map(
            |(id, board, name, key, category, position, wip_limit, color, tail, archive)| {
                Ok((
                    Column {
                        id: parsed(&id, "kanban_columns.id")?,
                        board_id: parsed(&board, "kanban_columns.board_id")?,
                        name,
                        key,
                        category: parsed(&category, "kanban_columns.category")?,
                        position,
                        wip_limit,
                        color,
                        archive_after_days: archive,
                    },
                    tail,
                ))
            },
        )
        .collect::<Result<Vec<_>, DbError>>()?;
    let members: Vec<(String, String, String)> = conn
        .query("SELECT board_id, user_id, role FROM board_members")
        .await?;
    let members = members
        .into_iter()
        .map(|(board, user, role)| {
            Ok((
                parsed(&board, "board_members.board_id")?,
                user,
                parsed(&role, "board_members.role")?,
            ))
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    // One pass over the (column_id, archived, …) index.
    let counted: Vec<(String, bool, u64)> = if count {
        conn.query("SELECT column_id, archived, COUNT(*) FROM tasks GROUP BY column_id, archived")
            .await?
    } else {
        Vec::new()
    };
    let mut counts: HashMap<ColumnId, Counts> = HashMap::new();
    for (column, archived, n) in counted {
        let column: ColumnId = parsed(&column, "tasks.column_id")?;
        let entry = counts.entry(column).or_default();
        if archived {
            entry.archived = n;
        } else {
            entry.live = n;
        }
    }
    Ok(Catalog::from_rows(boards, columns, members, counts))
}

/// Statements writing the rows `dirty` names as `catalog` holds them (a
/// row it no longer holds is deleted).
pub fn write(sql: &mut Sql, catalog: &Catalog, dirty: &CatalogDirty) {
    for id in &dirty.boards {
        match catalog.board(id) {
            Some(board) => {
                sql.end()
                    .push("REPLACE INTO boards (id, name, archived) VALUES (")
                    .ascii(&board.id.to_string())
                    .push(", ")
                    .text(&board.name)
                    .push(", ")
                    .uint(u64::from(board.archived))
                    .push(")")
                    .end();
            }
            None => delete(sql, "DELETE FROM boards WHERE id = ", &id.to_string()),
        }
    }
    for id in &dirty.columns {
        match catalog.column(id) {
            Some(column) => write_column(sql, column, catalog.tail(id)),
            None => delete(
                sql,
                "DELETE FROM kanban_columns WHERE id = ",
                &id.to_string(),
            ),
        }
    }
    for (board, user) in &dirty.members {
        match catalog.member(board, user) {
            Some(role) => {
                sql.end()
                    .push("REPLACE INTO board_members (board_id, user_id, role) VALUES (")
                    .ascii(&board.to_string())
                    .push(", ")
                    .text(user)
                    .push(", ")
                    .ascii(role.as_str())
                    .push(")")
                    .end();
            }
            None => {
                sql.end()
                    .push("DELETE FROM board_members WHERE board_id = ")
                    .ascii(&board.to_string())
                    .push(" AND user_id = ")
                    .text(user)
                    .end();
            }
        }
    }
}

fn write_column(sql: &mut Sql, column: &Column, tail: f64) {
    sql.end()
        .push(
            "REPLACE INTO kanban_columns (id, board_id, name, col_key, category, position, \
             wip_limit, color, tail_position, archive_after_days) VALUES (",
        )
        .ascii(&column.id.to_string())
        .push(", ")
        .ascii(&column.board_id.to_string())
        .push(", ")
        .text(&column.name)
        .push(", ")
        .text(&column.key)
        .push(", ")
        .ascii(column.category.as_str())
        .push(", ")
        .double(column.position)
        .push(", ");
    match column.wip_limit {
        Some(n) => sql.uint(u64::from(n)),
        None => sql.push("NULL"),
    };
    sql.push(", ")
        .optional_text(column.color.as_deref())
        .push(", ")
        .double(if fixed_status(column.id).is_some() {
            0.0
        } else {
            tail
        })
        .push(", ");
    match column.archive_after_days {
        Some(n) => sql.uint(u64::from(n)),
        None => sql.push("NULL"),
    };
    sql.push(")").end();
}

fn delete(sql: &mut Sql, head: &'static str, id: &str) {
    sql.end().push(head).ascii(id).end();
}

/// Statements replacing every catalog row with `catalog`'s (restore).
pub fn replace_all(sql: &mut Sql, catalog: &Catalog) {
    sql.end()
        .push("DELETE FROM boards")
        .end()
        .push("DELETE FROM kanban_columns")
        .end()
        .push("DELETE FROM board_members")
        .end();
    let mut dirty = CatalogDirty::default();
    for board in catalog.boards() {
        dirty.boards.insert(board.id);
        for column in catalog.columns_of(&board.id) {
            dirty.columns.insert(column.id);
        }
        for (user, _) in catalog.members_of(&board.id) {
            dirty.members.insert((board.id, user.to_string()));
        }
    }
    write(sql, catalog, &dirty);
}

/// A board id from the api's path, or `None` when it is not one.
pub fn board_id(text: &str) -> Option<BoardId> {
    text.parse().ok()
}
