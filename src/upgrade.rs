//! What a leader writes into the log by itself once it can: the cluster
//! version, when every voter runs a newer one than the log says, and the
//! record of a recovery this node went through.
//!
//! The cluster version in the log (`set_cluster_version`) is what switches
//! behaviour that changes what applying an entry writes (from 0.3.0: user,
//! membership and recovery events): every node switches at that entry,
//! whatever it knows of its peers, so no two nodes ever write different
//! rows for the same entries. The version the hellos announce
//! ([`crate::version`]) only decides when the leader may propose it; a
//! node too old to decode the entry stops at it, never skips it.
//!
//! A node `recover --force-new-cluster` made the only voter proposes
//! `record_recovery` once per start, after the version is settled; the
//! event is written the first time only (see `applier::audit`).

use std::time::Duration;

use crate::applier::ApplierHandle;
use crate::audit::RecoveryRecord;
use crate::raft::{ConsensusError, RaftHandle};
use crate::task::{Command, Op};
use crate::time::Timestamp;
use crate::version::{Version, AUDIT_EVENTS};

/// How often a leader checks.
const EVERY: Duration = Duration::from_millis(500);

/// Whether the log's cluster version (`applied`) still lags what every
/// voter runs (`voters`, from their hellos): the leader proposes `voters`.
/// Nothing while a voter is older than the first version the log can
/// record (it could not decode the entry).
pub fn lags(applied: Version, voters: Version) -> bool {
    voters >= AUDIT_EVENTS && applied < voters
}

fn command(op: Op) -> Command {
    Command {
        request_id: crate::task::new_request_id(),
        idempotency: None,
        at: Timestamp::now(),
        actor: crate::accounts::Actor::system(),
        op,
    }
}

/// Whether the log's cluster version has caught up with the voters'
/// (or cannot yet be recorded): what the bootstrap admin waits for, so a
/// new cluster's first user is created under the version it runs.
pub async fn settled(raft: &RaftHandle, applier: &ApplierHandle) -> bool {
    versions(raft, applier)
        .await
        .is_some_and(|(applied, voters)| !lags(applied, voters))
}

/// The cluster version the log holds (as far as MySQL applied it), and the
/// lowest version among the voters (their hellos); `None` while either
/// cannot be asked.
async fn versions(raft: &RaftHandle, applier: &ApplierHandle) -> Option<(Version, Version)> {
    let cluster = raft.cluster_status().await.ok()?;
    let applied = applier.status().await.ok()?;
    Some((applied.cluster_version, cluster.cluster_version))
}

/// Runs for the node's life.
pub async fn run(raft: RaftHandle, applier: ApplierHandle, recovery: Option<RecoveryRecord>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recovery = recovery;
    loop {
        ticks.tick().await;
        let status = raft.status();
        if status.removed || status.leader_id != status.node_id {
            continue;
        }
        let Some((applied, voters)) = versions(&raft, &applier).await else {
            continue;
        };
        if lags(applied, voters) {
            let version = voters.to_string();
            match raft
                .propose(command(Op::SetClusterVersion {
                    version: version.clone(),
                }))
                .await
            {
                Ok(_) => tracing::info!(%version, "the log records the cluster version"),
                Err(ConsensusError::ClusterTooOld(e)) => {
                    tracing::debug!(%e, "cluster version not recorded yet")
                }
                Err(e) => tracing::debug!(error = %e, "could not record the cluster version"),
            }
            continue;
        }
        if applied < AUDIT_EVENTS {
            continue;
        }
        if let Some(record) = recovery.clone() {
            match raft.propose(command(Op::RecordRecovery(record))).await {
                Ok(_) => {
                    tracing::info!("the log records this node's recovery");
                    recovery = None;
                }
                Err(e) => tracing::debug!(error = %e, "could not record the recovery yet"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_records_a_version_only_when_every_voter_can_decode_it() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(lags(v("0.1.0"), v("0.3.0")), "a new cluster");
        assert!(lags(v("0.3.0"), v("0.4.1")), "an upgrade");
        assert!(!lags(v("0.3.0"), v("0.3.0")), "recorded");
        assert!(
            !lags(v("0.1.0"), v("0.2.0")),
            "a voter too old to decode set_cluster_version"
        );
        assert!(!lags(v("0.4.0"), v("0.3.0")), "never lowered");
    }
}
