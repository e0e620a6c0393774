//! What the events that are not about a task say: a cluster membership
//! change, a recovery. (User events carry the user as the api shows it,
//! [`crate::accounts::UserView`].)
//!
//! These are plain records: the Raft node writes the membership one into a
//! conf change's context when it proposes the change, `recover` keeps the
//! recovery one in the log store, and the applier turns each into an event
//! at the log entry that made it, in the same table and seq as task events
//! (see `sql/V6__audit_events.sql`).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// What a membership change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberChange {
    /// Joined as a learner (it receives the log, does not vote yet).
    Added,
    /// A learner became a voter.
    Promoted,
    Removed,
}

/// A member as a membership event names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub id: u64,
    pub change: MemberChange,
    /// Its Raft address, when the change named one (not for a removal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What `taskraft recover --force-new-cluster` did, as its event says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryRecord {
    /// The surviving node, now the only voter.
    pub node_id: u64,
    pub previous_cluster_id: String,
    pub cluster_id: String,
    /// The members before, the survivor included.
    pub previous_voters: Vec<u64>,
    pub previous_learners: Vec<u64>,
    /// The last log index the survivor had before the recovery.
    pub previous_last_index: u64,
    /// When `recover` ran.
    pub recovered_at: Timestamp,
}

/// What the leader adds to a membership change it proposes (in the conf
/// change's context, next to the member's addresses), so that every node
/// writes the same event for it at the same entry: who asked, when, and
/// the event's id. Records of a member's URL, and changes proposed before
/// this existed, carry none and make no event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNote {
    pub event_id: uuid::Uuid,
    pub change: MemberChange,
    pub actor: crate::accounts::Actor,
    pub at: Timestamp,
}

/// A committed membership change that makes an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEvent {
    pub member: MemberRecord,
    pub note: ChangeNote,
}
