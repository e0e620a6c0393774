//! The HTTP server of one node: the api's routes and the WebSocket over
//! the node's actors, with caps on connections and time limits on each.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use mysql_async::Pool;

use super::drain::HTTP_DRAIN_SECS;
use super::wiring::Node;
use crate::api::{self, cors::CorsPolicy, AppState};
use crate::config::Settings;
use crate::connections::Limiter;
use crate::ws::session::NodeId;

/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a keep-alive connection may sit between requests.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long data we sent may stay unacknowledged (a client that stopped
/// reading, or vanished) before the kernel drops the connection.
const UNACKED_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts serving the api, the board and the WebSocket on `listener`.
pub fn start(
    settings: &Settings,
    node: &Node,
    state: web::Data<AppState>,
    listener: std::net::TcpListener,
) -> std::io::Result<Server> {
    let hub = web::Data::new(node.hub.clone());
    let node_id = web::Data::new(NodeId(settings.node_id));
    let throttle = web::Data::new(api::auth::LoginThrottle::default());
    let limiter = Limiter::new(
        "http",
        settings.max_connections,
        settings.max_connections_per_address,
    );
    let tls = settings
        .tls
        .as_ref()
        .map(|files| crate::tls::http_server_config(&files.cert, &files.key))
        .transpose()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(hub.clone())
            .app_data(node_id.clone())
            .app_data(throttle.clone())
            .wrap(middleware::from_fn(api::auth::guard))
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
        } else if let Some(tls) = connection.downcast_ref::<TlsStream>() {
            // Under TLS this runs after the handshake (bounded by actix's
            // TLS handshake timeout, 3 s).
            admit(&limiter, tls.get_ref().0, extensions);
        }
    })
    .disable_signals()
    .shutdown_timeout(HTTP_DRAIN_SECS);
    let server = match tls {
        // New handshakes pick up a replaced certificate (crate::tls).
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// What every handler reaches, shared by the main listener and the
/// metrics listener. `draining` is set when the node begins to stop, and
/// `/readyz` fails from then on.
pub fn app_state(
    settings: &Settings,
    node: &Node,
    pool: &Pool,
    draining: Arc<AtomicBool>,
) -> web::Data<AppState> {
    web::Data::new(AppState {
        raft: node.raft.clone(),
        pool: pool.clone(),
        cluster: node.cluster.clone(),
        api_token: settings.api_token.clone(),
        draining,
        peer_auth: node.auth.clone(),
        static_dir: settings.static_dir.clone(),
        rows: node.rows.clone(),
        cors: CorsPolicy::new(settings.cors_origins.clone(), &settings.advertise_url),
        auth: settings.auth,
        accounts: node.accounts.clone(),
        auth_proxy: settings.auth_proxy.clone(),
        oidc: settings
            .oidc
            .clone()
            .map(|oidc| Arc::new(api::oidc::Oidc::new(oidc, &settings.cluster_secrets))),
        presence: node.presence.clone(),
        jobs: crate::import::Jobs::default(),
        webhook_allow_private: settings.webhook_allow_private,
        planner: crate::db::search::Planner::new(crate::db::search::Sizes::DEFAULT),
    })
}

/// Connections the metrics listener takes at once: a few scrapers.
const METRICS_CONNECTIONS: usize = 64;

/// Starts the `metrics_addr` listener: `/metrics`, `/healthz` and
/// `/readyz` only, in plain HTTP and without credentials (what Prometheus
/// in the pod network scrapes); anything else is a JSON 404. It carries
/// nothing a client could change, and no task, user or session data.
pub fn start_metrics(
    state: web::Data<AppState>,
    listener: std::net::TcpListener,
) -> std::io::Result<Server> {
    let limiter = Limiter::new("metrics", METRICS_CONNECTIONS, METRICS_CONNECTIONS);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::from_fn(api::observe))
            .wrap(api::security_headers())
            .configure(api::metrics_routes)
    })
    .workers(1)
    .client_request_timeout(HEADER_TIMEOUT)
    .keep_alive(IDLE_TIMEOUT)
    .client_disconnect_timeout(Duration::from_secs(1))
    .max_connections(METRICS_CONNECTIONS)
    .on_connect(move |connection, extensions| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            admit(&limiter, tcp, extensions);
        }
    })
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?;
    Ok(server.run())
}

/// What an HTTPS connection is, as `on_connect` sees it.
type TlsStream = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;

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
    // No peer address (the client is already gone) admits nobody either.
    let permit = tcp
        .peer_addr()
        .ok()
        .and_then(|peer| limiter.admit(peer.ip()).ok());
    let Some(permit) = permit else {
        // SAFETY: `fd` is this connection's open socket, owned by the
        // server for the duration of this call; shutdown does not close
        // it, it makes the server's next read see the end.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        return;
    };
    extensions.insert(std::rc::Rc::new(permit));
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
