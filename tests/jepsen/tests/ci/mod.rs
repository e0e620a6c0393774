//! What every CI run shares: take the machine-wide run lock (runs go one
//! at a time, whatever the test runner does), run the profile, print the
//! report, and fail with its path when the run did not pass.

use taskraft_jepsen::harness::profile::{self, RunLock};
use taskraft_jepsen::harness::run;

/// Runs CI profile `name` and asserts that it passed.
pub fn run_profile(name: &str) {
    let config = profile::ci(name).unwrap_or_else(|| panic!("no CI run named {name}"));
    let _lock = RunLock::acquire(&config.out_root).unwrap_or_else(|e| panic!("the run lock: {e}"));
    let outcome = run::run(&config).unwrap_or_else(|e| panic!("CI run {name} could not run: {e}"));
    println!("{}", outcome.text);
    assert!(
        outcome.passed,
        "CI run {name} did not pass: {}; report: {}\n{}",
        outcome.report.closing_line(),
        outcome.dir.join("report.txt").display(),
        outcome.report.failures()
    );
}
