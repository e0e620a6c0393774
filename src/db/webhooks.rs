//! The `webhooks` and `webhook_deliveries` tables (V15): the fold of the
//! webhook events into rows, the applier's read of a batch's webhooks,
//! and the reads of the api and the leader's delivery.
//!
//! Every writer (the applier, catch-up, restore, rebuild) turns the events
//! it writes into SQL here, in seq order, so the tables are a function of
//! the events wherever they were written; [`fold`] is the same function in
//! memory, for rebuild and its check.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::*;
use mysql_async::{Row, Value};
use serde::Serialize;

use super::rows::{column, parsed, timestamp_from};
use super::sql::Sql;
use super::DbError;
use crate::accounts::Actor;
use crate::task::webhook::{Attempt, Registered, Registry, LOG_KEPT};
use crate::task::{BoardId, Event, EventKind, Webhook, WebhookChange, WebhookId};

/// Places one report may take in the delivery log's ids (`seq × 1000 +
/// place`); a report holds at most [`LOG_KEPT`].
const PLACES: u64 = 1000;

/// A webhook as the table holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// Never serialized: only the delivery signs with it.
    #[serde(skip)]
    pub secret: String,
    /// Every event of its board up to this seq is handled (at first, the
    /// seq of the event that added it).
    pub delivered_seq: u64,
}

/// One row of a webhook's delivery log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    /// The reporting event's seq × 1000 + the attempt's place in it.
    #[serde(skip)]
    pub id: u64,
    #[serde(skip)]
    pub webhook_id: WebhookId,
    #[serde(flatten)]
    pub attempt: Attempt,
}

/// The rows the webhook events leave: webhooks by id, deliveries by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Folded {
    /// The `webhooks` rows, by id.
    pub webhooks: BTreeMap<WebhookId, StoredWebhook>,
    /// The `webhook_deliveries` rows, by id (the newest 100 per webhook).
    pub deliveries: BTreeMap<u64, Delivery>,
}

/// The SQL for the webhook events among `events`, in their order.
pub fn write<'a>(sql: &mut Sql, events: impl IntoIterator<Item = &'a Event>) {
    for event in events {
        match &event.webhook {
            Some(WebhookChange::Added { webhook, secret }) => insert(
                sql,
                &StoredWebhook {
                    webhook: webhook.clone(),
                    secret: secret.clone().unwrap_or_default(),
                    delivered_seq: event.seq,
                },
            ),
            Some(WebhookChange::Removed { webhook }) => {
                let id = webhook.id.to_string();
                sql.end()
                    .push("DELETE FROM webhook_deliveries WHERE webhook_id = ")
                    .ascii(&id)
                    .end()
                    .push("DELETE FROM webhooks WHERE id = ")
                    .ascii(&id)
                    .end();
            }
            Some(WebhookChange::Delivered(progress)) => {
                let id = progress.webhook_id.to_string();
                sql.end()
                    .push("UPDATE webhooks SET delivered_seq = ")
                    .uint(progress.delivered_seq)
                    .push(" WHERE id = ")
                    .ascii(&id)
                    .end();
                for delivery in deliveries(event.seq, progress.webhook_id, &progress.attempts) {
                    insert_delivery(sql, &delivery);
                }
                // Keeps the newest LOG_KEPT; the derived table (with its
                // LIMIT, never merged) lets MySQL read what it deletes from.
                sql.end()
                    .push("DELETE FROM webhook_deliveries WHERE webhook_id = ")
                    .ascii(&id)
                    .push(
                        " AND id < (SELECT id FROM (SELECT id FROM webhook_deliveries \
                         WHERE webhook_id = ",
                    )
                    .ascii(&id)
                    .push(" ORDER BY id DESC LIMIT 1 OFFSET ")
                    .uint(LOG_KEPT as u64 - 1)
                    .push(") AS kept)")
                    .end();
            }
            None => {}
        }
    }
}

