//! The run profiles: the CI profile (one short run per nemesis family and
//! the two negative controls, fixed seeds, a few minutes in all on two
//! cores) and the long run of `scripts/chaos`.
//!
//! CI runs are 45 s of faults each; the quiet time between faults is
//! shortened (1.5–3 s) so that each still meets its fault floor.

use std::time::Duration;

use super::nemesis::{Control, Family};
use super::run::RunConfig;

/// The CI runs, by name: `kill`, `pause` (with `databases`), `partition`,
/// `link`, `crash`, `stale-read`, `duplicates`.
pub const CI_RUNS: [&str; 7] = [
    "kill",
    "pause",
    "partition",
    "link",
    "crash",
    "stale-read",
    "duplicates",
];

/// The configuration of CI run `name`.
pub fn ci(name: &str) -> Option<RunConfig> {
    let family = |f: Family, seed: u64| {
        let mut config = RunConfig::new(
            &format!("ci-{name}"),
            seed,
            Duration::from_secs(45),
            vec![f],
        );
        config.quiet_ms = (1_500, 3_000);
        config
    };
    let control = |c: Control, seed: u64, secs: u64| {
        let mut config = RunConfig::new(
            &format!("ci-{name}"),
            seed,
            Duration::from_secs(secs),
            vec![],
        );
        config.control = Some(c);
        config.quiet_ms = (3_000, 4_000);
        config
    };
    Some(match name {
        "kill" => family(Family::Kill, 11),
        // Pauses of one process and of every node's database at once
        // share one run, so CI time stays as it was.
        "pause" => {
            let mut config = family(Family::Pause, 12);
            config.families.push(Family::Databases);
            config
        }
        "partition" => family(Family::Partition, 13),
        "link" => family(Family::Link, 14),
        "crash" => family(Family::Crash, 15),
        "stale-read" => control(Control::StaleRead, 16, 30),
        "duplicates" => control(Control::Duplicates, 17, 20),
        _ => return None,
    })
}

/// A long run (`scripts/chaos`).
pub fn long(families: Vec<Family>, duration: Duration, seed: u64) -> RunConfig {
    RunConfig::new("chaos", seed, duration, families)
}

/// Holds an exclusive lock on `target/jepsen/.run.lock` while it lives, so
/// that runs on one machine go one at a time (nextest also serializes the
/// integration tests; this covers `cargo test` and concurrent `chaos`).
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Waits for the lock.
    pub fn acquire(root: &std::path::Path) -> Result<RunLock, String> {
        std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
        let file = std::fs::File::create(root.join(".run.lock")).map_err(|e| e.to_string())?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file we keep open for the lock's lifetime.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!("locking: {}", std::io::Error::last_os_error()));
        }
        Ok(RunLock { _file: file })
    }
}
