//! The HTTP side: REST API, board assets and operational endpoints.
//!
//! The api holds no state of its own. It checks the shape of input (4xx
//! before anything is proposed), turns requests into commands for the Raft
//! node, runs reads against the local MySQL after a ReadIndex round, and
//! maps every error to a status code in one place ([`error`]). Every route
//! is declared once, in [`ROUTES`]; the app is built from that table and the
//! hand-kept `openapi.json` is tested against it (`openapi/`).

mod assets;
pub mod auth;
mod backup;
mod boards;
mod checklists;
mod cluster;
mod comments;
pub mod cors;
pub mod error;
mod export;
mod import;
mod internal;
pub mod members;
mod notifications;
pub mod oidc;
#[cfg(test)]
mod openapi;
mod request;
mod tasks;
mod webhooks;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{self, Next};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use mysql_async::Pool;

use self::error::ApiError;
pub use crate::accounts::Access;
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
    /// `auth = "on"`: routes need a session or a token ([`auth::guard`]).
    pub auth: bool,
    /// Every account, as this node has applied them.
    pub accounts: crate::accounts::AccountsCache,
    /// `auth_proxy_header` from `auth_proxy_trusted` addresses, if set.
    pub auth_proxy: Option<crate::accounts::proxy::ProxyAuth>,
    /// OpenID Connect sign-on, if configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// Who is looking at which board: peers' summaries go there, and the
    /// WebSocket sessions' announcements.
    pub presence: crate::presence::PresenceHandle,
    /// Board imports this node runs or ran.
    pub jobs: crate::import::Jobs,
    /// `webhook_allow_private`: a new webhook may name a local address.
    pub webhook_allow_private: bool,
    /// How common the words searched lately are (`db::search::Planner`).
    pub planner: crate::db::search::Planner,
}

/// One route: a method on a path and the handler that serves it.
struct Route {
    method: Method,
    /// An actix-web pattern; `{name}` is a path parameter.
    path: &'static str,
    /// The handler as an actix route (each handler is its own type, so each
    /// row builds its own).
    to: fn() -> actix_web::Route,
    /// Who may use it, with `auth = "on"` ([`auth::guard`]).
    access: Access,
    /// What the handler reads from a request, for the OpenAPI tests.
    #[cfg(test)]
    shape: fn() -> openapi::Shape,
}

/// `METHOD "/path" => handler`, and `body: Type` when the handler reads a
/// JSON body (handlers read bodies themselves, so their signature does not
/// say which).
macro_rules! route {
    ($access:ident $method:ident $path:literal => $handler:path $(, body: $body:ty)?) => {
        Route {
            method: Method::$method,
            path: $path,
            to: || web::to($handler),
            access: Access::$access,
            #[cfg(test)]
            shape: || openapi::Shape::of(&$handler)$(.body::<$body>())?,
        }
    };
}

