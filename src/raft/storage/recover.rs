//! `taskraft recover --force-new-cluster`: the log of a stopped surviving
//! node rewritten so that it is the only voter of its cluster.
//!
//! Nothing is dropped. The entries the log holds stay, and all of them
//! become committed, those past the node's known commit index included:
//! a follower learns that an entry is committed one round after the
//! leader does, so an entry the lost leader acknowledged to a client (and
//! that this node holds) may lie past this node's commit index, and
//! dropping it would lose an acknowledged write. An entry that was never
//! committed was never acknowledged either: its client was told the
//! outcome is unknown (503/504), so applying it is an outcome it allows,
//! and a retry with the same `Idempotency-Key` is answered, not applied
//! twice. (etcd's `--force-new-cluster` drops the entries past the
//! persisted commit index instead; taskraft keeps them for the reason
//! above.)
//!
//! After the last entry come membership changes in a new term: this node
//! made a voter if the log's tail left it otherwise, then every other
//! member removed, one single-step change each (see
//! [`steps_to_sole_voter`]). A node that joins later replays them and
//! reaches the same membership; this node records that membership at the
//! last of them, so at start-up it skips every change up to there and
//! elects itself on its first election timeout.
//!
//! The cluster id keeps its base and gets a new random part: a lost member
//! that comes back with its old data (a machine thought dead) is refused by
//! the transport's hello, instead of overruling the recovered log with a
//! higher term. New members learn the new id when they join.

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, HardState,
};
use raft_engine::LogBatch;
use raft_proto::ConfChangeI;
use serde::{Deserialize, Serialize};

use super::super::membership::{steps_to_sole_voter, ConfStep, Identity, MemberAddr, Roles};
use super::{
    decode, json_bytes, json_value, EntryType_, LogError, LogStore, GROUP, HARD_STATE_KEY,
    IDENTITY_KEY, REMOVED_KEY,
};

/// Where the record of the last recovery is kept.
pub(super) const RECOVERY_KEY: &[u8] = b"recovery";

/// What a recovery did, kept in the log store (and logged at each start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// When `recover` ran (RFC 3339).
    pub at: String,
    pub node_id: u64,
    pub previous_cluster_id: String,
    pub cluster_id: String,
    /// The membership the log ended with.
    pub previous_voters: Vec<u64>,
    pub previous_learners: Vec<u64>,
    /// The commit index this node knew, and the log's last index, before.
    pub previous_commit: u64,
    pub previous_last_index: u64,
    /// The entries appended (the membership changes), and the new commit index.
    pub appended: u64,
    pub commit: u64,
    pub term: u64,
}

impl Recovery {
    /// What the recovery's event says.
    pub fn record(&self) -> crate::audit::RecoveryRecord {
        crate::audit::RecoveryRecord {
            node_id: self.node_id,
            previous_cluster_id: self.previous_cluster_id.clone(),
            cluster_id: self.cluster_id.clone(),
            previous_voters: self.previous_voters.clone(),
            previous_learners: self.previous_learners.clone(),
            previous_last_index: self.previous_last_index,
            recovered_at: crate::time::Timestamp::parse_rfc3339(&self.at)
                .unwrap_or(crate::time::Timestamp(0)),
        }
    }
}

/// Why a log cannot be recovered.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("the data_dir holds no Raft log: there is nothing to recover (is data_dir set as for `serve`?)")]
    Fresh,
    #[error(
        "the data_dir holds a Raft log but no node identity; it was not written by this version"
    )]
    Unidentified,
    #[error("the data_dir belongs to node {owner}, not {node_id}")]
    OtherNode { owner: u64, node_id: u64 },
    #[error(
        "node {node_id} was removed from its cluster: its data may be stale; recover a member"
    )]
    Removed { node_id: u64 },
    #[error("node {node_id} is a learner: it may lack committed entries; recover a voter instead")]
    Learner { node_id: u64 },
    #[error(
        "the log ends in a joint configuration, which taskraft never writes; refusing to rewrite it"
    )]
    Joint,
    #[error("{0}")]
    Log(#[from] LogError),
}

impl LogStore {
    /// The last recovery this log went through, if any.
    pub fn recovery(&self) -> Result<Option<Recovery>, LogError> {
        json_value(&self.inner.engine, RECOVERY_KEY)
    }

