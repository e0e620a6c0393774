//! The peer transport: Raft messages between nodes over TCP.
//!
//! Each node dials every peer once and keeps that connection for its own
//! outbound messages; it accepts the peers' connections on `raft_addr` for
//! inbound ones. Per peer there is a bounded queue and one writer task that
//! drains everything queued into one write, so a Ready's messages to a peer
//! leave as one batch. When a peer is slow or gone the queue fills and
//! messages are dropped: Raft resends what matters, and the node is told
//! the peer is unreachable so raft-rs probes it instead of streaming to it.
//! Only Raft frames cross this port; clients never reach it, and peers never
//! need the client API.
//!
//! Each connection starts with a challenge from the accepting side and a
//! hello from the dialing side ([`auth`]): peers of another cluster, or
//! without the `cluster_secret`, are refused before any Raft message.
//!
//! Not implemented yet: streaming snapshots.

pub mod auth;
pub mod codec;
mod peer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use raft::eraftpb::Message;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use self::auth::PeerAuth;
use self::codec::{CodecError, Frame, Hello};

/// Outbound batches queued per peer before messages are dropped.
const QUEUE_DEPTH: usize = 256;
/// How long an accepted connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where inbound messages and link failures go: the Raft node.
#[derive(Clone)]
pub struct RaftInbox {
    pub step: Recipient<Step>,
    pub unreachable: Recipient<Unreachable>,
}

/// A message from a peer, for the Raft node to step.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Step(pub Message);

/// A peer could not be reached; raft-rs should probe it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unreachable(pub u64);

/// Connects the transport to the Raft node and starts accepting peers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachRaft(pub RaftInbox);

/// Messages for peers, in the order raft-rs produced them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendMessages(pub Vec<Message>);

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

/// What the transport knows about each peer.
#[derive(Message)]
#[rtype(result = "Vec<PeerInfo>")]
pub struct Peers;

#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    pub id: u64,
    pub raft_addr: String,
    /// The peer's advertise URL, once it has said hello.
    pub url: Option<String>,
    /// Whether our connection to it is up.
    pub reachable: bool,
}

/// A peer said hello on an inbound connection.
#[derive(Message)]
#[rtype(result = "()")]
struct PeerHello(Hello);

struct Peer {
    addr: String,
    queue: mpsc::Sender<Vec<Message>>,
    link: Arc<LinkState>,
}

/// Shared between the transport and a peer's writer task.
#[derive(Default)]
pub(crate) struct LinkState {
    connected: AtomicBool,
    url: Mutex<Option<String>>,
}

pub struct Transport {
    hello: Hello,
    initial_peers: HashMap<u64, String>,
    peers: HashMap<u64, Peer>,
    /// Set by [`AttachRaft`]; until then nothing is accepted.
    inbox: Option<RaftInbox>,
    listener: Option<TcpListener>,
    auth: PeerAuth,
}

impl Transport {
    /// A transport for node `hello.node_id` that will accept on `listener`
    /// once a Raft node is attached.
    pub fn new(
        hello: Hello,
        peers: HashMap<u64, String>,
        listener: TcpListener,
        auth: PeerAuth,
    ) -> Transport {
        Transport {
            hello,
            initial_peers: peers,
            peers: HashMap::new(),
            inbox: None,
            listener: Some(listener),
            auth,
        }
    }

    fn set_peer(&mut self, id: u64, addr: String, ctx: &mut Context<Self>) {
        if id == self.hello.node_id {
            return;
        }
        if self.peers.get(&id).is_some_and(|p| p.addr == addr) {
            return;
        }
        let (queue, batches) = mpsc::channel(QUEUE_DEPTH);
        let link = Arc::new(LinkState::default());
        // Replacing the queue's sender ends the old writer task, if any.
        self.peers.insert(
            id,
            Peer {
                addr: addr.clone(),
                queue,
                link: link.clone(),
            },
        );
        actix::spawn(peer::run(
            id,
            addr,
            self.hello.clone(),
            self.auth.clone(),
            batches,
            link,
            ctx.address().recipient(),
        ));
    }

    fn unreachable(&self, id: u64) {
        if let Some(inbox) = &self.inbox {
            inbox.unreachable.do_send(Unreachable(id));
        }
    }
}

impl Actor for Transport {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for (id, addr) in std::mem::take(&mut self.initial_peers) {
            self.set_peer(id, addr, ctx);
        }
    }
}

impl Handler<AttachRaft> for Transport {
    type Result = ();

