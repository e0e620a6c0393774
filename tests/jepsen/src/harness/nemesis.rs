//! The nemesis: a seeded schedule of faults, each injected, held, healed,
//! and recorded with its times so the report can say how long the cluster
//! was unavailable after it.
//!
//! Families ([`Family`]) and what each injects:
//!
//! - `kill`: `kill -9` of a random node, of the leader, of every node at
//!   once, or of one node's `mariadbd`; each restarted after 1–3 s.
//! - `pause`: SIGSTOP of the leader, or of one node's `mariadbd`, for
//!   1.5–10 s, then SIGCONT.
//! - `partition`: the leader isolated, a random minority isolated, a
//!   bridge (A and C cut, B sees both), or one direction of one link cut;
//!   iptables DROP rules inside the namespaces (the proxy refusing the
//!   links in loopback mode); held 3–10 s.
//! - `link`: through the proxy — every link delayed 50–300 ms ± jitter, a
//!   node's links blackholed (accept and hold) or dropping (accept and
//!   discard, no reset), or every link flaky (connections reset within
//!   0.2–2 s).
//! - `databases`: every node's `mariadbd` at once — SIGSTOP for 2–8 s
//!   then SIGCONT, or `kill -9` and restarted after 1–4 s — while the
//!   clients keep writing, so every node's applier meets a backlog of
//!   committed entries (the workload's payload mix included) when its
//!   database comes back.
//! - `crash`: a node restarted armed with one crash point
//!   (`raft_before_fsync`, `raft_after_fsync`, `apply_before_commit`,
//!   `apply_after_commit`) at its Nth pass; once it has aborted, it is
//!   restarted unarmed. Needs the failpoints binary.
//!
//! Between faults the nemesis waits a quiet 2–5 s and for the cluster to
//! be whole again (every node up, one leader agreed), so that each fault
//! meets a healthy cluster. A monitor ([`watch_leaders`]) polls the nodes
//! and counts leader changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::cluster::Cluster;
use super::net::{Mode, Network};
use super::os::{self, now_ns};
use super::proxy::{LinkMode, Proxies};
use super::rng::Rng;
use super::workload::Workload;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `kill -9` of nodes or a `mariadbd`.
    Kill,
    /// SIGSTOP/SIGCONT of the leader or a `mariadbd`.
    Pause,
    /// iptables partitions.
    Partition,
    /// Proxy delay, blackhole, resets.
    Link,
    /// Crash points of the failpoints binary.
    Crash,
    /// Every node's `mariadbd` paused or restarted at once.
    Databases,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 6] = [
        Family::Kill,
        Family::Pause,
        Family::Partition,
        Family::Link,
        Family::Crash,
        Family::Databases,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Kill => "kill",
            Family::Pause => "pause",
            Family::Partition => "partition",
            Family::Link => "link",
            Family::Crash => "crash",
            Family::Databases => "databases",
        }
    }

    /// `all`, or a comma-separated list of names.
    pub fn parse_list(text: &str) -> Result<Vec<Family>, String> {
        if text == "all" {
            return Ok(Family::ALL.to_vec());
        }
        if text == "none" {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|name| {
                Family::ALL
                    .into_iter()
                    .find(|f| f.name() == name.trim())
                    .ok_or_else(|| format!("unknown nemesis {name:?} (kill, pause, partition, link, crash, databases, all, none)"))
            })
            .collect()
    }
}

/// One injected fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRecord {
    /// Its family.
    pub family: Family,
    /// `kill_leader`, `partition_bridge`, `crash_apply_after_commit`…
    pub kind: String,
    /// Targets and parameters.
    pub detail: String,
    /// Whether it targeted the leader of the moment.
    pub targets_leader: bool,
    /// When it was injected (harness ns).
    pub start_ns: u64,
    /// When it was healed.
    pub end_ns: u64,
    /// For crash points: whether the point fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fired: Option<bool>,
}

/// The special schedules of the negative controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// A follower isolated while readers read it with `consistency=local`:
    /// the linearizability check must flag stale reads.
    StaleRead,
    /// Deduplication switched off (`api_ignore_idempotency_key=1`) while
    /// clients resend creates under one key: the set check must flag
    /// duplicates.
    Duplicates,
}

