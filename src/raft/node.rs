//! The Raft node actor: the only code that touches raft-rs.
//!
//! It owns the `RawNode`, ticks it, steps peer messages into it, proposes
//! commands and ReadIndex rounds, and runs the Ready loop in the order the
//! raft-rs documentation gives. Committed entries are not applied here: the
//! node tells the applier how far the log is committed, and the applier
//! reads the entries from the durable log and answers with the applied index
//! and the outcomes of the requests this node took.

use std::time::{Duration, Instant};

use actix::prelude::*;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType, Message,
};
use raft::{RawNode, ReadOnlyOption, StateRole, INVALID_ID};
use raft_proto::ConfChangeI;
use tokio::sync::{oneshot, watch};

use super::handle::{
    Applied, ChangeMembership, ClusterStatus, ConsensusError, GetStatus, MarkRemoved, MemberStatus,
    Propose, RaftHandle, RaftStatus, ReadBarrier, Shutdown, TransferLeader,
};
use super::membership::{MemberAddr, MembershipChange, MembershipError};
use super::proposal::{encode_command, ProposalContext};
use super::storage::{decode, LogStore};
use super::waiters::{PendingWrites, ReadQueue};
use crate::applier::Committed;
use crate::metrics;
use crate::transport::{RemovePeer, SendMessages, SetPeer, Step, Unreachable};

/// How the node reaches the transport: messages out, and peers to dial.
pub struct TransportPorts {
    pub send: Recipient<SendMessages>,
    pub set_peer: Recipient<SetPeer>,
    pub remove_peer: Recipient<RemovePeer>,
}

/// Committed-but-unapplied entries beyond which this node refuses new writes:
/// its MySQL is behind, and queueing more would only lengthen the wait.
const MAX_APPLY_LAG: u64 = 50_000;

/// What a node needs to start.
pub struct NodeConfig {
    pub id: u64,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub tick: Duration,
    /// The index MySQL has applied: raft-rs resumes handing out entries after it.
    pub applied: u64,
    pub request_timeout: Duration,
}

pub struct RaftNode {
    id: u64,
    raw: RawNode<LogStore>,
    store: LogStore,
    transport: TransportPorts,
    applier: Recipient<Committed>,
    tick: Duration,
    request_timeout: Duration,
    pending_writes: PendingWrites,
    reads: ReadQueue,
    /// Applied in MySQL, as last reported by the applier.
    applied_index: u64,
    /// The commit index last told to the applier.
    committed_index: u64,
    /// (term, leader) as last seen, to notice changes.
    leadership: (u64, u64),
    status_tx: watch::Sender<RaftStatus>,
    ready_scheduled: bool,
    shutdown: Option<(oneshot::Sender<()>, Instant)>,
    /// The membership change this node proposed as leader, if any.
    pending_change: Option<PendingChange>,
    /// A committed change removed this node.
    removed: bool,
}

struct PendingChange {
    /// Index and term of the conf change entry.
    entry: (u64, u64),
    reply: oneshot::Sender<Result<ClusterStatus, MembershipError>>,
    deadline: Instant,
}

/// Processes the Ready state once the mailbox is drained.
#[derive(Message)]
#[rtype(result = "()")]
struct ProcessReady;