/// Every route this node serves, declared once: [`routes`] registers them
/// and the tests in `openapi/` hold `openapi.json` to them (every route,
/// method, parameter and body documented, nothing documented that is not
/// served). The board's files are not routes: [`fallback`] serves them.
#[rustfmt::skip]
static ROUTES: &[Route] = &[
    route!(SignedIn       GET    "/api/tasks"                => tasks::list),
    route!(Member         POST   "/api/tasks"                => tasks::create, body: tasks::CreateBody),
    route!(SignedIn       GET    "/api/tasks/{id}"           => tasks::get),
    route!(Member         PATCH  "/api/tasks/{id}"           => tasks::update, body: crate::task::TaskPatch),
    route!(Member         DELETE "/api/tasks/{id}"           => tasks::delete),
    route!(SignedIn       GET    "/api/tasks/{id}/events"    => tasks::history),
    route!(SignedIn       GET    "/api/tasks/{id}/comments"  => comments::list),
    route!(Member         POST   "/api/tasks/{id}/comments"  => comments::create, body: comments::CommentBody),
    route!(Member         PATCH  "/api/comments/{id}"        => comments::update, body: comments::CommentBody),
    route!(Member         DELETE "/api/comments/{id}"        => comments::delete),
    route!(SignedIn       GET    "/api/tasks/{id}/checklists" => checklists::list),
    route!(Member         POST   "/api/tasks/{id}/checklists" => checklists::create, body: checklists::TitleBody),
    route!(Member         PATCH  "/api/checklists/{id}"      => checklists::rename, body: checklists::TitleBody),
    route!(Member         DELETE "/api/checklists/{id}"      => checklists::delete),
    route!(Member         POST   "/api/checklists/{id}/items" => checklists::add_item, body: checklists::ItemBody),
    route!(Member         PATCH  "/api/checklist-items/{id}" => checklists::update_item, body: checklists::ItemPatch),
    route!(Member         DELETE "/api/checklist-items/{id}" => checklists::delete_item),
    route!(Member         POST   "/api/checklist-items/{id}/card" => checklists::make_card),
    route!(SignedIn       GET    "/api/notifications"        => notifications::list),
    route!(SignedIn       POST   "/api/notifications/read"   => notifications::read, body: notifications::ReadBody),
    route!(SignedIn       GET    "/api/search"               => tasks::search),
    route!(SignedIn       GET    "/api/boards"               => boards::list),
    route!(Member         POST   "/api/boards"               => boards::create, body: boards::NewBoardBody),
    // Before /api/boards/{id}, which would take `import` for an id.
    route!(Member         POST   "/api/boards/import"        => import::import),
    route!(SignedIn       GET    "/api/boards/{id}"          => boards::get),
    route!(Member         PATCH  "/api/boards/{id}"          => boards::update, body: boards::BoardPatchBody),
    route!(Member         PUT    "/api/boards/{id}/members/{user_id}" => boards::put_member, body: boards::MemberBody),
    route!(Member         DELETE "/api/boards/{id}/members/{user_id}" => boards::delete_member),
    route!(Member         POST   "/api/boards/{id}/columns"  => boards::create_column, body: boards::NewColumnBody),
    route!(SignedIn       GET    "/api/boards/{id}/tasks"    => boards::tasks),
    route!(SignedIn       GET    "/api/boards/{id}/activity" => boards::activity),
    route!(SignedIn       GET    "/api/boards/{id}/export"   => export::export),
    route!(Member         POST   "/api/boards/{id}/webhooks" => webhooks::create, body: webhooks::NewWebhookBody),
    route!(SignedIn       GET    "/api/boards/{id}/webhooks" => webhooks::list),
    route!(Member         DELETE "/api/boards/{id}/webhooks/{webhook_id}" => webhooks::delete),
    route!(SignedIn       GET    "/api/boards/{id}/webhooks/{webhook_id}/deliveries" => webhooks::deliveries),
    route!(SignedIn       GET    "/api/jobs/{id}"            => import::job),
    route!(Member         PATCH  "/api/columns/{id}"         => boards::update_column, body: boards::ColumnPatchBody),
    route!(Member         DELETE "/api/columns/{id}"         => boards::delete_column),
    route!(SignedIn       GET    "/api/events"               => cluster::events),
    route!(Open           POST   "/api/session"              => auth::login, body: auth::LoginBody),
    route!(Open           GET    "/auth/oidc"                => oidc::offered),
    route!(Open           GET    "/auth/oidc/login"          => oidc::login),
    route!(Open           GET    "/auth/oidc/callback"       => oidc::callback),
    route!(SignedIn       GET    "/api/session"              => auth::session),
    route!(SignedIn       DELETE "/api/session"              => auth::logout),
    route!(SignedIn       GET    "/api/users"                => auth::users),
    route!(Admin          POST   "/api/users"                => auth::create_user, body: auth::NewUserBody),
    route!(SignedIn       PATCH  "/api/users/{id}"           => auth::update_user, body: auth::UserPatchBody),
    route!(SignedIn       POST   "/api/tokens"               => auth::create_token, body: auth::NewTokenBody),
    route!(SignedIn       GET    "/api/tokens"               => auth::tokens),
    route!(SignedIn       DELETE "/api/tokens/{id}"          => auth::revoke_token),
    route!(SignedInOrPeer GET    "/api/cluster"              => cluster::cluster),
    route!(SignedIn       GET    "/api/cluster/log"          => cluster::recent_log),
    route!(AdminOrPeer    POST   "/api/cluster/members"      => members::add, body: members::MemberRequest),
    route!(Admin          DELETE "/api/cluster/members/{id}" => members::remove),
    route!(Admin          POST   "/api/cluster/leader"       => cluster::transfer_leader, body: cluster::TransferBody),
    route!(Admin          GET    "/api/admin/backup"         => backup::backup),
    route!(Internal       GET    "/internal/catchup"         => internal::catchup),
    route!(Internal       POST   "/internal/presence"        => internal::presence, body: crate::presence::Summary),
    route!(SignedIn       GET    "/ws"                       => crate::ws::session::route),
    route!(Open           GET    "/healthz"                  => cluster::healthz),
    route!(Open           GET    "/readyz"                   => cluster::readyz),
    route!(SignedIn       GET    "/metrics"                  => cluster::metrics),
    route!(Open           GET    "/openapi.json"             => cluster::openapi),
];

