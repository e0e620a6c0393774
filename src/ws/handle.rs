//! The typed front of the hub: what sessions and the server call.

use actix::prelude::*;
use mysql_async::Pool;

use super::hub::WsHub;
use super::{Join, Joined, Leave, SessionPort};
use crate::applier::ApplierHandle;
use crate::cluster::ClusterInfo;

/// Why the hub could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// Its mailbox is closed: the node is shutting down.
    #[error("the WebSocket hub has stopped")]
    Stopped,
}

/// How sessions and the server reach the hub.
#[derive(Clone)]
pub struct HubHandle {
    addr: Addr<WsHub>,
    /// What sessions check their credentials against.
    accounts: crate::accounts::AccountsCache,
    /// The catalog, as committed: who may see which board's events.
    rows: crate::projection::ProjectionCache,
}

impl HubHandle {
    /// Starts the hub: it subscribes to the applier's committed events,
    /// fills its memory with the last `backlog` events of the table, and
    /// follows the cluster's view and the accounts to tell sessions when
    /// they change.
    pub fn start(
        applier: ApplierHandle,
        pool: Pool,
        cluster: ClusterInfo,
        backlog: usize,
        accounts: crate::accounts::AccountsCache,
        rows: crate::projection::ProjectionCache,
    ) -> HubHandle {
        HubHandle {
            addr: WsHub::new(applier, pool, cluster, backlog, accounts.clone()).start(),
            accounts,
            rows,
        }
    }

    /// The committed rows and catalog (who sees which board).
    pub fn rows(&self) -> &crate::projection::ProjectionCache {
        &self.rows
    }

    /// Registers a session that has seen events up to `since` (`None`: it
    /// starts from now) and returns what it missed.
    pub async fn join(&self, since: Option<u64>, session: SessionPort) -> Result<Joined, HubError> {
        self.addr
            .send(Join { since, session })
            .await
            .map_err(|_| HubError::Stopped)
    }

    /// The accounts, as this node has applied them.
    pub fn accounts(&self) -> &crate::accounts::AccountsCache {
        &self.accounts
    }

    /// The session `id` has ended: stop feeding it.
    pub fn leave(&self, id: u64) {
        self.addr.do_send(Leave(id));
    }
}
