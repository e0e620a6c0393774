//! The typed front of the Raft node: what the rest of the code calls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::{FutureExt, Shared};
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
    reads: ReadBatch,
}

/// One ReadIndex answer, awaited by every read that shares it.
type SharedAnswer = Shared<oneshot::Receiver<Result<(), ConsensusError>>>;

/// Reads that arrive together share one request to the node (as they share
/// one ReadIndex round there). The first read opens a batch and asks the
/// node once the tasks already woken on its thread have run; until then,
/// reads from any thread join it. Each joined before the node was asked,
/// so the read index, taken after, covers every write acknowledged before
/// any of them began. One message to the node and one answer per batch,
/// not per read: each was a wake-up of another thread.
#[derive(Clone, Default)]
struct ReadBatch {
    /// The batch not yet asked for, if any.
    open: Arc<Mutex<Option<SharedAnswer>>>,
}

impl ReadBatch {
    /// The answer of the open batch, or of a new one that `ask` sends
    /// (with the sender its answer comes on) after a yield. Must run on an
    /// actix (or tokio local) runtime.
    fn join(
        &self,
        ask: impl FnOnce(oneshot::Sender<Result<(), ConsensusError>>) + 'static,
    ) -> SharedAnswer {
        let mut open = self.open.lock().expect("read batch lock");
        if let Some(answer) = &*open {
            return answer.clone();
        }
        let (reply, answer) = oneshot::channel();
        let answer = answer.shared();
        *open = Some(answer.clone());
        let batch = self.open.clone();
        // Spawned, so a reader that goes away cannot leave the batch open
        // or unasked.
        actix::spawn(async move {
            tokio::task::yield_now().await;
            // Closed before asking: nobody joins a batch already asked for.
            batch.lock().expect("read batch lock").take();
            ask(reply);
        });
        answer
    }
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
            reads: ReadBatch::default(),
        }
    }

    /// Replicates `command` and returns its outcome once this node applied it.
    ///
    /// The request is posted, not sent and awaited: the node's answer comes
    /// on `reply` anyway, and a node that is gone drops it, which reads as
    /// shutting down. (Awaiting the delivery cost a second wake-up of this
    /// thread per request.)
    pub async fn propose(&self, command: Command) -> Result<task::Applied, ConsensusError> {
        let (reply, answer) = oneshot::channel();
        self.addr.do_send(Propose { command, reply });
        self.wait(answer).await
    }

    /// Returns once this node has applied every entry that was committed
    /// when it was called (ReadIndex): a read after it is linearizable.
    /// Reads that arrive together share one request ([`ReadBatch`]).
    pub async fn read_barrier(&self) -> Result<(), ConsensusError> {
        let addr = self.addr.clone();
        let answer = self
            .reads
            .join(move |reply| addr.do_send(ReadBarrier { reply }));
        self.wait(answer).await
    }

    async fn wait<T>(
        &self,
        answer: impl std::future::Future<
            Output = Result<Result<T, ConsensusError>, oneshot::error::RecvError>,
        >,
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    type Reply = oneshot::Sender<Result<(), ConsensusError>>;

    /// Every request a batch made of the node, kept to be answered.
    #[derive(Clone, Default)]
    struct Asked(Rc<RefCell<Vec<Reply>>>);

    impl Asked {
        fn ask(&self) -> impl FnOnce(Reply) + 'static {
            let asked = self.clone();
            move |reply| asked.0.borrow_mut().push(reply)
        }

        fn len(&self) -> usize {
            self.0.borrow().len()
        }
    }

    #[actix_web::test]
    async fn reads_that_arrive_together_share_one_request_and_later_ones_do_not() {
        let batch = ReadBatch::default();
        let asked = Asked::default();
        let first: Vec<_> = (0..50).map(|_| batch.join(asked.ask())).collect();
        assert_eq!(asked.len(), 0, "asked only after a yield");
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(asked.len(), 1, "one request for 50 reads");

        // A read after the request was made must not share it: its read
        // index would not cover what was acknowledged before it began.
        let later = batch.join(asked.ask());
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(asked.len(), 2);

        let mut replies = asked.0.take().into_iter();
        replies.next().unwrap().send(Ok(())).unwrap();
        for answer in first {
            assert_eq!(answer.await, Ok(Ok(())));
        }
        // Each batch has its own answer: the later one's is still to come.
        let refused = Err(ConsensusError::NoLeader);
        replies.next().unwrap().send(refused.clone()).unwrap();
        assert_eq!(later.await, Ok(refused));
    }

    #[actix_web::test]
    async fn a_reader_that_goes_away_leaves_the_batch_to_the_others() {
        let batch = ReadBatch::default();
        let asked = Asked::default();
        let gone = batch.join(asked.ask());
        let stays = batch.join(asked.ask());
        drop(gone);
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        let reply = asked.0.borrow_mut().pop().expect("asked once");
        reply.send(Ok(())).unwrap();
        assert_eq!(stays.await, Ok(Ok(())));
        // And the next read opens a new batch.
        let next = batch.join(asked.ask());
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(asked.len(), 1);
        drop(next);
    }
}
