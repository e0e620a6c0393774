//! The peer transport: Raft messages between nodes over TCP.
//!
//! Each node dials every peer once and keeps that connection for its own
//! outbound messages; it accepts the peers' connections on `raft_addr` for
//! inbound ones. Per peer there is a bounded queue and one writer task that
//! drains everything queued into one write, so a Ready's messages to a peer
//! leave as one batch. When a peer is slow or gone the queue fills and
//! messages are dropped: Raft resends what matters, and the node is told
//! the peer is unreachable so raft-rs probes it instead of streaming to it.
//! Only Raft frames cross this port; clients never reach it. Peers do use
//! each other's HTTP API besides (joining, forwarding membership changes and
//! leadership transfers to the leader, copying rows after a snapshot).
//!
//! The rest of the node reaches the actor through [`TransportHandle`]; the
//! messages it exchanges with the Raft node are the Raft node's own ports
//! (`crate::raft::{SendMessages, SetPeer, RemovePeer, Step, Unreachable}`).
//!
//! Each connection starts with a challenge from the accepting side and a
//! hello from the dialing side ([`auth`]): peers of another cluster, or
//! without the `cluster_secret`, are refused before any Raft message.
//!
//! Bounded in memory and time ([`codec`] for the frames):
//! - at most [`MAX_CONNECTIONS`] connections on the port and
//!   [`MAX_CONNECTIONS_PER_ADDRESS`] from one address; the excess is closed
//!   at once and counted (`crate::connections`);
//! - before the hello is verified a peer may send one frame of at most
//!   [`codec::PRE_AUTH_MAX_FRAME`] bytes, within [`HELLO_TIMEOUT`];
//! - after it, frames up to [`codec::MAX_FRAME`], read as they arrive; a
//!   frame that stops arriving half-way ([`STALL_TIMEOUT`]) or fails its
//!   checksum means the stream lost bytes, and the connection is closed;
//! - a link with nothing to say is pinged by its dialer every
//!   [`PING_INTERVAL`], and one silent for [`IDLE_TIMEOUT`] is closed.
//!
//! The dialer reads its side of the connection too, though the acceptor
//! sends nothing after the challenge: a close from the acceptor (a refused
//! hello, a broken stream, a restart) is noticed at once and the link
//! reconnected before the next message is lost in it. Refusals are logged
//! at most once per reason and address every ten seconds.
//!
//! With `peer_tls_*` set, every connection is mutual TLS first
//! ([`crate::tls`]): the dialer must present a certificate from the cluster
//! CA (else the handshake fails: `no_client_cert`, `bad_cert`,
//! `tls_handshake`), and once its hello is verified the certificate must
//! name the node the hello proved (`node-<id>`, else `cert_name`). The
//! dialer checks the acceptor's certificate for the name of the node it
//! dials. The challenge and hello run inside the TLS stream, unchanged.
//!
//! What a hello may change: the URL shown for its (authenticated) sender,
//! if that URL is a valid http(s) URL of at most
//! [`crate::config::MAX_URL_LEN`] bytes. Nothing else.
//!
//! Not implemented yet: streaming snapshots.

pub mod auth;
pub mod codec;
mod handle;
mod peer;
mod watch;

pub use handle::{TransportError, TransportHandle};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use self::auth::{PeerAuth, Refusal};
use self::codec::{CodecError, Frame, Hello, Limits, Wire};
use crate::connections::{Limiter, RefusalLog};
use crate::raft::PeerMessage;
pub use crate::raft::{RaftInbox, RemovePeer, SendMessages, SetPeer, Step, Unreachable};
use crate::tls::PeerTls;

/// Outbound batches queued per peer before messages are dropped.
const QUEUE_DEPTH: usize = 256;
/// How long an accepted connection may take to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections on the Raft port in all: a cluster has a handful of peers.
pub const MAX_CONNECTIONS: usize = 128;
/// Connections from one address: a peer holds one (two while reconnecting).
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 16;
/// A frame that has begun must go on arriving at least this often.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);
/// A v2 dialer sends a ping after this long without writing anything.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A v2 link with no frame (not even a ping) for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects the transport to the Raft node and starts accepting peers.
#[derive(Message)]
#[rtype(result = "()")]
struct AttachRaft(RaftInbox);

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
    queue: mpsc::Sender<Vec<PeerMessage>>,
    link: Arc<LinkState>,
}

