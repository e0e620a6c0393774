//! The lab's relays: every peer dials node *j* at *j*'s relay (the Raft
//! address the cluster knows *j* by), which forwards to *j*'s Raft port.
//! A relay serves every directed link *i*→*j* into its node: it reads the
//! dialer's hello (the first frame the dialer sends, after the acceptor's
//! challenge) and files the connection under the link of the node id the
//! hello names. taskraft's transport opens one outbound connection per
//! peer and sends only on it, so that connection is exactly the direction
//! *i*→*j*.
//!
//! One relay per node rather than one per link, because a member has one
//! Raft address for the whole cluster: a node that joins later announces
//! it, and every member (and every snapshot) records that one address. So
//! a node the lab adds is relayed like the first ones, and a snapshot's
//! membership sends no one around a relay.
//!
//! A cut link closes its connections and refuses new ones (right after
//! their hello: a reset link, as a partition looks to the sender), so the
//! sender notices at once and Raft's own reconnects and retries take over
//! when it is healed. The relay counts the Raft messages it carries by
//! reading the frame headers (`transport::codec`): the hello is v1, what
//! follows is v2 when the hello says so.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::transport::codec::{KIND_HELLO, KIND_RAFT, WIRE_V2};

/// Every directed link of the lab, by (from, to), shared by the relays.
pub type Links = Arc<Mutex<BTreeMap<(u64, u64), Arc<Link>>>>;

/// The most a dialer may send before its hello is complete.
const MAX_BEFORE_HELLO: usize = 64 << 10;
/// How long a dialer may take to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// What the lab shows and changes of one link.
#[derive(Default)]
pub struct Link {
    pub from: u64,
    pub to: u64,
    cut: AtomicBool,
    /// Raft messages carried, since the link was made.
    messages: AtomicU64,
    /// Open connections, to close them when the link is cut.
    open: Mutex<Vec<TcpStream>>,
}

impl Link {
    pub fn new(from: u64, to: u64) -> Link {
        Link {
            from,
            to,
            ..Link::default()
        }
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            self.close_all();
        }
    }

    fn close_all(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Files a connection under this link, unless the link is cut (checked
    /// under the same lock [`Link::set_cut`] closes connections under, so
    /// none slips through a cut).
    fn admit(&self, streams: [&TcpStream; 2]) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_cut() {
            return false;
        }
        open.retain(|s| s.peer_addr().is_ok());
        for s in streams {
            if let Ok(clone) = s.try_clone() {
                open.push(clone);
            }
        }
        true
    }
}

