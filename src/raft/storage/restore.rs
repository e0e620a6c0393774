//! `taskraft restore`: the Raft state of the first member of a new cluster
//! whose database was filled from a backup.
//!
//! The log starts after a snapshot at the backup's applied index, with
//! this node the only voter: the state that snapshot stands for is the
//! node's MySQL database (as after a compaction), so a node that joins
//! later is sent the snapshot and copies the rows from this node
//! (`applier::catchup`), exactly as a follower that fell behind a
//! compaction does. The index goes on from the backup's: log indexes in
//! the rows (events, idempotency keys, sessions) keep their meaning.
//!
//! The identity is that of a one-voter bootstrap: a new cluster id with a
//! new random part, so neither the old cluster's nodes nor an older
//! restore of the same backup can ever talk to it.

use raft::eraftpb::{ConfState, HardState, SnapshotMetadata};
use raft_engine::LogBatch;

use super::super::membership::{Identity, MemberAddr, Members};
use super::{
    json_bytes, LogError, LogStore, GROUP, HARD_STATE_KEY, IDENTITY_KEY, SNAPSHOT_MEMBERS_KEY,
    SNAPSHOT_META_KEY,
};

impl LogStore {
    /// Makes this fresh log the start of a new cluster whose only voter is
    /// `identity.node_id`, after a snapshot at (`index`, `term`): the
    /// entries up to `index` are the ones the restored database applied.
    /// One batch: a crash leaves the log fresh or restored.
    pub fn restore_as_first_member(
        &self,
        identity: &Identity,
        own: MemberAddr,
        index: u64,
        term: u64,
    ) -> Result<(), LogError> {
        if !self.is_fresh() {
            return Err(LogError::Meta(
                "restore writes only a fresh Raft log".into(),
            ));
        }
        let node_id = identity.node_id;
        let conf_state = ConfState {
            voters: vec![node_id],
            ..ConfState::default()
        };
        let snapshot = SnapshotMetadata {
            conf_state: Some(conf_state.clone()).into(),
            index,
            term,
            ..SnapshotMetadata::default()
        };
        // No vote: the node elects itself in the next term on its first
        // election timeout.
        let hard_state = HardState {
            term,
            commit: index,
            ..HardState::default()
        };
        let mut members = Members::new();
        members.insert(node_id, own);
        let mut batch = LogBatch::default();
        batch.put_message(GROUP, SNAPSHOT_META_KEY.to_vec(), &snapshot)?;
        batch.put(GROUP, SNAPSHOT_MEMBERS_KEY.to_vec(), json_bytes(&members)?)?;
        batch.put_message(GROUP, HARD_STATE_KEY.to_vec(), &hard_state)?;
        self.add_conf(&mut batch, &conf_state, index, &members)?;
        batch.put(GROUP, IDENTITY_KEY.to_vec(), json_bytes(identity)?)?;
        self.inner.engine.write(&mut batch, true)?;
        let mut meta = self.meta_mut();
        meta.snapshot = snapshot;
        meta.snapshot_members = members.clone();
        meta.hard_state = hard_state;
        meta.conf_state = conf_state;
        meta.conf_index = index;
        meta.members = members;
        meta.identity = Some(identity.clone());
        Ok(())
    }
}
