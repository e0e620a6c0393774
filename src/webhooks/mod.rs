//! Outgoing webhooks: the leader posts each board's events to the board's
//! webhooks, signed, in seq order, at least once.
//!
//! ```text
//!   supervisor (every 500 ms): leader? read `webhooks` → one worker per webhook
//!   worker: task_events of its board after its cursor, seq order
//!     → skip kinds it is not sent → POST (blocking, off the arbiter)
//!     → 2xx: next event │ anything else: the same event again after
//!       1 s, 2 s, 4 s, … (capped), never skipping ahead
//!     → at most once a second: `webhook_progress` through Raft
//!       (delivered seq + the attempts since the last report)
//! ```
//!
//! Only the leader delivers; a follower's supervisor stops its workers.
//! A new leader starts each worker from the delivered seq the log holds,
//! so what the old leader sent but did not report is sent again, with the
//! same `X-Taskraft-Delivery` (`<webhook_id>:<seq>`) for the receiver to
//! drop. A removed webhook's worker stops at the next supervisor round.
//!
//! Not implemented: delivering several webhooks' requests over one
//! connection pool, a dead-letter state (a webhook failing for days keeps
//! retrying at the cap; its log and `failing_since` say so), and
//! per-receiver rate limits.

pub mod guard;
pub mod sign;

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::Pool;
use tokio::task::JoinHandle;

use crate::accounts::Actor;
use crate::db::webhooks::StoredWebhook;
use crate::db::DbError;
use crate::raft::{ConsensusError, RaftHandle};
use crate::task::webhook::{never_sent, Attempt, LOG_KEPT};
use crate::task::{Command, Event, Op, Progress, WebhookId};
use crate::time::Timestamp;

pub use guard::Guard;

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait between two tries of one event, unless configured
/// (`webhook_retry_max`).
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(60);

/// The first wait after a failed try; each next one doubles.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// How often progress is reported through the log, at most.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How often the supervisor looks at leadership and the webhooks, and a
/// worker with nothing to send at its board's events.
const POLL: Duration = Duration::from_millis(300);

/// Bytes of a receiver's answer read (and dropped), so the connection
/// ends cleanly without a large body filling memory.
const BODY_READ: u64 = 4096;

/// Characters of an error kept in the delivery log.
const ERROR_KEPT: usize = 300;

/// Events a worker reads per query.
const PAGE: u64 = 100;

/// What the delivery needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct DeliverySettings {
    /// Which addresses a receiver may have (`webhook_allow_private`).
    pub guard: Guard,
    /// The longest wait between two tries (`webhook_retry_max`).
    pub retry_max: Duration,
}

/// Who reports the progress: named on its events.
pub fn actor() -> Actor {
    Actor {
        id: "webhook-delivery".into(),
        name: "webhook-delivery".into(),
    }
}

/// The body posted for `event`: the webhook, the board, and the event as
/// the public feed shows it.
pub fn body(webhook: &StoredWebhook, event: &Event) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "webhook_id": webhook.webhook.id,
        "board_id": webhook.webhook.board_id,
        "event": event,
    }))
    .expect("an event serializes to JSON")
}

/// Whether `webhook` is sent events of `event`'s kind.
pub fn subscribed(webhook: &StoredWebhook, event: &Event) -> bool {
    !never_sent(event.kind)
        && (webhook.webhook.events.is_empty() || webhook.webhook.events.contains(&event.kind))
}

/// Runs for the node's life: while this node leads, one worker per webhook.
pub async fn run(raft: RaftHandle, pool: Pool, settings: DeliverySettings) {
    let mut workers: HashMap<WebhookId, JoinHandle<()>> = HashMap::new();
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        workers.retain(|_, w| !w.is_finished());
        let status = raft.status();
        if status.removed || status.leader_id != status.node_id {
            for (_, worker) in workers.drain() {
                worker.abort();
            }
            continue;
        }
        let hooks = match pool.get_conn().await {
            Ok(mut conn) => crate::db::webhooks::all(&mut conn).await,
            Err(e) => Err(e.into()),
        };
        let hooks = match hooks {
            Ok(hooks) => hooks,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: could not read them");
                continue;
            }
        };
        workers.retain(|id, worker| {
            let kept = hooks.contains_key(id);
            if !kept {
                worker.abort();
            }
            kept
        });
        for (id, hook) in hooks {
            workers.entry(id).or_insert_with(|| {
                tokio::spawn(deliver(raft.clone(), pool.clone(), settings, hook))
            });
        }
    }
}