/// What the nemesis acts on.
pub struct Nemesis {
    /// The processes.
    pub cluster: Arc<Mutex<Cluster>>,
    /// The namespaces and their rules.
    pub network: Arc<Network>,
    /// The links.
    pub proxies: Arc<Proxies>,
    /// The families to draw from.
    pub families: Vec<Family>,
    /// The negative control, if this run is one.
    pub control: Option<Control>,
    /// The workload (the stale-read control points its readers).
    pub workload: Arc<Workload>,
    /// Seeded choices.
    pub rng: Rng,
    /// Quiet time between faults, ms.
    pub quiet_ms: (u64, u64),
    /// Set to end the schedule.
    pub stop: Arc<AtomicBool>,
    /// What was done.
    pub faults: Arc<Mutex<Vec<FaultRecord>>>,
    /// Problems met while healing (a node that would not come back…).
    pub problems: Arc<Mutex<Vec<String>>>,
}

const CRASH_POINTS: [&str; 4] = [
    "raft_before_fsync",
    "raft_after_fsync",
    "apply_before_commit",
    "apply_after_commit",
];

impl Nemesis {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || os::interrupted()
    }

    fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn problem(&self, text: String) {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text);
    }

    fn sleep(&self, ms: u64) -> bool {
        let stop = self.stop.clone();
        os::sleep_unless(Duration::from_millis(ms), &move || {
            stop.load(Ordering::SeqCst) || os::interrupted()
        })
    }

    /// Runs the schedule until stopped; leaves everything healed.
    pub fn run(mut self) {
        while !self.stopped() {
            let quiet = self.rng.between(self.quiet_ms.0, self.quiet_ms.1);
            if !self.sleep(quiet) {
                break;
            }
            let leader = {
                let mut cluster = self.cluster();
                match cluster.wait_healthy(Duration::from_secs(30)) {
                    Ok(leader) => leader,
                    Err(e) => {
                        drop(cluster);
                        self.problem(format!(
                            "before a fault at {} ms: {e}",
                            now_ns() / 1_000_000
                        ));
                        continue;
                    }
                }
            };
            let record = match self.control {
                Some(Control::StaleRead) => self.stale_read(leader),
                Some(Control::Duplicates) => None,
                None => match self.rng.pick(&self.families.clone()).copied() {
                    Some(family) => self.inject(family, leader),
                    None => None,
                },
            };
            if let Some(record) = record {
                self.faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(record);
            }
            self.heal();
        }
        self.heal();
    }

    /// Puts everything back: rules, links, stopped processes, dead ones.
    pub fn heal(&self) {
        if let Err(e) = self.network.heal() {
            self.problem(format!("healing the network: {e}"));
        }
        self.proxies.heal();
        *self
            .workload
            .local_reads_from
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let mut cluster = self.cluster();
        for id in cluster.ids() {
            cluster.resume(id);
            let mysql = &mut cluster.nodes[id - 1].mysql;
            mysql.resume();
            if !mysql.is_running() {
                if let Err(e) = mysql.spawn() {
                    self.problem(format!("restarting n{id}'s mariadbd: {e}"));
                }
            }
            if !cluster.is_running(id) {
                if let Err(e) = cluster.start(id, None) {
                    self.problem(format!("restarting n{id}: {e}"));
                }
            }
        }
    }

    fn record(
        &self,
        family: Family,
        kind: &str,
        detail: String,
        targets_leader: bool,
        start_ns: u64,
    ) -> FaultRecord {
        FaultRecord {
            family,
            kind: kind.to_string(),
            detail,
            targets_leader,
            start_ns,
            end_ns: now_ns(),
            fired: None,
        }
    }

    fn random_node(&mut self) -> usize {
        let n = self.cluster().nodes.len() as u64;
        1 + self.rng.below(n) as usize
    }

    fn inject(&mut self, family: Family, leader: usize) -> Option<FaultRecord> {
        match family {
            Family::Kill => Some(self.kill(leader)),
            Family::Pause => Some(self.pause(leader)),
            Family::Partition => Some(self.partition(leader)),
            Family::Link => Some(self.link(leader)),
            Family::Crash => Some(self.crash(leader)),
            Family::Databases => Some(self.databases()),
        }
    }

    fn kill(&mut self, leader: usize) -> FaultRecord {
        let down = self.rng.between(1_000, 3_000);
        let ids = self.cluster().ids();
        let start = now_ns();
        match self.rng.below(4) {
            0 => {
                let node = self.random_node();
                self.cluster().kill(node);
                self.sleep(down);
                let _ = self.cluster().start(node, None);
                self.record(
                    Family::Kill,
                    "kill_node",
                    format!("n{node}, down {down} ms"),
                    node == leader,
                    start,
                )
            }
            1 => {
                self.cluster().kill(leader);
                self.sleep(down);
                let _ = self.cluster().start(leader, None);
                self.record(
                    Family::Kill,
                    "kill_leader",
                    format!("n{leader}, down {down} ms"),
                    true,
                    start,
                )
            }
            2 => {
                {
                    let mut cluster = self.cluster();
                    for &id in &ids {
                        cluster.kill(id);
                    }
                }
                self.sleep(down);
                let mut cluster = self.cluster();
                for &id in &ids {
                    let _ = cluster.start(id, None);
                }
                self.record(
                    Family::Kill,
                    "kill_all",
                    format!("down {down} ms"),
                    true,
                    start,
                )
            }
            _ => {
                let node = self.random_node();
                let down = self.rng.between(1_000, 5_000);
                self.cluster().nodes[node - 1].mysql.kill();
                self.sleep(down);
                let restarted = self.cluster().nodes[node - 1].mysql.spawn();
                if let Err(e) = restarted {
                    self.problem(format!("n{node}'s mariadbd did not restart: {e}"));
                }
                self.record(
                    Family::Kill,
                    "kill_mysqld",
                    format!("n{node}'s mariadbd, down {down} ms"),
                    false,
                    start,
                )
            }
        }
    }

    fn pause(&mut self, leader: usize) -> FaultRecord {
        let hold = self.rng.between(1_500, 10_000);
        let start = now_ns();
        if self.rng.chance(50) {
            self.cluster().pause(leader);
            self.sleep(hold);
            self.cluster().resume(leader);
            self.record(
                Family::Pause,
                "pause_leader",
                format!("n{leader} for {hold} ms"),
                true,
                start,
            )
        } else {
            let node = self.random_node();
            self.cluster().nodes[node - 1].mysql.pause();
            self.sleep(hold);
            self.cluster().nodes[node - 1].mysql.resume();
            self.record(
                Family::Pause,
                "pause_mysqld",
                format!("n{node}'s mariadbd for {hold} ms"),
                false,
                start,
            )
        }
    }

    /// Every node's database unavailable at once, so that no node can
    /// apply: writes commit in Raft and queue (clients time out and retry
    /// under their keys) until the databases are back, then every applier
    /// works through the same backlog.
    fn databases(&mut self) -> FaultRecord {
        let start = now_ns();
        if self.rng.chance(50) {
            let hold = self.rng.between(2_000, 8_000);
            {
                let mut cluster = self.cluster();
                for node in cluster.nodes.iter_mut() {
                    node.mysql.pause();
                }
            }
            self.sleep(hold);
            {
                let mut cluster = self.cluster();
                for node in cluster.nodes.iter_mut() {
                    node.mysql.resume();
                }
            }
            self.record(
                Family::Databases,
                "pause_all_mysqld",
                format!("every mariadbd for {hold} ms"),
                false,
                start,
            )
        } else {
            let down = self.rng.between(1_000, 4_000);
            {
                let mut cluster = self.cluster();
                for node in cluster.nodes.iter_mut() {
                    node.mysql.kill();
                }
            }
            self.sleep(down);
            // All at once: one after another would leave a window in
            // which some nodes apply and others do not.
            let failures: Vec<String> = {
                let mut cluster = self.cluster();
                std::thread::scope(|scope| {
                    let spawned: Vec<_> = cluster
                        .nodes
                        .iter_mut()
                        .enumerate()
                        .map(|(i, node)| scope.spawn(move || (i + 1, node.mysql.spawn())))
                        .collect();
                    spawned
                        .into_iter()
                        .filter_map(|handle| match handle.join() {
                            Ok((_, Ok(()))) => None,
                            Ok((id, Err(e))) => {
                                Some(format!("n{id}'s mariadbd did not restart: {e}"))
                            }
                            Err(_) => Some("restarting a mariadbd panicked".to_string()),
                        })
                        .collect()
                })
            };
            for failure in failures {
                self.problem(failure);
            }
            self.record(
                Family::Databases,
                "restart_all_mysqld",
                format!("every mariadbd killed, down {down} ms"),
                false,
                start,
            )
        }
    }

    /// Cuts the directed link `from`→`to`: iptables in namespace mode,
    /// the proxy refusing it in loopback mode.
    fn cut(&self, from: usize, to: usize) {
        match self.network.mode {
            Mode::Namespaces => {
                if let Err(e) = self.network.drop_link(from, to) {
                    self.problem(format!("cutting n{from}->n{to}: {e}"));
                }
            }
            Mode::Loopback => self.proxies.set(from, to, LinkMode::Refuse),
        }
    }

    fn isolate(&self, group: &[usize], ids: &[usize]) {
        for &a in group {
            for &b in ids.iter().filter(|b| !group.contains(b)) {
                self.cut(a, b);
                self.cut(b, a);
            }
        }
    }

    fn partition(&mut self, leader: usize) -> FaultRecord {
        let hold = self.rng.between(3_000, 10_000);
        let ids = self.cluster().ids();
        let start = now_ns();
        let (kind, detail, targets_leader) = match self.rng.below(4) {
            0 => {
                self.isolate(&[leader], &ids);
                ("partition_leader", format!("n{leader} isolated"), true)
            }
            1 => {
                let size = (ids.len() - 1) / 2;
                let mut pool = ids.clone();
                let mut minority = Vec::new();
                while minority.len() < size {
                    let i = self.rng.below(pool.len() as u64) as usize;
                    minority.push(pool.swap_remove(i));
                }
                self.isolate(&minority, &ids);
                let hit = minority.contains(&leader);
                ("partition_minority", format!("{minority:?} isolated"), hit)
            }
            2 => {
                let mut pool = ids.clone();
                let a = pool.swap_remove(self.rng.below(pool.len() as u64) as usize);
                let c = pool.swap_remove(self.rng.below(pool.len() as u64) as usize);
                self.cut(a, c);
                self.cut(c, a);
                let b = pool.first().copied().unwrap_or(0);
                (
                    "partition_bridge",
                    format!("n{a} and n{c} cut, n{b} sees both"),
                    a == leader || c == leader,
                )
            }
            _ => {
                let from = if self.rng.chance(50) {
                    leader
                } else {
                    self.random_node()
                };
                let mut to = self.random_node();
                while to == from {
                    to = self.random_node();
                }
                self.cut(from, to);
                (
                    "partition_one_way",
                    format!("n{from} -> n{to} dropped"),
                    from == leader,
                )
            }
        };
        self.sleep(hold);
        self.heal_links();
        self.record(
            Family::Partition,
            kind,
            format!("{detail} for {hold} ms"),
            targets_leader,
            start,
        )
    }

    fn heal_links(&self) {
        if let Err(e) = self.network.heal() {
            self.problem(format!("healing the network: {e}"));
        }
        self.proxies.heal();
    }

    fn link(&mut self, leader: usize) -> FaultRecord {
        let hold = self.rng.between(3_000, 10_000);
        let ids = self.cluster().ids();
        let start = now_ns();
        let (kind, detail, targets_leader) = match self.rng.below(3) {
            0 => {
                let base_ms = self.rng.between(50, 300);
                let jitter_ms = self.rng.between(0, 200);
                for &a in &ids {
                    for &b in ids.iter().filter(|&&b| b != a) {
                        self.proxies
                            .set(a, b, LinkMode::Delay { base_ms, jitter_ms });
                    }
                }
                (
                    "link_delay",
                    format!("every link {base_ms}±{jitter_ms} ms"),
                    false,
                )
            }
            1 => {
                let node = if self.rng.chance(50) {
                    leader
                } else {
                    self.random_node()
                };
                // Held (the sender stalls), or dropped (the sender's writes
                // all succeed and the stream resumes mid-frame after).
                let (mode, kind, what) = if self.rng.chance(50) {
                    (LinkMode::Blackhole, "link_blackhole", "held")
                } else {
                    (LinkMode::Drop, "link_drop", "dropped")
                };
                for &b in ids.iter().filter(|&&b| b != node) {
                    self.proxies.set(node, b, mode);
                    self.proxies.set(b, node, mode);
                }
                (kind, format!("n{node}'s links {what}"), node == leader)
            }
            _ => {
                let max_life_ms = self.rng.between(200, 2_000);
                for &a in &ids {
                    for &b in ids.iter().filter(|&&b| b != a) {
                        self.proxies.set(a, b, LinkMode::Flaky { max_life_ms });
                    }
                }
                (
                    "link_flaky",
                    format!("every connection reset within {max_life_ms} ms"),
                    false,
                )
            }
        };
        self.sleep(hold);
        self.heal_links();
        self.record(
            Family::Link,
            kind,
            format!("{detail} for {hold} ms"),
            targets_leader,
            start,
        )
    }

    fn crash(&mut self, leader: usize) -> FaultRecord {
        let node = if self.rng.chance(50) {
            leader
        } else {
            self.random_node()
        };
        let point = CRASH_POINTS[self.rng.below(4) as usize];
        let after = self.rng.between(1, 20);
        let start = now_ns();
        {
            let mut cluster = self.cluster();
            cluster.kill(node);
            if let Err(e) = cluster.start(node, Some(format!("{point}=after:{after}"))) {
                self.problem(format!("arming n{node}: {e}"));
            }
        }
        let mut fired = false;
        for _ in 0..150 {
            if !self.sleep(100) {
                break;
            }
            if !self.cluster().is_running(node) {
                fired = true;
                break;
            }
        }
        let down = self.rng.between(500, 2_000);
        {
            let mut cluster = self.cluster();
            cluster.kill(node);
        }
        self.sleep(down);
        let _ = self.cluster().start(node, None);
        let mut record = self.record(
            Family::Crash,
            &format!("crash_{point}"),
            format!("n{node} armed at pass {after}"),
            node == leader,
            start,
        );
        record.fired = Some(fired);
        record
    }

    /// The stale-read control: isolate a follower and point the readers
    /// at its local copy while the majority keeps writing.
    fn stale_read(&mut self, leader: usize) -> Option<FaultRecord> {
        let ids = self.cluster().ids();
        let followers: Vec<usize> = ids.iter().copied().filter(|&i| i != leader).collect();
        let node = *self.rng.pick(&followers)?;
        let start = now_ns();
        self.isolate(&[node], &ids);
        *self
            .workload
            .local_reads_from
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(node);
        self.sleep(8_000);
        *self
            .workload
            .local_reads_from
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.heal_links();
        Some(self.record(
            Family::Partition,
            "stale_read_control",
            format!("n{node} isolated, read locally for 8000 ms"),
            false,
            start,
        ))
    }
}