/// The delivery log rows of a report recorded at `seq`.
fn deliveries(seq: u64, webhook_id: WebhookId, attempts: &[Attempt]) -> Vec<Delivery> {
    attempts
        .iter()
        .take(LOG_KEPT)
        .enumerate()
        .map(|(place, attempt)| Delivery {
            id: seq * PLACES + place as u64,
            webhook_id,
            attempt: attempt.clone(),
        })
        .collect()
}

/// The row of `w`.
pub fn insert(sql: &mut Sql, w: &StoredWebhook) {
    let events =
        serde_json::to_string(&w.webhook.events).expect("a list of event kinds serializes to JSON");
    sql.end()
        .push(
            "INSERT INTO webhooks (id, board_id, url, events, description, secret, created_at, \
             created_by_id, created_by_name, delivered_seq) VALUES (",
        )
        .ascii(&w.webhook.id.to_string())
        .push(", ")
        .ascii(&w.webhook.board_id.to_string())
        .push(", ")
        .text(&w.webhook.url)
        .push(", ")
        .ascii(&events)
        .push(", ")
        .text(&w.webhook.description)
        .push(", ")
        .ascii(&w.secret)
        .push(", ")
        .timestamp(w.webhook.created_at)
        .push(", ")
        .text(&w.webhook.created_by.id)
        .push(", ")
        .text(&w.webhook.created_by.name)
        .push(", ")
        .uint(w.delivered_seq)
        .push(")")
        .end();
}

/// The row of one delivery.
pub fn insert_delivery(sql: &mut Sql, d: &Delivery) {
    sql.end()
        .push(
            "INSERT INTO webhook_deliveries (id, webhook_id, seq, attempt, at, status, error, \
             duration_ms) VALUES (",
        )
        .uint(d.id)
        .push(", ")
        .ascii(&d.webhook_id.to_string())
        .push(", ")
        .uint(d.attempt.seq)
        .push(", ")
        .uint(u64::from(d.attempt.attempt))
        .push(", ")
        .timestamp(d.attempt.at)
        .push(", ");
    match d.attempt.status {
        Some(status) => sql.uint(u64::from(status)),
        None => sql.push("NULL"),
    };
    sql.push(", ")
        .optional_text(d.attempt.error.as_deref())
        .push(", ")
        .uint(d.attempt.duration_ms.min(u64::from(u32::MAX)))
        .push(")")
        .end();
}

/// The rows `events` (from the first, in seq order) leave.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Folded {
    let mut folded = Folded::default();
    for event in events {
        match &event.webhook {
            Some(WebhookChange::Added { webhook, secret }) => {
                folded.webhooks.insert(
                    webhook.id,
                    StoredWebhook {
                        webhook: webhook.clone(),
                        secret: secret.clone().unwrap_or_default(),
                        delivered_seq: event.seq,
                    },
                );
            }
            Some(WebhookChange::Removed { webhook }) => {
                folded.webhooks.remove(&webhook.id);
                folded.deliveries.retain(|_, d| d.webhook_id != webhook.id);
            }
            Some(WebhookChange::Delivered(progress)) => {
                if let Some(w) = folded.webhooks.get_mut(&progress.webhook_id) {
                    w.delivered_seq = progress.delivered_seq;
                }
                for d in deliveries(event.seq, progress.webhook_id, &progress.attempts) {
                    folded.deliveries.insert(d.id, d);
                }
                let of_hook: Vec<u64> = folded
                    .deliveries
                    .values()
                    .filter(|d| d.webhook_id == progress.webhook_id)
                    .map(|d| d.id)
                    .collect();
                for id in of_hook.iter().take(of_hook.len().saturating_sub(LOG_KEPT)) {
                    folded.deliveries.remove(id);
                }
            }
            None => {}
        }
    }
    folded
}

const SELECTED: &str = "id, board_id, url, events, description, secret, created_at, \
     created_by_id, created_by_name, delivered_seq";

