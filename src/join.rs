//! Joining a running cluster, and never bootstrapping over one.
//!
//! A node with an empty data directory either bootstraps a new cluster (it
//! is one of the initial voters and no cluster exists yet) or joins one: it
//! asks any member to add it as a learner, is sent the whole log, and
//! promotes itself to voter once it has caught up. It never comes back as a
//! voter with an empty log under an id the cluster still counts on: that
//! node could vote twice in one term and elect two leaders. Which of these
//! a node does is decided in `server::start`; this module makes the calls.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{ClusterInfo, ClusterView, MemberRole};
use crate::peer_http::call_with;
use crate::transport::auth::{ClusterId, PeerAuth};

/// How this node proves itself to another node's api (with `auth = "on"`,
/// `/api/cluster` and `POST /api/cluster/members` need it): headers
/// signed with the cluster secret ([`PeerAuth::sign_request`]), and the
/// `api_token` service token too when one is configured.
#[derive(Clone, Debug)]
pub struct PeerCaller {
    node_id: u64,
    auth: PeerAuth,
    api_token: Option<String>,
}

impl PeerCaller {
    pub fn new(settings: &crate::config::Settings) -> PeerCaller {
        PeerCaller {
            node_id: settings.node_id,
            // Signed requests name no cluster id (a joining node has none).
            auth: PeerAuth::new(ClusterId::fixed(""), settings.cluster_secrets.clone()),
            api_token: settings.api_token.clone(),
        }
    }

    fn headers(&self, method: &str, path: &str) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .auth
            .sign_request(self.node_id, method, path)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        if let Some(token) = &self.api_token {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        headers
    }

    fn call(
        &self,
        method: &str,
        url: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, String), crate::peer_http::PeerHttpError> {
        call_with(
            method,
            &format!("{url}{path}"),
            &self.headers(method, path),
            body,
        )
    }
}
use crate::raft::membership::{Identity, MemberAddr, Members};

/// How long a node keeps asking to join before giving up (and exiting, so
/// that a supervisor restarts it).
const JOIN_FOR: Duration = Duration::from_secs(300);

/// What the node learns about an existing cluster before starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// No other member answers with a cluster that has made progress.
    None,
    /// A cluster exists (led by `leader_id`, if it has a leader); this id
    /// is still one of its members.
    Member { leader_id: Option<u64> },
    /// A cluster exists; this id is not a member.
    NotMember,
}

/// Why a node could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The member answered, and the answer will not change by asking again.
    #[error("{url} refused to add node {node_id}: {status} {body}")]
    Refused {
        url: String,
        node_id: u64,
        status: u16,
        body: String,
    },
    #[error(
        "node {node_id} is already a member of the cluster at {url}, but this data \
         directory is empty: its data was lost. Remove the member first \
         (DELETE /api/cluster/members/{node_id}), then start this node again."
    )]
    AlreadyMember { url: String, node_id: u64 },
    /// A 202 whose body is not the cluster view it should be.
    #[error("{url}: {source}")]
    BadAnswer {
        url: String,
        source: serde_json::Error,
    },
    #[error("could not join within {:?}: {last}", JOIN_FOR)]
    GaveUp { last: Attempt },
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What the last try to join got, named when giving up.
#[derive(Debug)]
pub enum Attempt {
    NoAnswerYet,
    /// An answer worth trying again (the member is not the leader's, the
    /// cluster is electing, a change is pending).
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// No HTTP answer at all, as the peer client describes it.
    Unreachable(String),
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::NoAnswerYet => f.write_str("no member answered"),
            Attempt::Status { url, status, body } => write!(f, "{url}: {status} {body}"),
            Attempt::Unreachable(error) => f.write_str(error),
        }
    }
}

