//! What the Raft node hands the applier: how far the log is committed
//! ([`Committed`]), and a reader ([`CommittedLog`]) that returns committed
//! entries already decoded ([`CommittedEntry`]).
//!
//! The applier never sees raft-rs's `Entry`, the entry context's byte
//! layout or the command's serialization: those are this module's business
//! (and [`proposal`](super::proposal)'s). Entries are read from the durable
//! log store, so committed-but-unapplied entries wait on disk, not in
//! memory, while MySQL is slow or down.

use actix::prelude::*;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType};
use raft_proto::ConfChangeI;

use super::membership::{change_note, MemberAddr, Members};
use super::proposal::{decode_command, ProposalContext};
use super::storage::decode as decode_entry;
use super::storage::{LogError, LogStore};
use crate::audit::{MemberEvent, MemberRecord};
use crate::task::Command;

/// The log is committed up to `index` (the node tells the applier, and
/// again whenever `waited_on` changes).
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct Committed {
    pub index: u64,
    /// Someone waits for this node to apply: it leads (its clients wait
    /// for their writes), or a write or read taken here waits. A node
    /// nobody waits on may apply in larger batches, which cost MySQL less.
    pub waited_on: bool,
}

/// A committed log entry, decoded for the state machine.
#[derive(Clone, Debug, PartialEq)]
pub struct CommittedEntry {
    pub index: u64,
    pub term: u64,
    /// `None` for entries that carry no command (a new leader's empty entry,
    /// a membership change), and for one this version cannot decode.
    pub command: Option<Command>,
    /// Set when the entry holds a command this version cannot decode (a
    /// kind a newer version added): why. The applier stops before it; it
    /// is never skipped (see `crate::applier::stop`).
    pub undecodable: Option<String>,
    /// The node that took the request: only it answers the client (the
    /// request id is the command's).
    pub origin: Option<u64>,
    /// A membership change the leader noted for an event (not a member's
    /// URL record, nor a change proposed before notes existed).
    pub membership: Option<MemberEvent>,
}

/// Index and term of the last entry the log's snapshot replaced ((0, 0) if
/// none): the rows up to it come from a peer's MySQL, not from the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotPoint {
    pub index: u64,
    pub term: u64,
}

/// Why committed entries could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The entries asked for were replaced by a snapshot: the state they led
    /// to must be copied from a peer's database.
    #[error("log entry {0} was compacted away")]
    Compacted(u64),
    /// The log ends before an entry it was told is committed.
    #[error("the log does not hold committed entry {0}")]
    Missing(u64),
    #[error(transparent)]
    Log(LogError),
}

/// The applier's read-only view of the durable log.
#[derive(Clone)]
pub struct CommittedLog {
    store: LogStore,
}

impl CommittedLog {
    pub fn new(store: LogStore) -> CommittedLog {
        CommittedLog { store }
    }

