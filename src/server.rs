//! `taskraft serve`: one node, wired together.
//!
//! Start-up order matters: MySQL first (create, migrate, lock, read the
//! applied index), then the Raft log (bootstrap a fresh one, reconcile the
//! commit index with MySQL), then the actors (applier, transport, Raft
//! node), and the HTTP server last. Shutdown runs the other way: fail
//! `/readyz`, hand leadership over, let HTTP requests in flight finish, let
//! the applier finish its batch, exit 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{middleware, web, App, HttpServer};
use mysql_async::prelude::Queryable;

use crate::api::cors::CorsPolicy;
use crate::api::{self, AppState, ClusterInfo};
use crate::applier::{Applier, Attach, CatchupSources, GetApplierStatus};
use crate::config::{redact, Settings};
use crate::connections::Limiter;
use crate::db::{self, migrate, rebuild::NodeLock};
use crate::join;
use crate::projection::ProjectionCache;
use crate::raft::membership::MemberAddr;
use crate::raft::{Compaction, LogStore, NodeConfig, RaftNode, TransportPorts};
use crate::transport::auth::{ClusterId, PeerAuth};
use crate::transport::codec::Hello;
use crate::transport::{AttachRaft, Transport};
use crate::ws::hub::WsHub;
use crate::ws::session::NodeId;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Db(#[from] db::DbError),
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("{0}")]
    Log(#[from] crate::raft::storage::LogError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
}

/// How long a leader waits for a successor when told to stop.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long in-flight HTTP requests may take to finish on shutdown.
const HTTP_DRAIN_SECS: u64 = 10;

