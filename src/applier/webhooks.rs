//! Deciding webhook commands at apply (`crate::task::webhook`).
//!
//! The batch loads the webhooks of the boards its webhook commands name
//! ([`crate::db::webhooks::registry`]); each command is decided against
//! them and the catalog at its entry, and recorded as a `webhook_*` event
//! numbered by the board with the rest. The projection is written from
//! those events (`crate::db::webhooks::write`), as catch-up, restore and
//! rebuild write it.

use crate::accounts::Role;
use crate::raft::CommittedEntry;
use crate::task::webhook::{self, Decision, Registry, WebhookOp};
use crate::task::{
    self, event_id, Board, Command, Event, EventKind, Op, Outcome, Rejection, WebhookChange,
};

/// The webhook command `command`'s outcome (`None`: not a webhook
/// command). `site` is the actor's site role at this entry.
pub fn decide(
    board: &mut Board,
    registry: &mut Registry,
    site: Option<Role>,
    entry: &CommittedEntry,
    command: &Command,
) -> Option<task::Applied> {
    let op = match &command.op {
        Op::WebhookAdd(new) => WebhookOp::Add(new),
        Op::WebhookRemove { id, board_id } => WebhookOp::Remove {
            id: *id,
            board_id: *board_id,
        },
        Op::WebhookProgress(progress) => WebhookOp::Progress(progress),
        _ => return None,
    };
    let decision = webhook::decide(
        registry,
        board.catalog(),
        &command.actor,
        site,
        command.at,
        op,
    );
    let outcome = match decision {
        Decision::Reject(refused) => Outcome::Rejected {
            rejection: Rejection::Webhook { refused },
        },
        Decision::Nothing => Outcome::Recorded { seq: None },
        Decision::Record(change) => {
            let kind = match &change {
                WebhookChange::Added { .. } => EventKind::WebhookAdded,
                WebhookChange::Removed { .. } => EventKind::WebhookRemoved,
                WebhookChange::Delivered(_) => EventKind::WebhookDelivered,
            };
            let shown = match &change {
                WebhookChange::Added { webhook, secret } => {
                    Some((webhook.clone(), secret.clone(), false))
                }
                WebhookChange::Removed { webhook } => Some((webhook.clone(), None, true)),
                WebhookChange::Delivered(_) => None,
            };
            let added = match &change {
                WebhookChange::Added { webhook, .. } => Some(webhook.id),
                _ => None,
            };
            let seq = board.record_event(event(entry, command, kind, change));
            // Delivery starts after the event that added it (as the
            // projection has it).
            if let Some(r) = added.and_then(|id| registry.hooks.get_mut(&id)) {
                r.delivered_seq = seq;
            }
            match shown {
                Some((webhook, secret, deleted)) => Outcome::Webhook {
                    webhook,
                    secret,
                    deleted,
                    seq,
                },
                None => Outcome::Recorded { seq: Some(seq) },
            }
        }
    };
    Some(task::Applied {
        outcome,
        replayed: false,
    })
}

fn event(
    entry: &CommittedEntry,
    command: &Command,
    kind: EventKind,
    change: WebhookChange,
) -> Event {
    Event {
        seq: 0,
        raft_index: entry.index,
        ordinal: 0,
        term: entry.term,
        event_id: event_id(command.request_id, 0),
        webhook: Some(change),
        at: command.at,
        request_id: command.request_id,
        actor: command.actor.clone(),
        ..Event::blank(kind)
    }
}
