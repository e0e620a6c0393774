//! Commands: what a client asked for, with every non-deterministic choice
//! (ids, the time) already made, so that applying one is a pure function.

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::catalog::{BoardRole, CatalogOp};
use super::checklist::ChecklistCommand;
use super::comment::{CommentId, NewComment};
use super::{BoardId, ColumnId, ColumnPatch, NewBoard, NewColumn, Priority, Status, TaskId};
use crate::accounts::{AccountOp, Actor, NewSession, NewToken, NewUser, UserUpdate};
use crate::audit::RecoveryRecord;
use crate::time::{Date, Timestamp};

/// One client request, as it travels through the Raft log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique per attempt; the node that took the request waits for this id.
    pub request_id: Uuid,
    /// Present when the client sent `Idempotency-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<Idempotency>,
    /// When the api accepted the request: the task's `created_at`/`updated_at`.
    pub at: Timestamp,
    /// Who asked: stamped by the api from the request's credentials.
    /// Commands written before accounts existed decode as `system`.
    #[serde(default, skip_serializing_if = "Actor::is_system")]
    pub actor: Actor,
    pub op: Op,
}

/// A new request id: time-ordered (UUIDv7), not random. It becomes the id
/// of the request's first event, and `task_events` keeps event ids in a
/// unique index: ids that follow time land on that index's last pages,
/// where random ones each landed on a cold page of an index that grows
/// with history (at a million events, dropping the index raised creates/s
/// by ~15 %; README, Cost as history grows). Its random bits (62 or more)
/// keep it unique and unguessable.
pub fn new_request_id() -> Uuid {
    Uuid::now_v7()
}

/// A client's idempotency key and a fingerprint of the request it came with.
///
/// The fingerprint covers only what the client sent (method, path, body,
/// `If-Match`), not what the api stamped, so a genuine retry matches and a
/// different request under the same key is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    Create(NewTask),
    Update {
        id: TaskId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_version: Option<u64>,
        patch: TaskPatch,
    },
    Delete {
        id: TaskId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_version: Option<u64>,
    },
    /// Test builds only (`failpoints`): a kind a release build does not
    /// know, as a future version's new kind would be. It creates a task
    /// like `create`. Gated at `crate::version::FUTURE`.
    #[cfg(feature = "failpoints")]
    FutureCreate(NewTask),
    /// Proposed by the leader every so often: idempotency keys first used
    /// before `before` (now − `idempotency_retention` on the leader's
    /// clock) are forgotten on every node as it applies this entry.
    ExpireKeys {
        before: Timestamp,
    },
    // Accounts (see `crate::accounts`): decided by `Accounts::apply`, never
    // by the board.
    UserCreate(NewUser),
    /// Creates the first admin, only while the cluster has no users.
    BootstrapAdmin(NewUser),
    UserUpdate(UserUpdate),
    SessionCreate(NewSession),
    SessionEnd {
        hash: String,
    },
    TokenCreate(NewToken),
    TokenRevoke {
        id: Uuid,
    },
    /// Proposed by the leader every so often: the sessions that can never
    /// be good again — logged out, made before a password change, or
    /// expiring at or before `before` (the leader's clock) — are removed
    /// from every node's accounts and `sessions` table as it applies this
    /// entry.
    PruneSessions {
        before: Timestamp,
    },
    /// Proposed by a leader once every voter runs at least `version`: from
    /// this entry on, every node applies entries as that version does
    /// (from 0.3.0: user, membership and recovery changes write events).
    /// Behaviour that changes what applying writes switches at an entry,
    /// never by each node's own reckoning, so no two nodes differ.
    SetClusterVersion {
        version: String,
    },
    /// Proposed by a node `recover --force-new-cluster` made the only
    /// voter, once it leads: the event that records the recovery, written
    /// once however often it is proposed.
    RecordRecovery(RecoveryRecord),
    // Boards (`super::catalog`): decided by the catalog.
    BoardCreate(NewBoard),
    BoardUpdate {
        id: BoardId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        archived: Option<bool>,
    },
    /// Adds, changes (`role`) or removes (`role` null) a board member.
    BoardMemberSet {
        board_id: BoardId,
        user_id: String,
        role: Option<BoardRole>,
    },
    ColumnCreate(NewColumn),
    /// `expected_version`: the column's `If-Match`, checked at apply. An
    /// entry without one reads as before column versions existed.
    ColumnUpdate {
        id: ColumnId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_version: Option<u64>,
        patch: ColumnPatch,
    },
    /// Deletes an empty column (its cards, archived ones included, are
    /// moved first, one update each).
    ColumnDelete {
        id: ColumnId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_version: Option<u64>,
    },
    // Comments (`super::comment`): decided by the board. Each names its
    // task (the api looks it up for an edit or a deletion), so the applier
    // loads the task with the comment, and a comment is refused when it
    // is not that task's.
    CommentAdd(NewComment),
    CommentEdit {
        id: CommentId,
        task_id: TaskId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_version: Option<u64>,
        body: String,
    },
    CommentDelete {
        id: CommentId,
        task_id: TaskId,
    },
    // Checklists (`super::checklist`): one kind for every change, decided
    // by the board; it names its task, whose checklists the applier loads.
    Checklist(ChecklistCommand),
    // Notifications (`super::notification`): decided by the applier, which
    // knows the users. A user marks their own read; the leader's sweep
    // proposes a card's due reminder, which rings once per due date.
    NotificationsRead(super::notification::ReadMark),
    DueRemind {
        task_id: TaskId,
        due_date: Date,
    },
    // Webhooks (`super::webhook`): decided by the applier against the
    // board's webhooks and the catalog at that entry. A board admin adds
    // and removes them; the leader's delivery reports its progress.
    WebhookAdd(super::webhook::NewWebhook),
    WebhookRemove {
        id: super::webhook::WebhookId,
        board_id: BoardId,
    },
    WebhookProgress(super::webhook::Progress),
}

