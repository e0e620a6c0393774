//! The cluster-version gate at the Raft node (see [`crate::version`]):
//! a command of a kind some voter's version cannot decode is never
//! proposed. The node taking a request checks before proposing it; a
//! leader checks again what followers forward, in case their view of the
//! voters' versions lagged its own.

use raft::eraftpb::{EntryType, Message};
use raft::StateRole;

use super::RaftNode;
use crate::raft::proposal::decode_command;
use crate::task::Command;
use crate::version::{self, TooOld, Version};

impl RaftNode {
    /// The lowest version among the voters, as this node knows them.
    pub(super) fn cluster_version(&self) -> Version {
        let voters = self.raw.raft.prs().conf().voters().ids();
        self.versions
            .cluster_version(self.id, version::this_version(), voters.iter())
    }

    /// Whether `command` may be proposed now.
    pub(super) fn admit_kind(&self, command: &Command) -> Result<(), TooOld> {
        match version::admit(&command.op, self.cluster_version()) {
            // Fault tests only (`failpoints`): propose it anyway, so a test
            // can show what an old node does with an entry it cannot decode.
            Err(_) if crate::crash::switch("raft_skip_version_gate") => {
                tracing::warn!("failpoint: proposing past the cluster-version gate");
                Ok(())
            }
            other => other,
        }
    }

    /// As leader, drops forwarded commands the cluster version does not
    /// allow (the follower that took them gets no answer and times out;
    /// it refuses them itself once it has heard the voters' versions).
    pub(super) fn drop_forwarded_too_new(&mut self, message: &mut Message) {
        if self.raw.raft.state != StateRole::Leader {
            return;
        }
        let cluster_version = self.cluster_version();
        // Every kind this build knows was introduced at or before it: with
        // every voter at least as new, nothing needs decoding.
        if cluster_version >= version::this_version() {
            return;
        }
        let from = message.from;
        let entries = message.take_entries().into_iter().filter(|entry| {
            if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
                return true;
            }
            let Ok(command) = decode_command(&entry.data) else {
                tracing::warn!(
                    peer = from,
                    "dropped a forwarded entry this version cannot decode"
                );
                return false;
            };
            match version::admit(&command.op, cluster_version) {
                Ok(()) => true,
                Err(too_old) => {
                    tracing::warn!(peer = from, %too_old, "dropped a forwarded command");
                    false
                }
            }
        });
        let kept: Vec<_> = entries.collect();
        message.set_entries(kept.into());
    }
}
