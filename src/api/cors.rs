//! Which web pages may use this node from a browser (CORS).
//!
//! No wildcard. A request with an `Origin` is allowed when that origin is
//! the node itself as the browser reached it (`Origin` naming the `Host`
//! the request was sent to), the URL of a member of the cluster (so a board
//! served by one node fails over to the others), or listed in
//! `cors_origins`. Anything else: a preflight gets 403, and so does every
//! request that could change something (any method but GET and HEAD) and
//! every WebSocket upgrade, before a handler runs; a plain GET is answered
//! without `Access-Control-Allow-Origin`, so the page cannot read it.
//! Requests without an `Origin` (curl, peers, same-origin navigation) are
//! not a browser page's, and are left alone.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};

use super::error::ApiError;
use super::AppState;
use crate::cluster::ClusterInfo;
use crate::config::origin_of;

/// How long the members' origins are remembered between two lookups.
const MEMBERS_FOR: Duration = Duration::from_secs(2);

/// The allowed origins of one node.
pub struct CorsPolicy {
    /// From `cors_origins`.
    configured: Vec<String>,
    /// This node's own `advertise_url` origin.
    own: Option<String>,
    /// The members' origins, and when they were looked up.
    members: Mutex<Option<(Instant, HashSet<String>)>>,
}

impl CorsPolicy {
    pub fn new(configured: Vec<String>, advertise_url: &str) -> CorsPolicy {
        CorsPolicy {
            configured,
            own: origin_of(advertise_url),
            members: Mutex::new(None),
        }
    }

    /// Whether a page of `origin` may use this node; `host` is the `Host`
    /// the request was sent to.
    pub async fn allows(&self, origin: &str, host: Option<&str>, cluster: &ClusterInfo) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if origin == "null" {
            return false;
        }
        let same_host = host.is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority == host.trim().to_ascii_lowercase())
        });
        if same_host
            || self.own.as_deref() == Some(origin.as_str())
            || self.configured.contains(&origin)
        {
            return true;
        }
        self.member_origins(cluster).await.contains(&origin)
    }

    async fn member_origins(&self, cluster: &ClusterInfo) -> HashSet<String> {
        let cached = self
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((at, origins)) = cached {
            if at.elapsed() < MEMBERS_FOR {
                return origins;
            }
        }
        let origins: HashSet<String> = match cluster.view().await {
            Ok(view) => view
                .members
                .iter()
                .filter_map(|m| m.url.as_deref())
                .filter_map(origin_of)
                .collect(),
            Err(_) => HashSet::new(),
        };
        *self.members.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), origins.clone()));
        origins
    }
}

/// The middleware: answers preflights, refuses what a foreign page must not
/// do, and lets allowed pages read the answers.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null").to_string())
    else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let allowed = match req.app_data::<web::Data<AppState>>() {
        Some(state) => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            state.cors.allows(&origin, host, &state.cluster).await
        }
        None => false,
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let refused = || {
        ApiError::OriginNotAllowed(format!(
            "pages of {:.100} may not use this node (cors_origins lists who may)",
            origin
        ))
        .error_response()
    };
    if preflight {
        let response = if allowed {
            HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                .insert_header((header::VARY, "Origin"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET, POST, PATCH, DELETE, OPTIONS",
                ))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "Content-Type, If-Match, Idempotency-Key, Authorization, X-Taskraft-CSRF",
                ))
                // The session cookie goes along to the other members (the
                // board's failover) and to `cors_origins`, never elsewhere.
                .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .finish()
        } else {
            refused()
        };
        return Ok(req.into_response(response).map_into_right_body());
    }
    let reads = req.method() == Method::GET || req.method() == Method::HEAD;
    if !allowed && (!reads || req.path() == "/ws") {
        return Ok(req.into_response(refused()).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    if allowed {
        if let Ok(value) = header::HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
        // Allowed origins are named one by one (never `*`), so a page of
        // another member may send the session cookie when it fails over.
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::HeaderValue::from_static(
                "ETag, Location, Retry-After, X-Taskraft-Seq, Idempotent-Replayed",
            ),
        );
    }
    Ok(response.map_into_left_body())
}
