//! The state a command is decided against, and the decision itself.

mod checklists;
mod comments;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::catalog::{Catalog, CatalogDirty, CatalogRejection, Cataloged, Place};
use super::checklist::{Checklist, ChecklistId, ItemId};
use super::comment::{Comment, CommentId};
use super::event::{event_id, FieldChange};
use super::{
    BoardMember, BoardRecord, Column, ColumnId, Command, Event, EventKind, NewTask, Op, Status,
    Task, TaskId, TaskPatch,
};
use crate::accounts::Role;
use crate::time::Timestamp;

/// Gap left between a column's last card and a card added at its end.
const POSITION_STEP: f64 = 1024.0;

/// What the board knows about one task id.
#[derive(Clone, Debug, PartialEq)]
pub enum Slot {
    Live(Task),
    /// Deleted once; the id is never handed out again, so a stale client
    /// cannot resurrect a task by re-creating its id.
    Deleted,
}

/// The highest position ever given to a card in each column. It only grows,
/// which keeps "the end of the column" independent of how the applier cut
/// the log into batches: every node computes the same default position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnTails(pub [f64; 3]);

impl ColumnTails {
    fn next(&self, status: Status) -> f64 {
        self.0[status.rank()] + POSITION_STEP
    }

    /// Returns true when the tail moved.
    pub fn raise(&mut self, status: Status, position: f64) -> bool {
        let tail = &mut self.0[status.rank()];
        if position > *tail {
            *tail = position;
            true
        } else {
            false
        }
    }

    pub fn get(&self, status: Status) -> f64 {
        self.0[status.rank()]
    }
}

/// A deterministic refusal. No event is written; the client gets a 4xx.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    /// No live task has this id (never created, or deleted).
    NotFound { id: TaskId },
    /// `If-Match` named another version than the current one.
    VersionMismatch { expected: u64, current: Box<Task> },
    /// A create named an id that is, or was, in use.
    IdTaken { id: TaskId },
    /// The idempotency key was first used for a different request.
    KeyReused { key: String },
    /// A board or column named does not exist, or refuses the change.
    Catalog { refused: CatalogRejection },
    /// No comment has this id on the task named (never added, deleted, or
    /// its task deleted).
    CommentNotFound { id: CommentId },
    /// `If-Match` named another version of the comment than its current one.
    CommentVersionMismatch {
        expected: u64,
        current: Box<Comment>,
    },
    /// Only a comment's author edits it; only its author or an admin of
    /// its board (`admin_may`) deletes it.
    NotAuthor {
        id: CommentId,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        admin_may: bool,
    },
    /// No checklist has this id on the task named.
    ChecklistNotFound { id: ChecklistId },
    /// No item has this id on the checklist named.
    ChecklistItemNotFound { id: ItemId },
    /// `If-Match` named another version of the checklist than its current one.
    ChecklistVersionMismatch {
        expected: u64,
        current: Box<Checklist>,
    },
    /// A card's checklists or a checklist's items are at their limit.
    ChecklistLimit { limit: usize, what: String },
    /// A title or an item's text the limits refuse.
    ChecklistInvalid { field: String, message: String },
    /// A webhook command refused (`super::webhook::decide`).
    Webhook {
        refused: super::webhook::WebhookRejection,
    },
}

/// The result of a command, returned to the client that sent it and, under
/// an idempotency key, to every retry of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Created {
        task: Task,
        seq: u64,
    },
    Updated {
        task: Task,
        seq: u64,
    },
    /// The patch changed nothing: no event, no new version. `seq` is the last
    /// event applied before it, so a reader at that seq sees this state.
    Unchanged {
        task: Task,
        seq: u64,
    },
    Deleted {
        task: Task,
        seq: u64,
    },
    Rejected {
        rejection: Rejection,
    },
    /// The leader's idempotency-key expiry was applied.
    KeysExpired {
        before: Timestamp,
    },
    /// What an account command came to (`crate::accounts`).
    Account {
        account: crate::accounts::AccountOutcome,
    },
    /// A cluster entry (`set_cluster_version`, `record_recovery`) was
    /// applied; `seq` is the event it wrote, if it wrote one.
    Recorded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// A board was created or changed (`seq`: the last event, when the
    /// command changed nothing).
    Board {
        board: BoardRecord,
        seq: u64,
    },
    /// A column was created, changed or (`deleted`) deleted.
    Column {
        column: Column,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deleted: bool,
        seq: u64,
    },
    /// A board member was added, changed or removed.
    Member {
        member: BoardMember,
        seq: u64,
    },
    /// A comment was added, edited (or left as it was: `seq` is then the
    /// last event before it) or (`deleted`) deleted.
    Comment {
        comment: Comment,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deleted: bool,
        seq: u64,
    },
    /// A checklist was created, changed (or left as it was: `seq` is then
    /// the last event before it) or (`deleted`) deleted.
    Checklist {
        checklist: Checklist,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deleted: bool,
        seq: u64,
    },
    /// A webhook was added (with its secret, for the one who added it:
    /// a retry under the same idempotency key gets it again) or
    /// (`deleted`) removed.
    Webhook {
        webhook: super::webhook::Webhook,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deleted: bool,
        seq: u64,
    },
}

