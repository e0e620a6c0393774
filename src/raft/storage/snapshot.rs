//! Compaction and snapshots of the log store.
//!
//! Compacting drops entries MySQL has durably applied and records, in the
//! same batch, the snapshot metadata raft-rs needs in their place. A
//! snapshot of this node is only metadata (index, term, membership) and
//! the members' addresses: the state it stands for is the node's MySQL
//! database, which a follower copies from a peer page by page
//! (`applier::catchup`).

use raft::eraftpb::{HardState, Snapshot, SnapshotMetadata};
use raft::{Storage, StorageError};
use raft_engine::{Command, LogBatch};
use serde::{Deserialize, Serialize};

use super::{
    json_bytes, LogError, LogStore, Members, GROUP, HARD_STATE_KEY, SNAPSHOT_MEMBERS_KEY,
    SNAPSHOT_META_KEY,
};

/// What a snapshot carries besides raft-rs's metadata: the members'
/// addresses at its index, since a node that installs it never sees the
/// membership changes that recorded them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotData {
    pub members: Members,
}

impl LogStore {
    /// The snapshot the log starts from: index and term of the last entry
    /// compacted away, and the membership there ((0, 0) if none).
    pub fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.meta().snapshot.clone()
    }

    /// Drops the entries up to and including `index`, recording in the same
    /// batch the snapshot that stands for them. Only entries MySQL has
    /// applied, durably, may go: after a crash the node replays its log from
    /// MySQL's applied index. Returns false (and drops nothing) when `index`
    /// is not past the current snapshot, or precedes the last membership
    /// change (the membership at `index` is then no longer known).
    pub fn compact(&self, index: u64) -> Result<bool, LogError> {
        let (compacted, conf_index) = {
            let meta = self.meta();
            (meta.snapshot.index, meta.conf_index)
        };
        if index <= compacted || index < conf_index || index > self.last_index_now() {
            return Ok(false);
        }
        let term = self
            .term(index)
            .map_err(|e| LogError::Meta(format!("term of entry {index}: {e}")))?;
        let (snapshot, members, mut hard_state) = {
            let meta = self.meta();
            let snapshot = SnapshotMetadata {
                conf_state: Some(meta.conf_state.clone()).into(),
                index,
                term,
                ..SnapshotMetadata::default()
            };
            (snapshot, meta.members.clone(), meta.hard_state.clone())
        };
        // The commit index may only have been raised in memory so far; what
        // is compacted must be committed in what a restart reads.
        hard_state.commit = hard_state.commit.max(index);
        let mut batch = LogBatch::default();
        batch.put_message(GROUP, SNAPSHOT_META_KEY.to_vec(), &snapshot)?;
        batch.put(GROUP, SNAPSHOT_MEMBERS_KEY.to_vec(), json_bytes(&members)?)?;
        batch.put_message(GROUP, HARD_STATE_KEY.to_vec(), &hard_state)?;
        batch.add_command(GROUP, Command::Compact { index: index + 1 });
        self.inner.engine.write(&mut batch, true)?;
        let mut meta = self.meta_mut();
        meta.snapshot = snapshot;
        meta.snapshot_members = members;
        meta.hard_state = hard_state;
        Ok(true)
    }

    /// Records how far MySQL has applied (see [`Storage::snapshot`]).
    pub fn set_applied(&self, index: u64) {
        self.inner
            .applied
            .fetch_max(index, std::sync::atomic::Ordering::Relaxed);
    }

    /// Deletes the log files that compaction emptied, unless a purge is
    /// already running. Slow (file I/O): call it off the Raft thread.
    pub fn purge(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.purging.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = self.inner.engine.purge_expired_files() {
            tracing::warn!(error = %e, "purging compacted raft log files failed");
        }
        self.inner.purging.store(false, Ordering::Release);
    }

    /// Installs a snapshot received from the leader: drops every entry (the
    /// log restarts after the snapshot's index), records the snapshot's
    /// membership and addresses, and the hard state, in one fsynced batch.
    /// Returns the members it brought.
    pub fn apply_snapshot(
        &self,
        snapshot: &Snapshot,
        hard_state: Option<&HardState>,
    ) -> Result<Members, LogError> {
        let metadata = snapshot.get_metadata().clone();
        let index = metadata.index;
        let data: SnapshotData = serde_json::from_slice(&snapshot.data)
            .map_err(|e| LogError::Meta(format!("snapshot data: {e}")))?;
        let conf_state = metadata.get_conf_state().clone();
        let mut hard_state = hard_state.cloned().unwrap_or_else(|| self.hard_state());
        hard_state.commit = hard_state.commit.max(index);
        let mut batch = LogBatch::default();
        if let Some(last) = self.inner.engine.last_index(GROUP) {
            // Everything goes, including entries past the snapshot: they
            // are not known to match the leader's log.
            batch.add_command(
                GROUP,
                Command::Compact {
                    index: last.max(index) + 1,
                },
            );
        }
        batch.put_message(GROUP, SNAPSHOT_META_KEY.to_vec(), &metadata)?;
        batch.put(
            GROUP,
            SNAPSHOT_MEMBERS_KEY.to_vec(),
            json_bytes(&data.members)?,
        )?;
        batch.put_message(GROUP, HARD_STATE_KEY.to_vec(), &hard_state)?;
        self.add_conf(&mut batch, &conf_state, index, &data.members)?;
        self.inner.engine.write(&mut batch, true)?;
        self.tail_mut().clear();
        let mut meta = self.meta_mut();
        meta.snapshot = metadata;
        meta.snapshot_members = data.members.clone();
        meta.hard_state = hard_state;
        meta.conf_state = conf_state;
        meta.conf_index = index;
        meta.members = data.members.clone();
        Ok(data.members)
    }

    /// A snapshot for a follower that needs compacted entries: metadata and
    /// addresses only; the follower copies the state it stands for from a
    /// peer's MySQL. It names the newest index this node can describe: what
    /// its MySQL has applied, unless a membership change came after that
    /// (its membership is only known as of the last change), in which case
    /// the last compaction's snapshot, which records its own membership.
    /// The newest matters: a member added after the compaction must find
    /// itself in the snapshot's membership, or raft-rs refuses it.
    pub(super) fn build_snapshot(&self, request_index: u64) -> raft::Result<Snapshot> {
        let applied = self
            .inner
            .applied
            .load(std::sync::atomic::Ordering::Relaxed);
        let (stored, conf_index) = {
            let meta = self.meta();
            (meta.snapshot.index, meta.conf_index)
        };
        let fresh = applied > stored && applied >= conf_index && applied >= request_index;
        let (metadata, members) = if fresh {
            let term = self.term(applied)?;
            let meta = self.meta();
            let metadata = SnapshotMetadata {
                conf_state: Some(meta.conf_state.clone()).into(),
                index: applied,
                term,
                ..SnapshotMetadata::default()
            };
            (metadata, meta.members.clone())
        } else if stored > 0 && stored >= request_index {
            let meta = self.meta();
            (meta.snapshot.clone(), meta.snapshot_members.clone())
        } else {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        };
        let data = serde_json::to_vec(&SnapshotData { members })
            .map_err(|e| raft::Error::Store(StorageError::Other(Box::new(e))))?;
        Ok(Snapshot {
            data: data.into(),
            metadata: Some(metadata).into(),
            ..Snapshot::default()
        })
    }
}
