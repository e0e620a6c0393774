//! CI: five leader isolations in a row through relays that drop what they
//! are given (no reset), each timed from the cut to the first acknowledged
//! write on the majority (`harness::isolation`). The figures are printed,
//! one line per isolation; the test asserts that every isolation recovered
//! (a write acknowledged on the majority), not how fast.

use std::time::Duration;

use taskraft_jepsen::harness::isolation::{self, IsolationConfig};
use taskraft_jepsen::harness::profile::RunLock;
use taskraft_jepsen::harness::run::RunConfig;

#[test]
fn five_leader_isolations_in_a_row_each_recover_on_the_majority() {
    let run = RunConfig::new("ci-isolations", 18, Duration::from_secs(0), vec![]);
    let _lock = RunLock::acquire(&run.out_root).unwrap_or_else(|e| panic!("the run lock: {e}"));
    let mut config = IsolationConfig::new(run);
    config.hold_ms = 3_000;
    config.quiet_ms = (4_000, 6_000);
    let outcome = isolation::run(&config).unwrap_or_else(|e| panic!("the run could not run: {e}"));
    println!("{}", outcome.text);
    assert_eq!(outcome.rounds.len(), 5);
    assert!(
        outcome.passed,
        "an isolation did not recover; report: {}",
        outcome.dir.join("report.txt").display()
    );
}
