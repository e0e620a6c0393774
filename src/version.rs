//! Versions, and the gate that keeps a mixed-version cluster from
//! diverging during a rolling upgrade.
//!
//! - [`VERSION`] is this build's (`Cargo.toml`); `/api/cluster` shows it
//!   with the commit it was built from (`version`, `commit`), and so do
//!   `taskraft status` and `taskraft_build_info{version,commit}`.
//! - Each node announces its version in the hello it sends on every Raft
//!   connection it dials ([`crate::transport::codec::Hello`]); every node
//!   dials every peer, so each learns every reachable peer's version, and
//!   again after every reconnect (a restart with a new binary). No extra
//!   message or round trip.
//! - The **cluster version** is the lowest version among the voters, as
//!   this node knows them: its own, each peer's last hello, and
//!   [`BASELINE`] for a voter it has not heard from (it may be old), or
//!   whose hello carries no version (a build from before versions were
//!   announced).
//! - Each command kind has the version that introduced it ([`introduced`]:
//!   the one table where a new kind is registered; the `match` makes
//!   forgetting it a compile error). The node taking a request refuses to
//!   propose a kind the cluster version does not reach (HTTP 503,
//!   `cluster_version_too_old`, with `Retry-After`: the write succeeds once
//!   the rollout ends), so no voter is ever handed an entry it cannot
//!   decode. If one is anyway (a learner, or the gate bypassed in a test),
//!   its applier stops at it ([`crate::applier::stop`]); it never skips it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use crate::task::Op;

/// This build's version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version of a node that announces none: every command kind that
/// existed before versions were announced was introduced in it.
pub const BASELINE: Version = Version::new(0, 1, 0);

/// `major.minor.patch`; a pre-release or build suffix is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }
}

