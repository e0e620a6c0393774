//! Membership changes as the Raft node sees them: checked, proposed, and
//! applied at commit (with the member's addresses) on every node.
//!
//! Besides the changes operators and joining nodes ask for, each member
//! records its own URL: the initial voters are bootstrapped from `peers`,
//! which holds only Raft addresses, and a node may come back under another
//! `advertise_url`. The record is a conf change that adds the member in the
//! role it already has (a no-op for raft-rs) with its addresses as context,
//! so every node, a restarted one included, learns every member's URL from
//! the log rather than from whoever happened to dial it.

use std::time::Instant;

use actix::prelude::*;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType, Message,
};
use raft::{StateRole, INVALID_ID};
use raft_proto::ConfChangeI;

use super::super::handle::{ChangeMembership, ConsensusError, MarkRemoved};
use super::super::membership::{change_context, MemberAddr, MembershipChange, MembershipError};
use super::super::storage::decode;
use super::{fatal, PendingChange, RaftNode};
use crate::audit::{ChangeNote, MemberChange};
use crate::raft::{RemovePeer, SetPeer};

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
        // A member added in the role it already has: the record of its URL.
        let before = self.raw.raft.prs().conf().to_conf_state();
        let unchanged_role = |single: &ConfChangeSingle| match single.get_change_type() {
            ConfChangeType::AddNode => before.voters.contains(&single.node_id),
            ConfChangeType::AddLearnerNode => before.learners.contains(&single.node_id),
            ConfChangeType::RemoveNode => false,
        };
        let records: Vec<bool> = change.changes.iter().map(unchanged_role).collect();
        let conf_state = match self.raw.apply_conf_change(&change) {
            Ok(conf_state) => conf_state,
            Err(e) => {
                tracing::error!(index = entry.index, error = %e, "ignoring a membership change that does not apply");
                return;
            }
        };
        let addr: Option<MemberAddr> = serde_json::from_slice(&change.context).ok();
        let mut members = self.store.members();
        for (single, record) in change.changes.iter().zip(records) {
            let id = single.node_id;
            match single.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode
                    if record && members.contains_key(&id) =>
                {
                    // Only the URL: each node keeps the Raft address it
                    // knows the member by (a proxy, NAT or another name may
                    // stand between them, as `peers` allows).
                    if let (Some(known), Some(url)) = (
                        members.get_mut(&id),
                        addr.as_ref().and_then(|a| a.url.clone()),
                    ) {
                        tracing::info!(member = id, %url, "recorded a member's URL");
                        known.url = Some(url);
                    }
                }
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
                    let mine = self
                        .store
                        .identity()
                        .is_none_or(|identity| identity.removes_me(entry.index));
                    if id == self.id && !mine {
                        tracing::info!(
                            index = entry.index,
                            "replayed the removal of an earlier member with this node's id"
                        );
                    } else if id == self.id {
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

    /// Asks for this node's URL to be recorded while the membership lacks
    /// it or names another one. The leader proposes the record itself; a
    /// voter proposes it through raft-rs, which forwards it to the leader,
    /// where [`RaftNode::take_forwarded_conf_changes`] checks it and proposes
    /// it anew. A learner waits for its promotion (its join carried its URL).
    /// Asked again every two heartbeats until the record is applied here:
    /// the leader drops it while another change is pending.
    pub(super) fn maybe_record_own_url(&mut self, now: Instant) {
        if self.removed || self.shutdown.is_some() || self.own_url_recorded() {
            return;
        }
        let raft = &self.raw.raft;
        let every = self.tick * (2 * raft.heartbeat_timeout() as u32);
        if raft.leader_id == INVALID_ID || self.url_asked.is_some_and(|at| now < at + every) {
            return;
        }
        self.url_asked = Some(now);
        if raft.state == StateRole::Leader {
            self.propose_url_record(self.id, self.own.clone());
        } else if raft.state == StateRole::Follower
            && raft.prs().conf().voters().ids().contains(self.id)
        {
            let cc = url_record(self.id, ConfChangeType::AddNode, &self.own);
            if let Err(e) = self.raw.propose_conf_change(Vec::new(), cc) {
                tracing::debug!(error = %e, "could not ask for this node's URL to be recorded");
            }
        }
    }

    /// Whether the membership names this node's own URL.
    pub(super) fn own_url_recorded(&self) -> bool {
        self.store
            .members()
            .get(&self.id)
            .is_some_and(|recorded| recorded.url == self.own.url)
    }

    /// As leader: proposes recording `addr.url` for member `id`, in the role
    /// it has now. Nothing when the membership names that URL already, when
    /// `id` is not a member, or while another change is pending (the member
    /// asks again). The Raft address in the context is the one this log
    /// holds, so a node of an older version, which takes the whole context,
    /// keeps dialing the member where it did.
    pub(super) fn propose_url_record(&mut self, id: u64, addr: MemberAddr) {
        let raft = &self.raw.raft;
        if raft.state != StateRole::Leader || addr.url.is_none() {
            return;
        }
        let conf = raft.prs().conf();
        let in_joint = !conf.to_conf_state().voters_outgoing.is_empty();
        if raft.has_pending_conf() || in_joint || self.pending_change.is_some() {
            return;
        }
        let recorded = self.store.members().get(&id).cloned();
        if recorded.as_ref().is_some_and(|r| r.url == addr.url) {
            return;
        }
        let change_type = if conf.voters().ids().contains(id) {
            ConfChangeType::AddNode
        } else if conf.learners().contains(&id) {
            ConfChangeType::AddLearnerNode
        } else {
            return;
        };
        let addr = MemberAddr {
            raft_addr: recorded.map_or(addr.raft_addr, |r| r.raft_addr),
            url: addr.url,
        };
        match self
            .raw
            .propose_conf_change(Vec::new(), url_record(id, change_type, &addr))
        {
            Ok(()) => {
                tracing::info!(member = id, url = ?addr.url, "proposed recording a member's URL")
            }
            Err(e) => tracing::debug!(error = %e, "recording a member's URL dropped"),
        }
    }

    /// Takes the membership changes out of a proposal a peer forwarded. The
    /// only one a peer may propose is the record of its own URL: it is
    /// checked and proposed again here, as leader, in the member's current
    /// role. Anything else, or a record reaching a node that does not lead,
    /// is dropped (the member asks again), so no stale or forged change
    /// reaches raft-rs, which would append it unchecked.
    pub(super) fn take_forwarded_conf_changes(&mut self, message: &mut Message) {
        let is_conf = |e: &Entry| {
            matches!(
                e.get_entry_type(),
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2
            )
        };
        if !message.get_entries().iter().any(is_conf) {
            return;
        }
        let from = message.from;
        let (changes, normal): (Vec<Entry>, Vec<Entry>) =
            message.take_entries().into_iter().partition(is_conf);
        message.set_entries(normal.into());
        for entry in changes {
            match forwarded_url_record(&entry, from) {
                Some(addr) => self.propose_url_record(from, addr),
                None => tracing::warn!(peer = from, "dropped a membership change a peer proposed"),
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

/// The conf change that records `addr` for member `id`, added again in the
/// role `change_type` it has.
fn url_record(id: u64, change_type: ConfChangeType, addr: &MemberAddr) -> ConfChangeV2 {
    let mut cc = ConfChangeV2::default();
    cc.set_changes(vec![raft_proto::new_conf_change_single(id, change_type)].into());
    cc.context = serde_json::to_vec(addr).unwrap_or_default().into();
    cc
}

/// The longest URL a member may have recorded.
const MAX_URL_LEN: usize = 1024;

/// The addresses in `entry` if it is member `from` asking to record its own
/// http(s) URL, and nothing else.
fn forwarded_url_record(entry: &Entry, from: u64) -> Option<MemberAddr> {
    let change = if entry.get_entry_type() == EntryType::EntryConfChangeV2 {
        decode::<ConfChangeV2>(&entry.data).ok()?
    } else {
        decode::<ConfChange>(&entry.data).ok()?.into_v2()
    };
    let [single] = change.changes.as_slice() else {
        return None;
    };
    let adds = matches!(
        single.get_change_type(),
        ConfChangeType::AddNode | ConfChangeType::AddLearnerNode
    );
    if !adds || single.node_id != from || from == INVALID_ID {
        return None;
    }
    let addr: MemberAddr = serde_json::from_slice(&change.context).ok()?;
    let url = addr.url.as_deref()?;
    let http = url.starts_with("http://") || url.starts_with("https://");
    (http && url.len() <= MAX_URL_LEN && !url.chars().any(char::is_control)).then_some(addr)
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
        ChangeMembership {
            change,
            actor,
            reply,
        }: ChangeMembership,
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
        let note = ChangeNote {
            event_id: uuid::Uuid::new_v4(),
            change: match &change {
                MembershipChange::AddLearner { .. } => MemberChange::Added,
                MembershipChange::Promote { .. } => MemberChange::Promoted,
                MembershipChange::Remove { .. } => MemberChange::Removed,
            },
            actor,
            at: crate::time::Timestamp::now(),
        };
        let addr = match &change {
            MembershipChange::AddLearner { addr, .. } => Some(addr),
            MembershipChange::Promote { .. } | MembershipChange::Remove { .. } => None,
        };
        let context = change_context(addr, Some(&note));
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

#[cfg(test)]
mod tests {
    use protobuf::Message as _;

    use super::*;

    fn proposal(cc: &ConfChangeV2) -> Entry {
        let mut entry = Entry {
            data: cc.write_to_bytes().unwrap().into(),
            ..Entry::default()
        };
        entry.set_entry_type(EntryType::EntryConfChangeV2);
        entry
    }

    fn addr(url: &str) -> MemberAddr {
        MemberAddr {
            raft_addr: "10.0.0.2:9002".into(),
            url: Some(url.into()),
        }
    }

    #[test]
    fn a_peer_may_only_propose_the_record_of_its_own_http_url() {
        let own = addr("http://10.0.0.2:8002");
        let record = proposal(&url_record(2, ConfChangeType::AddNode, &own));
        assert_eq!(forwarded_url_record(&record, 2), Some(own.clone()));

        let for_another = proposal(&url_record(3, ConfChangeType::AddNode, &own));
        assert_eq!(forwarded_url_record(&for_another, 2), None, "only its own");
        let removal = proposal(&url_record(2, ConfChangeType::RemoveNode, &own));
        assert_eq!(forwarded_url_record(&removal, 2), None, "no removals");
        let script = proposal(&url_record(
            2,
            ConfChangeType::AddNode,
            &addr("javascript:x"),
        ));
        assert_eq!(forwarded_url_record(&script, 2), None, "http(s) only");
        let long = format!("http://{}", "a".repeat(MAX_URL_LEN));
        let long = proposal(&url_record(2, ConfChangeType::AddNode, &addr(&long)));
        assert_eq!(forwarded_url_record(&long, 2), None, "bounded");
        let mut two = url_record(2, ConfChangeType::AddNode, &own);
        two.mut_changes().push(raft_proto::new_conf_change_single(
            4,
            ConfChangeType::AddNode,
        ));
        assert_eq!(forwarded_url_record(&proposal(&two), 2), None, "one change");
        let mut no_url = url_record(2, ConfChangeType::AddNode, &own);
        no_url.context = br#"{"raft_addr":"10.0.0.2:9002"}"#.to_vec().into();
        assert_eq!(forwarded_url_record(&proposal(&no_url), 2), None);
    }
}
