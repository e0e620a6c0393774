//! The projection is a fold of the event table; this module does the fold
//! and compares or replaces the projection with it.
//!
//! `check` reads the events and the projection in one consistent snapshot,
//! so it can run beside a live node. `rebuild` rewrites the projection and
//! refuses to run while a node holds this database (the node lock).

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::*;
use mysql_async::{Conn, Pool, TxOpts};

use super::rows::{
    event_from_row, label_values, placeholders, task_from_row, task_values, LABEL, LABEL_COLUMNS,
    TASK, TASK_COLUMNS,
};
use super::sql::Sql;
use super::DbError;
use crate::task::{ColumnTails, Replayed, Status, Task, TaskId};

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub events: u64,
    pub tasks: usize,
    /// Empty when the projection equals the fold of the events.
    pub differences: Vec<String>,
}

const MAX_REPORTED: usize = 20;

struct Stored {
    tasks: BTreeMap<TaskId, Task>,
    labels: BTreeMap<TaskId, Vec<String>>,
    /// Label rows whose copy of their task's status, position, priority or
    /// assignee differs from the task's row (up to [`MAX_REPORTED`]).
    stale_labels: Vec<(String, String)>,
    tails: ColumnTails,
    last_seq: u64,
    catalog: crate::task::Catalog,
    /// Whether `catalog` holds the cards per column as stored: only when
    /// they hold for the applied index (`raft_applied.counts_index`, V17).
    counts_stored: bool,
    comments: Vec<crate::task::Comment>,
    checklists: Vec<crate::task::Checklist>,
    notifications: BTreeMap<u64, super::notifications::Notification>,
    webhooks: super::webhooks::Folded,
}

/// The fold of the events: the board's, the notifications', the webhooks'.
struct Folded {
    replayed: Replayed,
    notifications: BTreeMap<u64, super::notifications::Notification>,
    webhooks: super::webhooks::Folded,
}

async fn fold_events(conn: &mut impl Queryable) -> Result<Folded, DbError> {
    let mut replayed = Replayed::default();
    let mut notices = Vec::new();
    let mut hooks = Vec::new();
    let mut failure: Option<DbError> = None;
    let mut rows = conn
        .query_iter(super::queries::select(
            super::rows::EVENT_COLUMNS,
            " FROM task_events ORDER BY seq",
        ))
        .await?;
    rows.for_each(|row| {
        if failure.is_some() {
            return;
        }
        let pushed = event_from_row(row).and_then(|event| {
            replayed
                .push(&event)
                .map_err(|e| DbError::Corrupt(e.to_string()))?;
            if event.notification.is_some() {
                notices.push(event);
            } else if event.webhook.is_some() {
                hooks.push(event);
            }
            Ok(())
        });
        if let Err(e) = pushed {
            failure = Some(e);
        }
    })
    .await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(Folded {
            replayed,
            notifications: super::notifications::fold(&notices),
            webhooks: super::webhooks::fold(&hooks),
        }),
    }
}

