//! The typed front of the Raft node: what the rest of the code calls.

use std::time::Duration;

use actix::prelude::*;
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::membership::{MemberAddr, MembershipChange, MembershipError};
use super::node::RaftNode;
use crate::task::{self, Command};

/// Why a request could not be settled through consensus. Every variant is
/// retryable; for a write, the outcome of the attempt is unknown except
/// where noted, so clients retry with the same `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// Nothing was proposed.
    #[error(
        "no leader is known: the cluster is electing one, or this node is cut off from a majority"
    )]
    NoLeader,
    #[error("the leader changed while the request was in flight; its outcome is unknown")]
    LeaderChanged,
    #[error("no answer within {0:?}; the outcome is unknown")]
    Timeout(Duration),
    /// Nothing was proposed.
    #[error("this node is applying committed entries too slowly to take more: {0}")]
    Overloaded(Overload),
    #[error("this node is shutting down")]
    ShuttingDown,
    /// Nothing was proposed: a voter runs a version that could not apply
    /// this kind of command (see [`crate::version`]).
    #[error("{0}")]
    ClusterTooOld(crate::version::TooOld),
}

/// How far behind this node's MySQL is when it refuses a write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Overload {
    #[error("{entries} committed entries are waiting to be applied")]
    Entries { entries: u64 },
    #[error(
        "{mib} MiB of committed entries are waiting to be applied to MySQL (limit {limit_mib} \
         MiB); retry shortly"
    )]
    Bytes { mib: usize, limit_mib: usize },
}

/// Why a leadership transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferRefused {
    #[error("node {node} is not the leader (the leader is {leader})")]
    NotLeader { node: u64, leader: u64 },
    #[error("node {0} is not a voter")]
    NotVoter(u64),
}

/// Propose a command; the reply comes when this node has applied it.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Propose {
    pub command: Command,
    pub reply: oneshot::Sender<Result<task::Applied, ConsensusError>>,
}

/// Wait until this node has applied everything committed when asked.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ReadBarrier {
    pub reply: oneshot::Sender<Result<(), ConsensusError>>,
}

/// From the applier: entries up to `index` are applied and committed in
/// MySQL; `outcomes` are those of requests that this node took.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Applied {
    pub index: u64,
    pub outcomes: Vec<(Uuid, task::Applied)>,
}

#[derive(Message)]
#[rtype(result = "ClusterStatus")]
pub(super) struct GetStatus;

/// The last entries of this node's log, for the lab's log strips.
#[derive(Message)]
#[rtype(result = "RecentLog")]
pub(super) struct GetRecentLog {
    pub limit: usize,
}

/// One entry as `/api/cluster/log` shows it: where it is and what kind,
/// not what it holds.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntryView {
    pub index: u64,
    pub term: u64,
    /// `command` (a client's write), `empty` (a new leader's no-op) or
    /// `membership` (a configuration change).
    pub kind: &'static str,
    pub bytes: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecentLog {
    pub node_id: u64,
    pub term: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Oldest first; at most the limit asked for, ending at `last_index`.
    pub entries: Vec<LogEntryView>,
}

/// The cluster no longer counts this node as a member (learned from a
/// member, since a removed node is not sent the entry that removed it).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct MarkRemoved;

/// Ask (the leader) for one membership change; answered once it is applied
/// on this node.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ChangeMembership {
    pub change: MembershipChange,
    /// Who asked: the change's event names them.
    pub actor: crate::accounts::Actor,
    pub reply: oneshot::Sender<Result<ClusterStatus, MembershipError>>,
}

#[derive(Message)]
#[rtype(result = "Result<(), TransferRefused>")]
pub(super) struct TransferLeader(pub u64);

/// Stop taking requests and hand leadership over; answered once handed over
/// or after the given time.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Shutdown {
    pub reply: oneshot::Sender<()>,
    pub within: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    PreCandidate,
}

impl From<raft::StateRole> for Role {
    fn from(role: raft::StateRole) -> Role {
        match role {
            raft::StateRole::Leader => Role::Leader,
            raft::StateRole::Follower => Role::Follower,
            raft::StateRole::Candidate => Role::Candidate,
            raft::StateRole::PreCandidate => Role::PreCandidate,
        }
    }
}

/// The node's Raft state, published whenever role, term or leader change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RaftStatus {
    pub node_id: u64,
    pub role: Role,
    pub term: u64,
    /// 0 when no leader is known.
    pub leader_id: u64,
    /// True once a committed membership change removed this node: it must
    /// stop serving.
    pub removed: bool,
}