    /// The committed entries `from..=to`, decoded, starting at `from`: as
    /// many as fit in `max_bytes` of log, at least one.
    pub fn read(
        &self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> Result<Vec<CommittedEntry>, ReadError> {
        let entries = match self.store.read_entries(from, to + 1, max_bytes) {
            Ok(entries) => entries,
            Err(LogError::Compacted(index)) => return Err(ReadError::Compacted(index)),
            Err(e) => return Err(ReadError::Log(e)),
        };
        if entries.first().map(|e| e.index) != Some(from) {
            return Err(ReadError::Missing(from));
        }
        Ok(entries.iter().map(decode).collect())
    }

    /// Where the log starts: the applier catches MySQL up from a peer to
    /// this point before it reads entries.
    pub fn snapshot(&self) -> SnapshotPoint {
        let metadata = self.store.snapshot_metadata();
        SnapshotPoint {
            index: metadata.index,
            term: metadata.term,
        }
    }

    /// The members' addresses as the log recorded them.
    pub fn members(&self) -> Members {
        self.store.members()
    }
}

/// The event a membership change entry makes, if the leader noted one. A
/// change that does not decode makes none (the Raft node logs it and does
/// not apply it either).
fn membership_event(entry: &Entry) -> Option<MemberEvent> {
    let change = if entry.get_entry_type() == EntryType::EntryConfChangeV2 {
        decode_entry::<ConfChangeV2>(&entry.data).ok()?
    } else {
        decode_entry::<ConfChange>(&entry.data).ok()?.into_v2()
    };
    let note = change_note(&change.context)?;
    let [single] = change.changes.as_slice() else {
        return None;
    };
    let addr: Option<MemberAddr> = serde_json::from_slice(&change.context).ok();
    Some(MemberEvent {
        member: MemberRecord {
            id: single.node_id,
            change: note.change,
            raft_addr: addr.as_ref().map(|a| a.raft_addr.clone()),
            url: addr.and_then(|a| a.url),
        },
        note,
    })
}

/// Turns a log entry into what the state machine needs. An entry that does
/// not decode comes with the reason, for the applier to stop at.
fn decode(entry: &Entry) -> CommittedEntry {
    let mut decoded = CommittedEntry {
        index: entry.index,
        term: entry.term,
        command: None,
        undecodable: None,
        origin: None,
        membership: None,
    };
    if entry.get_entry_type() != EntryType::EntryNormal {
        decoded.membership = membership_event(entry);
        return decoded;
    }
    if entry.data.is_empty() {
        return decoded;
    }
    match decode_command(&entry.data) {
        Ok(command) => {
            decoded.origin = ProposalContext::decode(&entry.context).map(|c| c.origin);
            decoded.command = Some(command);
        }
        Err(e) => decoded.undecodable = Some(e.to_string()),
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_handed_out_with_its_command_and_origin_and_others_without() {
        let command = Command {
            request_id: uuid::Uuid::from_u128(0xbeef),
            idempotency: None,
            at: crate::time::Timestamp(1_700_000_000_000),
            actor: Default::default(),
            op: crate::task::Op::Delete {
                id: crate::task::TaskId(uuid::Uuid::from_u128(1)),
                expected_version: None,
            },
        };
        let normal = Entry {
            index: 7,
            term: 2,
            data: super::super::proposal::encode_command(&command).into(),
            context: ProposalContext {
                origin: 3,
                request_id: command.request_id,
            }
            .encode()
            .into(),
            ..Entry::default()
        };
        assert_eq!(
            decode(&normal),
            CommittedEntry {
                index: 7,
                term: 2,
                command: Some(command),
                undecodable: None,
                origin: Some(3),
                membership: None,
            }
        );
        let leader_noop = Entry {
            index: 8,
            term: 3,
            ..Entry::default()
        };
        let garbage = Entry {
            index: 9,
            term: 3,
            data: b"not json".to_vec().into(),
            ..Entry::default()
        };
        assert_eq!(
            decode(&leader_noop),
            CommittedEntry {
                index: 8,
                term: 3,
                command: None,
                undecodable: None,
                origin: None,
                membership: None,
            }
        );
        let garbage = decode(&garbage);
        assert_eq!((garbage.index, garbage.command), (9, None));
        assert!(
            garbage.undecodable.is_some(),
            "an entry that is not a command is flagged, not passed off as empty"
        );
        // A kind a newer version added: the applier must stop at it.
        let future = Entry {
            index: 10,
            term: 3,
            data: br#"{"request_id":"00000000-0000-0000-0000-00000000beef","at":"2026-01-01T00:00:00Z","op":{"type":"create_board","name":"x"}}"#.to_vec().into(),
            ..Entry::default()
        };
        let future = decode(&future);
        assert_eq!(future.command, None);
        assert!(
            future
                .undecodable
                .as_deref()
                .is_some_and(|e| e.contains("create_board")),
            "{future:?}"
        );
    }
}
