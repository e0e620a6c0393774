//! The Raft node actor, around raft-rs's `RawNode`.
//!
//! It owns the `RawNode`, ticks it, steps peer messages into it, proposes
//! commands and ReadIndex rounds, and runs the Ready loop in the order the
//! raft-rs documentation gives. Committed entries are not applied here: the
//! node tells the applier how far the log is committed, and the applier
//! reads the entries from the durable log and answers with the applied index
//! and the outcomes of the requests this node took.
//!
//! What it decides under time and failure (which requests it takes, how it
//! notices a new leader, when a read round is asked again, whom it hands
//! leadership to on shutdown) is in [`decide`], plain functions that
//! `tests.rs` drives with explicit ticks; the actor gathers the facts from
//! raft-rs and acts on the answers. Not driven deterministically yet: the
//! Ready loop itself and membership changes, which the integration tests
//! cover with real processes.

use std::time::{Duration, Instant};

use actix::prelude::*;
use raft::eraftpb::{Entry, EntryType, Message, MessageType};
use raft::{GetEntriesContext, RawNode, ReadOnlyOption, StateRole, INVALID_ID};
use tokio::sync::{oneshot, watch};

use super::committed::Committed;
use super::handle::{
    ClusterStatus, ConsensusError, LogEntryView, MemberStatus, RaftHandle, RaftStatus, RecentLog,
};
use super::membership::{MemberAddr, MembershipError};
use super::message::PeerMessage;
use super::storage::LogStore;
use super::waiters::{PendingWrites, ReadQueue};
use crate::metrics;
use crate::raft::{RemovePeer, SendMessages, SetPeer};

/// How the node reaches the transport: messages out, and peers to dial.
pub struct TransportPorts {
    pub send: Recipient<SendMessages>,
    pub set_peer: Recipient<SetPeer>,
    pub remove_peer: Recipient<RemovePeer>,
}

/// What a node needs to start.
pub struct NodeConfig {
    pub id: u64,
    /// Where this node listens, as it wants the membership to record it.
    pub own: MemberAddr,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub tick: Duration,
    /// The index MySQL has applied: raft-rs resumes handing out entries after
    /// it (or after the log's snapshot, when MySQL is further behind and
    /// catches up from a peer).
    pub applied: u64,
    pub request_timeout: Duration,
    pub compaction: Compaction,
    /// The versions peers announced (the transport records them).
    pub versions: crate::version::PeerVersions,
}

/// When the log is compacted (etcd's `--snapshot-count` and its catch-up
/// entries).
#[derive(Clone, Copy, Debug)]
pub struct Compaction {
    /// Applied entries the log may hold beyond what it keeps for slow
    /// followers before it is compacted.
    pub snapshot_count: u64,
    /// Applied entries kept after a compaction, so that a follower a little
    /// behind catches up from the log rather than from a snapshot.
    pub catchup_entries: u64,
}

pub struct RaftNode {
    id: u64,
    /// This node's addresses; its URL is recorded in the log until the
    /// membership names it (see `maybe_record_own_url`).
    own: MemberAddr,
    /// When this node last asked for its URL to be recorded.
    url_asked: Option<Instant>,
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
    /// The commit index, as far as the applier is concerned.
    committed_index: u64,
    /// What the applier was last told.
    told_applier: Committed,
    /// (term, leader) as last seen, to notice changes.
    leadership: decide::Leadership,
    status_tx: watch::Sender<RaftStatus>,
    ready_scheduled: bool,
    shutdown: Option<(oneshot::Sender<()>, Instant)>,
    /// The membership change this node proposed as leader, if any.
    pending_change: Option<PendingChange>,
    /// A committed change removed this node.
    removed: bool,
    compaction: Compaction,
    /// When the log was last considered for compaction, and MySQL's applied
    /// index then: by the next check it is durable even where MySQL leaves
    /// its own fsync to the OS (`innodb_flush_log_at_trx_commit = 2`).
    compaction_check: (Instant, u64),
    /// Followers sent a snapshot in the Ready being processed.
    snapshots_sent: Vec<u64>,
    /// Bytes of committed entries MySQL has not applied yet.
    backlog: backlog::Backlog,
    /// The oldest unanswered heartbeat to each peer (within the last
    /// second), for the round-trip histogram.
    heartbeats_sent: std::collections::HashMap<u64, Instant>,
    /// The versions peers announced, for the cluster version ([`gate`]).
    versions: crate::version::PeerVersions,
}

