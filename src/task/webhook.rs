//! Outgoing webhooks: a board's admins register a URL; the leader posts
//! the board's events to it, signed, in seq order (`crate::webhooks`).
//!
//! Registration and delivery progress go through the log, so every node
//! knows every webhook and how far it got, and a new leader resumes where
//! the last report left off (at least once: what the old leader sent but
//! did not report is sent again, with the same delivery id).
//!
//! - [`NewWebhook`] (in `webhook_add`) carries the secret, made at the
//!   api node like any id: applying stays a function of the command.
//! - [`decide`] is the applier's decision for the three kinds against the
//!   webhooks of the boards a batch names ([`Registry`]) and the catalog
//!   at that entry: the board exists, the actor is its admin (for add and
//!   remove), at most [`MAX_PER_BOARD`] per board, progress only moves
//!   forward.
//! - [`WebhookChange`] is what the events carry. A client never reads
//!   the secret in one: an event's public form ([`public`]) drops it; only
//!   the stored payload keeps it, so catch-up, restore and rebuild
//!   reproduce the projection.
//!
//! Not here: the HTTP delivery, the SSRF guard and the signature
//! (`crate::webhooks`), and the rows (`crate::db::webhooks`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use super::catalog::{BoardId, BoardRole, Catalog};
use super::event::EventKind;
use crate::accounts::{Actor, Role};
use crate::time::Timestamp;

/// Webhooks one board may have.
pub const MAX_PER_BOARD: usize = 10;

/// Attempts a webhook's delivery log keeps (the newest).
pub const LOG_KEPT: usize = 100;

/// A webhook's identity: a UUIDv7 the api stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookId(pub Uuid);

impl WebhookId {
    pub fn generate() -> WebhookId {
        WebhookId(Uuid::now_v7())
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for WebhookId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(WebhookId)
    }
}

/// A webhook as the events and the api show it (never the secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    /// The board whose events it is sent.
    pub board_id: BoardId,
    /// http or https, checked by the api (`crate::webhooks::guard`).
    pub url: String,
    /// The kinds it is sent; empty: every kind a webhook may be sent.
    pub events: Vec<EventKind>,
    /// What it is for, as its admin wrote it (at most 500 characters).
    pub description: String,
    /// The stamp of the command that added it.
    pub created_at: Timestamp,
    /// The board admin (or site admin) who added it.
    pub created_by: Actor,
}

/// `webhook_add`'s payload: the webhook and its signing secret (64 hex
/// digits, random, made by the api node).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewWebhook {
    /// Stamped by the api, like a comment's.
    pub id: WebhookId,
    pub board_id: BoardId,
    /// Checked by the api before it is proposed.
    pub url: String,
    /// The kinds it is sent; empty: all a webhook may be sent.
    #[serde(default)]
    pub events: Vec<EventKind>,
    #[serde(default)]
    pub description: String,
    /// The HMAC-SHA256 key of its signatures: 64 hex digits.
    pub secret: String,
}

/// One try at sending one event, as the delivery log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The event sent.
    pub seq: u64,
    /// 1 for its first try, 2 for the first retry, …
    pub attempt: u32,
    pub at: Timestamp,
    /// The receiver's status code, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why there was no answer (refused, timed out, a private address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// `webhook_progress`'s payload: the leader's report since its last one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub webhook_id: WebhookId,
    /// The webhook's board: the applier loads that board's webhooks.
    pub board_id: BoardId,
    /// Every event of the board up to this seq was delivered (or is of a
    /// kind this webhook is not sent).
    pub delivered_seq: u64,
    /// The attempts since the last report, oldest first (at most
    /// [`LOG_KEPT`]: older ones would not be kept anyway).
    pub attempts: Vec<Attempt>,
}

/// What a webhook event records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum WebhookChange {
    Added {
        webhook: Webhook,
        /// Stored, never shown: see [`public`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    Removed {
        webhook: Webhook,
    },
    Delivered(Progress),
}

impl WebhookChange {
    pub fn board_id(&self) -> BoardId {
        match self {
            WebhookChange::Added { webhook, .. } | WebhookChange::Removed { webhook } => {
                webhook.board_id
            }
            WebhookChange::Delivered(p) => p.board_id,
        }
    }

    pub fn webhook_id(&self) -> WebhookId {
        match self {
            WebhookChange::Added { webhook, .. } | WebhookChange::Removed { webhook } => webhook.id,
            WebhookChange::Delivered(p) => p.webhook_id,
        }
    }
}

/// Serializes an event's webhook change as clients see it: without the
/// secret, whoever reads it.
pub fn public<S: Serializer>(change: &Option<WebhookChange>, s: S) -> Result<S::Ok, S::Error> {
    match change {
        Some(WebhookChange::Added { webhook, .. }) => Some(WebhookChange::Added {
            webhook: webhook.clone(),
            secret: None,
        })
        .serialize(s),
        other => other.serialize(s),
    }
}

