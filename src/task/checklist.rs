//! Checklists on a card: one or more titled lists of items a person ticks.
//!
//! A checklist belongs to one task for its whole life, and to that task's
//! board through it (a card moved to another board takes its checklists
//! along; only that board's members see them). It is decided by the board
//! ([`super::Board`], `board/checklists.rs`) as one aggregate: the list with
//! its items in order, so a reorder, a tick or a removal is one change to
//! one value, checked against one `version` (the `If-Match` target of every
//! write to the list or to one of its items). Every change is recorded as a
//! single `checklist_changed` event carrying the checklist after the change
//! (as it was, when deleted) and a [`ChecklistChange`] saying what changed,
//! so the `checklists`/`checklist_items` tables are a fold of the events.
//!
//! Deleting a card deletes its checklists with it, deterministically and
//! without an event each, as for comments (`super::comment`).
//!
//! Limits that depend on state (checklists per card, items per list) are
//! enforced at apply; those on one value (lengths) by the api and again by
//! the decision, so a command from anywhere is held to them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BoardId, TaskId};
use crate::time::Timestamp;

/// At most this many checklists on one card.
pub const CHECKLISTS_PER_TASK: usize = 20;
/// At most this many items on one checklist.
pub const ITEMS_PER_CHECKLIST: usize = 200;
/// A checklist's title, in characters.
pub const TITLE_MAX: usize = 200;
/// An item's text, in characters.
pub const ITEM_MAX: usize = 500;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id, so ids sort roughly by creation.
            pub fn generate() -> $name {
                $name(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// A checklist's identity: a UUIDv7 the api stamps, never the client's.
    ChecklistId
);
uuid_id!(
    /// A checklist item's identity: a UUIDv7 the api stamps.
    ItemId
);

/// One item: its text and whether it is ticked. Its position is its index
/// in [`Checklist::items`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub id: ItemId,
    /// 1–500 characters, trimmed, one line.
    pub text: String,
    pub done: bool,
}

/// A checklist as the api shows it, the events carry it and the tables
/// store it (all but `board_id`, which is the task's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    pub id: ChecklistId,
    pub task_id: TaskId,
    /// The task's board: in an event, when it was written; read from the
    /// projection, the task's board now.
    pub board_id: BoardId,
    /// 1–200 characters, trimmed, one line.
    pub title: String,
    /// In order.
    pub items: Vec<ChecklistItem>,
    /// 1 at creation, +1 on every change to the list or an item; the ETag
    /// and the `If-Match` target.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Checklist {
    /// Ticked items and all items: the `3/5` of the card.
    pub fn progress(&self) -> (usize, usize) {
        (
            self.items.iter().filter(|i| i.done).count(),
            self.items.len(),
        )
    }

    /// The index of item `id`, if it is on this list.
    pub fn position_of(&self, id: &ItemId) -> Option<usize> {
        self.items.iter().position(|i| i.id == *id)
    }
}

/// A checklist command: the list it is about, its task (so the applier
/// loads the task and the task's checklists with it) and what to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistCommand {
    pub id: ChecklistId,
    pub task_id: TaskId,
    /// `If-Match`: the checklist's version the client saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub action: ChecklistAction,
}

/// What a [`ChecklistCommand`] does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum ChecklistAction {
    Create {
        title: String,
    },
    Rename {
        title: String,
    },
    Delete,
    /// At the end; `done` for an import (the api adds items unticked).
    AddItem {
        item: ItemId,
        text: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        done: bool,
    },
    /// Any of text, done and position (0-based, clamped to the end).
    UpdateItem {
        item: ItemId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<usize>,
    },
    RemoveItem {
        item: ItemId,
    },
}

/// What a `checklist_changed` event changed (beside the checklist after).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum ChecklistChange {
    Created,
    Renamed {
        from: String,
    },
    /// The event's checklist is as it was.
    Deleted,
    ItemAdded {
        item: ItemId,
    },
    /// One item's text, tick or place; each changed field's old value.
    ItemUpdated {
        item: ItemId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text_from: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done_from: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position_from: Option<usize>,
    },
    /// The item as it was, and where.
    ItemRemoved {
        item: ChecklistItem,
        position: usize,
    },
}

/// A title or an item's text, trimmed: 1 to `max` characters on one line,
/// no control characters (a checklist line is a short label).
pub fn line(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<String, crate::invalid::Invalid> {
    use crate::invalid::Invalid;
    let trimmed = text.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if chars > max {
        return Err(Invalid::new(
            field,
            format!("is {chars} characters; the limit is {max}"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            "must be one line without control characters",
        ));
    }
    Ok(trimmed.to_string())
}
