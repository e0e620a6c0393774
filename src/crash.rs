//! Crash points for fault tests.
//!
//! Compiled in only with the `failpoints` cargo feature (never in a release
//! image). `TASKRAFT_CRASH_POINTS="apply_after_commit=0.05;raft_after_fsync=after:3"`
//! makes the node abort at those points, as a `kill -9` would: with the
//! given probability at each pass, or at the Nth pass. A test then restarts
//! it and checks that nothing was lost or applied twice.
//!
//! | point | where |
//! | --- | --- |
//! | `raft_before_fsync` | a Ready's entries are about to be written |
//! | `raft_after_fsync` | they are durable; no message that depends on them has left |
//! | `apply_before_commit` | a batch's MySQL transaction is about to commit |
//! | `apply_after_commit` | it committed; the node has not answered anyone yet |
//! | `catchup_after_page` | a page copied from a peer after a snapshot committed |
//!
//! And one switch that is not a crash: `api_ignore_idempotency_key=1` drops
//! every `Idempotency-Key`, so that client retries write twice: the negative
//! control proving the duplicate checker bites.

/// Aborts at `point` if the test configuration says so. A no-op without
/// the `failpoints` feature.
#[inline]
pub fn point(point: &'static str) {
    #[cfg(feature = "failpoints")]
    enabled::hit(point, true);
    #[cfg(not(feature = "failpoints"))]
    let _ = point;
}

/// Whether a test-only switch is on. Always false without `failpoints`.
#[inline]
pub fn switch(name: &'static str) -> bool {
    #[cfg(feature = "failpoints")]
    return enabled::hit(name, false);
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

#[cfg(feature = "failpoints")]
mod enabled {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{LazyLock, Mutex};

    enum Trigger {
        Probability(f64),
        After(u64),
    }

    static POINTS: LazyLock<HashMap<String, Trigger>> = LazyLock::new(|| {
        let text = std::env::var("TASKRAFT_CRASH_POINTS").unwrap_or_default();
        text.split(';')
            .filter_map(|item| item.trim().split_once('='))
            .filter_map(|(name, value)| {
                let trigger = match value.strip_prefix("after:") {
                    Some(n) => Trigger::After(n.parse().ok()?),
                    None => Trigger::Probability(value.parse().ok()?),
                };
                Some((name.to_string(), trigger))
            })
            .collect()
    });
    static HITS: LazyLock<Mutex<HashMap<&'static str, u64>>> = LazyLock::new(Default::default);
    static RNG: AtomicU64 = AtomicU64::new(0);

    fn random() -> f64 {
        let mut x = RNG.load(Ordering::Relaxed);
        if x == 0 {
            x = std::env::var("TASKRAFT_CRASH_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::from(std::process::id()))
                .max(1);
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        RNG.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn hit(point: &'static str, abort: bool) -> bool {
        let Some(trigger) = POINTS.get(point) else {
            return false;
        };
        let fire = match trigger {
            Trigger::Probability(p) => random() < *p,
            Trigger::After(n) => {
                let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
                let count = hits.entry(point).or_default();
                *count += 1;
                *count == *n
            }
        };
        if fire && abort {
            eprintln!("taskraft: crash point {point}: aborting");
            std::process::abort();
        }
        fire
    }
}
