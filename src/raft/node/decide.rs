//! The Raft node's decisions under time and failure, as plain functions
//! and values: which requests it takes, when it notices a new leader, whom
//! it hands leadership to on shutdown, when a read round is asked again.
//! The actor (`super`) gathers the facts from raft-rs and acts on the
//! answers; `tests.rs` drives these with explicit ticks and events.

use std::time::{Duration, Instant};

use super::super::handle::{ConsensusError, Overload, TransferRefused};

/// Committed-but-unapplied entries beyond which this node refuses new writes:
/// its MySQL is behind, and queueing more would only lengthen the wait.
pub(crate) const MAX_APPLY_LAG: u64 = 50_000;

/// What the node knows when a request arrives.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    pub shutting_down: bool,
    /// Some leader is known (raft-rs forwards a follower's proposal to it).
    pub leader_known: bool,
    pub committed: u64,
    pub applied: u64,
    /// Why the bytes of unapplied entries refuse more, if they do.
    pub backlog: Option<Overload>,
}

/// Whether a write may be proposed. A refused write was not proposed:
/// the client may retry it anywhere.
pub(crate) fn admit_write(facts: &Facts) -> Result<(), ConsensusError> {
    admit_read(facts)?;
    let lag = facts.committed.saturating_sub(facts.applied);
    if lag > MAX_APPLY_LAG {
        // The apply-lag guard: MySQL is this far behind the log.
        return Err(ConsensusError::Overloaded(Overload::Entries {
            entries: lag,
        }));
    }
    match &facts.backlog {
        Some(overload) => Err(ConsensusError::Overloaded(overload.clone())),
        None => Ok(()),
    }
}

/// Whether a read may wait for a read index. Reads are not refused for
/// apply lag: they wait for MySQL like any read, until their deadline.
pub(crate) fn admit_read(facts: &Facts) -> Result<(), ConsensusError> {
    if facts.shutting_down {
        return Err(ConsensusError::ShuttingDown);
    }
    if !facts.leader_known {
        return Err(ConsensusError::NoLeader);
    }
    Ok(())
}

/// (term, leader) as last seen, to notice changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leadership {
    pub term: u64,
    /// 0 when no leader is known.
    pub leader: u64,
}

/// What changed between two observations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeadershipChange {
    /// A leader is known and it is not the one known before.
    pub new_leader: bool,
}

impl Leadership {
    /// Records `now`; returns the change if term or leader moved. On any
    /// change, writes whose entry is not known to be committed fail
    /// (`LeaderChanged`, a 503) and unanswered read rounds are asked again.
    pub fn observe(&mut self, now: Leadership) -> Option<LeadershipChange> {
        if now == *self {
            return None;
        }
        let new_leader = now.leader != 0 && now.leader != self.leader;
        *self = now;
        Some(LeadershipChange { new_leader })
    }
}

/// A ReadIndex round unanswered for two election timeouts went to a leader
/// that dropped it; it is asked again rather than left to its deadline.
pub(crate) fn read_retry_after(tick: Duration, election_timeout_ticks: usize) -> Duration {
    tick * (2 * election_timeout_ticks as u32)
}

/// Whom a leader that is shutting down hands leadership to: the other
/// voter that holds the most of its log (ties: the lowest id), so the
/// cluster does not wait an election timeout to notice it is gone.
pub(crate) fn successor(
    own_id: u64,
    voters: impl IntoIterator<Item = u64>,
    matched: impl Fn(u64) -> u64,
) -> Option<u64> {
    voters
        .into_iter()
        .filter(|id| *id != own_id)
        .max_by_key(|id| (matched(*id), std::cmp::Reverse(*id)))
}

/// Whether a shutdown that began waiting until `until` is over: leadership
/// was handed over, or the wait ran out.
pub(crate) fn shutdown_done(is_leader: bool, now: Instant, until: Instant) -> bool {
    !is_leader || now >= until
}

/// Whether this node may transfer leadership to `to`.
pub(crate) fn check_transfer(
    own_id: u64,
    is_leader: bool,
    leader: u64,
    to_is_voter: bool,
    to: u64,
) -> Result<(), TransferRefused> {
    if !is_leader {
        return Err(TransferRefused::NotLeader {
            node: own_id,
            leader,
        });
    }
    if !to_is_voter {
        return Err(TransferRefused::NotVoter(to));
    }
    Ok(())
}