impl Outcome {
    /// The seq a reader must reach to see the effect of this command.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Outcome::Created { seq, .. }
            | Outcome::Updated { seq, .. }
            | Outcome::Unchanged { seq, .. }
            | Outcome::Deleted { seq, .. }
            | Outcome::Board { seq, .. }
            | Outcome::Column { seq, .. }
            | Outcome::Member { seq, .. }
            | Outcome::Comment { seq, .. }
            | Outcome::Checklist { seq, .. }
            | Outcome::Webhook { seq, .. } => Some(*seq),
            Outcome::Recorded { seq } => *seq,
            Outcome::Rejected { .. } | Outcome::KeysExpired { .. } | Outcome::Account { .. } => {
                None
            }
        }
    }
}

/// What a command comes to, before it is recorded.
enum Decision {
    Record(EventKind, Task, BTreeMap<String, FieldChange>),
    /// An update whose patch matches the task as it is.
    Unchanged(Task),
    Reject(Rejection),
}

/// An idempotency key's first outcome, with the fingerprint of its request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub fingerprint: String,
    pub outcome: Outcome,
    /// The log entry that first used the key.
    pub raft_index: u64,
    /// When it was first used (its command's stamp): it expires
    /// `idempotency_retention` later, when a cutoff past it is applied.
    #[serde(default)]
    pub at: Timestamp,
}

/// What [`Board::apply`] returns for one command.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    /// True when the outcome is a remembered one (an idempotent retry).
    pub replayed: bool,
}

/// Everything a run of [`Board::apply`] changed, for the applier to write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    pub events: Vec<Event>,
    pub upserts: Vec<Task>,
    pub deletes: Vec<TaskId>,
    pub keys: Vec<(String, Remembered)>,
    /// Present when a tail moved.
    pub tails: Option<ColumnTails>,
    pub last_seq: u64,
    /// The highest idempotency-key cutoff applied: keys first used before
    /// it are deleted, before `keys` are written (those already exclude
    /// the keys a later cutoff in the same run expired).
    pub expired_before: Option<Timestamp>,
    /// The catalog after the run, when a board, column, member or a
    /// column's tail changed, with the rows that did.
    pub catalog: Option<(Catalog, CatalogDirty)>,
    /// Comments added or edited, as they are after the run.
    pub comment_upserts: Vec<Comment>,
    /// Comments deleted. The comments of a deleted task (in `deletes`)
    /// go with it whether listed here or not (see `super::comment`).
    pub comment_deletes: Vec<CommentId>,
    /// Checklists created or changed, as they are after the run (items
    /// and all), and those deleted (as comments, `super::checklist`).
    pub checklist_upserts: Vec<Checklist>,
    pub checklist_deletes: Vec<ChecklistId>,
}

/// The tasks, idempotency keys and column tails that commands are decided
/// against.
///
/// A complete board (tests, rebuild) holds everything. The applier builds a
/// partial one per batch, holding only the task ids and keys the batch
/// names; touching anything else is a bug in the loader, caught by an
/// assertion rather than decided wrongly.
#[derive(Clone, Debug)]
pub struct Board {
    last_seq: u64,
    tasks: HashMap<TaskId, Slot>,
    keys: HashMap<String, Remembered>,
    tails: ColumnTails,
    /// `None` for a complete board; the ids and keys loaded for a partial one.
    loaded: Option<(HashSet<TaskId>, HashSet<String>)>,
    pending: Changes,
    dirty: BTreeSet<TaskId>,
    tails_dirty: bool,
    /// Set when a command changed the catalog or a column's cards.
    catalog_touched: bool,
    /// Boards, columns and members, complete (it is small); the cards per
    /// column are counted as commands move them.
    catalog: Catalog,
    /// While [`Board::apply_as`] applies a user's command: their site role,
    /// so the board role they have at that entry is checked.
    acting: Option<Role>,
    /// What the board knows of each comment id (`None`: there is none).
    comments: HashMap<CommentId, Option<Comment>>,
    /// `None` for a complete board; the comment ids loaded for a partial one.
    loaded_comments: Option<HashSet<CommentId>>,
    comments_dirty: BTreeSet<CommentId>,
    /// What the board knows of each checklist id (`None`: deleted).
    checklists: HashMap<ChecklistId, Option<Checklist>>,
    /// `None` for a complete board; the tasks whose checklists were loaded.
    loaded_checklists: Option<HashSet<TaskId>>,
    checklists_dirty: BTreeSet<ChecklistId>,
}

