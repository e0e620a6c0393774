//! Times the linearizability checker on simulated histories of several
//! shapes: `cargo run --release -p taskraft-jepsen --example bench`.
//! Arguments (all optional): ops keys clients info_percent seeds, and
//! `corrupt` to time the rejection of each history with one read made
//! impossible (a search that must be exhausted).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use support::{corrupt_a_read, simulate, Rng, Sim};
use taskraft_jepsen::linearizable::tasks::{self, Config};

fn main() {
    let corrupt = std::env::args().any(|a| a == "corrupt");
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let shapes: Vec<(u64, u64, u64, u64)> = match args.as_slice() {
        [ops, keys, clients, info, ..] => vec![(*ops, *keys, *clients, *info)],
        _ => vec![
            (2000, 10, 10, 5),
            (2000, 1, 10, 5),
            (2000, 1, 10, 20),
            (2000, 1, 20, 10),
            (2000, 20, 10, 10),
        ],
    };
    let seeds = args.get(4).copied().unwrap_or(5);
    println!("ops\ttasks\tclients\tinfo%\tverdicts\tmedian_ms\tmax_ms\tmax_states");
    for (ops, keys, clients, info_percent) in shapes {
        let mut times = Vec::new();
        let mut verdicts = Vec::new();
        let mut max_states = 0;
        for seed in 0..seeds {
            let history = simulate(&Sim {
                seed,
                ops: ops as usize,
                keys: keys as usize,
                clients: clients as usize,
                info_percent,
                list_percent: 2,
                ..Sim::default()
            });
            let history = match corrupt {
                true => corrupt_a_read(&history, &mut Rng::new(seed)).map_or(history, |(h, _)| h),
                false => history,
            };
            let start = Instant::now();
            let result = tasks::check(&history, &Config::default());
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            verdicts.push(result.verdict().as_str());
            max_states = max_states.max(result.keys.iter().map(|k| k.states).max().unwrap_or(0));
        }
        times.sort_by(f64::total_cmp);
        verdicts.dedup();
        println!(
            "{ops}\t{keys}\t{clients}\t{info_percent}\t{}\t{:.1}\t{:.1}\t{max_states}",
            verdicts.join(","),
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
