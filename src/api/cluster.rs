//! The operational endpoints: the event feed, the cluster view, leadership
//! transfer, health, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::request::{self, Consistency};
use super::tasks::read_barrier;
use super::AppState;
use actix::Addr;

use crate::applier::{Applier, GetApplierStatus};
use crate::db::queries;
use crate::raft::{RaftHandle, Role};
use crate::transport::{Peers, Transport};

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
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(FEED_LIMIT_DEFAULT);
    if !(1..=FEED_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {FEED_LIMIT_MAX}"),
        ));
    }
    read_barrier(&state, query.consistency).await?;
    let events = queries::events_since(&state.pool, query.since, limit).await?;
    // Read after the events: at least as high as the last of them.
    let last_seq = queries::last_seq(&state.pool).await?;
    Ok(HttpResponse::Ok().json(json!({ "events": events, "last_seq": last_seq })))
}

/// One member as `/api/cluster` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberView {
    pub id: u64,
    pub raft_addr: Option<String>,
    pub url: Option<String>,
    /// `voter` or `learner`.
    pub role: String,
    /// Whether this node's link to it is up (always true for itself).
    pub reachable: bool,
    pub match_index: Option<u64>,
    pub is_leader: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterView {
    pub node_id: u64,
    /// The same on every member of one cluster.
    pub cluster_id: String,
    pub url: String,
    pub role: Role,
    pub term: u64,
    pub leader_id: Option<u64>,
    /// True once this node has been removed from the cluster.
    #[serde(default)]
    pub removed: bool,
    pub leader_url: Option<String>,
    pub commit_index: u64,
    pub applied_index: u64,
    /// The first entry this node's log holds: the ones before were
    /// compacted (they live on in MySQL; a snapshot stands for them).
    #[serde(default)]
    pub first_index: u64,
    pub last_index: u64,
    /// The applier's last error, while it retries a batch.
    pub apply_error: Option<String>,
    pub members: Vec<MemberView>,
    /// Whom this node voted for in its current term (0: nobody).
    #[serde(default)]
    pub vote: u64,
    /// This build's version and commit (see `taskraft_build_info`).
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub commit: String,
    /// `taskraft demo --lab`'s page, when the node runs under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_url: Option<String>,
}

impl ClusterView {
    /// What the board shows live: leader, term, roles, reachability and
    /// where each member serves (not the indexes, which move with every
    /// write).
    pub fn signature(&self) -> String {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                format!(
                    "{}:{}:{}:{}:{}",
                    m.id,
                    m.role,
                    m.reachable,
                    m.is_leader,
                    m.url.as_deref().unwrap_or("")
                )
            })
            .collect();
        format!(
            "{:?}/{}/{:?}/{}",
            self.leader_id,
            self.term,
            self.role,
            members.join(",")
        )
    }
}

/// Everything needed to describe the cluster as this node sees it.
#[derive(Clone)]
pub struct ClusterInfo {
    /// Shared with the transport, which may learn it from a peer.
    pub cluster_id: std::sync::Arc<crate::transport::auth::ClusterId>,
    pub raft: RaftHandle,
    pub transport: Addr<Transport>,
    pub applier: Addr<Applier>,
    pub advertise_url: String,
    /// This node's Raft address as peers dial it (`raft_advertise_addr`).
    pub raft_addr: String,
    /// The demo lab's page, when this node runs under `taskraft demo --lab`.
    pub lab_url: Option<String>,
}

impl ClusterInfo {
    pub async fn view(&self) -> Result<ClusterView, ApiError> {
        cluster_view(self).await
    }
}

async fn cluster_view(state: &ClusterInfo) -> Result<ClusterView, ApiError> {
    let status = state.raft.cluster_status().await?;
    let peers = state.transport.send(Peers).await.unwrap_or_default();
    let applier = state.applier.send(GetApplierStatus).await.ok();
    let me = status.raft.node_id;
    let members: Vec<MemberView> = status
        .members
        .iter()
        .map(|m| {
            let peer = peers.iter().find(|p| p.id == m.id);
            let recorded = m.addr.as_ref();
            MemberView {
                id: m.id,
                raft_addr: if m.id == me {
                    Some(state.raft_addr.clone())
                } else {
                    peer.map(|p| p.raft_addr.clone())
                        .or_else(|| recorded.map(|a| a.raft_addr.clone()))
                },
                // The log's record first: every member has one, whoever
                // dialed whom. A peer's hello covers a member recorded by
                // an older version, until its record lands.
                url: if m.id == me {
                    Some(state.advertise_url.clone())
                } else {
                    recorded
                        .and_then(|a| a.url.clone())
                        .or_else(|| peer.and_then(|p| p.url.clone()))
                },
                role: m.role.to_string(),
                reachable: m.id == me || peer.is_some_and(|p| p.reachable),
                match_index: m.match_index,
                is_leader: m.id == status.raft.leader_id,
            }
        })
        .collect();
    let leader_id = (status.raft.leader_id != 0).then_some(status.raft.leader_id);
    let leader_url = members
        .iter()
        .find(|m| Some(m.id) == leader_id)
        .and_then(|m| m.url.clone());
    Ok(ClusterView {
        node_id: me,
        cluster_id: state.cluster_id.current(),
        removed: status.raft.removed,
        url: state.advertise_url.clone(),
        role: status.raft.role,
        term: status.raft.term,
        leader_id,
        leader_url,
        commit_index: status.commit_index,
        applied_index: status.applied_index,
        first_index: status.first_index,
        last_index: status.last_index,
        apply_error: applier.and_then(|a| a.failing),
        members,
        vote: status.vote,
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: crate::metrics::BUILD_COMMIT.to_string(),
        lab_url: state.lab_url.clone(),
    })
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
    let limit = query.limit.unwrap_or(LOG_LIMIT_DEFAULT);
    if !(1..=LOG_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {LOG_LIMIT_MAX}"),
        ));
    }
    Ok(HttpResponse::Ok().json(state.raft.recent_log(limit).await?))
}

pub async fn cluster(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.cluster.view().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: u64,
}

pub async fn transfer_leader(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    request::authorize(state.api_token.as_deref(), &req)?;
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
        Err(message) => Err(ApiError::Conflict {
            code: "cannot_transfer",
            message,
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
    if let Ok(applier) = state.cluster.applier.send(GetApplierStatus).await {
        if let Some(error) = applier.failing {
            problems.push(format!("applier retrying: {error}"));
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
        m.role != "voter"
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