fn get_view(caller: &PeerCaller, url: &str) -> Option<ClusterView> {
    let (status, body) = caller.call("GET", url, "/api/cluster", None).ok()?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// Asks the other initial members whether a cluster already runs.
pub async fn existing_cluster(
    peer_urls: Vec<String>,
    own_url: String,
    node_id: u64,
    caller: PeerCaller,
) -> Existing {
    let views = tokio::task::spawn_blocking(move || {
        peer_urls
            .iter()
            .filter(|url| **url != own_url)
            .filter_map(|url| get_view(&caller, url))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    // A cluster that has elected a leader or committed past its bootstrap
    // entries exists; fresh peers starting alongside us do not count.
    let running = views
        .into_iter()
        .find(|v| v.leader_id.is_some() || v.commit_index > v.members.len() as u64);
    match running {
        None => Existing::None,
        Some(view) if view.lists(node_id) => Existing::Member {
            leader_id: view.leader_id,
        },
        Some(_) => Existing::NotMember,
    }
}

/// Asks the members at `urls`, in turn and with backoff, to add this node as
/// a learner; returns the identity and the members it was given.
pub async fn join(
    urls: Vec<String>,
    node_id: u64,
    addr: MemberAddr,
    caller: PeerCaller,
) -> Result<(Identity, Members), JoinError> {
    let deadline = Instant::now() + JOIN_FOR;
    let mut delay = Duration::from_millis(200);
    let mut last = Attempt::NoAnswerYet;
    loop {
        for url in &urls {
            let body = json!({ "id": node_id, "raft_addr": addr.raft_addr, "url": addr.url, "role": MemberRole::Learner });
            let (caller, target) = (caller.clone(), url.clone());
            let answer = tokio::task::spawn_blocking(move || {
                caller.call("POST", &target, "/api/cluster/members", Some(&body))
            })
            .await?;
            match answer {
                Ok((202, body)) => {
                    let view: ClusterView =
                        serde_json::from_str(&body).map_err(|source| JoinError::BadAnswer {
                            url: url.clone(),
                            source,
                        })?;
                    return Ok(joined(node_id, view));
                }
                Ok((status, body)) if status == 401 || status == 400 || status == 404 => {
                    return Err(JoinError::Refused {
                        url: url.clone(),
                        node_id,
                        status,
                        body,
                    });
                }
                Ok((409, body)) if body.contains("already_member") => {
                    return Err(JoinError::AlreadyMember {
                        url: url.clone(),
                        node_id,
                    });
                }
                Ok((status, body)) => {
                    last = Attempt::Status {
                        url: url.clone(),
                        status,
                        body,
                    }
                }
                Err(e) => last = Attempt::Unreachable(e.to_string()),
            }
        }
        if Instant::now() > deadline {
            return Err(JoinError::GaveUp { last });
        }
        tracing::info!(error = %last, retry_in = ?delay, "join not accepted yet");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn joined(node_id: u64, view: ClusterView) -> (Identity, Members) {
    let members = view
        .members
        .iter()
        .filter_map(|m| {
            Some((
                m.id,
                MemberAddr {
                    raft_addr: m.raft_addr.clone()?,
                    url: m.url.clone(),
                },
            ))
        })
        .collect();
    let mut identity = Identity::joined(node_id, view.cluster_id);
    // The leader answers once it applied this node's admission.
    identity.admitted_at = view.commit_index;
    (identity, members)
}

/// Watches for this node's removal. The leader stops sending to a member it
/// removes, so the member may never apply its own removal; instead, a node
/// that has had no leader for a while asks the other members, and if one
/// that has a leader no longer lists it, it was removed: it stops.
pub async fn watch_for_removal(
    cluster: ClusterInfo,
    store: crate::raft::LogStore,
    caller: PeerCaller,
) {
    let node_id = cluster.raft.status().node_id;
    let mut leaderless = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = cluster.raft.status();
        if status.removed {
            return;
        }
        if status.leader_id != 0 {
            leaderless = 0;
            continue;
        }
        leaderless += 1;
        if leaderless < 3 {
            continue;
        }
        let urls: Vec<String> = store
            .members()
            .into_iter()
            .filter(|(id, _)| *id != node_id)
            .filter_map(|(_, addr)| addr.url)
            .collect();
        let caller = caller.clone();
        let views = tokio::task::spawn_blocking(move || {
            urls.iter()
                .filter_map(|u| get_view(&caller, u))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let dropped = views
            .iter()
            .any(|v| v.leader_id.is_some() && !v.lists(node_id));
        if dropped {
            tracing::warn!(
                node = node_id,
                "the cluster no longer lists this node as a member"
            );
            cluster.raft.mark_removed();
            return;
        }
    }
}

/// Whether a learner has applied what the leader told it is committed, or
/// all but what it may be gathering into its next batch: nobody waits on a
/// learner, so under steady writes it applies every few milliseconds
/// (`crate::applier::GATHER_ENTRIES`) and is seldom level at the instant
/// it looks.
fn caught_up(applied: u64, committed: u64) -> bool {
    committed > 0 && applied + crate::applier::GATHER_ENTRIES >= committed
}

/// Promotes this node from learner to voter once it has caught up with the
/// leader's commit index. Runs until it is a voter (or removed).
pub async fn promote_when_caught_up(cluster: ClusterInfo, caller: PeerCaller) {
    let node_id = cluster.raft.status().node_id;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(view) = cluster.view().await else {
            continue;
        };
        if view.removed {
            return;
        }
        let Some(me) = view.members.iter().find(|m| m.id == node_id) else {
            continue;
        };
        if me.role == MemberRole::Voter {
            tracing::info!(node = node_id, "this node is a voter");
            return;
        }
        let Some(leader) = view.leader_url.clone() else {
            continue;
        };
        if !(view.leader_id.is_some() && caught_up(view.applied_index, view.commit_index)) {
            continue;
        }
        let body = json!({ "id": node_id, "role": MemberRole::Voter });
        let caller = caller.clone();
        let answer = tokio::task::spawn_blocking(move || {
            caller.call("POST", &leader, "/api/cluster/members", Some(&body))
        })
        .await;
        match answer {
            Ok(Ok((202, _))) => tracing::info!(node = node_id, "promoted to voter"),
            Ok(Ok((status, body))) => {
                tracing::info!(status, body = %body, "promotion not accepted yet")
            }
            Ok(Err(e)) => tracing::info!(error = %e, "promotion request failed"),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::caught_up;

    #[test]
    fn a_learner_is_caught_up_when_at_most_one_gathered_batch_behind() {
        assert!(!caught_up(0, 0), "nothing committed yet: no leader heard");
        assert!(caught_up(500, 500));
        assert!(caught_up(436, 500));
        assert!(!caught_up(435, 500));
        assert!(!caught_up(10, 100_000), "a snapshot or pages behind");
    }
}
