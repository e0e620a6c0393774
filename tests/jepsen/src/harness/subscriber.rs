//! WebSocket subscribers: each follows the feed across nodes, dropping its
//! connection every few seconds (or when the node goes quiet) and resuming
//! on another node with `since=` the last seq it saw — what the board's
//! page does when its node dies.
//!
//! Every connection is kept for the stream check: the node, the `since`,
//! the hello's seq, the events in arrival order, and whether it ended with
//! `resync` (after which the subscriber picks a fresh `since`: the node's
//! current `last_seq`, as a page would after reloading the list).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::client::{probe, token};
use super::os;
use super::rng::Rng;
use crate::events::{Event, EventKind};
use crate::stream::{Connection, Subscriber};

/// A byte stream a WebSocket runs on: TCP, or TLS over TCP.
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

/// A subscriber's life until `stop` says so.
pub fn follow(name: String, urls: Vec<String>, seed: u64, stop: &dyn Fn() -> bool) -> Subscriber {
    let mut rng = Rng::new(seed);
    let mut subscriber = Subscriber {
        name,
        connections: Vec::new(),
    };
    let mut last_seen: Option<u64> = None;
    let mut fresh_since: Option<u64> = Some(0);
    while !stop() {
        let node = rng.below(urls.len() as u64) as usize;
        let since = fresh_since.take().or(last_seen);
        let lifetime = Duration::from_millis(rng.between(2_000, 8_000));
        let connection = connect_once(&urls[node], node + 1, since, lifetime, stop);
        match connection {
            Some(conn) => {
                if let Some(last) = conn.events.last() {
                    last_seen = Some(last.seq);
                }
                if conn.resynced {
                    fresh_since = probe(&format!(
                        "{}/api/tasks?limit=1&consistency=local",
                        urls[node]
                    ))
                    .and_then(|b| b["last_seq"].as_u64());
                }
                let started = since.is_some() || conn.hello_seq.is_some();
                if started {
                    if last_seen.is_none() {
                        last_seen = since.or(conn.hello_seq);
                    }
                    subscriber.connections.push(conn);
                }
            }
            None => {
                os::sleep_unless(Duration::from_millis(300), stop);
            }
        }
    }
    subscriber
}

/// One connection: read frames until the lifetime ends, the node is silent
/// for 4 s, it closes, or the run stops. `None` if it never connected.
fn connect_once(
    base: &str,
    node: usize,
    since: Option<u64>,
    lifetime: Duration,
    stop: &dyn Fn() -> bool,
) -> Option<Connection> {
    let (tls, authority) = match base.strip_prefix("https://") {
        Some(authority) => (true, authority),
        None => (false, base.trim_start_matches("http://")),
    };
    let addr: std::net::SocketAddr = authority.parse().ok()?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_millis(800)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_millis(1500)))
        .ok()?;
    // The same socket, to shorten the read timeout once the handshakes are over.
    let control = tcp.try_clone().ok()?;
    let stream: Box<dyn ReadWrite> = if tls {
        let name = rustls::pki_types::ServerName::from(addr.ip());
        let connection = rustls::ClientConnection::new(testbed::agent_tls_config(), name).ok()?;
        Box::new(rustls::StreamOwned::new(connection, tcp))
    } else {
        Box::new(tcp)
    };
    let mut query: Vec<String> = since.map(|s| format!("since={s}")).into_iter().collect();
    if let Some(token) = token() {
        query.push(format!("token={}", testbed::urlencode(&token)));
    }
    let query = match query.is_empty() {
        true => String::new(),
        false => format!("?{}", query.join("&")),
    };
    let scheme = if tls { "wss" } else { "ws" };
    let (mut socket, _) =
        tungstenite::client(format!("{scheme}://{authority}/ws{query}"), stream).ok()?;
    let _ = control.set_read_timeout(Some(Duration::from_millis(250)));
    let mut conn = Connection {
        node: format!("n{node}"),
        since,
        hello_seq: None,
        events: Vec::new(),
        resynced: false,
    };
    let end = Instant::now() + lifetime;
    let mut heard = Instant::now();
    while Instant::now() < end && !stop() && heard.elapsed() < Duration::from_secs(4) {
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => {
                heard = Instant::now();
                let Ok(frame) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    continue;
                };
                match frame["type"].as_str() {
                    Some("hello") => conn.hello_seq = frame["seq"].as_u64(),
                    Some("event") => {
                        if let Some(event) = event(&frame) {
                            conn.events.push(event);
                        }
                    }
                    Some("resync") => {
                        conn.resynced = true;
                        break;
                    }
                    _ => {}
                }
            }
            Ok(tungstenite::Message::Close(_)) => break,
            Ok(_) => heard = Instant::now(),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = socket.close(None);
    let _ = socket.flush();
    Some(conn)
}

fn event(frame: &serde_json::Value) -> Option<Event> {
    let kind = match frame["kind"].as_str()? {
        "task_created" => EventKind::TaskCreated,
        "task_updated" => EventKind::TaskUpdated,
        "task_deleted" => EventKind::TaskDeleted,
        // A user's, a member's, a recovery's: in the seq, about no task.
        _ => EventKind::Other,
    };
    Some(Event {
        seq: frame["seq"].as_u64()?,
        event_id: frame["event_id"].as_str()?.to_string(),
        task_id: frame["task_id"].as_str().unwrap_or_default().to_string(),
        kind,
    })
}