impl Board {
    /// An empty, complete board.
    pub fn new() -> Board {
        Board::with_state(0, ColumnTails::default(), None)
    }

    /// A board that will be told, by [`Board::load_task`] and
    /// [`Board::load_key`], everything the next commands refer to.
    pub fn partial(last_seq: u64, tails: ColumnTails) -> Board {
        Board::with_state(last_seq, tails, Some(Default::default()))
    }

    fn with_state(
        last_seq: u64,
        tails: ColumnTails,
        loaded: Option<(HashSet<TaskId>, HashSet<String>)>,
    ) -> Board {
        let loaded_comments = loaded.as_ref().map(|_| HashSet::new());
        let loaded_checklists = loaded.as_ref().map(|_| HashSet::new());
        Board {
            last_seq,
            tasks: HashMap::new(),
            keys: HashMap::new(),
            tails,
            loaded,
            pending: Changes::default(),
            dirty: BTreeSet::new(),
            tails_dirty: false,
            catalog_touched: false,
            catalog: Catalog::default(),
            acting: None,
            comments: HashMap::new(),
            loaded_comments,
            comments_dirty: BTreeSet::new(),
            checklists: HashMap::new(),
            loaded_checklists,
            checklists_dirty: BTreeSet::new(),
        }
    }

    /// The board with this catalog (the applier's, as committed).
    pub fn with_catalog(mut self, catalog: Catalog) -> Board {
        self.catalog = catalog;
        self
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Records what the store knows of `id`: `None` means it never existed.
    pub fn load_task(&mut self, id: TaskId, slot: Option<Slot>) {
        if let Some((ids, _)) = &mut self.loaded {
            ids.insert(id);
        }
        if let Some(slot) = slot {
            self.tasks.insert(id, slot);
        }
    }

    /// Records what the store knows of an idempotency key.
    pub fn load_key(&mut self, key: String, remembered: Option<Remembered>) {
        if let Some((_, keys)) = &mut self.loaded {
            keys.insert(key.clone());
        }
        if let Some(remembered) = remembered {
            self.keys.insert(key, remembered);
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn tails(&self) -> ColumnTails {
        self.tails
    }

    /// The events recorded since the last [`Board::take_changes`].
    pub fn pending_events(&self) -> &[Event] {
        &self.pending.events
    }

    pub fn task(&self, id: &TaskId) -> Option<&Task> {
        match self.slot(id) {
            Some(Slot::Live(task)) => Some(task),
            _ => None,
        }
    }

    /// The live tasks, by id.
    pub fn tasks(&self) -> BTreeMap<TaskId, Task> {
        self.tasks
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Live(task) => Some((*id, task.clone())),
                Slot::Deleted => None,
            })
            .collect()
    }

    fn slot(&self, id: &TaskId) -> Option<&Slot> {
        if let Some((ids, _)) = &self.loaded {
            assert!(ids.contains(id), "task {id} was not loaded for this batch");
        }
        self.tasks.get(id)
    }

    fn remembered(&self, key: &str) -> Option<&Remembered> {
        if let Some((_, keys)) = &self.loaded {
            assert!(keys.contains(key), "idempotency key {key:?} was not loaded");
        }
        self.keys.get(key)
    }

    /// Applies one committed command, taken from log entry `raft_index` of
    /// `term`. The same board and command give the same result on every node.
    /// [`Board::apply`] of a user's command (`site`: their site role at
    /// this entry): a card is created, changed, moved or deleted only on
    /// boards where the user, at this point of the log, may edit (else
    /// `not_on_board` or `read_only`). The api checks the same before it
    /// proposes; this closes the gaps the api cannot: a membership removed
    /// between its check and the entry, and a card this node had not yet
    /// applied when the api looked.
    pub fn apply_as(
        &mut self,
        raft_index: u64,
        term: u64,
        command: &Command,
        site: Option<Role>,
    ) -> Applied {
        self.acting = site;
        let applied = self.apply(raft_index, term, command);
        self.acting = None;
        applied
    }

    /// Whether the acting user (if any) may edit the cards of `board`.
    fn may_edit(&self, actor: &str, board: &super::BoardId) -> Result<(), CatalogRejection> {
        let Some(site) = self.acting else {
            return Ok(());
        };
        match self.catalog.role(board, actor, site) {
            None => Err(CatalogRejection::NotOnBoard { id: *board }),
            Some(role) if !role.can_edit() => Err(CatalogRejection::ReadOnly { id: *board }),
            Some(_) => Ok(()),
        }
    }

    pub fn apply(&mut self, raft_index: u64, term: u64, command: &Command) -> Applied {
        if let Op::ExpireKeys { before } = &command.op {
            return self.expire_keys(*before);
        }
        if let Some(idem) = &command.idempotency {
            if let Some(first) = self.remembered(&idem.key) {
                // A retry gets the first outcome back; anything else under the
                // same key is a client bug, refused without being remembered.
                let outcome = if first.fingerprint == idem.fingerprint {
                    return Applied {
                        outcome: first.outcome.clone(),
                        replayed: true,
                    };
                } else {
                    Outcome::Rejected {
                        rejection: Rejection::KeyReused {
                            key: idem.key.clone(),
                        },
                    }
                };
                return Applied {
                    outcome,
                    replayed: false,
                };
            }
        }

        let outcome = if let Some(op) = command.op.catalog() {
            self.catalog_command(raft_index, term, command, op)
        } else if command.op.comment_id().is_some() {
            self.comment_command(raft_index, term, command)
        } else if let Op::Checklist(_) = &command.op {
            self.checklist_command(raft_index, term, command)
        } else {
            self.task_command(raft_index, term, command)
        };

        if let Some(idem) = &command.idempotency {
            let remembered = Remembered {
                fingerprint: idem.fingerprint.clone(),
                outcome: outcome.clone(),
                raft_index,
                at: command.at,
            };
            self.keys.insert(idem.key.clone(), remembered.clone());
            self.pending.keys.push((idem.key.clone(), remembered));
        }
        Applied {
            outcome,
            replayed: false,
        }
    }

    fn task_command(&mut self, raft_index: u64, term: u64, command: &Command) -> Outcome {
        match self.decide(command) {
            Decision::Record(kind, task, changes) => {
                self.record(raft_index, term, command, kind, task, changes)
            }
            Decision::Unchanged(task) => Outcome::Unchanged {
                task,
                seq: self.last_seq,
            },
            Decision::Reject(rejection) => Outcome::Rejected { rejection },
        }
    }

    /// A board, column or member command: decided by the catalog, recorded
    /// as an event carrying the record after the change.
    fn catalog_command(
        &mut self,
        raft_index: u64,
        term: u64,
        command: &Command,
        op: super::catalog::CatalogOp<'_>,
    ) -> Outcome {
        let before = self.catalog.clone();
        let cataloged = match self.catalog.apply(&op, &command.actor.id) {
            Ok(cataloged) => cataloged,
            Err(refused) => {
                return Outcome::Rejected {
                    rejection: Rejection::Catalog { refused },
                }
            }
        };
        if cataloged.is_empty() {
            // Nothing changed: the record as it is, no event.
            return unchanged_outcome(&before, &op, self.last_seq);
        }
        self.catalog_touched = true;
        let mut outcome = None;
        for (ordinal, cataloged) in cataloged.into_iter().enumerate() {
            self.last_seq += 1;
            let seq = self.last_seq;
            let mut event = Event {
                seq,
                raft_index,
                ordinal: ordinal as u32,
                term,
                event_id: event_id(command.request_id, ordinal as u32),
                at: command.at,
                request_id: command.request_id,
                actor: command.actor.clone(),
                ..Event::blank(EventKind::BoardCreated)
            };
            let this = match &cataloged {
                Cataloged::Board(board) => {
                    event.kind = match before.board(&board.id) {
                        None => EventKind::BoardCreated,
                        Some(old) => {
                            event.changes = record_diff(old, board);
                            EventKind::BoardUpdated
                        }
                    };
                    event.board = Some(board.clone());
                    Outcome::Board {
                        board: board.clone(),
                        seq,
                    }
                }
                Cataloged::Column(column) => {
                    event.kind = match before.column(&column.id) {
                        None => EventKind::ColumnCreated,
                        Some(old) => {
                            // What the user changed: the version always
                            // moves, as a task's does, and is not listed.
                            event.changes = record_diff(old, column);
                            event.changes.remove("version");
                            EventKind::ColumnUpdated
                        }
                    };
                    event.column = Some(column.clone());
                    Outcome::Column {
                        column: column.clone(),
                        deleted: false,
                        seq,
                    }
                }
                Cataloged::ColumnDeleted(column) => {
                    event.kind = EventKind::ColumnDeleted;
                    event.column = Some(column.clone());
                    Outcome::Column {
                        column: column.clone(),
                        deleted: true,
                        seq,
                    }
                }
                Cataloged::Member(member) => {
                    event.kind = EventKind::BoardMemberChanged;
                    event.board_member = Some(member.clone());
                    Outcome::Member {
                        member: member.clone(),
                        seq,
                    }
                }
            };
            self.pending.events.push(event);
            // A new board answers with the board (its first event), with
            // the seq of the command's last event.
            outcome = Some(match (outcome, this) {
                (Some(Outcome::Board { board, .. }), _) => Outcome::Board { board, seq },
                (_, this) => this,
            });
        }
        outcome.expect("at least one event")
    }

    /// The idempotency keys this board remembers (tests).
    #[cfg(test)]
    pub fn remembered_keys(&self) -> BTreeMap<String, Remembered> {
        self.keys.clone().into_iter().collect()
    }

    /// Forgets every idempotency key first used before `before`: a retry
    /// under one of them afterwards is a new request.
    fn expire_keys(&mut self, before: Timestamp) -> Applied {
        self.keys.retain(|_, remembered| remembered.at >= before);
        self.pending
            .keys
            .retain(|(_, remembered)| remembered.at >= before);
        self.pending.expired_before = self.pending.expired_before.max(Some(before));
        Applied {
            outcome: Outcome::KeysExpired { before },
            replayed: false,
        }
    }

    fn decide(&self, command: &Command) -> Decision {
        match &command.op {
            // Applied by `expire_keys`, never decided.
            Op::ExpireKeys { .. } => unreachable!("expiry is not a task command"),
            #[cfg(feature = "failpoints")]
            Op::FutureCreate(new) => {
                if self.slot(&new.id).is_some() {
                    return Decision::Reject(Rejection::IdTaken { id: new.id });
                }
                let task = self.new_task(new, command);
                Decision::Record(EventKind::TaskCreated, task, BTreeMap::new())
            }
            Op::Create(new) => {
                if self.slot(&new.id).is_some() {
                    return Decision::Reject(Rejection::IdTaken { id: new.id });
                }
                let place = match self.catalog.place(
                    new.board_id,
                    new.column_id,
                    Some(new.status.as_str()),
                    Some(new.status),
                    None,
                ) {
                    Ok(place) => place,
                    Err(refused) => return Decision::Reject(Rejection::Catalog { refused }),
                };
                if let Err(refused) = self.may_edit(&command.actor.id, &place.board_id) {
                    return Decision::Reject(Rejection::Catalog { refused });
                }
                let task = self.placed_task(new, command, place);
                Decision::Record(EventKind::TaskCreated, task, BTreeMap::new())
            }
            Op::Update {
                id,
                expected_version,
                patch,
            } => {
                let current = match self.live(id, *expected_version) {
                    Ok(task) => task,
                    Err(rejection) => return Decision::Reject(rejection),
                };
                let updated = match self.patched(current, patch) {
                    Ok(updated) => updated,
                    Err(refused) => return Decision::Reject(Rejection::Catalog { refused }),
                };
                for board in [&current.board_id, &updated.board_id] {
                    if let Err(refused) = self.may_edit(&command.actor.id, board) {
                        return Decision::Reject(Rejection::Catalog { refused });
                    }
                }
                let changes = diff(current, &updated);
                if changes.is_empty() {
                    return Decision::Unchanged(current.clone());
                }
                let task = Task {
                    version: current.version + 1,
                    updated_at: command.at,
                    ..updated
                };
                Decision::Record(EventKind::TaskUpdated, task, changes)
            }
            Op::Delete {
                id,
                expected_version,
            } => match self.live(id, *expected_version) {
                Ok(task) => match self.may_edit(&command.actor.id, &task.board_id) {
                    Ok(()) => {
                        Decision::Record(EventKind::TaskDeleted, task.clone(), BTreeMap::new())
                    }
                    Err(refused) => Decision::Reject(Rejection::Catalog { refused }),
                },
                Err(rejection) => Decision::Reject(rejection),
            },
            _ => unreachable!("account commands are applied by Accounts::apply"),
        }
    }

    /// The live task `id`, if `expected_version` (when given) is its version.
    fn live(&self, id: &TaskId, expected_version: Option<u64>) -> Result<&Task, Rejection> {
        let Some(Slot::Live(task)) = self.slot(id) else {
            return Err(Rejection::NotFound { id: *id });
        };
        match expected_version {
            Some(expected) if expected != task.version => Err(Rejection::VersionMismatch {
                expected,
                current: Box::new(task.clone()),
            }),
            _ => Ok(task),
        }
    }

    /// A task as `new` asks, on the default board's column of its status.
    #[cfg(feature = "failpoints")]
    fn new_task(&self, new: &NewTask, command: &Command) -> Task {
        let place = Place {
            board_id: super::DEFAULT_BOARD,
            column_id: super::catalog::fixed_column(new.status),
            status: new.status,
        };
        self.placed_task(new, command, place)
    }

    /// The position after the last card ever put in `place`'s column.
    fn end_of(&self, place: &Place) -> f64 {
        match place.stored_column() {
            None => self.tails.next(place.status),
            Some(column) => self.catalog.next_position(&column),
        }
    }

    fn placed_task(&self, new: &NewTask, command: &Command, place: Place) -> Task {
        Task {
            id: new.id,
            title: new.title.clone(),
            description: new.description.clone(),
            status: place.status,
            board_id: place.board_id,
            column_id: place.stored_column(),
            archived: false,
            position: new.position.unwrap_or_else(|| self.end_of(&place)),
            priority: new.priority,
            assignee: new.assignee.clone(),
            labels: normalized(&new.labels),
            due_date: new.due_date,
            version: 1,
            created_at: command.at,
            updated_at: command.at,
        }
    }

    fn patched(&self, current: &Task, patch: &TaskPatch) -> Result<Task, CatalogRejection> {
        let here = Place {
            board_id: current.board_id,
            column_id: current.column(),
            status: current.status,
        };
        let stays = patch.board_id.is_none()
            && patch.column_id.is_none()
            && patch.status.is_none_or(|s| s == current.status);
        let place = if stays {
            here
        } else {
            // A status names the column of that key on the card's board;
            // a board alone, the column with the key the card's has.
            let key = match patch.status {
                Some(status) => Some(status.as_str().to_string()),
                None => self.catalog.column(&here.column_id).map(|c| c.key.clone()),
            };
            self.catalog.place(
                patch.board_id,
                patch.column_id,
                key.as_deref(),
                Some(patch.status.unwrap_or(current.status)),
                Some(current.board_id),
            )?
        };
        // A card moved to another column without a position goes to its end.
        let position = match patch.position {
            Some(position) => position,
            None if place.column_id != here.column_id => self.end_of(&place),
            None => current.position,
        };
        Ok(Task {
            status: place.status,
            board_id: place.board_id,
            column_id: place.stored_column(),
            archived: patch.archived.unwrap_or(current.archived),
            title: patch.title.clone().unwrap_or_else(|| current.title.clone()),
            description: patch
                .description
                .clone()
                .unwrap_or_else(|| current.description.clone()),
            position,
            priority: patch.priority.unwrap_or(current.priority),
            assignee: patch
                .assignee
                .clone()
                .unwrap_or_else(|| current.assignee.clone()),
            labels: patch
                .labels
                .as_ref()
                .map(|labels| normalized(labels))
                .unwrap_or_else(|| current.labels.clone()),
            due_date: patch.due_date.unwrap_or(current.due_date),
            ..current.clone()
        })
    }

    /// Numbers the event, updates the state and queues both for writing.
    fn record(
        &mut self,
        raft_index: u64,
        term: u64,
        command: &Command,
        kind: EventKind,
        task: Task,
        changes: BTreeMap<String, FieldChange>,
    ) -> Outcome {
        self.last_seq += 1;
        let seq = self.last_seq;
        let id = task.id;
        self.catalog_touched = true;
        let before = match self.tasks.get(&id) {
            Some(Slot::Live(old)) => Some((old.column(), old.archived)),
            _ => None,
        };
        if kind == EventKind::TaskDeleted {
            self.tasks.insert(id, Slot::Deleted);
            self.task_comments_deleted(id);
            self.task_checklists_deleted(id);
            placed(&mut self.tails, &mut self.catalog, before, None);
        } else {
            self.tails_dirty |= placed(&mut self.tails, &mut self.catalog, before, Some(&task));
            self.tasks.insert(id, Slot::Live(task.clone()));
        }
        self.dirty.insert(id);
        self.pending.events.push(Event {
            seq,
            raft_index,
            ordinal: 0,
            term,
            event_id: event_id(command.request_id, 0),
            task_id: Some(id),
            task: Some(task.clone()),
            changes,
            at: command.at,
            request_id: command.request_id,
            actor: command.actor.clone(),
            ..Event::blank(kind)
        });
        match kind {
            EventKind::TaskCreated => Outcome::Created { task, seq },
            EventKind::TaskUpdated => Outcome::Updated { task, seq },
            EventKind::TaskDeleted => Outcome::Deleted { task, seq },
            other => unreachable!("a task command never records a `{other}` event"),
        }
    }

    /// Numbers an event that is not about a task (a user's, a member's, a
    /// recovery's: the applier makes those) and queues it for writing.
    /// Returns its seq.
    pub fn record_event(&mut self, mut event: Event) -> u64 {
        debug_assert!(!event.kind.is_task(), "task events come from commands");
        self.last_seq += 1;
        event.seq = self.last_seq;
        self.pending.events.push(event);
        self.last_seq
    }

    /// Hands over what changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        let mut changes = std::mem::take(&mut self.pending);
        for id in std::mem::take(&mut self.dirty) {
            match self.tasks.get(&id) {
                Some(Slot::Live(task)) => changes.upserts.push(task.clone()),
                Some(Slot::Deleted) => changes.deletes.push(id),
                None => unreachable!("a dirty task always has a slot"),
            }
        }
        if std::mem::take(&mut self.tails_dirty) {
            changes.tails = Some(self.tails);
        }
        for id in std::mem::take(&mut self.comments_dirty) {
            match self.comments.get(&id) {
                Some(Some(comment)) => changes.comment_upserts.push(comment.clone()),
                Some(None) => changes.comment_deletes.push(id),
                None => unreachable!("a dirty comment always has a slot"),
            }
        }
        for id in std::mem::take(&mut self.checklists_dirty) {
            match self.checklists.get(&id) {
                Some(Some(list)) => changes.checklist_upserts.push(list.clone()),
                Some(None) => changes.checklist_deletes.push(id),
                None => unreachable!("a dirty checklist always has a slot"),
            }
        }
        // Counts change with every card; the rows only with the catalog.
        if std::mem::take(&mut self.catalog_touched) {
            let dirty = self.catalog.take_dirty();
            changes.catalog = Some((self.catalog.clone(), dirty));
        }
        changes.last_seq = self.last_seq;
        changes
    }
}