pub(super) struct PendingChange {
    /// Index and term of the conf change entry.
    entry: (u64, u64),
    reply: oneshot::Sender<Result<ClusterStatus, MembershipError>>,
    deadline: Instant,
}

/// Processes the Ready state once the mailbox is drained.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ProcessReady;

impl RaftNode {
    /// Starts the node on its own thread, so that fsyncs in the Ready loop
    /// never stall the HTTP workers or the applier.
    pub fn start(
        config: NodeConfig,
        store: LogStore,
        transport: TransportPorts,
        applier: Recipient<Committed>,
    ) -> Result<RaftHandle, raft::Error> {
        // raft-rs's applied index cannot precede the log's snapshot; MySQL's
        // may, while it catches up from a peer.
        let raft_applied = config
            .applied
            .max(store.snapshot_metadata().index)
            .min(store.hard_state().commit);
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            applied: raft_applied,
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
        store.set_applied(config.applied);
        let arbiter = Arbiter::new();
        let request_timeout = config.request_timeout;
        let node = RaftNode {
            id: config.id,
            own: config.own,
            url_asked: None,
            leadership: decide::Leadership {
                term: raw.raft.term,
                leader: raw.raft.leader_id,
            },
            raw,
            store,
            transport,
            applier,
            tick: config.tick,
            request_timeout,
            pending_writes: PendingWrites::default(),
            reads: ReadQueue::new(config.id),
            applied_index: config.applied,
            committed_index: raft_applied,
            told_applier: Committed {
                index: raft_applied,
                waited_on: true,
            },
            status_tx,
            ready_scheduled: false,
            shutdown: None,
            pending_change: None,
            removed: false,
            compaction: config.compaction,
            compaction_check: (Instant::now(), config.applied),
            snapshots_sent: Vec::new(),
            backlog: backlog::Backlog::default(),
            heartbeats_sent: std::collections::HashMap::new(),
            versions: config.versions,
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
        // 2. A snapshot from the leader replaces the log before anything
        //    else is written; MySQL catches up from a peer afterwards.
        let snapshot_index = if ready.snapshot().is_empty() {
            None
        } else {
            Some(self.install_snapshot(ready.snapshot(), ready.hs()))
        };
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
        if let Some(index) = snapshot_index {
            // raft-rs must not look for entries before the snapshot.
            if index > self.raw.raft.raft_log.applied {
                self.raw.advance_apply_to(index);
            }
            self.note_committed(index);
        }
        if let Some(commit) = light.commit_index() {
            self.store.set_commit(commit);
        }
        if !light.messages().is_empty() {
            self.send(light.take_messages());
        }
        self.on_committed(light.take_committed_entries());
        // A follower learns the commit index from the leader's messages,
        // not from a LightReady.
        metrics::set_commit_index(self.raw.raft.raft_log.committed);
    }

    fn send(&mut self, messages: Vec<Message>) {
        for message in &messages {
            match message.get_msg_type() {
                MessageType::MsgSnapshot => self.snapshots_sent.push(message.to),
                // Timed until the answer: the peer round trip. One that
                // went unanswered for a second was lost (a cut link, a
                // dead peer): time the next one instead.
                MessageType::MsgHeartbeat => {
                    let now = Instant::now();
                    let sent = self.heartbeats_sent.entry(message.to).or_insert(now);
                    if now.duration_since(*sent) > Duration::from_secs(1) {
                        *sent = now;
                    }
                }
                _ => {}
            }
        }
        self.transport.send.do_send(SendMessages(
            messages.into_iter().map(PeerMessage).collect(),
        ));
    }

    fn heartbeat_answered(&mut self, peer: u64) {
        if let Some(sent) = self.heartbeats_sent.remove(&peer) {
            metrics::PEER_RTT_SECONDS
                .with_label_values(&[&peer.to_string()])
                .observe(sent.elapsed().as_secs_f64());
        }
    }

    /// Applies membership changes now (they concern raft-rs, not MySQL) and
    /// tells the applier how far the log is committed.
    fn on_committed(&mut self, entries: Vec<Entry>) {
        let Some(last) = entries.last().map(|e| e.index) else {
            return;
        };
        for entry in &entries {
            self.backlog
                .committed(entry.index, entry.data.len() + entry.context.len());
            match entry.get_entry_type() {
                EntryType::EntryNormal => {}
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(entry);
                }
            }
        }
        self.note_committed(last);
    }