/// A fuller picture, asked for on demand (`/api/cluster`).
#[derive(Clone, Debug, Serialize)]
pub struct ClusterStatus {
    #[serde(flatten)]
    pub raft: RaftStatus,
    pub commit_index: u64,
    /// Whom this node voted for in its current term (0: nobody).
    pub vote: u64,
    pub applied_index: u64,
    /// The first entry the log holds; entries before it were compacted.
    pub first_index: u64,
    pub last_index: u64,
    pub members: Vec<MemberStatus>,
    /// The lowest version among the voters, as this node knows them.
    #[serde(serialize_with = "crate::version::serialize_display")]
    pub cluster_version: crate::version::Version,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemberStatus {
    pub id: u64,
    /// `voter` or `learner`.
    pub role: &'static str,
    /// The leader's view of how much of its log the member holds; only a
    /// leader knows it.
    pub match_index: Option<u64>,
    /// Where it listens, as the log recorded it.
    pub addr: Option<MemberAddr>,
}

/// How the api and the server talk to the Raft node.
#[derive(Clone)]
pub struct RaftHandle {
    addr: Addr<RaftNode>,
    status: watch::Receiver<RaftStatus>,
    request_timeout: Duration,
}

impl RaftHandle {
    pub(super) fn new(
        addr: Addr<RaftNode>,
        status: watch::Receiver<RaftStatus>,
        request_timeout: Duration,
    ) -> RaftHandle {
        RaftHandle {
            addr,
            status,
            request_timeout,
        }
    }

    /// Replicates `command` and returns its outcome once this node applied it.
    pub async fn propose(&self, command: Command) -> Result<task::Applied, ConsensusError> {
        let (reply, answer) = oneshot::channel();
        self.addr
            .send(Propose { command, reply })
            .await
            .map_err(|_| ConsensusError::ShuttingDown)?;
        self.wait(answer).await
    }

    /// Returns once this node has applied every entry that was committed
    /// when it was called (ReadIndex): a read after it is linearizable.
    pub async fn read_barrier(&self) -> Result<(), ConsensusError> {
        let (reply, answer) = oneshot::channel();
        self.addr
            .send(ReadBarrier { reply })
            .await
            .map_err(|_| ConsensusError::ShuttingDown)?;
        self.wait(answer).await
    }

    async fn wait<T>(
        &self,
        answer: oneshot::Receiver<Result<T, ConsensusError>>,
    ) -> Result<T, ConsensusError> {
        // The node expires requests itself; this is the backstop should its
        // answer be lost, with a margin so the node's own verdict wins.
        let backstop = self.request_timeout + Duration::from_secs(1);
        match tokio::time::timeout(backstop, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ConsensusError::ShuttingDown),
            Err(_) => Err(ConsensusError::Timeout(self.request_timeout)),
        }
    }

    /// The last `limit` entries of this node's log, with its indexes.
    pub async fn recent_log(&self, limit: usize) -> Result<RecentLog, ConsensusError> {
        self.addr
            .send(GetRecentLog { limit })
            .await
            .map_err(|_| ConsensusError::ShuttingDown)
    }

    pub async fn cluster_status(&self) -> Result<ClusterStatus, ConsensusError> {
        self.addr
            .send(GetStatus)
            .await
            .map_err(|_| ConsensusError::ShuttingDown)
    }

    /// Asks this node (which must lead) for a membership change; returns
    /// the cluster as this node sees it once the change is applied here.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
        actor: crate::accounts::Actor,
    ) -> Result<ClusterStatus, MembershipError> {
        let (reply, answer) = oneshot::channel();
        self.addr
            .send(ChangeMembership {
                change,
                actor,
                reply,
            })
            .await
            .map_err(|_| ConsensusError::ShuttingDown)?;
        match tokio::time::timeout(self.request_timeout + Duration::from_secs(1), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ConsensusError::ShuttingDown.into()),
            Err(_) => Err(ConsensusError::Timeout(self.request_timeout).into()),
        }
    }

    /// Records that the cluster removed this node; it then stops serving.
    pub fn mark_removed(&self) {
        self.addr.do_send(MarkRemoved);
    }

    pub async fn transfer_leader(
        &self,
        to: u64,
    ) -> Result<Result<(), TransferRefused>, ConsensusError> {
        self.addr
            .send(TransferLeader(to))
            .await
            .map_err(|_| ConsensusError::ShuttingDown)
    }

    /// Stops taking requests and hands leadership to a peer if this node
    /// leads; returns once done, or after `within`.
    pub async fn shutdown(&self, within: Duration) {
        let (reply, done) = oneshot::channel();
        if self.addr.send(Shutdown { reply, within }).await.is_ok() {
            let _ = tokio::time::timeout(within + Duration::from_millis(200), done).await;
        }
    }

    pub fn status(&self) -> RaftStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every change of role, term or leader.
    pub fn watch(&self) -> watch::Receiver<RaftStatus> {
        self.status.clone()
    }

    pub fn applied_recipient(&self) -> Recipient<Applied> {
        self.addr.clone().recipient()
    }

    /// Where the transport delivers peer messages and link failures.
    pub fn inbox(&self) -> crate::raft::RaftInbox {
        crate::raft::RaftInbox {
            step: self.addr.clone().recipient(),
            unreachable: self.addr.clone().recipient(),
        }
    }
}
