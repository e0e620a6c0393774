//! One peer's outbound link: connect, say hello, write batches, reconnect.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Recipient;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::auth::PeerAuth;
use super::codec::{self, Frame, Hello, Limits, Wire};
use super::{LinkState, Unreachable, PING_INTERVAL};
use crate::raft::PeerMessage;
use crate::tls::PeerTls;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A write that takes longer means the peer stopped reading (paused, or its
/// buffers are full): drop the connection rather than queue behind it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A link that lasted this long was healthy: reconnect at once after it.
const HEALTHY_FOR: Duration = Duration::from_secs(1);
/// A challenge is 33 bytes; an acceptor sending more is not one of us.
const MAX_CHALLENGE_FRAME: usize = 1 << 10;

/// What this node presents when it dials: its hello, the secret that
/// proves it, and (with peer TLS) its certificate.
pub(super) struct Dialer {
    pub hello: Hello,
    pub auth: PeerAuth,
    pub tls: Option<PeerTls>,
}

/// Runs until the transport drops the queue (the peer was removed).
pub(super) async fn run(
    id: u64,
    addr: String,
    dialer: Dialer,
    mut batches: mpsc::Receiver<Vec<PeerMessage>>,
    link: Arc<LinkState>,
    unreachable: Recipient<Unreachable>,
) {
    let Dialer { hello, auth, tls } = dialer;
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await;
        if let Ok(Ok(stream)) = connected {
            let _ = stream.set_nodelay(true);
            let since = Instant::now();
            link.connected.store(true, Ordering::Relaxed);
            tracing::debug!(peer = id, %addr, "connected to peer");
            let ended = match &tls {
                None => write_batches(stream, &hello, &auth, &mut batches).await,
                Some(tls) => match handshake(tls, id, stream).await {
                    Ok(stream) => write_batches(stream, &hello, &auth, &mut batches).await,
                    Err(e) => Ended::Failed(e),
                },
            };
            link.connected.store(false, Ordering::Relaxed);
            // A link refused at its hello would otherwise be redialed in a
            // tight loop; one that carried messages for a while is redialed
            // at once.
            if since.elapsed() >= HEALTHY_FOR {
                backoff = BACKOFF_MIN;
            }
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
        crate::metrics::PEER_SENT_FAILURES
            .with_label_values(&[&id.to_string()])
            .inc();
        unreachable.do_send(Unreachable(id));
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Ended {
    QueueClosed,
    Failed(std::io::Error),
}

fn failed(kind: std::io::ErrorKind, message: &str) -> Ended {
    Ended::Failed(std::io::Error::new(kind, message.to_string()))
}

/// Mutual TLS with node `id`: its certificate must come from the cluster
/// CA and name it (`node-<id>`); ours goes the other way.
async fn handshake(
    tls: &PeerTls,
    id: u64,
    stream: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = rustls_pki_types::ServerName::try_from(crate::tls::node_name(id))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let connector = tokio_rustls::TlsConnector::from(tls.configs().client.clone());
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

async fn write_batches<S>(
    stream: S,
    hello: &Hello,
    auth: &PeerAuth,
    batches: &mut mpsc::Receiver<Vec<PeerMessage>>,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut read, mut stream) = tokio::io::split(stream);
    // The accepting side speaks first: answer its challenge.
    let mut buf = Vec::with_capacity(64 << 10);
    let limits = Limits {
        wire: Wire::V1,
        max_frame: MAX_CHALLENGE_FRAME,
        kinds: &[codec::KIND_CHALLENGE],
        stall: CONNECT_TIMEOUT,
    };
    let challenge = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        codec::read_frame(&mut read, &mut buf, &limits),
    )
    .await
    {
        Ok(Ok(Some(Frame::Challenge(challenge)))) => challenge,
        Ok(Err(codec::CodecError::Io(e))) => return Ended::Failed(e),
        _ => {
            return failed(
                std::io::ErrorKind::InvalidData,
                "the peer did not send a challenge",
            )
        }
    };
    // The acceptor offers the checksummed framing after 32 random bytes;
    // a node of the previous version does not, and gets v1.
    let wire = match challenge.get(32) {
        Some(&v) if v >= codec::WIRE_V2 => Wire::V2,
        _ => Wire::V1,
    };
    buf.clear();
    let hello = Hello {
        proof: auth.prove(&challenge, hello.node_id),
        cluster_id: Some(auth.cluster_id()),
        wire: (wire == Wire::V2).then_some(codec::WIRE_V2),
        ..hello.clone()
    };
    codec::encode(&Frame::Hello(hello), &mut buf, Wire::V1);
    let mut scratch = [0u8; 64];
    let mut last_write = Instant::now();
    loop {
        if !buf.is_empty() {
            let write = async {
                stream.write_all(&buf).await?;
                stream.flush().await
            };
            match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Ended::Failed(e),
                Err(_) => {
                    return failed(std::io::ErrorKind::TimedOut, "peer stopped reading");
                }
            }
            buf.clear();
            last_write = Instant::now();
        }
        let ping_due = tokio::time::Instant::from_std(last_write + PING_INTERVAL);
        tokio::select! {
            batch = batches.recv() => {
                let Some(batch) = batch else {
                    return Ended::QueueClosed;
                };
                for message in batch {
                    codec::encode(&Frame::Raft(message), &mut buf, wire);
                }
                // Whatever else is already queued goes out in the same write.
                while let Ok(batch) = batches.try_recv() {
                    for message in batch {
                        codec::encode(&Frame::Raft(message), &mut buf, wire);
                    }
                }
            }
            // The acceptor sends nothing after its challenge: anything here
            // is its close (it refused us, or found our stream broken).
            read = read.read(&mut scratch) => match read {
                Ok(0) => return failed(std::io::ErrorKind::ConnectionAborted, "the peer closed the connection"),
                Ok(_) => {}
                Err(e) => return Ended::Failed(e),
            },
            _ = tokio::time::sleep_until(ping_due), if wire == Wire::V2 => {
                codec::encode(&Frame::Ping, &mut buf, wire);
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
