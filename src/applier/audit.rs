//! The events that are not about a task, as the applier makes them: a
//! user created or changed, a membership change the leader noted, a
//! recovery. Each is decided from its log entry alone (and the accounts as
//! the entries before it left them), so every node writes the same one at
//! the same seq. Whether they are written at all is the cluster version's
//! call, entry by entry (see `batch::decide`).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::accounts::{AccountOp, AccountOutcome, Accounts, UserView};
use crate::audit::{MemberChange, MemberEvent, RecoveryRecord};
use crate::raft::CommittedEntry;
use crate::task::{event_id, Command, Event, EventKind, FieldChange, Op};

/// An event of `kind` from `entry`, with no subject yet and seq 0 (the
/// board numbers it).
fn blank(entry: &CommittedEntry, kind: EventKind, id: Uuid, request_id: Uuid) -> Event {
    Event {
        raft_index: entry.index,
        term: entry.term,
        event_id: id,
        request_id,
        ..Event::blank(kind)
    }
}

/// The user an account command is about, as it is before the command.
pub fn user_before(accounts: &Accounts, op: &AccountOp<'_>) -> Option<UserView> {
    match op {
        AccountOp::UserUpdate(update) => accounts.user(&update.id).map(|u| u.view()),
        _ => None,
    }
}

/// The event of a user command that created or changed a user; `None` for
/// a refused one, one that changed nothing, and every other account
/// command (sessions and tokens are not events).
pub fn user_event(
    entry: &CommittedEntry,
    command: &Command,
    before: Option<UserView>,
    outcome: &AccountOutcome,
) -> Option<Event> {
    let AccountOutcome::User { user } = outcome else {
        return None;
    };
    let (kind, changes) = match (&command.op, before) {
        (Op::UserCreate(_) | Op::BootstrapAdmin(_), _) => (EventKind::UserCreated, BTreeMap::new()),
        (Op::UserUpdate(update), Some(before)) => {
            let mut changes = user_diff(&before, user);
            if update.password_hash.is_some() {
                // Never the hash: only that it changed.
                changes.insert(
                    "password".into(),
                    FieldChange {
                        from: Value::Null,
                        to: json!("changed"),
                    },
                );
            }
            if changes.is_empty() {
                return None;
            }
            (EventKind::UserUpdated, changes)
        }
        _ => return None,
    };
    let mut event = blank(
        entry,
        kind,
        event_id(command.request_id, 0),
        command.request_id,
    );
    event.user = Some(user.clone());
    event.changes = changes;
    event.at = command.at;
    event.actor = command.actor.clone();
    Some(event)
}

/// The fields of a user's view that differ, old and new value each.
fn user_diff(old: &UserView, new: &UserView) -> BTreeMap<String, FieldChange> {
    let fields: [(&str, Value, Value); 3] = [
        (
            "display_name",
            json!(old.display_name),
            json!(new.display_name),
        ),
        ("role", json!(old.role), json!(new.role)),
        ("disabled", json!(old.disabled), json!(new.disabled)),
    ];
    fields
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(name, from, to)| (name.to_string(), FieldChange { from, to }))
        .collect()
}

/// The event of a membership change the leader noted.
pub fn member_event(entry: &CommittedEntry, change: &MemberEvent) -> Event {
    let kind = match change.note.change {
        MemberChange::Added => EventKind::ClusterMemberAdded,
        MemberChange::Promoted => EventKind::ClusterMemberPromoted,
        MemberChange::Removed => EventKind::ClusterMemberRemoved,
    };
    let mut event = blank(entry, kind, change.note.event_id, change.note.event_id);
    event.member = Some(change.member.clone());
    event.at = change.note.at;
    event.actor = change.note.actor.clone();
    event
}

/// The id of the event that records a recovery: the same for every time
/// the recovered node proposes it, so MySQL tells whether it is written.
pub fn recovery_event_id(record: &RecoveryRecord) -> Uuid {
    let digest = Sha256::digest(format!("taskraft cluster_recovered {}", record.cluster_id));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version-8 (custom) UUID, RFC 9562.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// The event that records a recovery.
pub fn recovery_event(entry: &CommittedEntry, command: &Command, record: &RecoveryRecord) -> Event {
    let mut event = blank(
        entry,
        EventKind::ClusterRecovered,
        recovery_event_id(record),
        command.request_id,
    );
    event.recovery = Some(record.clone());
    event.at = record.recovered_at;
    event.actor = command.actor.clone();
    event
}