impl RaftNode {
    /// Starts the node on its own thread, so that fsyncs in the Ready loop
    /// never stall the HTTP workers or the applier.
    pub fn start(
        config: NodeConfig,
        store: LogStore,
        transport: TransportPorts,
        applier: Recipient<Committed>,
    ) -> Result<RaftHandle, raft::Error> {
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            applied: config.applied,
            // One MsgAppend may carry many entries (the default is one).
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            // A leader cut off from a majority steps down; a node coming back
            // from a partition cannot depose a healthy leader.
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            max_committed_size_per_ready: 16 << 20,
            ..raft::Config::default()
        };
        raft_config.validate()?;
        let logger = super::logger::logger();
        let raw = RawNode::new(&raft_config, store.clone(), &logger)?;
        let initial = status_of(&raw, false);
        let (status_tx, status_rx) = watch::channel(initial);
        let arbiter = Arbiter::new();
        let request_timeout = config.request_timeout;
        let node = RaftNode {
            id: config.id,
            leadership: (raw.raft.term, raw.raft.leader_id),
            raw,
            store,
            transport,
            applier,
            tick: config.tick,
            request_timeout,
            pending_writes: PendingWrites::default(),
            reads: ReadQueue::default(),
            applied_index: config.applied,
            committed_index: config.applied,
            status_tx,
            ready_scheduled: false,
            shutdown: None,
            pending_change: None,
            removed: false,
        };
        let addr = RaftNode::start_in_arbiter(&arbiter.handle(), move |_| node);
        Ok(RaftHandle::new(addr, status_rx, request_timeout))
    }

    fn schedule_ready(&mut self, ctx: &mut Context<Self>) {
        if !self.ready_scheduled {
            self.ready_scheduled = true;
            // Handled after the messages already in the mailbox, so one Ready
            // (and one fsync) covers everything that arrived meanwhile.
            ctx.notify(ProcessReady);
        }
    }

    /// One pass of the Ready loop, in the order raft-rs prescribes.
    fn process_ready(&mut self) {
        if !self.raw.has_ready() {
            return;
        }
        let _timer = metrics::RAFT_READY_SECONDS.start_timer();
        let mut ready = self.raw.ready();

        // 1. A leader sends before persisting (Raft thesis 10.2.1): the
        //    followers write while it does.
        if !ready.messages().is_empty() {
            self.send(ready.take_messages());
        }
        // 2. Snapshots are not produced yet (the log is never compacted).
        if !ready.snapshot().is_empty() {
            fatal("received a snapshot, which this version cannot install");
        }
        // 3. Reads whose read index is now known.
        for state in ready.take_read_states() {
            self.reads
                .on_read_state(&state.request_ctx, state.index, self.applied_index);
        }
        // 4. Make the new entries and hard state durable: one batch, at most
        //    one fsync, before anything that depends on them leaves.
        let committed = ready.take_committed_entries();
        crate::crash::point("raft_before_fsync");
        metrics::RAFT_READY_ENTRIES.observe(ready.entries().len() as f64);
        if let Err(e) = self
            .store
            .persist(ready.entries(), ready.hs(), ready.must_sync())
        {
            fatal(&format!("cannot persist the Raft log: {e}"));
        }
        crate::crash::point("raft_after_fsync");
        // 5. Committed entries (durable here) go to the applier.
        self.on_committed(committed);
        // 6. Votes and append responses promise what is now on disk.
        if !ready.persisted_messages().is_empty() {
            self.send(ready.take_persisted_messages());
        }
        // 7. Advance; what the LightReady holds is valid now.
        let mut light = self.raw.advance_append(ready);
        if let Some(commit) = light.commit_index() {
            self.store.set_commit(commit);
            metrics::RAFT_COMMIT_INDEX.set(commit as i64);
        }
        if !light.messages().is_empty() {
            self.send(light.take_messages());
        }
        self.on_committed(light.take_committed_entries());
    }

    fn send(&self, messages: Vec<Message>) {
        self.transport.send.do_send(SendMessages(messages));
    }

    /// Applies membership changes now (they concern raft-rs, not MySQL) and
    /// tells the applier how far the log is committed.
    fn on_committed(&mut self, entries: Vec<Entry>) {
        let Some(last) = entries.last().map(|e| e.index) else {
            return;
        };
        for entry in &entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal => {}
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(entry);
                }
            }
        }
        if last > self.committed_index {
            self.committed_index = last;
            self.applier.do_send(Committed(last));
        }
    }

    /// Applies a committed membership change to raft-rs, records the new
    /// membership and the member's addresses, and points the transport at
    /// them. Done at commit, in log order, the same way on every node.
    fn apply_conf_change(&mut self, entry: &Entry) {
        if entry.index <= self.store.conf_index() {
            // Already applied before a restart; raft-rs hands it out again
            // because MySQL's applied index is older.
            return;
        }
        let decoded = if entry.get_entry_type() == EntryType::EntryConfChangeV2 {
            decode::<ConfChangeV2>(&entry.data).map_err(|e| e.to_string())
        } else {
            decode::<ConfChange>(&entry.data)
                .map(|cc| cc.into_v2())
                .map_err(|e| e.to_string())
        };
        let change = match decoded {
            Ok(change) => change,
            Err(e) => {
                tracing::error!(index = entry.index, error = %e, "ignoring an undecodable membership change");
                return;
            }
        };
        let conf_state = match self.raw.apply_conf_change(&change) {
            Ok(conf_state) => conf_state,
            Err(e) => {
                tracing::error!(index = entry.index, error = %e, "ignoring a membership change that does not apply");
                return;
            }
        };
        let addr: Option<MemberAddr> = serde_json::from_slice(&change.context).ok();
        let mut members = self.store.members();
        for single in &change.changes {
            let id = single.node_id;
            match single.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    if let Some(addr) = &addr {
                        members.insert(id, addr.clone());
                    }
                    if id != self.id {
                        if let Some(addr) = members.get(&id) {
                            self.transport.set_peer.do_send(SetPeer {
                                id,
                                addr: addr.raft_addr.clone(),
                            });
                        }
                    }
                }
                ConfChangeType::RemoveNode => {
                    members.remove(&id);
                    if id == self.id {
                        self.removed = true;
                    } else {
                        self.transport.remove_peer.do_send(RemovePeer(id));
                    }
                }
            }
        }
        tracing::info!(index = entry.index, voters = ?conf_state.voters, learners = ?conf_state.learners, "membership changed");
        if let Err(e) = self.store.set_conf_state(conf_state, entry.index, members) {
            fatal(&format!("cannot persist the membership: {e}"));
        }
        if self.removed {
            self.mark_removed();
        }
        if self
            .pending_change
            .as_ref()
            .is_some_and(|p| p.entry.0 == entry.index)
        {
            if let Some(pending) = self.pending_change.take() {
                let _ = pending.reply.send(Ok(self.cluster_status()));
            }
        }
    }

    fn mark_removed(&mut self) {
        self.removed = true;
        if let Err(e) = self.store.mark_removed() {
            tracing::error!(error = %e, "cannot record the removal");
        }
        tracing::warn!("this node was removed from the cluster; it stops serving");
        self.observe_leadership();
    }

    /// Checks a membership change against the current configuration.
    fn check_change(
        &self,
        change: &MembershipChange,
    ) -> Result<Option<ConfChangeSingle>, MembershipError> {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader {
            return Err(MembershipError::NotLeader {
                node: self.id,
                leader_id: raft.leader_id,
            });
        }
        let conf = raft.prs().conf();
        let in_joint = !conf.to_conf_state().voters_outgoing.is_empty();
        if raft.has_pending_conf() || in_joint || self.pending_change.is_some() {
            return Err(MembershipError::Pending);
        }
        let voter = |id: u64| conf.voters().ids().contains(id);
        let learner = |id: u64| conf.learners().contains(&id);
        let single = |id: u64, ty: ConfChangeType| Some(raft_proto::new_conf_change_single(id, ty));
        match change {
            MembershipChange::AddLearner { id, addr } => {
                if *id == 0 {
                    return Err(MembershipError::Invalid("node id 0 is not allowed".into()));
                }
                if voter(*id) {
                    return Err(MembershipError::AlreadyMember {
                        id: *id,
                        role: "voter",
                    });
                }
                if learner(*id) {
                    // A retried join: the same addresses are no change at all.
                    return if self
                        .store
                        .members()
                        .get(id)
                        .is_some_and(|a| a.raft_addr == addr.raft_addr)
                    {
                        Ok(None)
                    } else {
                        Err(MembershipError::AlreadyMember {
                            id: *id,
                            role: "learner",
                        })
                    };
                }
                Ok(single(*id, ConfChangeType::AddLearnerNode))
            }
            MembershipChange::Promote { id } => {
                if voter(*id) {
                    return Ok(None);
                }
                if !learner(*id) {
                    return Err(MembershipError::NotLearner { id: *id });
                }
                Ok(single(*id, ConfChangeType::AddNode))
            }
            MembershipChange::Remove { id } => {
                if !voter(*id) && !learner(*id) {
                    return Err(MembershipError::NotMember { id: *id });
                }
                if *id == self.id {
                    return Err(MembershipError::RemoveLeader);
                }
                if voter(*id) && conf.voters().ids().len() == 1 {
                    return Err(MembershipError::LastVoter { id: *id });
                }
                Ok(single(*id, ConfChangeType::RemoveNode))
            }
        }
    }

    /// Notices a new term or leader: answers what can no longer be answered
    /// and publishes the new status.
    fn observe_leadership(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.leader_id);
        if now != self.leadership {
            self.leadership = now;
            metrics::RAFT_LEADER_CHANGES.inc();
            metrics::RAFT_TERM.set(now.0 as i64);
            metrics::RAFT_IS_LEADER.set(i64::from(self.raw.raft.state == StateRole::Leader));
            let raft = &self.raw.raft;
            let commit = raft.raft_log.committed;
            self.pending_writes.fail_uncommitted(|index, term| {
                index <= commit && raft.raft_log.term(index).ok() == Some(term)
            });
            // Rounds sent to the old leader will not be answered.
            self.reads.retry_unanswered(Instant::now());
            if let Some(pending) = self.pending_change.take() {
                let (index, term) = pending.entry;
                if index <= commit && raft.raft_log.term(index).ok() == Some(term) {
                    self.pending_change = Some(pending);
                } else {
                    let _ = pending
                        .reply
                        .send(Err(ConsensusError::LeaderChanged.into()));
                }
            }
        }
        let status = status_of(&self.raw, self.removed);
        self.status_tx.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    /// Starts a ReadIndex round for the reads queued since the last one.
    fn issue_reads(&mut self) {
        if !self.reads.has_queued() {
            return;
        }
        let raft = &self.raw.raft;
        if raft.leader_id == INVALID_ID {
            self.reads.fail_queued(ConsensusError::NoLeader);
            return;
        }
        // raft-rs silently drops a ReadIndex on a leader that has not yet
        // committed an entry of its term; wait for its no-op to commit.
        if raft.state == StateRole::Leader && !raft.commit_to_current_term() {
            return;
        }
        let ctx = self.reads.start_round(Instant::now());
        self.raw.read_index(ctx);
        metrics::READ_ROUNDS.inc();
    }

    fn on_tick(&mut self, ctx: &mut Context<Self>) {
        self.raw.tick();
        let now = Instant::now();
        self.pending_writes.expire(now, self.request_timeout);
        self.reads.expire(now, self.request_timeout);
        // A round unanswered for two election timeouts went to a leader that
        // dropped it; ask again rather than wait for the deadline.
        let retry_after = self.tick * (2 * self.raw.raft.election_timeout() as u32);
        if let Some(sent_before) = now.checked_sub(retry_after) {
            self.reads.retry_unanswered(sent_before);
        }
        if self
            .pending_change
            .as_ref()
            .is_some_and(|p| p.deadline <= now)
        {
            if let Some(pending) = self.pending_change.take() {
                let _ = pending
                    .reply
                    .send(Err(ConsensusError::Timeout(self.request_timeout).into()));
            }
        }
        self.check_shutdown(now);
        metrics::PENDING_WRITES.set(self.pending_writes.len() as i64);
        metrics::PENDING_READS.set(self.reads.len() as i64);
        self.schedule_ready(ctx);
    }

    fn check_shutdown(&mut self, now: Instant) {
        let handed_over = self.raw.raft.state != StateRole::Leader;
        if let Some((_, until)) = &self.shutdown {
            if handed_over || now >= *until {
                if let Some((reply, _)) = self.shutdown.take() {
                    let _ = reply.send(());
                }
            }
        }
    }

    fn cluster_status(&self) -> ClusterStatus {
        let raft = &self.raw.raft;
        let addrs = self.store.members();
        let leader = raft.state == StateRole::Leader;
        let conf = raft.prs().conf();
        let mut members: Vec<MemberStatus> = conf
            .voters()
            .ids()
            .iter()
            .map(|id| (id, "voter"))
            .chain(conf.learners().iter().map(|id| (*id, "learner")))
            .map(|(id, role)| MemberStatus {
                id,
                role,
                match_index: if leader {
                    raft.prs().get(id).map(|p| p.matched)
                } else {
                    None
                },
                addr: addrs.get(&id).cloned(),
            })
            .collect();
        members.sort_by_key(|m| m.id);
        ClusterStatus {
            raft: status_of(&self.raw, self.removed),
            commit_index: raft.raft_log.committed,
            applied_index: self.applied_index,
            last_index: raft.raft_log.last_index(),
            members,
        }
    }
}

