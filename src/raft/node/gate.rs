//! The cluster-version gate at the Raft node (see [`crate::version`]):
//! a command of a kind some voter's version cannot decode is never
//! proposed. The node taking a request checks before proposing it; a
//! leader checks again what followers forward, in case their view of the
//! voters' versions lagged its own.

use raft::eraftpb::{Entry, EntryType, Message};
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
        let kept: Vec<Entry> = message
            .take_entries()
            .into_iter()
            .filter(|entry| match forwarded_allowed(entry, cluster_version) {
                Ok(()) => true,
                Err(why) => {
                    tracing::warn!(peer = from, %why, "dropped a forwarded command");
                    false
                }
            })
            .collect();
        message.set_entries(kept.into());
    }
}

/// Whether a leader may append `entry`, forwarded by a follower, at
/// `cluster_version`: any entry that is not a command, and a command whose
/// kind every voter can decode; not one this version cannot decode itself.
fn forwarded_allowed(entry: &Entry, cluster_version: Version) -> Result<(), Dropped> {
    if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
        return Ok(());
    }
    let command = decode_command(&entry.data).map_err(Dropped::Undecodable)?;
    Ok(version::admit(&command.op, cluster_version)?)
}

/// Why a leader drops a command a follower forwarded.
#[derive(Debug, thiserror::Error)]
enum Dropped {
    /// Newer than this build.
    #[error("this version cannot decode it: {0}")]
    Undecodable(serde_json::Error),
    #[error(transparent)]
    TooOld(#[from] TooOld),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::proposal::encode_command;
    use crate::task::{Op, TaskId};
    use crate::time::Timestamp;

    fn entry(op: Op) -> Entry {
        let command = Command {
            request_id: uuid::Uuid::from_u128(1),
            idempotency: None,
            at: Timestamp(0),
            actor: crate::accounts::Actor::system(),
            op,
        };
        Entry {
            data: encode_command(&command).into(),
            ..Entry::default()
        }
    }

    #[test]
    fn a_leader_keeps_what_every_voter_decodes_and_drops_the_rest() {
        let delete = entry(Op::Delete {
            id: TaskId(uuid::Uuid::from_u128(2)),
            expected_version: None,
        });
        let expire = entry(Op::ExpireKeys {
            before: Timestamp(0),
        });
        assert!(forwarded_allowed(&delete, version::BASELINE).is_ok());
        let refused = forwarded_allowed(&expire, version::BASELINE).unwrap_err();
        assert!(
            matches!(&refused, Dropped::TooOld(too_old) if too_old.kind == "expire_keys"),
            "{refused}"
        );
        assert!(forwarded_allowed(&expire, Version::new(0, 2, 0)).is_ok());
        let future = Entry {
            data: br#"{"request_id":"00000000-0000-0000-0000-000000000001","at":"2026-01-01T00:00:00Z","op":{"type":"create_board"}}"#.to_vec().into(),
            ..Entry::default()
        };
        assert!(matches!(
            forwarded_allowed(&future, Version::new(9, 0, 0)),
            Err(Dropped::Undecodable(_))
        ));
        assert!(forwarded_allowed(&Entry::default(), version::BASELINE).is_ok());
    }
}