    fn handle(&mut self, AttachRaft(inbox): AttachRaft, ctx: &mut Context<Self>) {
        self.inbox = Some(inbox.clone());
        let Some(listener) = self.listener.take() else {
            return;
        };
        let me = ctx.address();
        let node_id = self.hello.node_id;
        let auth = self.auth.clone();
        actix::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        let _ = stream.set_nodelay(true);
                        let inbox = inbox.clone();
                        let me = me.clone();
                        let auth = auth.clone();
                        actix::spawn(async move {
                            if let Err(e) = serve_inbound(node_id, stream, inbox, me, auth).await {
                                tracing::debug!(%remote, error = %e, "peer connection closed");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a peer connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
}

impl Handler<Unreachable> for Transport {
    type Result = ();

    fn handle(&mut self, Unreachable(id): Unreachable, _: &mut Context<Self>) {
        self.unreachable(id);
    }
}

impl Handler<SendMessages> for Transport {
    type Result = ();

    fn handle(&mut self, SendMessages(messages): SendMessages, _: &mut Context<Self>) {
        let mut by_peer: HashMap<u64, Vec<Message>> = HashMap::new();
        for message in messages {
            by_peer.entry(message.to).or_default().push(message);
        }
        for (to, batch) in by_peer {
            let delivered = match self.peers.get(&to) {
                Some(peer) => peer.queue.try_send(batch).is_ok(),
                None => false,
            };
            if !delivered {
                self.unreachable(to);
            }
        }
    }
}

impl Handler<SetPeer> for Transport {
    type Result = ();
    fn handle(&mut self, msg: SetPeer, ctx: &mut Context<Self>) {
        self.set_peer(msg.id, msg.addr, ctx);
    }
}

impl Handler<RemovePeer> for Transport {
    type Result = ();
    fn handle(&mut self, RemovePeer(id): RemovePeer, _: &mut Context<Self>) {
        // Dropping the queue's sender ends the peer's writer task.
        self.peers.remove(&id);
    }
}

impl Handler<Peers> for Transport {
    type Result = MessageResult<Peers>;
    fn handle(&mut self, _: Peers, _: &mut Context<Self>) -> Self::Result {
        let mut peers: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(id, peer)| PeerInfo {
                id: *id,
                raft_addr: peer.addr.clone(),
                url: peer.link.url.lock().ok().and_then(|u| u.clone()),
                reachable: peer.link.connected.load(Ordering::Relaxed),
            })
            .collect();
        peers.sort_by_key(|p| p.id);
        MessageResult(peers)
    }
}

impl Handler<PeerHello> for Transport {
    type Result = ();
    fn handle(&mut self, PeerHello(hello): PeerHello, _: &mut Context<Self>) {
        if let Some(peer) = self.peers.get(&hello.node_id) {
            if let Ok(mut url) = peer.link.url.lock() {
                *url = Some(hello.url);
            }
        }
    }
}

/// Reads one peer's connection: challenge it, check its hello, then step
/// its Raft messages.
async fn serve_inbound(
    node_id: u64,
    stream: TcpStream,
    inbox: RaftInbox,
    transport: Addr<Transport>,
    auth: PeerAuth,
) -> Result<(), CodecError> {
    let (read, mut write) = stream.into_split();
    let challenge = auth::challenge();
    let mut out = Vec::new();
    codec::encode(&Frame::Challenge(challenge.clone()), &mut out);
    write.write_all(&out).await?;
    let mut reader = BufReader::with_capacity(64 << 10, read);
    let mut buf = Vec::new();
    let hello =
        match tokio::time::timeout(HELLO_TIMEOUT, codec::read_frame(&mut reader, &mut buf)).await {
            Ok(Ok(Some(Frame::Hello(hello)))) => hello,
            Ok(Ok(_)) | Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        };
    if let Err(reason) = auth.verify(&challenge, &hello) {
        // A misconfiguration that keeps a node out of its cluster: loud.
        tracing::error!(peer = hello.node_id, %reason, "refused a peer connection");
        return Ok(());
    }
    let from = hello.node_id;
    tracing::debug!(peer = from, url = %hello.url, "peer connected");
    transport.do_send(PeerHello(hello));
    while let Some(frame) = codec::read_frame(&mut reader, &mut buf).await? {
        match frame {
            Frame::Raft(message) if message.from == from && message.to == node_id => {
                inbox.step.do_send(Step(message));
            }
            Frame::Raft(message) => {
                tracing::warn!(
                    peer = from,
                    to = message.to,
                    from = message.from,
                    "dropping a misaddressed raft message"
                );
            }
            // A second hello or a challenge from the dialing side: not the protocol.
            Frame::Hello(_) | Frame::Challenge(_) => return Ok(()),
        }
    }
    Ok(())
}
