//! Which peers a node copies committed rows from, in the order it asks
//! them: the leader first, then peers whose link is up, then the rest.

use tokio::sync::watch;

use crate::raft::membership::Members;
use crate::raft::{CommittedLog, RaftStatus};
use crate::transport::auth::PeerAuth;
use crate::transport::{PeerInfo, TransportHandle};

/// The peers a node can copy committed rows from, and what it proves to
/// them that it is a member.
#[derive(Clone)]
pub struct CatchupSources {
    pub node_id: u64,
    pub auth: PeerAuth,
    pub transport: TransportHandle,
    pub status: watch::Receiver<RaftStatus>,
}

impl CatchupSources {
    /// The peers' URLs, in the order to ask them.
    pub(super) async fn urls(&self, log: &CommittedLog) -> Vec<String> {
        let leader = self.status.borrow().leader_id;
        // No answer: the node is stopping; the members the log recorded remain.
        let known = self.transport.peers().await.unwrap_or_default();
        order(self.node_id, leader, known, &log.members())
    }
}

/// The URLs of `known` peers (from the transport, which learns a peer's
/// URL once it says hello) and of `members` (from the log, which records
/// those of members that joined), without this node and without repeats:
/// the leader first, then reachable peers, then by id.
pub(super) fn order(
    node_id: u64,
    leader: u64,
    mut known: Vec<PeerInfo>,
    members: &Members,
) -> Vec<String> {
    for (id, addr) in members {
        if let Some(url) = &addr.url {
            if !known.iter().any(|p| p.id == *id && p.url.is_some()) {
                known.push(PeerInfo {
                    id: *id,
                    raft_addr: addr.raft_addr.clone(),
                    url: Some(url.clone()),
                    reachable: false,
                });
            }
        }
    }
    known.retain(|p| p.id != node_id && p.url.is_some());
    known.sort_by_key(|p| (p.id != leader, !p.reachable, p.id));
    let mut urls: Vec<String> = Vec::new();
    for url in known.into_iter().filter_map(|p| p.url) {
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}