/// Shared between the transport and a peer's writer task.
#[derive(Default)]
pub(crate) struct LinkState {
    connected: AtomicBool,
    url: Mutex<Option<String>>,
}

/// The actor: one writer task per peer, and the inbound listener.
pub struct Transport {
    hello: Hello,
    initial_peers: HashMap<u64, String>,
    peers: HashMap<u64, Peer>,
    /// Set by [`AttachRaft`]; until then nothing is accepted.
    inbox: Option<RaftInbox>,
    listener: Option<TcpListener>,
    auth: PeerAuth,
    /// The versions peers announce in their hellos.
    versions: crate::version::PeerVersions,
    /// Mutual TLS under the hello, when configured.
    tls: Option<PeerTls>,
}

impl Transport {
    /// A transport for node `hello.node_id` that will accept on `listener`
    /// once a Raft node is attached.
    fn new(
        hello: Hello,
        peers: HashMap<u64, String>,
        listener: TcpListener,
        auth: PeerAuth,
        tls: Option<PeerTls>,
        versions: crate::version::PeerVersions,
    ) -> Transport {
        Transport {
            hello,
            initial_peers: peers,
            peers: HashMap::new(),
            inbox: None,
            listener: Some(listener),
            auth,
            tls,
            versions,
        }
    }