fn status_of(raw: &RawNode<LogStore>, removed: bool) -> RaftStatus {
    RaftStatus {
        node_id: raw.raft.id,
        role: raw.raft.state.into(),
        term: raw.raft.term,
        leader_id: raw.raft.leader_id,
        removed,
    }
}

/// A node that cannot write its Raft log must not go on: it could vote or
/// acknowledge entries it does not hold. Stop, and let the cluster carry on.
fn fatal(message: &str) -> ! {
    tracing::error!("{message}; stopping the node");
    eprintln!("taskraft: fatal: {message}");
    std::process::exit(70);
}

impl Actor for RaftNode {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Proposals and reads are parked here until answered.
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(self.tick, |node, ctx| node.on_tick(ctx));
        tracing::info!(
            node = self.id,
            applied = self.applied_index,
            "raft node started"
        );
        self.schedule_ready(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.pending_writes.fail_all(ConsensusError::ShuttingDown);
        self.reads.fail_all(ConsensusError::ShuttingDown);
    }
}

impl Handler<ProcessReady> for RaftNode {
    type Result = ();

    fn handle(&mut self, _: ProcessReady, ctx: &mut Context<Self>) {
        self.ready_scheduled = false;
        self.process_ready();
        self.observe_leadership();
        self.issue_reads();
        if self.raw.has_ready() {
            self.schedule_ready(ctx);
        }
    }
}

