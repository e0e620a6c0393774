//! The task board as a pure state machine.
//!
//! Everything here is a function of its inputs: no actix, no MySQL, no clock,
//! no randomness. The api turns a request into a [`Command`] (with the task
//! id, the request id and the time already stamped on it), Raft orders the
//! commands, and every node runs [`Board::apply`] over the same commands in
//! the same order, producing the same [`Event`]s and the same [`Outcome`]s.
//!
//! - [`Command`] is what a client asked for: create, update (any subset of
//!   fields, optionally conditional on a version), delete.
//! - [`Event`] is what happened: `task_created`, `task_updated`,
//!   `task_deleted`, each numbered by a dense `seq`.
//! - [`Rejection`] is a deterministic "no" (not found, version mismatch, id
//!   taken, idempotency key reused): no event, and the caller gets a 4xx.
//! - [`Board`] holds the state a command is decided against. The applier
//!   loads only the part of it a batch touches from MySQL; tests hold all of
//!   it in memory. [`replay`] folds events back into tasks, which is how the
//!   projection is rebuilt and checked.
//!
//! Not here: shape validation of raw input beyond what [`validate`] offers to
//! the api, persistence (the applier), and ordering (Raft).

mod board;
pub mod catalog;
pub mod checklist;
mod command;
pub mod comment;
mod event;
pub mod notification;
pub mod validate;
pub mod webhook;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod payload_tests;
#[cfg(test)]
mod tests;

pub use board::{
    replay, Applied, Board, Changes, ColumnTails, OutOfOrder, Outcome, Rejection, Remembered,
    Replayed, Slot,
};
pub use catalog::{
    BoardId, BoardMember, BoardRecord, BoardRole, Catalog, CatalogRejection, Cataloged, Column,
    ColumnId, ColumnPatch, NewBoard, NewColumn, DEFAULT_BOARD,
};
pub use checklist::{Checklist, ChecklistId, ItemId};
pub(crate) use command::present;
pub use command::{new_request_id, Command, Idempotency, NewTask, Op, TaskPatch};
pub use comment::{Comment, CommentId, NewComment};
pub use event::{event_id, Event, EventKind, EventPayload, FieldChange};
pub use notification::{Notice, NotificationChange, NotificationKind, ReadMark};
pub use webhook::{NewWebhook, Progress, Webhook, WebhookChange, WebhookId, WebhookRejection};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::{Date, Timestamp};

/// A task's identity: a UUID, chosen by the client or stamped by the api.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub Uuid);

impl TaskId {
    /// A new time-ordered id (UUIDv7), so ids sort roughly by creation.
    pub fn generate() -> TaskId {
        TaskId(Uuid::now_v7())
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TaskId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(TaskId)
    }
}

/// The board column a task is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Todo,
    InProgress,
    Done,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Todo, Status::InProgress, Status::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Todo => "todo",
            Status::InProgress => "in_progress",
            Status::Done => "done",
        }
    }

    /// The column's place on the board, 0-based; also MySQL's ENUM order minus one.
    pub fn rank(self) -> usize {
        self as usize
    }
}

pub use crate::invalid::UnknownName;

impl FromStr for Status {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Priority::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

/// A task as the board shows it and the `tasks` projection stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    /// 1–200 characters, trimmed.
    pub title: String,
    /// Markdown; rendered by the board, never interpreted by the server.
    pub description: String,
    pub status: Status,
    /// Order within the column, ascending; ties are broken by id. Fractional,
    /// so a move between two cards is one write to one card.
    pub position: f64,
    pub priority: Priority,
    pub assignee: Option<String>,
    /// Sorted and without duplicates, so equal label sets compare equal.
    pub labels: Vec<String>,
    pub due_date: Option<Date>,
    /// 1 at creation, +1 on every change; the ETag and the `If-Match` target.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The board; left out (in events too) for the default board, so a
    /// task that never left it serializes as before boards existed.
    #[serde(default, skip_serializing_if = "BoardId::is_default_ref")]
    pub board_id: BoardId,
    /// The column, when it is not the default board's column of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_id: Option<ColumnId>,
    /// Archived cards leave their column, and stay searchable and restorable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
}

impl Task {
    /// The column the task is in.
    pub fn column(&self) -> ColumnId {
        Catalog::column_of(self.column_id, self.status)
    }
}