    fn set_peer(&mut self, id: u64, addr: String, ctx: &mut Context<Self>) {
        if id == self.hello.node_id {
            return;
        }
        if self.peers.get(&id).is_some_and(|p| p.addr == addr) {
            return;
        }
        crate::metrics::peer_known(id);
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
            peer::Dialer {
                hello: self.hello.clone(),
                auth: self.auth.clone(),
                tls: self.tls.clone(),
            },
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
        let inbound = Inbound {
            node_id: self.hello.node_id,
            inbox,
            transport: ctx.address(),
            auth: self.auth.clone(),
            tls: self.tls.clone(),
            refusals: Arc::new(RefusalLog::default()),
        };
        let limiter = Limiter::new("raft", MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS);
        actix::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        // Over a cap: closed before a byte of it is read.
                        let permit = match limiter.admit(remote.ip()) {
                            Ok(permit) => permit,
                            Err(over) => {
                                // Counted by the limiter.
                                inbound.log_only(
                                    remote,
                                    over.reason(),
                                    &format!(
                                        "too many connections ({} in all, {} per address)",
                                        MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS
                                    ),
                                );
                                continue;
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let inbound = inbound.clone();
                        actix::spawn(async move {
                            let _permit = permit;
                            inbound.serve(stream, remote).await;
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
        let mut by_peer: HashMap<u64, Vec<PeerMessage>> = HashMap::new();
        for message in messages {
            by_peer.entry(message.to_id()).or_default().push(message);
        }
        for (to, batch) in by_peer {
            let delivered = match self.peers.get(&to) {
                Some(peer) => peer.queue.try_send(batch).is_ok(),
                None => false,
            };
            if !delivered {
                crate::metrics::PEER_SENT_FAILURES
                    .with_label_values(&[&to.to_string()])
                    .inc();
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
        // Only an authenticated hello gets here, and its URL was checked.
        self.versions.heard(hello.node_id, hello.version.as_deref());
        if let Some(peer) = self.peers.get(&hello.node_id) {
            if let Ok(mut url) = peer.link.url.lock() {
                *url = Some(hello.url);
            }
        }
    }
}

/// What every inbound connection needs.
#[derive(Clone)]
struct Inbound {
    node_id: u64,
    inbox: RaftInbox,
    transport: Addr<Transport>,
    auth: PeerAuth,
    tls: Option<PeerTls>,
    refusals: Arc<RefusalLog>,
}

impl Inbound {
    /// Counts a refused or broken connection and logs it, rate-limited:
    /// at ERROR when it looks like a misconfiguration (a node of another
    /// cluster, or without the secret), at INFO for a peer still learning
    /// the cluster id, else at WARN.
    fn log_refusal(&self, remote: SocketAddr, reason: &'static str, message: &str) {
        crate::metrics::CONNECTIONS_REFUSED
            .with_label_values(&["raft", reason])
            .inc();
        self.log_only(remote, reason, message);
    }

    /// The log line of [`Inbound::log_refusal`], for a refusal counted elsewhere.
    fn log_only(&self, remote: SocketAddr, reason: &'static str, message: &str) {
        let Some(suppressed) = self.refusals.should_log(reason, remote.ip()) else {
            return;
        };
        match reason {
            "no_secret_here" | "no_cluster_id" | "wrong_cluster" | "no_proof" | "bad_proof"
            | "bad_url" | "bad_hello" | "no_client_cert" | "bad_cert" | "cert_name"
            | "tls_handshake" => {
                tracing::error!(%remote, reason, suppressed, "refused a peer connection: {message}")
            }
            "peer_forming" => {
                tracing::info!(%remote, reason, suppressed, "refused a peer connection: {message}")
            }
            _ => tracing::warn!(%remote, reason, suppressed, "closed a peer connection: {message}"),
        }
    }

    async fn serve(&self, stream: TcpStream, remote: SocketAddr) {
        let served = match &self.tls {
            None => self.serve_connection(stream, remote, None, None).await,
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.configs().server.clone());
                let undecoded = watch::Undecoded::default();
                let stream = watch::Raw::new(stream, undecoded.clone());
                match tokio::time::timeout(HELLO_TIMEOUT, acceptor.accept(stream)).await {
                    Err(_) => Err(Closed::HelloTimeout),
                    Ok(Err(e)) => Err(Closed::Tls {
                        reason: crate::tls::handshake_reason(&e),
                        error: e,
                    }),
                    Ok(Ok(stream)) => {
                        let cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .map(|cert| cert.clone().into_owned());
                        // The verifier requires one; none would be a bug.
                        let stream = watch::Plain::new(stream, undecoded.clone());
                        match cert {
                            Some(cert) => {
                                self.serve_connection(stream, remote, Some(cert), Some(undecoded))
                                    .await
                            }
                            None => Err(Closed::Tls {
                                reason: "no_client_cert",
                                error: std::io::Error::other("no client certificate"),
                            }),
                        }
                    }
                }
            }
        };
        match served {
            Ok(()) => {}
            Err(Closed::Codec(CodecError::Io(e))) => {
                tracing::debug!(%remote, error = %e, "peer connection closed");
            }
            Err(closed) => self.log_refusal(remote, closed.reason(), &closed.to_string()),
        }
    }

    /// Challenges one connection, checks its hello, then steps its Raft
    /// messages until it ends.
    /// Under TLS, `cert` is the dialer's certificate, which must name the
    /// node its hello proves, and `undecoded` tells whether the bytes
    /// arriving still decrypt (see [`watch`]).
    async fn serve_connection<S>(
        &self,
        stream: S,
        remote: SocketAddr,
        cert: Option<rustls_pki_types::CertificateDer<'static>>,
        undecoded: Option<watch::Undecoded>,
    ) -> Result<(), Closed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (read, mut write) = tokio::io::split(stream);
        let challenge = auth::challenge();
        let mut out = Vec::new();
        codec::encode(&Frame::Challenge(challenge.clone()), &mut out, Wire::V1);
        write.write_all(&out).await.map_err(CodecError::from)?;
        write.flush().await.map_err(CodecError::from)?;
        let mut reader = BufReader::with_capacity(16 << 10, read);
        let mut buf = Vec::new();
        let pre_auth = Limits {
            wire: Wire::V1,
            max_frame: codec::PRE_AUTH_MAX_FRAME,
            kinds: &[codec::KIND_HELLO],
            stall: HELLO_TIMEOUT,
        };
        let hello = match tokio::time::timeout(
            HELLO_TIMEOUT,
            codec::read_frame(&mut reader, &mut buf, &pre_auth),
        )
        .await
        {
            Ok(Ok(Some(Frame::Hello(hello)))) => hello,
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(Closed::HelloTimeout),
        };
        self.auth.verify(&challenge, &hello)?;
        if hello.node_id == self.node_id || hello.node_id == 0 {
            return Err(Closed::BadHello {
                node: hello.node_id,
            });
        }
        if let Some(cert) = &cert {
            if !crate::tls::cert_names_node(cert, hello.node_id) {
                return Err(Closed::CertName {
                    node: hello.node_id,
                });
            }
        }
        if let Err(problem) = crate::config::check_http_url(&hello.url) {
            return Err(Closed::BadUrl {
                node: hello.node_id,
                problem,
            });
        }
        let from = hello.node_id;
        let wire = Wire::of(&hello);
        tracing::debug!(peer = from, url = %hello.url, ?wire, %remote, "peer connected");
        self.transport.do_send(PeerHello(hello));
        let limits = Limits {
            wire,
            max_frame: codec::MAX_FRAME,
            kinds: match wire {
                Wire::V1 => &[codec::KIND_RAFT],
                Wire::V2 => &[codec::KIND_RAFT, codec::KIND_PING],
            },
            stall: STALL_TIMEOUT,
        };
        loop {
            let next = codec::read_frame(&mut reader, &mut buf, &limits);
            tokio::pin!(next);
            // The previous version neither pings nor watches for a close:
            // an idle link of one is left open.
            let idle_at = (wire == Wire::V2).then(|| tokio::time::Instant::now() + IDLE_TIMEOUT);
            let frame = loop {
                let check = tokio::time::sleep(STALL_TIMEOUT / 4);
                tokio::select! {
                    frame = &mut next => break frame?,
                    _ = check => {
                        if undecoded.as_ref().is_some_and(|u| u.stuck_for(STALL_TIMEOUT)) {
                            return Err(CodecError::Stalled(STALL_TIMEOUT).into());
                        }
                        if idle_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                            return Err(Closed::Idle { node: from });
                        }
                    }
                }
            };
            match frame {
                None => return Ok(()),
                Some(Frame::Raft(message))
                    if message.from_id() == from && message.to_id() == self.node_id =>
                {
                    self.inbox.step.do_send(Step(message));
                }
                Some(Frame::Raft(message)) => {
                    tracing::warn!(
                        peer = from,
                        to = message.to_id(),
                        from = message.from_id(),
                        "dropping a misaddressed raft message"
                    );
                }
                Some(Frame::Ping) => {}
                // The limits admit no other kind.
                Some(Frame::Hello(_) | Frame::Challenge(_)) => return Ok(()),
            }
        }
    }
}

/// Why an inbound connection ended early.
#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("no hello within {:?}", HELLO_TIMEOUT)]
    HelloTimeout,
    /// A hello naming this node, or node 0.
    #[error("a hello claiming node id {node}")]
    BadHello { node: u64 },
    /// The URL a hello advertises is not one this node would show (the
    /// config's check says why).
    #[error("node {node} advertises {problem}")]
    BadUrl {
        node: u64,
        problem: crate::config::BadUrl,
    },
    #[error("node {node} sent nothing for {:?}", IDLE_TIMEOUT)]
    Idle { node: u64 },
    /// The TLS handshake failed (`reason` says how, for the metric).
    #[error("TLS handshake: {error}")]
    Tls {
        reason: &'static str,
        error: std::io::Error,
    },
    /// A certificate from the cluster CA that does not name the node the
    /// hello proved.
    #[error("node {node}'s certificate does not name it (DNS name node-{node})")]
    CertName { node: u64 },
}

impl Closed {
    /// The metric's label and the log's `reason` field.
    fn reason(&self) -> &'static str {
        match self {
            Closed::Refused(refusal) => refusal.reason(),
            Closed::Codec(e) => e.reason(),
            Closed::HelloTimeout => "hello_timeout",
            Closed::BadHello { .. } => "bad_hello",
            Closed::BadUrl { .. } => "bad_url",
            Closed::Idle { .. } => "idle",
            Closed::Tls { reason, .. } => reason,
            Closed::CertName { .. } => "cert_name",
        }
    }
}