/// Runs a node until SIGTERM or SIGINT.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let node_id = settings.node_id;
    crate::metrics::init();
    tracing::info!(node = node_id, version = env!("CARGO_PKG_VERSION"), commit = crate::metrics::BUILD_COMMIT, mysql = %redact(&settings.mysql_url), data_dir = %settings.data_dir.display(), "starting");

    // MySQL: the node's own database, migrated, and locked to this node.
    // Migrations run only when the schema lacks some, with the migration
    // account if one is configured: the node's own needs no DDL rights.
    if let Some(url) = &settings.mysql_migrate_url {
        migrate_with(url).await?;
    }
    let pool = db::connect(&settings.mysql_url, 32).await?;
    let mut conn = pool.get_conn().await?;
    if migrate::pending(&mut conn).await? > 0 {
        migrate::run(&mut conn).await?;
    }
    let applied = db::applied_state(&mut conn).await?;
    drop(conn);
    // Held for the life of the process on a connection outside the pool.
    let mut lock_conn = mysql_async::Conn::new(
        mysql_async::Opts::from_url(&settings.mysql_url).map_err(db::DbError::from)?,
    )
    .await?;
    if !NodeLock::acquire(&mut lock_conn).await? {
        return Err(ServeError::Refused(format!(
            "another taskraft node is using the database in {}; each node needs its own",
            redact(&settings.mysql_url)
        )));
    }

    // The Raft log, and who this node is.
    std::fs::create_dir_all(&settings.data_dir)?;
    let store = LogStore::open(&settings.data_dir)?;
    let mut learner = false;
    let own = MemberAddr {
        raft_addr: settings.raft_advertise_addr.clone(),
        url: Some(settings.advertise_url.clone()),
    };
    match store.identity() {
        Some(identity) if identity.node_id != node_id => {
            return Err(ServeError::Refused(format!(
                "the data_dir {} belongs to node {}, not {node_id}",
                settings.data_dir.display(),
                identity.node_id
            )));
        }
        Some(_) if store.is_removed() || was_removed(&store, node_id) => {
            if settings.join.is_empty() {
                return Err(ServeError::Refused(format!(
                    "node {node_id} was removed from its cluster; to bring it back, set `join` \
                     (it asks to be added as a learner again)"
                )));
            }
            tracing::info!("this node was removed earlier: asking to be added again");
            join::join(
                settings.join.clone(),
                node_id,
                own.clone(),
                settings.api_token.clone(),
            )
            .await
            .map_err(ServeError::Refused)?;
            store.clear_removed()?;
            learner = true;
        }
        Some(_) => {}
        None if store.is_fresh() => {
            let join_urls = if settings.join.is_empty() {
                match join::existing_cluster(
                    settings.peer_urls.clone(),
                    settings.advertise_url.clone(),
                    node_id,
                )
                .await
                {
                    join::Existing::None => Vec::new(),
                    join::Existing::Member(view) => {
                        return Err(ServeError::Refused(format!(
                            "a cluster is running (leader {:?}) and node {node_id} is one of its members, \
                             but this data_dir is empty: its data was lost. Remove the member first \
                             (DELETE /api/cluster/members/{node_id}); the node then joins as a new learner.",
                            view.leader_id
                        )));
                    }
                    join::Existing::NotMember(_) => settings.peer_urls.clone(),
                }
            } else {
                settings.join.clone()
            };
            if join_urls.is_empty() && !settings.peers.contains_key(&node_id) {
                return Err(ServeError::Refused(format!(
                    "this data_dir is empty and `peers` does not name this node ({node_id}): \
                     list every initial voter in `peers`, this one included, or set `join` to \
                     add this node to a running cluster"
                )));
            }
            if join_urls.is_empty() {
                tracing::info!(voters = ?settings.peers.keys().collect::<Vec<_>>(), "fresh data_dir: bootstrapping the initial cluster");
                store.bootstrap(node_id, &settings.peers, &settings.initial_cluster_token)?;
            } else {
                tracing::info!(through = ?join_urls, "fresh data_dir: joining the running cluster");
                let (identity, members) =
                    join::join(join_urls, node_id, own.clone(), settings.api_token.clone())
                        .await
                        .map_err(ServeError::Refused)?;
                store.set_identity(&identity, &members)?;
                learner = true;
            }
        }
        None => {
            return Err(ServeError::Refused(format!(
                "the data_dir {} holds a Raft log but no node identity; it was not written by this version",
                settings.data_dir.display()
            )));
        }
    }
    // Not a voter yet (a joiner, possibly restarted before promotion):
    // promote itself once caught up.
    learner = learner || !store.conf_state().voters.contains(&node_id);
    store
        .recover_commit(applied.applied_index)
        .map_err(ServeError::Refused)?;
    let conf = store.conf_state();
    let members = conf.voters.len() + conf.learners.len();
    if settings.cluster_secrets.is_empty() && (members > 1 || store.members().len() > 1) {
        return Err(ServeError::Refused(format!(
            "this node's cluster has {members} members, and a cluster of more than one node \
             needs `cluster_secret` (TASKRAFT_CLUSTER_SECRET) so that peers can tell each other \
             from strangers. Make one with `openssl rand -hex 32` and give the same value to \
             every node"
        )));
    }
    let identity = store.identity().ok_or_else(|| {
        ServeError::Refused("the Raft log has no node identity after start-up".into())
    })?;
    let id_store = store.clone();
    let cluster_id = ClusterId::new(
        identity.cluster_id,
        identity.forming,
        Box::new(move |id| id_store.adopt_cluster_id(id).map_err(|e| e.to_string())),
    );
    tracing::info!(cluster_id = %cluster_id.current(), forming = cluster_id.is_forming(), "cluster identity");

    // Bind both listeners before anything runs, so a taken port fails fast.
    let raft_listener = tokio::net::TcpListener::bind(settings.raft_addr).await?;
    let http_listener = std::net::TcpListener::bind(settings.http_addr)?;

    // The actors.
    let apply_pool = db::connect(&settings.mysql_url, 2).await?;
    let rows = ProjectionCache::default();
    let applier = Applier::new(
        node_id,
        apply_pool,
        store.clone(),
        applied.applied_index,
        rows.clone(),
    )
    .start();
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
    };
    let auth = PeerAuth::new(cluster_id.clone(), settings.cluster_secrets.clone());
    let transport = Transport::new(hello, peers, raft_listener, auth.clone()).start();
    let ports = TransportPorts {
        send: transport.clone().recipient(),
        set_peer: transport.clone().recipient(),
        remove_peer: transport.clone().recipient(),
    };
    let removal_store = store.clone();
    let raft = RaftNode::start(
        NodeConfig {
            id: node_id,
            own: own.clone(),
            election_tick: settings.election_tick,
            heartbeat_tick: settings.heartbeat_tick,
            tick: settings.tick(),
            applied: applied.applied_index,
            request_timeout: settings.request_timeout,
            compaction: Compaction {
                snapshot_count: settings.snapshot_count,
                catchup_entries: settings.snapshot_catchup_entries,
            },
        },
        store,
        ports,
        applier.clone().recipient(),
    )?;
    transport.do_send(AttachRaft(raft.inbox()));
    applier.do_send(Attach {
        raft: raft.applied_recipient(),
        sources: CatchupSources {
            node_id,
            auth: auth.clone(),
            transport: transport.clone().recipient(),
            status: raft.watch(),
        },
    });

    // HTTP.
    let draining = Arc::new(AtomicBool::new(false));
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
    };
    let cluster_for_promotion = cluster.clone();
    let hub = web::Data::new(
        WsHub::new(
            applier.clone(),
            pool.clone(),
            cluster.clone(),
            settings.ws_backlog,
        )
        .start(),
    );
    let node = web::Data::new(NodeId(node_id));
    let state = web::Data::new(AppState {
        raft: raft.clone(),
        pool: pool.clone(),
        cluster,
        api_token: settings.api_token.clone(),
        draining: draining.clone(),
        peer_auth: auth,
        static_dir: settings.static_dir.clone(),
        rows,
        cors: CorsPolicy::new(settings.cors_origins.clone(), &settings.advertise_url),
    });
    let limiter = Limiter::new(
        "http",
        settings.max_connections,
        settings.max_connections_per_address,
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(hub.clone())
            .app_data(node.clone())
            .wrap(middleware::from_fn(api::cors))
            .wrap(middleware::from_fn(api::observe))
            .wrap(api::security_headers())
            .configure(api::routes)
    })
    .workers(settings.http_workers)
    // Time limits: the request head within HEADER_TIMEOUT (else 408), an
    // idle keep-alive connection closed after IDLE_TIMEOUT; bodies have
    // theirs where they are read (`api::request::BODY_TIMEOUT`).
    .client_request_timeout(HEADER_TIMEOUT)
    .keep_alive(IDLE_TIMEOUT)
    .client_disconnect_timeout(Duration::from_secs(1))
    // A second cap under ours: actix counts per worker.
    .max_connections(settings.max_connections / settings.http_workers + 1)
    .on_connect(move |connection, extensions| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            admit(&limiter, tcp, extensions);
        }
    })
    .disable_signals()
    .shutdown_timeout(HTTP_DRAIN_SECS)
    .listen(http_listener)?
    .run();
    let http = server.handle();
    tracing::info!(node = node_id, http = %settings.http_addr, raft = %settings.raft_addr, url = %settings.advertise_url, "serving");

    if learner {
        actix::spawn(join::promote_when_caught_up(
            cluster_for_promotion.clone(),
            settings.api_token.clone(),
        ));
    }
    actix::spawn(join::watch_for_removal(
        cluster_for_promotion,
        removal_store,
    ));

    // Shutdown on a signal, or when a membership change removed this node.
    let mut status = raft.watch();
    let stopper = async move {
        tokio::select! {
            _ = wait_for_signal() => tracing::info!("signal received: shutting down"),
            _ = status.wait_for(|s| s.removed) => tracing::info!("removed from the cluster: shutting down"),
        }
        draining.store(true, Ordering::Relaxed);
        raft.shutdown(HANDOVER_TIMEOUT).await;
        http.stop(true).await;
    };
    actix::spawn(stopper);
    server.await?;

    // Let the applier finish what is committed, briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match applier.send(GetApplierStatus).await {
            Ok(status)
                if status.applied_index < status.committed_index && status.failing.is_none() =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => break,
        }
    }
    let _ = NodeLock::release(&mut lock_conn).await;
    let _ = lock_conn.disconnect().await;
    pool.disconnect().await.ok();
    tracing::info!(node = node_id, "stopped");
    Ok(())
}

