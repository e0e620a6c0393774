//! Events: what happened, in the order the cluster agreed on. Most are
//! about a task; user changes, membership changes and recoveries are
//! events too, in the same seq (see [`EventKind::is_task`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::catalog::{BoardId, BoardMember, BoardRecord, Cataloged, Column};
use super::checklist::{Checklist, ChecklistChange};
use super::comment::Comment;
use super::notification::NotificationChange;
use super::webhook::WebhookChange;
use super::{Task, TaskId};
use crate::accounts::UserView;
use crate::audit::{MemberRecord, RecoveryRecord};
use crate::time::Timestamp;

/// One row of the append-only `task_events` table, and one `event` message on
/// the WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Dense event number: 1, 2, 3, … in log order, identical on every node.
    pub seq: u64,
    /// The Raft log entry the event came from.
    pub raft_index: u64,
    /// The event's place among the events of its entry (today always 0).
    pub ordinal: u32,
    /// The term of that entry.
    pub term: u64,
    /// Globally unique; derived from the request id and the ordinal.
    pub event_id: Uuid,
    pub kind: EventKind,
    /// For a task event: the task, and the task after the change (for
    /// `task_deleted`, as it was when deleted). `None` for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// For `user_*`: the user after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    /// For `cluster_member_*`: the member and what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberRecord>,
    /// For `cluster_recovered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryRecord>,
    /// For `board_created` and `board_updated`: the board after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<BoardRecord>,
    /// For `column_*`: the column after the change (as it was, deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<Column>,
    /// For `board_member_changed`: the member and the new role (null:
    /// removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_member: Option<BoardMember>,
    /// For `comment_*`: the comment after the change (as it was, deleted).
    /// `task_id` is its task, so the task's history lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Comment>,
    /// For `checklist_changed`: the checklist after the change (as it
    /// was, deleted) and what changed. `task_id` is its task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checklist: Option<Checklist>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checklist_change: Option<ChecklistChange>,
    /// For `notification_added` and `notifications_read`: what changed in
    /// one user's notifications (only they see the event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationChange>,
    /// For `webhook_*`: the webhook added or removed, or its delivery
    /// progress (only the board's admins see the event; its public form
    /// never carries the secret, which only the stored payload keeps).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::webhook::public"
    )]
    pub webhook: Option<WebhookChange>,
    /// For `task_updated`, `user_updated`, `board_updated` and
    /// `column_updated`: each changed field with its old and new value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, FieldChange>,
    /// When the change was requested (the command's stamp).
    pub at: Timestamp,
    pub request_id: Uuid,
    /// Who asked for the change; `system` for events written before
    /// accounts existed.
    #[serde(default)]
    pub actor: crate::accounts::Actor,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub from: Value,
    pub to: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    TaskCreated,
    TaskUpdated,
    TaskDeleted,
    UserCreated,
    UserUpdated,
    ClusterMemberAdded,
    ClusterMemberPromoted,
    ClusterMemberRemoved,
    ClusterRecovered,
    BoardCreated,
    BoardUpdated,
    BoardMemberChanged,
    ColumnCreated,
    ColumnUpdated,
    ColumnDeleted,
    CommentAdded,
    CommentEdited,
    CommentDeleted,
    ChecklistChanged,
    NotificationAdded,
    NotificationsRead,
    WebhookAdded,
    WebhookRemoved,
    WebhookDelivered,
}

impl Event {
    /// An event of `kind` about nothing yet, numbered and stamped nothing:
    /// what each writer completes with the fields its kind carries
    /// (`Event { seq, task: Some(…), ..Event::blank(kind) }`).
    pub fn blank(kind: EventKind) -> Event {
        Event {
            seq: 0,
            raft_index: 0,
            ordinal: 0,
            term: 0,
            event_id: Uuid::nil(),
            kind,
            task_id: None,
            task: None,
            user: None,
            member: None,
            recovery: None,
            board: None,
            column: None,
            board_member: None,
            comment: None,
            checklist: None,
            checklist_change: None,
            notification: None,
            webhook: None,
            changes: BTreeMap::new(),
            at: crate::time::Timestamp(0),
            request_id: Uuid::nil(),
            actor: crate::accounts::Actor::default(),
        }
    }

    /// The catalog change a board, column or member event records.
    pub fn cataloged(&self) -> Option<Cataloged> {
        match self.kind {
            EventKind::BoardCreated | EventKind::BoardUpdated => {
                self.board.clone().map(Cataloged::Board)
            }
            EventKind::ColumnCreated | EventKind::ColumnUpdated => {
                self.column.clone().map(Cataloged::Column)
            }
            EventKind::ColumnDeleted => self.column.clone().map(Cataloged::ColumnDeleted),
            EventKind::BoardMemberChanged => self.board_member.clone().map(Cataloged::Member),
            _ => None,
        }
    }