impl Handler<Step> for RaftNode {
    type Result = ();

    fn handle(&mut self, Step(message): Step, ctx: &mut Context<Self>) {
        if let Err(e) = self.raw.step(message) {
            // A message from a removed peer, or for a stale term: harmless.
            tracing::debug!(error = %e, "ignored a raft message");
        }
        self.schedule_ready(ctx);
    }
}

impl Handler<Unreachable> for RaftNode {
    type Result = ();

    fn handle(&mut self, Unreachable(peer): Unreachable, _: &mut Context<Self>) {
        self.raw.report_unreachable(peer);
    }
}

impl Handler<Propose> for RaftNode {
    type Result = ();

    fn handle(&mut self, Propose { command, reply }: Propose, ctx: &mut Context<Self>) {
        if self.shutdown.is_some() {
            let _ = reply.send(Err(ConsensusError::ShuttingDown));
            return;
        }
        if self.raw.raft.leader_id == INVALID_ID {
            let _ = reply.send(Err(ConsensusError::NoLeader));
            return;
        }
        let lag = self.committed_index.saturating_sub(self.applied_index);
        if lag > MAX_APPLY_LAG {
            let _ = reply.send(Err(ConsensusError::Overloaded(format!(
                "{lag} committed entries are waiting to be applied"
            ))));
            return;
        }
        let request_id = command.request_id;
        let context = ProposalContext {
            origin: self.id,
            request_id,
        };
        match self.raw.propose(context.encode(), encode_command(&command)) {
            Ok(()) => {
                let raft = &self.raw.raft;
                // As leader, the entry's place is known: if leadership moves
                // after it committed, the request still gets its answer.
                let entry = (raft.state == StateRole::Leader)
                    .then(|| (raft.raft_log.last_index(), raft.term));
                let deadline = Instant::now() + self.request_timeout;
                self.pending_writes
                    .insert(request_id, reply, deadline, entry);
                self.schedule_ready(ctx);
            }
            Err(e) => {
                tracing::debug!(error = %e, "proposal dropped");
                let _ = reply.send(Err(ConsensusError::NoLeader));
            }
        }
    }
}

