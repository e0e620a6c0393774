//! Comments on a card: a thread of Markdown notes under a task.
//!
//! A comment belongs to one task for its whole life (it never moves to
//! another), and to that task's board through it: a card moved to another
//! board takes its thread along, and only that board's members see it.
//! Comments are decided by the board ([`super::Board`]) like the cards
//! are, against the author and the acting user's board role at the entry
//! (`board/comments.rs`), and recorded as `comment_added`,
//! `comment_edited` and `comment_deleted` events carrying the comment
//! after the change (as it was, for a deletion), so the `comments` table
//! is a fold of the events like the tasks are.
//!
//! Deleting a card deletes its comments with it, deterministically and
//! without an event each: the `task_deleted` event implies it (the fold
//! drops them, the applier deletes the rows in the same transaction).
//!
//! Not here: reactions, mentions, threads of replies, and rendering (the
//! body is Markdown the board renders with its safe renderer; the server
//! never interprets it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BoardId, TaskId};
use crate::accounts::Actor;
use crate::time::Timestamp;

/// A comment's identity: a UUIDv7 the api stamps, never the client's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommentId(pub Uuid);

impl CommentId {
    /// A new time-ordered id, so ids sort roughly by creation.
    pub fn generate() -> CommentId {
        CommentId(Uuid::now_v7())
    }
}

impl fmt::Display for CommentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for CommentId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(CommentId)
    }
}

/// A comment as the api shows it, the events carry it and the `comments`
/// table stores it (all but `board_id`, which is the task's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: CommentId,
    pub task_id: TaskId,
    /// The task's board: in an event, when the event was written; read
    /// from the projection, the task's board now.
    pub board_id: BoardId,
    /// Who wrote it, with their display name when they added it.
    pub author: Actor,
    /// Markdown, 1–10,000 characters, trimmed.
    pub body: String,
    /// 1 at creation, +1 on every edit; the ETag and the `If-Match` target.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A comment to add, with its id already stamped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewComment {
    pub id: CommentId,
    pub task_id: TaskId,
    pub body: String,
}
