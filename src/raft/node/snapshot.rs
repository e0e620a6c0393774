//! Compaction and snapshots, as the Raft node sees them.
//!
//! Every node compacts its own log once MySQL has durably applied enough
//! entries, keeping some for followers a little behind. A follower that
//! needs what was compacted is sent a snapshot: only its metadata (index,
//! term, membership, addresses) crosses the Raft transport. The follower
//! installs it in its log at once, and its applier then copies the state
//! the snapshot stands for from a peer's MySQL, page by page
//! (`applier::catchup`); reads on it wait for that like for any apply.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use raft::eraftpb::{HardState, Snapshot};
use raft::SnapshotStatus;

use super::{fatal, RaftNode};
use crate::metrics;
use crate::raft::{RemovePeer, SetPeer};

/// How often the log is considered for compaction. MySQL's applied index
/// seen at one check is durable by the next (InnoDB flushes its log every
/// second even when it does not at each commit), and only that is compacted.
const COMPACTION_CHECK: Duration = Duration::from_secs(5);

impl RaftNode {
    /// Installs the leader's snapshot in the log and points the transport
    /// at the members it names; returns its index.
    pub(super) fn install_snapshot(
        &mut self,
        snapshot: &Snapshot,
        hard_state: Option<&HardState>,
    ) -> u64 {
        let index = snapshot.get_metadata().index;
        let before: HashSet<u64> = self.store.members().into_keys().collect();
        let members = match self.store.apply_snapshot(snapshot, hard_state) {
            Ok(members) => members,
            Err(e) => fatal(&format!("cannot install a snapshot in the Raft log: {e}")),
        };
        for (id, addr) in &members {
            if *id != self.id {
                self.transport.set_peer.do_send(SetPeer {
                    id: *id,
                    addr: addr.raft_addr.clone(),
                });
            }
        }
        for id in before {
            if id != self.id && !members.contains_key(&id) {
                self.transport.remove_peer.do_send(RemovePeer(id));
            }
        }
        metrics::SNAPSHOTS_INSTALLED.inc();
        tracing::info!(
            index,
            term = snapshot.get_metadata().term,
            mysql_applied = self.applied_index,
            "installed a snapshot from the leader; MySQL catches up from a peer"
        );
        index
    }

    /// A snapshot message is tiny and travels with the other messages; if
    /// it is lost, the follower rejects the next append and the leader sends
    /// it again. So it is reported delivered as soon as it is sent.
    pub(super) fn report_snapshots_sent(&mut self) {
        for to in std::mem::take(&mut self.snapshots_sent) {
            tracing::info!(to, "sent a snapshot to a follower behind the log");
            metrics::SNAPSHOTS_SENT.inc();
            self.raw.report_snapshot(to, SnapshotStatus::Finish);
        }
    }

    /// Compacts the log once enough durably applied entries sit in it.
    pub(super) fn maybe_compact(&mut self, now: Instant) {
        let (checked_at, durable) = self.compaction_check;
        if now.duration_since(checked_at) < COMPACTION_CHECK {
            return;
        }
        self.compaction_check = (now, self.applied_index);
        let target = durable.saturating_sub(self.compaction.catchup_entries);
        let compacted = self.store.snapshot_metadata().index;
        if target < compacted + self.compaction.snapshot_count {
            return;
        }
        match self.store.compact(target) {
            Ok(true) => {
                metrics::LOG_COMPACTIONS.inc();
                metrics::LOG_FIRST_INDEX.set(self.store.first_index_now() as i64);
                tracing::info!(
                    up_to = target,
                    first_index = self.store.first_index_now(),
                    "compacted the Raft log"
                );
                let store = self.store.clone();
                std::thread::spawn(move || store.purge());
            }
            Ok(false) => tracing::debug!(
                target,
                conf_index = self.store.conf_index(),
                "not compacting past the last membership change yet"
            ),
            Err(e) => tracing::warn!(error = %e, "compacting the Raft log failed"),
        }
    }
}