/// The relay in front of one node's Raft port.
pub struct Relay {
    /// The node it forwards to.
    pub to: u64,
    /// Where the other nodes dial it.
    pub addr: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl Relay {
    /// Starts the relay of node `to` on `port` (0: any free port), in
    /// front of its Raft port `target`; links are looked up in `links`.
    pub fn start(to: u64, port: u16, target: SocketAddr, links: Links) -> std::io::Result<Relay> {
        let listener =
            TcpListener::bind(("127.0.0.1", port)).or_else(|_| TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        std::thread::Builder::new()
            .name(format!("relay ->{to}"))
            .spawn(move || {
                for inbound in listener.incoming().flatten() {
                    if stop.load(Ordering::SeqCst) {
                        let _ = inbound.shutdown(Shutdown::Both);
                        break;
                    }
                    let links = links.clone();
                    let _ = std::thread::Builder::new()
                        .name(format!("relay conn ->{to}"))
                        .spawn(move || connection(to, inbound, target, &links));
                }
            })?;
        Ok(Relay { to, addr, stopped })
    }

    /// Stops accepting (the node was removed); its links' connections are
    /// closed by whoever drops the links.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// One dialer's connection: the challenge goes back as it comes, the hello
/// says which link it is, then it is piped (and counted) until either side
/// closes or the link is cut.
fn connection(to: u64, inbound: TcpStream, target: SocketAddr, links: &Links) {
    let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
        // The target is down: the dialer sees a reset, as it would.
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (Ok(mut in_read), Ok(out_read), Ok(in_write)) = (
        inbound.try_clone(),
        outbound.try_clone(),
        inbound.try_clone(),
    ) else {
        return;
    };
    // The acceptor speaks first (its challenge): relay it back at once.
    let _ = std::thread::Builder::new()
        .name("relay back".into())
        .spawn(move || copy(out_read, in_write, |_| {}));

    let close = |a: &TcpStream, b: &TcpStream| {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    };
    let _ = in_read.set_read_timeout(Some(HELLO_WITHIN));
    let mut counter = FrameCounter::default();
    let mut early = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    let mut frames = 0;
    let from = loop {
        match in_read.read(&mut buf) {
            Ok(0) | Err(_) => return close(&inbound, &outbound),
            Ok(n) => {
                frames += counter.feed(&buf[..n]);
                early.extend_from_slice(&buf[..n]);
            }
        }
        if let Some(from) = counter.sender() {
            break from;
        }
        if counter.past_hello() || early.len() > MAX_BEFORE_HELLO {
            // Not a peer's hello: nothing the lab relays.
            return close(&inbound, &outbound);
        }
    };
    let _ = in_read.set_read_timeout(None);
    let link = links
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(from, to))
        .cloned();
    let Some(link) = link else {
        // A node this lab does not run (or no longer does).
        return close(&inbound, &outbound);
    };
    if !link.admit([&inbound, &outbound]) {
        return close(&inbound, &outbound);
    }
    let Ok(mut out_write) = outbound.try_clone() else {
        return close(&inbound, &outbound);
    };
    if out_write.write_all(&early).is_err() {
        return close(&inbound, &outbound);
    }
    link.messages.fetch_add(frames, Ordering::Relaxed);
    copy(in_read, out_write, |bytes| {
        let n = counter.feed(bytes);
        link.messages.fetch_add(n, Ordering::Relaxed);
    });
}

fn copy(mut from: TcpStream, mut to: TcpStream, mut seen: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
/// Counts Raft frames in the dialer's byte stream without buffering them:
/// only headers (and the small hello) are kept.
#[derive(Default)]
pub struct FrameCounter {
    /// The header being read: length (4) and kind (1).
    header: Vec<u8>,
    /// Bytes of the current frame still to skip after its header.
    skip: u64,
    /// The hello's body, read to learn the framing that follows.
    hello: Option<Vec<u8>>,
    hello_left: usize,
    v2: bool,
    /// The node id the hello named.
    sender: Option<u64>,
    /// A first frame was read whole (hello or not).
    first_done: bool,
}

impl FrameCounter {
    /// The dialer, once its hello has been read.
    pub fn sender(&self) -> Option<u64> {
        self.sender
    }

    /// Whether the first frame is over without naming a sender: the stream
    /// did not start with a hello.
    pub fn past_hello(&self) -> bool {
        self.first_done && self.hello.is_none() && self.hello_left == 0 && self.sender.is_none()
    }

    /// Feeds bytes; returns how many Raft frames began in them.
    pub fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut frames = 0;
        while !bytes.is_empty() {
            if self.hello_left > 0 {
                let take = self.hello_left.min(bytes.len());
                if let Some(hello) = &mut self.hello {
                    hello.extend_from_slice(&bytes[..take]);
                }
                self.hello_left -= take;
                bytes = &bytes[take..];
                if self.hello_left == 0 {
                    let body = self.hello.take().unwrap_or_default();
                    let hello = serde_json::from_slice::<serde_json::Value>(&body).ok();
                    self.v2 =
                        hello.as_ref().and_then(|h| h["wire"].as_u64()) == Some(u64::from(WIRE_V2));
                    self.sender = hello.as_ref().and_then(|h| h["node_id"].as_u64());
                }
                continue;
            }
            if self.skip > 0 {
                let take = (self.skip as usize).min(bytes.len());
                self.skip -= take as u64;
                bytes = &bytes[take..];
                continue;
            }
            let want = 5 - self.header.len();
            let take = want.min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() < 5 {
                continue;
            }
            let length = u32::from_be_bytes([
                self.header[0],
                self.header[1],
                self.header[2],
                self.header[3],
            ]) as u64;
            let kind = self.header[4];
            self.header.clear();
            // `length` counts the kind byte and the body.
            let body = length.saturating_sub(1);
            let first = !self.first_done;
            self.first_done = true;
            if kind == KIND_HELLO && first && body < 16 << 10 {
                self.hello = Some(Vec::new());
                self.hello_left = body as usize;
                if body == 0 {
                    self.hello = None;
                }
                continue;
            }
            if kind == KIND_RAFT {
                frames += 1;
            }
            // v2: a header CRC before the body and a body CRC after it.
            self.skip = if self.v2 { body + 8 } else { body };
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::codec::{encode, Frame, Hello, Wire};

    #[test]
    fn raft_frames_are_counted_across_any_split_in_both_framings() {
        let hello = Hello {
            node_id: 1,
            url: "http://127.0.0.1:1".into(),
            cluster_id: None,
            proof: None,
            wire: Some(WIRE_V2),
            version: None,
        };
        let mut stream = Vec::new();
        encode(&Frame::Hello(hello), &mut stream, Wire::V1);
        for i in 0..5u64 {
            let message = crate::raft::PeerMessage::sample_append(2, 1, i as usize);
            encode(&Frame::Raft(message), &mut stream, Wire::V2);
            encode(&Frame::Ping, &mut stream, Wire::V2);
        }
        for piece in [1, 3, 7, 64, stream.len()] {
            let mut counter = FrameCounter::default();
            let counted: u64 = stream.chunks(piece).map(|c| counter.feed(c)).sum();
            assert_eq!(counted, 5, "pieces of {piece} bytes");
            assert_eq!(counter.sender(), Some(1), "the hello names the dialer");
            assert!(!counter.past_hello());
        }
    }

    #[test]
    fn a_stream_that_does_not_start_with_a_hello_names_no_sender() {
        let mut stream = Vec::new();
        encode(
            &Frame::Raft(crate::raft::PeerMessage::sample_append(2, 1, 0)),
            &mut stream,
            Wire::V1,
        );
        let mut counter = FrameCounter::default();
        counter.feed(&stream[..3]);
        assert!(!counter.past_hello(), "not yet known");
        counter.feed(&stream[3..]);
        assert_eq!(counter.sender(), None);
        assert!(counter.past_hello());
    }
}
