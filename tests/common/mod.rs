//! The integration-test harness: real `taskraft` processes over real TCP,
//! with a real MariaDB/MySQL server that the harness starts privately (its
//! own data directory and port) unless `TASKRAFT_TEST_MYSQL_URL` names one.
//! Processes are stopped by PID; on a failing test the nodes' log tails are
//! printed.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use taskraft::mysqld::{self, PrivateMysql, ServerOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_taskraft");

pub struct Node {
    pub id: u64,
    pub http_port: u16,
    pub raft_port: u16,
    pub data_dir: PathBuf,
    pub database: String,
    pub log: PathBuf,
    child: Option<Child>,
    extra_env: Vec<(String, String)>,
    /// Another build of the node to run (the failpoints one), if not [`BIN`].
    binary: Option<PathBuf>,
}

impl Node {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    mysql: Option<PrivateMysql>,
    /// `mysql://user@host:port` (no database).
    mysql_base: String,
    pub nodes: Vec<Node>,
    peers: String,
}

/// A free port block would be nicer; two quick binds are enough here.
fn ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Cluster {
    /// Starts a MySQL server and `n` nodes, and waits until a leader serves.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    pub fn start_with(n: usize, env: &[(&str, &str)]) -> Cluster {
        Cluster::start_with_mysql(n, env, &[])
    }

    /// Like [`Cluster::start_with`], the private MySQL server started with
    /// `mysql_args` too (e.g. `--max-allowed-packet=4M`).
    pub fn start_with_mysql(n: usize, env: &[(&str, &str)], mysql_args: &[&str]) -> Cluster {
        Cluster::start_after(n, env, mysql_args, |_| {})
    }

    /// Like [`Cluster::start_with_mysql`], running `setup` once MySQL is up
    /// and before any node starts (to create accounts, set per-node env…).
    pub fn start_after(
        n: usize,
        env: &[(&str, &str)],
        mysql_args: &[&str],
        setup: impl FnOnce(&mut Cluster),
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("taskraft-test-")
            .tempdir()
            .expect("a temp dir");
        let unique = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(['-', '.'], "_");
        let (mysql, mysql_base) = match std::env::var("TASKRAFT_TEST_MYSQL_URL") {
            Ok(url) if !url.is_empty() => (None, url.trim_end_matches('/').to_string()),
            _ => {
                let mut options = ServerOptions::on_port(mysqld::free_port());
                options.extra_args = mysql_args.iter().map(|a| a.to_string()).collect();
                let server = PrivateMysql::start(&dir.path().join("mysql"), options)
                    .expect("a private MySQL server starts");
                let base = format!("mysql://root@127.0.0.1:{}", server.port);
                (Some(server), base)
            }
        };
        // Every cluster its own secret, as `taskraft demo` and the k8s
        // secret give one: a cluster of more than one node needs it.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !env.iter().any(|(k, _)| k == "TASKRAFT_CLUSTER_SECRET") {
            env.push(("TASKRAFT_CLUSTER_SECRET".into(), secret));
        }
        let ports = ports(2 * n);
        let peers = (0..n)
            .map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[n + i]))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..n)
            .map(|i| Node {
                id: i as u64 + 1,
                http_port: ports[i],
                raft_port: ports[n + i],
                data_dir: dir.path().join(format!("n{}", i + 1)),
                database: format!("{unique}_n{}", i + 1),
                log: dir.path().join(format!("n{}.log", i + 1)),
                child: None,
                extra_env: env.clone(),
                binary: None,
            })
            .collect();
        let mut cluster = Cluster {
            dir,
            mysql,
            mysql_base,
            nodes,
            peers,
        };
        setup(&mut cluster);
        for id in 1..=n as u64 {
            cluster.spawn(id);
        }
        for id in 1..=n as u64 {
            cluster.wait_ready(id, Duration::from_secs(60));
        }
        cluster.leader(Duration::from_secs(30));
        cluster
    }

    /// `mysql://root@host:port` of the server the nodes use (no database).
    pub fn mysql_base(&self) -> &str {
        &self.mysql_base
    }

    /// The `cluster_secret` the nodes share (the first of the list).
    pub fn secret(&self) -> String {
        self.nodes[0]
            .extra_env
            .iter()
            .find(|(k, _)| k == "TASKRAFT_CLUSTER_SECRET")
            .map(|(_, v)| v.split(',').next().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[id as usize - 1]
    }

    pub fn url(&self, id: u64) -> String {
        self.node(id).url()
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    pub fn mysql_url(&self, id: u64) -> String {
        format!("{}/{}", self.mysql_base, self.node(id).database)
    }

    /// Adds node `n + 1`, which joins the running cluster through the
    /// current members; waits until it answers `/readyz`.
    pub fn add_joining_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let ports = ports(2);
        let join = self.urls().join(",");
        let unique = self.nodes[0].database.trim_end_matches("_n1").to_string();
        let mut extra_env = self.nodes[0].extra_env.clone();
        extra_env.push(("TASKRAFT_JOIN".into(), join));
        self.nodes.push(Node {
            id,
            http_port: ports[0],
            raft_port: ports[1],
            data_dir: self.dir.path().join(format!("n{id}")),
            database: format!("{unique}_n{id}"),
            log: self.dir.path().join(format!("n{id}.log")),
            child: None,
            extra_env,
            binary: None,
        });
        self.spawn(id);
        self.wait_ready(id, Duration::from_secs(60));
        id
    }

    /// Waits until `/api/cluster` on node `on` shows the voters and learners given.
    pub fn wait_membership(
        &self,
        on: u64,
        voters: &[u64],
        learners: &[u64],
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let view = get(&format!("{}/api/cluster", self.url(on))).body;
            let ids = |role: &str| -> Vec<u64> {
                let mut ids: Vec<u64> = view["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["role"] == role)
                    .filter_map(|m| m["id"].as_u64())
                    .collect();
                ids.sort();
                ids
            };
            if ids("voter") == voters && ids("learner") == learners {
                return view;
            }
            if Instant::now() > deadline {
                panic!("node {on}: wanted voters {voters:?} learners {learners:?}, got {view}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for node `id`'s process to exit; returns its status.
    pub fn wait_exit(&mut self, id: u64, within: Duration) -> Option<std::process::ExitStatus> {
        let node = &mut self.nodes[id as usize - 1];
        let child = node.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sets an environment variable for node `id`'s next start.
    pub fn set_env(&mut self, id: u64, key: &str, value: &str) {
        let env = &mut self.nodes[id as usize - 1].extra_env;
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }

    /// Runs node `id` from another build from its next start on.
    pub fn set_binary(&mut self, id: u64, binary: &std::path::Path) {
        self.nodes[id as usize - 1].binary = Some(binary.to_path_buf());
    }

    /// Starts node `id`'s process (on its existing data, if any).
    pub fn spawn(&mut self, id: u64) {
        let mysql_url = self.mysql_url(id);
        let peers = self.peers.clone();
        let node = &mut self.nodes[id as usize - 1];
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("a log file");
        let err = out.try_clone().unwrap();
        let binary = node.binary.clone().unwrap_or_else(|| PathBuf::from(BIN));
        let child = Command::new(binary)
            .arg("serve")
            .env("TASKRAFT_NODE_ID", id.to_string())
            .env(
                "TASKRAFT_HTTP_ADDR",
                format!("127.0.0.1:{}", node.http_port),
            )
            .env(
                "TASKRAFT_RAFT_ADDR",
                format!("127.0.0.1:{}", node.raft_port),
            )
            .env("TASKRAFT_PEERS", peers)
            .env("TASKRAFT_MYSQL_URL", mysql_url)
            .env("TASKRAFT_DATA_DIR", &node.data_dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(node.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("the taskraft binary starts");
        node.child = Some(child);
    }

    /// Waits until node `id` answers `/readyz` with 200.
    pub fn wait_ready(&mut self, id: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let node = &mut self.nodes[id as usize - 1];
            if !node.is_running() {
                panic!("node {id} is not running:\n{}", tail(&node.log, 30));
            }
            if get(&format!("{}/readyz", node.url())).status == 200 {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "node {id} not ready after {within:?}:\n{}",
                    tail(&node.log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The leader's id, once every running node agrees on a running leader.
    pub fn leader(&mut self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut seen = Vec::new();
            let mut running = Vec::new();
            for i in 0..self.nodes.len() {
                if !self.nodes[i].is_running() {
                    continue;
                }
                running.push(self.nodes[i].id);
                let view = get(&format!("{}/api/cluster", self.nodes[i].url()));
                seen.push(view.body["leader_id"].as_u64());
            }
            if let Some(Some(leader)) = seen.first() {
                if running.contains(leader) && seen.iter().all(|s| *s == Some(*leader)) {
                    return *leader;
                }
            }
            if Instant::now() > deadline {
                panic!("no agreed leader after {within:?}: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self, id: u64) {
        let node = &mut self.nodes[id as usize - 1];
        if let Some(mut child) = node.child.take() {
            child.kill().expect("kill -9 a node");
            child.wait().ok();
        }
    }

    /// SIGTERM, then wait for the exit; returns the exit status.
    pub fn terminate(&mut self, id: u64, within: Duration) -> Option<std::process::ExitStatus> {
        let node = &mut self.nodes[id as usize - 1];
        let mut child = node.child.take()?;
        mysqld::signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().ok();
        child.wait().ok();
        None
    }

    /// Starts a stopped node again on its data and waits until it is ready.
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
        self.wait_ready(id, Duration::from_secs(60));
    }

    /// Waits until node `id` has applied everything the leader has committed.
    pub fn wait_caught_up(&mut self, id: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let leader = self.leader(within);
            let commit =
                get(&format!("{}/api/cluster", self.url(leader))).body["commit_index"].as_u64();
            let applied =
                get(&format!("{}/api/cluster", self.url(id))).body["applied_index"].as_u64();
            if let (Some(commit), Some(applied)) = (commit, applied) {
                if applied >= commit {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("node {id} did not catch up: applied {applied:?}, leader commit {commit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `taskraft rebuild --check` against node `id`'s database.
    pub fn rebuild_check(&self, id: u64) -> Output {
        Command::new(BIN)
            .args(["rebuild", "--check"])
            .env("TASKRAFT_NODE_ID", id.to_string())
            .env("TASKRAFT_MYSQL_URL", self.mysql_url(id))
            .env("RUST_LOG", "warn")
            .output()
            .expect("taskraft rebuild runs")
    }

    pub fn mysql(&mut self) -> Option<&mut PrivateMysql> {
        self.mysql.as_mut()
    }

    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "---- node {} ({}) ----\n{}",
                    n.id,
                    n.log.display(),
                    tail(&n.log, 40)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails());
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                child.kill().ok();
                child.wait().ok();
            }
        }
        if let Some(mut mysql) = self.mysql.take() {
            mysql.stop(Duration::from_secs(30));
        }
        if std::env::var_os("TASKRAFT_TEST_KEEP").is_some() {
            let kept =
                std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a temp dir")).keep();
            eprintln!("kept the test directory: {}", kept.display());
        }
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

pub fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
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
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(1))
        .timeout(Duration::from_secs(15))
        .build()
}

fn finish(result: Result<ureq::Response, ureq::Error>) -> Response {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(_)) => {
            return Response {
                status: 0,
                headers: vec![],
                body: Value::Null,
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

pub fn get(url: &str) -> Response {
    finish(agent().get(url).call())
}

pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Response {
    let mut request = agent().request(method, url);
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

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
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
                    let give_up = Instant::now() + Duration::from_secs(30);
                    let mut attempt = 0;
                    loop {
                        let url = &urls[(c + attempt) % urls.len()];
                        let r = send(
                            "POST",
                            &format!("{url}/api/tasks"),
                            &[("Idempotency-Key", &key)],
                            Some(&json!({ "title": title })),
                        );
                        match r.status {
                            201 => {
                                let id = r.body["id"].as_str().unwrap_or_default().to_string();
                                log.acked.push((title.clone(), id));
                                break;
                            }
                            0 | 503 | 504 if Instant::now() < give_up => {
                                attempt += 1;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            0 | 503 | 504 => {
                                log.unknown.push(title.clone());
                                break;
                            }
                            other => {
                                log.errors.push(format!("{title}: {other} {}", r.body));
                                break;
                            }
                        }
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
}

/// What reading the feed gave.
#[derive(Debug)]
pub enum FeedItem {
    Message(Value),
    /// The server closed the connection, with this close code.
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
        let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
        let (socket, _) = tungstenite::client(format!("ws://{authority}/ws{query}"), stream)
            .expect("websocket handshake");
        Feed { socket }
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
                    return FeedItem::Closed(frame.map(|f| u16::from(f.code)))
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
