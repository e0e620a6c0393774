//! The `checklists` and `checklist_items` tables (V13): a checklist's row
//! and its items, written as a whole from the checklist after each change;
//! the applier's load of the checklists of the tasks a batch names; the
//! api's reads, and a board page's progress per card.
//!
//! A row has no board: a checklist's board is its task's, read by a join.

use std::collections::HashMap;

use mysql_async::prelude::*;
use mysql_async::{Row, Value};

use super::rows::{column, parsed, timestamp_from};
use super::sql::Sql;
use super::DbError;
use crate::task::checklist::{ChecklistItem, ItemId};
use crate::task::{BoardId, Checklist, ChecklistId, TaskId};

const LIST_COLUMNS: &str = "id, task_id, title, version, created_at, updated_at";
const ITEM_COLUMNS: &str = "id, checklist_id, position, text, done";

/// Upserts `upserts` (the list's row, its items replaced) and deletes
/// `deletes` with their items, multi-row statements cut at `limit` bytes.
pub fn write(sql: &mut Sql, limit: usize, upserts: &[Checklist], deletes: &[ChecklistId]) {
    let gone: Vec<String> = deletes
        .iter()
        .chain(upserts.iter().map(|c| &c.id))
        .map(|id| id.to_string())
        .collect();
    if !gone.is_empty() {
        sql.end()
            .push("DELETE FROM checklist_items WHERE checklist_id IN ")
            .list(&gone, |s, id| {
                s.ascii(id);
            })
            .end();
    }
    if !deletes.is_empty() {
        sql.end()
            .push("DELETE FROM checklists WHERE id IN ")
            .list(deletes, |s, id| {
                s.ascii(&id.to_string());
            })
            .end();
    }
    sql.rows(
        limit,
        &["INSERT INTO checklists (", LIST_COLUMNS, ") VALUES "],
        " ON DUPLICATE KEY UPDATE title = VALUES(title), version = VALUES(version), \
         updated_at = VALUES(updated_at)",
        upserts,
        |s, c| {
            s.push("(")
                .ascii(&c.id.to_string())
                .push(", ")
                .ascii(&c.task_id.to_string())
                .push(", ")
                .text(&c.title)
                .push(", ")
                .uint(c.version)
                .push(", ")
                .timestamp(c.created_at)
                .push(", ")
                .timestamp(c.updated_at)
                .push(")");
        },
    );
    let items: Vec<(&Checklist, usize, &ChecklistItem)> = upserts
        .iter()
        .flat_map(|c| {
            c.items
                .iter()
                .enumerate()
                .map(move |(i, item)| (c, i, item))
        })
        .collect();
    sql.rows(
        limit,
        &["INSERT INTO checklist_items (", ITEM_COLUMNS, ") VALUES "],
        "",
        items,
        |s, (c, position, item)| {
            s.push("(")
                .ascii(&item.id.to_string())
                .push(", ")
                .ascii(&c.id.to_string())
                .push(", ")
                .uint(position as u64)
                .push(", ")
                .text(&item.text)
                .push(", ")
                .push(if item.done { "TRUE" } else { "FALSE" })
                .push(")");
        },
    );
}

/// Deletes the checklists (and items) of deleted tasks (they go with them).
pub fn delete_of_tasks(sql: &mut Sql, tasks: &[String]) {
    if tasks.is_empty() {
        return;
    }
    sql.end()
        .push(
            "DELETE i FROM checklist_items i JOIN checklists c ON c.id = i.checklist_id \
             WHERE c.task_id IN ",
        )
        .list(tasks, |s, id| {
            s.ascii(id);
        })
        .end()
        .push("DELETE FROM checklists WHERE task_id IN ")
        .list(tasks, |s, id| {
            s.ascii(id);
        })
        .end();
}

/// The lists selected by `filter` (a WHERE clause on `c`, `t`), with
/// their items, oldest first per task. `board` fills in the board of a
/// list whose task is gone (the check reports it).
async fn select(
    conn: &mut impl Queryable,
    filter: &str,
    params: Vec<Value>,
) -> Result<Vec<Checklist>, DbError> {
    let sql = format!(
        "SELECT c.id, c.task_id, c.title, c.version, c.created_at, c.updated_at, \
         COALESCE(t.board_id, '00000000-0000-0000-0000-000000000001') \
         FROM checklists c LEFT JOIN tasks t ON t.id = c.task_id WHERE {filter} \
         ORDER BY c.task_id, c.created_at, c.id"
    );
    let rows: Vec<Row> = conn.exec(sql, params).await?;
    let mut lists = Vec::with_capacity(rows.len());
    for mut row in rows {
        let row = &mut row;
        let id: String = column(row, 0, "id")?;
        let task: String = column(row, 1, "task_id")?;
        let board: String = column(row, 6, "board_id")?;
        lists.push(Checklist {
            id: parsed::<ChecklistId>(&id, "checklists.id")?,
            task_id: parsed::<TaskId>(&task, "checklists.task_id")?,
            board_id: parsed::<BoardId>(&board, "tasks.board_id")?,
            title: column(row, 2, "title")?,
            items: Vec::new(),
            version: column(row, 3, "version")?,
            created_at: timestamp_from(column(row, 4, "created_at")?, "created_at")?,
            updated_at: timestamp_from(column(row, 5, "updated_at")?, "updated_at")?,
        });
    }
    if lists.is_empty() {
        return Ok(lists);
    }
    let mut items_sql = Sql::new();
    items_sql
        .push("SELECT checklist_id, id, text, done FROM checklist_items WHERE checklist_id IN (")
        .marks(lists.len())
        .push(") ORDER BY checklist_id, position");
    let ids: Vec<Value> = lists.iter().map(|c| c.id.to_string().into()).collect();
    let rows: Vec<(String, String, String, bool)> = conn.exec(items_sql.into_string(), ids).await?;
    let mut by_list: HashMap<ChecklistId, Vec<ChecklistItem>> = HashMap::new();
    for (list, id, text, done) in rows {
        by_list
            .entry(parsed(&list, "checklist_items.checklist_id")?)
            .or_default()
            .push(ChecklistItem {
                id: parsed::<ItemId>(&id, "checklist_items.id")?,
                text,
                done,
            });
    }
    for list in &mut lists {
        list.items = by_list.remove(&list.id).unwrap_or_default();
    }
    Ok(lists)
}

