//! Presence: who is looking at a board now, and who has which card open.
//! Ephemeral by design: nothing of it is proposed to Raft or written to
//! MySQL, and it is gone within seconds of a closed tab or a dead node.
//!
//! How it flows:
//!
//! - A browser tells its node what it looks at over its `/ws` socket
//!   (`{"type":"presence","board_id","editing"}`, on a board switch and when
//!   a card dialog opens or closes). The session checks the frame
//!   ([`Announcement`]) and the same rule as for events: a user may only
//!   announce a board they are on, and only sessions on a board are told
//!   who is on it.
//! - The node's presence hub ([`hub`], behind [`PresenceHandle`]) keeps its
//!   local sessions' announcements and what its peers last said, merges
//!   them per board ([`state`]: a plain value, tested without actix) and
//!   pushes a `presence` frame to the sessions of a board whenever the
//!   merged view of that board changes, and to a session right after it
//!   announces one.
//! - Every [`GOSSIP_INTERVAL`], and soon after a local change, the hub
//!   posts its local [`Summary`] (boards with viewers only) to every
//!   member's `/internal/presence`, signed with the `cluster_secret`
//!   ([`gossip`]). Over HTTP and not the Raft port: presence must never
//!   queue in front of Raft messages, and a node of the previous version
//!   closes a Raft link on a frame kind it does not know.
//! - A peer's summary counts for [`PEER_TTL`]: a node that stops saying
//!   (killed, partitioned) has its users vanish within seconds. A closed
//!   socket is removed at once, and its node's peers hear it within one
//!   gossip.
//!
//! Not implemented: presence on pages other than a board (the cluster
//! page, search), typing indicators, and presence for `auth = "off"`
//! clusters (there is nobody to name).

pub mod gossip;
mod handle;
mod hub;
pub mod state;

pub use handle::PresenceHandle;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use crate::task::{BoardId, TaskId};

/// How often a node tells its peers who is looking, even when nothing
/// changed: the heartbeat that keeps its users alive on the other nodes.
pub const GOSSIP_INTERVAL: Duration = Duration::from_secs(1);
/// How long a peer's summary counts without a newer one.
pub const PEER_TTL: Duration = Duration::from_secs(5);
/// The largest summary a node sends or reads (a few thousand sessions).
pub const MAX_SUMMARY_BYTES: usize = 256 << 10;

/// A user as presence shows them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewer {
    pub id: String,
    pub name: String,
}

/// Who is on one board: each user once, however many tabs they have.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardView {
    pub viewers: BTreeSet<Viewer>,
    /// Card → the users with its dialog open.
    pub editing: BTreeMap<TaskId, BTreeSet<Viewer>>,
}

impl BoardView {
    pub fn is_empty(&self) -> bool {
        self.viewers.is_empty()
    }

    /// Adds `other`'s users to this view.
    pub fn merge(&mut self, other: &BoardView) {
        self.viewers.extend(other.viewers.iter().cloned());
        for (task, users) in &other.editing {
            self.editing
                .entry(*task)
                .or_default()
                .extend(users.iter().cloned());
        }
    }

    /// The frame a session of the board gets.
    pub fn frame(&self, board: BoardId) -> Arc<str> {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            board_id: BoardId,
            #[serde(flatten)]
            view: &'a BoardView,
        }
        serde_json::to_string(&Out {
            kind: "presence",
            board_id: board,
            view: self,
        })
        .expect("a board view holds only strings and ids")
        .into()
    }
}

/// What one node tells its peers: its own sessions' presence, per board.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub node_id: u64,
    /// When the sender made it (ms since the epoch): an older summary than
    /// the last one heard from that node, or one far from now (replayed),
    /// is not taken.
    pub sent_at: i64,
    /// Only boards with viewers.
    pub boards: BTreeMap<BoardId, BoardView>,
}

/// What a session looks at, as it announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Looking {
    pub viewer: Viewer,
    pub board: BoardId,
    /// The card whose dialog is open, if one is.
    pub editing: Option<TaskId>,
}

/// The client's frame: `board_id` null when it looks at no board.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    #[serde(rename = "type")]
    _kind: String,
    pub board_id: Option<BoardId>,
    #[serde(default)]
    pub editing: Option<TaskId>,
}

/// A `presence` frame for one session, serialized once per change.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct PresenceFrame(pub Arc<str>);

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> Viewer {
        Viewer {
            id: id.into(),
            name: id.to_uppercase(),
        }
    }

    #[test]
    fn a_frame_names_the_board_its_viewers_and_who_edits_which_card() {
        let task = TaskId(uuid::Uuid::from_u128(7));
        let mut view = BoardView::default();
        view.viewers.insert(user("bo"));
        view.viewers.insert(user("ana"));
        view.editing.entry(task).or_default().insert(user("bo"));
        let frame: serde_json::Value =
            serde_json::from_str(&view.frame(crate::task::DEFAULT_BOARD)).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({
                "type": "presence",
                "board_id": "00000000-0000-0000-0000-000000000001",
                "viewers": [{"id": "ana", "name": "ANA"}, {"id": "bo", "name": "BO"}],
                "editing": {"00000000-0000-0000-0000-000000000007": [{"id": "bo", "name": "BO"}]},
            })
        );
    }

    #[test]
    fn an_announcement_is_strict_about_its_fields() {
        let ok: Announcement = serde_json::from_str(
            r#"{"type":"presence","board_id":"00000000-0000-0000-0000-000000000001","editing":null}"#,
        )
        .unwrap();
        assert_eq!(ok.board_id, Some(crate::task::DEFAULT_BOARD));
        assert!(serde_json::from_str::<Announcement>(
            r#"{"type":"presence","board_id":null,"extra":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Announcement>(
            r#"{"type":"presence","board_id":"not-a-uuid"}"#
        )
        .is_err());
    }
}
