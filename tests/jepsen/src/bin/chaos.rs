//! `chaos`: one fault-injection run against real taskraft nodes, or the
//! whole CI profile.
//!
//! ```text
//! chaos --nemesis all --duration 30m --seed 7       # a long run
//! chaos --nemesis kill,partition --duration 120s
//! chaos --ci                                        # every CI run, in turn
//! chaos --ci kill                                   # one of them
//! chaos --isolations 5 [--relay drop|hold]         # leader isolations, timed
//! ```
//!
//! Options: `--nodes 3|5`, `--network auto|namespaces|loopback`,
//! `--keep-data`, `--writers N`, `--readers N`, `--think-ms N`, `--plain`
//! (without accounts and TLS; by default the nodes run with both, as
//! `serve` does in production).
//! Prints the report and its path; exits 0 only if every run passed.

use std::time::Duration;

use taskraft_jepsen::harness::isolation::{self, Cut, IsolationConfig};
use taskraft_jepsen::harness::nemesis::Family;
use taskraft_jepsen::harness::net::Choice;
use taskraft_jepsen::harness::os;
use taskraft_jepsen::harness::profile::{self, RunLock};
use taskraft_jepsen::harness::proxy::LinkMode;
use taskraft_jepsen::harness::run::{self, RunConfig};

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        "h" => Duration::from_secs(3600 * n),
        _ => return Err(format!("bad duration unit in {text:?} (s, m, h)")),
    })
}

fn main() {
    os::catch_interrupts();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--isolations") {
        std::process::exit(isolations(&args, at));
    }
    match configs(&args) {
        Ok(configs) => std::process::exit(run_all(configs)),
        Err(e) => {
            eprintln!("chaos: {e}");
            std::process::exit(2);
        }
    }
}

