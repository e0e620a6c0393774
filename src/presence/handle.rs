//! The typed front of the presence hub: what sessions and the api call.

use actix::prelude::*;

use super::gossip::Gossip;
use super::hub::{Heard, Look, Port, PresenceHub};
use super::{Looking, PresenceFrame, Summary};
use crate::accounts::Role;
use crate::cluster::ClusterInfo;
use crate::projection::ProjectionCache;
use crate::transport::auth::PeerAuth;

/// How sessions and the api reach the presence hub. Every call is a
/// notification: presence is best effort, and nobody waits for it.
#[derive(Clone)]
pub struct PresenceHandle {
    addr: Addr<PresenceHub>,
}

impl PresenceHandle {
    /// Starts the hub of node `node_id`, which checks boards against
    /// `rows`' catalog, finds its peers through `cluster` and proves its
    /// summaries with `auth`.
    pub fn start(
        node_id: u64,
        rows: ProjectionCache,
        cluster: ClusterInfo,
        auth: PeerAuth,
    ) -> PresenceHandle {
        let gossip = Gossip::new(node_id, auth);
        PresenceHandle {
            addr: PresenceHub::new(node_id, rows, cluster, gossip).start(),
        }
    }

    /// Session `session` (of a user with site role `site`, already checked
    /// to be on the board) looks at `looking`; its frames go to `frames`.
    pub fn look(
        &self,
        session: u64,
        looking: Looking,
        site: Role,
        frames: Recipient<PresenceFrame>,
    ) {
        self.addr.do_send(Look {
            session,
            looking: Some((looking, Port { frames, site })),
        });
    }

    /// Session `session` looks at no board any more: it left it, or ended.
    pub fn look_away(&self, session: u64) {
        self.addr.do_send(Look {
            session,
            looking: None,
        });
    }

    /// A peer's summary, its proof checked.
    pub fn heard(&self, summary: Summary) {
        self.addr.do_send(Heard(summary));
    }
}
