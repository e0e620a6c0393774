//! The typed front of the transport: what the server, the cluster façade
//! and the Raft node's ports are given instead of the actor's address.

use std::collections::HashMap;

use actix::prelude::*;
use tokio::net::TcpListener;

use super::auth::PeerAuth;
use super::codec::Hello;
use super::{AttachRaft, PeerInfo, Peers, RaftInbox, RemovePeer, SendMessages, SetPeer, Transport};
use crate::tls::PeerTls;

/// Why the transport could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Its mailbox is closed: the node is shutting down.
    #[error("the peer transport has stopped")]
    Stopped,
}

/// How the rest of the node reaches the transport.
#[derive(Clone)]
pub struct TransportHandle {
    addr: Addr<Transport>,
}

impl TransportHandle {
    /// Starts the transport for node `hello.node_id`, dialing `peers`. It
    /// With `tls`, every link is mutual TLS under the hello. It
    /// accepts on `listener` once [`TransportHandle::attach_raft`] says where
    /// inbound messages go.
    pub fn start(
        hello: Hello,
        peers: HashMap<u64, String>,
        listener: TcpListener,
        auth: PeerAuth,
        tls: Option<PeerTls>,
        versions: crate::version::PeerVersions,
    ) -> TransportHandle {
        TransportHandle {
            addr: Transport::new(hello, peers, listener, auth, tls, versions).start(),
        }
    }

    /// Connects the transport to the Raft node and starts accepting peers.
    pub fn attach_raft(&self, inbox: RaftInbox) {
        self.addr.do_send(AttachRaft(inbox));
    }

    /// Every peer the transport knows, by id, with whether its link is up.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, TransportError> {
        self.addr
            .send(Peers)
            .await
            .map_err(|_| TransportError::Stopped)
    }

    /// Where the Raft node sends each Ready's messages.
    pub fn send_recipient(&self) -> Recipient<SendMessages> {
        self.addr.clone().recipient()
    }

    /// Where the Raft node says a member was added or re-addressed.
    pub fn set_peer_recipient(&self) -> Recipient<SetPeer> {
        self.addr.clone().recipient()
    }

    /// Where the Raft node says a member was removed.
    pub fn remove_peer_recipient(&self) -> Recipient<RemovePeer> {
        self.addr.clone().recipient()
    }
}
