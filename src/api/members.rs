//! `/api/cluster/members`: add a learner, promote it, remove a member.
//!
//! Any node takes these requests. The leader decides (one change at a
//! time) and answers once the change is applied; a follower forwards the
//! request to the leader over HTTP, credentials and all, and relays the
//! answer, so operators and joining nodes can talk to whichever node they
//! reach.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::request;
use super::AppState;
use crate::cluster::{ClusterInfo, MemberRole};
use crate::peer_http::call_with;
use crate::raft::membership::{MemberAddr, MembershipChange, MembershipError};

/// The body of `POST /api/cluster/members`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    pub id: u64,
    #[serde(default)]
    pub raft_addr: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    pub role: MemberRole,
}

impl From<MembershipError> for ApiError {
    fn from(e: MembershipError) -> Self {
        let conflict = |code| ApiError::Conflict {
            code,
            message: e.to_string(),
        };
        match &e {
            MembershipError::NotLeader { .. } => {
                ApiError::Consensus(crate::raft::ConsensusError::NoLeader)
            }
            MembershipError::Pending => conflict("membership_change_pending"),
            MembershipError::AlreadyMember { .. } => conflict("already_member"),
            MembershipError::NotLearner { .. } => conflict("not_a_learner"),
            MembershipError::RemoveLeader => conflict("leader_cannot_remove_itself"),
            MembershipError::LastVoter { .. } => conflict("last_voter"),
            MembershipError::NotMember { .. } => ApiError::NotFound(e.to_string()),
            MembershipError::Invalid(message) => ApiError::invalid("body", message.clone()),
            MembershipError::Consensus(inner) => ApiError::Consensus(inner.clone()),
        }
    }
}

/// The change a request asks for, checked for shape.
fn change_for(body: &MemberRequest, is_learner: bool) -> Result<MembershipChange, ApiError> {
    if body.id == 0 {
        return Err(ApiError::invalid("id", "must be a positive node id"));
    }
    match body.role {
        MemberRole::Learner => {
            let raft_addr = body
                .raft_addr
                .clone()
                .filter(|a| {
                    a.rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                })
                .ok_or_else(|| {
                    ApiError::invalid(
                        "raft_addr",
                        "a new member needs its Raft address, HOST:PORT",
                    )
                })?;
            if let Some(url) = &body.url {
                crate::config::check_http_url(url)
                    .map_err(|e| ApiError::invalid("url", e.to_string()))?;
            }
            if raft_addr.len() > 300 {
                return Err(ApiError::invalid("raft_addr", "is longer than 300 bytes"));
            }
            Ok(MembershipChange::AddLearner {
                id: body.id,
                addr: MemberAddr {
                    raft_addr,
                    url: body.url.clone(),
                },
            })
        }
        MemberRole::Voter if is_learner => Ok(MembershipChange::Promote { id: body.id }),
        MemberRole::Voter => Err(ApiError::Conflict {
            code: "not_a_learner",
            message: format!(
                "node {} is not a learner: add it as a learner first, and promote it once it has \
                 caught up (a joining node does this itself)",
                body.id
            ),
        }),
    }
}

pub async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let json = request::json_body(&req, payload).await?;
    let body: MemberRequest = request::from_json(json.clone())?;
    // A peer (proving the cluster secret, not an admin) may only add or
    // promote itself.
    if let crate::accounts::Via::Peer { node_id } = super::auth::principal(&req).via {
        if node_id != body.id {
            return Err(ApiError::Forbidden(format!(
                "node {node_id} may add or promote only itself, not node {}",
                body.id
            )));
        }
    }
    let status = state.cluster.raft.cluster_status().await?;
    if status.raft.leader_id != status.raft.node_id {
        return forward(
            &state.cluster,
            &req,
            "POST",
            "/api/cluster/members",
            Some(json),
        )
        .await;
    }
    let is_learner = status
        .members
        .iter()
        .any(|m| m.id == body.id && MemberRole::of(m) == MemberRole::Learner);
    let change = change_for(&body, is_learner)?;
    apply(&state.cluster, change, super::auth::principal(&req).actor).await
}

pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let status = state.cluster.raft.cluster_status().await?;
    if status.raft.leader_id != status.raft.node_id {
        return forward(
            &state.cluster,
            &req,
            "DELETE",
            &format!("/api/cluster/members/{id}"),
            None,
        )
        .await;
    }
    let actor = super::auth::principal(&req).actor;
    apply(&state.cluster, MembershipChange::Remove { id }, actor).await
}

async fn apply(
    cluster: &ClusterInfo,
    change: MembershipChange,
    actor: crate::accounts::Actor,
) -> Result<HttpResponse, ApiError> {
    match cluster.raft.change_membership(change, actor).await {
        Ok(_) => Ok(HttpResponse::Accepted().json(cluster.view().await?)),
        // Leadership moved between our check and the proposal: the client
        // retries, and lands on (or is forwarded to) the new leader.
        Err(MembershipError::NotLeader { .. }) => Err(ApiError::Consensus(
            crate::raft::ConsensusError::LeaderChanged,
        )),
        Err(e) => Err(e.into()),
    }
}

/// Relays a request to the leader and its answer back.
pub(super) async fn forward(
    cluster: &ClusterInfo,
    req: &HttpRequest,
    method: &'static str,
    path: &str,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    let view = cluster.view().await?;
    let Some(leader) = view.leader_url.filter(|_| view.leader_id.is_some()) else {
        return Err(ApiError::Consensus(crate::raft::ConsensusError::NoLeader));
    };
    let url = format!("{leader}{path}");
    // The caller's credentials, whichever they are: a bearer token, the
    // session cookie with its CSRF header, or a peer's signed headers.
    let headers: Vec<(String, String)> = [
        "authorization",
        "cookie",
        crate::accounts::access::CSRF_HEADER,
        "x-taskraft-node",
        "x-taskraft-peer-time",
        "x-taskraft-peer-proof",
    ]
    .into_iter()
    .filter_map(|name| {
        let value = req.headers().get(name)?.to_str().ok()?;
        Some((name.to_string(), value.to_string()))
    })
    .collect();
    let relayed =
        tokio::task::spawn_blocking(move || call_with(method, &url, &headers, body.as_ref()))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (status, body) = relayed.map_err(|e| ApiError::Storage(e.to_string()))?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .insert_header(("X-Taskraft-Forwarded-To", leader))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(role: MemberRole, raft_addr: Option<&str>) -> MemberRequest {
        MemberRequest {
            id: 4,
            raft_addr: raft_addr.map(str::to_string),
            url: Some("http://127.0.0.1:8084".into()),
            role,
        }
    }

    #[test]
    fn a_learner_needs_a_raft_address_and_a_voter_must_be_a_learner_first() {
        assert!(matches!(
            change_for(&request(MemberRole::Learner, Some("127.0.0.1:9084")), false),
            Ok(MembershipChange::AddLearner { id: 4, .. })
        ));
        assert!(matches!(
            change_for(&request(MemberRole::Learner, Some("no-port")), false),
            Err(ApiError::Invalid(_))
        ));
        assert!(matches!(
            change_for(&request(MemberRole::Voter, None), true),
            Ok(MembershipChange::Promote { id: 4 })
        ));
        assert!(matches!(
            change_for(&request(MemberRole::Voter, None), false),
            Err(ApiError::Conflict {
                code: "not_a_learner",
                ..
            })
        ));
    }
}
