//! One run, from nothing to a verdict: network, MariaDB servers, nodes,
//! workload and nemesis for the configured time, healing, the final reads,
//! the checkers, the report, and the cleanup.
//!
//! A run is *valid* only if nothing wrong was found **and** it did enough:
//! its floors (ok operations, faults injected, leader changes when the
//! leader was a target) scale with its duration; a run below a floor is
//! inconclusive, which fails. A negative control inverts the check it is
//! about: it passes when that checker flags the run with the expected
//! anomaly, and every other check must still pass.
//!
//! Cleanup is by drop: the cluster (nodes, then MariaDB servers), the
//! proxies, then the namespaces — also when a step fails or panics. Data
//! directories are deleted after a passing run and kept after a failing
//! one.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::client;
use super::cluster::Cluster;
use super::mysql;
use super::nemesis::{self, Control, Family, FaultRecord, Nemesis};
use super::net::{self, Mode, Network};
use super::os::{self, now_ns};
use super::proxy::Proxies;
use super::report::{overall, unavailability};
use super::rng::Rng;
use super::subscriber;
use super::workload::{Workload, WorkloadConfig, DEFAULT_COLUMNS};
use crate::convergence::{self, NodeTable};
use crate::history::History;
use crate::invariant;
use crate::linearizable::tasks::{self, Config};
use crate::report::{Anomaly, Check, Report, Verdict};
use crate::set::{self, FinalRead};
use crate::stream;

/// The minimum a run must do to count.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Floors {
    /// Acknowledged (ok) operations per second of the run.
    pub ok_ops_per_sec: f64,
    /// Faults per minute of the run.
    pub faults_per_min: f64,
    /// Leader changes per minute, when some fault targeted the leader.
    pub leader_changes_per_min: f64,
}

impl Default for Floors {
    /// The floors (120 s: 3,000 ok operations, 10 faults, 3 leader
    /// changes when the leader is a target), per second and per minute.
    /// Measured here (see the README): 40–90 ok ops/s depending on the
    /// nemesis, the pause family lowest.
    fn default() -> Floors {
        Floors {
            ok_ops_per_sec: 25.0,
            faults_per_min: 5.0,
            leader_changes_per_min: 1.5,
        }
    }
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// A name for the run directory (`ci-kill`, `chaos`…).
    pub name: String,
    /// The seed of every choice.
    pub seed: u64,
    /// How long the workload and the nemesis run.
    pub duration: Duration,
    /// Fault families to draw from.
    pub families: Vec<Family>,
    /// A negative control instead of the families.
    pub control: Option<Control>,
    /// Nodes (3 or 5).
    pub nodes: usize,
    /// Namespaces or loopback.
    pub network: net::Choice,
    /// Where runs go (`target/jepsen`).
    pub out_root: PathBuf,
    /// The node binary.
    pub binary: PathBuf,
    /// The binary with crash points.
    pub failpoints_binary: PathBuf,
    /// The clients.
    pub workload: WorkloadConfig,
    /// WebSocket subscribers.
    pub subscribers: usize,
    /// The validity floors.
    pub floors: Floors,
    /// Quiet time between faults, ms.
    pub quiet_ms: (u64, u64),
    /// Keep the data directories even after a pass.
    pub keep_data: bool,
    /// The nodes run as `serve` does by default in production: accounts on
    /// (the clients use the admin service token), HTTPS and wss for the
    /// clients, mutual TLS between peers. `false` (`chaos --plain`): plain
    /// HTTP and TCP, no accounts.
    pub secure: bool,
}

impl RunConfig {
    /// Defaults for `name`, `seed`, `duration`, `families`, with binaries
    /// from `TASKRAFT_BIN` / `TASKRAFT_FAILPOINTS_BIN` or `target/debug`.
    pub fn new(name: &str, seed: u64, duration: Duration, families: Vec<Family>) -> RunConfig {
        let root = workspace_root();
        let bin = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target/debug").join(default))
        };
        RunConfig {
            name: name.to_string(),
            seed,
            duration,
            families,
            control: None,
            nodes: 3,
            network: net::Choice::Auto,
            out_root: root.join("target/jepsen"),
            binary: bin("TASKRAFT_BIN", "taskraft"),
            failpoints_binary: bin("TASKRAFT_FAILPOINTS_BIN", "taskraft-failpoints"),
            workload: WorkloadConfig::default(),
            subscribers: 3,
            floors: Floors::default(),
            quiet_ms: (2_000, 5_000),
            keep_data: false,
            secure: true,
        }
    }
}

