//! The Raft node's ports: what it sends the peer transport (messages for
//! peers, members added or removed) and what the transport hands it (peers'
//! messages, a link down). They are the Raft node's own messages, so the
//! transport depends on `raft`, never the other way round.

use actix::prelude::*;

use super::PeerMessage;

/// Where inbound messages and link failures go: the Raft node.
#[derive(Clone)]
pub struct RaftInbox {
    pub step: Recipient<Step>,
    pub unreachable: Recipient<Unreachable>,
}

/// A message from a peer, for the Raft node to step.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Step(pub PeerMessage);

/// A peer could not be reached; raft-rs should probe it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unreachable(pub u64);

/// Messages for peers, in the order raft-rs produced them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendMessages(pub Vec<PeerMessage>);

/// Adds or re-addresses a peer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPeer {
    pub id: u64,
    pub addr: String,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct RemovePeer(pub u64);
