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

use super::client::probe;
use super::os;
use super::rng::Rng;
use crate::events::{Event, EventKind};
use crate::stream::{Connection, Subscriber};

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
    let authority = base.trim_start_matches("http://");
    let addr: std::net::SocketAddr = authority.parse().ok()?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(800)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .ok()?;
    let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
    let (mut socket, _) =
        tungstenite::client(format!("ws://{authority}/ws{query}"), stream).ok()?;
    let _ = socket
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(250)));
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
        _ => return None,
    };
    Some(Event {
        seq: frame["seq"].as_u64()?,
        event_id: frame["event_id"].as_str()?.to_string(),
        task_id: frame["task_id"].as_str()?.to_string(),
        kind,
    })
}