    fn note_committed(&mut self, index: u64) {
        self.committed_index = self.committed_index.max(index);
    }

    /// Tells the applier how far the log is committed and whether anyone
    /// waits for it here, when either changed (after each pass of the
    /// Ready loop, which every request and answer schedules).
    pub(super) fn tell_applier(&mut self) {
        let now = Committed {
            index: self.committed_index,
            waited_on: self.raw.raft.state == StateRole::Leader
                || !self.pending_writes.is_empty()
                || !self.reads.is_empty(),
        };
        if now != self.told_applier {
            self.told_applier = now;
            self.applier.do_send(now);
        }
    }

    /// What a request arriving now is judged by.
    fn facts(&self) -> decide::Facts {
        decide::Facts {
            shutting_down: self.shutdown.is_some(),
            leader_known: self.raw.raft.leader_id != INVALID_ID,
            committed: self.committed_index,
            applied: self.applied_index,
            backlog: self.backlog.overloaded(),
        }
    }

    /// Notices a new term or leader: answers what can no longer be answered
    /// and publishes the new status.
    fn observe_leadership(&mut self) {
        let now = decide::Leadership {
            term: self.raw.raft.term,
            leader: self.raw.raft.leader_id,
        };
        if let Some(change) = self.leadership.observe(now) {
            metrics::RAFT_TERM.set(now.term as i64);
            metrics::set_leader(
                now.leader,
                self.raw.raft.state == StateRole::Leader,
                change.new_leader,
            );
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
        let retry_after = decide::read_retry_after(self.tick, self.raw.raft.election_timeout());
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
        self.maybe_compact(now);
        self.maybe_record_own_url(now);
        metrics::PENDING_WRITES.set(self.pending_writes.len() as i64);
        metrics::APPLY_BACKLOG_BYTES.set(self.backlog.bytes() as i64);
        metrics::PENDING_READS.set(self.reads.len() as i64);
        self.schedule_ready(ctx);
    }

    fn check_shutdown(&mut self, now: Instant) {
        let is_leader = self.raw.raft.state == StateRole::Leader;
        if let Some((_, until)) = &self.shutdown {
            if decide::shutdown_done(is_leader, now, *until) {
                if let Some((reply, _)) = self.shutdown.take() {
                    let _ = reply.send(());
                }
            }
        }
    }

    fn recent_log(&self, limit: usize) -> RecentLog {
        let log = &self.raw.raft.raft_log;
        let last = log.last_index();
        let first = self.store.first_index_now().max(1);
        let from = last
            .saturating_sub(limit as u64)
            .saturating_add(1)
            .max(first);
        let entries = if from > last {
            Vec::new()
        } else {
            log.entries(from, None, GetEntriesContext::empty(false))
                .unwrap_or_default()
        };
        RecentLog {
            node_id: self.id,
            term: self.raw.raft.term,
            first_index: first,
            last_index: last,
            commit_index: log.committed,
            applied_index: self.applied_index,
            entries: entries
                .iter()
                .map(|e| LogEntryView {
                    index: e.index,
                    term: e.term,
                    kind: match e.get_entry_type() {
                        EntryType::EntryNormal if e.data.is_empty() => "empty",
                        EntryType::EntryNormal => "command",
                        EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => "membership",
                    },
                    bytes: e.data.len(),
                })
                .collect(),
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
            vote: raft.vote,
            applied_index: self.applied_index,
            first_index: self.store.first_index_now(),
            last_index: raft.raft_log.last_index(),
            members,
            cluster_version: self.cluster_version(),
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
pub(super) fn fatal(message: &str) -> ! {
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

mod backlog;
mod decide;
mod gate;
mod handlers;
mod membership;
mod snapshot;
#[cfg(test)]
mod tests;