    /// Whether only the admins of the event's board (and site admins) may
    /// see it: a webhook's URL is itself a secret.
    pub fn admins_only(&self) -> bool {
        super::webhook::admins_only(self.kind)
    }

    /// The one user who may see the event (a notification's), if any.
    pub fn recipient(&self) -> Option<&str> {
        self.notification.as_ref().map(|n| n.user_id())
    }

    /// The board the event is about, if any: only that board's members
    /// may see it.
    pub fn board_id(&self) -> Option<BoardId> {
        if let Some(task) = &self.task {
            return Some(task.board_id);
        }
        if let Some(comment) = &self.comment {
            return Some(comment.board_id);
        }
        if let Some(checklist) = &self.checklist {
            return Some(checklist.board_id);
        }
        if let Some(webhook) = &self.webhook {
            return Some(webhook.board_id());
        }
        self.board
            .as_ref()
            .map(|b| b.id)
            .or_else(|| self.column.as_ref().map(|c| c.board_id))
            .or_else(|| self.board_member.as_ref().map(|m| m.board_id))
    }
}

impl EventKind {
    pub const ALL: [EventKind; 24] = [
        EventKind::TaskCreated,
        EventKind::TaskUpdated,
        EventKind::TaskDeleted,
        EventKind::UserCreated,
        EventKind::UserUpdated,
        EventKind::ClusterMemberAdded,
        EventKind::ClusterMemberPromoted,
        EventKind::ClusterMemberRemoved,
        EventKind::ClusterRecovered,
        EventKind::BoardCreated,
        EventKind::BoardUpdated,
        EventKind::BoardMemberChanged,
        EventKind::ColumnCreated,
        EventKind::ColumnUpdated,
        EventKind::ColumnDeleted,
        EventKind::CommentAdded,
        EventKind::CommentEdited,
        EventKind::CommentDeleted,
        EventKind::ChecklistChanged,
        EventKind::NotificationAdded,
        EventKind::NotificationsRead,
        EventKind::WebhookAdded,
        EventKind::WebhookRemoved,
        EventKind::WebhookDelivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TaskCreated => "task_created",
            EventKind::TaskUpdated => "task_updated",
            EventKind::TaskDeleted => "task_deleted",
            EventKind::UserCreated => "user_created",
            EventKind::UserUpdated => "user_updated",
            EventKind::ClusterMemberAdded => "cluster_member_added",
            EventKind::ClusterMemberPromoted => "cluster_member_promoted",
            EventKind::ClusterMemberRemoved => "cluster_member_removed",
            EventKind::ClusterRecovered => "cluster_recovered",
            EventKind::BoardCreated => "board_created",
            EventKind::BoardUpdated => "board_updated",
            EventKind::BoardMemberChanged => "board_member_changed",
            EventKind::ColumnCreated => "column_created",
            EventKind::ColumnUpdated => "column_updated",
            EventKind::ColumnDeleted => "column_deleted",
            EventKind::CommentAdded => "comment_added",
            EventKind::CommentEdited => "comment_edited",
            EventKind::CommentDeleted => "comment_deleted",
            EventKind::ChecklistChanged => "checklist_changed",
            EventKind::NotificationAdded => "notification_added",
            EventKind::NotificationsRead => "notifications_read",
            EventKind::WebhookAdded => "webhook_added",
            EventKind::WebhookRemoved => "webhook_removed",
            EventKind::WebhookDelivered => "webhook_delivered",
        }
    }

    /// Whether events of this kind are about a task (and carry one): only
    /// those change the board.
    pub fn is_task(self) -> bool {
        matches!(
            self,
            EventKind::TaskCreated | EventKind::TaskUpdated | EventKind::TaskDeleted
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Self, super::UnknownName> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| super::UnknownName(s.to_string()))
    }
}

/// The part of an event stored in the `payload` column; the rest has columns.
///
/// In memory (and on the wire) an update's `changes` carry both sides of
/// each changed field. The stored form leaves out `to`: it is always the
/// field's value in `task`, the state the event left, so storing it again
/// would repeat a 20,000-character description twice in the same row.
/// Stored: `{"task": {…after…}, "changes": {"title": {"from": "old"}}}`.
///
/// Rows written before that format (every change with `from` and `to`)
/// decode unchanged: a stored `to` is taken as written. So both forms fold
/// the same way in catch-up and rebuild, which only read `task`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "StoredPayload", try_from = "StoredPayload")]
pub struct EventPayload {
    pub task: Option<Task>,
    pub user: Option<UserView>,
    pub member: Option<MemberRecord>,
    pub recovery: Option<RecoveryRecord>,
    pub board: Option<BoardRecord>,
    pub column: Option<Column>,
    pub board_member: Option<BoardMember>,
    pub comment: Option<Comment>,
    pub checklist: Option<Checklist>,
    pub checklist_change: Option<ChecklistChange>,
    pub notification: Option<NotificationChange>,
    pub webhook: Option<WebhookChange>,
    pub changes: BTreeMap<String, FieldChange>,
    pub actor: crate::accounts::Actor,
}

