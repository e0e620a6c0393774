//! The operational endpoints: the event feed, the cluster view (assembled
//! by [`crate::cluster`]), leadership transfer, health, readiness, metrics
//! and the OpenAPI document.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use mysql_async::prelude::Queryable;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::request::{self, Consistency};
use super::tasks::read_barrier;
use super::AppState;

use crate::cluster::{ClusterInfo, MemberRole};
use crate::db::queries;

const FEED_LIMIT_DEFAULT: usize = 100;
const FEED_LIMIT_MAX: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
    #[serde(default)]
    consistency: Consistency,
}

pub async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = request::limit(query.limit, FEED_LIMIT_DEFAULT, FEED_LIMIT_MAX)?;
    read_barrier(&state, query.consistency).await?;
    let events = queries::events_since(&state.pool, query.since, limit).await?;
    // Read after the events: at least as high as the last of them.
    let last_seq = queries::last_seq(&state.pool).await?;
    // An event of a board the caller is not on: its seq alone, so the
    // feed stays dense and tells nothing of the board. The exception, as
    // on the WebSocket: the change of the caller's own membership (its
    // removal must reach them).
    let principal = super::auth::principal(&req);
    let catalog = state.rows.catalog();
    let events: Vec<serde_json::Value> = events
        .iter()
        .map(|event| match event.board_id() {
            // A notification is its user's alone.
            _ if event
                .recipient()
                .is_some_and(|user| user != principal.actor.id) =>
            {
                json!({ "seq": event.seq, "kind": "hidden" })
            }
            // A webhook's events are its board admins' alone.
            Some(board)
                if event.admins_only()
                    && catalog.role(&board, &principal.actor.id, principal.role)
                        != Some(crate::task::BoardRole::Admin) =>
            {
                json!({ "seq": event.seq, "kind": "hidden" })
            }
            Some(board)
                if catalog
                    .role(&board, &principal.actor.id, principal.role)
                    .is_none()
                    && event
                        .board_member
                        .as_ref()
                        .is_none_or(|m| m.user_id != principal.actor.id) =>
            {
                json!({ "seq": event.seq, "kind": "hidden" })
            }
            _ => json!(event),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events, "last_seq": last_seq })))
}

const LOG_LIMIT_DEFAULT: usize = 32;
const LOG_LIMIT_MAX: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    limit: Option<usize>,
}

/// The tail of this node's Raft log: index, term and kind of each entry
/// (not its content), with the node's commit and applied index. The lab
/// draws each node's log from this.
pub async fn recent_log(
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = request::limit(query.limit, LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX)?;
    Ok(HttpResponse::Ok().json(state.raft.recent_log(limit).await?))
}

pub async fn cluster(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.cluster.view().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    to: u64,
}

pub async fn transfer_leader(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let json = request::json_body(&req, payload).await?;
    let body: TransferBody = request::from_json(json.clone())?;
    let status = state.raft.status();
    if status.leader_id != status.node_id {
        // Only the leader can hand leadership over: ask it.
        return super::members::forward(
            &state.cluster,
            &req,
            "POST",
            "/api/cluster/leader",
            Some(json),
        )
        .await;
    }
    match state.raft.transfer_leader(body.to).await? {
        Ok(()) => Ok(HttpResponse::Accepted().json(json!({ "transferring_to": body.to }))),
        Err(refused) => Err(ApiError::Conflict {
            code: "cannot_transfer",
            message: refused.to_string(),
        }),
    }
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when this node knows a leader, its MySQL answers, its applier is
/// not stuck retrying, and it is not shutting down.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let problems = readiness_problems(&state).await;
    let raft = state.raft.status();
    crate::metrics::READY.set(i64::from(problems.is_empty()));
    let body = json!({
        "ready": problems.is_empty(),
        "node_id": raft.node_id,
        "role": raft.role,
        "leader_id": raft.leader_id,
        "problems": problems,
    });
    if problems.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}

/// Why this node cannot serve; empty when it can.
async fn readiness_problems(state: &AppState) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        problems.push("shutting down".into());
    }
    let raft = state.raft.status();
    if raft.leader_id == 0 {
        problems.push("no leader known".into());
    }
    let ping = async {
        let mut conn = state.pool.get_conn().await?;
        conn.query_drop("SELECT 1").await
    };
    // Kubernetes gives the probe 2 s; answer within it whatever MySQL does.
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("MySQL: {e}")),
        Err(_) => problems.push("MySQL did not answer within 1 s".into()),
    }
    if raft.leader_id != 0 && !own_url_recorded(&state.cluster).await {
        // Pages fail over only to members whose URL the others know.
        problems.push("this node's URL is not recorded in the membership yet".into());
    }
    if let Ok(applier) = state.cluster.applier.status().await {
        if let Some(error) = applier.failing {
            problems.push(format!("applier retrying: {error}"));
        }
        if let Some(stopped) = applier.stopped {
            problems.push(stopped);
        }
        if let Some(snapshot) = applier.catching_up_to {
            problems.push(format!(
                "copying committed rows from a peer: applied {} of the snapshot's {snapshot}",
                applier.applied_index
            ));
        }
    }
    problems
}

/// Whether the membership names this node's URL (always true for a
/// learner, whose URL its join recorded and which records a new one once
/// promoted).
async fn own_url_recorded(cluster: &ClusterInfo) -> bool {
    let Ok(status) = cluster.raft.cluster_status().await else {
        return true; // the readiness problem is elsewhere
    };
    let me = status.raft.node_id;
    status.members.iter().find(|m| m.id == me).is_none_or(|m| {
        MemberRole::of(m) != MemberRole::Voter
            || m.addr.as_ref().and_then(|a| a.url.as_deref()) == Some(&cluster.advertise_url)
    })
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Readiness as a series, so an alert sees what the probe sees.
    let ready = readiness_problems(&state).await.is_empty();
    crate::metrics::READY.set(i64::from(ready));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render())
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("openapi.json"))
}