impl Handler<ReadBarrier> for RaftNode {
    type Result = ();

    fn handle(&mut self, ReadBarrier { reply }: ReadBarrier, ctx: &mut Context<Self>) {
        if self.shutdown.is_some() {
            let _ = reply.send(Err(ConsensusError::ShuttingDown));
            return;
        }
        if self.raw.raft.leader_id == INVALID_ID {
            let _ = reply.send(Err(ConsensusError::NoLeader));
            return;
        }
        self.reads
            .push(reply, Instant::now() + self.request_timeout);
        self.schedule_ready(ctx);
    }
}

impl Handler<Applied> for RaftNode {
    type Result = ();

    fn handle(&mut self, Applied { index, outcomes }: Applied, ctx: &mut Context<Self>) {
        for (request_id, applied) in outcomes {
            self.pending_writes.resolve(&request_id, applied);
        }
        if index > self.applied_index {
            self.applied_index = index;
            self.raw.advance_apply_to(index);
        }
        self.reads.on_applied(self.applied_index);
        self.schedule_ready(ctx);
    }
}

impl Handler<GetStatus> for RaftNode {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.cluster_status())
    }
}

impl Handler<TransferLeader> for RaftNode {
    type Result = Result<(), String>;

    fn handle(
        &mut self,
        TransferLeader(to): TransferLeader,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader {
            return Err(format!(
                "node {} is not the leader (the leader is {})",
                self.id, raft.leader_id
            ));
        }
        if !raft.prs().conf().voters().ids().contains(to) {
            return Err(format!("node {to} is not a voter"));
        }
        if to != self.id {
            self.raw.transfer_leader(to);
            self.schedule_ready(ctx);
        }
        Ok(())
    }
}

