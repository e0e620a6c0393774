//! Real taskraft clusters on this machine, shared by every kind of test:
//! the integration tests (`tests/common`), the browser tests (through the
//! `testbed-cluster` binary) and the fault tests (`tests/jepsen`).
//!
//! - [`node`]: one node process — its settings, start (on its data),
//!   `kill -9`, SIGTERM, SIGSTOP/SIGCONT, readiness, its log.
//! - [`cluster`]: N nodes on loopback over one private MariaDB (or the
//!   server `TASKRAFT_TEST_MYSQL_URL` names), each with its own database,
//!   data directory and log, a secret of their own; waits for an agreed
//!   leader; restarts, joins, membership and catch-up waits.
//! - The MariaDB server itself is `taskraft::mysqld` (re-exported as
//!   [`mysqld`]), the launcher `taskraft demo` uses too.
//!
//! - [`certs`]: a CA and certificates, for clusters with TLS
//!   ([`Cluster::enable_tls`]).
//!
//! Every process is ours and is stopped by PID, on drop too. The fault
//! tests build on [`node`] and [`mysqld`] with layers of their own
//! (network namespaces, relays, crash points).

pub mod certs;
pub mod cluster;
pub mod node;

pub use cluster::{Cluster, Options};
pub use node::{Node, NodeSpec};
pub use taskraft::mysqld;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// `n` TCP ports that were free a moment ago on 127.0.0.1 (all bound at
/// once, so they differ).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .filter_map(|_| std::net::TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.port())
        .collect()
}

/// A new cluster secret: 256 random bits in hex, as `taskraft demo` makes.
pub fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Percent-encodes a query value.
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

/// Where test servers copy their MariaDB data directory from
/// ([`mysqld::template`]): one per machine user, under the system's
/// temporary directory.
pub fn template_root() -> std::path::PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    std::env::temp_dir().join(format!("taskraft-testbed-{uid}"))
}

type Trust = std::sync::Arc<taskraft::tls::ClientTrust>;
static TRUST: std::sync::Mutex<Option<Trust>> = std::sync::Mutex::new(None);

/// Makes this process's clients ([`agent_builder`], [`get`]) trust the CA
/// in `ca` (PEM) for https, besides the public roots.
pub fn trust_ca(ca: &Path) {
    let trust =
        taskraft::tls::ClientTrust::new(Some(ca.to_path_buf())).expect("the trusted CA loads");
    *TRUST.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::sync::Arc::new(trust));
}

/// A client for the nodes: http, or https trusting [`trust_ca`]'s CA.
pub fn agent_builder() -> ureq::AgentBuilder {
    ureq::AgentBuilder::new().tls_config(agent_tls_config())
}

/// The TLS client settings of [`agent_builder`], for clients of other
/// kinds (a WebSocket over TLS).
pub fn agent_tls_config() -> std::sync::Arc<rustls::ClientConfig> {
    let trust = TRUST.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match trust {
        Some(trust) => trust.config(),
        None => taskraft::tls::ClientTrust::new(None)
            .expect("the public roots need no file")
            .config(),
    }
}

/// `GET url` with `timeout`: the status (0 when there was no HTTP answer)
/// and the body, JSON if it parses.
pub fn get(url: &str, timeout: Duration) -> (u16, Value) {
    get_with(url, timeout, None)
}

/// [`get`] with `Authorization: Bearer <token>` when a token is given.
pub fn get_with(url: &str, timeout: Duration, token: Option<&str>) -> (u16, Value) {
    let agent = agent_builder()
        .timeout_connect(timeout.min(Duration::from_secs(1)))
        .timeout(timeout)
        .build();
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(_)) => return (0, Value::Null),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
