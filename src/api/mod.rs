//! The HTTP side: REST API, board assets and operational endpoints.
//!
//! The api holds no state of its own. It checks the shape of input (4xx
//! before anything is proposed), turns requests into commands for the Raft
//! node, runs reads against the local MySQL after a ReadIndex round, and
//! maps every error to a status code in one place ([`error`]).

mod assets;
mod cluster;
pub mod cors;
pub mod error;
mod internal;
pub mod members;
mod request;
mod tasks;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{self, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use mysql_async::Pool;

use self::error::ApiError;
use crate::cluster::ClusterInfo;
use crate::raft::RaftHandle;

pub use cors::cors;
pub use request::{BODY_TIMEOUT, MAX_BODY};

/// What every handler can reach.
pub struct AppState {
    pub raft: RaftHandle,
    /// Read connections; the applier has its own pool for writes.
    pub pool: Pool,
    pub cluster: ClusterInfo,
    pub api_token: Option<String>,
    /// Set when the node is shutting down: `/readyz` fails first.
    pub draining: Arc<AtomicBool>,
    /// What peers prove to read `/internal/*`.
    pub peer_auth: crate::transport::auth::PeerAuth,
    /// Where the board's files come from, if not from the binary.
    pub static_dir: Option<std::path::PathBuf>,
    /// Committed rows the applier keeps in memory: reads by id start here.
    pub rows: crate::projection::ProjectionCache,
    /// Which browser pages may use this node.
    pub cors: cors::CorsPolicy,
}

/// Registers every route on an actix-web app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("query string: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("path: {e}")).into()),
    )
    .service(
        web::resource("/api/tasks")
            .route(web::get().to(tasks::list))
            .route(web::post().to(tasks::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/tasks/{id}")
            .route(web::get().to(tasks::get))
            .route(web::patch().to(tasks::update))
            .route(web::delete().to(tasks::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/tasks/{id}/events")
            .route(web::get().to(tasks::history))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/events")
            .route(web::get().to(cluster::events))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/cluster")
            .route(web::get().to(cluster::cluster))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/cluster/log")
            .route(web::get().to(cluster::recent_log))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/cluster/members")
            .route(web::post().to(members::add))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/cluster/members/{id}")
            .route(web::delete().to(members::remove))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/cluster/leader")
            .route(web::post().to(cluster::transfer_leader))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/internal/catchup")
            .route(web::get().to(internal::catchup))
            .default_service(web::to(method_not_allowed)),
    )
    .route("/ws", web::get().to(crate::ws::session::route))
    .route("/healthz", web::get().to(cluster::healthz))
    .route("/readyz", web::get().to(cluster::readyz))
    .route("/metrics", web::get().to(cluster::metrics))
    .route("/openapi.json", web::get().to(cluster::openapi))
    .default_service(web::to(fallback));
}

/// Headers every response carries: a strict CSP (no inline script, no
/// third-party origins except other nodes for failover, and http(s) images,
/// which descriptions may show), no sniffing.
pub fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; \
             connect-src 'self' http: https: ws: wss:; object-src 'none'; base-uri 'none'; \
             frame-ancestors 'none'; form-action 'self'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
}

/// Counts and times every request by route pattern (not raw path, so ids do
/// not explode the label set), and writes one access log line per request
/// (target `taskraft::access`: `RUST_LOG=info,taskraft::access=off` silences
/// it; with `log_format = "json"` it is one JSON object per line).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let response = next.call(req).await?;
    let elapsed = started.elapsed();
    let request = response.request();
    let method = request.method().as_str();
    // Unmatched paths (board assets, 404s) share one label value.
    let route = request.match_pattern();
    let route = route.as_deref().unwrap_or("other");
    let status = response.status().as_u16();
    let status_label = status.to_string();
    crate::metrics::HTTP_REQUESTS
        .with_label_values(&[method, route, &status_label])
        .inc();
    crate::metrics::HTTP_SECONDS
        .with_label_values(&[route, method, &status_label])
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "taskraft::access",
        method,
        path = request.path(),
        route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        remote = request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
        "request"
    );
    Ok(response)
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        req.method(),
        req.path()
    )))
}

/// Board assets for GET, a JSON 404 for everything else.
async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !req.path().starts_with("/api/") && (req.method() == "GET" || req.method() == "HEAD") {
        if let Some(response) = assets::serve(req.path(), state.static_dir.as_deref()) {
            return Ok(response);
        }
    }
    Err(ApiError::NotFound(format!(
        "no such resource: {} {}",
        req.method(),
        req.path()
    )))
}