async fn stored(conn: &mut impl Queryable) -> Result<Stored, DbError> {
    let rows: Vec<mysql_async::Row> = conn
        .query(super::queries::select(TASK_COLUMNS, " FROM tasks"))
        .await?;
    let mut tasks = BTreeMap::new();
    for row in rows {
        let task = task_from_row(row)?;
        tasks.insert(task.id, task);
    }
    let pairs: Vec<(String, String)> = conn
        .query("SELECT task_id, label FROM task_labels ORDER BY task_id, label")
        .await?;
    let mut labels: BTreeMap<TaskId, Vec<String>> = BTreeMap::new();
    for (id, label) in pairs {
        let id: TaskId = id
            .parse()
            .map_err(|_| DbError::Corrupt(format!("task_labels.task_id `{id}`")))?;
        labels.entry(id).or_default().push(label);
    }
    let stale_labels: Vec<(String, String)> = conn
        .exec(
            "SELECT l.task_id, l.label FROM task_labels l JOIN tasks t ON t.id = l.task_id \
             WHERE NOT (l.status = t.status AND l.position = t.position \
               AND l.priority = t.priority AND l.assignee <=> t.assignee \
               AND l.column_id = t.column_id AND l.archived = t.archived) \
             ORDER BY l.task_id, l.label LIMIT ?",
            (MAX_REPORTED as u64,),
        )
        .await?;
    let tails = super::column_tails(conn).await?;
    let applied = super::applied_state(conn).await?;
    let last_seq = applied.last_seq;
    let counts_stored = super::catalog::counts_hold_at(conn, applied.applied_index).await?;
    let cards = if counts_stored {
        super::catalog::Cards::Stored
    } else {
        super::catalog::Cards::Skip
    };
    let catalog = super::catalog::load_rows(conn, cards).await?;
    let comments = super::comments::all(conn).await?;
    let checklists = super::checklists::all(conn).await?;
    let notifications = super::notifications::all(conn).await?;
    let webhooks = super::webhooks::Folded {
        webhooks: super::webhooks::all(conn).await?,
        deliveries: super::webhooks::all_deliveries(conn).await?,
    };
    Ok(Stored {
        webhooks,
        checklists,
        notifications,
        comments,
        tasks,
        labels,
        stale_labels,
        tails,
        last_seq,
        catalog,
        counts_stored,
    })
}

fn compare(replayed: &Replayed, stored: &Stored) -> Vec<String> {
    let mut differences = Vec::new();
    let mut note = |text: String| {
        if differences.len() < MAX_REPORTED {
            differences.push(text);
        }
    };
    for (id, task) in &replayed.tasks {
        match stored.tasks.get(id) {
            None => note(format!("task {id} is missing from the projection")),
            Some(row) if row != task => note(format!(
                "task {id} differs: events say {}, projection says {}",
                serde_json::json!(task),
                serde_json::json!(row)
            )),
            Some(_) => {}
        }
        let labels = stored.labels.get(id).cloned().unwrap_or_default();
        if labels != task.labels {
            note(format!(
                "task {id}: task_labels {labels:?} but the task has {:?}",
                task.labels
            ));
        }
    }
    for id in stored.tasks.keys() {
        if !replayed.tasks.contains_key(id) {
            note(format!(
                "task {id} is in the projection but deleted or never created"
            ));
        }
    }
    for id in stored.labels.keys() {
        if !replayed.tasks.contains_key(id) {
            note(format!(
                "task_labels has rows for task {id}, which does not exist"
            ));
        }
    }
    for (id, label) in &stored.stale_labels {
        note(format!(
            "task {id}: the task_labels row of `{label}` has another status, position, priority, assignee, column or archived flag than the task"
        ));
    }
    if replayed.tails != stored.tails {
        note(format!(
            "column tails: events give {:?}, board_columns has {:?}",
            replayed.tails.0, stored.tails.0
        ));
    }
    let (events, rows) = (replayed.catalog.rows(), stored.catalog.rows());
    if events != rows {
        note(format!(
            "boards, columns or members: events give {events:?}, the tables hold {rows:?}"
        ));
    }
    if stored.counts_stored {
        let cards = |catalog: &crate::task::Catalog| -> BTreeMap<_, _> {
            catalog
                .all_counts()
                .filter(|(_, counts)| counts.total() > 0)
                .map(|(id, counts)| (*id, (counts.live, counts.archived)))
                .collect()
        };
        let (events, rows) = (cards(&replayed.catalog), cards(&stored.catalog));
        if events != rows {
            note(format!(
                "cards per column (live, archived): events give {events:?}, column_counts holds {rows:?}"
            ));
        }
    }
    compare_comments(replayed, stored, &mut note);
    compare_checklists(replayed, stored, &mut note);
    if replayed.last_seq != stored.last_seq {
        note(format!(
            "last seq: events end at {}, raft_applied says {}",
            replayed.last_seq, stored.last_seq
        ));
    }
    differences
}

