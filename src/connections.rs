//! Caps on concurrent connections, and a log that cannot be flooded.
//!
//! Each listener (HTTP, the Raft port) has a [`Limiter`]: at most so many
//! connections in all and so many from one client address. A connection
//! over either cap is closed as soon as it is accepted, before a byte of it
//! is read, and counted in `taskraft_connections_refused_total{listener,
//! reason}`; the ones admitted hold a [`Permit`] for their lifetime
//! (`taskraft_connections_open{listener}`).
//!
//! [`RefusalLog`] turns "refused X" log lines into at most one line per
//! (listener, reason, address) every [`LOG_EVERY`], with the number of
//! refusals it did not print, so a stranger hammering a port cannot fill
//! the disk with our own log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics;

/// How often one kind of refusal from one address is logged.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Addresses tracked by a [`RefusalLog`] before it forgets the quiet ones.
const LOG_KEYS: usize = 1024;

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// The listener has `max_total` connections already.
    Listener,
    /// This address has `max_per_address` already.
    Address,
}

impl Over {
    pub fn reason(self) -> &'static str {
        match self {
            Over::Listener => "listener_limit",
            Over::Address => "address_limit",
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The caps of one listener.
#[derive(Clone)]
pub struct Limiter {
    listener: &'static str,
    max_total: usize,
    max_per_address: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One admitted connection; dropping it frees its place.
pub struct Permit {
    limiter: Limiter,
    address: IpAddr,
}

impl Limiter {
    pub fn new(listener: &'static str, max_total: usize, max_per_address: usize) -> Limiter {
        Limiter {
            listener,
            max_total,
            max_per_address,
            counts: Arc::new(Mutex::new(Counts::default())),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Nothing panics while holding it.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `address`, or says which cap it is over
    /// (and counts the refusal).
    pub fn admit(&self, address: IpAddr) -> Result<Permit, Over> {
        let mut counts = self.counts();
        let over = if counts.total >= self.max_total {
            Some(Over::Listener)
        } else if counts.by_address.get(&address).copied().unwrap_or(0) >= self.max_per_address {
            Some(Over::Address)
        } else {
            None
        };
        if let Some(over) = over {
            metrics::CONNECTIONS_REFUSED
                .with_label_values(&[self.listener, over.reason()])
                .inc();
            return Err(over);
        }
        counts.total += 1;
        *counts.by_address.entry(address).or_default() += 1;
        metrics::CONNECTIONS_OPEN
            .with_label_values(&[self.listener])
            .set(counts.total as i64);
        Ok(Permit {
            limiter: self.clone(),
            address,
        })
    }

    /// Connections admitted and still open.
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.limiter.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.by_address.remove(&self.address);
            }
        }
        metrics::CONNECTIONS_OPEN
            .with_label_values(&[self.limiter.listener])
            .set(counts.total as i64);
    }
}

/// Per (reason, address): when a line was last written, and how many
/// refusals went unlogged since.
type Seen = HashMap<(&'static str, IpAddr), (Instant, u64)>;

/// Rate-limits log lines about refused connections.
#[derive(Default)]
pub struct RefusalLog {
    seen: Mutex<Seen>,
}

impl RefusalLog {
    /// `Some(n)` when a line should be written now, `n` being the refusals
    /// of this kind from this address that were not logged since the last.
    pub fn should_log(&self, reason: &'static str, address: IpAddr) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if seen.len() >= LOG_KEYS {
            seen.retain(|_, (at, _)| now.duration_since(*at) < LOG_EVERY);
            if seen.len() >= LOG_KEYS {
                seen.clear();
            }
        }
        match seen.get_mut(&(reason, address)) {
            Some((at, suppressed)) if now.duration_since(*at) < LOG_EVERY => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                let n = *suppressed;
                *at = now;
                *suppressed = 0;
                Some(n)
            }
            None => {
                seen.insert((reason, address), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn an_address_over_its_cap_is_refused_and_a_closed_connection_frees_its_place() {
        let limiter = Limiter::new("test", 3, 2);
        let a1 = limiter.admit(ip(1)).unwrap();
        let _a2 = limiter.admit(ip(1)).unwrap();
        assert_eq!(limiter.admit(ip(1)).err(), Some(Over::Address));
        let _b = limiter.admit(ip(2)).unwrap();
        assert_eq!(limiter.admit(ip(3)).err(), Some(Over::Listener));
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.admit(ip(1)).is_ok());
    }

    #[test]
    fn the_same_refusal_is_logged_once_per_period_with_a_count_of_the_rest() {
        let log = RefusalLog::default();
        assert_eq!(log.should_log("bad_proof", ip(1)), Some(0));
        assert_eq!(log.should_log("bad_proof", ip(1)), None);
        assert_eq!(log.should_log("bad_proof", ip(1)), None);
        assert_eq!(
            log.should_log("bad_proof", ip(2)),
            Some(0),
            "another address"
        );
        assert_eq!(
            log.should_log("wrong_cluster", ip(1)),
            Some(0),
            "another reason"
        );
    }
}
