//! `loadtest`: drives a running taskraft cluster (or an etcd one, for
//! comparison) and reports throughput, errors by status and latency
//! percentiles from an HDR histogram.
//!
//! - Closed loop (default): N connections, each sends its next request as
//!   soon as the last one is answered, like `wrk`.
//! - Open loop (`--rate R`): requests are scheduled at R per second in all;
//!   latency is measured from when a request *should* have been sent, so a
//!   stall is not hidden by the requests it delayed (coordinated omission).
//!
//! Connections are spread over all `--url`s (`--target all`) or aimed at the
//! first one (`--target first`). A warm-up is run but not recorded.
//!
//! Subcommands:
//! - `loadtest ws`: WebSocket fan-out, delivery latency and completeness per
//!   socket under an open-loop write rate (see `ws.rs`).
//! - `loadtest smoke`: a ~3 s create/get run that exits non-zero when nothing
//!   succeeded, for the test suite.
//! - `loadtest preload`: creates N tasks and writes their ids to a file (for
//!   wrk's get.lua, or to fill a cluster before measuring memory).
//! - `loadtest seed`: creates N realistic tasks (labels, assignees, words to
//!   search for) over many connections, for the read benchmarks (see
//!   `seed.rs`, and `--path` to read with filters drawn from its vocabulary).