/// Kinds a webhook is never sent: one user's notifications (their user's
/// alone), and the webhooks' own events (a URL and its progress are for
/// the board's admins; sending progress would report itself forever).
pub fn never_sent(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::NotificationAdded
            | EventKind::NotificationsRead
            | EventKind::WebhookAdded
            | EventKind::WebhookRemoved
            | EventKind::WebhookDelivered
    )
}

/// Whether events of `kind` are only for the board's admins (and site
/// admins).
pub fn admins_only(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::WebhookAdded | EventKind::WebhookRemoved | EventKind::WebhookDelivered
    )
}

/// What the applier knows of a webhook it decides about.
#[derive(Clone, Debug, PartialEq)]
pub struct Registered {
    pub webhook: Webhook,
    /// How far its delivery got, as the log has it.
    pub delivered_seq: u64,
}

/// The webhooks of the boards a batch names, as of the entry being
/// decided (the applier loads them, then each decision updates them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    /// Every webhook of those boards, by id.
    pub hooks: BTreeMap<WebhookId, Registered>,
}

/// A deterministic "no" to a webhook command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum WebhookRejection {
    BoardNotFound { board_id: BoardId },
    NotAdmin { board_id: BoardId },
    NotFound { id: WebhookId },
    Limit { limit: usize },
}

/// The change one webhook command makes, or why it makes none (progress
/// on a webhook removed meanwhile makes none, and is no error).
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Record(WebhookChange),
    Nothing,
    Reject(WebhookRejection),
}

