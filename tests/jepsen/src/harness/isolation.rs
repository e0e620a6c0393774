//! Leader isolations in a row, timed: how long the majority goes without
//! an acknowledged write after its leader is cut off.
//!
//! Each round waits for a healthy cluster, then sets every link of the
//! leader, both directions, to a relay mode ([`LinkMode::Drop`]: bytes
//! accepted and thrown away, no reset, the way a dead route behind a
//! middlebox looks; or [`LinkMode::Blackhole`]: accepted and held). From
//! that instant, probers on every other node send creates (each under its
//! own `Idempotency-Key`, retried at once on any failure); the round's
//! figure is the time from the cut to the first `201` a majority node
//! gives to a write sent after the cut. A monitor notes when a majority
//! node first reports a new leader. The cut is held, healed, and the
//! cluster given a quiet spell (with a light background writer all
//! along) before the next round.
//!
//! The figures are reported, one line per isolation, not asserted: speed
//! is a benchmark's business. What the run does check is that every round
//! recovered (a write acknowledged within [`GIVE_UP`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::client::{agent, agent_with, call, probe};
use super::os::{self, now_ns};
use super::proxy::LinkMode;
use super::rng::Rng;
use super::run::{self, RunConfig, Setup};

/// A round with no acknowledged write after this long has failed.
pub const GIVE_UP: Duration = Duration::from_secs(30);

/// How the leader is cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Its links' relays switch to this mode.
    Relay(LinkMode),
    /// iptables DROP rules on its links, both ways (packets lost in the
    /// network: TCP retransmits, with backoff, until the rules go).
    Iptables,
}

impl Cut {
    /// For the report.
    pub fn describe(&self) -> String {
        match self {
            Cut::Relay(mode) => format!("{} relays", mode.describe()),
            Cut::Iptables => "iptables DROP".to_string(),
        }
    }
}

/// What an isolation run does.
#[derive(Clone, Debug)]
pub struct IsolationConfig {
    /// Nodes, network, seed, binaries, where the files go.
    pub run: RunConfig,
    /// Isolations in a row.
    pub count: usize,
    /// What the leader's links do meanwhile.
    pub mode: Cut,
    /// How long each cut lasts (at least until a write was acknowledged).
    pub hold_ms: u64,
    /// The healed spell between two cuts, ms.
    pub quiet_ms: (u64, u64),
    /// Description bytes of each background write: larger entries make
    /// frames that span several TCP segments, so a cut can fall inside one.
    pub payload_bytes: usize,
    /// Background writers (each one create every 100 ms).
    pub writers: usize,
}

impl IsolationConfig {
    /// Five isolations through dropping relays, each held 4 s, 4–12 s apart.
    pub fn new(run: RunConfig) -> IsolationConfig {
        IsolationConfig {
            run,
            count: 5,
            mode: Cut::Relay(LinkMode::Drop),
            hold_ms: 4_000,
            quiet_ms: (4_000, 12_000),
            payload_bytes: 2_000,
            writers: 2,
        }
    }
}

/// One round's figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Round {
    /// 1-based.
    pub index: usize,
    /// The leader that was cut off.
    pub isolated: usize,
    /// The leader the majority elected, if one was seen.
    pub new_leader: Option<usize>,
    /// From the cut until a majority node reported it, ms.
    pub new_leader_ms: Option<u64>,
    /// From the cut until the first acknowledged write sent after it, ms.
    pub first_write_ms: Option<u64>,
    /// When the cut was made (UTC, `HH:MM:SS.mmm`), to find it in node logs.
    pub cut_at: String,
}

impl Round {
    /// The report line.
    pub fn line(&self, mode: Cut) -> String {
        let ms = |v: Option<u64>| v.map_or("never".to_string(), |v| format!("{v} ms"));
        format!(
            "isolation {}: n{} cut off ({}); first acknowledged write on the majority after {}; new leader {} seen after {}",
            self.index,
            self.isolated,
            mode.describe(),
            ms(self.first_write_ms),
            self.new_leader.map_or("none".to_string(), |l| format!("n{l}")),
            ms(self.new_leader_ms),
        )
    }
}

/// What the run found.
pub struct IsolationOutcome {
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// The report text (one line per isolation, then a summary).
    pub text: String,
    /// Where the files are.
    pub dir: std::path::PathBuf,
    /// Whether every round recovered.
    pub passed: bool,
}