/// The comments the events leave against the `comments` rows. A comment's
/// board is not compared: the row has none (it is its task's now, the
/// event's is its task's then).
fn compare_comments(replayed: &Replayed, stored: &Stored, note: &mut impl FnMut(String)) {
    let rows: BTreeMap<_, _> = stored.comments.iter().map(|c| (c.id, c)).collect();
    for (id, comment) in &replayed.comments {
        match rows.get(id) {
            None => note(format!("comment {id} is missing from the projection")),
            Some(row)
                if **row
                    != (crate::task::Comment {
                        board_id: row.board_id,
                        ..comment.clone()
                    }) =>
            {
                note(format!(
                    "comment {id} differs: events say {}, projection says {}",
                    serde_json::json!(comment),
                    serde_json::json!(row)
                ))
            }
            Some(_) => {}
        }
    }
    for id in rows.keys() {
        if !replayed.comments.contains_key(id) {
            note(format!(
                "comment {id} is in the projection but deleted, of a deleted task, or never added"
            ));
        }
    }
}

/// The checklists the events leave against the rows, boards aside (as
/// for comments).
fn compare_checklists(replayed: &Replayed, stored: &Stored, note: &mut impl FnMut(String)) {
    let rows: BTreeMap<_, _> = stored.checklists.iter().map(|c| (c.id, c)).collect();
    for (id, list) in &replayed.checklists {
        match rows.get(id) {
            None => note(format!("checklist {id} is missing from the projection")),
            Some(row)
                if **row
                    != (crate::task::Checklist {
                        board_id: row.board_id,
                        ..list.clone()
                    }) =>
            {
                note(format!(
                    "checklist {id} differs: events say {}, projection says {}",
                    serde_json::json!(list),
                    serde_json::json!(row)
                ))
            }
            Some(_) => {}
        }
    }
    for id in rows.keys() {
        if !replayed.checklists.contains_key(id) {
            note(format!(
                "checklist {id} is in the projection but deleted, of a deleted task, or never created"
            ));
        }
    }
}

/// The notifications the events leave against the `notifications` rows.
fn compare_notifications(
    events: &BTreeMap<u64, super::notifications::Notification>,
    rows: &BTreeMap<u64, super::notifications::Notification>,
    differences: &mut Vec<String>,
) {
    for id in events.keys().chain(rows.keys()).collect::<BTreeSet<_>>() {
        if differences.len() >= MAX_REPORTED {
            return;
        }
        match (events.get(id), rows.get(id)) {
            (Some(e), Some(r)) if e == r => {}
            (e, r) => differences.push(format!(
                "notification {id}: events say {}, projection says {}",
                serde_json::json!(e),
                serde_json::json!(r)
            )),
        }
    }
}

/// Compares the projection with the fold of the events; changes nothing.
pub async fn check(pool: &Pool) -> Result<CheckReport, DbError> {
    let mut conn = pool.get_conn().await?;
    let mut opts = TxOpts::default();
    opts.with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(opts).await?;
    let folded = fold_events(&mut tx).await?;
    let stored = stored(&mut tx).await?;
    tx.rollback().await?;
    let mut differences = compare(&folded.replayed, &stored);
    compare_notifications(
        &folded.notifications,
        &stored.notifications,
        &mut differences,
    );
    super::webhooks::compare(
        &folded.webhooks,
        &stored.webhooks,
        &mut differences,
        MAX_REPORTED,
    );
    Ok(CheckReport {
        events: folded.replayed.last_seq,
        tasks: folded.replayed.tasks.len(),
        differences,
    })
}

/// Replaces the projection with the fold of the events.
pub async fn rebuild(pool: &Pool) -> Result<CheckReport, DbError> {
    let mut conn = pool.get_conn().await?;
    if !NodeLock::acquire(&mut conn).await? {
        return Err(DbError::Schema(
            "a taskraft node is running on this database; stop it before a rebuild".into(),
        ));
    }
    let written = replace_projection(&mut conn).await;
    NodeLock::release(&mut conn).await?;
    written?;
    check(pool).await
}

