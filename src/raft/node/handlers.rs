//! The Raft node's messages: each one handled, then a Ready pass scheduled.

use std::time::Instant;

use actix::prelude::*;
use raft::eraftpb::MessageType;
use raft::StateRole;

use super::super::handle::{
    Applied, ConsensusError, GetRecentLog, GetStatus, Propose, ReadBarrier, Shutdown,
    TransferLeader, TransferRefused,
};
use super::super::message::PeerMessage;
use super::super::proposal::{encode_command, ProposalContext};
use super::{decide, ProcessReady, RaftNode};
use crate::raft::{Step, Unreachable};

impl Handler<ProcessReady> for RaftNode {
    type Result = ();

    fn handle(&mut self, _: ProcessReady, ctx: &mut Context<Self>) {
        self.ready_scheduled = false;
        self.process_ready();
        self.report_snapshots_sent();
        self.observe_leadership();
        self.issue_reads();
        self.tell_applier();
        if self.raw.has_ready() {
            self.schedule_ready(ctx);
        }
    }
}

impl Handler<Step> for RaftNode {
    type Result = ();

    fn handle(&mut self, Step(PeerMessage(mut message)): Step, ctx: &mut Context<Self>) {
        if message.get_msg_type() == MessageType::MsgHeartbeatResponse {
            self.heartbeat_answered(message.from);
        }
        if message.get_msg_type() == MessageType::MsgPropose {
            self.take_forwarded_conf_changes(&mut message);
            self.drop_forwarded_too_new(&mut message);
            if message.get_entries().is_empty() {
                self.schedule_ready(ctx);
                return;
            }
        }
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
        if let Err(refused) = decide::admit_write(&self.facts()) {
            let _ = reply.send(Err(refused));
            return;
        }
        if let Err(too_old) = self.admit_kind(&command) {
            let _ = reply.send(Err(ConsensusError::ClusterTooOld(too_old)));
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
        if let Err(refused) = decide::admit_read(&self.facts()) {
            let _ = reply.send(Err(refused));
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
            self.store.set_applied(index);
        }
        self.backlog.applied(index);
        // After a snapshot raft-rs is ahead of MySQL, which catches up.
        if index > self.raw.raft.raft_log.applied {
            self.raw.advance_apply_to(index);
        }
        self.reads.on_applied(self.applied_index);
        self.schedule_ready(ctx);
    }
}

impl Handler<GetRecentLog> for RaftNode {
    type Result = MessageResult<GetRecentLog>;

    fn handle(
        &mut self,
        GetRecentLog { limit }: GetRecentLog,
        _: &mut Context<Self>,
    ) -> Self::Result {
        MessageResult(self.recent_log(limit))
    }
}

impl Handler<GetStatus> for RaftNode {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.cluster_status())
    }
}

impl Handler<TransferLeader> for RaftNode {
    type Result = Result<(), TransferRefused>;

    fn handle(
        &mut self,
        TransferLeader(to): TransferLeader,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        let raft = &self.raw.raft;
        decide::check_transfer(
            self.id,
            raft.state == StateRole::Leader,
            raft.leader_id,
            raft.prs().conf().voters().ids().contains(to),
            to,
        )?;
        if to != self.id {
            self.raw.transfer_leader(to);
            self.schedule_ready(ctx);
        }
        Ok(())
    }
}

impl Handler<Shutdown> for RaftNode {
    type Result = ();

    fn handle(&mut self, Shutdown { reply, within }: Shutdown, ctx: &mut Context<Self>) {
        let raft = &self.raw.raft;
        if raft.state == StateRole::Leader {
            // Hand over to the most up-to-date other voter, so the cluster
            // does not wait an election timeout to notice we are gone.
            let successor =
                decide::successor(self.id, raft.prs().conf().voters().ids().iter(), |id| {
                    raft.prs().get(id).map_or(0, |p| p.matched)
                });
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