fn configs(args: &[String]) -> Result<Vec<RunConfig>, String> {
    let mut families = Family::ALL.to_vec();
    let mut duration = Duration::from_secs(120);
    let mut seed = 1u64;
    let mut ci: Option<Vec<String>> = None;
    let mut tweaks: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .cloned()
                .ok_or(format!("{} needs a value", args[i]))
        };
        match args[i].as_str() {
            "--nemesis" => families = Family::parse_list(&value()?)?,
            "--duration" => duration = parse_duration(&value()?)?,
            "--seed" => seed = value()?.parse().map_err(|_| "bad --seed")?,
            "--ci" => {
                let names: Vec<String> = args[i + 1..]
                    .iter()
                    .take_while(|a| !a.starts_with("--"))
                    .cloned()
                    .collect();
                i += names.len();
                ci = Some(if names.is_empty() {
                    profile::CI_RUNS.iter().map(|s| s.to_string()).collect()
                } else {
                    names
                });
                i += 1;
                continue;
            }
            "--keep-data" | "--plain" => {
                tweaks.push((args[i].trim_start_matches("--").to_string(), String::new()));
                i += 1;
                continue;
            }
            "--nodes" | "--network" | "--writers" | "--readers" | "--think-ms" => {
                tweaks.push((args[i].trim_start_matches("--").to_string(), value()?));
            }
            "-h" | "--help" => {
                println!("chaos [--nemesis all|none|kill,pause,partition,link,crash,databases] [--duration 30m] [--seed N] [--nodes 3|5] [--network auto|namespaces|loopback] [--keep-data] [--plain] [--writers N] [--readers N] [--think-ms N] | --ci [NAME...]\n  (nodes run with accounts, HTTPS and peer mutual TLS unless --plain)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
        i += 2;
    }
    let mut configs = match ci {
        Some(names) => names
            .iter()
            .map(|n| {
                profile::ci(n).ok_or(format!("no CI run {n:?}; there are {:?}", profile::CI_RUNS))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![profile::long(families, duration, seed)],
    };
    for config in &mut configs {
        for (key, value) in &tweaks {
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("bad --{key} {value:?}"))
            };
            match key.as_str() {
                "keep-data" => config.keep_data = true,
                "plain" => config.secure = false,
                "nodes" => config.nodes = number()? as usize,
                "writers" => config.workload.writers = number()? as usize,
                "readers" => config.workload.readers = number()? as usize,
                "think-ms" => config.workload.think_ms = number()?,
                "network" => {
                    config.network = match value.as_str() {
                        "auto" => Choice::Auto,
                        "namespaces" => Choice::Namespaces,
                        "loopback" => Choice::Loopback,
                        _ => return Err(format!("bad --network {value:?}")),
                    }
                }
                _ => {}
            }
        }
    }
    Ok(configs)
}

/// `--isolations N [--relay drop|hold] [--seed N] [--nodes N] [--keep-data]`.
fn isolations(args: &[String], at: usize) -> i32 {
    let parsed = (|| -> Result<IsolationConfig, String> {
        let count: usize = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .ok_or("--isolations needs a count")?;
        let mut seed = 1u64;
        let mut mode = Cut::Relay(LinkMode::Drop);
        let mut nodes = 3usize;
        let mut keep = false;
        let mut plain = false;
        let mut hold_ms = None;
        let mut payload = None;
        let mut writers = None;
        let mut quiet = None;
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "--isolations" => i += 1,
                "--seed" => {
                    seed = args
                        .get(i + 1)
                        .and_then(|v| v.parse().ok())
                        .ok_or("bad --seed")?;
                    i += 1;
                }
                "--nodes" => {
                    nodes = args
                        .get(i + 1)
                        .and_then(|v| v.parse().ok())
                        .ok_or("bad --nodes")?;
                    i += 1;
                }
                "--relay" => {
                    mode = match args.get(i + 1).map(String::as_str) {
                        Some("drop") => Cut::Relay(LinkMode::Drop),
                        Some("hold") => Cut::Relay(LinkMode::Blackhole),
                        Some("iptables") => Cut::Iptables,
                        _ => return Err("--relay is drop, hold or iptables".into()),
                    };
                    i += 1;
                }
                "--hold-ms" | "--payload-bytes" | "--writers" | "--quiet-ms" => {
                    let v: u64 = args
                        .get(i + 1)
                        .and_then(|v| v.parse().ok())
                        .ok_or(format!("bad {}", args[i]))?;
                    match args[i].as_str() {
                        "--hold-ms" => hold_ms = Some(v),
                        "--payload-bytes" => payload = Some(v as usize),
                        "--quiet-ms" => quiet = Some(v),
                        _ => writers = Some(v as usize),
                    }
                    i += 1;
                }
                "--keep-data" => keep = true,
                "--plain" => plain = true,
                other => return Err(format!("unknown argument {other:?} with --isolations")),
            }
            i += 1;
        }
        let mut run = RunConfig::new("isolations", seed, Duration::from_secs(0), vec![]);
        run.nodes = nodes;
        run.keep_data = keep;
        run.secure = !plain;
        let mut config = IsolationConfig::new(run);
        config.count = count;
        config.mode = mode;
        config.hold_ms = hold_ms.unwrap_or(config.hold_ms);
        config.payload_bytes = payload.unwrap_or(config.payload_bytes);
        config.writers = writers.unwrap_or(config.writers);
        if let Some(q) = quiet {
            config.quiet_ms = (q, q * 3);
        }
        Ok(config)
    })();
    let config = match parsed {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos: {e}");
            return 2;
        }
    };
    let root = run::workspace_root().join("target/jepsen");
    let _lock = match RunLock::acquire(&root) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("chaos: {e}");
            return 2;
        }
    };
    match isolation::run(&config) {
        Ok(outcome) => {
            println!("{}", outcome.text);
            println!("report: {}", outcome.dir.join("report.txt").display());
            i32::from(!outcome.passed)
        }
        Err(e) => {
            eprintln!("chaos: {e}");
            1
        }
    }
}

fn run_all(configs: Vec<RunConfig>) -> i32 {
    let root = run::workspace_root().join("target/jepsen");
    let _lock = match RunLock::acquire(&root) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("chaos: {e}");
            return 2;
        }
    };
    let mut summary = Vec::new();
    let mut failed = 0;
    for config in configs {
        let name = config.name.clone();
        match run::run(&config) {
            Ok(outcome) => {
                println!("{}", outcome.text);
                println!("report: {}", outcome.dir.join("report.txt").display());
                if !outcome.passed {
                    failed += 1;
                }
                summary.push(format!(
                    "{name}: {} — {}",
                    if outcome.passed { "PASS" } else { "FAIL" },
                    outcome.report.closing_line()
                ));
            }
            Err(e) => {
                failed += 1;
                summary.push(format!("{name}: ERROR {e}"));
            }
        }
        if os::interrupted() {
            break;
        }
    }
    if summary.len() > 1 {
        println!("runs:");
        for line in &summary {
            println!("  {line}");
        }
        println!("{} passed, {failed} failed", summary.len() - failed);
    } else if let Some(line) = summary.first() {
        eprintln!("{line}");
    }
    i32::from(failed > 0)
}
