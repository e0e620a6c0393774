//! The event table as the checkers see it: one row per `seq`, with the
//! fields that identify an event and its raw stored bytes.
//!
//! Both the stream check (what subscribers received must be these events)
//! and the convergence check (every node holds the same rows) read it.

use serde::{Deserialize, Serialize};

/// `task_created`, `task_updated` or `task_deleted`, as the server names
/// them, or any other kind (`user_*`, `cluster_*`, `board_*`, `column_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A create.
    TaskCreated,
    /// An update that changed something.
    TaskUpdated,
    /// A delete.
    TaskDeleted,
    /// An event about no task (a user's, a cluster member's, a recovery):
    /// it takes a seq like the others and has no task id.
    Other,
}

impl EventKind {
    /// The name the server uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TaskCreated => "task_created",
            EventKind::TaskUpdated => "task_updated",
            EventKind::TaskDeleted => "task_deleted",
            EventKind::Other => "other",
        }
    }
}

/// An event as a subscriber received it: what identifies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Dense: 1, 2, 3, … identical on every node.
    pub seq: u64,
    /// Globally unique UUID string.
    pub event_id: String,
    /// The task it changed ("" for an event about no task).
    pub task_id: String,
    /// What happened to it.
    pub kind: EventKind,
}

/// One row of a node's `task_events` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// Dense: 1, 2, 3, … identical on every node.
    pub seq: u64,
    /// Globally unique UUID string.
    pub event_id: String,
    /// The task it changed.
    pub task_id: String,
    /// What happened to it.
    pub kind: EventKind,
    /// The stored payload, byte for byte (compared, never parsed).
    pub payload: Vec<u8>,
}

impl EventRow {
    /// The row without its payload.
    pub fn event(&self) -> Event {
        Event {
            seq: self.seq,
            event_id: self.event_id.clone(),
            task_id: self.task_id.clone(),
            kind: self.kind,
        }
    }
}