/// One webhook's loop, from its delivered seq on; ends when this node
/// stops leading (the supervisor aborts it) or the webhook is removed.
async fn deliver(raft: RaftHandle, pool: Pool, settings: DeliverySettings, hook: StoredWebhook) {
    let agent = ureq::AgentBuilder::new()
        .resolver(settings.guard)
        .redirects(0)
        .timeout(TIMEOUT)
        .user_agent(concat!("taskraft-webhook/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut report = Report {
        cursor: hook.delivered_seq,
        pending: Vec::new(),
        last: Instant::now(),
    };
    loop {
        let events = match board_events(&pool, &hook, report.cursor).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(webhook = %hook.webhook.id, error = %e, "webhook: could not read events");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        if events.is_empty() {
            if report.flush(&raft, &hook).await == Flushed::Gone {
                return;
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        for event in events {
            if subscribed(&hook, &event) {
                let mut wait = FIRST_RETRY;
                let mut attempt = 1;
                loop {
                    let tried = post(&agent, &hook, &event, attempt).await;
                    let delivered = tried.delivered();
                    report.pending.push(tried);
                    if delivered {
                        break;
                    }
                    if report.flush(&raft, &hook).await == Flushed::Gone {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(settings.retry_max);
                    attempt += 1;
                }
            }
            report.cursor = event.seq;
            if report.flush(&raft, &hook).await == Flushed::Gone {
                return;
            }
        }
    }
}

/// What a worker has not reported yet.
struct Report {
    /// Every event of the board up to this seq is handled.
    cursor: u64,
    /// The attempts since the last report.
    pending: Vec<Attempt>,
    last: Instant,
}

#[derive(PartialEq, Eq)]
enum Flushed {
    Kept,
    /// The log no longer has the webhook: the worker stops.
    Gone,
}

impl Report {
    /// Proposes the progress when there are attempts to report and the
    /// last report is a second old.
    async fn flush(&mut self, raft: &RaftHandle, hook: &StoredWebhook) -> Flushed {
        if self.pending.is_empty() || self.last.elapsed() < REPORT_EVERY {
            return Flushed::Kept;
        }
        if self.pending.len() > LOG_KEPT {
            self.pending.drain(..self.pending.len() - LOG_KEPT);
        }
        let command = Command {
            request_id: crate::task::new_request_id(),
            idempotency: None,
            at: Timestamp::now(),
            actor: actor(),
            op: Op::WebhookProgress(Progress {
                webhook_id: hook.webhook.id,
                board_id: hook.webhook.board_id,
                delivered_seq: self.cursor,
                attempts: self.pending.clone(),
            }),
        };
        self.last = Instant::now();
        match raft.propose(command).await {
            Ok(applied) => {
                self.pending.clear();
                if applied.outcome.seq().is_none() {
                    // Nothing recorded: the webhook is gone (or this was a
                    // stale report, which it cannot be from its own loop).
                    return Flushed::Gone;
                }
                Flushed::Kept
            }
            Err(ConsensusError::ClusterTooOld(e)) => {
                tracing::info!(%e, "webhook progress waits for every voter to run 0.6.0");
                Flushed::Kept
            }
            Err(e) => {
                tracing::warn!(webhook = %hook.webhook.id, error = %e, "webhook: progress not reported");
                Flushed::Kept
            }
        }
    }
}

/// The board's events after `after`, in seq order (one range of
/// `task_events_board`), while the webhook is there: its removal is
/// applied before any event after it, so a removed webhook is sent none
/// of those.
async fn board_events(
    pool: &Pool,
    hook: &StoredWebhook,
    after: u64,
) -> Result<Vec<Event>, DbError> {
    let mut conn = pool.get_conn().await?;
    let rows: Vec<mysql_async::Row> = conn
        .exec(
            crate::db::queries::select(
                crate::db::rows::EVENT_COLUMNS,
                " FROM task_events FORCE INDEX (task_events_board) \
                 WHERE board_id = ? AND seq > ? \
                 AND EXISTS (SELECT 1 FROM webhooks WHERE id = ?) ORDER BY seq LIMIT ?",
            ),
            (
                hook.webhook.board_id.to_string(),
                after,
                hook.webhook.id.to_string(),
                PAGE,
            ),
        )
        .await?;
    rows.into_iter()
        .map(crate::db::rows::event_from_row)
        .collect()
}

/// One try at sending `event`, off the arbiter (the client blocks).
async fn post(agent: &ureq::Agent, hook: &StoredWebhook, event: &Event, attempt: u32) -> Attempt {
    let body = body(hook, event);
    let signature = sign::signature(&hook.secret, &body);
    let request = agent
        .post(&hook.webhook.url)
        .set("Content-Type", "application/json")
        .set("X-Taskraft-Signature", &signature)
        .set("X-Taskraft-Event", event.kind.as_str())
        .set(
            "X-Taskraft-Delivery",
            &format!("{}:{}", hook.webhook.id, event.seq),
        );
    let at = Timestamp::now();
    let started = Instant::now();
    let answered = tokio::task::spawn_blocking(move || match request.send_bytes(&body) {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            let status = response.status();
            let mut sink = Vec::new();
            let _ = response
                .into_reader()
                .take(BODY_READ)
                .read_to_end(&mut sink);
            Ok(status)
        }
        Err(ureq::Error::Transport(e)) => Err(e.to_string()),
    })
    .await
    .unwrap_or_else(|e| Err(format!("the delivery did not finish: {e}")));
    let duration_ms = started.elapsed().as_millis() as u64;
    let (status, error) = match answered {
        Ok(status) => (Some(status), None),
        Err(e) => (None, Some(e.chars().take(ERROR_KEPT).collect())),
    };
    let tried = Attempt {
        seq: event.seq,
        attempt,
        at,
        status,
        error,
        duration_ms,
    };
    let result = match (tried.delivered(), status) {
        (true, _) => "delivered",
        (false, Some(_)) => "failed",
        (false, None) => "error",
    };
    crate::metrics::webhook_delivery(result);
    tried
}
