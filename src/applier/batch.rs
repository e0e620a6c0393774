//! One batch of committed entries as one MySQL transaction.
//!
//! ```text
//!   (only for what the in-memory state lacks: SELECT tasks, idempotency_keys;
//!    and the comments the batch names: SELECT comments;
//!    and the checklists of the tasks its checklist commands name)
//!   -- the pure state machine decides every command, in log order --
//! START TRANSACTION;                                                     ┐
//!   UPDATE raft_applied SET applied_index = the batch's last entry       │ one
//!          … but NULL (an error) unless it is still where we think;      │ round
//!   INSERT task_events (multi-row); upsert/delete tasks and task_labels; │ trip
//!   INSERT idempotency_keys; UPDATE board_columns;                       │
//!   upsert/delete comments (and those of deleted tasks);                 │
//!   upsert/delete checklists, replace their items (likewise);            │
//!   INSERT/UPDATE notifications (from the batch's notification events);  │
//!   upsert/delete webhooks, their delivery log (from webhook events);    │
//! COMMIT                                                                 ┘
//! ```
//!
//! The applied index commits with the rows it covers, so after any crash
//! the node resumes at applied + 1 and nothing is applied twice or lost.
//! Any error rolls the whole transaction back; the caller drops its
//! in-memory state, reads it again and retries the batch.
//!
//! Reads are prepared statements (exact doubles over the binary protocol)
//! with IN-lists padded to a power of two, so few statement shapes exist and
//! all stay cached. The write is one multi-statement text query built by
//! [`Sql`]: values are escaped literals, never pasted raw.

use std::collections::{BTreeSet, HashMap};

use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use uuid::Uuid;

use super::audit;
use super::state::{ApplyState, Lookup};
use crate::accounts::{AccountChanges, Accounts, AccountsCache};
use crate::db::rows::{
    event_payload, task_from_row, write_event, write_label, write_task, EventRecord, KeyRow,
    EVENT_COLUMNS, KEY_COLUMNS, LABEL_COLUMNS, TASK_COLUMNS, TASK_UPSERT,
};
use crate::db::sql::{round_trips, Sql};
use crate::db::{applied_state, column_tails, DbError};
use crate::projection::ProjectionCache;
use crate::raft::CommittedEntry;
use crate::task::{
    self, Board, Changes, ColumnTails, Event, Op, Outcome, Remembered, Slot, Task, TaskId,
};
use crate::version::{self, Version};

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct BatchResult {
    pub applied_index: u64,
    /// Outcomes of the commands this node took, by request id.
    pub outcomes: Vec<(Uuid, task::Applied)>,
    pub events: Vec<Event>,
}

/// Reads the applier's state from MySQL: where it stands, and what the
/// api shares with it. The filters of every id and key in use come later,
/// from [`super::state::load_filters`] (a scan of the history).
pub async fn load_state(
    conn: &mut Conn,
    rows: ProjectionCache,
    accounts: AccountsCache,
) -> Result<ApplyState, DbError> {
    let applied = applied_state(conn).await?;
    let tails = column_tails(conn).await?;
    let account_rows = crate::db::accounts::load(conn).await?;
    let cluster_version = crate::db::cluster_version(conn).await?;
    let catalog = crate::db::catalog::load(conn, applied.applied_index).await?;
    let mut state = ApplyState::new(
        applied.applied_index,
        applied.applied_term,
        applied.last_seq,
        tails,
        rows,
    )
    .with_accounts(account_rows.into_accounts(), accounts)
    .with_catalog(catalog);
    state.cluster_version = cluster_version;
    Ok(state)
}