    /// Makes node `node_id` the only voter of its cluster, keeping every
    /// entry (see the module's comment). `own` is where it listens; `at`
    /// stamps the record. Written in one batch: a crash leaves the log as
    /// it was or recovered.
    pub fn force_new_cluster(
        &self,
        node_id: u64,
        own: MemberAddr,
        at: String,
    ) -> Result<Recovery, RecoverError> {
        let identity = match self.identity() {
            Some(identity) => identity,
            None if self.is_fresh() => return Err(RecoverError::Fresh),
            None => return Err(RecoverError::Unidentified),
        };
        if identity.node_id != node_id {
            return Err(RecoverError::OtherNode {
                owner: identity.node_id,
                node_id,
            });
        }
        let (hard_state, conf_state, conf_index, mut members, removed) = {
            let meta = self.meta();
            (
                meta.hard_state.clone(),
                meta.conf_state.clone(),
                meta.conf_index,
                meta.members.clone(),
                meta.removed,
            )
        };
        if removed {
            return Err(RecoverError::Removed { node_id });
        }
        if conf_state.learners.contains(&node_id) {
            return Err(RecoverError::Learner { node_id });
        }
        if !conf_state.voters.contains(&node_id) {
            return Err(RecoverError::Removed { node_id });
        }
        if !conf_state.voters_outgoing.is_empty() || !conf_state.learners_next.is_empty() {
            return Err(RecoverError::Joint);
        }
        // The membership at the log's end: the recorded one, then every
        // change after it (committed or not: all of them are kept).
        let mut roles = Roles {
            voters: conf_state.voters.iter().copied().collect(),
            learners: conf_state.learners.iter().copied().collect(),
        };
        let last = self.last_index_now();
        for step in self.conf_steps(conf_index + 1, last)? {
            roles.apply(step);
        }
        let last_term = raft::Storage::term(self, last)
            .map_err(|e| LogError::Meta(format!("term of the last entry {last}: {e}")))?;
        let term = hard_state.term.max(last_term) + 1;
        let previous_cluster_id = identity.cluster_id.clone();
        let base = previous_cluster_id
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let new_identity = Identity {
            node_id,
            cluster_id: format!("{base}.{}", &random[..16]),
            forming: false,
            admitted_at: identity.admitted_at,
        };
        let own = members
            .get(&node_id)
            .cloned()
            .map_or(own.clone(), |known| MemberAddr {
                raft_addr: known.raft_addr,
                url: own.url.clone().or(known.url),
            });
        let note = serde_json::json!({
            "recovered_by": node_id,
            "at": at,
            "cluster_id": new_identity.cluster_id,
        })
        .to_string();
        let steps = steps_to_sole_voter(node_id, &roles);
        let mut entries = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let (id, change_type, context) = match *step {
                ConfStep::AddVoter(id) => (id, ConfChangeType::AddNode, json_bytes(&own)?),
                ConfStep::AddLearner(id) => (id, ConfChangeType::AddLearnerNode, json_bytes(&own)?),
                ConfStep::Remove(id) => (id, ConfChangeType::RemoveNode, note.clone().into_bytes()),
            };
            let mut cc = ConfChangeV2::default();
            cc.set_changes(vec![raft_proto::new_conf_change_single(id, change_type)].into());
            cc.context = context.into();
            let mut entry = Entry {
                index: last + 1 + i as u64,
                term,
                data: cc
                    .write_to_bytes()
                    .map_err(|e| LogError::Meta(e.to_string()))?
                    .into(),
                ..Entry::default()
            };
            entry.set_entry_type(EntryType::EntryConfChangeV2);
            entries.push(entry);
        }
        let commit = last + entries.len() as u64;
        let new_hard_state = HardState {
            term,
            vote: node_id,
            commit,
            ..HardState::default()
        };
        let new_conf = ConfState {
            voters: vec![node_id],
            ..ConfState::default()
        };
        members.retain(|id, _| *id == node_id);
        members.insert(node_id, own);
        let record = Recovery {
            at,
            node_id,
            previous_cluster_id,
            cluster_id: new_identity.cluster_id.clone(),
            previous_voters: roles.voters.iter().copied().collect(),
            previous_learners: roles.learners.iter().copied().collect(),
            previous_commit: hard_state.commit,
            previous_last_index: last,
            appended: entries.len() as u64,
            commit,
            term,
        };
        let mut batch = LogBatch::default();
        if !entries.is_empty() {
            batch
                .add_entries::<EntryType_>(GROUP, &entries)
                .map_err(LogError::from)?;
        }
        batch
            .put_message(GROUP, HARD_STATE_KEY.to_vec(), &new_hard_state)
            .map_err(LogError::from)?;
        self.add_conf(&mut batch, &new_conf, commit, &members)?;
        batch
            .put(GROUP, IDENTITY_KEY.to_vec(), json_bytes(&new_identity)?)
            .map_err(LogError::from)?;
        batch
            .put(GROUP, RECOVERY_KEY.to_vec(), json_bytes(&record)?)
            .map_err(LogError::from)?;
        batch.delete(GROUP, REMOVED_KEY.to_vec());
        self.inner
            .engine
            .write(&mut batch, true)
            .map_err(LogError::from)?;
        if !entries.is_empty() {
            self.tail_mut().append(&entries);
        }
        let mut meta = self.meta_mut();
        meta.hard_state = new_hard_state;
        meta.conf_state = new_conf;
        meta.conf_index = commit;
        meta.members = members;
        meta.identity = Some(new_identity);
        Ok(record)
    }

    /// The membership changes in the entries `low..=high`, in log order.
    fn conf_steps(&self, low: u64, high: u64) -> Result<Vec<ConfStep>, LogError> {
        let mut steps = Vec::new();
        let mut next = low.max(self.first_index_now());
        while next <= high {
            let page = self.read_entries(next, high + 1, 4 << 20)?;
            let Some(last) = page.last() else { break };
            next = last.index + 1;
            for entry in &page {
                let change = match entry.get_entry_type() {
                    EntryType::EntryNormal => continue,
                    EntryType::EntryConfChange => {
                        decode::<ConfChange>(&entry.data).map(|cc| cc.into_v2())
                    }
                    EntryType::EntryConfChangeV2 => decode::<ConfChangeV2>(&entry.data),
                }
                .map_err(|e| {
                    LogError::Meta(format!("membership change at {}: {e}", entry.index))
                })?;
                for single in change.get_changes() {
                    let id = single.node_id;
                    steps.push(match single.get_change_type() {
                        ConfChangeType::AddNode => ConfStep::AddVoter(id),
                        ConfChangeType::AddLearnerNode => ConfStep::AddLearner(id),
                        ConfChangeType::RemoveNode => ConfStep::Remove(id),
                    });
                }
            }
        }
        Ok(steps)
    }
}