/// One leader observation.
#[derive(Clone, Debug, Serialize)]
pub struct LeaderSample {
    /// When (harness ns).
    pub at_ns: u64,
    /// The leader then, if any.
    pub leader: Option<usize>,
}

/// Polls the nodes every 250 ms until `stop`; returns the samples where
/// the leader changed.
pub fn watch_leaders(urls: Vec<String>, stop: Arc<AtomicBool>) -> Vec<LeaderSample> {
    let mut samples: Vec<LeaderSample> = Vec::new();
    while !stop.load(Ordering::SeqCst) && !os::interrupted() {
        let views: Vec<serde_json::Value> = urls
            .iter()
            .filter_map(|u| super::client::probe(&format!("{u}/api/cluster")))
            .collect();
        let leader = views
            .iter()
            .filter(|v| v["role"] == "leader")
            .max_by_key(|v| v["term"].as_u64().unwrap_or(0))
            .and_then(|v| v["node_id"].as_u64())
            .map(|l| l as usize);
        if samples.last().map(|s| s.leader) != Some(leader) {
            samples.push(LeaderSample {
                at_ns: now_ns(),
                leader,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    samples
}

/// Leader changes in the samples: a leader different from the last one
/// known (stretches without a leader do not count).
pub fn leader_changes(samples: &[LeaderSample]) -> usize {
    let leaders: Vec<usize> = samples.iter().filter_map(|s| s.leader).collect();
    leaders.windows(2).filter(|w| w[0] != w[1]).count()
}
