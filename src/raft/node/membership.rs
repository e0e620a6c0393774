//! Membership changes as the Raft node sees them: checked, proposed, and
//! applied at commit (with the member's addresses) on every node.

use std::time::Instant;

use actix::prelude::*;
use raft::eraftpb::{ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType};
use raft::StateRole;
use raft_proto::ConfChangeI;

use super::super::handle::{ChangeMembership, ConsensusError, MarkRemoved};
use super::super::membership::{MemberAddr, MembershipChange, MembershipError};
use super::super::storage::decode;
use super::{fatal, PendingChange, RaftNode};
use crate::transport::{RemovePeer, SetPeer};

impl RaftNode {
    /// Applies a committed membership change to raft-rs, records the new
    /// membership and the member's addresses, and points the transport at
    /// them. Done at commit, in log order, the same way on every node.
    pub(super) fn apply_conf_change(&mut self, entry: &Entry) {
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

    pub(super) fn mark_removed(&mut self) {
        self.removed = true;
        if let Err(e) = self.store.mark_removed() {
            tracing::error!(error = %e, "cannot record the removal");
        }
        tracing::warn!("this node was removed from the cluster; it stops serving");
        self.observe_leadership();
    }

    /// Checks a membership change against the current configuration.
    pub(super) fn check_change(
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