/// The three webhook commands.
#[derive(Clone, Copy, Debug)]
pub enum WebhookOp<'a> {
    Add(&'a NewWebhook),
    Remove { id: WebhookId, board_id: BoardId },
    Progress(&'a Progress),
}

/// Decides one webhook command at `at` by `actor` (site role `site`)
/// against `registry` and `catalog`, and updates `registry`.
pub fn decide(
    registry: &mut Registry,
    catalog: &Catalog,
    actor: &Actor,
    site: Option<Role>,
    at: Timestamp,
    op: WebhookOp<'_>,
) -> Decision {
    let admin = |board_id: &BoardId| -> Result<(), WebhookRejection> {
        let role = site.and_then(|site| catalog.role(board_id, &actor.id, site));
        match (catalog.board(board_id).is_some(), role) {
            (false, _) => Err(WebhookRejection::BoardNotFound {
                board_id: *board_id,
            }),
            (true, Some(BoardRole::Admin)) => Ok(()),
            (true, _) => Err(WebhookRejection::NotAdmin {
                board_id: *board_id,
            }),
        }
    };
    match op {
        WebhookOp::Add(new) => {
            if let Err(no) = admin(&new.board_id) {
                return Decision::Reject(no);
            }
            let on_board = registry
                .hooks
                .values()
                .filter(|r| r.webhook.board_id == new.board_id)
                .count();
            if on_board >= MAX_PER_BOARD {
                return Decision::Reject(WebhookRejection::Limit {
                    limit: MAX_PER_BOARD,
                });
            }
            let webhook = Webhook {
                id: new.id,
                board_id: new.board_id,
                url: new.url.clone(),
                events: new.events.clone(),
                description: new.description.clone(),
                created_at: at,
                created_by: actor.clone(),
            };
            // An id is stamped fresh by the api; one seen already is a
            // retried proposal, which adds nothing twice.
            if registry.hooks.contains_key(&new.id) {
                return Decision::Nothing;
            }
            registry.hooks.insert(
                new.id,
                Registered {
                    webhook: webhook.clone(),
                    delivered_seq: 0,
                },
            );
            Decision::Record(WebhookChange::Added {
                webhook,
                secret: Some(new.secret.clone()),
            })
        }
        WebhookOp::Remove { id, board_id } => {
            if let Err(no) = admin(&board_id) {
                return Decision::Reject(no);
            }
            match registry.hooks.get(&id) {
                Some(r) if r.webhook.board_id == board_id => {
                    let webhook = r.webhook.clone();
                    registry.hooks.remove(&id);
                    Decision::Record(WebhookChange::Removed { webhook })
                }
                _ => Decision::Reject(WebhookRejection::NotFound { id }),
            }
        }
        WebhookOp::Progress(progress) => {
            // The leader's report: no actor to check, only that the
            // webhook is still there and that nothing goes backwards (a
            // report from a deposed leader may arrive after a newer one).
            let Some(r) = registry.hooks.get_mut(&progress.webhook_id) else {
                return Decision::Nothing;
            };
            if r.webhook.board_id != progress.board_id {
                return Decision::Nothing;
            }
            let delivered_seq = r.delivered_seq.max(progress.delivered_seq);
            if delivered_seq == r.delivered_seq && progress.attempts.is_empty() {
                return Decision::Nothing;
            }
            r.delivered_seq = delivered_seq;
            let mut attempts = progress.attempts.clone();
            if attempts.len() > LOG_KEPT {
                attempts.drain(..attempts.len() - LOG_KEPT);
            }
            Decision::Record(WebhookChange::Delivered(Progress {
                webhook_id: progress.webhook_id,
                board_id: progress.board_id,
                delivered_seq,
                attempts,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::catalog::{BoardMember, BoardRecord, Cataloged};

    fn ada() -> Actor {
        Actor {
            id: "ada".into(),
            name: "Ada".into(),
        }
    }

    fn new(n: u128, board_id: BoardId) -> NewWebhook {
        NewWebhook {
            id: WebhookId(Uuid::from_u128(n)),
            board_id,
            url: "https://example.com/hook".into(),
            events: vec![],
            description: String::new(),
            secret: "ab".repeat(32),
        }
    }

    fn catalog_with_board() -> (Catalog, BoardId) {
        let mut catalog = Catalog::default();
        let board_id = BoardId(Uuid::from_u128(7));
        catalog.fold(&Cataloged::Board(BoardRecord {
            id: board_id,
            name: "B".into(),
            archived: false,
        }));
        catalog.fold(&Cataloged::Member(BoardMember {
            board_id,
            user_id: "bob".into(),
            role: Some(BoardRole::Member),
        }));
        (catalog, board_id)
    }

    #[test]
    fn only_a_board_admin_adds_and_an_eleventh_is_refused() {
        let (catalog, board) = catalog_with_board();
        let mut registry = Registry::default();
        let bob = Actor {
            id: "bob".into(),
            name: "Bob".into(),
        };
        let refused = decide(
            &mut registry,
            &catalog,
            &bob,
            Some(Role::Member),
            Timestamp(1),
            WebhookOp::Add(&new(1, board)),
        );
        assert_eq!(
            refused,
            Decision::Reject(WebhookRejection::NotAdmin { board_id: board })
        );
        for n in 0..MAX_PER_BOARD as u128 {
            let d = decide(
                &mut registry,
                &catalog,
                &ada(),
                Some(Role::Admin),
                Timestamp(1),
                WebhookOp::Add(&new(n + 1, board)),
            );
            assert!(matches!(d, Decision::Record(_)), "webhook {n}: {d:?}");
        }
        let d = decide(
            &mut registry,
            &catalog,
            &ada(),
            Some(Role::Admin),
            Timestamp(1),
            WebhookOp::Add(&new(99, board)),
        );
        assert_eq!(
            d,
            Decision::Reject(WebhookRejection::Limit {
                limit: MAX_PER_BOARD
            })
        );
    }

    #[test]
    fn progress_never_goes_back_and_stops_with_the_webhook() {
        let (catalog, board) = catalog_with_board();
        let mut registry = Registry::default();
        let hook = new(1, board);
        decide(
            &mut registry,
            &catalog,
            &ada(),
            Some(Role::Admin),
            Timestamp(1),
            WebhookOp::Add(&hook),
        );
        let report = |seq| Progress {
            webhook_id: hook.id,
            board_id: board,
            delivered_seq: seq,
            attempts: vec![],
        };
        let ahead = decide(
            &mut registry,
            &catalog,
            &Actor::system(),
            None,
            Timestamp(2),
            WebhookOp::Progress(&report(10)),
        );
        assert!(matches!(ahead, Decision::Record(_)));
        let stale = decide(
            &mut registry,
            &catalog,
            &Actor::system(),
            None,
            Timestamp(3),
            WebhookOp::Progress(&report(4)),
        );
        assert_eq!(stale, Decision::Nothing, "a stale report records nothing");
        assert_eq!(registry.hooks[&hook.id].delivered_seq, 10);
        decide(
            &mut registry,
            &catalog,
            &ada(),
            Some(Role::Admin),
            Timestamp(4),
            WebhookOp::Remove {
                id: hook.id,
                board_id: board,
            },
        );
        let after = decide(
            &mut registry,
            &catalog,
            &Actor::system(),
            None,
            Timestamp(5),
            WebhookOp::Progress(&report(11)),
        );
        assert_eq!(after, Decision::Nothing);
    }

    #[test]
    fn the_public_form_of_an_added_webhook_has_no_secret() {
        let (_, board) = catalog_with_board();
        let hook = new(1, board);
        let change = Some(WebhookChange::Added {
            webhook: Webhook {
                id: hook.id,
                board_id: board,
                url: hook.url.clone(),
                events: vec![],
                description: String::new(),
                created_at: Timestamp(1),
                created_by: ada(),
            },
            secret: Some(hook.secret.clone()),
        });
        let shown = public(&change, serde_json::value::Serializer).unwrap();
        assert!(!shown.to_string().contains(&hook.secret), "{shown}");
        let stored = serde_json::to_value(&change).unwrap();
        assert!(stored.to_string().contains(&hook.secret), "{stored}");
    }
}