/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a keep-alive connection may sit between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long data we sent may stay unacknowledged (a client that stopped
/// reading, or vanished) before the kernel drops the connection.
const UNACKED_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs as each HTTP connection is accepted: over a cap, it is shut down
/// before a byte is read (and counted); otherwise its permit lives in the
/// connection's extensions, dropped when the connection ends.
fn admit(
    limiter: &Limiter,
    tcp: &actix_web::rt::net::TcpStream,
    extensions: &mut actix_web::dev::Extensions,
) {
    use std::os::fd::AsRawFd;
    let fd = tcp.as_raw_fd();
    let admitted = tcp
        .peer_addr()
        .map_err(|_| ())
        .and_then(|peer| limiter.admit(peer.ip()).map_err(|_| ()));
    match admitted {
        Ok(permit) => {
            extensions.insert(std::rc::Rc::new(permit));
        }
        Err(()) => {
            // SAFETY: `fd` is this connection's open socket, owned by the
            // server for the duration of this call; shutdown does not close
            // it, it makes the server's next read see the end.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            return;
        }
    }
    // Small responses and WebSocket frames go out at once, not after the
    // client's delayed ACK (Nagle held live events back by ~10-40 ms).
    let _ = tcp.set_nodelay(true);
    let millis = UNACKED_TIMEOUT.as_millis() as libc::c_uint;
    // SAFETY: a plain setsockopt on the open socket with a correctly sized value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&millis as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        );
    }
}

/// Whether a committed membership change removed this node earlier.
fn was_removed(store: &LogStore, node_id: u64) -> bool {
    let conf = store.conf_state();
    store.conf_index() > 0
        && !conf.voters.contains(&node_id)
        && !conf.learners.contains(&node_id)
        && !store.members().contains_key(&node_id)
        && !conf.voters.is_empty()
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `taskraft migrate`: with `mysql_migrate_url` if set, else `mysql_url`.
pub async fn migrate_only(settings: &Settings) -> Result<usize, ServeError> {
    migrate_with(
        settings
            .mysql_migrate_url
            .as_deref()
            .unwrap_or(&settings.mysql_url),
    )
    .await
}

/// Creates the database in `url` if missing and applies the migrations it lacks.
async fn migrate_with(url: &str) -> Result<usize, ServeError> {
    let pool = db::connect(url, 1).await?;
    let mut conn = pool.get_conn().await?;
    let applied = if migrate::pending(&mut conn).await? > 0 {
        migrate::run(&mut conn).await?
    } else {
        0
    };
    conn.query_drop("SELECT 1").await?;
    drop(conn);
    pool.disconnect().await?;
    Ok(applied)
}
