//! Cluster membership: who the members are, where they are, and how one
//! change at a time is asked for.
//!
//! Every membership change travels through the Raft log as a conf change
//! whose context holds the member's addresses, so every node, including one
//! that joins later and replays the log from the start, learns the same
//! members with the same addresses at the same log index. A new cluster's
//! first entries are the initial voters, written identically by each of
//! them (as etcd does), not a configuration outside the log.
//!
//! Changes go one at a time and single-step (add a learner, promote a
//! learner, remove a member): no joint consensus is needed, and raft-rs's
//! silent replacement of a second pending change never happens because the
//! leader refuses it first.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::audit::ChangeNote;

/// Where a member listens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddr {
    /// Its Raft transport address, as peers dial it.
    pub raft_addr: String,
    /// Its HTTP URL (`advertise_url`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

pub type Members = BTreeMap<u64, MemberAddr>;

/// The context of a membership change the leader proposes: the member's
/// addresses (when the change names them; a node of an older version reads
/// only these) and the [`ChangeNote`] every node turns into an event.
pub fn change_context(addr: Option<&MemberAddr>, note: Option<&ChangeNote>) -> Vec<u8> {
    let mut context = match addr.map(serde_json::to_value) {
        Some(Ok(serde_json::Value::Object(fields))) => fields,
        _ => serde_json::Map::new(),
    };
    if let Some(Ok(note)) = note.map(serde_json::to_value) {
        context.insert("audit".into(), note);
    }
    if context.is_empty() {
        return Vec::new();
    }
    serde_json::to_vec(&context).unwrap_or_default()
}

/// The [`ChangeNote`] in a membership change's context, if it has one.
pub fn change_note(context: &[u8]) -> Option<ChangeNote> {
    #[derive(Deserialize)]
    struct Noted {
        audit: Option<ChangeNote>,
    }
    serde_json::from_slice::<Noted>(context).ok()?.audit
}

/// One change to ask the leader for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// A new member that receives the log but does not vote yet.
    AddLearner {
        id: u64,
        addr: MemberAddr,
    },
    /// A caught-up learner becomes a voter.
    Promote {
        id: u64,
    },
    Remove {
        id: u64,
    },
}

impl MembershipChange {
    pub fn id(&self) -> u64 {
        match self {
            MembershipChange::AddLearner { id, .. }
            | MembershipChange::Promote { id }
            | MembershipChange::Remove { id } => *id,
        }
    }
}

