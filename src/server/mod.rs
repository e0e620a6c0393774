//! `taskraft serve`: one node, wired together.
//!
//! Start-up order matters, and [`serve`] reads as that order:
//! 1. MySQL ([`mysql`]): create and migrate if needed, lock the database to
//!    this node, read the applied index.
//! 2. The Raft log and who this node is ([`start`]): resume, bootstrap a
//!    new cluster, join a running one or rejoin it, decided as a value
//!    before anything is written; then reconcile the log's commit index
//!    with MySQL's applied index.
//! 3. Both listeners, bound before anything runs, so a taken port fails fast.
//! 4. The actors ([`wiring`]): applier, transport, Raft node, WebSocket hub.
//! 5. The HTTP server ([`http`]) last, and the join and removal watchers.
//!
//! Shutdown runs the other way ([`drain`]): fail `/readyz`, hand
//! leadership over, let HTTP requests in flight finish, let the applier
//! finish its batch, release the database, exit 0.

mod drain;
mod http;
mod mysql;
pub mod recover;
pub mod start;
mod wiring;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::{redact, Settings};
use crate::db;
use crate::join::{self, JoinError};
use crate::raft::LogStore;

use self::mysql::Database;
use self::start::StartError;

/// Why a node stopped before serving, or could not serve on.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Db(#[from] db::DbError),
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("another taskraft node is using the database in {url}; each node needs its own")]
    DatabaseInUse { url: String },
    #[error("{0}")]
    Log(#[from] crate::raft::LogError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("{0}")]
    Join(#[from] JoinError),
}

/// Runs a node until SIGTERM or SIGINT, or until the cluster removes it.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let node_id = settings.node_id;
    crate::metrics::init();
    tracing::info!(node = node_id, version = env!("CARGO_PKG_VERSION"), commit = crate::metrics::BUILD_COMMIT, mysql = %redact(&settings.mysql_url), data_dir = %settings.data_dir.display(), "starting");

    // Other nodes' https is trusted through the cluster CA.
    crate::peer_http::set_trust(settings.peer_tls.as_ref().map(|files| files.ca.clone()))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let database = Database::open(&settings).await?;
    std::fs::create_dir_all(&settings.data_dir)?;
    let store = LogStore::open(&settings.data_dir)?;
    let learner = start::begin(&store, &settings).await?;
    store.recover_commit(database.applied.applied_index)?;
    let conf = store.conf_state();
    start::require_secret(
        conf.voters.len() + conf.learners.len(),
        store.members().len(),
        !settings.cluster_secrets.is_empty(),
    )?;
    let cluster_id = start::cluster_id(&store)?;
    let recovery = store.recovery()?;
    if let Some(recovery) = &recovery {
        tracing::warn!(at = %recovery.at, previous_voters = ?recovery.previous_voters, previous_cluster_id = %recovery.previous_cluster_id, from_index = recovery.previous_last_index + 1, "this node's cluster was recovered with `recover --force-new-cluster`");
    }
    tracing::info!(cluster_id = %cluster_id.current(), forming = cluster_id.is_forming(), "cluster identity");

    let raft_listener = tokio::net::TcpListener::bind(settings.raft_addr).await?;
    let http_listener = std::net::TcpListener::bind(settings.http_addr)?;
    let metrics_listener = settings
        .metrics_addr
        .map(std::net::TcpListener::bind)
        .transpose()?;

    let node = wiring::start(
        &settings,
        store.clone(),
        database.applied.applied_index,
        raft_listener,
        cluster_id,
        &database.pool,
    )
    .await?;
    let draining = Arc::new(AtomicBool::new(false));
    let state = http::app_state(&settings, &node, &database.pool, draining.clone());
    let server = http::start(&settings, &node, state.clone(), http_listener)?;
    tracing::info!(node = node_id, http = %settings.http_addr, raft = %settings.raft_addr, url = %settings.advertise_url, "serving");
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let metrics_server = http::start_metrics(state, listener)?;
            tracing::info!(metrics = %addr, "serving /metrics, /healthz and /readyz without credentials");
            let handle = metrics_server.handle();
            actix::spawn(metrics_server);
            Some(handle)
        }
        None => None,
    };
    actix::spawn(crate::upgrade::run(
        node.raft.clone(),
        node.applier.clone(),
        recovery.map(|r| r.record()),
    ));
    actix::spawn(crate::retention::run(
        node.raft.clone(),
        settings.idempotency_retention,
        node.accounts.clone(),
    ));
    actix::spawn(crate::archiver::run(
        node.raft.clone(),
        database.pool.clone(),
        node.rows.clone(),
        settings.auto_archive_interval,
    ));
    actix::spawn(crate::reminders::run(
        node.raft.clone(),
        database.pool.clone(),
        node.accounts.clone(),
        settings.due_reminder_interval,
    ));
    actix::spawn(crate::webhooks::run(
        node.raft.clone(),
        database.pool.clone(),
        crate::webhooks::DeliverySettings {
            guard: crate::webhooks::Guard {
                allow_private: settings.webhook_allow_private,
            },
            retry_max: settings.webhook_retry_max,
        },
    ));

    if learner {
        actix::spawn(join::promote_when_caught_up(
            node.cluster.clone(),
            join::PeerCaller::new(&settings),
        ));
    }
    actix::spawn(join::watch_for_removal(
        node.cluster.clone(),
        store,
        join::PeerCaller::new(&settings),
    ));
    if !settings.auth {
        tracing::warn!(
            "auth = \"off\": anyone who reaches this node can read and change every task and \
             the cluster; use it only for local experiments"
        );
    }
    if let (true, Some((name, password))) = (settings.auth, settings.bootstrap_admin.clone()) {
        actix::spawn(crate::api::auth::bootstrap_admin(
            node.raft.clone(),
            node.applier.clone(),
            node.accounts.clone(),
            name,
            password,
        ));
    }
    drain::stop_on_signal_or_removal(node.raft.clone(), draining, server.handle());
    server.await?;
    if let Some(metrics_server) = metrics_server {
        metrics_server.stop(false).await;
    }

    drain::finish_applying(&node.applier).await;
    database.close().await;
    tracing::info!(node = node_id, "stopped");
    Ok(())
}

/// `taskraft migrate`: with `mysql_migrate_url` if set, else `mysql_url`.
pub async fn migrate_only(settings: &Settings) -> Result<usize, ServeError> {
    mysql::migrate_with(
        settings
            .mysql_migrate_url
            .as_deref()
            .unwrap_or(&settings.mysql_url),
    )
    .await
}