fn from_row(mut row: Row) -> Result<StoredWebhook, DbError> {
    let row = &mut row;
    let id: String = column(row, 0, "id")?;
    let board: String = column(row, 1, "board_id")?;
    let events: String = column(row, 3, "events")?;
    let at: Value = column(row, 6, "created_at")?;
    Ok(StoredWebhook {
        webhook: Webhook {
            id: parsed(&id, "webhooks.id")?,
            board_id: parsed(&board, "webhooks.board_id")?,
            url: column(row, 2, "url")?,
            events: serde_json::from_str::<Vec<EventKind>>(&events)
                .map_err(|e| DbError::Corrupt(format!("webhooks.events `{events}`: {e}")))?,
            description: column(row, 4, "description")?,
            created_at: timestamp_from(at, "created_at")?,
            created_by: Actor {
                id: column(row, 7, "created_by_id")?,
                name: column(row, 8, "created_by_name")?,
            },
        },
        secret: column(row, 5, "secret")?,
        delivered_seq: column(row, 9, "delivered_seq")?,
    })
}

const DELIVERY_SELECTED: &str = "id, webhook_id, seq, attempt, at, status, error, duration_ms";

fn delivery_from_row(mut row: Row) -> Result<Delivery, DbError> {
    let row = &mut row;
    let hook: String = column(row, 1, "webhook_id")?;
    let at: Value = column(row, 4, "at")?;
    let status: Option<u16> = column(row, 5, "status")?;
    Ok(Delivery {
        id: column(row, 0, "id")?,
        webhook_id: parsed(&hook, "webhook_deliveries.webhook_id")?,
        attempt: Attempt {
            seq: column(row, 2, "seq")?,
            attempt: column(row, 3, "attempt")?,
            at: timestamp_from(at, "at")?,
            status,
            error: column(row, 6, "error")?,
            duration_ms: column(row, 7, "duration_ms")?,
        },
    })
}

/// The webhooks of `boards`, for the applier to decide against.
pub async fn registry(
    conn: &mut impl Queryable,
    boards: &BTreeSet<BoardId>,
) -> Result<Registry, DbError> {
    let mut registry = Registry::default();
    for board in boards {
        for w in of_board(conn, *board).await? {
            registry.hooks.insert(
                w.webhook.id,
                Registered {
                    webhook: w.webhook,
                    delivered_seq: w.delivered_seq,
                },
            );
        }
    }
    Ok(registry)
}

/// A board's webhooks, oldest first.
pub async fn of_board(
    conn: &mut impl Queryable,
    board: BoardId,
) -> Result<Vec<StoredWebhook>, DbError> {
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT {SELECTED} FROM webhooks FORCE INDEX (webhooks_board) \
                 WHERE board_id = ? ORDER BY created_at, id"
            ),
            (board.to_string(),),
        )
        .await?;
    rows.into_iter().map(from_row).collect()
}

/// Every webhook, by id (the leader's delivery, rebuild, check).
pub async fn all(conn: &mut impl Queryable) -> Result<BTreeMap<WebhookId, StoredWebhook>, DbError> {
    let rows: Vec<Row> = conn
        .query(format!("SELECT {SELECTED} FROM webhooks ORDER BY id"))
        .await?;
    rows.into_iter()
        .map(|r| from_row(r).map(|w| (w.webhook.id, w)))
        .collect()
}

/// Every delivery row, by id (rebuild, check).
pub async fn all_deliveries(conn: &mut impl Queryable) -> Result<BTreeMap<u64, Delivery>, DbError> {
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT {DELIVERY_SELECTED} FROM webhook_deliveries ORDER BY id"
        ))
        .await?;
    rows.into_iter()
        .map(|r| delivery_from_row(r).map(|d| (d.id, d)))
        .collect()
}

/// A webhook's delivery log, newest first.
pub async fn log(conn: &mut impl Queryable, webhook: WebhookId) -> Result<Vec<Delivery>, DbError> {
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT {DELIVERY_SELECTED} FROM webhook_deliveries \
                 FORCE INDEX (webhook_deliveries_hook) WHERE webhook_id = ? ORDER BY id DESC"
            ),
            (webhook.to_string(),),
        )
        .await?;
    rows.into_iter().map(delivery_from_row).collect()
}