/// Applies `entries` (consecutive, starting right after `state`'s applied
/// index) and records them in `state` once MySQL has committed them.
/// `budget` bounds the bytes of SQL per round trip and per multi-row
/// statement (0: one statement per row, one statement per round trip).
pub async fn apply(
    conn: &mut Conn,
    state: &mut ApplyState,
    node_id: u64,
    entries: &[CommittedEntry],
    budget: usize,
) -> Result<BatchResult, DbError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(BatchResult {
            applied_index: state.applied_index,
            ..BatchResult::default()
        });
    };
    assert_eq!(
        first.index,
        state.applied_index + 1,
        "a batch starts right after the applied index"
    );

    let board = load(conn, state, entries).await?;
    let recorded = recorded_recoveries(conn, entries).await?;
    let reminders: BTreeSet<_> = entries
        .iter()
        .filter_map(|e| match e.command.as_ref().map(|c| &c.op) {
            Some(Op::DueRemind { task_id, due_date }) => Some((*task_id, *due_date)),
            _ => None,
        })
        .collect();
    let reminded = crate::db::notifications::reminded(conn, &reminders).await?;
    let hooked: BTreeSet<_> = entries
        .iter()
        .filter_map(|e| match e.command.as_ref().map(|c| &c.op) {
            Some(Op::WebhookAdd(new)) => Some(new.board_id),
            Some(Op::WebhookRemove { board_id, .. }) => Some(*board_id),
            Some(Op::WebhookProgress(p)) => Some(p.board_id),
            _ => None,
        })
        .collect();
    let registry = crate::db::webhooks::registry(conn, &hooked).await?;
    let Decided {
        mut changes,
        outcomes,
        accounts,
        versions,
    } = decide(
        board, state, &recorded, reminded, registry, entries, node_id,
    );

    let mut sql = Sql::new();
    // Fails (NULL into a NOT NULL column, in strict mode) unless MySQL is
    // where the state says: nothing after it runs, nothing is committed.
    sql.push("START TRANSACTION")
        .end()
        .push("UPDATE raft_applied SET applied_index = IF(applied_index = ")
        .uint(state.applied_index)
        .push(", ")
        .uint(last.index)
        .push(", NULL), applied_term = ")
        .uint(last.term)
        .push(", last_seq = ")
        .uint(changes.last_seq)
        // The stored cards per column (written below) are those of this
        // index: the state's, which are exact (`db::catalog::load`).
        .push(", counts_index = ")
        .uint(last.index)
        .push(" WHERE id = 1")
        .end();
    writes(&mut sql, budget, &changes);
    for (index, version) in &versions {
        sql.end()
            .push("INSERT INTO cluster_versions (raft_index, version) VALUES (")
            .uint(*index)
            .push(", ")
            .ascii(&version.to_string())
            .push(")")
            .end();
    }
    if let Some((accounts, account_changes)) = &accounts {
        let rows = crate::db::accounts::changed_rows(accounts, account_changes);
        crate::db::accounts::write_rows(&mut sql, budget, &rows);
        crate::db::accounts::delete_removed(&mut sql, account_changes);
    }
    sql.push("COMMIT");
    crate::crash::point("apply_before_commit");
    transaction(conn, sql, budget).await?;
    crate::crash::point("apply_after_commit");
    // The batch's catalog moves to the state (no second copy).
    let catalog = changes.catalog.take();
    state.committed(&changes, last.index, last.term);
    if let Some((catalog, _)) = catalog {
        state.catalog_committed(catalog);
    }
    if let Some((_, version)) = versions.last() {
        state.cluster_version = *version;
    }
    if let Some((accounts, _)) = accounts {
        state.accounts_committed(accounts);
    }
    Ok(BatchResult {
        applied_index: last.index,
        outcomes,
        events: changes.events,
    })
}

/// Sends the statements of `sql` (one transaction, from START TRANSACTION
/// to COMMIT) in round trips of at most `budget` bytes each; rolls back on
/// an error.
pub async fn transaction(conn: &mut Conn, sql: Sql, budget: usize) -> Result<(), DbError> {
    for trip in round_trips(sql.into_statements(), budget) {
        if let Err(e) = conn.query_drop(trip).await {
            // Best effort: a broken connection rolls back on the server anyway.
            let _ = conn.query_drop("ROLLBACK").await;
            return Err(e.into());
        }
    }
    Ok(())
}