/// Why a change was refused; each maps to a status code in the api.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("node {node} is not the leader")]
    NotLeader { node: u64, leader_id: u64 },
    #[error("another membership change is still in progress; retry when it is applied")]
    Pending,
    #[error("node {id} is already a {role}")]
    AlreadyMember { id: u64, role: &'static str },
    #[error("node {id} is not a member")]
    NotMember { id: u64 },
    #[error("node {id} is not a learner, so it cannot be promoted")]
    NotLearner { id: u64 },
    #[error(
        "the leader cannot remove itself: hand leadership over first (POST /api/cluster/leader)"
    )]
    RemoveLeader,
    #[error("node {id} is the last voter")]
    LastVoter { id: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Consensus(#[from] super::ConsensusError),
}

/// Who a node is: written on first start, and when it learns its cluster's
/// id (see `transport::auth` for how a new cluster's id is chosen).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: u64,
    /// The same on every member; a node never talks to another cluster's.
    pub cluster_id: String,
    /// True while the id is only the cluster's base, before this node has
    /// been shown the random part (absent in data written before: settled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forming: bool,
    /// For a node that joined with an empty log: the commit index of the
    /// leader that admitted it. The log it replays may remove this id at or
    /// before that index: that was an earlier member under the same id
    /// (whose data was lost, or a cluster recovered without it), not this
    /// node, which must not stop on it. 0: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub admitted_at: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Identity {
    /// The identity of initial voter `node_id` of a new cluster: the voter
    /// with the lowest id chooses the random part of the id; the others
    /// start forming and learn it from it (or from a member that did).
    pub fn at_bootstrap(node_id: u64, token: &str, voters: &BTreeMap<u64, String>) -> Identity {
        let base = Identity::bootstrap_cluster_id(token, voters);
        if voters.keys().next() == Some(&node_id) {
            let random = uuid::Uuid::new_v4().simple().to_string();
            Identity {
                node_id,
                cluster_id: format!("{base}.{}", &random[..16]),
                forming: false,
                admitted_at: 0,
            }
        } else {
            Identity {
                node_id,
                cluster_id: base,
                forming: true,
                admitted_at: 0,
            }
        }
    }

    /// The identity a node joining through a member that reported
    /// `cluster_id` takes: still forming if that id has no random part.
    pub fn joined(node_id: u64, cluster_id: String) -> Identity {
        let forming = !cluster_id.contains('.');
        Identity {
            node_id,
            cluster_id,
            forming,
            admitted_at: 0,
        }
    }

    /// Whether a committed removal of this node at log index `index` is
    /// this node's own (see [`Identity::admitted_at`]).
    pub fn removes_me(&self, index: u64) -> bool {
        index > self.admitted_at
    }

    /// The base of the id of a cluster bootstrapped with `voters` under
    /// `token`: the same on every initial member (the whole id, for
    /// clusters bootstrapped before ids had a random part). Addresses are left out on purpose:
    /// nodes may reach each other under different names (a proxy, NAT, a
    /// hostname on one and an IP on another). The token (etcd's
    /// initial-cluster-token) keeps two clusters with the same ids apart.
    pub fn bootstrap_cluster_id(token: &str, voters: &BTreeMap<u64, String>) -> String {
        let ids: Vec<String> = voters.keys().map(u64::to_string).collect();
        let text = format!("{token}/{}", ids.join(","));
        let hash = |seed: u64| {
            let mut h = seed;
            for byte in text.bytes() {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h
        };
        format!(
            "{:016x}{:016x}",
            hash(0xcbf2_9ce4_8422_2325),
            hash(0x8422_2325_cbf2_9ce4)
        )
    }
}

/// One single-step membership change, as raft-rs applies it outside joint
/// consensus (the only way taskraft changes membership).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfStep {
    AddVoter(u64),
    AddLearner(u64),
    Remove(u64),
}

/// Who votes and who only learns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    pub voters: BTreeSet<u64>,
    pub learners: BTreeSet<u64>,
}

impl Roles {
    /// The membership after `step`, with raft-rs's rules: adding a voter
    /// promotes a learner, adding a learner demotes a voter, removing an id
    /// that is no member changes nothing.
    pub fn apply(&mut self, step: ConfStep) {
        match step {
            ConfStep::AddVoter(id) => {
                self.learners.remove(&id);
                self.voters.insert(id);
            }
            ConfStep::AddLearner(id) => {
                self.voters.remove(&id);
                self.learners.insert(id);
            }
            ConfStep::Remove(id) => {
                self.voters.remove(&id);
                self.learners.remove(&id);
            }
        }
    }
}