/// Every checklist of `tasks`, oldest first per task.
pub async fn of_tasks(
    conn: &mut impl Queryable,
    tasks: &[TaskId],
) -> Result<Vec<Checklist>, DbError> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let mut filter = Sql::new();
    filter.push("c.task_id IN (").marks(tasks.len()).push(")");
    let params = tasks.iter().map(|t| t.to_string().into()).collect();
    select(conn, filter.as_str(), params).await
}

/// The checklist `id`, if there is one.
pub async fn by_id(
    conn: &mut impl Queryable,
    id: ChecklistId,
) -> Result<Option<Checklist>, DbError> {
    Ok(select(conn, "c.id = ?", vec![id.to_string().into()])
        .await?
        .pop())
}

/// The checklist item `id` is on, if any: always one that holds it. The
/// item and its list are separate reads, and the applier may commit in
/// between (the item removed, or moved to another list): then none.
pub async fn by_item(conn: &mut impl Queryable, id: ItemId) -> Result<Option<Checklist>, DbError> {
    let list: Option<String> = conn
        .exec_first(
            "SELECT checklist_id FROM checklist_items WHERE id = ?",
            (id.to_string(),),
        )
        .await?;
    let list = match list {
        Some(list) => by_id(conn, parsed(&list, "checklist_items.checklist_id")?).await?,
        None => None,
    };
    Ok(holding(list, &id))
}

/// `list` if it holds `item`.
fn holding(list: Option<Checklist>, item: &ItemId) -> Option<Checklist> {
    list.filter(|list| list.position_of(item).is_some())
}

/// Every checklist (rebuild, check).
pub async fn all(conn: &mut impl Queryable) -> Result<Vec<Checklist>, DbError> {
    select(conn, "TRUE", Vec::new()).await
}

/// Ticked and all items of each of `tasks`' checklists together (absent:
/// no checklist), in one grouped read: the card's `☑ 3/5`.
pub async fn progress(
    conn: &mut impl Queryable,
    tasks: &[TaskId],
) -> Result<HashMap<TaskId, (u64, u64)>, DbError> {
    if tasks.is_empty() {
        return Ok(HashMap::new());
    }
    let mut select = Sql::new();
    select
        .push(
            "SELECT c.task_id, CAST(COALESCE(SUM(i.done), 0) AS UNSIGNED), COUNT(i.id) \
             FROM checklists c FORCE INDEX (checklists_task) \
             LEFT JOIN checklist_items i ON i.checklist_id = c.id WHERE c.task_id IN (",
        )
        .marks(tasks.len())
        .push(") GROUP BY c.task_id");
    let params: Vec<Value> = tasks.iter().map(|t| t.to_string().into()).collect();
    let rows: Vec<(String, u64, u64)> = conn.exec(select.into_string(), params).await?;
    rows.into_iter()
        .map(|(id, done, total)| Ok((parsed::<TaskId>(&id, "checklists.task_id")?, (done, total))))
        .collect()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::time::Timestamp;

    fn list(items: &[u128]) -> Checklist {
        Checklist {
            id: ChecklistId(Uuid::from_u128(1)),
            task_id: TaskId(Uuid::from_u128(2)),
            board_id: BoardId(Uuid::from_u128(3)),
            title: "Launch".into(),
            items: items
                .iter()
                .map(|i| ChecklistItem {
                    id: ItemId(Uuid::from_u128(*i)),
                    text: format!("item {i}"),
                    done: false,
                })
                .collect(),
            version: 1,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn an_item_read_on_a_list_that_no_longer_holds_it_finds_no_list() {
        let item = ItemId(Uuid::from_u128(11));
        // The item's row named the list; the list, read after the applier
        // removed the item, no longer holds it (an item-to-card retry once
        // panicked on that).
        assert_eq!(holding(Some(list(&[10, 12])), &item), None);
        assert_eq!(holding(None, &item), None);
        let found = holding(Some(list(&[10, 11])), &item).expect("the list holds it");
        assert_eq!(found.position_of(&item), Some(1));
    }
}