/// Runs `config.count` isolations and reports them.
pub fn run(config: &IsolationConfig) -> Result<IsolationOutcome, String> {
    let started = std::time::Instant::now();
    let run_id = format!(
        "{}-seed{}-{}-{}",
        config.run.name,
        config.run.seed,
        now_secs(),
        std::process::id()
    );
    let dir = config.run.out_root.join(&run_id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = |line: String| eprintln!("[{:>7.1}s] {line}", started.elapsed().as_secs_f64());
    log(format!("run {run_id}: {}", dir.display()));
    let Setup {
        network,
        proxies,
        cluster,
        urls,
    } = run::setup(&config.run, &config.run.binary, &dir, &log)?;
    let ids: Vec<usize> = (1..=urls.len()).collect();
    let mut rng = Rng::derive(config.run.seed, 900);

    // A light, steady background load, so that the leader is appending
    // entries (not only heartbeating) when it is cut off.
    let stop = Arc::new(AtomicBool::new(false));
    let background: Vec<_> = (0..config.writers)
        .map(|w| {
            let (urls, stop) = (urls.clone(), stop.clone());
            let description = "x".repeat(config.payload_bytes);
            std::thread::spawn(move || {
                let agent = agent();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) && !os::interrupted() {
                    let url = &urls[(i as usize + w) % urls.len()];
                    let _ = call(
                        &agent,
                        "POST",
                        &format!("{url}/api/tasks"),
                        &[("Idempotency-Key", format!("bg{w}-{i}"))],
                        Some(&json!({ "title": format!("background {w}.{i}"), "description": description })),
                    );
                    i += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();

    let mut rounds = Vec::new();
    let mut problems = Vec::new();
    for index in 1..=config.count {
        if os::interrupted() {
            break;
        }
        let leader = match run::lock(&cluster).wait_healthy(Duration::from_secs(60)) {
            Ok(leader) => leader,
            Err(e) => {
                problems.push(format!("before isolation {index}: {e}"));
                break;
            }
        };
        let majority: Vec<usize> = ids.iter().copied().filter(|&i| i != leader).collect();
        let round = isolate(config, &network, &proxies, &urls, leader, &majority, index);
        log(format!(
            "{} (cut at {} UTC)",
            round.line(config.mode),
            round.cut_at
        ));
        rounds.push(round);
        proxies.heal();
        if let Err(e) = network.heal() {
            problems.push(format!("healing after isolation {index}: {e}"));
        }
        let quiet = rng.between(config.quiet_ms.0, config.quiet_ms.1);
        os::sleep_unless(Duration::from_millis(quiet), &os::interrupted);
    }
    stop.store(true, Ordering::SeqCst);
    for b in background {
        let _ = b.join();
    }

    let recovered = rounds.iter().filter(|r| r.first_write_ms.is_some()).count();
    let passed = problems.is_empty() && rounds.len() == config.count && recovered == rounds.len();
    let mut text = String::new();
    text.push_str(&format!("run: {run_id}\n"));
    text.push_str(&format!(
        "nodes: {}  network: {}  seed: {}  binary: {}\n",
        ids.len(),
        network.describe(),
        config.run.seed,
        config.run.binary.display()
    ));
    text.push_str(&format!(
        "leader isolations: {} in a row, each held {} ms through {}, {}–{} ms apart\n",
        config.count,
        config.hold_ms,
        config.mode.describe(),
        config.quiet_ms.0,
        config.quiet_ms.1
    ));
    for round in &rounds {
        text.push_str(&round.line(config.mode));
        text.push('\n');
    }
    let mut figures: Vec<u64> = rounds.iter().filter_map(|r| r.first_write_ms).collect();
    figures.sort_unstable();
    if let (Some(min), Some(max)) = (figures.first(), figures.last()) {
        text.push_str(&format!(
            "cut to first acknowledged write: min {min} ms, max {max} ms over {} isolations\n",
            figures.len()
        ));
    }
    for p in &problems {
        text.push_str(&format!("problem: {p}\n"));
    }
    text.push_str(&format!(
        "{}: {recovered} of {} isolations recovered\n",
        if passed { "PASS" } else { "FAIL" },
        config.count
    ));
    let _ = std::fs::write(dir.join("report.txt"), &text);
    let _ = std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&json!({ "rounds": rounds, "passed": passed }))
            .unwrap_or_default(),
    );
    if let Ok(cluster) = Arc::try_unwrap(cluster) {
        let mut cluster = cluster.into_inner().unwrap_or_else(|e| e.into_inner());
        cluster.shutdown();
    }
    drop(proxies);
    drop(network);
    if passed && !config.run.keep_data {
        for i in 1..=ids.len() {
            let _ = std::fs::remove_dir_all(dir.join(format!("n{i}/raft")));
            let _ = std::fs::remove_dir_all(dir.join(format!("n{i}/mysql")));
        }
    }
    Ok(IsolationOutcome {
        rounds,
        text,
        dir,
        passed,
    })
}

/// One isolation of `leader`: cut, time the recovery, hold, (the caller heals).
fn isolate(
    config: &IsolationConfig,
    network: &super::net::Network,
    proxies: &super::proxy::Proxies,
    urls: &[String],
    leader: usize,
    majority: &[usize],
    index: usize,
) -> Round {
    let done = Arc::new(AtomicBool::new(false));
    let first_write = Arc::new(AtomicU64::new(0));
    let new_leader = Arc::new(AtomicU64::new(0));
    let new_leader_at = Arc::new(AtomicU64::new(0));
    for &other in majority {
        match config.mode {
            Cut::Relay(mode) => {
                proxies.set(leader, other, mode);
                proxies.set(other, leader, mode);
            }
            Cut::Iptables => {
                let _ = network.drop_link(leader, other);
                let _ = network.drop_link(other, leader);
            }
        }
    }
    let cut = now_ns();
    let cut_at = utc_now();
    let mut threads = Vec::new();
    for (p, &node) in majority.iter().chain(majority.iter()).enumerate() {
        let url = urls[node - 1].clone();
        let (done, first_write) = (done.clone(), first_write.clone());
        threads.push(std::thread::spawn(move || {
            let agent = agent_with(Duration::from_millis(500), Duration::from_secs(3));
            let mut attempt = 0;
            while !done.load(Ordering::SeqCst) && now_ns() - cut < GIVE_UP.as_nanos() as u64 {
                let answer = call(
                    &agent,
                    "POST",
                    &format!("{url}/api/tasks"),
                    &[(
                        "Idempotency-Key",
                        format!("iso{index}-p{p}-{attempt}-{cut}"),
                    )],
                    Some(&json!({ "title": format!("isolation {index} probe {p}.{attempt}") })),
                );
                attempt += 1;
                if answer.status == 201 {
                    let at = now_ns() - cut;
                    let _ = first_write.compare_exchange(0, at, Ordering::SeqCst, Ordering::SeqCst);
                    done.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    {
        let majority_urls: Vec<String> = majority.iter().map(|&m| urls[m - 1].clone()).collect();
        let (new_leader, new_leader_at) = (new_leader.clone(), new_leader_at.clone());
        threads.push(std::thread::spawn(move || {
            while now_ns() - cut < GIVE_UP.as_nanos() as u64 && !os::interrupted() {
                for url in &majority_urls {
                    if let Some(view) = probe(&format!("{url}/api/cluster")) {
                        let id = view["leader_id"].as_u64().unwrap_or(0);
                        if id != 0 && id != leader as u64 && view["node_id"].as_u64() == Some(id) {
                            new_leader.store(id, Ordering::SeqCst);
                            new_leader_at.store(now_ns() - cut, Ordering::SeqCst);
                            return;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    let elapsed_ms = (now_ns() - cut) / 1_000_000;
    if elapsed_ms < config.hold_ms {
        std::thread::sleep(Duration::from_millis(config.hold_ms - elapsed_ms));
    }
    let ms = |ns: u64| (ns > 0).then_some(ns / 1_000_000);
    Round {
        index,
        isolated: leader,
        new_leader: match new_leader.load(Ordering::SeqCst) {
            0 => None,
            id => Some(id as usize),
        },
        new_leader_ms: ms(new_leader_at.load(Ordering::SeqCst)),
        first_write_ms: ms(first_write.load(Ordering::SeqCst)),
        cut_at,
    }
}

/// The wall clock as `HH:MM:SS.mmm` UTC.
fn utc_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis()
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
