//! The cluster façade: this node's view of its cluster, for whoever needs
//! to describe it or act on it — the api (`/api/cluster`, readiness,
//! forwarding to the leader), the WebSocket hub (the `cluster` frame), the
//! join and promotion watchers.
//!
//! [`ClusterInfo`] holds the typed handles of the actors that know a piece
//! of the picture (the Raft node: roles, terms, indexes, membership; the
//! transport: which peers are reachable and where they serve; the applier:
//! its last error) and assembles a [`ClusterView`], the document
//! `/api/cluster` serves and other nodes read back when they join or look
//! for a leader. It owns no state of its own.
//!
//! Not here: changing the membership (the Raft node decides, the api takes
//! the requests) and the HTTP calls nodes make to each other.

mod role;
mod view;

use std::sync::Arc;

use crate::applier::ApplierHandle;
use crate::raft::{ConsensusError, RaftHandle};
use crate::transport::auth::ClusterId;
use crate::transport::TransportHandle;

pub use role::MemberRole;
pub use view::{ClusterView, MemberView};

/// Everything needed to describe the cluster as this node sees it.
#[derive(Clone)]
pub struct ClusterInfo {
    /// Shared with the transport, which may learn it from a peer.
    pub cluster_id: Arc<ClusterId>,
    pub raft: RaftHandle,
    pub transport: TransportHandle,
    pub applier: ApplierHandle,
    /// Where this node's HTTP API is reached, as the members know it.
    pub advertise_url: String,
    /// This node's Raft address as peers dial it (`raft_advertise_addr`).
    pub raft_addr: String,
    /// The demo lab's page, when this node runs under `taskraft demo --lab`.
    pub lab_url: Option<String>,
    /// The last `recover --force-new-cluster` this node's log went through.
    pub recovery: Option<crate::raft::Recovery>,
}

impl ClusterInfo {
    /// The cluster as this node sees it now. Only the Raft node's answer is
    /// needed; without the transport's or the applier's, members show as
    /// unreachable and no apply error is named.
    pub async fn view(&self) -> Result<ClusterView, ConsensusError> {
        view::assemble(self).await
    }
}
