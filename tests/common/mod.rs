//! The integration tests' side of the shared harness (`tests/testbed`):
//! real `taskraft` processes over real TCP, with a real MariaDB/MySQL server
//! that the harness starts privately (its own data directory and port)
//! unless `TASKRAFT_TEST_MYSQL_URL` names one. Processes are stopped by PID;
//! on a failing test the nodes' log tails are printed.
//!
//! [`Cluster`] and [`Node`] are the testbed's; [`Start`] starts one from
//! this crate's `taskraft` build. The rest is the tests' client: HTTP
//! calls, the WebSocket feed, writers and what they saw, metrics, RSS.

#![allow(dead_code)]

pub mod accounts;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
pub use testbed::Cluster;
// Not every test binary uses these.
#[allow(unused_imports)]
pub use testbed::{tail, urlencode, Node};

pub const BIN: &str = env!("CARGO_BIN_EXE_taskraft");

/// Starting a [`Cluster`] of this build's nodes (in scope with `common::*`).
pub trait Start {
    /// Starts a MySQL server and `n` nodes, and waits until a leader serves.
    fn start(n: usize) -> Cluster {
        Self::start_with(n, &[])
    }

    /// Like [`Start::start`], every node with `env` too.
    fn start_with(n: usize, env: &[(&str, &str)]) -> Cluster {
        Self::start_with_mysql(n, env, &[])
    }

    /// Like [`Start::start_with`], the private MySQL server started with
    /// `mysql_args` too (e.g. `--max-allowed-packet=4M`).
    fn start_with_mysql(n: usize, env: &[(&str, &str)], mysql_args: &[&str]) -> Cluster {
        Self::start_after(n, env, mysql_args, |_| {})
    }

    /// Like [`Start::start_with_mysql`], running `setup` once MySQL is up
    /// and before any node starts (to create accounts, set per-node env…).
    fn start_after(
        n: usize,
        env: &[(&str, &str)],
        mysql_args: &[&str],
        setup: impl FnOnce(&mut Cluster),
    ) -> Cluster;
}

impl Start for Cluster {
    fn start_after(
        n: usize,
        env: &[(&str, &str)],
        mysql_args: &[&str],
        setup: impl FnOnce(&mut Cluster),
    ) -> Cluster {
        let mut options = testbed::Options::new(BIN);
        options.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        options.mysql.extra_args = mysql_args.iter().map(|a| a.to_string()).collect();
        options.template_root = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
        Cluster::launch_after(n, options, setup)
    }
}

/// The node built with crash points (`scripts/build-failpoints`, which
/// `scripts/test` runs first).
pub fn failpoints_binary() -> PathBuf {
    let path = PathBuf::from(BIN).with_file_name("taskraft-failpoints");
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-failpoints",
        path.display()
    );
    path
}

/// An HTTP response, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    /// 0 when the request did not get an HTTP answer (connection refused…).
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// The body, once the status is `status` (else the test fails with
    /// the whole response).
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        self.body.clone()
    }
}

fn agent() -> ureq::Agent {
    testbed::agent_builder()
        .timeout_connect(Duration::from_secs(1))
        .timeout(Duration::from_secs(15))
        .build()
}

fn finish(result: Result<ureq::Response, ureq::Error>) -> Response {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        // No answer: status 0, and the reason where a test's message
        // shows the body (a connect timeout reads apart from a reset).
        Err(ureq::Error::Transport(e)) => {
            return Response {
                status: 0,
                headers: vec![],
                body: Value::String(format!("no HTTP answer: {e}")),
            }
        }
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            response
                .header(&name)
                .map(|v| (name.clone(), v.to_string()))
        })
        .collect();
    let text = response.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Response {
        status,
        headers,
        body,
    }
}

/// A bearer token every request of this test process carries unless it
/// sets its own `Authorization` (for clusters with accounts on, such as
/// `taskraft demo`'s: its service token).
static DEFAULT_TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn use_token(token: &str) {
    let _ = DEFAULT_TOKEN.set(token.to_string());
}

/// Runs `work` (a few MySQL queries of a test) to completion here.
pub fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// A node's `task_events` rows `1..=upto` (read from its database at
/// `mysql_url`), each encoded as a backup encodes it.
pub fn event_rows(mysql_url: &str, upto: u64) -> Vec<Vec<u8>> {
    use mysql_async::prelude::Queryable;
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(mysql_url).await.unwrap();
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                format!(
                    "SELECT {} FROM task_events WHERE seq <= ? ORDER BY seq",
                    taskraft::db::rows::EVENT_COLUMNS
                ),
                (upto,),
            )
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        rows.into_iter()
            .map(|row| serde_json::to_vec(&taskraft::db::catchup::event_row(row).unwrap()).unwrap())
            .collect()
    })
}

pub fn get(url: &str) -> Response {
    send("GET", url, &[], None)
}

pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Response {
    let mut request = agent().request(method, url);
    if let Some(token) = DEFAULT_TOKEN.get() {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.set(name, value);
    }
    finish(match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    })
}

pub fn create(url: &str, body: Value) -> Response {
    send("POST", &format!("{url}/api/tasks"), &[], Some(&body))
}

pub fn create_titled(url: &str, title: &str) -> Response {
    create(url, json!({ "title": title }))
}

/// Every task a node holds, by paging through the list.
pub fn all_tasks(url: &str, consistency: &str) -> Vec<Value> {
    let mut tasks = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_url = format!("{url}/api/tasks?limit=1000&consistency={consistency}");
        if let Some(c) = &cursor {
            page_url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page = get(&page_url);
        assert_eq!(page.status, 200, "listing tasks on {url}: {:?}", page.body);
        tasks.extend(page.body["tasks"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return tasks,
        }
    }
}

/// Every event a node holds, in seq order.
pub fn all_events(url: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut since = 0;
    loop {
        let page = get(&format!(
            "{url}/api/events?since={since}&limit=1000&consistency=local"
        ));
        assert_eq!(page.status, 200, "event feed of {url}: {:?}", page.body);
        let batch = page.body["events"].as_array().cloned().unwrap_or_default();
        if batch.is_empty() {
            return events;
        }
        since = batch.last().unwrap()["seq"].as_u64().unwrap();
        events.extend(batch);
    }
}

/// What a group of writing clients saw.
#[derive(Debug, Default)]
pub struct WriteLog {
    /// (title, task id) of every acknowledged create.
    pub acked: Vec<(String, String)>,
    /// Titles whose create never got an answer: each may exist at most once.
    pub unknown: Vec<String>,
    /// Answers a correct cluster never gives (4xx on a valid create, 5xx
    /// other than 503/504).
    pub errors: Vec<String>,
}

/// How a careful client creates a task: under `key` as its
/// Idempotency-Key, starting at `urls[first]` and moving to the next node
/// after a 503, a 504 or no answer, for at most `patience`. Elections under
/// load answer 503 (`no_leader`, `leader_changed`): retrying with the same
/// key is how a client gets exactly one task anyway. Returns the last answer.
pub fn create_with_retries(
    urls: &[String],
    first: usize,
    key: &str,
    body: &Value,
    patience: Duration,
) -> Response {
    let give_up = Instant::now() + patience;
    let mut attempt = 0;
    loop {
        let url = &urls[(first + attempt) % urls.len()];
        let r = send(
            "POST",
            &format!("{url}/api/tasks"),
            &[("Idempotency-Key", key)],
            Some(body),
        );
        if !matches!(r.status, 0 | 503 | 504) || Instant::now() >= give_up {
            return r;
        }
        attempt += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `clients` threads that create tasks until `stop` is set, each
/// create under its own Idempotency-Key, retried on 503/504/no answer
/// (moving to the next node) the way a careful client would.
pub fn start_writers(
    urls: Vec<String>,
    clients: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<WriteLog>> {
    use std::sync::atomic::Ordering;
    (0..clients)
        .map(|c| {
            let urls = urls.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut log = WriteLog::default();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let title = format!("writer {c} task {i}");
                    let key = format!("w{c}-{i}");
                    let body = json!({ "title": title });
                    let r = create_with_retries(&urls, c, &key, &body, Duration::from_secs(30));
                    match r.status {
                        201 => {
                            let id = r.body["id"].as_str().unwrap_or_default().to_string();
                            log.acked.push((title.clone(), id));
                        }
                        0 | 503 | 504 => log.unknown.push(title.clone()),
                        other => log.errors.push(format!("{title}: {other} {}", r.body)),
                    }
                    i += 1;
                }
                log
            })
        })
        .collect()
}

pub fn join_writers(handles: Vec<std::thread::JoinHandle<WriteLog>>) -> WriteLog {
    let mut all = WriteLog::default();
    for handle in handles {
        let log = handle.join().expect("a writer thread");
        all.acked.extend(log.acked);
        all.unknown.extend(log.unknown);
        all.errors.extend(log.errors);
    }
    all
}

/// Checks that every acknowledged create is on `url` exactly once and that
/// no title appears twice.
pub fn assert_writes_present_once(url: &str, log: &WriteLog) {
    let tasks = all_tasks(url, "linearizable");
    let mut by_title: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    for task in &tasks {
        by_title
            .entry(task["title"].as_str().unwrap().to_string())
            .or_default()
            .push(task["id"].as_str().unwrap().to_string());
    }
    for (title, ids) in &by_title {
        assert_eq!(
            ids.len(),
            1,
            "{url}: `{title}` exists {} times: {ids:?}",
            ids.len()
        );
    }
    for (title, id) in &log.acked {
        let found = by_title.get(title);
        assert_eq!(
            found.map(|ids| ids[0].as_str()),
            Some(id.as_str()),
            "{url}: acknowledged `{title}` ({id}) is missing or has another id"
        );
    }
}

/// A blocking WebSocket client for the `/ws` feed.
pub struct Feed {
    socket: tungstenite::WebSocket<std::net::TcpStream>,
    /// The reason of the server's close frame, once it came.
    pub close_reason: Option<String>,
}

/// What reading the feed gave.
#[derive(Debug)]
pub enum FeedItem {
    Message(Value),
    /// The server closed the connection, with this close code (the
    /// reason is kept in [`Feed::close_reason`]).
    Closed(Option<u16>),
    TimedOut,
}

impl Feed {
    /// Connects to `base` (`http://host:port`) with an optional `since`.
    pub fn connect(base: &str, since: Option<u64>) -> Feed {
        Feed::connect_with_buffer(base, since, None)
    }

    /// Like [`Feed::connect`], with a small receive buffer for slow-reader tests.
    pub fn connect_with_buffer(base: &str, since: Option<u64>, recv_buffer: Option<usize>) -> Feed {
        let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
        Feed::open(base, &query, &[], recv_buffer).expect("websocket handshake")
    }

    /// Connects to `/ws{query}` of `base` sending `headers` (a session
    /// cookie…); the handshake's error (a 401…) as text.
    pub fn connect_as(base: &str, query: &str, headers: &[(&str, String)]) -> Result<Feed, String> {
        Feed::open(base, query, headers, None)
    }

    fn open(
        base: &str,
        query: &str,
        headers: &[(&str, String)],
        recv_buffer: Option<usize>,
    ) -> Result<Feed, String> {
        use tungstenite::client::IntoClientRequest;
        let authority = base.trim_start_matches("http://");
        let addr: std::net::SocketAddr = authority.parse().expect("host:port");
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.connect(&addr.into()).expect("connect to the node");
        let stream: std::net::TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = format!("ws://{authority}/ws{query}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let (socket, _) = tungstenite::client(request, stream).map_err(|e| e.to_string())?;
        Ok(Feed {
            socket,
            close_reason: None,
        })
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.socket
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap();
    }

    /// The next JSON message, a close, or a timeout.
    pub fn next(&mut self) -> FeedItem {
        loop {
            match self.socket.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    return FeedItem::Message(
                        serde_json::from_str(text.as_str()).expect("JSON frames"),
                    )
                }
                Ok(tungstenite::Message::Close(frame)) => {
                    self.close_reason = frame.as_ref().map(|f| f.reason.to_string());
                    return FeedItem::Closed(frame.map(|f| u16::from(f.code)));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return FeedItem::TimedOut
                }
                Err(_) => return FeedItem::Closed(None),
            }
        }
    }

    /// The next message, which must come.
    /// The next `event` frame (skipping the others).
    pub fn next_event(&mut self) -> Value {
        loop {
            let frame = self.expect();
            if frame["type"] == "event" {
                return frame;
            }
        }
    }

    pub fn expect(&mut self) -> Value {
        match self.next() {
            FeedItem::Message(value) => value,
            other => panic!("expected a message from the feed, got {other:?}"),
        }
    }

    /// Reads `count` event messages, skipping cluster messages.
    pub fn events(&mut self, count: usize) -> Vec<Value> {
        let mut events = Vec::new();
        while events.len() < count {
            let message = self.expect();
            match message["type"].as_str() {
                Some("event") => events.push(message),
                Some("cluster") | Some("pong") => {}
                other => panic!("unexpected {other:?} message: {message}"),
            }
        }
        events
    }

    pub fn send_text(&mut self, text: &str) {
        self.socket
            .send(tungstenite::Message::text(text))
            .expect("send on the websocket");
    }

    pub fn close(mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }
}

/// A process's resident memory, MiB, from `/proc`.
pub fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// Samples a process's RSS every 20 ms until dropped; `peak()` is the
/// highest seen.
pub struct PeakRss {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    pub fn watch(pid: u32) -> PeakRss {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let peak = std::sync::Arc::new(AtomicU64::new(rss_mib(pid)));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_mib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        PeakRss {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The value of a Prometheus sample (`name{labels}`) on `url`'s `/metrics`.
pub fn metric(url: &str, sample: &str) -> f64 {
    let text = get(&format!("{url}/metrics")).body;
    text.as_str()
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(sample) && l[sample.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The seqs of a list of event messages.
pub fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seq"].as_u64().expect("an event has a seq"))
        .collect()
}

/// What a peer's hello proves (`transport::auth`): HMAC-SHA256 under the
/// cluster `secret` of the acceptor's challenge, the node id and the
/// cluster id, hex. Written out here so the tests check the node's side
/// against an independent reading of the protocol.
pub fn peer_proof(secret: &str, challenge: &[u8], node_id: u64, cluster_id: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(challenge);
    mac.update(&node_id.to_be_bytes());
    mac.update(cluster_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
