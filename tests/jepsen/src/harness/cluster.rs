//! The node processes: start, `kill -9`, SIGSTOP/SIGCONT, restart (armed
//! with a crash point or not), what they say about the cluster, and what
//! they hold once the run is over. A node's process is the testbed's
//! ([`testbed::Node`]), started in its namespace; what is added here is
//! the crash points and their seeds, the namespaces, and the reads.
//!
//! Node *i* runs in its namespace with `TASKRAFT_PEERS` listing, for each
//! peer *j*, the proxy of the link *i*→*j* — what *i* dials — and its own
//! real Raft address for itself. Its log (stderr and stdout) is appended
//! to `n<i>.log` across restarts, each start marked with a line of ours.
//! Every process is ours and is stopped by PID, on drop too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::{urlencode, NodeSpec};

use super::client::{probe, probe_agent};
use super::mysql::{self, Mysql};
use super::os;
use crate::events::{EventKind, EventRow};
use crate::history::ListedTask;

/// One node: its process (the testbed's) and its MariaDB.
pub struct Node {
    /// The process: how it starts, and while it runs, its PID.
    pub process: testbed::Node,
    /// Its network namespace (none in loopback mode).
    pub ns: Option<String>,
    /// Its own database server.
    pub mysql: Mysql,
    /// The crash points of the current process, if armed.
    pub armed: Option<String>,
}

/// The cluster's processes.
pub struct Cluster {
    /// Nodes by index 0..n (node id = index + 1).
    pub nodes: Vec<Node>,
    /// The node binary (for `rebuild --check` too).
    binary: PathBuf,
    /// The run's seed, for crash seeds.
    seed: u64,
}

impl Cluster {
    /// Takes the nodes' specs (each started in its namespace, if any) and
    /// databases; starts no node yet.
    pub fn new(specs: Vec<(NodeSpec, Option<String>)>, mysqls: Vec<Mysql>, seed: u64) -> Cluster {
        let binary = specs
            .first()
            .map(|(spec, _)| spec.binary.clone())
            .unwrap_or_default();
        let nodes = specs
            .into_iter()
            .zip(mysqls)
            .map(|((mut spec, ns), mysql)| {
                spec.hook = mysql::in_namespace(ns.clone());
                Node {
                    process: testbed::Node::new(spec),
                    ns,
                    mysql,
                    armed: None,
                }
            })
            .collect();
        Cluster {
            nodes,
            binary,
            seed,
        }
    }

    /// Node ids, 1..=n.
    pub fn ids(&self) -> Vec<usize> {
        (1..=self.nodes.len()).collect()
    }

    fn node(&mut self, id: usize) -> &mut Node {
        &mut self.nodes[id - 1]
    }

    /// `http://ip:port` of node `id`.
    pub fn url(&self, id: usize) -> String {
        self.nodes[id - 1].process.url()
    }

    /// Every node's URL, by id.
    pub fn urls(&self) -> Vec<String> {
        self.ids().into_iter().map(|i| self.url(i)).collect()
    }

    /// Starts node `id` on its data, armed with `crash_points` if given.
    pub fn start(&mut self, id: usize, crash_points: Option<String>) -> Result<(), String> {
        let seed = self.seed;
        let node = self.node(id);
        if node.process.is_running() {
            return Ok(());
        }
        let start = node.process.starts() + 1;
        let mut env = vec![(
            "TASKRAFT_CRASH_SEED".to_string(),
            (seed.wrapping_mul(31).wrapping_add(id as u64 * 1000 + start)).to_string(),
        )];
        if let Some(points) = &crash_points {
            env.push(("TASKRAFT_CRASH_POINTS".to_string(), points.clone()));
        }
        let note = format!(
            " at {} ms{}",
            os::now_ns() / 1_000_000,
            crash_points
                .as_deref()
                .map(|c| format!(", crash points {c}"))
                .unwrap_or_default()
        );
        node.process.start(&env, &note)?;
        node.armed = crash_points;
        Ok(())
    }

    /// Whether node `id`'s process is alive (running or stopped); reaps it
    /// if it exited.
    pub fn is_running(&mut self, id: usize) -> bool {
        self.node(id).process.is_running()
    }

    /// Whether node `id` is stopped with SIGSTOP.
    pub fn is_paused(&self, id: usize) -> bool {
        self.nodes[id - 1].process.is_paused()
    }