impl EventPayload {
    /// The part of `event` its payload column holds.
    pub fn of(event: &Event) -> EventPayload {
        EventPayload {
            task: event.task.clone(),
            user: event.user.clone(),
            member: event.member.clone(),
            recovery: event.recovery.clone(),
            board: event.board.clone(),
            column: event.column.clone(),
            board_member: event.board_member.clone(),
            comment: event.comment.clone(),
            checklist: event.checklist.clone(),
            checklist_change: event.checklist_change.clone(),
            notification: event.notification.clone(),
            webhook: event.webhook.clone(),
            changes: event.changes.clone(),
            actor: event.actor.clone(),
        }
    }
}

/// [`EventPayload`] as the `payload` column holds it: `task` for a task
/// event, else `user`, `member` or `recovery`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task: Option<Task>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<UserView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<MemberRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery: Option<RecoveryRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    board: Option<BoardRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    column: Option<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    board_member: Option<BoardMember>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<Comment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checklist: Option<Checklist>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checklist_change: Option<ChecklistChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notification: Option<NotificationChange>,
    /// With the secret of an added webhook (this is not shown to anyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<WebhookChange>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    changes: BTreeMap<String, StoredChange>,
    /// Absent for `system` (and in rows written before accounts existed).
    #[serde(default, skip_serializing_if = "crate::accounts::Actor::is_system")]
    actor: crate::accounts::Actor,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredChange {
    from: Value,
    /// Absent when it equals the field in `task` (always, for events this
    /// version writes); present in rows of the first format.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::command::present"
    )]
    to: Option<Option<Value>>,
}

impl From<EventPayload> for StoredPayload {
    fn from(payload: EventPayload) -> StoredPayload {
        let after = task_fields(payload.task.as_ref());
        let changes = payload
            .changes
            .into_iter()
            .map(|(field, change)| {
                // Kept only if `task` would not give it back exactly, which
                // the state machine never produces, so that decoding is
                // lossless whatever an event holds.
                let to = (after.get(&field) != Some(&change.to)).then_some(Some(change.to));
                (
                    field,
                    StoredChange {
                        from: change.from,
                        to,
                    },
                )
            })
            .collect();
        StoredPayload {
            task: payload.task,
            user: payload.user,
            member: payload.member,
            recovery: payload.recovery,
            board: payload.board,
            column: payload.column,
            board_member: payload.board_member,
            comment: payload.comment,
            checklist: payload.checklist,
            checklist_change: payload.checklist_change,
            notification: payload.notification,
            webhook: payload.webhook,
            changes,
            actor: payload.actor,
        }
    }
}

/// A stored change of a field the task does not have.
#[derive(Debug, thiserror::Error)]
#[error("change of unknown field {0:?}")]
pub struct UnknownField(String);

impl TryFrom<StoredPayload> for EventPayload {
    type Error = UnknownField;

    fn try_from(stored: StoredPayload) -> Result<EventPayload, UnknownField> {
        let after = task_fields(stored.task.as_ref());
        let changes = stored
            .changes
            .into_iter()
            .map(|(field, change)| {
                let to = match change.to {
                    Some(to) => to.unwrap_or(Value::Null),
                    None => after
                        .get(&field)
                        .cloned()
                        .ok_or_else(|| UnknownField(field.clone()))?,
                };
                Ok((
                    field,
                    FieldChange {
                        from: change.from,
                        to,
                    },
                ))
            })
            .collect::<Result<_, UnknownField>>()?;
        Ok(EventPayload {
            task: stored.task,
            user: stored.user,
            member: stored.member,
            recovery: stored.recovery,
            board: stored.board,
            column: stored.column,
            board_member: stored.board_member,
            comment: stored.comment,
            checklist: stored.checklist,
            checklist_change: stored.checklist_change,
            notification: stored.notification,
            webhook: stored.webhook,
            changes,
            actor: stored.actor,
        })
    }
}

/// A task's fields as JSON values, named as `changes` names them (none
/// for an event that is not about a task: its changes keep both sides).
fn task_fields(task: Option<&Task>) -> serde_json::Map<String, Value> {
    let Some(task) = task else {
        return serde_json::Map::new();
    };
    match serde_json::to_value(task) {
        Ok(Value::Object(fields)) => fields,
        // A task is a struct of plain values: always an object.
        _ => unreachable!("a task serializes to a JSON object"),
    }
}

/// The event id of the `ordinal`-th event of a request: the request id itself
/// for the first, so an event can be traced to its request by eye.
pub fn event_id(request_id: Uuid, ordinal: u32) -> Uuid {
    if ordinal == 0 {
        request_id
    } else {
        Uuid::from_u128(request_id.as_u128() ^ u128::from(ordinal))
    }
}