/// Whether `path` is one of `pattern`'s: the same segments, where a
/// `{name}` segment stands for any non-empty segment. This is what
/// actix-web's `ResourceDef` matches with a regular expression; the guard
/// and the metrics look up every request's route, so they do it without
/// one (actix-web's matcher, then regex-lite, was 7 % of the leader's
/// samples serving reads).
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// The first route with this method and path.
fn route_of(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|route| route.method == method && path_matches(route.path, path))
}

/// The pattern of the resource actix-web serves `path` from (the first
/// route with that path, whatever its method), if any.
fn pattern_of(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|route| path_matches(route.path, path))
        .map(|route| route.path)
}

/// Every route's method, path and access, for the tests that hold the
/// access matrix to the route list (`tests/auth.rs`).
pub fn route_table() -> Vec<(&'static str, &'static str, Access)> {
    ROUTES
        .iter()
        .map(|r| (r.method.as_str(), r.path, r.access))
        .collect()
}

/// Whether another method on a route's path is a 405 error. The API's
/// paths say so; at the root (`/ws`, `/healthz`, ...) the request goes on to
/// [`fallback`] like any path that is not a route: a board asset for GET,
/// a 404 otherwise.
fn refuses_other_methods(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/internal/")
}

/// Registers every route on an actix-web app: one resource per path of
/// [`ROUTES`], with its methods.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("query string: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("path: {e}")).into()),
    );
    for (i, first) in ROUTES.iter().enumerate() {
        if ROUTES[..i].iter().any(|r| r.path == first.path) {
            continue; // registered with the path's first route
        }
        let on_path = || ROUTES.iter().filter(|r| r.path == first.path);
        let mut resource = web::resource(first.path);
        for route in on_path() {
            resource = resource.route((route.to)().method(route.method.clone()));
        }
        resource = if refuses_other_methods(first.path) {
            resource.default_service(web::to(method_not_allowed))
        } else {
            let methods = on_path()
                .skip(1)
                .fold(guard::Any(guard::Method(first.method.clone())), |any, r| {
                    any.or(guard::Method(r.method.clone()))
                });
            resource.guard(methods)
        };
        cfg.service(resource);
    }
    cfg.default_service(web::to(fallback));
}