    /// `kill -9` node `id` (a stopped one too).
    pub fn kill(&mut self, id: usize) {
        self.node(id).process.kill();
    }

    /// SIGSTOP node `id`.
    pub fn pause(&mut self, id: usize) {
        self.node(id).process.pause();
    }

    /// SIGCONT node `id`.
    pub fn resume(&mut self, id: usize) {
        self.node(id).process.resume();
    }

    /// `/api/cluster` of node `id`, if it answers quickly.
    pub fn view(&self, id: usize) -> Option<Value> {
        probe(&format!("{}/api/cluster", self.url(id)))
    }

    /// The leader as the nodes that answer see it: the leader named at
    /// the highest term, if that node itself says it leads.
    pub fn leader(&self) -> Option<usize> {
        let views: Vec<Value> = self
            .ids()
            .into_iter()
            .filter_map(|i| self.view(i))
            .collect();
        let best = views
            .iter()
            .max_by_key(|v| v["term"].as_u64().unwrap_or(0))?;
        let leader = best["leader_id"].as_u64()? as usize;
        let confirmed = views
            .iter()
            .any(|v| v["node_id"].as_u64() == Some(leader as u64) && v["role"] == "leader");
        confirmed.then_some(leader)
    }

    /// Waits until every node runs, answers `/readyz` and one leader is
    /// agreed; restarts nodes that died meanwhile (a crash point fired).
    pub fn wait_healthy(&mut self, within: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + within;
        let agent = probe_agent();
        loop {
            for id in self.ids() {
                if !self.is_running(id) {
                    self.start(id, None)?;
                }
            }
            let ready = self.ids().into_iter().all(|id| {
                super::client::call(
                    &agent,
                    "GET",
                    &format!("{}/readyz", self.url(id)),
                    &[],
                    None,
                )
                .status
                    == 200
            });
            if ready {
                if let Some(leader) = self.leader() {
                    let agreed = self.ids().into_iter().all(|i| {
                        self.view(i)
                            .is_some_and(|v| v["leader_id"].as_u64() == Some(leader as u64))
                    });
                    if agreed {
                        return Ok(leader);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("the cluster was not healthy within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every node has applied what the leader committed, and
    /// they all report the same last seq; returns it.
    pub fn wait_converged(&mut self, within: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        loop {
            if let Some(leader) = self.leader() {
                let commit = self.view(leader).and_then(|v| v["commit_index"].as_u64());
                let views: Vec<Option<Value>> =
                    self.ids().into_iter().map(|i| self.view(i)).collect();
                let applied: Vec<Option<u64>> = views
                    .iter()
                    .map(|v| v.as_ref().and_then(|v| v["applied_index"].as_u64()))
                    .collect();
                let seqs: Vec<Option<u64>> = self
                    .ids()
                    .into_iter()
                    .map(|i| {
                        probe(&format!(
                            "{}/api/tasks?limit=1&consistency=local",
                            self.url(i)
                        ))
                        .and_then(|b| b["last_seq"].as_u64())
                    })
                    .collect();
                last = format!("commit {commit:?}, applied {applied:?}, last seqs {seqs:?}");
                if let Some(commit) = commit {
                    let caught_up = applied.iter().all(|a| a.is_some_and(|a| a >= commit));
                    let first = seqs.first().copied().flatten();
                    if caught_up && first.is_some() && seqs.iter().all(|s| *s == first) {
                        return Ok(first.unwrap_or(0));
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the nodes did not converge within {within:?}: {last}"
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Every task node `id` holds (its local copy, paged), with the
    /// labels, for the set check.
    pub fn all_tasks(&self, id: usize) -> Result<Vec<(ListedTask, Vec<String>)>, String> {
        let agent = super::client::agent();
        let mut tasks = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/api/tasks?limit=1000&consistency=local", self.url(id));
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let answer = super::client::call(&agent, "GET", &url, &[], None);
            if answer.status != 200 {
                return Err(format!(
                    "listing node {id}: {} {}",
                    answer.status, answer.body
                ));
            }
            let page = super::client::listed(&answer.body)
                .ok_or_else(|| format!("node {id}: an unreadable list page"))?;
            let labels = answer.body["tasks"].as_array().cloned().unwrap_or_default();
            for (task, raw) in page.into_iter().zip(labels) {
                let labels = raw["labels"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                tasks.push((task, labels));
            }
            match answer.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(tasks),
            }
        }
    }

    /// Node `id`'s event table, from its MariaDB. The payload compared is
    /// every stored column after the identifying ones (raft index,
    /// ordinal, term, time, request id, then the payload text), so two
    /// nodes agree only if their rows are identical.
    pub fn event_table(&self, id: usize) -> Result<Vec<EventRow>, String> {
        let text = mysql::query(
            &self.nodes[id - 1].mysql,
            "SELECT seq, event_id, task_id, kind, raft_index, ordinal, term, \
             DATE_FORMAT(occurred_at, '%Y-%m-%d %H:%i:%s.%f'), request_id, HEX(payload) \
             FROM task_events ORDER BY seq",
        )?;
        text.lines()
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() != 10 {
                    return Err(format!(
                        "node {id}: an event row of {} fields: {line:.200}",
                        f.len()
                    ));
                }
                let kind = match f[3] {
                    "task_created" => EventKind::TaskCreated,
                    "task_updated" => EventKind::TaskUpdated,
                    "task_deleted" => EventKind::TaskDeleted,
                    other
                        if ["user_", "cluster_", "board_", "column_"]
                            .iter()
                            .any(|p| other.starts_with(p)) =>
                    {
                        EventKind::Other
                    }
                    other => return Err(format!("node {id}: event kind {other:?}")),
                };
                let mut payload =
                    format!("{}|{}|{}|{}|{}|", f[4], f[5], f[6], f[7], f[8]).into_bytes();
                payload.extend(unhex(f[9]).ok_or_else(|| format!("node {id}: bad hex payload"))?);
                Ok(EventRow {
                    seq: f[0]
                        .parse()
                        .map_err(|e| format!("node {id}: seq {:?}: {e}", f[0]))?,
                    event_id: f[1].to_string(),
                    // The mysql client prints NULL for an event about no task.
                    task_id: if f[2] == "NULL" {
                        String::new()
                    } else {
                        f[2].to_string()
                    },
                    kind,
                    payload,
                })
            })
            .collect()
    }

    /// `taskraft rebuild --check` on node `id`'s database: `Ok` if the
    /// projection equals the fold of its events, else what it printed.
    pub fn rebuild_check(&self, id: usize) -> Result<(), String> {
        let node = &self.nodes[id - 1];
        let mut command = Command::new(&self.binary);
        command
            .args(["rebuild", "--check"])
            .env("TASKRAFT_NODE_ID", id.to_string())
            .env("TASKRAFT_MYSQL_URL", mysql::url(&node.mysql))
            .env("RUST_LOG", "warn");
        os::enter_netns(&mut command, node.ns.as_deref());
        let output = command
            .output()
            .map_err(|e| format!("taskraft rebuild: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "node {id}: rebuild --check {}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Lines of every node log that say `panicked` or `fatal`.
    pub fn log_alarms(&self) -> Vec<String> {
        let mut alarms = Vec::new();
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.process.log).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let lower = line.to_lowercase();
                if lower.contains("panicked") || lower.contains("fatal") {
                    alarms.push(format!(
                        "n{} log line {}: {line:.300}",
                        node.process.id,
                        n + 1
                    ));
                }
            }
        }
        alarms
    }

    /// How many lines of all node logs contain each of `needles`.
    pub fn log_counts(&self, needles: &[&str]) -> Vec<usize> {
        let mut counts = vec![0; needles.len()];
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.process.log).unwrap_or_default();
            for line in text.lines() {
                for (count, needle) in counts.iter_mut().zip(needles) {
                    if line.contains(needle) {
                        *count += 1;
                    }
                }
            }
        }
        counts
    }

    /// Stops every node (SIGKILL: the run is over, the data is read) and
    /// every MariaDB (cleanly, all at once).
    pub fn shutdown(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
        std::thread::scope(|scope| {
            for node in &mut self.nodes {
                scope.spawn(|| node.mysql.stop(Duration::from_secs(20)));
            }
        });
    }

    /// Where node `id` logs.
    pub fn log_path(&self, id: usize) -> &Path {
        &self.nodes[id - 1].process.log
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}
