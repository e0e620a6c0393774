//! One node process: how it starts ([`NodeSpec`]), and what can be done to
//! it — start on its data, `kill -9`, SIGTERM, SIGSTOP/SIGCONT, wait for
//! `/readyz` or for its exit. Its output (stdout and stderr) is appended to
//! its log across restarts, each start marked with a line of ours.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use taskraft::mysqld::{CommandHook, Process};

/// How to start one node (`taskraft serve`).
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Raft id, 1-based.
    pub id: u64,
    /// The node build to run.
    pub binary: PathBuf,
    /// The address its listeners bind (127.0.0.1, or its namespace's).
    pub host: String,
    pub http_port: u16,
    pub raft_port: u16,
    /// Its `TASKRAFT_PEERS`: what it dials for each peer.
    pub peers: String,
    /// Its `TASKRAFT_MYSQL_URL`, database included.
    pub mysql_url: String,
    /// Its `TASKRAFT_DATA_DIR` (the Raft log).
    pub data_dir: PathBuf,
    /// Where its output goes.
    pub log: PathBuf,
    /// More environment, after the above (so it may override them).
    pub env: Vec<(String, String)>,
    /// Run on the command before each start (e.g. to join a namespace).
    pub hook: Option<CommandHook>,
}

impl NodeSpec {
    /// `host:port` of its HTTP listener.
    pub fn http_addr(&self) -> String {
        format!("{}:{}", self.host, self.http_port)
    }

    /// `host:port` of its Raft listener.
    pub fn raft_addr(&self) -> String {
        format!("{}:{}", self.host, self.raft_port)
    }

    /// `http://host:port`, or `https://` when it serves TLS
    /// (`TASKRAFT_TLS_CERT_FILE` in its environment).
    pub fn url(&self) -> String {
        let tls = self.env.iter().any(|(k, _)| k == "TASKRAFT_TLS_CERT_FILE");
        format!(
            "{}://{}",
            if tls { "https" } else { "http" },
            self.http_addr()
        )
    }

    /// Its `TASKRAFT_API_TOKEN`, if set (the admin-level service token).
    pub fn api_token(&self) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == "TASKRAFT_API_TOKEN")
            .map(|(_, v)| v.clone())
    }

    /// Sets `key` (replacing an earlier value) for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }
}

/// A node: its spec and, while it runs, its process.
pub struct Node {
    pub spec: NodeSpec,
    process: Process,
    starts: u64,
}

impl std::ops::Deref for Node {
    type Target = NodeSpec;

    fn deref(&self) -> &NodeSpec {
        &self.spec
    }
}

impl Node {
    /// A node that has not started yet.
    pub fn new(spec: NodeSpec) -> Node {
        Node {
            spec,
            process: Process::default(),
            starts: 0,
        }
    }

    /// The running process's PID.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// How many times it was started.
    pub fn starts(&self) -> u64 {
        self.starts
    }

    /// Whether it is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.process.is_paused()
    }

    /// Starts the process on its data, with `extra` environment after the
    /// spec's; `note` goes on the log's start line. Nothing if it runs.
    pub fn start(&mut self, extra: &[(String, String)], note: &str) -> Result<(), String> {
        if self.is_running() {
            return Ok(());
        }
        self.starts += 1;
        let spec = &self.spec;
        let mut log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|e| format!("{}: {e}", spec.log.display()))?;
        let _ = writeln!(
            log,
            "==== testbed: start {} of node {}{note} ====",
            self.starts, spec.id
        );
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = spec.command("serve");
        command
            .envs(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        if let Some(hook) = &spec.hook {
            hook.apply(&mut command);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", spec.binary.display()))?;
        self.process = Process::new(child);
        Ok(())
    }
}

impl NodeSpec {
    /// `taskraft <subcommand>` with this node's settings, as `serve` gets them.
    pub fn command(&self, subcommand: &str) -> Command {
        let spec = self;
        let mut command = Command::new(&spec.binary);
        command
            .arg(subcommand)
            .env("TASKRAFT_NODE_ID", spec.id.to_string())
            .env("TASKRAFT_HTTP_ADDR", spec.http_addr())
            .env("TASKRAFT_RAFT_ADDR", spec.raft_addr())
            .env("TASKRAFT_PEERS", &spec.peers)
            .env("TASKRAFT_MYSQL_URL", &spec.mysql_url)
            .env("TASKRAFT_DATA_DIR", &spec.data_dir)
            // Tests run without accounts unless they ask for them
            // (`Options::with_auth`), as they did before accounts existed.
            .env("TASKRAFT_AUTH", "off")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }
}

impl Node {
    /// Whether its process is alive (running or stopped); one that exited
    /// is reaped, and [`Node::wait_exit`] still reports how.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// `kill -9` (a stopped process too), and reaps it.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM (after a SIGCONT, in case it is paused), then waits for the
    /// exit; `kill -9` after `within`, which returns `None`.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        self.process.terminate(within)
    }

    /// SIGSTOP: the node hangs, its sockets stay open.
    pub fn pause(&mut self) {
        self.process.pause();
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.process.resume();
    }

    /// Waits for the process to exit on its own; its status, or `None` if
    /// it still runs after `within` (or never ran).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(within)
    }

    /// Waits until it answers `/readyz` with 200; an error with its log's
    /// tail if it exits or `within` passes first.
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let url = format!("{}/readyz", self.url());
        loop {
            if !self.is_running() {
                return Err(format!(
                    "node {} is not running:\n{}",
                    self.spec.id,
                    crate::tail(&self.spec.log, 30)
                ));
            }
            if crate::get(&url, Duration::from_secs(15)).0 == 200 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {} not ready after {within:?}:\n{}",
                    self.spec.id,
                    crate::tail(&self.spec.log, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.process.kill();
    }
}
