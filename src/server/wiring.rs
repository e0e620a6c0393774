//! The actors of one node, started and connected: the applier, the
//! transport, the Raft node, then the WebSocket hub and the presence hub,
//! and the cluster façade over them.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::Pool;
use tokio::net::TcpListener;

use super::ServeError;
use crate::applier::{Applier, ApplierHandle, CatchupSources};
use crate::cluster::ClusterInfo;
use crate::config::Settings;
use crate::db;
use crate::presence::PresenceHandle;
use crate::projection::ProjectionCache;
use crate::raft::membership::MemberAddr;
use crate::raft::{Compaction, LogStore, NodeConfig, RaftHandle, RaftNode, TransportPorts};
use crate::transport::auth::{ClusterId, PeerAuth};
use crate::transport::codec::Hello;
use crate::transport::TransportHandle;
use crate::ws::HubHandle;

/// The running actors, as the HTTP server and the watchers reach them.
pub struct Node {
    pub raft: RaftHandle,
    pub applier: ApplierHandle,
    pub cluster: ClusterInfo,
    pub hub: HubHandle,
    /// Who is looking at which board, on this node and its peers.
    pub presence: PresenceHandle,
    /// What peers prove, on the Raft port and on `/internal/*`.
    pub auth: PeerAuth,
    /// Committed rows the applier keeps in memory for reads by id.
    pub rows: ProjectionCache,
    /// Every account, as committed: what credentials are checked against.
    pub accounts: crate::accounts::AccountsCache,
}

/// Starts the actors over `store` (which MySQL has applied up to
/// `applied_index`) and connects them to each other.
pub async fn start(
    settings: &Settings,
    store: LogStore,
    applied_index: u64,
    raft_listener: TcpListener,
    cluster_id: Arc<ClusterId>,
    pool: &Pool,
) -> Result<Node, ServeError> {
    let node_id = settings.node_id;
    let recovery = store.recovery()?;
    let apply_pool = db::connect(&settings.mysql_url, 2).await?;
    let rows = ProjectionCache::default();
    let accounts = crate::accounts::AccountsCache::default();
    let applier = ApplierHandle::start(Applier::new(
        node_id,
        apply_pool,
        crate::raft::CommittedLog::new(store.clone()),
        applied_index,
        rows.clone(),
        accounts.clone(),
        settings.apply_gather,
    ));
    // Peers: the members as the log recorded them (the initial voters, or
    // what this node was told when it joined).
    let peers: HashMap<u64, String> = store
        .members()
        .into_iter()
        .map(|(id, addr)| (id, addr.raft_addr))
        .collect();
    let hello = Hello {
        node_id,
        url: settings.advertise_url.clone(),
        cluster_id: None,
        proof: None,
        wire: None,
        version: Some(crate::version::announced()),
    };
    let versions = crate::version::PeerVersions::default();
    let auth = PeerAuth::new(cluster_id.clone(), settings.cluster_secrets.clone());
    let tls = settings
        .peer_tls
        .clone()
        .map(crate::tls::PeerTls::new)
        .transpose()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let transport = TransportHandle::start(
        hello,
        peers,
        raft_listener,
        auth.clone(),
        tls,
        versions.clone(),
    );
    let ports = TransportPorts {
        send: transport.send_recipient(),
        set_peer: transport.set_peer_recipient(),
        remove_peer: transport.remove_peer_recipient(),
    };
    let raft = RaftNode::start(
        NodeConfig {
            id: node_id,
            own: MemberAddr {
                raft_addr: settings.raft_advertise_addr.clone(),
                url: Some(settings.advertise_url.clone()),
            },
            election_tick: settings.election_tick,
            heartbeat_tick: settings.heartbeat_tick,
            tick: settings.tick(),
            applied: applied_index,
            request_timeout: settings.request_timeout,
            compaction: Compaction {
                snapshot_count: settings.snapshot_count,
                catchup_entries: settings.snapshot_catchup_entries,
            },
            versions,
        },
        store,
        ports,
        applier.committed_recipient(),
    )?;
    transport.attach_raft(raft.inbox());
    applier.attach(
        raft.applied_recipient(),
        CatchupSources {
            node_id,
            auth: auth.clone(),
            transport: transport.clone(),
            status: raft.watch(),
        },
    );
    let cluster = ClusterInfo {
        cluster_id,
        raft: raft.clone(),
        transport,
        applier: applier.clone(),
        advertise_url: settings.advertise_url.clone(),
        // How peers dial this node (what `/api/cluster` lists and a joining
        // node records), not the address it binds (`0.0.0.0:…` in a pod).
        raft_addr: settings.raft_advertise_addr.clone(),
        lab_url: settings.lab_url.clone(),
        recovery,
    };
    let hub = HubHandle::start(
        applier.clone(),
        pool.clone(),
        cluster.clone(),
        settings.ws_backlog,
        accounts.clone(),
        rows.clone(),
    );
    let presence = PresenceHandle::start(node_id, rows.clone(), cluster.clone(), auth.clone());
    Ok(Node {
        raft,
        applier,
        cluster,
        hub,
        presence,
        auth,
        rows,
        accounts,
    })
}