/// The workspace's root: `TASKRAFT_ROOT`, else two levels above this crate.
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("TASKRAFT_ROOT") {
        return PathBuf::from(root);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// What a run concluded.
pub struct RunOutcome {
    /// `target/jepsen/<run-id>`.
    pub dir: PathBuf,
    /// The checkers' report (controls: with their check inverted).
    pub report: Report,
    /// Whether the run passed (a control: whether the checker bit).
    pub passed: bool,
    /// The text report.
    pub text: String,
}

/// Runs one configuration to its report.
pub fn run(config: &RunConfig) -> Result<RunOutcome, String> {
    let started = Instant::now();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let run_id = format!(
        "{}-seed{}-{stamp}-{}",
        config.name,
        config.seed,
        std::process::id()
    );
    let dir = config.out_root.join(&run_id);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = |line: String| {
        eprintln!("[{:>7.1}s] {line}", started.elapsed().as_secs_f64());
    };
    log(format!("run {run_id}: {}", dir.display()));

    let needs_failpoints =
        config.families.contains(&Family::Crash) || config.control == Some(Control::Duplicates);
    let binary = if needs_failpoints {
        config.failpoints_binary.clone()
    } else {
        config.binary.clone()
    };
    for b in [&binary, &config.binary] {
        if !b.is_file() {
            return Err(format!(
                "{} is missing: run scripts/build-failpoints",
                b.display()
            ));
        }
    }

    let Setup {
        network,
        proxies,
        cluster,
        urls,
    } = setup(config, &binary, &dir, &log)?;
    let n = config.nodes;

    // 3. Workload, subscribers, monitor, nemesis.
    let mut workload_config = config.workload.clone();
    workload_config.server_ids_and_forced_retries = config.control == Some(Control::Duplicates);
    let workload = Arc::new(Workload::new(urls.clone(), config.seed, workload_config));
    workload.setup()?;
    let t_start = now_ns();
    let mut workers = Vec::new();
    for c in 0..config.workload.writers {
        let w = workload.clone();
        workers.push(std::thread::spawn(move || w.writer(c)));
    }
    for r in 0..config.workload.readers {
        let w = workload.clone();
        workers.push(std::thread::spawn(move || w.reader(r)));
    }
    if config.control != Some(Control::Duplicates) {
        let w = workload.clone();
        workers.push(std::thread::spawn(move || w.mover()));
        let w = workload.clone();
        workers.push(std::thread::spawn(move || w.lister()));
        let w = workload.clone();
        workers.push(std::thread::spawn(move || w.reorderer()));
    }
    let subscribers_stop = Arc::new(AtomicBool::new(false));
    let subscribers: Vec<_> = (0..config.subscribers)
        .map(|s| {
            let (urls, stop) = (urls.clone(), subscribers_stop.clone());
            let seed = Rng::derive(config.seed, 600 + s as u64).next_u64();
            std::thread::spawn(move || {
                subscriber::follow(format!("s{s}"), urls, seed, &|| {
                    stop.load(Ordering::SeqCst) || os::interrupted()
                })
            })
        })
        .collect();
    let monitor_stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (urls, stop) = (urls.clone(), monitor_stop.clone());
        std::thread::spawn(move || nemesis::watch_leaders(urls, stop))
    };
    let nemesis_stop = Arc::new(AtomicBool::new(false));
    let faults = Arc::new(Mutex::new(Vec::<FaultRecord>::new()));
    let problems = Arc::new(Mutex::new(Vec::<String>::new()));
    let nemesis = Nemesis {
        cluster: cluster.clone(),
        network: network.clone(),
        proxies: proxies.clone(),
        families: config.families.clone(),
        control: config.control,
        workload: workload.clone(),
        rng: Rng::derive(config.seed, 700),
        quiet_ms: config.quiet_ms,
        stop: nemesis_stop.clone(),
        faults: faults.clone(),
        problems: problems.clone(),
    };
    let nemesis_thread = std::thread::spawn(move || nemesis.run());
    log(format!(
        "workload and nemesis ({}) running for {:?}",
        match config.control {
            Some(c) => format!("control {c:?}"),
            None => config
                .families
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(","),
        },
        config.duration
    ));
    let mut next_note = Instant::now() + Duration::from_secs(60);
    let end = Instant::now() + config.duration;
    while Instant::now() < end && !os::interrupted() {
        std::thread::sleep(Duration::from_millis(200));
        if Instant::now() >= next_note {
            next_note += Duration::from_secs(60);
            let ops = workload.main.snapshot();
            log(format!(
                "{} operations, {} faults",
                ops.len(),
                lock(&faults).len()
            ));
        }
    }

    // 4. Heal, let the clients see the healed cluster, stop them.
    nemesis_stop.store(true, Ordering::SeqCst);
    let _ = nemesis_thread.join();
    log(format!(
        "nemesis stopped after {} faults; healed",
        lock(&faults).len()
    ));
    std::thread::sleep(Duration::from_secs(3));
    workload.stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    let t_end = now_ns();
    std::thread::sleep(Duration::from_secs(1));
    subscribers_stop.store(true, Ordering::SeqCst);
    let subscribers: Vec<stream::Subscriber> = subscribers
        .into_iter()
        .filter_map(|s| s.join().ok())
        .collect();
    monitor_stop.store(true, Ordering::SeqCst);
    let leader_samples = monitor.join().unwrap_or_default();
    log("clients stopped; waiting for the nodes to converge".into());

    // 5. Final reads.
    let mut setup_problems: Vec<String> = lock(&problems).clone();
    let snapshot_counts;
    let mut column_versions: Vec<(String, Vec<u64>)> = Vec::new();
    let (finals, tables, rebuilds, alarms) = {
        let mut c = lock(&cluster);
        if let Err(e) = c.wait_healthy(Duration::from_secs(90)) {
            setup_problems.push(format!("after healing: {e}"));
        }
        if let Err(e) = c.wait_converged(Duration::from_secs(90)) {
            setup_problems.push(e);
        }
        let columns: std::collections::BTreeSet<String> =
            workload.column_task_ids().into_iter().collect();
        let mut finals = Vec::new();
        let mut tables = Vec::new();
        let mut rebuilds = Vec::new();
        for id in c.ids() {
            match c.all_tasks(id) {
                Ok(tasks) => finals.push(FinalRead {
                    node: format!("n{id}"),
                    tasks: tasks
                        .into_iter()
                        .map(|(t, _)| t)
                        .filter(|t| !columns.contains(&t.id))
                        .collect(),
                }),
                Err(e) => setup_problems.push(e),
            }
            match c.event_table(id) {
                Ok(rows) => tables.push(NodeTable {
                    node: format!("n{id}"),
                    rows,
                }),
                Err(e) => setup_problems.push(format!("event table of n{id}: {e}")),
            }
            rebuilds.push((id, c.rebuild_check(id)));
            match default_column_versions(&c.url(id)) {
                Ok(versions) => column_versions.push((format!("n{id}"), versions)),
                Err(e) => setup_problems.push(format!("columns of n{id}: {e}")),
            }
        }
        snapshot_counts = c.log_counts(&[
            "compacted the Raft log",
            "installed a snapshot",
            "copied a page of committed rows",
        ]);
        (finals, tables, rebuilds, c.log_alarms())
    };
    log("final reads done; checking".into());

    // 6. Checks.
    let main = std::mem::take(&mut *lock_recorder(&workload));
    let generations: Vec<(String, Vec<String>, History)> = lock(&workload.generations)
        .iter()
        .map(|g| (g.label.clone(), g.task_ids.clone(), g.recorder.snapshot()))
        .collect();
    let faults: Vec<FaultRecord> = lock(&faults).clone();
    let mut all = main.clone();
    for (_, _, h) in &generations {
        append(&mut all, h);
    }
    let mut report = Report::new(&all);
    let lin_config = Config::default();
    let mut lin = tasks::check(&main, &lin_config).to_check();
    for (label, _, h) in &generations {
        let c = tasks::check(h, &lin_config).to_check();
        lin = merge(lin, c, label);
    }
    let set_check = set::check(&main, &finals).to_check();
    let mut columns: Option<Check> = None;
    let judged = invariant::judged_generations(
        generations
            .iter()
            .map(|(label, ids, h)| (label.clone(), invariant::check(h, ids, true)))
            .collect(),
    );
    for (label, result) in &judged {
        let c = result.to_check();
        columns = Some(match columns {
            None => c,
            Some(prev) => merge(prev, c, label),
        });
    }
    let stream_check = match tables.first() {
        Some(table) => stream::check(&subscribers, &table.rows).to_check(),
        None => Check {
            name: "stream".into(),
            verdict: Verdict::Inconclusive,
            summary: "no event table was read".into(),
            anomalies: vec![],
        },
    };
    let convergence_check = convergence::check(&tables).to_check();
    let projection = Check::from_anomalies(
        "projection",
        format!("taskraft rebuild --check on {} nodes", rebuilds.len()),
        rebuilds
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .map(|e| Anomaly::new("projection_differs", e.clone()))
            .collect(),
    );
    let logs = Check::from_anomalies(
        "node logs",
        format!("{} lines with panicked/fatal", alarms.len()),
        alarms
            .iter()
            .map(|a| Anomaly::new("panic_in_log", a.clone()))
            .collect(),
    );
    let recording = Check::from_anomalies(
        "harness",
        format!(
            "{} recording or healing problems",
            setup_problems.len() + main.problems().len()
        ),
        main.problems()
            .into_iter()
            .chain(setup_problems.iter().cloned())
            .map(|p| Anomaly::new("harness_problem", p))
            .collect(),
    );

    let expected = match config.control {
        Some(Control::StaleRead) => Some(("linearizable", "nonlinearizable")),
        Some(Control::Duplicates) => Some(("set", "duplicated")),
        None => None,
    };
    let column_changes = workload.column_changes.load(Ordering::SeqCst);
    let column_check = acked_column_versions(&workload, column_changes, &column_versions);
    let mut checks = vec![lin, set_check];
    // The duplicate control runs no columns workload (its generation is
    // only set up), so it has no lists to judge.
    if let Some(c) = columns.filter(|_| config.control != Some(Control::Duplicates)) {
        checks.push(c);
    }
    if config.control != Some(Control::Duplicates) {
        checks.push(column_check);
    }
    checks.extend([stream_check, convergence_check, projection, logs, recording]);
    for check in checks {
        match expected {
            Some((name, kind)) if check.name == name => report.add(invert(check, kind)),
            _ => report.add(check),
        };
    }

    // Floors.
    let secs = config.duration.as_secs_f64();
    let mins = secs / 60.0;
    let changes = nemesis::leader_changes(&leader_samples);
    report.floor(
        "ok operations",
        report.operations.ok as u64,
        (config.floors.ok_ops_per_sec * secs) as u64,
    );
    if config.control.is_none() && !config.families.is_empty() {
        report.floor(
            "faults",
            faults.len() as u64,
            (config.floors.faults_per_min * mins).ceil() as u64,
        );
        // A run that draws from several families must have met each, or
        // a seed could quietly leave one out.
        if config.families.len() > 1 {
            for family in &config.families {
                report.floor(
                    &format!("{} faults", family.name()),
                    faults.iter().filter(|f| f.family == *family).count() as u64,
                    1,
                );
            }
        }
        if faults.iter().any(|f| f.targets_leader) {
            report.floor(
                "leader changes",
                changes as u64,
                (config.floors.leader_changes_per_min * mins)
                    .ceil()
                    .max(1.0) as u64,
            );
        }
    }
    if config.control == Some(Control::StaleRead) {
        report.floor("faults", faults.len() as u64, 1);
    }
    if config.control != Some(Control::Duplicates) {
        report.floor("acknowledged column changes", column_changes, 1);
    }

    // 7. The report.
    let unavail = unavailability(&main, &faults);
    let (p50, max) = overall(&unavail);
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for f in &faults {
        *by_kind.entry(f.kind.clone()).or_default() += 1;
    }
    let mut head = String::new();
    let line = |head: &mut String, text: String| {
        head.push_str(&text);
        head.push('\n');
    };
    line(&mut head, format!("run: {run_id}"));
    line(
        &mut head,
        format!(
            "seed: {}  duration: {:?}  nodes: {n}  binary: {}",
            config.seed,
            config.duration,
            binary.display()
        ),
    );
    line(&mut head, format!("network: {}", network.describe()));
    line(
        &mut head,
        match config.secure {
            true => "nodes as serve runs them: accounts on (admin token), https and wss, peer mutual TLS",
            false => "nodes plain (--plain): no accounts, http, plain peer TCP",
        }
        .to_string(),
    );
    line(
        &mut head,
        format!(
            "nemesis: {}",
            match config.control {
                Some(c) => format!("negative control {c:?}"),
                None => config
                    .families
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(","),
            }
        ),
    );
    let workload_secs = (t_end.saturating_sub(t_start)) as f64 / 1e9;
    line(
        &mut head,
        format!(
            "throughput: {:.1} ok ops/s over {:.0} s ({} columns generations, {} subscribers, {} proxy connections)",
            report.operations.ok as f64 / workload_secs.max(1.0),
            workload_secs,
            generations.len(),
            subscribers.len(),
            proxies.accepted()
        ),
    );
    line(
        &mut head,
        format!(
            "faults: {} ({})",
            faults.len(),
            by_kind
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let fired = faults.iter().filter(|f| f.fired == Some(true)).count();
    let armed = faults.iter().filter(|f| f.fired.is_some()).count();
    if armed > 0 {
        line(
            &mut head,
            format!("crash points fired: {fired} of {armed} armed"),
        );
    }
    line(&mut head, format!("leader changes: {changes}"));
    line(
        &mut head,
        format!(
            "log compactions: {}, snapshots installed: {}, pages copied from a peer: {}",
            snapshot_counts[0], snapshot_counts[1], snapshot_counts[2]
        ),
    );
    line(&mut head, format!("unavailability after a fault (first ok write invoked after it): p50 {p50} ms, max {max} ms"));
    for (kind, u) in &unavail {
        line(
            &mut head,
            format!(
                "  {kind}: {} faults, p50 {} ms, max {} ms{}",
                u.faults,
                u.p50_ms,
                u.max_ms,
                if u.never_recovered > 0 {
                    format!(", {} never recovered", u.never_recovered)
                } else {
                    String::new()
                }
            ),
        );
    }
    let passed = report.verdict() == Verdict::Valid;
    if let Some((name, kind)) = expected {
        line(
            &mut head,
            format!(
                "negative control: the {name} check must flag {kind}: {}",
                if passed {
                    "it did (control passed)"
                } else {
                    "it did NOT, or another check failed (control failed)"
                }
            ),
        );
    }
    line(&mut head, format!("files: {}", dir.display()));
    let text = format!("{head}\n{report}\n");
    let mut json = report.to_json();
    json["run"] = json!({
        "id": run_id,
        "seed": config.seed,
        "duration_s": config.duration.as_secs(),
        "nodes": n,
        "network": network.describe(),
        "families": config.families,
        "control": config.control,
        "floors": config.floors,
        "leader_changes": changes,
        "leader_samples": leader_samples,
        "faults_by_kind": by_kind,
        "unavailability_ms": unavail,
        "unavailability_overall_ms": { "p50": p50, "max": max },
        "workload_seconds": workload_secs,
        "log_compactions": snapshot_counts[0],
        "snapshots_installed": snapshot_counts[1],
        "catchup_pages": snapshot_counts[2],
        "passed": passed,
    });
    write(&dir.join("report.txt"), text.as_bytes());
    write(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&json)
            .unwrap_or_default()
            .as_bytes(),
    );
    write(
        &dir.join("faults.json"),
        serde_json::to_string_pretty(&faults)
            .unwrap_or_default()
            .as_bytes(),
    );
    write(
        &dir.join("subscribers.json"),
        serde_json::to_string(&subscribers)
            .unwrap_or_default()
            .as_bytes(),
    );
    let mut buf = Vec::new();
    let _ = main.write_jsonl(&mut buf);
    write(&dir.join("history.jsonl"), &buf);
    for (g, (_, _, h)) in generations.iter().enumerate() {
        let mut buf = Vec::new();
        let _ = h.write_jsonl(&mut buf);
        write(&dir.join(format!("columns-{g}.jsonl")), &buf);
    }

    // 8. Cleanup: processes first, then (after a pass) the data.
    drop(workload);
    if let Ok(cluster) = Arc::try_unwrap(cluster) {
        let mut cluster = cluster.into_inner().unwrap_or_else(|e| e.into_inner());
        cluster.shutdown();
        drop(cluster);
    }
    drop(proxies);
    drop(network);
    if passed && !config.keep_data {
        for i in 1..=n {
            let _ = std::fs::remove_dir_all(dir.join(format!("n{i}/raft")));
            let mysql_dir = dir.join(format!("n{i}/mysql"));
            let kept = std::fs::read(mysql_dir.join("error.log")).ok();
            let _ = std::fs::remove_dir_all(&mysql_dir);
            if let Some(log) = kept {
                write(&dir.join(format!("n{i}/mysql-error.log")), &log);
            }
        }
    }
    log(format!("done: {}", report.closing_line()));
    let failures = report.failures();
    if !failures.is_empty() {
        log(format!("checks that did not pass:\n{failures}"));
    }
    Ok(RunOutcome {
        dir,
        report,
        passed,
        text,
    })
}

/// What [`setup`] built: the network, the proxies, and a running cluster.
pub struct Setup {
    /// The namespaces (or loopback) and their rules.
    pub network: Arc<Network>,
    /// One proxy per directed Raft link.
    pub proxies: Arc<Proxies>,
    /// The nodes and their MariaDB servers.
    pub cluster: Arc<Mutex<Cluster>>,
    /// Every node's URL, by id.
    pub urls: Vec<String>,
}

/// Builds the network, the proxies, one MariaDB per node and the nodes
/// (running `binary`), and waits for a healthy cluster.
pub fn setup(
    config: &RunConfig,
    binary: &Path,
    dir: &Path,
    log: &dyn Fn(String),
) -> Result<Setup, String> {
    // 1. The network.
    let network = Arc::new(Network::create(config.nodes, config.network)?);
    log(format!("network: {}", network.describe()));
    let n = config.nodes;
    let (http_ports, raft_ports, mysql_ports): (Vec<u16>, Vec<u16>, Vec<u16>) = match network.mode {
        Mode::Namespaces => (
            vec![net::HTTP_PORT; n],
            vec![net::RAFT_PORT; n],
            vec![3306; n],
        ),
        Mode::Loopback => (
            testbed::free_ports(n),
            testbed::free_ports(n),
            testbed::free_ports(n),
        ),
    };
    let mut links = Vec::new();
    for j in 1..=n {
        let upstream = SocketAddr::new(IpAddr::V4(network.node_ip(j)), raft_ports[j - 1]);
        match network.mode {
            Mode::Namespaces => {
                for i in (1..=n).filter(|&i| i != j) {
                    let ip = IpAddr::V4(network.link_ip(i, j));
                    links.push((
                        i,
                        j,
                        SocketAddr::new(ip, net::PROXY_PORT),
                        upstream,
                        Some(ip),
                    ));
                }
            }
            Mode::Loopback => {
                let listen = SocketAddr::new(IpAddr::V4(network.link_ip(0, j)), 0);
                links.push((0, j, listen, upstream, None));
            }
        }
    }
    let proxies = Arc::new(Proxies::start(&links, config.seed)?);

    // 2. MariaDB servers and nodes.
    let template = mysql::template(&config.out_root)?;
    // All at once: each waits for its own server to answer.
    let mysqls = std::thread::scope(|scope| {
        let starting: Vec<_> = (1..=n)
            .map(|i| {
                let (template, datadir) = (&template, dir.join(format!("n{i}/mysql")));
                let (ns, port) = (network.namespace(i), mysql_ports[i - 1]);
                scope.spawn(move || mysql::start(template, &datadir, ns, port))
            })
            .collect();
        starting
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err("a MariaDB start panicked".into()))
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    log("MariaDB servers up".into());
    // One peer list for every node (taskraft's cluster id is derived from
    // it): the real Raft addresses in namespace mode (DNAT sends them to
    // the per-link proxies), the per-destination proxies on loopback.
    let peers = (1..=n)
        .map(|j| match network.mode {
            Mode::Namespaces => format!("{j}={}:{}", network.node_ip(j), raft_ports[j - 1]),
            Mode::Loopback => format!(
                "{j}={}",
                proxies
                    .addr(0, j)
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            ),
        })
        .collect::<Vec<_>>()
        .join(",");
    // Compact often (etcd's Jepsen suite lowers --snapshot-count to 100), so
    // that nodes coming back from faults are sent snapshots and copy rows
    // from a peer: that path is checked like every other.
    // A cluster of more than one node needs a secret; each run its own.
    let secret = random_hex(32)?;
    let mut env = vec![
        ("TASKRAFT_CLUSTER_SECRET".to_string(), secret),
        ("TASKRAFT_SNAPSHOT_COUNT".to_string(), "100".to_string()),
        (
            "TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES".to_string(),
            "10".to_string(),
        ),
    ];
    // Accounts and TLS, as `serve` runs by default: one CA per run, a
    // certificate per node naming `node-<id>` (for its peers) and its
    // address (for the clients), and the admin service token.
    let tls_dir = dir.join("tls");
    let scheme = if config.secure {
        std::fs::create_dir_all(&tls_dir).map_err(|e| format!("{}: {e}", tls_dir.display()))?;
        let ca = testbed::certs::Ca::new("taskraft fault-test CA");
        ca.write(&tls_dir.join("ca.crt"));
        testbed::trust_ca(&tls_dir.join("ca.crt"));
        for i in 1..=n {
            let host = network.node_ip(i).to_string();
            ca.leaf(&[&format!("node-{i}"), &host], i as u64, 2099)
                .write(
                    &tls_dir.join(format!("n{i}.crt")),
                    &tls_dir.join(format!("n{i}.key")),
                );
        }
        let token = random_hex(32)?;
        client::use_token(Some(token.clone()));
        env.push(("TASKRAFT_AUTH".to_string(), "on".to_string()));
        env.push(("TASKRAFT_API_TOKEN".to_string(), token));
        "https"
    } else {
        client::use_token(None);
        "http"
    };
    if config.control == Some(Control::Duplicates) {
        env.push((
            "TASKRAFT_CRASH_POINTS".to_string(),
            "api_ignore_idempotency_key=1".to_string(),
        ));
    }
    let specs = (1..=n)
        .map(|i| {
            let host = network.node_ip(i).to_string();
            let spec = testbed::NodeSpec {
                id: i as u64,
                binary: binary.to_path_buf(),
                host: host.clone(),
                http_port: http_ports[i - 1],
                raft_port: raft_ports[i - 1],
                peers: peers.clone(),
                mysql_url: mysql::url(&mysqls[i - 1]),
                data_dir: dir.join(format!("n{i}/raft")),
                log: dir.join(format!("n{i}.log")),
                env: env
                    .iter()
                    .cloned()
                    .chain([
                        (
                            "TASKRAFT_ADVERTISE_URL".to_string(),
                            format!("{scheme}://{host}:{}", http_ports[i - 1]),
                        ),
                        ("TASKRAFT_HTTP_WORKERS".to_string(), "2".to_string()),
                    ])
                    .chain(tls_env(config.secure, &tls_dir, i))
                    .collect(),
                hook: None,
            };
            (spec, network.namespace(i))
        })
        .collect();
    let cluster = Arc::new(Mutex::new(Cluster::new(specs, mysqls, config.seed)));
    let urls = {
        let mut c = lock(&cluster);
        for id in c.ids() {
            c.start(id, None)?;
        }
        let leader = c.wait_healthy(Duration::from_secs(90))?;
        log(format!("cluster up, leader n{leader}"));
        c.urls()
    };
    Ok(Setup {
        network,
        proxies,
        cluster,
        urls,
    })
}

/// Locks `m`, whatever a panicking holder left.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The main history, taken out of the workload once the workers are done.
fn lock_recorder(workload: &Workload) -> Box<History> {
    Box::new(workload.main.snapshot())
}

/// Appends `other`'s operations to `into` (for counting only: process ids
/// are shifted so they stay apart).
fn append(into: &mut History, other: &History) {
    for op in other.ops() {
        let id = into.invoke(
            crate::history::ProcessId(op.process.0 + 1_000_000_000),
            op.op.clone(),
            op.invoke,
        );
        if let Some(c) = &op.completion {
            let _ = into.complete(id, c.outcome.clone(), c.time);
        }
    }
}

/// One check from two of the same name (the columns generations).
fn merge(a: Check, b: Check, label: &str) -> Check {
    Check {
        name: a.name,
        verdict: a.verdict.and(b.verdict),
        summary: format!("{}; {label}: {}", a.summary, b.summary),
        anomalies: a.anomalies.into_iter().chain(b.anomalies).collect(),
    }
}

/// A negative control's check: valid when the checker flagged `kind`.
fn invert(check: Check, kind: &str) -> Check {
    let flagged = check.anomalies.iter().filter(|a| a.kind == kind).count();
    Check {
        name: format!("{} must flag {kind} (negative control)", check.name),
        verdict: if flagged > 0 {
            Verdict::Valid
        } else {
            Verdict::Invalid
        },
        summary: format!(
            "{flagged} {kind} flagged (e.g. {}); the check said: {}",
            check
                .anomalies
                .iter()
                .find(|a| a.kind == kind)
                .map_or("none", |a| a.detail.lines().next().unwrap_or("")),
            check.summary
        ),
        anomalies: if flagged > 0 {
            Vec::new()
        } else {
            vec![Anomaly::new(
                "control_did_not_bite",
                format!("no {kind} found: {}", check.summary),
            )]
        },
    }
}

fn write(path: &Path, bytes: &[u8]) {
    if let Err(e) = std::fs::write(path, bytes) {
        eprintln!("writing {}: {e}", path.display());
    }
}

/// `bytes` random bytes from the kernel, in hex.
/// A node's TLS settings under `secure`: its certificate for HTTPS and
/// for its peers, and the CA it requires of them.
fn tls_env(secure: bool, dir: &Path, id: usize) -> Vec<(String, String)> {
    if !secure {
        return Vec::new();
    }
    let path = |name: String| dir.join(name).to_string_lossy().into_owned();
    let (cert, key) = (path(format!("n{id}.crt")), path(format!("n{id}.key")));
    [
        ("TASKRAFT_TLS_CERT_FILE", cert.clone()),
        ("TASKRAFT_TLS_KEY_FILE", key.clone()),
        ("TASKRAFT_PEER_TLS_CA_FILE", path("ca.crt".into())),
        ("TASKRAFT_PEER_TLS_CERT_FILE", cert),
        ("TASKRAFT_PEER_TLS_KEY_FILE", key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn random_hex(bytes: usize) -> Result<String, String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The versions of the default board's columns as node `url` holds them
/// (linearizable), in [`DEFAULT_COLUMNS`]' order.
fn default_column_versions(url: &str) -> Result<Vec<u64>, String> {
    let answer = client::call(
        &client::agent(),
        "GET",
        &format!("{url}/api/boards/00000000-0000-0000-0000-000000000001?consistency=linearizable"),
        &[],
        None,
    );
    let columns = answer.body["columns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    DEFAULT_COLUMNS
        .iter()
        .map(|id| {
            columns
                .iter()
                .find(|c| c["id"] == *id)
                .and_then(|c| c["version"].as_u64())
                .ok_or_else(|| {
                    format!(
                        "no version of column {id}: {} {}",
                        answer.status, answer.body
                    )
                })
        })
        .collect()
}

/// No acknowledged column change is lost: a column's version only grows,
/// so every node's final version of each column is at least the highest
/// one a 200 answered.
fn acked_column_versions(
    workload: &Workload,
    changes: u64,
    finals: &[(String, Vec<u64>)],
) -> Check {
    let acked: Vec<u64> = workload
        .column_acked
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .collect();
    let mut anomalies = Vec::new();
    for (node, versions) in finals {
        for ((column, version), acked) in DEFAULT_COLUMNS.iter().zip(versions).zip(&acked) {
            if version < acked {
                anomalies.push(Anomaly::new(
                    "lost_column_change",
                    format!(
                        "{node}: column {column} is at version {version}, but {acked} was \
                         acknowledged"
                    ),
                ));
            }
        }
    }
    Check::from_anomalies(
        "column changes",
        format!("{changes} acknowledged; highest versions acknowledged {acked:?}"),
        anomalies,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_version_below_the_highest_acknowledged_is_a_lost_change() {
        let workload = Workload::new(Vec::new(), 1, WorkloadConfig::default());
        workload.column_acked[1].store(7, Ordering::SeqCst);
        let held = vec![("n1".to_string(), vec![1, 7, 1])];
        let check = acked_column_versions(&workload, 3, &held);
        assert_eq!(check.verdict, Verdict::Valid, "{check:?}");
        let lost = vec![
            ("n1".to_string(), vec![1, 8, 1]),
            ("n2".to_string(), vec![1, 6, 1]),
        ];
        let check = acked_column_versions(&workload, 3, &lost);
        assert_eq!(check.verdict, Verdict::Invalid, "{check:?}");
        assert_eq!(check.anomalies.len(), 1, "{check:?}");
        assert!(
            format!("{:?}", check.anomalies[0]).contains("n2"),
            "{check:?}"
        );
    }
}
