//! The linearizability checker against simulated runs: it must accept every
//! history a sequential board produced, reject each once one read is made
//! impossible, and do so fast enough for Jepsen-sized histories.

mod support;

use std::time::Instant;

use support::{corrupt_a_read, simulate, Rng, Sim};
use taskraft_jepsen::history::Outcome;
use taskraft_jepsen::linearizable::tasks::{self, Config};
use taskraft_jepsen::linearizable::Finding;
use taskraft_jepsen::report::Verdict;

#[test]
fn every_simulated_history_is_accepted_and_every_corrupted_one_rejected() {
    let mut rng = Rng::new(7);
    let mut rejected = 0;
    for seed in 0..300 {
        let sim = Sim {
            seed,
            ops: 40 + (seed as usize % 5) * 30,
            keys: 1 + seed as usize % 4,
            clients: 2 + seed as usize % 9,
            info_percent: seed % 4 * 5,
            ..Sim::default()
        };
        let history = simulate(&sim);
        assert!(
            history.problems().is_empty(),
            "seed {seed}: {:?}",
            history.problems()
        );
        let result = tasks::check(&history, &Config::default());
        assert_eq!(
            result.verdict(),
            Verdict::Valid,
            "seed {seed} ({sim:?}) is linearizable by construction, but: {:#?}",
            result.to_check()
        );

        let Some((corrupted, victim)) = corrupt_a_read(&history, &mut rng) else {
            continue;
        };
        let result = tasks::check(&corrupted, &Config::default());
        assert_eq!(
            result.verdict(),
            Verdict::Invalid,
            "seed {seed}: read {victim} answers a version never written, yet {:#?}",
            result.keys
        );
        for key in result.violations() {
            let Finding::NotLinearizable(cx) = &key.finding else {
                continue;
            };
            assert!(
                cx.stuck.is_some(),
                "seed {seed}: no stuck operation in {cx:?}"
            );
            assert!(
                cx.candidates.contains(&cx.stuck.unwrap_or(victim)),
                "seed {seed}: {cx:?}"
            );
        }
        rejected += 1;
    }
    assert!(
        rejected > 250,
        "only {rejected} histories had a read to corrupt"
    );
}

#[test]
fn unknown_writes_that_land_late_or_never_are_accepted() {
    for seed in 0..40 {
        let sim = Sim {
            seed: 1000 + seed,
            ops: 150,
            keys: 2,
            clients: 8,
            info_percent: 25,
            never_percent: 40,
            ..Sim::default()
        };
        let history = simulate(&sim);
        let infos = history
            .ops()
            .iter()
            .filter(|o| {
                matches!(
                    o.completion.as_ref().map(|c| &c.outcome),
                    Some(Outcome::Info(_))
                )
            })
            .count();
        assert!(infos > 0, "seed {seed} produced no indeterminate operation");
        let result = tasks::check(&history, &Config::default());
        assert_eq!(
            result.verdict(),
            Verdict::Valid,
            "seed {seed}: {:#?}",
            result.to_check()
        );
    }
}

/// Checks `sim` and returns (verdict, milliseconds, slowest key ms).
fn timed(sim: &Sim) -> (Verdict, f64, f64) {
    let history = simulate(sim);
    let start = Instant::now();
    let result = tasks::check(&history, &Config::default());
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let slowest = result.keys.iter().map(|k| k.elapsed_ms).fold(0.0, f64::max);
    for key in &result.keys {
        if let Finding::Inconclusive(e) = &key.finding {
            panic!("{} ran out of {}", key.task_id, e.limit);
        }
    }
    (result.verdict(), ms, slowest)
}

#[test]
fn a_few_hundred_operations_on_one_task_with_ten_clients_check_well_under_a_second() {
    for seed in 0..5 {
        let sim = Sim {
            seed: 50 + seed,
            ops: 400,
            keys: 1,
            clients: 10,
            info_percent: 5,
            ..Sim::default()
        };
        let (verdict, ms, _) = timed(&sim);
        assert_eq!(verdict, Verdict::Valid);
        eprintln!("400 ops, 1 task, 10 clients: {ms:.1} ms");
        assert!(ms < 1000.0, "seed {seed}: {ms:.0} ms");
    }
}

#[test]
fn two_thousand_operations_check_in_seconds() {
    let shapes = [(10, 10, 5), (1, 10, 5), (20, 10, 10)];
    for (keys, clients, info_percent) in shapes {
        let sim = Sim {
            seed: 2000,
            ops: 2000,
            keys,
            clients,
            info_percent,
            list_percent: 2,
            ..Sim::default()
        };
        let (verdict, ms, slowest) = timed(&sim);
        assert_eq!(verdict, Verdict::Valid);
        eprintln!(
            "2000 ops, {keys} tasks, {clients} clients, {info_percent}% info: {ms:.1} ms (slowest task {slowest:.1} ms)"
        );
        assert!(ms < 10_000.0, "{keys} keys: {ms:.0} ms");
    }
}