/// What a batch's entries come to, before MySQL is told.
struct Decided {
    changes: Changes,
    /// Outcomes of the commands this node took, by request id.
    outcomes: Vec<(Uuid, task::Applied)>,
    /// A copy of the accounts, made at the batch's first account command,
    /// and what changed (`None`: the batch has none).
    accounts: Option<(Accounts, AccountChanges)>,
    /// The cluster versions the batch's `set_cluster_version` entries set.
    versions: Vec<(u64, Version)>,
}

/// Task commands go to the board, account commands to a copy of the
/// accounts. From cluster version [`version::AUDIT_EVENTS`] on (as the log
/// decides it, entry by entry), user changes, noted membership changes and
/// recoveries also make events, numbered by the board with the rest.
fn decide(
    mut board: Board,
    state: &ApplyState,
    recorded: &BTreeSet<Uuid>,
    mut reminded: BTreeSet<(TaskId, crate::time::Date)>,
    mut registry: task::webhook::Registry,
    entries: &[CommittedEntry],
    node_id: u64,
) -> Decided {
    let mut outcomes = Vec::new();
    let mut accounts: Option<(Accounts, AccountChanges)> = None;
    let mut versions: Vec<(u64, Version)> = Vec::new();
    let mut recoveries = recorded.clone();
    for entry in entries {
        let cluster_version = versions.last().map_or(state.cluster_version, |(_, v)| *v);
        let audit = cluster_version >= version::AUDIT_EVENTS;
        if let (Some(change), true) = (&entry.membership, audit) {
            board.record_event(audit::member_event(entry, change));
        }
        let Some(command) = &entry.command else {
            continue;
        };
        let applied = if let Some(op) = command.op.account() {
            let (accounts, changes) = accounts
                .get_or_insert_with(|| (state.accounts().clone(), AccountChanges::default()));
            let before = audit::user_before(accounts, &op);
            let account = accounts.apply(entry.index, command.at, op, changes);
            if audit {
                if let Some(event) = audit::user_event(entry, command, before, &account) {
                    board.record_event(event);
                }
            }
            task::Applied {
                outcome: Outcome::Account { account },
                replayed: false,
            }
        } else {
            match &command.op {
                Op::SetClusterVersion { version } => {
                    // A version this build cannot parse never passes the
                    // gate; never lower the version.
                    match version.parse::<Version>() {
                        Ok(version) if version > cluster_version => {
                            versions.push((entry.index, version));
                        }
                        _ => {}
                    }
                    task::Applied {
                        outcome: Outcome::Recorded { seq: None },
                        replayed: false,
                    }
                }
                Op::RecordRecovery(record) => {
                    let event_id = audit::recovery_event_id(record);
                    let seq = (audit && recoveries.insert(event_id))
                        .then(|| board.record_event(audit::recovery_event(entry, command, record)));
                    task::Applied {
                        outcome: Outcome::Recorded { seq },
                        replayed: false,
                    }
                }
                // Notifications: the version gate admits these from 0.5.0.
                Op::NotificationsRead(mark) => task::Applied {
                    outcome: Outcome::Recorded {
                        seq: super::notify::read(&mut board, entry, command, mark),
                    },
                    replayed: false,
                },
                Op::DueRemind { task_id, due_date } => {
                    let users = accounts
                        .as_ref()
                        .map_or_else(|| state.accounts(), |(a, _)| a);
                    let seq = super::notify::remind(
                        &mut board,
                        users,
                        &mut reminded,
                        entry,
                        command,
                        *task_id,
                        *due_date,
                    );
                    task::Applied {
                        outcome: Outcome::Recorded { seq },
                        replayed: false,
                    }
                }
                // Webhooks: the version gate admits these from 0.6.0.
                Op::WebhookAdd(_) | Op::WebhookRemove { .. } | Op::WebhookProgress(_) => {
                    let accounts = accounts
                        .as_ref()
                        .map_or_else(|| state.accounts(), |(a, _)| a);
                    let site = site_role(accounts, command);
                    super::webhooks::decide(&mut board, &mut registry, site, entry, command)
                        .expect("a webhook command is decided as one")
                }
                _ => {
                    // A user's card commands are checked against their board
                    // role at this entry (from 0.4.0, as the log decides it).
                    let site = (cluster_version >= version::BOARDS)
                        .then(|| command.actor.id.parse::<Uuid>().ok())
                        .flatten()
                        .and_then(|id| {
                            let accounts = accounts
                                .as_ref()
                                .map_or_else(|| state.accounts(), |(a, _)| a);
                            accounts.user(&id).map(|user| user.role)
                        });
                    let from = board.pending_events().len();
                    let before = super::notify::text_before(&board, command);
                    let applied = board.apply_as(entry.index, entry.term, command, site);
                    // Mentions ring from 0.5.0 on, as the log decides it,
                    // so an older node never applies the entry differently.
                    if cluster_version >= version::NOTIFICATIONS {
                        let users = accounts
                            .as_ref()
                            .map_or_else(|| state.accounts(), |(a, _)| a);
                        super::notify::mentions(
                            &mut board,
                            users,
                            entry,
                            command,
                            from,
                            before.as_deref(),
                        );
                    }
                    applied
                }
            }
        };
        if entry.origin == Some(node_id) {
            outcomes.push((command.request_id, applied));
        }
    }
    Decided {
        changes: board.take_changes(),
        outcomes,
        accounts,
        versions,
    }
}

