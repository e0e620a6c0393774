//! The cluster as one node sees it: the document of `/api/cluster`, the
//! WebSocket's `cluster` frame, and what joining nodes read from a member.

use serde::{Deserialize, Serialize};

use super::{ClusterInfo, MemberRole};
use crate::raft::{ConsensusError, Role};

/// One member as `/api/cluster` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberView {
    pub id: u64,
    pub raft_addr: Option<String>,
    pub url: Option<String>,
    pub role: MemberRole,
    /// Whether this node's link to it is up (always true for itself).
    pub reachable: bool,
    pub match_index: Option<u64>,
    pub is_leader: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterView {
    pub node_id: u64,
    /// The same on every member of one cluster.
    pub cluster_id: String,
    pub url: String,
    pub role: Role,
    pub term: u64,
    pub leader_id: Option<u64>,
    /// True once this node has been removed from the cluster.
    #[serde(default)]
    pub removed: bool,
    pub leader_url: Option<String>,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The first entry this node's log holds: the ones before were
    /// compacted (they live on in MySQL; a snapshot stands for them).
    #[serde(default)]
    pub first_index: u64,
    pub last_index: u64,
    /// The applier's last error, while it retries a batch, or why it
    /// stopped (an entry this version cannot decode).
    pub apply_error: Option<String>,
    pub members: Vec<MemberView>,
    /// Whom this node voted for in its current term (0: nobody).
    #[serde(default)]
    pub vote: u64,
    /// This build's version and commit (see `taskraft_build_info`).
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub commit: String,
    /// The lowest version among the voters, as this node knows them: the
    /// command kinds it may propose (see `crate::version`).
    #[serde(default)]
    pub cluster_version: String,
    /// `taskraft demo --lab`'s page, when the node runs under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_url: Option<String>,
    /// When this node's log went through `recover --force-new-cluster`:
    /// when, which members were dropped, from which log index on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<crate::raft::Recovery>,
}

impl ClusterView {
    /// What the board shows live: leader, term, roles, reachability and
    /// where each member serves (not the indexes, which move with every
    /// write).
    pub fn signature(&self) -> String {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                format!(
                    "{}:{:?}:{}:{}:{}",
                    m.id,
                    m.role,
                    m.reachable,
                    m.is_leader,
                    m.url.as_deref().unwrap_or("")
                )
            })
            .collect();
        format!(
            "{:?}/{}/{:?}/{}",
            self.leader_id,
            self.term,
            self.role,
            members.join(",")
        )
    }

    /// Whether this view lists `node_id` as a member.
    pub fn lists(&self, node_id: u64) -> bool {
        self.members.iter().any(|m| m.id == node_id)
    }
}

/// Asks the Raft node, the transport and the applier, and puts their
/// answers together.
pub(super) async fn assemble(cluster: &ClusterInfo) -> Result<ClusterView, ConsensusError> {
    let status = cluster.raft.cluster_status().await?;
    let peers = cluster.transport.peers().await.unwrap_or_default();
    let applier = cluster.applier.status().await.ok();
    let me = status.raft.node_id;
    let members: Vec<MemberView> = status
        .members
        .iter()
        .map(|m| {
            let peer = peers.iter().find(|p| p.id == m.id);
            let recorded = m.addr.as_ref();
            MemberView {
                id: m.id,
                raft_addr: if m.id == me {
                    Some(cluster.raft_addr.clone())
                } else {
                    peer.map(|p| p.raft_addr.clone())
                        .or_else(|| recorded.map(|a| a.raft_addr.clone()))
                },
                // The log's record first: every member has one, whoever
                // dialed whom. A peer's hello covers a member recorded by
                // an older version, until its record lands.
                url: if m.id == me {
                    Some(cluster.advertise_url.clone())
                } else {
                    recorded
                        .and_then(|a| a.url.clone())
                        .or_else(|| peer.and_then(|p| p.url.clone()))
                },
                role: MemberRole::of(m),
                reachable: m.id == me || peer.is_some_and(|p| p.reachable),
                match_index: m.match_index,
                is_leader: m.id == status.raft.leader_id,
            }
        })
        .collect();
    let leader_id = (status.raft.leader_id != 0).then_some(status.raft.leader_id);
    let leader_url = members
        .iter()
        .find(|m| Some(m.id) == leader_id)
        .and_then(|m| m.url.clone());
    Ok(ClusterView {
        node_id: me,
        cluster_id: cluster.cluster_id.current(),
        removed: status.raft.removed,
        url: cluster.advertise_url.clone(),
        role: status.raft.role,
        term: status.raft.term,
        leader_id,
        leader_url,
        commit_index: status.commit_index,
        applied_index: status.applied_index,
        first_index: status.first_index,
        last_index: status.last_index,
        // A stopped applier (an entry this version cannot decode) is the
        // error that lasts: it shows until the node is upgraded.
        apply_error: applier.and_then(|a| a.stopped.or(a.failing)),
        members,
        vote: status.vote,
        version: crate::version::announced(),
        cluster_version: status.cluster_version.to_string(),
        commit: crate::metrics::BUILD_COMMIT.to_string(),
        lab_url: cluster.lab_url.clone(),
        recovery: cluster.recovery.clone(),
    })
}
