//! One peer's outbound link: connect, say hello, write batches, reconnect.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use raft::eraftpb::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::auth::PeerAuth;
use super::codec::{self, Frame, Hello};
use super::{LinkState, Unreachable};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A write that takes longer means the peer stopped reading (paused, or its
/// buffers are full): drop the connection rather than queue behind it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Runs until the transport drops the queue (the peer was removed).
pub(super) async fn run(
    id: u64,
    addr: String,
    hello: Hello,
    auth: PeerAuth,
    mut batches: mpsc::Receiver<Vec<Message>>,
    link: Arc<LinkState>,
    unreachable: Recipient<Unreachable>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await;
        if let Ok(Ok(stream)) = connected {
            let _ = stream.set_nodelay(true);
            link.connected.store(true, Ordering::Relaxed);
            backoff = BACKOFF_MIN;
            tracing::debug!(peer = id, %addr, "connected to peer");
            let ended = write_batches(stream, &hello, &auth, &mut batches).await;
            link.connected.store(false, Ordering::Relaxed);
            match ended {
                Ended::QueueClosed => return,
                Ended::Failed(e) => {
                    tracing::debug!(peer = id, %addr, error = %e, "peer link failed")
                }
            }
        }
        // While disconnected, what was queued is stale: Raft will resend.
        loop {
            match batches.try_recv() {
                Ok(_) => continue,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        unreachable.do_send(Unreachable(id));
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Ended {
    QueueClosed,
    Failed(std::io::Error),
}

async fn write_batches(
    stream: TcpStream,
    hello: &Hello,
    auth: &PeerAuth,
    batches: &mut mpsc::Receiver<Vec<Message>>,
) -> Ended {
    let (mut read, mut stream) = stream.into_split();
    // The accepting side speaks first: answer its challenge.
    let mut buf = Vec::with_capacity(64 << 10);
    let challenge =
        match tokio::time::timeout(CONNECT_TIMEOUT, codec::read_frame(&mut read, &mut buf)).await {
            Ok(Ok(Some(Frame::Challenge(challenge)))) => challenge,
            Ok(Err(codec::CodecError::Io(e))) => return Ended::Failed(e),
            _ => {
                return Ended::Failed(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the peer did not send a challenge",
                ))
            }
        };
    buf.clear();
    let hello = Hello {
        proof: auth.prove(&challenge, hello.node_id),
        cluster_id: Some(auth.cluster_id.clone()).filter(|c| !c.is_empty()),
        ..hello.clone()
    };
    codec::encode(&Frame::Hello(hello), &mut buf);
    loop {
        if !buf.is_empty() {
            match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&buf)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Ended::Failed(e),
                Err(_) => {
                    return Ended::Failed(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "peer stopped reading",
                    ))
                }
            }
            buf.clear();
        }
        let Some(batch) = batches.recv().await else {
            return Ended::QueueClosed;
        };
        for message in batch {
            codec::encode(&Frame::Raft(message), &mut buf);
        }
        // Whatever else is already queued goes out in the same write.
        while let Ok(batch) = batches.try_recv() {
            for message in batch {
                codec::encode(&Frame::Raft(message), &mut buf);
            }
        }
    }
}

/// Spreads reconnects of several nodes apart: ±25 % of `base`.
fn jittered(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    base.mul_f64(factor)
}
