//! Endpoints for peers, not clients.
//!
//! `GET /internal/catchup` serves a page of committed rows to a peer whose
//! log was replaced by a snapshot (see `applier::catchup`). The peer names
//! itself and its cluster and proves, with an HMAC over the request, that
//! it knows the `cluster_secret` (as on the Raft port). A node without a
//! secret has no peers, and serves this to nobody.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::AppState;
use crate::db::catchup::{read_page, PageRequest, PAGE_BYTES, PAGE_EVENTS};
use crate::db::DbError;
use crate::transport::codec::Hello;

pub async fn catchup(
    state: web::Data<AppState>,
    request: web::Query<PageRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let node_id = header("x-taskraft-node")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            ApiError::PeerRefused("only peers may read this (x-taskraft-node)".into())
        })?;
    let peer = Hello {
        node_id,
        url: String::new(),
        cluster_id: header("x-taskraft-cluster"),
        proof: header("x-taskraft-proof"),
        wire: None,
        version: None,
    };
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