mod http;
mod report;
mod seed;
mod sys;
mod workload;
mod ws;

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::http::Conn;
use crate::report::Stats;
use crate::workload::{Mix, Op, Pool, Rng, Shape};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    /// Connection i goes to url i mod n.
    All,
    /// Every connection goes to the first url.
    First,
}

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    about = "Load generator for taskraft (and etcd's JSON gateway)",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand: an HTTP load run.
    #[command(flatten)]
    http: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// WebSocket fan-out: M sockets, writes at a fixed rate, delivery
    /// latency of every event to every socket, and per-socket completeness.
    Ws(ws::WsArgs),
    /// CI smoke test: a short create/get run against a running cluster;
    /// exits 1 when no request succeeded.
    Smoke(SmokeArgs),
    /// Creates tasks (ids to a file, one per line): for wrk's get.lua, or to
    /// fill a cluster before reading its memory.
    Preload(PreloadArgs),
    /// Creates N realistic tasks (statuses, priorities, labels, assignees,
    /// titles and descriptions with words to search for), quickly, over many
    /// connections.
    Seed(seed::SeedArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct Args {
    /// Node URLs, repeated or comma-separated.
    #[arg(long = "url", value_delimiter = ',', required = true)]
    urls: Vec<String>,
    /// Concurrent connections (virtual clients).
    #[arg(long, short = 'c', default_value_t = 16)]
    connections: usize,
    /// Recorded run time: 10s, 500ms, 2m.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unrecorded warm-up before the run.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Operations by weight: create, get, update, list, delete, comment, etcd-put, etcd-range.
    #[arg(long, default_value = "create")]
    mix: Mix,
    /// Open loop: total requests per second over all connections.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, value_enum, default_value_t = Target::All)]
    target: Target,
    /// Tasks created before the run when the mix needs existing ones.
    #[arg(long, default_value_t = 1000)]
    preload: usize,
    /// get/update/delete: take the tasks from this file (one id per line, as
    /// `loadtest preload --ids-out` writes it) instead of creating --preload.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// etcd-range: read keys read/000000 .. read/<keys-1>.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// etcd-range: the keys exist already (`loadtest preload --etcd`): do
    /// not write them first.
    #[arg(long)]
    no_preload: bool,
    /// Bytes of description per created task (about 200 B of JSON in all at 150).
    #[arg(long, default_value_t = 150)]
    payload: usize,
    /// `?consistency=` for reads (linearizable by default on the server).
    #[arg(long)]
    consistency: Option<String>,
    /// Send an Idempotency-Key with every create.
    #[arg(long)]
    idempotency: bool,
    /// Per-request timeout (then it counts as "no answer" and the connection is replaced).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long, default_value = "taskraft")]
    label: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `list`: GET this path instead of `/api/tasks?limit=50`; `{status}`,
    /// `{priority}`, `{label}`, `{assignee}`, `{noun}` and `{word}` are drawn
    /// for each request from `loadtest seed`'s vocabulary, e.g.
    /// `/api/tasks?status={status}&label={label}&limit=50`.
    #[arg(long)]
    path: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
struct SmokeArgs {
    /// Node URLs, repeated or comma-separated.
    #[arg(long = "url", value_delimiter = ',', required = true)]
    urls: Vec<String>,
    #[arg(long, short = 'd', default_value = "3s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, short = 'c', default_value_t = 3)]
    connections: usize,
    /// Also fail when more than this fraction of the requests failed (0..1).
    #[arg(long)]
    max_error_ratio: Option<f64>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
struct PreloadArgs {
    /// Node URLs, repeated or comma-separated.
    #[arg(long = "url", value_delimiter = ',', required = true)]
    urls: Vec<String>,
    /// Tasks to create.
    #[arg(long, short = 'n', default_value_t = 1000)]
    count: usize,
    #[arg(long, short = 'c', default_value_t = 16)]
    connections: usize,
    #[arg(long, value_enum, default_value_t = Target::All)]
    target: Target,
    #[arg(long, default_value_t = 150)]
    payload: usize,
    /// Write the created task ids here, one per line.
    #[arg(long)]
    ids_out: Option<PathBuf>,
    /// Write etcd keys read/000000 .. read/<count-1> (for `--mix etcd-range
    /// --no-preload`) through etcd's JSON gateway instead of tasks.
    #[arg(long)]
    etcd: bool,
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|at| text.split_at(at))
        .unwrap_or((text, "s"));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    let code = match cli.command {
        None => local.block_on(&runtime, http_main(&cli.http)),
        Some(Command::Ws(args)) => local.block_on(&runtime, ws_main(&args)),
        Some(Command::Smoke(args)) => local.block_on(&runtime, smoke_main(&args)),
        Some(Command::Preload(args)) => local.block_on(&runtime, preload_main(&args)),
        Some(Command::Seed(args)) => local.block_on(&runtime, seed_main(&args)),
    };
    std::process::exit(code);
}

fn write_json(path: &Option<PathBuf>, value: &serde_json::Value) -> Result<(), i32> {
    if let Some(path) = path {
        if let Err(e) = std::fs::write(path, value.to_string()) {
            eprintln!("loadtest: writing {}: {e}", path.display());
            return Err(1);
        }
    }
    Ok(())
}

/// The report as JSON, with what the table does not show: the run's tag
/// (etcd keys are `task/<tag>/...`) and the client's own CPU time.
fn report_json(report: &report::Report, run: &RunInfo) -> serde_json::Value {
    let mut json = report.json();
    json["run_tag"] = run.run_tag.clone().into();
    json["client_cpu_s"] = run.client_cpu.into();
    json["wall_s"] = run.wall.into();
    json["target"] = format!("{:?}", run.target).to_lowercase().into();
    json
}

async fn http_main(args: &Args) -> i32 {
    if args.connections == 0 {
        eprintln!("loadtest: --connections must be at least 1");
        return 2;
    }
    match run(args).await {
        Ok((report, info)) => {
            print!("{}", report.table());
            write_json(&args.json, &report_json(&report, &info))
                .err()
                .unwrap_or(0)
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            1
        }
    }
}

async fn ws_main(args: &ws::WsArgs) -> i32 {
    match ws::run(args).await {
        Ok(outcome) => {
            print!("{}", outcome.report);
            if let Err(code) = write_json(&args.json, &outcome.json) {
                return code;
            }
            if args.fail_on_miss && outcome.incomplete {
                eprintln!("loadtest ws: some socket missed events, resynced or gave up");
                return 3;
            }
            0
        }
        Err(e) => {
            eprintln!("loadtest ws: {e}");
            1
        }
    }
}

/// A few seconds of creates and linearizable gets spread over the nodes;
/// fails when not one request succeeded (or too many failed).
async fn smoke_main(smoke: &SmokeArgs) -> i32 {
    let args = Args {
        urls: smoke.urls.clone(),
        connections: smoke.connections.max(1),
        duration: smoke.duration,
        warmup: Duration::ZERO,
        mix: "create=50,get=50".parse().expect("a valid mix"),
        rate: None,
        target: Target::All,
        preload: 10,
        ids: None,
        keys: 1000,
        no_preload: false,
        payload: 150,
        consistency: None,
        idempotency: false,
        timeout: Duration::from_secs(5),
        json: smoke.json.clone(),
        label: "smoke".into(),
        seed: 1,
        path: None,
    };
    // Bounded whatever the cluster does: the preload (10 creates) and the
    // run, each request at most 5 s.
    let bound = smoke.duration + Duration::from_secs(60);
    let result = match tokio::time::timeout(bound, run(&args)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no result within {bound:?}")),
    };
    match result {
        Ok((report, info)) => {
            print!("{}", report.table());
            let total = report
                .stats
                .ops
                .values()
                .fold((0, 0), |(ok, err), s| (ok + s.ok(), err + s.errors()));
            if let Err(code) = write_json(&args.json, &report_json(&report, &info)) {
                return code;
            }
            if total.0 == 0 {
                eprintln!("loadtest smoke: FAILED: no request succeeded");
                return 1;
            }
            let ratio = total.1 as f64 / (total.0 + total.1) as f64;
            if let Some(max) = smoke.max_error_ratio {
                if ratio > max {
                    eprintln!(
                        "loadtest smoke: FAILED: {:.1}% of requests failed (max {:.1}%)",
                        ratio * 100.0,
                        max * 100.0
                    );
                    return 1;
                }
            }
            println!(
                "smoke: ok ({} requests succeeded, {} failed)",
                total.0, total.1
            );
            0
        }
        Err(e) => {
            eprintln!("loadtest smoke: FAILED: {e}");
            1
        }
    }
}

async fn preload_main(p: &PreloadArgs) -> i32 {
    let args = Args {
        urls: p.urls.clone(),
        connections: p.connections.max(1),
        duration: Duration::ZERO,
        warmup: Duration::ZERO,
        mix: "create".parse().expect("a valid mix"),
        rate: None,
        target: p.target,
        preload: p.count,
        ids: None,
        keys: p.count,
        no_preload: false,
        payload: p.payload,
        consistency: None,
        idempotency: false,
        timeout: Duration::from_secs(10),
        json: None,
        label: "preload".into(),
        seed: 1,
        path: None,
    };
    let pool = Pool::default();
    let shape = Rc::new(Shape {
        payload: p.payload,
        consistency: None,
        idempotency: false,
        run_tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        etcd_keys: p.count as u64,
        path: None,
    });
    let started = Instant::now();
    if p.etcd {
        if let Err(e) = preload_etcd(&args).await {
            eprintln!("loadtest preload: {e}");
            return 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "preload: wrote etcd keys read/000000..read/{:06} in {:.1}s ({:.0}/s) over {} connection(s)",
            p.count.saturating_sub(1),
            secs,
            p.count as f64 / secs.max(1e-9),
            args.connections
        );
        return 0;
    }
    if let Err(e) = preload(&args, &pool, &shape).await {
        eprintln!("loadtest preload: {e}");
        return 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let ids = pool.ids();
    println!(
        "preload: created {} tasks in {:.1}s ({:.0}/s) over {} connection(s)",
        ids.len(),
        secs,
        ids.len() as f64 / secs.max(1e-9),
        args.connections
    );
    if let Some(path) = &p.ids_out {
        let written = std::fs::File::create(path).and_then(|file| {
            let mut out = std::io::BufWriter::new(file);
            for id in &ids {
                writeln!(out, "{id}")?;
            }
            out.flush()
        });
        if let Err(e) = written {
            eprintln!("loadtest preload: writing {}: {e}", path.display());
            return 1;
        }
    }
    0
}

async fn seed_main(args: &seed::SeedArgs) -> i32 {
    if args.urls.is_empty() {
        eprintln!("loadtest seed: --url is required");
        return 2;
    }
    match seed::run(args).await {
        Ok((created, secs)) => {
            println!(
                "seed: created {created} tasks in {secs:.1}s ({:.0}/s) over {} connection(s)",
                created as f64 / secs.max(1e-9),
                args.connections
            );
            0
        }
        Err(e) => {
            eprintln!("loadtest seed: {e}");
            1
        }
    }
}

/// What a run reports besides its statistics.
struct RunInfo {
    run_tag: String,
    client_cpu: f64,
    wall: f64,
    target: Target,
}

fn url_for(args: &Args, client: usize) -> &str {
    match args.target {
        Target::All => &args.urls[client % args.urls.len()],
        Target::First => &args.urls[0],
    }
}

async fn run(args: &Args) -> Result<(report::Report, RunInfo), String> {
    let cpu_at_start = sys::cpu_seconds();
    let wall_start = Instant::now();
    let pool = Pool::default();
    let shape = Rc::new(Shape {
        payload: args.payload,
        consistency: args.consistency.clone(),
        idempotency: args.idempotency,
        run_tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        etcd_keys: args.keys.max(1) as u64,
        path: args.path.clone(),
    });

    if args.mix.needs_pool() {
        let weighted = |f: &dyn Fn(Op) -> bool| args.mix.0.iter().any(|(op, w)| *w > 0 && f(*op));
        if weighted(&|op| op == Op::EtcdRange) && !args.no_preload {
            preload_etcd(&Args {
                preload: args.keys,
                ..args.clone()
            })
            .await?;
        }
        // get/update/delete work on existing tasks.
        if weighted(&|op| op.needs_pool() && op != Op::EtcdRange) {
            match &args.ids {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("reading {}: {e}", path.display()))?;
                    for id in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                        pool.add(id.to_string(), 1);
                    }
                    if pool.ids().is_empty() {
                        return Err(format!("no task ids in {}", path.display()));
                    }
                }
                None => preload(args, &pool, &shape).await?,
            }
        }
    }

    let stats = Rc::new(RefCell::new(Stats::default()));
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let until = measure_from + args.duration;
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.connections as f64 / rate.max(0.001)));
    let mut tasks = Vec::new();
    for client in 0..args.connections {
        let mut conn = Conn::new(url_for(args, client)).with_timeout(args.timeout);
        let mix = args.mix.clone();
        let pool = pool.clone();
        let shape = shape.clone();
        let stats = stats.clone();
        let mut rng = Rng::new(
            args.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(client as u64 + 1),
        );
        // Open-loop clients start staggered so the load is even.
        let offset = interval.map(|i| i.mul_f64(client as f64 / args.connections as f64));
        tasks.push(tokio::task::spawn_local(async move {
            let mut n: u64 = 0;
            loop {
                let intended = match (interval, offset) {
                    (Some(interval), Some(offset)) => {
                        let at = start + offset + interval.mul_f64(n as f64);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    _ => Instant::now(),
                };
                if intended >= until {
                    break;
                }
                let op = mix.pick(&mut rng);
                let reply = workload::run(op, &mut conn, &pool, &shape, &mut rng, client, n).await;
                let done = Instant::now();
                if intended >= measure_from {
                    stats.borrow_mut().record(
                        op,
                        reply.status,
                        done.saturating_duration_since(intended),
                    );
                }
                n += 1;
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| format!("a client failed: {e}"))?;
    }
    let stats = Rc::try_unwrap(stats)
        .map(RefCell::into_inner)
        .unwrap_or_default();
    let info = RunInfo {
        run_tag: shape.run_tag.clone(),
        client_cpu: sys::cpu_seconds() - cpu_at_start,
        wall: wall_start.elapsed().as_secs_f64(),
        target: args.target,
    };
    Ok((
        report::Report {
            label: args.label.clone(),
            urls: args.urls.clone(),
            connections: args.connections,
            duration: args.duration,
            rate: args.rate,
            mix: args
                .mix
                .0
                .iter()
                .map(|(op, w)| format!("{op}={w}"))
                .collect::<Vec<_>>()
                .join(","),
            stats,
        },
        info,
    ))
}

/// Writes etcd keys read/000000 .. read/<args.preload - 1> (the etcd-range
/// key space) over `args.connections` connections.
async fn preload_etcd(args: &Args) -> Result<(), String> {
    let count = args.preload;
    let clients = args.connections.clamp(1, count.max(1));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let mut conn = Conn::new(url_for(args, client)).with_timeout(args.timeout);
        let keys: Vec<usize> = (client..count).step_by(clients).collect();
        let payload = args.payload;
        tasks.push(tokio::task::spawn_local(async move {
            workload::preload_etcd(&mut conn, &keys, payload).await
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Creates the tasks that get/update/delete work on: `args.preload` in all,
/// over `args.connections` connections; a failed create is retried twice.
async fn preload(args: &Args, pool: &Pool, shape: &Rc<Shape>) -> Result<(), String> {
    let clients = args.connections.min(args.preload.max(1));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let count = args.preload / clients + usize::from(client < args.preload % clients);
        let mut conn = Conn::new(url_for(args, client)).with_timeout(args.timeout);
        let pool = pool.clone();
        let shape = shape.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = Rng::new(client as u64 + 1);
            for n in 0..count {
                let mut tries = 0;
                loop {
                    let reply = workload::run(
                        Op::Create,
                        &mut conn,
                        &pool,
                        &shape,
                        &mut rng,
                        client + 1_000_000,
                        n as u64,
                    )
                    .await;
                    if reply.status == 201 {
                        break;
                    }
                    tries += 1;
                    if tries == 3 {
                        return Err(format!("preloading tasks: status {}", reply.status));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