impl Default for Board {
    fn default() -> Self {
        Board::new()
    }
}

/// What a catalog command that changed nothing answers: the record as it is.
fn unchanged_outcome(catalog: &Catalog, op: &super::catalog::CatalogOp<'_>, seq: u64) -> Outcome {
    use super::catalog::CatalogOp;
    match *op {
        CatalogOp::BoardCreate(new) => Outcome::Board {
            board: catalog.board(&new.id).cloned().expect("refused unless new"),
            seq,
        },
        CatalogOp::BoardUpdate { id, .. } => Outcome::Board {
            board: catalog.board(id).cloned().expect("refused unless there"),
            seq,
        },
        CatalogOp::ColumnCreate(new) => Outcome::Column {
            column: catalog
                .column(&new.id)
                .cloned()
                .expect("refused unless new"),
            deleted: false,
            seq,
        },
        CatalogOp::ColumnUpdate { id, .. } | CatalogOp::ColumnDelete { id, .. } => {
            Outcome::Column {
                column: catalog.column(id).cloned().expect("refused unless there"),
                deleted: false,
                seq,
            }
        }
        CatalogOp::MemberSet {
            board_id,
            user_id,
            role,
        } => Outcome::Member {
            member: BoardMember {
                board_id: *board_id,
                user_id: user_id.to_string(),
                role: *role,
            },
            seq,
        },
    }
}

