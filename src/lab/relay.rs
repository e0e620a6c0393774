//! One relay per directed Raft link of the lab: node *i* dials, for peer
//! *j*, the relay of the link *i*→*j*, which forwards to *j*'s Raft port.
//! taskraft's transport opens one outbound connection per peer and sends
//! only on it, so that connection is exactly the direction *i*→*j*.
//!
//! A cut link closes its connections and refuses new ones (a reset link,
//! as a partition looks to the sender), so the sender notices at once and
//! Raft's own reconnects and retries take over when it is healed. The relay
//! counts the Raft messages it carries by reading the frame headers
//! (`transport::codec`): the hello is v1, what follows is v2 when the hello
//! says so.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::transport::codec::{KIND_HELLO, KIND_RAFT, WIRE_V2};

/// What the lab shows and changes of one link.
#[derive(Default)]
pub struct Link {
    pub from: u64,
    pub to: u64,
    cut: AtomicBool,
    /// Raft messages carried, since the lab started.
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
        self.cut.load(Ordering::Relaxed)
    }

    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
        if cut {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            for stream in open.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Starts the relay of `link` towards `target`; returns the address the
/// dialing node is to use.
pub fn start(link: Arc<Link>, target: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name(format!("relay {}->{}", link.from, link.to))
        .spawn(move || {
            for inbound in listener.incoming().flatten() {
                if link.is_cut() {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1))
                else {
                    // The target is down: the dialer sees a reset, as it would.
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                {
                    let mut open = link.open.lock().unwrap_or_else(|e| e.into_inner());
                    open.retain(|s| s.peer_addr().is_ok());
                    for s in [&inbound, &outbound] {
                        if let Ok(clone) = s.try_clone() {
                            open.push(clone);
                        }
                    }
                }
                pipe(&link, inbound, outbound);
            }
        })?;
    Ok(addr)
}

/// Copies both ways until either side closes; counts what the dialer sends.
fn pipe(link: &Arc<Link>, inbound: TcpStream, outbound: TcpStream) {
    let (Ok(in_read), Ok(out_write)) = (inbound.try_clone(), outbound.try_clone()) else {
        return;
    };
    let counting = link.clone();
    let _ = std::thread::Builder::new()
        .name("relay fwd".into())
        .spawn(move || {
            let mut counter = FrameCounter::default();
            copy(in_read, out_write, |bytes| {
                let n = counter.feed(bytes);
                counting.messages.fetch_add(n, Ordering::Relaxed);
            })
        });
    let _ = std::thread::Builder::new()
        .name("relay back".into())
        .spawn(move || copy(outbound, inbound, |_| {}));
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
}

impl FrameCounter {
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
                    self.v2 = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|hello| hello["wire"].as_u64())
                        == Some(u64::from(WIRE_V2));
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
            if kind == KIND_HELLO && self.hello.is_none() && body < 16 << 10 {
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
        }
    }
}