/// Replaces both tables with `folded` (rebuild).
pub fn replace_all(sql: &mut Sql, folded: &Folded) {
    sql.end()
        .push("DELETE FROM webhook_deliveries")
        .end()
        .push("DELETE FROM webhooks")
        .end();
    for w in folded.webhooks.values() {
        insert(sql, w);
    }
    for d in folded.deliveries.values() {
        insert_delivery(sql, d);
    }
}

/// The differences between what the events leave and the rows.
pub fn compare(events: &Folded, rows: &Folded, differences: &mut Vec<String>, max: usize) {
    let ids: BTreeSet<_> = events.webhooks.keys().chain(rows.webhooks.keys()).collect();
    for id in ids {
        if differences.len() >= max {
            return;
        }
        let (e, r) = (events.webhooks.get(id), rows.webhooks.get(id));
        if e != r {
            differences.push(format!(
                "webhook {id}: events say {}, projection says {}",
                serde_json::json!(e.map(|w| (&w.webhook.url, w.delivered_seq))),
                serde_json::json!(r.map(|w| (&w.webhook.url, w.delivered_seq)))
            ));
        }
    }
    let ids: BTreeSet<_> = events
        .deliveries
        .keys()
        .chain(rows.deliveries.keys())
        .collect();
    for id in ids {
        if differences.len() >= max {
            return;
        }
        let (e, r) = (events.deliveries.get(id), rows.deliveries.get(id));
        if e != r {
            differences.push(format!(
                "webhook delivery {id}: events say {}, projection says {}",
                serde_json::json!(e),
                serde_json::json!(r)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Progress;
    use crate::time::Timestamp;

    fn event(seq: u64, change: WebhookChange) -> Event {
        Event {
            seq,
            raft_index: seq,
            ordinal: 0,
            term: 1,
            event_id: uuid::Uuid::from_u128(u128::from(seq)),
            webhook: Some(change),
            at: Timestamp(0),
            request_id: uuid::Uuid::from_u128(u128::from(seq)),
            actor: Actor::system(),
            ..Event::blank(EventKind::WebhookDelivered)
        }
    }

    #[test]
    fn the_fold_keeps_the_newest_attempts_and_forgets_a_removed_webhook() {
        let webhook = Webhook {
            id: WebhookId(uuid::Uuid::from_u128(1)),
            board_id: BoardId(uuid::Uuid::from_u128(2)),
            url: "https://example.com".into(),
            events: vec![],
            description: String::new(),
            created_at: Timestamp(0),
            created_by: Actor::system(),
        };
        let attempt = |seq| Attempt {
            seq,
            attempt: 1,
            at: Timestamp(0),
            status: Some(200),
            error: None,
            duration_ms: 1,
        };
        let mut events = vec![event(
            1,
            WebhookChange::Added {
                webhook: webhook.clone(),
                secret: Some("s".into()),
            },
        )];
        for seq in 2..40 {
            events.push(event(
                seq,
                WebhookChange::Delivered(Progress {
                    webhook_id: webhook.id,
                    board_id: webhook.board_id,
                    delivered_seq: seq - 1,
                    attempts: vec![attempt(seq - 1), attempt(seq - 1), attempt(seq - 1)],
                }),
            ));
        }
        let folded = fold(&events);
        assert_eq!(folded.deliveries.len(), LOG_KEPT);
        assert_eq!(
            folded.deliveries.keys().next_back(),
            Some(&(39 * PLACES + 2)),
            "the newest is kept"
        );
        assert_eq!(folded.webhooks[&webhook.id].delivered_seq, 38);
        assert_eq!(folded.webhooks[&webhook.id].secret, "s");
        events.push(event(40, WebhookChange::Removed { webhook }));
        let folded = fold(&events);
        assert!(folded.webhooks.is_empty() && folded.deliveries.is_empty());
    }
}