/// The actor's site role at this entry (`None`: not a user, such as the
/// system or a sweep).
fn site_role(accounts: &Accounts, command: &task::Command) -> Option<crate::accounts::Role> {
    let id = command.actor.id.parse::<Uuid>().ok()?;
    accounts.user(&id).map(|user| user.role)
}

/// The recoveries the batch records that MySQL already holds an event of:
/// a recovered node proposes its record again after each restart, and
/// only the first makes an event.
async fn recorded_recoveries(
    conn: &mut Conn,
    entries: &[CommittedEntry],
) -> Result<BTreeSet<Uuid>, DbError> {
    let ids: Vec<Value> = entries
        .iter()
        .filter_map(|e| match e.command.as_ref().map(|c| &c.op) {
            Some(Op::RecordRecovery(record)) => {
                Some(audit::recovery_event_id(record).to_string().into())
            }
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let values = padded(ids);
    let mut select = Sql::new();
    select
        .push("SELECT event_id FROM task_events WHERE event_id IN (")
        .marks(values.len())
        .push(")");
    let found: Vec<String> = conn.exec(select.into_string(), values).await?;
    found
        .into_iter()
        .map(|id| {
            id.parse()
                .map_err(|_| DbError::Corrupt(format!("task_events.event_id `{id}`")))
        })
        .collect()
}

/// A board holding what the batch's commands refer to: from `state`, and
/// from MySQL for what `state` does not hold.
async fn load(
    conn: &mut Conn,
    state: &mut ApplyState,
    entries: &[CommittedEntry],
) -> Result<Board, DbError> {
    let mut board =
        Board::partial(state.last_seq, state.tails).with_catalog(state.catalog().clone());
    let commands = entries.iter().filter_map(|e| e.command.as_ref());
    let ids: BTreeSet<TaskId> = commands.clone().filter_map(|c| c.op.task_id()).collect();
    let keys: BTreeSet<String> = commands
        .filter_map(|c| c.idempotency.as_ref().map(|i| i.key.clone()))
        .collect();

    let mut fetch = Vec::new();
    for id in ids {
        match state.task(&id) {
            Lookup::Known(slot) => board.load_task(id, slot),
            Lookup::Fetch => fetch.push(id),
        }
    }
    if !fetch.is_empty() {
        let values = padded(fetch.iter().map(|id| id.to_string().into()).collect());
        let mut select = Sql::new();
        select
            .push("SELECT ")
            .push(TASK_COLUMNS)
            .push(" FROM tasks WHERE id IN (")
            .marks(values.len())
            .push(")");
        let rows: Vec<Row> = conn.exec(select.into_string(), values).await?;
        let mut found: HashMap<TaskId, task::Task> = HashMap::new();
        for row in rows {
            let task = task_from_row(row)?;
            found.insert(task.id, task);
        }
        // No row: deleted if it has events, else never used.
        let gone: Vec<TaskId> = fetch
            .iter()
            .filter(|id| !found.contains_key(id))
            .copied()
            .collect();
        let deleted = super::state::with_events(conn, &gone).await?;
        for id in fetch {
            match found.remove(&id) {
                Some(task) => {
                    state.cache_task(&task);
                    board.load_task(id, Some(Slot::Live(task)));
                }
                None if deleted.contains(&id) => board.load_task(id, Some(Slot::Deleted)),
                None => board.load_task(id, None),
            }
        }
    }

    // Comments are not cached: only a batch with comment commands reads them.
    let comment_ids: BTreeSet<_> = entries
        .iter()
        .filter_map(|e| e.command.as_ref()?.op.comment_id())
        .collect();
    if !comment_ids.is_empty() {
        let values = padded(comment_ids.iter().map(|id| id.to_string().into()).collect());
        let mut found: HashMap<_, _> = crate::db::comments::by_ids(conn, values)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        for id in comment_ids {
            let comment = found.remove(&id);
            board.load_comment(id, comment);
        }
    }

    // Nor are checklists: a checklist command loads all its task's lists
    // (the per-card limit counts them; the one it names is among them).
    let checklist_tasks: BTreeSet<TaskId> = entries
        .iter()
        .filter_map(|e| match &e.command.as_ref()?.op {
            task::Op::Checklist(c) => Some(c.task_id),
            _ => None,
        })
        .collect();
    if !checklist_tasks.is_empty() {
        let tasks: Vec<TaskId> = checklist_tasks.iter().copied().collect();
        let mut found: HashMap<TaskId, Vec<task::Checklist>> = HashMap::new();
        for list in crate::db::checklists::of_tasks(conn, &tasks).await? {
            found.entry(list.task_id).or_default().push(list);
        }
        for id in tasks {
            board.load_task_checklists(id, found.remove(&id).unwrap_or_default());
        }
    }

    let mut fetch_keys = Vec::new();
    for key in keys {
        match state.key(&key) {
            Lookup::Known(remembered) => board.load_key(key, remembered),
            Lookup::Fetch => fetch_keys.push(key),
        }
    }
    if !fetch_keys.is_empty() {
        let values = padded(fetch_keys.iter().map(|k| k.clone().into()).collect());
        let mut select = Sql::new();
        select
            .push("SELECT ")
            .push(KEY_COLUMNS)
            .push(" FROM idempotency_keys WHERE idem_key IN (")
            .marks(values.len())
            .push(")");
        let rows: Vec<Row> = conn.exec(select.into_string(), values).await?;
        let mut remembered: HashMap<String, Remembered> = HashMap::new();
        for row in rows {
            let KeyRow {
                key,
                fingerprint,
                raft_index,
                outcome,
                created_at,
            } = KeyRow::from_row(row)?;
            let outcome: Outcome = serde_json::from_str(&outcome)
                .map_err(|e| DbError::Corrupt(format!("idempotency_keys.outcome: {e}")))?;
            remembered.insert(
                key,
                Remembered {
                    fingerprint,
                    outcome,
                    raft_index,
                    at: created_at,
                },
            );
        }
        for key in fetch_keys {
            let found = remembered.remove(&key);
            board.load_key(key, found);
        }
    }
    Ok(board)
}

/// Pads an IN-list to the next power of two by repeating its last value,
/// so that few statement shapes exist and all stay in the statement cache.
fn padded(mut values: Vec<Value>) -> Vec<Value> {
    let target = values.len().next_power_of_two();
    if let Some(last) = values.last().cloned() {
        values.resize(target, last);
    }
    values
}

/// Appends the statements that store `changes`, multi-row statements cut
/// at `limit` bytes of SQL.
fn writes(sql: &mut Sql, limit: usize, changes: &Changes) {
    let payloads: Vec<String> = changes.events.iter().map(event_payload).collect();
    let events: Vec<EventRecord<'_>> = changes
        .events
        .iter()
        .zip(&payloads)
        .map(|(event, payload)| EventRecord::of(event, payload))
        .collect();
    insert_events(sql, limit, &events);
    write_tasks(sql, limit, &changes.upserts, &changes.deletes);
    write_comments(
        sql,
        limit,
        &changes.comment_upserts,
        &changes.comment_deletes,
    );
    write_checklists(
        sql,
        limit,
        &changes.checklist_upserts,
        &changes.checklist_deletes,
    );
    crate::db::notifications::write(sql, &changes.events);
    crate::db::webhooks::write(sql, &changes.events);
    let keys: Vec<KeyRow> = changes
        .keys
        .iter()
        .map(|(key, remembered)| KeyRow {
            key: key.clone(),
            fingerprint: remembered.fingerprint.clone(),
            raft_index: remembered.raft_index,
            // Outcomes hold only serializable values.
            outcome: serde_json::to_string(&remembered.outcome).expect("outcome serializes"),
            created_at: remembered.at,
        })
        .collect();
    // Expired keys go first: `keys` holds only those used after the last
    // cutoff of the batch, or at or after it (see `Board::expire_keys`).
    if let Some(before) = changes.expired_before {
        sql.end()
            .push("DELETE FROM idempotency_keys WHERE created_at < ")
            .timestamp(before)
            .end();
    }
    insert_keys(sql, limit, &keys);
    if let Some(tails) = changes.tails {
        write_tails(sql, tails);
    }
    if let Some((catalog, dirty)) = &changes.catalog {
        crate::db::catalog::write(sql, catalog, dirty);
        crate::db::catalog::write_counts(sql, limit, catalog, &dirty.counts);
    }
}

/// Multi-row INSERTs of events, each with its payload text as stored.
pub(crate) fn insert_events(sql: &mut Sql, limit: usize, events: &[EventRecord<'_>]) {
    sql.rows(
        limit,
        &["INSERT INTO task_events (", EVENT_COLUMNS, ") VALUES "],
        "",
        events,
        write_event,
    );
}

/// Upserts `upserts` (with their labels) and deletes `deletes`.
pub(crate) fn write_tasks(sql: &mut Sql, limit: usize, upserts: &[Task], deletes: &[TaskId]) {
    // Labels of updated and deleted tasks are replaced; a created task has none yet.
    let touched: Vec<String> = upserts
        .iter()
        .filter(|t| t.version > 1)
        .map(|t| t.id)
        .chain(deletes.iter().copied())
        .map(|id| id.to_string())
        .collect();
    if !touched.is_empty() {
        sql.end()
            .push("DELETE FROM task_labels WHERE task_id IN ")
            .list(&touched, |s, id| {
                s.ascii(id);
            })
            .end();
    }
    // A deleted task's comments go with it (`task::comment`).
    let deleted: Vec<String> = deletes.iter().map(|id| id.to_string()).collect();
    crate::db::comments::delete_of_tasks(sql, &deleted);
    crate::db::checklists::delete_of_tasks(sql, &deleted);
    if !deletes.is_empty() {
        sql.end()
            .push("DELETE FROM tasks WHERE id IN ")
            .list(deletes, |s, id| {
                s.ascii(&id.to_string());
            })
            .end();
    }
    // VALUES(col) is the form both MySQL 8 and MariaDB accept here.
    sql.rows(
        limit,
        &["INSERT INTO tasks (", TASK_COLUMNS, ") VALUES "],
        TASK_UPSERT,
        upserts,
        write_task,
    );
    // Each label row carries its task's status, position, priority and
    // assignee (the label filter's index, V7); an updated task's rows were
    // deleted above, so they are rewritten with the task.
    let labels: Vec<(&Task, &String)> = upserts
        .iter()
        .flat_map(|t| t.labels.iter().map(move |l| (t, l)))
        .collect();
    sql.rows(
        limit,
        &["INSERT INTO task_labels (", LABEL_COLUMNS, ") VALUES "],
        "",
        &labels,
        |s, (task, label)| write_label(s, task, label),
    );
}

/// Upserts and deletes comments. Every upserted comment's task is live
/// (a comment is refused on a deleted task), so the order against the
/// deletion of a task's comments does not matter.
pub(crate) fn write_comments(
    sql: &mut Sql,
    limit: usize,
    upserts: &[crate::task::Comment],
    deletes: &[crate::task::CommentId],
) {
    crate::db::comments::write(sql, limit, upserts, deletes);
}

/// Upserts checklists (their items replaced) and deletes them, as
/// [`write_comments`] does comments.
pub(crate) fn write_checklists(
    sql: &mut Sql,
    limit: usize,
    upserts: &[crate::task::Checklist],
    deletes: &[crate::task::ChecklistId],
) {
    crate::db::checklists::write(sql, limit, upserts, deletes);
}

pub(crate) fn insert_keys(sql: &mut Sql, limit: usize, keys: &[KeyRow]) {
    sql.rows(
        limit,
        &["INSERT INTO idempotency_keys (", KEY_COLUMNS, ") VALUES "],
        "",
        keys,
        |s, key| key.write(s),
    );
}

pub(crate) fn write_tails(sql: &mut Sql, tails: ColumnTails) {
    sql.end()
        .push("UPDATE board_columns SET tail_position = CASE status WHEN 'todo' THEN ")
        .double(tails.0[0])
        .push(" WHEN 'in_progress' THEN ")
        .double(tails.0[1])
        .push(" WHEN 'done' THEN ")
        .double(tails.0[2])
        .push(" END")
        .end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::validate::{
        self, ASSIGNEE_MAX, DESCRIPTION_MAX, IDEMPOTENCY_KEY_MAX, LABELS_MAX, LABEL_MAX, TITLE_MAX,
    };
    use crate::task::{Command, Idempotency, NewTask, Op, Priority, Status, TaskPatch};
    use crate::time::{Date, Timestamp};

    /// MariaDB's default `max_allowed_packet`.
    const MARIADB_DEFAULT_PACKET: usize = 16 << 20;

    /// `n` characters of `fill`, ending in `end` so two texts differ.
    fn text(fill: char, n: usize, end: char) -> String {
        let mut s: String = std::iter::repeat_n(fill, n - 1).collect();
        s.push(end);
        s
    }

    fn command(op: Op, key: String) -> Command {
        Command {
            request_id: Uuid::new_v4(),
            idempotency: Some(Idempotency {
                key,
                fingerprint: "f".repeat(64),
            }),
            at: Timestamp(1_795_774_512_345),
            actor: Default::default(),
            op,
        }
    }

    /// The SQL of one entry applied alone: START TRANSACTION … COMMIT.
    fn entry_sql(board: &mut Board, index: u64, command: &Command) -> Vec<String> {
        board.apply(index, 1, command);
        let changes = board.take_changes();
        let mut sql = Sql::new();
        sql.push("START TRANSACTION")
            .end()
            .push("UPDATE raft_applied SET applied_index = IF(applied_index = ")
            .uint(u64::MAX)
            .push(", ")
            .uint(u64::MAX)
            .push(", NULL), applied_term = ")
            .uint(u64::MAX)
            .push(", last_seq = ")
            .uint(u64::MAX)
            .push(" WHERE id = 1")
            .end();
        writes(&mut sql, usize::MAX, &changes);
        sql.push("COMMIT");
        sql.into_statements()
    }

    /// The largest valid commands, with every text field at its limit in
    /// the character that escapes worst (in JSON, in SQL, or in bytes), fit
    /// in MariaDB's default `max_allowed_packet` many times over, even
    /// sent as one round trip: so one entry can always be applied.
    #[test]
    fn the_largest_valid_command_fits_in_mariadbs_default_packet_with_margin() {
        // Description: any character; the others: no control characters.
        let fills = ['\\', '\'', '"', '\0', '\u{1}', '\u{1f980}', '\u{2028}', 'é'];
        let mut largest = (0, ' ');
        for fill in fills {
            let visible = if fill.is_control() { '\\' } else { fill };
            let mut board = Board::new();
            let id = TaskId::generate();
            let labels = |end: char| -> Vec<String> {
                (0..LABELS_MAX)
                    .map(|i| {
                        let mut l = text(visible, LABEL_MAX - 2, end);
                        l.push_str(&format!("{i:02}"));
                        l
                    })
                    .collect()
            };
            let mut new = NewTask {
                id,
                title: text(visible, TITLE_MAX, 'a'),
                description: text(fill, DESCRIPTION_MAX, 'a'),
                status: Status::Todo,
                position: Some(-123_456_789.123_456_78),
                priority: Priority::Low,
                assignee: Some(text(visible, ASSIGNEE_MAX, 'a')),
                labels: labels('a'),
                due_date: Date::parse("2026-12-31"),
                board_id: None,
                column_id: None,
            };
            validate::new_task(&mut new).expect("the create is valid");
            let key = "\\".repeat(IDEMPOTENCY_KEY_MAX);
            validate::idempotency_key(&key).unwrap();
            let create = command(Op::Create(new), key.clone());
            let mut patch = TaskPatch {
                title: Some(text(visible, TITLE_MAX, 'b')),
                description: Some(text(fill, DESCRIPTION_MAX, 'b')),
                status: Some(Status::InProgress),
                position: Some(987_654_321.987_654_3),
                priority: Some(Priority::Urgent),
                assignee: Some(Some(text(visible, ASSIGNEE_MAX, 'b'))),
                labels: Some(labels('b')),
                due_date: Some(Date::parse("2027-01-01")),
                archived: None,
                board_id: None,
                column_id: None,
            };
            validate::patch(&mut patch).expect("the patch is valid");
            let update = command(
                Op::Update {
                    id,
                    expected_version: Some(1),
                    patch,
                },
                key.replace('\\', "'"),
            );
            for (index, command) in [(1, &create), (2, &update)] {
                let statements = entry_sql(&mut board, index, command);
                assert!(statements.len() > 3, "the entry wrote rows");
                let bytes = round_trips(statements, usize::MAX)
                    .iter()
                    .map(String::len)
                    .sum::<usize>();
                if bytes > largest.0 {
                    largest = (bytes, fill);
                }
            }
        }
        eprintln!(
            "largest single entry: {} bytes of SQL (fill {:?}); MariaDB's default packet: {} bytes",
            largest.0, largest.1, MARIADB_DEFAULT_PACKET
        );
        assert!(
            largest.0 * 8 < MARIADB_DEFAULT_PACKET,
            "one entry's SQL ({} bytes) must fit 8 times in 16 MiB",
            largest.0
        );
        // And within the node's round trip at the smallest packet size this
        // document promises to work with (4 MiB).
        assert!(largest.0 <= crate::db::round_trip_budget(4 << 20));
    }
}
