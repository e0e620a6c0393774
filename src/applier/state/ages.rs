//! How old the keys of a key filter are: how many were first used in each
//! minute. A Bloom filter cannot forget, so an expiry leaves the keys it
//! deleted in the filter; with their ages, the applier knows how many of
//! the filter's keys are gone, and rebuilds the key filter (and only it)
//! once they are most of it, whatever the length of the history.

use std::collections::BTreeMap;

use crate::time::Timestamp;

/// Expired keys a filter must hold before it is worth rebuilding: below
/// this, the bits they take are not worth a scan of the keys.
pub const REBUILD_AFTER: u64 = 200_000;

/// [`REBUILD_AFTER`], unless a test sets `TASKRAFT_TEST_KEY_REBUILD_AFTER`
/// (so that a cluster test sees a rebuild after a few keys).
fn rebuild_after() -> u64 {
    static AFTER: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *AFTER.get_or_init(|| {
        std::env::var("TASKRAFT_TEST_KEY_REBUILD_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(REBUILD_AFTER)
    })
}

const MINUTE_MS: i64 = 60_000;

/// Keys first used in each minute (minutes since the Unix epoch), as held
/// by one filter, and how many of its keys have expired since it was built.
/// Counts are close, not exact: a key both read from MySQL and committed
/// while the filter was read is counted twice.
#[derive(Debug, Default)]
pub struct KeyAges {
    minutes: BTreeMap<i64, u64>,
    live: u64,
    expired: u64,
}

impl KeyAges {
    pub fn minute_of(at: Timestamp) -> i64 {
        at.millis().div_euclid(MINUTE_MS)
    }

    /// A key first used at `at`.
    pub fn add(&mut self, at: Timestamp) {
        self.add_minute(Self::minute_of(at), 1);
    }

    /// `count` keys first used in `minute`.
    pub fn add_minute(&mut self, minute: i64, count: u64) {
        *self.minutes.entry(minute).or_default() += count;
        self.live += count;
    }

    /// Keys first used before `before` were deleted: the minutes wholly
    /// before it count as expired. A minute the cutoff cuts stays live
    /// until a later cutoff passes it (at most one minute of keys).
    pub fn expire(&mut self, before: Timestamp) {
        let first_kept = Self::minute_of(before);
        let kept = self.minutes.split_off(&first_kept);
        let gone: u64 = std::mem::replace(&mut self.minutes, kept).values().sum();
        self.live -= gone;
        self.expired += gone;
    }

    /// Whether the filter holds at least [`REBUILD_AFTER`] expired keys and
    /// at least as many expired as live ones: a filter rebuilt then takes
    /// at most about twice the room of the keys MySQL holds.
    pub fn worth_rebuilding(&self) -> bool {
        self.expired >= rebuild_after() && self.expired >= self.live
    }

    /// Adds the ages of keys read into the same filter.
    pub fn merge(&mut self, other: KeyAges) {
        for (minute, count) in other.minutes {
            self.add_minute(minute, count);
        }
        self.expired += other.expired;
    }

    pub fn live(&self) -> u64 {
        self.live
    }

    pub fn expired(&self) -> u64 {
        self.expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_minute(minute: i64, second: i64) -> Timestamp {
        Timestamp(minute * MINUTE_MS + second * 1000)
    }

    #[test]
    fn an_expiry_counts_the_minutes_wholly_before_its_cutoff() {
        let mut ages = KeyAges::default();
        ages.add(at_minute(10, 0));
        ages.add(at_minute(10, 59));
        ages.add(at_minute(11, 30));
        ages.add(at_minute(12, 0));
        ages.expire(at_minute(11, 45));
        assert_eq!(
            (ages.live(), ages.expired()),
            (2, 2),
            "minute 11 is cut: kept"
        );
        ages.expire(at_minute(12, 0));
        assert_eq!((ages.live(), ages.expired()), (1, 3));
        ages.expire(at_minute(5, 0));
        assert_eq!(
            (ages.live(), ages.expired()),
            (1, 3),
            "an older cutoff does nothing"
        );
    }

    #[test]
    fn a_filter_is_worth_rebuilding_once_most_of_it_expired_and_that_is_many_keys() {
        let mut ages = KeyAges::default();
        ages.add_minute(1, REBUILD_AFTER);
        ages.add_minute(2, REBUILD_AFTER + 1);
        ages.expire(at_minute(2, 0));
        assert!(!ages.worth_rebuilding(), "fewer expired than live");
        ages.add_minute(3, 10);
        ages.expire(at_minute(3, 0));
        assert!(ages.worth_rebuilding());

        let mut small = KeyAges::default();
        small.add_minute(1, 1_000);
        small.expire(at_minute(2, 0));
        assert!(
            !small.worth_rebuilding(),
            "all expired, but too few to matter"
        );
    }

    #[test]
    fn merged_ages_count_both() {
        let mut ages = KeyAges::default();
        ages.add_minute(1, 5);
        let mut read = KeyAges::default();
        read.add_minute(1, 2);
        read.add_minute(-3, 1);
        ages.merge(read);
        assert_eq!(ages.live(), 8);
        ages.expire(at_minute(0, 0));
        assert_eq!((ages.live(), ages.expired()), (7, 1), "before 1970 too");
    }
}