/// A version not known is taken as [`BASELINE`], the oldest.
impl Default for Version {
    fn default() -> Version {
        BASELINE
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Serializes a [`Version`] as its text, `0.1.0`.
pub fn serialize_display<S: serde::Serializer>(version: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(version)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version {0:?} is not major.minor.patch")]
pub struct BadVersion(pub String);

impl FromStr for Version {
    type Err = BadVersion;
    fn from_str(text: &str) -> Result<Version, BadVersion> {
        let bad = || BadVersion(text.to_string());
        let core = text.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.').map(|p| p.parse::<u64>().map_err(|_| bad()));
        let version = Version::new(
            parts.next().ok_or_else(bad)??,
            parts.next().ok_or_else(bad)??,
            parts.next().ok_or_else(bad)??,
        );
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(version)
    }
}

/// The version this node runs and announces, as written: [`VERSION`]. A
/// `failpoints` build may claim another with `TASKRAFT_TEST_VERSION`
/// (tests of a mixed-version cluster); a release build cannot.
pub fn announced() -> String {
    #[cfg(feature = "failpoints")]
    if let Ok(version) = std::env::var("TASKRAFT_TEST_VERSION") {
        if version.parse::<Version>().is_ok() {
            return version;
        }
    }
    VERSION.to_string()
}

/// [`announced`], parsed.
pub fn this_version() -> Version {
    announced().parse().unwrap_or(BASELINE)
}

/// The gating table: each command kind's name and the version that
/// introduced it. A kind is proposed only once every voter runs at least
/// that version. **Register every new kind here**, with the version that
/// first ships it.
pub fn introduced(op: &Op) -> (&'static str, Version) {
    match op {
        // A task placed on a board, moved between columns or boards, or
        // archived: an older node would decode it without its placement.
        Op::Create(_) if op.places() => ("create", BOARDS),
        Op::Update { .. } if op.places() => ("update", BOARDS),
        Op::Create(_) => ("create", BASELINE),
        Op::Update { .. } => ("update", BASELINE),
        Op::Delete { .. } => ("delete", BASELINE),
        Op::ExpireKeys { .. } => ("expire_keys", Version::new(0, 2, 0)),
        // Accounts (`crate::accounts`).
        Op::UserCreate(_) => ("user_create", Version::new(0, 2, 0)),
        Op::BootstrapAdmin(_) => ("bootstrap_admin", Version::new(0, 2, 0)),
        Op::UserUpdate(_) => ("user_update", Version::new(0, 2, 0)),
        Op::SessionCreate(_) => ("session_create", Version::new(0, 2, 0)),
        Op::SessionEnd { .. } => ("session_end", Version::new(0, 2, 0)),
        Op::TokenCreate(_) => ("token_create", Version::new(0, 2, 0)),
        Op::TokenRevoke { .. } => ("token_revoke", Version::new(0, 2, 0)),
        Op::PruneSessions { .. } => ("prune_sessions", Version::new(0, 2, 0)),
        // The cluster version, decided in the log, and what it switches on.
        Op::SetClusterVersion { .. } => ("set_cluster_version", AUDIT_EVENTS),
        Op::RecordRecovery(_) => ("record_recovery", AUDIT_EVENTS),
        // Boards (`crate::task::catalog`).
        Op::BoardCreate(_) => ("board_create", BOARDS),
        Op::BoardUpdate { .. } => ("board_update", BOARDS),
        Op::BoardMemberSet { .. } => ("board_member_set", BOARDS),
        Op::ColumnCreate(_) => ("column_create", BOARDS),
        // A column change under `If-Match`: an older node would decode it
        // without the version and apply what this one refuses.
        Op::ColumnUpdate {
            expected_version: Some(_),
            ..
        } => ("column_update", COLUMN_VERSIONS),
        Op::ColumnDelete {
            expected_version: Some(_),
            ..
        } => ("column_delete", COLUMN_VERSIONS),
        Op::ColumnUpdate { .. } => ("column_update", BOARDS),
        Op::ColumnDelete { .. } => ("column_delete", BOARDS),
        // Comments (`crate::task::comment`).
        Op::CommentAdd(_) => ("comment_add", COMMENTS),
        Op::CommentEdit { .. } => ("comment_edit", COMMENTS),
        Op::CommentDelete { .. } => ("comment_delete", COMMENTS),
        Op::Checklist(_) => ("checklist", CHECKLISTS),
        // Notifications (`crate::task::notification`).
        Op::NotificationsRead(_) => ("notifications_read", NOTIFICATIONS),
        Op::DueRemind { .. } => ("due_remind", NOTIFICATIONS),
        // Webhooks (`crate::task::webhook`).
        Op::WebhookAdd(_) => ("webhook_add", WEBHOOKS),
        Op::WebhookRemove { .. } => ("webhook_remove", WEBHOOKS),
        Op::WebhookProgress(_) => ("webhook_progress", WEBHOOKS),
        // A kind only the test build knows, as a future version's would be.
        #[cfg(feature = "failpoints")]
        Op::FutureCreate(_) => ("future_create", FUTURE),
    }
}

/// From this cluster version on (as the log decides it, with a
/// `set_cluster_version` entry), user changes, membership changes and
/// recoveries write events, in the same seq as task events.
pub const AUDIT_EVENTS: Version = Version::new(0, 3, 0);

/// Boards, columns, board members and archived cards.
pub const BOARDS: Version = Version::new(0, 4, 0);

/// Comments on cards.
pub const COMMENTS: Version = Version::new(0, 5, 0);

/// Checklists on cards (`crate::task::checklist`), in the same release.
pub const CHECKLISTS: Version = Version::new(0, 5, 0);

/// Mentions, due reminders and read marks: from this cluster version on
/// (as the log decides it) the applier derives notifications, so nodes of
/// one cluster never disagree on who was notified.
pub const NOTIFICATIONS: Version = Version::new(0, 5, 0);

/// Outgoing webhooks: their registration and delivery progress are
/// decided in the log, so a node that does not know the kinds never sees
/// one.
pub const WEBHOOKS: Version = Version::new(0, 6, 0);

/// Column changes under `If-Match` (a column's `version`, decided at
/// apply).
pub const COLUMN_VERSIONS: Version = Version::new(0, 7, 0);

/// The version the test-only kind `future_create` claims to need.
#[cfg(feature = "failpoints")]
pub const FUTURE: Version = Version::new(99, 0, 0);

/// Why a command was not proposed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{kind}` commands need every voter at version {needs} or later; the cluster version is \
     {cluster_version} (the lowest among the voters); retry once the upgrade is complete"
)]
pub struct TooOld {
    pub kind: &'static str,
    pub needs: Version,
    pub cluster_version: Version,
}

/// Whether `op` may be proposed at `cluster_version`.
pub fn admit(op: &Op, cluster_version: Version) -> Result<(), TooOld> {
    let (kind, needs) = introduced(op);
    if needs <= cluster_version {
        Ok(())
    } else {
        Err(TooOld {
            kind,
            needs,
            cluster_version,
        })
    }
}

/// The versions peers announced in their hellos, shared between the
/// transport (which records them) and the Raft node (which gates on them).
#[derive(Clone, Debug, Default)]
pub struct PeerVersions(Arc<Mutex<HashMap<u64, Version>>>);

impl PeerVersions {
    /// Records what `node` announced (`None`: an older build announcing
    /// nothing, taken as [`BASELINE`]).
    pub fn heard(&self, node: u64, announced: Option<&str>) {
        let version = announced.and_then(|v| v.parse().ok()).unwrap_or(BASELINE);
        if let Ok(mut versions) = self.0.lock() {
            versions.insert(node, version);
        }
    }