async fn replace_projection(conn: &mut Conn) -> Result<(), DbError> {
    let mut tx = conn.start_transaction(TxOpts::default()).await?;
    let Folded {
        replayed,
        notifications,
        webhooks,
    } = fold_events(&mut tx).await?;
    tx.query_drop("DELETE FROM notifications").await?;
    tx.query_drop("DELETE FROM comments").await?;
    tx.query_drop("DELETE FROM checklist_items").await?;
    tx.query_drop("DELETE FROM checklists").await?;
    tx.query_drop("DELETE FROM task_labels").await?;
    tx.query_drop("DELETE FROM tasks").await?;
    let tasks: Vec<&Task> = replayed.tasks.values().collect();
    for chunk in tasks.chunks(500) {
        let params: Vec<mysql_async::Value> = chunk.iter().flat_map(|t| task_values(t)).collect();
        let mut insert = Sql::new();
        insert
            .push("INSERT INTO tasks (")
            .push(TASK_COLUMNS)
            .push(") VALUES ");
        placeholders(&mut insert, &TASK, chunk.len());
        tx.exec_drop(insert.into_string(), params).await?;
        let labels: Vec<mysql_async::Value> = chunk
            .iter()
            .flat_map(|t| {
                t.labels
                    .iter()
                    .flat_map(|l| label_values(t, l))
                    .collect::<Vec<_>>()
            })
            .collect();
        if !labels.is_empty() {
            let mut insert = Sql::new();
            insert
                .push("INSERT INTO task_labels (")
                .push(LABEL_COLUMNS)
                .push(") VALUES ");
            placeholders(&mut insert, &LABEL, labels.len() / LABEL.count());
            tx.exec_drop(insert.into_string(), labels).await?;
        }
    }
    for status in Status::ALL {
        tx.exec_drop(
            "UPDATE board_columns SET tail_position = ? WHERE status = ?",
            (replayed.tails.get(status), status.as_str()),
        )
        .await?;
    }
    let comments: Vec<crate::task::Comment> = replayed.comments.values().cloned().collect();
    let mut insert = Sql::new();
    super::comments::write(
        &mut insert,
        super::round_trip_budget(4 << 20),
        &comments,
        &[],
    );
    for statement in insert.into_statements() {
        tx.query_drop(statement).await?;
    }
    let checklists: Vec<crate::task::Checklist> = replayed.checklists.values().cloned().collect();
    let mut insert = Sql::new();
    super::checklists::write(
        &mut insert,
        super::round_trip_budget(4 << 20),
        &checklists,
        &[],
    );
    for statement in insert.into_statements() {
        tx.query_drop(statement).await?;
    }
    let mut insert = Sql::new();
    for n in notifications.values() {
        super::notifications::insert(&mut insert, n);
    }
    super::webhooks::replace_all(&mut insert, &webhooks);
    for statement in insert.into_statements() {
        tx.query_drop(statement).await?;
    }
    let mut catalog = Sql::new();
    super::catalog::replace_all(&mut catalog, &replayed.catalog);
    for statement in catalog.into_statements() {
        tx.query_drop(statement).await?;
    }
    tx.exec_drop(
        // The cards are counted again at the node's next start.
        "UPDATE raft_applied SET last_seq = ?, counts_index = NULL WHERE id = 1",
        (replayed.last_seq,),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A MySQL named lock a running node holds on its database (on a connection
/// of its own, for its lifetime), so that an offline rebuild cannot write
/// under it, nor a second node share the database.
pub struct NodeLock;

impl NodeLock {
    const NAME: &'static str = "taskraft_node_";

    /// Takes the lock on `conn` without waiting; false if another holds it.
    pub async fn acquire(conn: &mut Conn) -> Result<bool, DbError> {
        let got: Option<i64> = conn
            .exec_first("SELECT GET_LOCK(CONCAT(?, DATABASE()), 0)", (Self::NAME,))
            .await?;
        Ok(got == Some(1))
    }

    pub async fn release(conn: &mut Conn) -> Result<(), DbError> {
        conn.exec_drop("SELECT RELEASE_LOCK(CONCAT(?, DATABASE()))", (Self::NAME,))
            .await?;
        Ok(())
    }
}
