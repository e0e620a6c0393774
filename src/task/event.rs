//! Events: what happened to a task, in the order the cluster agreed on.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Task, TaskId};
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
    pub task_id: TaskId,
    /// The task after the change; for `task_deleted`, as it was when deleted.
    pub task: Task,
    /// For `task_updated`: each changed field with its old and new value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, FieldChange>,
    /// When the change was requested (the command's stamp).
    pub at: Timestamp,
    pub request_id: Uuid,
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
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TaskCreated => "task_created",
            EventKind::TaskUpdated => "task_updated",
            EventKind::TaskDeleted => "task_deleted",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [
            EventKind::TaskCreated,
            EventKind::TaskUpdated,
            EventKind::TaskDeleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or(())
    }
}

/// The part of an event stored in the `payload` column; the rest has columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    pub task: Task,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, FieldChange>,
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
