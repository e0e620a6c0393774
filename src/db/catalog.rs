//! The catalog's tables (`boards`, `kanban_columns`, `board_members`, V8):
//! read whole at start-up, written row by row as commands change them.

use std::collections::{BTreeSet, HashMap};

use mysql_async::prelude::*;
use mysql_async::Conn;

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
    u64,
);

/// The catalog as MySQL holds it, with the cards of each column, for the
/// applier's state at `applied_index`: as stored (`column_counts`), when
/// they were stored at that very index (`raft_applied.counts_index`, V17);
/// else counted, in one pass over an index of every task, and stored with
/// that index for the next start. Only the applier's batches keep the
/// stored counts (with `counts_index`, in their transaction); whatever else
/// writes cards leaves `counts_index` behind or clears it.
pub async fn load(conn: &mut Conn, applied_index: u64) -> Result<Catalog, DbError> {
    if counts_hold_at(conn, applied_index).await? {
        return load_rows(conn, Cards::Stored).await;
    }
    let started = std::time::Instant::now();
    let catalog = load_rows(conn, Cards::Count).await?;
    store_counts(conn, &catalog, applied_index).await?;
    tracing::info!(
        columns = catalog.all_counts().count(),
        ms = started.elapsed().as_millis() as u64,
        "cards per column counted and stored"
    );
    Ok(catalog)
}

/// Whether the stored cards per column are those of `applied_index`
/// (`raft_applied.counts_index`).
pub async fn counts_hold_at(
    conn: &mut impl Queryable,
    applied_index: u64,
) -> Result<bool, DbError> {
    let counts_index: Option<Option<u64>> = conn
        .query_first("SELECT counts_index FROM raft_applied WHERE id = 1")
        .await?;
    Ok(counts_index.flatten() == Some(applied_index))
}

/// Whether and how [`load_rows`] reads the cards per column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cards {
    /// Not at all (a catch-up page or a restore folds from rows, and the
    /// applier reads its state again after them).
    Skip,
    /// Counted: a pass over an index of every task.
    Count,
    /// As `column_counts` holds them.
    Stored,
}

/// Replaces the stored cards per column with `catalog`'s, as of
/// `applied_index`, in one transaction: `counts_index` is set only if MySQL
/// is still at that index.
async fn store_counts(
    conn: &mut Conn,
    catalog: &Catalog,
    applied_index: u64,
) -> Result<(), DbError> {
    let columns: BTreeSet<ColumnId> = catalog.all_counts().map(|(id, _)| *id).collect();
    let mut sql = Sql::new();
    sql.push("DELETE FROM column_counts").end();
    write_counts(&mut sql, COUNTS_STATEMENT_BYTES, catalog, &columns);
    sql.end()
        .push("UPDATE raft_applied SET counts_index = ")
        .uint(applied_index)
        .push(" WHERE id = 1 AND applied_index = ")
        .uint(applied_index)
        .end();
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await?;
    for statement in sql.into_statements() {
        tx.query_drop(statement).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Upserts the stored cards of `columns` as `catalog` counts them (a
/// column it no longer holds: none), in statements of about `limit` bytes
/// at most.
pub fn write_counts(sql: &mut Sql, limit: usize, catalog: &Catalog, columns: &BTreeSet<ColumnId>) {
    sql.rows(
        limit,
        &["INSERT INTO column_counts (column_id, live, archived) VALUES "],
        " ON DUPLICATE KEY UPDATE live = VALUES(live), archived = VALUES(archived)",
        columns,
        |s, id| {
            let counts = catalog.counts(id);
            s.push("(")
                .ascii(&id.to_string())
                .push(", ")
                .uint(counts.live)
                .push(", ")
                .uint(counts.archived)
                .push(")");
        },
    );
}

/// The bytes of one multi-row statement of counts stored at a start, at
/// most: rows of about 70 bytes, inside any usual max_allowed_packet.
const COUNTS_STATEMENT_BYTES: usize = 256 << 10;

/// The catalog's rows, with the cards per column as `cards` says.
pub async fn load_rows(conn: &mut impl Queryable, cards: Cards) -> Result<Catalog, DbError> {
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
             tail_position, archive_after_days, version FROM kanban_columns",
        )
        .await?;
    let columns = columns
        .into_iter()
        .map(
            |(
                id,
                board,
                name,
                key,
                category,
                position,
                wip_limit,
                color,
                tail,
                archive,
                version,
            )| {
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
                        version,
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
    let mut counts: HashMap<ColumnId, Counts> = HashMap::new();
    match cards {
        Cards::Skip => {}
        Cards::Count => {
            // One pass over the (column_id, archived, …) index.
            let counted: Vec<(String, bool, u64)> = conn
                .query(
                    "SELECT column_id, archived, COUNT(*) FROM tasks GROUP BY column_id, archived",
                )
                .await?;
            for (column, archived, n) in counted {
                let column: ColumnId = parsed(&column, "tasks.column_id")?;
                let entry = counts.entry(column).or_default();
                if archived {
                    entry.archived = n;
                } else {
                    entry.live = n;
                }
            }
        }
        Cards::Stored => {
            let stored: Vec<(String, u64, u64)> = conn
                .query("SELECT column_id, live, archived FROM column_counts")
                .await?;
            for (column, live, archived) in stored {
                let column: ColumnId = parsed(&column, "column_counts.column_id")?;
                counts.insert(column, Counts { live, archived });
            }
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
             wip_limit, color, tail_position, archive_after_days, version) VALUES (",
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
    sql.push(", ").uint(column.version).push(")").end();
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
