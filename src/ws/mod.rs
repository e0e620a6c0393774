//! The live feed: every committed event, pushed to browsers over WebSocket.
//!
//! - The hub ([`hub`], reached through [`HubHandle`]) is fed by the applier
//!   after each MySQL COMMIT, so it only ever sees committed events. It
//!   keeps the last few thousand in memory, already serialized, and fans
//!   each batch out to the sessions, paced ([`feed`]: the memory and the
//!   pacing as a plain value, tested without actix).
//! - One session actor per connection ([`session`], the only code that uses
//!   the deprecated `actix-web-actors`, so it can be swapped for `actix-ws`
//!   without touching the rest).
//!
//! A session sends `hello`, then events in `seq` order with no gap and no
//! repeat: it tracks the last seq it sent and drops anything at or below
//! it. A client resumes with `?since=SEQ`: the hub hands the joining session
//! the events it missed from memory (primed from the event table at
//! start-up), then the live stream; a client further behind than that is
//! told `resync`, reloads the list and reconnects. A client that does not read
//! fills its session's bounded mailbox; the hub stops feeding it and it is
//! told `resync` and closed, so a slow client never grows the server's
//! memory. Ping/pong and server heartbeats drop dead connections. What a
//! client sends is bounded at each frame's header ([`limit`]): 64 KiB per
//! frame and per message, metered past a burst. A `since` beyond this
//! node's last seq waits a few seconds for the node to get there, then is
//! told `resync`. A session opened with a session cookie or a personal
//! token is closed (code 4001, the reason in words) as soon as this node
//! applies the entry that ended it — a logout, a revocation, the user
//! disabled, a password change — or when it expires: the hub tells every
//! session when the accounts change, and each checks its own credential
//! (and again at each heartbeat, for expiry).
//!
//! The socket also carries presence (who else is looking at the board, see
//! [`crate::presence`]): the session checks what the client announces and
//! forwards `presence` frames; the presence hub, not this one, keeps it.

pub mod error;
pub mod feed;
mod handle;
mod hub;
pub mod limit;
pub mod session;

pub use error::WsError;
pub use handle::{HubError, HubHandle};

use std::sync::Arc;

use actix::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::task::Event;

/// An event as the WebSocket sends it, serialized once for all sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub seq: u64,
    pub json: Arc<str>,
    /// The board the event is about: a session whose user is not on it
    /// gets only the seq ([`Frame::hidden`]).
    pub board: Option<crate::task::BoardId>,
    /// For `board_member_changed`: the user whose role changed. That user
    /// sees the event even when it took them off the board, so their page
    /// learns at once that the board is no longer theirs.
    pub member: Option<String>,
    /// For a notification's event: the one user who sees it (everyone
    /// else gets the seq alone).
    pub recipient: Option<String>,
    /// For a webhook's event: only the board's admins see it.
    pub admins_only: bool,
}

impl Frame {
    pub fn event(event: &Event) -> Frame {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            event: &'a Event,
        }
        // An event holds only serializable values.
        let json = serde_json::to_string(&Out {
            kind: "event",
            event,
        })
        .expect("an event serializes");
        Frame {
            seq: event.seq,
            json: json.into(),
            board: event.board_id(),
            member: event.board_member.as_ref().map(|m| m.user_id.clone()),
            recipient: event.recipient().map(str::to_string),
            admins_only: event.admins_only(),
        }
    }

    /// What a session not on the event's board gets instead: the seq
    /// alone, so its feed stays dense and tells nothing of the board.
    pub fn hidden(seq: u64) -> String {
        json!({ "type": "event", "seq": seq, "kind": "hidden" }).to_string()
    }
}

/// Events for a session, in seq order.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<[Frame]>);

/// The session fell too far behind: tell the client to reload, and close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync;

/// The accounts changed: a session checks that its credential is still
/// good (logout, a revoked token, a disabled user end it).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Recheck;

/// The cluster changed (leader, roles, reachability): pre-serialized.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct ClusterFrame(pub Arc<str>);

/// A session asks to be fed events after `since`.
#[derive(Message)]
#[rtype(result = "Joined")]
struct Join {
    pub since: Option<u64>,
    pub session: SessionPort,
}

/// What a new session learns: its id, where the feed stands, and the
/// events it missed.
#[derive(Clone, Debug)]
pub struct Joined {
    pub id: u64,
    /// The last seq the hub has seen committed.
    pub last_seq: u64,
    /// The latest cluster frame, to send after `hello`.
    pub cluster: Option<Arc<str>>,
    /// The events after the session's `since`; `None` when memory no longer
    /// holds them all and the client must reload (`resync`).
    pub backlog: Option<Arc<[Frame]>>,
}

/// A session ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Leave(u64);

/// The hub's view of a session: where to send what.
#[derive(Clone)]
pub struct SessionPort {
    pub deliver: Recipient<Deliver>,
    pub resync: Recipient<Resync>,
    pub cluster: Recipient<ClusterFrame>,
    pub recheck: Recipient<Recheck>,
}
