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

mod http;
mod report;
mod workload;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

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
    about = "Load generator for taskraft (and etcd's JSON gateway)"
)]
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
    /// Operations by weight: create, get, update, list, delete, etcd-put, etcd-range.
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
    /// Bytes of description per created task (about 200 B of JSON in all at 150).
    #[arg(long, default_value_t = 150)]
    payload: usize,
    /// `?consistency=` for reads (linearizable by default on the server).
    #[arg(long)]
    consistency: Option<String>,
    /// Send an Idempotency-Key with every create.
    #[arg(long)]
    idempotency: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long, default_value = "taskraft")]
    label: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
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
    let args = Args::parse();
    if args.connections == 0 {
        eprintln!("loadtest: --connections must be at least 1");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, run(&args));
    match result {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(path) = &args.json {
                if let Err(e) = std::fs::write(path, report.json().to_string()) {
                    eprintln!("loadtest: writing {}: {e}", path.display());
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::exit(1);
        }
    }
}

fn url_for(args: &Args, client: usize) -> &str {
    match args.target {
        Target::All => &args.urls[client % args.urls.len()],
        Target::First => &args.urls[0],
    }
}

async fn run(args: &Args) -> Result<report::Report, String> {
    let pool = Pool::default();
    let shape = Rc::new(Shape {
        payload: args.payload,
        consistency: args.consistency.clone(),
        idempotency: args.idempotency,
        run_tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
    });

    if args.mix.needs_pool() {
        if args.mix.0.iter().any(|(op, _)| *op == Op::EtcdRange) {
            workload::preload_etcd(&mut Conn::new(url_for(args, 0)), 1000, args.payload).await?;
        } else {
            preload(args, &pool, &shape).await?;
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
        let mut conn = Conn::new(url_for(args, client));
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
    Ok(report::Report {
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
    })
}

/// Creates the tasks that get/update/delete work on.
async fn preload(args: &Args, pool: &Pool, shape: &Rc<Shape>) -> Result<(), String> {
    let per_client = args.preload.div_ceil(args.connections);
    let mut tasks = Vec::new();
    for client in 0..args.connections {
        let mut conn = Conn::new(url_for(args, client));
        let pool = pool.clone();
        let shape = shape.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut rng = Rng::new(client as u64 + 1);
            for n in 0..per_client {
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
                if reply.status != 201 {
                    return Err(format!("preloading tasks: status {}", reply.status));
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