impl Op {
    /// The task the command is about; `None` for one about no task.
    pub fn task_id(&self) -> Option<TaskId> {
        match self {
            Op::Create(new) => Some(new.id),
            #[cfg(feature = "failpoints")]
            Op::FutureCreate(new) => Some(new.id),
            Op::Update { id, .. } | Op::Delete { id, .. } => Some(*id),
            Op::CommentAdd(new) => Some(new.task_id),
            Op::CommentEdit { task_id, .. } | Op::CommentDelete { task_id, .. } => Some(*task_id),
            Op::Checklist(c) => Some(c.task_id),
            Op::DueRemind { task_id, .. } => Some(*task_id),
            Op::NotificationsRead(_)
            | Op::WebhookAdd(_)
            | Op::WebhookRemove { .. }
            | Op::WebhookProgress(_) => None,
            Op::ExpireKeys { .. }
            | Op::UserCreate(_)
            | Op::BootstrapAdmin(_)
            | Op::UserUpdate(_)
            | Op::SessionCreate(_)
            | Op::SessionEnd { .. }
            | Op::TokenCreate(_)
            | Op::TokenRevoke { .. }
            | Op::PruneSessions { .. }
            | Op::SetClusterVersion { .. }
            | Op::RecordRecovery(_)
            | Op::BoardCreate(_)
            | Op::BoardUpdate { .. }
            | Op::BoardMemberSet { .. }
            | Op::ColumnCreate(_)
            | Op::ColumnUpdate { .. }
            | Op::ColumnDelete { .. } => None,
        }
    }