/// The changes `recover --force-new-cluster` appends to the log of node
/// `node_id`, whose log ends with the membership `at_end`: this node made
/// a voter if it is not one, then every other member removed, one at a
/// time. Each is a single-step change that raft-rs applies outside joint
/// consensus, so any node that replays the log (a node joining later,
/// from the start or from a snapshot) reaches the same membership as the
/// recovered node, which records it directly: this node, alone, a voter.
pub fn steps_to_sole_voter(node_id: u64, at_end: &Roles) -> Vec<ConfStep> {
    let mut steps = Vec::new();
    if !at_end.voters.contains(&node_id) {
        steps.push(ConfStep::AddVoter(node_id));
    }
    steps.extend(
        at_end
            .voters
            .iter()
            .chain(&at_end.learners)
            .filter(|id| **id != node_id)
            .map(|id| ConfStep::Remove(*id)),
    );
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(voters: &[u64], learners: &[u64]) -> Roles {
        Roles {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
        }
    }

    fn replay(mut start: Roles, steps: &[ConfStep]) -> Roles {
        for step in steps {
            start.apply(*step);
        }
        start
    }

    #[test]
    fn recovery_removes_every_other_member_one_at_a_time_and_leaves_this_node_alone() {
        let at_end = roles(&[1, 2, 3], &[4]);
        let steps = steps_to_sole_voter(2, &at_end);
        assert_eq!(
            steps,
            vec![
                ConfStep::Remove(1),
                ConfStep::Remove(3),
                ConfStep::Remove(4)
            ]
        );
        assert_eq!(replay(at_end, &steps), roles(&[2], &[]));
        // Each step changes at most one voter: raft-rs applies it simply.
        let mut now = roles(&[1, 2, 3], &[4]);
        for step in &steps {
            let before = now.voters.clone();
            now.apply(*step);
            assert!(before.symmetric_difference(&now.voters).count() <= 1);
            assert!(!now.voters.is_empty());
        }
    }

    #[test]
    fn a_node_the_log_made_a_learner_or_removed_is_made_a_voter_first() {
        // The tail of its log demoted it: it becomes a voter again before
        // the others go, so the voters are never empty.
        let demoted = roles(&[1, 3], &[2]);
        let steps = steps_to_sole_voter(2, &demoted);
        assert_eq!(steps[0], ConfStep::AddVoter(2));
        assert_eq!(replay(demoted, &steps), roles(&[2], &[]));
        let removed = roles(&[1], &[]);
        let steps = steps_to_sole_voter(2, &removed);
        assert_eq!(steps, vec![ConfStep::AddVoter(2), ConfStep::Remove(1)]);
        assert_eq!(replay(removed, &steps), roles(&[2], &[]));
    }

    #[test]
    fn a_node_already_alone_needs_no_change() {
        assert_eq!(steps_to_sole_voter(1, &roles(&[1], &[])), vec![]);
    }

    #[test]
    fn every_initial_member_computes_the_same_cluster_id_however_it_spells_addresses() {
        let voters = BTreeMap::from([(1, "a:1".to_string()), (2, "b:2".to_string())]);
        let proxied =
            BTreeMap::from([(2, "proxy:9002".to_string()), (1, "10.0.0.1:1".to_string())]);
        let id = Identity::bootstrap_cluster_id("t", &voters);
        assert_eq!(id, Identity::bootstrap_cluster_id("t", &proxied));
        assert_eq!(id.len(), 32);
        let other_token = Identity::bootstrap_cluster_id("u", &voters);
        assert_ne!(id, other_token, "the token tells two clusters apart");
        let other_voters = BTreeMap::from([(1, "a:1".to_string()), (3, "b:2".to_string())]);
        assert_ne!(id, Identity::bootstrap_cluster_id("t", &other_voters));
    }

    #[test]
    fn the_lowest_voter_chooses_a_random_id_and_the_others_start_forming() {
        let voters = BTreeMap::from([(1, "a:1".to_string()), (2, "b:2".to_string())]);
        let base = Identity::bootstrap_cluster_id("t", &voters);
        let first = Identity::at_bootstrap(1, "t", &voters);
        let again = Identity::at_bootstrap(1, "t", &voters);
        assert!(!first.forming);
        assert!(first.cluster_id.starts_with(&format!("{base}.")));
        assert_ne!(
            first.cluster_id, again.cluster_id,
            "random at each bootstrap"
        );
        let second = Identity::at_bootstrap(2, "t", &voters);
        assert_eq!(
            (second.cluster_id.as_str(), second.forming),
            (base.as_str(), true)
        );
        assert!(!Identity::joined(4, first.cluster_id.clone()).forming);
        assert!(Identity::joined(4, base).forming);
    }

    #[test]
    fn a_node_admitted_at_an_index_ignores_removals_of_its_id_up_to_it() {
        let mut identity = Identity::joined(2, "c.r".into());
        assert!(
            identity.removes_me(1),
            "an initial member's removal is its own"
        );
        identity.admitted_at = 40;
        assert!(
            !identity.removes_me(12),
            "an earlier member with the same id"
        );
        assert!(!identity.removes_me(40));
        assert!(identity.removes_me(41));
        let stored = serde_json::to_string(&identity).unwrap();
        assert_eq!(serde_json::from_str::<Identity>(&stored).unwrap(), identity);
    }

    #[test]
    fn an_identity_written_before_random_ids_reads_back_settled() {
        let old: Identity =
            serde_json::from_str(r#"{"node_id":2,"cluster_id":"d533b3c8"}"#).unwrap();
        assert!(!old.forming);
    }
}
