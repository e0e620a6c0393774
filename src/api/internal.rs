//! Endpoints for peers, not clients.
//!
//! `GET /internal/catchup` serves a page of committed rows to a peer whose
//! log was replaced by a snapshot (see `applier::catchup`).
//! `POST /internal/presence` takes a peer's presence summary (who is
//! looking at which board there, see `crate::presence`). The peer names
//! itself and its cluster and proves, with an HMAC over the request (for
//! presence: over the body), that it knows the `cluster_secret` (as on the
//! Raft port). A node without a secret has no peers, and serves these to
//! nobody.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::request::body_bytes;
use super::AppState;
use crate::db::catchup::{read_page, PageRequest, PAGE_BYTES, PAGE_EVENTS};
use crate::db::DbError;
use crate::presence::gossip::{self, Rejected};
use crate::presence::MAX_SUMMARY_BYTES;
use crate::time::Timestamp;
use crate::transport::codec::Hello;

/// Who the request says it comes from (its proof not checked yet).
fn claimed_peer(req: &HttpRequest) -> Result<Hello, ApiError> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let node_id = header("x-taskraft-node")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ApiError::PeerRefused("only peers may use this (x-taskraft-node)".into()))?;
    Ok(Hello {
        node_id,
        url: String::new(),
        cluster_id: header("x-taskraft-cluster"),
        proof: header("x-taskraft-proof"),
        wire: None,
        version: None,
    })
}

pub async fn catchup(
    state: web::Data<AppState>,
    request: web::Query<PageRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let peer = claimed_peer(&req)?;
    state
        .peer_auth
        .check_only(&request.challenge(), &peer)
        .map_err(|refusal| ApiError::PeerRefused(refusal.to_string()))?;
    let request = request.into_inner();
    if request.upto < request.after_index {
        return Err(ApiError::BadRequest(
            "upto must not be below after_index".into(),
        ));
    }
    let mut conn = state.pool.get_conn().await.map_err(DbError::from)?;
    let page = read_page(&mut conn, request, PAGE_EVENTS, PAGE_BYTES).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn presence(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Refused before a byte of the body is read, when not a peer at all.
    let peer = claimed_peer(&req)?;
    if !state.peer_auth.has_secret() {
        return Err(ApiError::PeerRefused(
            "this node has no cluster_secret, and no peers".into(),
        ));
    }
    let body = body_bytes(&req, &mut payload, MAX_SUMMARY_BYTES).await?;
    let summary = gossip::check(&state.peer_auth, &peer, &body, Timestamp::now().millis())
        .map_err(|rejected| match rejected {
            Rejected::Refused(_) | Rejected::Untrusted(_) => {
                ApiError::PeerRefused(rejected.to_string())
            }
            Rejected::Malformed(_) => ApiError::BadRequest(rejected.to_string()),
        })?;
    state.presence.heard(summary);
    Ok(HttpResponse::NoContent().finish())
}