impl Handler<MarkRemoved> for RaftNode {
    type Result = ();
    fn handle(&mut self, _: MarkRemoved, _: &mut Context<Self>) {
        if !self.removed {
            self.mark_removed();
        }
    }
}

impl Handler<ChangeMembership> for RaftNode {
    type Result = ();

    fn handle(
        &mut self,
        ChangeMembership { change, reply }: ChangeMembership,
        ctx: &mut Context<Self>,
    ) {
        if self.shutdown.is_some() {
            let _ = reply.send(Err(ConsensusError::ShuttingDown.into()));
            return;
        }
        let single = match self.check_change(&change) {
            Ok(Some(single)) => single,
            Ok(None) => {
                let _ = reply.send(Ok(self.cluster_status()));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let context = match &change {
            MembershipChange::AddLearner { addr, .. } => {
                serde_json::to_vec(addr).unwrap_or_default()
            }
            MembershipChange::Promote { .. } | MembershipChange::Remove { .. } => Vec::new(),
        };
        let mut cc = ConfChangeV2::default();
        cc.set_changes(vec![single].into());
        cc.context = context.into();
        match self.raw.propose_conf_change(Vec::new(), cc) {
            Ok(()) => {
                let raft = &self.raw.raft;
                tracing::info!(
                    ?change,
                    index = raft.raft_log.last_index(),
                    "proposed a membership change"
                );
                self.pending_change = Some(PendingChange {
                    entry: (raft.raft_log.last_index(), raft.term),
                    reply,
                    deadline: Instant::now() + self.request_timeout,
                });
                self.schedule_ready(ctx);
            }
            Err(e) => {
                tracing::debug!(error = %e, "membership change dropped");
                let _ = reply.send(Err(ConsensusError::NoLeader.into()));
            }
        }
    }
}

impl Handler<Shutdown> for RaftNode {
    type Result = ();

    fn handle(&mut self, Shutdown { reply, within }: Shutdown, ctx: &mut Context<Self>) {
        let raft = &self.raw.raft;
        if raft.state == StateRole::Leader {
            // Hand over to the most up-to-date other voter, so the cluster
            // does not wait an election timeout to notice we are gone.
            let successor = raft
                .prs()
                .conf()
                .voters()
                .ids()
                .iter()
                .filter(|id| *id != self.id)
                .max_by_key(|id| raft.prs().get(*id).map_or(0, |p| p.matched));
            if let Some(successor) = successor {
                tracing::info!(to = successor, "shutting down: handing leadership over");
                self.raw.transfer_leader(successor);
            }
        }
        self.shutdown = Some((reply, Instant::now() + within));
        self.check_shutdown(Instant::now());
        self.schedule_ready(ctx);
    }
}
