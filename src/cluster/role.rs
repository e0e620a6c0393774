//! A member's role in the configuration.

use serde::{Deserialize, Serialize};

use crate::raft::MemberStatus;

/// A voter counts towards quorum and may lead; a learner is sent the log
/// and does neither, until it is promoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Learner,
    Voter,
}

impl MemberRole {
    /// The role the Raft node reports for `member`. The node names it as
    /// text (`voter`, `learner`); this is the one place that reads it.
    pub fn of(member: &MemberStatus) -> MemberRole {
        match member.role {
            "learner" => MemberRole::Learner,
            _ => MemberRole::Voter,
        }
    }
}