    /// The comment a comment command is about; `None` for any other.
    pub fn comment_id(&self) -> Option<CommentId> {
        match self {
            Op::CommentAdd(new) => Some(new.id),
            Op::CommentEdit { id, .. } | Op::CommentDelete { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The catalog command this is; `None` for any other.
    pub fn catalog(&self) -> Option<CatalogOp<'_>> {
        Some(match self {
            Op::BoardCreate(new) => CatalogOp::BoardCreate(new),
            Op::BoardUpdate { id, name, archived } => CatalogOp::BoardUpdate { id, name, archived },
            Op::BoardMemberSet {
                board_id,
                user_id,
                role,
            } => CatalogOp::MemberSet {
                board_id,
                user_id,
                role,
            },
            Op::ColumnCreate(new) => CatalogOp::ColumnCreate(new),
            Op::ColumnUpdate {
                id,
                expected_version,
                patch,
            } => CatalogOp::ColumnUpdate {
                id,
                expected_version,
                patch,
            },
            Op::ColumnDelete {
                id,
                expected_version,
            } => CatalogOp::ColumnDelete {
                id,
                expected_version,
            },
            _ => return None,
        })
    }

    /// Whether a task command uses boards (a board, a column, archiving),
    /// which a node older than boards would decode without them.
    pub fn places(&self) -> bool {
        match self {
            Op::Create(new) => new.board_id.is_some() || new.column_id.is_some(),
            Op::Update { patch, .. } => {
                patch.board_id.is_some() || patch.column_id.is_some() || patch.archived.is_some()
            }
            _ => false,
        }
    }

    /// The account command this is, for `Accounts::apply` (not the
    /// board's, and not the applier's key expiry); `None` for any other.
    pub fn account(&self) -> Option<AccountOp<'_>> {
        Some(match self {
            Op::UserCreate(new) => AccountOp::UserCreate(new),
            Op::BootstrapAdmin(new) => AccountOp::BootstrapAdmin(new),
            Op::UserUpdate(update) => AccountOp::UserUpdate(update),
            Op::SessionCreate(new) => AccountOp::SessionCreate(new),
            Op::SessionEnd { hash } => AccountOp::SessionEnd { hash },
            Op::TokenCreate(new) => AccountOp::TokenCreate(new),
            Op::TokenRevoke { id } => AccountOp::TokenRevoke { id: *id },
            Op::PruneSessions { before } => AccountOp::PruneSessions { before: *before },
            Op::Create(_)
            | Op::Update { .. }
            | Op::Delete { .. }
            | Op::ExpireKeys { .. }
            | Op::SetClusterVersion { .. }
            | Op::RecordRecovery(_)
            | Op::BoardCreate(_)
            | Op::BoardUpdate { .. }
            | Op::BoardMemberSet { .. }
            | Op::ColumnCreate(_)
            | Op::ColumnUpdate { .. }
            | Op::ColumnDelete { .. }
            | Op::CommentAdd(_)
            | Op::CommentEdit { .. }
            | Op::CommentDelete { .. }
            | Op::Checklist(_)
            | Op::NotificationsRead(_)
            | Op::DueRemind { .. }
            | Op::WebhookAdd(_)
            | Op::WebhookRemove { .. }
            | Op::WebhookProgress(_) => return None,
            #[cfg(feature = "failpoints")]
            Op::FutureCreate(_) => return None,
        })
    }
}

/// A task to create. Fields the client left out have their defaults here,
/// except `position`, which the board picks at apply (the end of the column).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    pub id: TaskId,
    pub title: String,
    pub description: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<f64>,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<Date>,
    /// Left out: the default board (or `column_id`'s board).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_id: Option<BoardId>,
    /// Left out: the board's column whose key is `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_id: Option<ColumnId>,
}

/// The fields an update changes; `None` leaves a field as it is. For the
/// nullable fields, `Some(None)` clears the value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub assignee: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub due_date: Option<Option<Date>>,
    /// Moves the card to another board (to the column with the same key,
    /// else its first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_id: Option<BoardId>,
    /// Moves the card to this column (of its board or another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_id: Option<ColumnId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

impl TaskPatch {
    pub fn is_empty(&self) -> bool {
        self == &TaskPatch::default()
    }
}

/// Tells a field that is present with `null` (`Some(None)`: clear it) from a
/// field that is absent (`None`, through `#[serde(default)]`: keep it).
pub(crate) fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::new_request_id;

    #[test]
    fn request_ids_follow_time_as_text_so_event_ids_append_to_their_index() {
        // `task_events.event_id` is CHAR(36) ascii_bin: text order is the
        // index's order.
        let ids: Vec<String> = (0..10_000).map(|_| new_request_id().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted, "in order and unique, within one process");
        assert_eq!(new_request_id().get_version_num(), 7);
    }
}