    pub fn get(&self, node: u64) -> Option<Version> {
        self.0.lock().ok().and_then(|v| v.get(&node).copied())
    }

    /// The cluster version: the lowest among `voters`, `me` running
    /// `mine`, and any voter not heard from yet counted as [`BASELINE`].
    pub fn cluster_version(
        &self,
        me: u64,
        mine: Version,
        voters: impl IntoIterator<Item = u64>,
    ) -> Version {
        voters
            .into_iter()
            .map(|id| {
                if id == me {
                    mine
                } else {
                    self.get(id).unwrap_or(BASELINE)
                }
            })
            .min()
            .unwrap_or(mine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskId;

    #[test]
    fn versions_parse_and_order_numerically() {
        assert_eq!("0.10.2".parse(), Ok(Version::new(0, 10, 2)));
        assert_eq!("1.2.3-rc.1".parse(), Ok(Version::new(1, 2, 3)));
        assert!("1.2".parse::<Version>().is_err());
        assert!("1.2.3.4".parse::<Version>().is_err());
        assert!("x.2.3".parse::<Version>().is_err());
        assert!(Version::new(0, 10, 0) > Version::new(0, 9, 9));
        assert!(
            VERSION.parse::<Version>().is_ok(),
            "Cargo.toml's version parses"
        );
        assert!(this_version() >= BASELINE);
    }

    #[test]
    fn the_cluster_version_is_the_lowest_voter_and_an_unheard_voter_counts_as_old() {
        let versions = PeerVersions::default();
        let new = Version::new(0, 3, 0);
        assert_eq!(versions.cluster_version(1, new, [1]), new);
        assert_eq!(
            versions.cluster_version(1, new, [1, 2, 3]),
            BASELINE,
            "2 and 3 not heard from"
        );
        versions.heard(2, Some("0.3.1"));
        versions.heard(3, Some("0.2.0"));
        assert_eq!(
            versions.cluster_version(1, new, [1, 2, 3]),
            Version::new(0, 2, 0)
        );
        assert_eq!(
            versions.cluster_version(1, new, [1, 2]),
            new,
            "a peer that is no longer a voter does not count"
        );
        versions.heard(3, None);
        assert_eq!(versions.cluster_version(1, new, [1, 2, 3]), BASELINE);
        versions.heard(3, Some("0.3.0"));
        assert_eq!(versions.cluster_version(1, new, [1, 2, 3]), new);
    }

    #[test]
    fn todays_kinds_pass_the_gate_at_the_baseline_and_a_newer_kind_waits() {
        let op = Op::Delete {
            id: TaskId(uuid::Uuid::from_u128(1)),
            expected_version: None,
        };
        assert_eq!(admit(&op, BASELINE), Ok(()));
        let (kind, needs) = introduced(&op);
        assert_eq!((kind, needs), ("delete", BASELINE));
        let err = TooOld {
            kind: "create_board",
            needs: Version::new(0, 2, 0),
            cluster_version: BASELINE,
        };
        assert!(err.to_string().contains("0.2.0") && err.to_string().contains("0.1.0"));
    }

    #[test]
    fn account_kinds_wait_for_every_voter_at_0_2_0() {
        // A 0.1.0 node cannot decode them: its applier would stop.
        let user = uuid::Uuid::from_u128(7);
        let ops = [
            Op::SessionEnd { hash: "h".into() },
            Op::TokenRevoke { id: user },
            Op::UserUpdate(crate::accounts::UserUpdate {
                id: user,
                ..Default::default()
            }),
        ];
        for op in ops {
            let (kind, needs) = introduced(&op);
            assert_eq!(needs, Version::new(0, 2, 0), "{kind}");
            let refused = admit(&op, BASELINE).unwrap_err();
            assert_eq!(refused.kind, kind);
            assert_eq!(admit(&op, Version::new(0, 2, 0)), Ok(()));
        }
    }

    #[test]
    fn comment_kinds_wait_for_every_voter_at_0_5_0() {
        // A 0.4.0 node cannot decode them: its applier would stop.
        let task = TaskId(uuid::Uuid::from_u128(1));
        let comment = crate::task::CommentId(uuid::Uuid::from_u128(2));
        let ops = [
            Op::CommentAdd(crate::task::NewComment {
                id: comment,
                task_id: task,
                body: "b".into(),
            }),
            Op::CommentEdit {
                id: comment,
                task_id: task,
                expected_version: None,
                body: "b".into(),
            },
            Op::CommentDelete {
                id: comment,
                task_id: task,
            },
        ];
        for op in ops {
            let (kind, needs) = introduced(&op);
            assert_eq!(needs, COMMENTS, "{kind}");
            assert!(admit(&op, BOARDS).is_err(), "{kind}");
            assert_eq!(admit(&op, COMMENTS), Ok(()));
        }
        assert!(
            this_version() >= COMMENTS,
            "this build ships comments (Cargo.toml)"
        );
    }

    #[test]
    fn notification_kinds_wait_for_every_voter_at_0_5_0() {
        let ops = [
            Op::NotificationsRead(crate::task::ReadMark {
                user_id: "u".into(),
                upto: Some(1),
                ids: vec![],
            }),
            Op::DueRemind {
                task_id: TaskId(uuid::Uuid::from_u128(1)),
                due_date: crate::time::Date::new(2026, 12, 7).unwrap(),
            },
        ];
        for op in ops {
            let (kind, needs) = introduced(&op);
            assert_eq!(needs, NOTIFICATIONS, "{kind}");
            assert!(admit(&op, BOARDS).is_err(), "{kind}");
            assert_eq!(admit(&op, NOTIFICATIONS), Ok(()));
        }
    }

    #[test]
    fn webhook_kinds_wait_for_every_voter_at_0_6_0() {
        use crate::task::{BoardId, NewWebhook, Progress, WebhookId};
        let id = WebhookId(uuid::Uuid::from_u128(1));
        let board_id = BoardId(uuid::Uuid::from_u128(2));
        let ops = [
            Op::WebhookAdd(NewWebhook {
                id,
                board_id,
                url: "https://example.com/".into(),
                events: vec![],
                description: String::new(),
                secret: "00".repeat(32),
            }),
            Op::WebhookRemove { id, board_id },
            Op::WebhookProgress(Progress {
                webhook_id: id,
                board_id,
                delivered_seq: 1,
                attempts: vec![],
            }),
        ];
        for op in ops {
            let (kind, needs) = introduced(&op);
            assert_eq!(needs, WEBHOOKS, "{kind}");
            assert!(admit(&op, NOTIFICATIONS).is_err(), "{kind}");
            assert_eq!(admit(&op, WEBHOOKS), Ok(()));
        }
        assert!(
            VERSION.parse::<Version>().unwrap() >= WEBHOOKS,
            "this build must claim the version its kinds need"
        );
    }

    #[test]
    fn column_changes_under_if_match_wait_for_every_voter_at_0_7_0() {
        use crate::task::{ColumnId, ColumnPatch};
        let id = ColumnId(uuid::Uuid::from_u128(1));
        let guarded = [
            Op::ColumnUpdate {
                id,
                expected_version: Some(1),
                patch: ColumnPatch::default(),
            },
            Op::ColumnDelete {
                id,
                expected_version: Some(1),
            },
        ];
        for op in guarded {
            let (kind, needs) = introduced(&op);
            assert_eq!(needs, COLUMN_VERSIONS, "{kind}");
            assert!(admit(&op, WEBHOOKS).is_err(), "{kind}");
            assert_eq!(admit(&op, COLUMN_VERSIONS), Ok(()));
        }
        let unguarded = Op::ColumnDelete {
            id,
            expected_version: None,
        };
        assert_eq!(
            introduced(&unguarded),
            ("column_delete", BOARDS),
            "without If-Match a column change reads as before"
        );
        assert!(
            VERSION.parse::<Version>().unwrap() >= COLUMN_VERSIONS,
            "this build must claim the version its commands need"
        );
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn the_test_only_kind_is_refused_below_its_version() {
        let op = Op::FutureCreate(crate::task::NewTask {
            id: TaskId(uuid::Uuid::from_u128(1)),
            title: "t".into(),
            description: String::new(),
            status: crate::task::Status::Todo,
            position: None,
            priority: crate::task::Priority::Low,
            assignee: None,
            labels: vec![],
            due_date: None,
            board_id: None,
            column_id: None,
        });
        assert!(admit(&op, BASELINE).is_err());
        assert_eq!(admit(&op, FUTURE), Ok(()));
    }
}