/// The fields of two versions of a record (a board, a column) that differ.
fn record_diff<T: Serialize>(old: &T, new: &T) -> BTreeMap<String, FieldChange> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return BTreeMap::new();
    };
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let from = old.get(name).cloned().unwrap_or(Value::Null);
            let to = new.get(name).cloned().unwrap_or(Value::Null);
            (from != to).then(|| (name.clone(), FieldChange { from, to }))
        })
        .collect()
}

/// Labels sorted and without duplicates: a label set has one spelling.
fn normalized(labels: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = labels.iter().collect();
    set.into_iter().cloned().collect()
}

/// The user-visible fields that differ, old and new value each.
fn diff(old: &Task, new: &Task) -> BTreeMap<String, FieldChange> {
    let fields: [(&str, Value, Value); 11] = [
        ("title", json!(old.title), json!(new.title)),
        (
            "description",
            json!(old.description),
            json!(new.description),
        ),
        ("status", json!(old.status), json!(new.status)),
        ("position", json!(old.position), json!(new.position)),
        ("priority", json!(old.priority), json!(new.priority)),
        ("assignee", json!(old.assignee), json!(new.assignee)),
        ("labels", json!(old.labels), json!(new.labels)),
        ("due_date", json!(old.due_date), json!(new.due_date)),
        ("board_id", json!(old.board_id), json!(new.board_id)),
        ("column_id", json!(old.column_id), json!(new.column_id)),
        ("archived", json!(old.archived), json!(new.archived)),
    ];
    fields
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(name, from, to)| (name.to_string(), FieldChange { from, to }))
        .collect()
}

