//! Retention, decided in the log: idempotency keys expire, and sessions
//! that can never be good again are pruned.
//!
//! Every [`interval`] the leader proposes `expire_keys` with a cutoff, now
//! (on its clock) minus `idempotency_retention`. Every node applies that
//! entry in log order and deletes the keys first used before the cutoff
//! (`Board::expire_keys`, then `DELETE … WHERE created_at < cutoff` in the
//! same transaction), so every node drops the same keys at the same point
//! of the log, whatever its own clock says. A retry under an expired key
//! is a new request: it creates a new task.
//!
//! Keys live at least the retention, and at most about one [`interval`]
//! more. A follower proposes nothing; a leader that cannot yet tell every
//! voter runs a version that knows `expire_keys` proposes nothing either
//! (the cluster-version gate, [`crate::version`]), and tries again next
//! interval.
//!
//! At the same interval the leader proposes `prune_sessions` (cutoff: its
//! now) when its accounts hold a session that is logged out, older than
//! its user's last password change, or expired: every node removes those
//! from memory and from its `sessions` table at that entry, so neither
//! grows with every login ever made. Nothing is proposed while there is
//! nothing to prune.

use std::time::Duration;

use crate::accounts::AccountsCache;
use crate::raft::{ConsensusError, RaftHandle};
use crate::task::{Command, Op};
use crate::time::Timestamp;

/// How often the leader proposes an expiry: a tenth of the retention,
/// from 1 s to 10 min (144 small entries a day at the default 7 days).
pub fn interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// The expiry a leader proposes at `now`.
pub fn expiry(now: Timestamp, retention: Duration) -> Command {
    Command {
        request_id: crate::task::new_request_id(),
        idempotency: None,
        at: now,
        actor: crate::accounts::Actor::system(),
        op: Op::ExpireKeys {
            before: Timestamp(now.millis() - retention.as_millis() as i64),
        },
    }
}

/// The session pruning a leader proposes at `now`, if its accounts hold
/// something to prune.
pub fn session_pruning(accounts: &crate::accounts::Accounts, now: Timestamp) -> Option<Command> {
    if accounts.prunable_sessions(now).is_empty() {
        return None;
    }
    Some(Command {
        request_id: crate::task::new_request_id(),
        idempotency: None,
        at: now,
        actor: crate::accounts::Actor::system(),
        op: Op::PruneSessions { before: now },
    })
}

/// Runs for the node's life: proposes an expiry, and a session pruning
/// when there is something to prune, every interval while this node leads.
pub async fn run(raft: RaftHandle, retention: Duration, accounts: AccountsCache) {
    let mut ticks = tokio::time::interval(interval(retention));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let status = raft.status();
        if status.removed || status.leader_id != status.node_id {
            continue;
        }
        match raft.propose(expiry(Timestamp::now(), retention)).await {
            Ok(_) => tracing::debug!("idempotency keys expired"),
            Err(ConsensusError::ClusterTooOld(e)) => {
                tracing::info!(%e, "idempotency keys not expired yet")
            }
            Err(e) => tracing::warn!(error = %e, "could not expire idempotency keys"),
        }
        let pruning = accounts
            .get()
            .and_then(|accounts| session_pruning(&accounts, Timestamp::now()));
        if let Some(command) = pruning {
            match raft.propose(command).await {
                Ok(applied) => tracing::debug!(outcome = ?applied.outcome, "sessions pruned"),
                Err(ConsensusError::ClusterTooOld(e)) => {
                    tracing::info!(%e, "sessions not pruned yet")
                }
                Err(e) => tracing::warn!(error = %e, "could not prune sessions"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_interval_is_a_tenth_of_the_retention_within_bounds() {
        assert_eq!(
            interval(Duration::from_secs(7 * 86_400)),
            Duration::from_secs(600)
        );
        assert_eq!(interval(Duration::from_secs(100)), Duration::from_secs(10));
        assert_eq!(interval(Duration::from_secs(2)), Duration::from_secs(1));
    }

    #[test]
    fn a_leader_proposes_a_pruning_only_when_there_is_a_session_to_prune() {
        use crate::accounts::{AccountChanges, Accounts, NewSession, NewUser, Role};
        let mut accounts = Accounts::default();
        let mut changes = AccountChanges::default();
        let mut apply = |index, op| {
            let command = Command {
                request_id: crate::task::new_request_id(),
                idempotency: None,
                at: Timestamp(1_000),
                actor: crate::accounts::Actor::system(),
                op,
            };
            let op = command.op.account().expect("an account command");
            accounts.apply(index, command.at, op, &mut changes);
        };
        apply(
            1,
            Op::UserCreate(NewUser {
                id: Uuid::from_u128(1),
                username: "root".into(),
                display_name: "root".into(),
                role: Role::Admin,
                password_hash: "h".into(),
            }),
        );
        apply(
            2,
            Op::SessionCreate(NewSession {
                hash: "s".into(),
                user_id: Uuid::from_u128(1),
                expires_at: Timestamp(5_000),
            }),
        );
        assert_eq!(session_pruning(&accounts, Timestamp(4_999)), None);
        let command = session_pruning(&accounts, Timestamp(5_000)).expect("one expired");
        assert_eq!(
            command.op,
            Op::PruneSessions {
                before: Timestamp(5_000)
            }
        );
        assert!(command.actor.is_system());
    }

    #[test]
    fn the_cutoff_is_the_retention_before_now() {
        let command = expiry(Timestamp(10_000_000), Duration::from_secs(60));
        assert_eq!(
            command.op,
            Op::ExpireKeys {
                before: Timestamp(10_000_000 - 60_000)
            }
        );
        assert_eq!(command.idempotency, None);
    }
}