/// The routes of the `metrics_addr` listener: metrics, liveness and
/// readiness, open (no auth middleware runs there); anything else 404.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(cluster::metrics))
        .route("/healthz", web::get().to(cluster::healthz))
        .route("/readyz", web::get().to(cluster::readyz))
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such resource on the metrics listener: {} {}",
        req.method(),
        req.path()
    )))
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
    let route = pattern_of(request.path()).unwrap_or("other");
    let status = response.status().as_u16();
    let status_label = status.to_string();
    crate::metrics::HTTP_REQUESTS
        .with_label_values(&[method, route, &status_label])
        .inc();
    crate::metrics::HTTP_SECONDS
        .with_label_values(&[route, method, &status_label])
        .observe(elapsed.as_secs_f64());
    macro_rules! access {
        ($level:expr) => {
            tracing::event!(
                target: "taskraft::access",
                $level,
                method,
                path = request.path(),
                route,
                status,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                remote = request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
                "request"
            )
        };
    }
    // Peers share presence every second: logged only at debug, unless refused.
    if route == "/internal/presence" && status < 400 {
        access!(tracing::Level::DEBUG);
    } else {
        access!(tracing::Level::INFO);
    }
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
        let revalidating = req
            .headers()
            .get(actix_web::http::header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        if let Some(response) = assets::serve(req.path(), state.static_dir.as_deref(), revalidating)
        {
            return Ok(response);
        }
    }
    Err(ApiError::NotFound(format!(
        "no such resource: {} {}",
        req.method(),
        req.path()
    )))
}

#[cfg(test)]
mod route_tests {
    use actix_web::dev::ResourceDef;

    use super::*;

    /// Paths near every route's pattern: itself with values, and the ways a
    /// path can miss it (a segment more or less, an empty value, a trailing
    /// slash, another word).
    fn paths_near(pattern: &str) -> Vec<String> {
        let filled = |value: &str| {
            pattern
                .split('/')
                .map(|s| if s.starts_with('{') { value } else { s })
                .collect::<Vec<_>>()
                .join("/")
        };
        let mut paths = vec![
            filled("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            filled("x"),
            filled("%2F"),
            filled("import"),
            filled(""),
            format!("{}/", filled("7")),
            format!("{}/more", filled("7")),
            filled("7")
                .rsplit_once('/')
                .map_or(String::new(), |(head, _)| head.to_string()),
            filled("7").replacen("api", "apx", 1),
            format!("/{}", filled("7")),
        ];
        paths.push(pattern.to_string());
        paths
    }

    #[test]
    fn a_path_matches_a_route_exactly_when_actix_web_matches_it() {
        let mut checked = 0;
        for route in ROUTES {
            for other in ROUTES {
                let def = ResourceDef::new(other.path);
                for path in paths_near(route.path) {
                    assert_eq!(
                        path_matches(other.path, &path),
                        def.is_match(&path),
                        "`{path}` against `{}`",
                        other.path
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1_000, "{checked}");
    }

    #[test]
    fn a_request_finds_its_route_by_method_and_path_and_its_resource_by_path() {
        let get = route_of(&Method::GET, "/api/tasks/7").unwrap();
        assert_eq!(
            (get.path, get.access),
            ("/api/tasks/{id}", Access::SignedIn)
        );
        let delete = route_of(&Method::DELETE, "/api/tasks/7").unwrap();
        assert_eq!(delete.access, Access::Member);
        // `import` is its own route before `/api/boards/{id}`.
        let import = route_of(&Method::POST, "/api/boards/import").unwrap();
        assert_eq!(import.path, "/api/boards/import");
        assert!(route_of(&Method::PUT, "/api/tasks/7").is_none());
        assert!(route_of(&Method::GET, "/board.js").is_none());
        // Metrics name the resource, as actix-web picks it: by path.
        assert_eq!(pattern_of("/api/tasks/7"), Some("/api/tasks/{id}"));
        assert_eq!(pattern_of("/api/boards/import"), Some("/api/boards/import"));
        assert_eq!(pattern_of("/board.js"), None);
    }
}