/// An event that is not the next in seq order.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("event seq {seq} follows seq {last}: the event table has a gap or is out of order")]
pub struct OutOfOrder {
    pub seq: u64,
    pub last: u64,
}

/// The state a sequence of events leads to: the live tasks, the column
/// tails and the last seq. Rebuilding the projection is this fold.
#[derive(Debug, Default, PartialEq)]
pub struct Replayed {
    pub tasks: BTreeMap<TaskId, Task>,
    pub tails: ColumnTails,
    pub last_seq: u64,
    /// Boards, columns, members, cards per column and column tails.
    pub catalog: Catalog,
    /// The comments of the live tasks.
    pub comments: BTreeMap<CommentId, Comment>,
    /// The checklists of the live tasks.
    pub checklists: BTreeMap<ChecklistId, Checklist>,
}

impl Replayed {
    /// Folds in the next event; refuses one that is not next in seq order.
    pub fn push(&mut self, event: &Event) -> Result<(), OutOfOrder> {
        if event.seq != self.last_seq + 1 {
            return Err(OutOfOrder {
                seq: event.seq,
                last: self.last_seq,
            });
        }
        self.last_seq = event.seq;
        if let Some(cataloged) = event.cataloged() {
            self.catalog.fold(&cataloged);
        }
        if let Some(comment) = &event.comment {
            match event.kind {
                EventKind::CommentAdded | EventKind::CommentEdited => {
                    self.comments.insert(comment.id, comment.clone());
                }
                EventKind::CommentDeleted => {
                    self.comments.remove(&comment.id);
                }
                _ => {}
            }
            return Ok(());
        }
        if let (Some(list), Some(change)) = (&event.checklist, &event.checklist_change) {
            if *change == super::checklist::ChecklistChange::Deleted {
                self.checklists.remove(&list.id);
            } else {
                self.checklists.insert(list.id, list.clone());
            }
            return Ok(());
        }
        // Events that are not about a task take a seq and change no task.
        let (Some(id), Some(task)) = (event.task_id, &event.task) else {
            return Ok(());
        };
        let before = self.tasks.get(&id).map(|old| (old.column(), old.archived));
        match event.kind {
            EventKind::TaskCreated | EventKind::TaskUpdated => {
                placed(&mut self.tails, &mut self.catalog, before, Some(task));
                self.tasks.insert(id, task.clone());
            }
            EventKind::TaskDeleted => {
                placed(&mut self.tails, &mut self.catalog, before, None);
                self.tasks.remove(&id);
                // Its comments go with it (`super::comment`).
                self.comments.retain(|_, c| c.task_id != id);
                self.checklists.retain(|_, c| c.task_id != id);
            }
            _ => {}
        }
        Ok(())
    }
}

/// A card was at `before` (column, archived) and is now `after` (`None`:
/// deleted): its column's tail rises to its position (a default-board
/// status column's in `tails`, another's in the catalog), and the cards
/// per column follow it. Whether `tails` changed. The board applying
/// commands and the fold of events both place cards through here, so the
/// two never count differently.
fn placed(
    tails: &mut ColumnTails,
    catalog: &mut Catalog,
    before: Option<(ColumnId, bool)>,
    after: Option<&Task>,
) -> bool {
    let Some(task) = after else {
        catalog.moved(before, None);
        return false;
    };
    let raised = match task.column_id {
        None => tails.raise(task.status, task.position),
        Some(column) => {
            catalog.raise(column, task.position);
            false
        }
    };
    catalog.moved(before, Some((task.column(), task.archived)));
    raised
}

/// The state `events` (dense, in seq order) lead to.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Replayed {
    let mut state = Replayed::default();
    for event in events {
        if let Err(e) = state.push(event) {
            panic!("{e}");
        }
    }
    state
}
