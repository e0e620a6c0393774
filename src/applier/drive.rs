//! What the applier does when MySQL refuses a batch.
//!
//! A batch goes to an [`Executor`] ("apply these entries as one
//! transaction"); the real one is [`MysqlExecutor`], tests use fakes. Each
//! error is classified ([`ErrorClass`]):
//!
//! - **size** (the server or the client library refused a packet as too
//!   large): the batch is split in halves, each its own transaction, down
//!   to one entry; one entry alone is then sent one statement per row and
//!   one statement per round trip. Only if even that is refused is it a
//!   failure (validation makes it impossible: see
//!   `the_largest_valid_command_fits_in_mariadbs_default_packet_with_margin`
//!   in `batch.rs`);
//! - **transient** (connection lost, deadlock, lock wait, server gone) and
//!   **other**: [`apply_all`] stops and returns what committed so far and
//!   the failure; the applier retries the same work with capped backoff
//!   and reports the error (`apply_error`, `/readyz`, the log, and
//!   `taskraft_mysql_errors_total{class}`) until it succeeds.
//!
//! No path skips an entry: entries are applied in order, each exactly once,
//! and the next attempt starts at the first one not committed.

use std::future::Future;
use std::time::Duration;

use mysql_async::{Conn, Pool};

use super::batch::{self, BatchResult};
use super::state::ApplyState;
use crate::db::{self, DbError, ErrorClass};
use crate::metrics;
use crate::raft::CommittedEntry;

/// Applies entries, in one transaction per call.
pub trait Executor {
    /// `per_row`: one statement per row and per round trip (the last resort
    /// when a server refuses even one entry's statements packed together).
    fn apply(
        &mut self,
        entries: &[CommittedEntry],
        per_row: bool,
    ) -> impl Future<Output = Result<BatchResult, DbError>>;
}

/// Why [`apply_all`] stopped before the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub class: ErrorClass,
    pub error: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} error: {}", self.class, self.error)
    }
}

/// What [`apply_all`] got done: the transactions that committed, in order,
/// and the failure that stopped it, if one did.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: Vec<BatchResult>,
    pub failure: Option<Failure>,
}

/// Applies `entries` through `executor`, splitting on size errors.
pub async fn apply_all<E: Executor>(executor: &mut E, entries: &[CommittedEntry]) -> Progress {
    let mut progress = Progress::default();
    let mut start = 0;
    let mut size = entries.len().max(1);
    let mut per_row = false;
    while start < entries.len() {
        let end = (start + size).min(entries.len());
        let chunk = &entries[start..end];
        match executor.apply(chunk, per_row).await {
            Ok(result) => {
                progress.done.push(result);
                start = end;
            }
            Err(e) => {
                let class = e.class();
                metrics::MYSQL_ERRORS
                    .with_label_values(&[class.as_str()])
                    .inc();
                let first = chunk[0].index;
                match class {
                    ErrorClass::Size if chunk.len() > 1 => {
                        size = chunk.len() / 2;
                        tracing::warn!(
                            error = %e, first, entries = chunk.len(), now = size,
                            "MySQL refused a batch for its size; splitting it"
                        );
                    }
                    ErrorClass::Size if !per_row => {
                        per_row = true;
                        tracing::warn!(
                            error = %e, entry = first,
                            "MySQL refused one entry's statements for their size; \
                             sending them one row per statement and round trip"
                        );
                    }
                    _ => {
                        let error = match class {
                            ErrorClass::Size => format!(
                                "entry {first} does not fit in MySQL's max_allowed_packet even \
                                 one row per statement: raise max_allowed_packet ({e})"
                            ),
                            _ => e.to_string(),
                        };
                        progress.failure = Some(Failure { class, error });
                        return progress;
                    }
                }
            }
        }
    }
    progress
}

/// The applier's retries: capped exponential backoff, and the error that
/// the node reports (`apply_error`, `/readyz`) until a batch commits again.
#[derive(Debug)]
pub struct Retry {
    delay: Duration,
    failing: Option<Failure>,
    /// Failures in a row.
    pub attempts: u32,
}

pub const RETRY_MIN: Duration = Duration::from_millis(50);
pub const RETRY_MAX: Duration = Duration::from_secs(5);

impl Default for Retry {
    fn default() -> Self {
        Retry {
            delay: RETRY_MIN,
            failing: None,
            attempts: 0,
        }
    }
}

impl Retry {
    /// Records a failure; returns how long to wait before trying the same
    /// work again.
    pub fn failed(&mut self, failure: Failure) -> Duration {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(RETRY_MAX);
        self.attempts += 1;
        self.failing = Some(failure);
        delay
    }

    /// Records a commit; returns the failure it ends, if any.
    pub fn succeeded(&mut self) -> Option<Failure> {
        self.delay = RETRY_MIN;
        self.attempts = 0;
        self.failing.take()
    }

    /// The exact cause the node reports while it cannot apply, with its class.
    pub fn apply_error(&self) -> Option<String> {
        self.failing.as_ref().map(Failure::to_string)
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.failing.as_ref()
    }
}

/// The real executor: the node's MySQL, its connection taken from `pool`
/// and dropped after any error (the next call connects afresh and reads
/// `max_allowed_packet` again).
pub struct MysqlExecutor {
    pub pool: Pool,
    pub conn: Option<Conn>,
    pub state: ApplyState,
    pub node_id: u64,
    /// The server's `max_allowed_packet`, once read on this connection.
    pub max_allowed_packet: Option<usize>,
}

impl MysqlExecutor {
    async fn try_apply(
        &mut self,
        entries: &[CommittedEntry],
        per_row: bool,
    ) -> Result<BatchResult, DbError> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.get_conn().await?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let limit = match self.max_allowed_packet {
            Some(limit) => limit,
            None => {
                let limit = db::max_allowed_packet(conn).await?;
                tracing::info!(
                    max_allowed_packet = limit,
                    round_trip = db::round_trip_budget(limit),
                    "MySQL's packet limit read; batches are sent in round trips of at most \
                     half of it"
                );
                self.max_allowed_packet = Some(limit);
                limit
            }
        };
        let budget = if per_row {
            0
        } else {
            db::round_trip_budget(limit)
        };
        batch::apply(conn, &mut self.state, self.node_id, entries, budget).await
    }
}

impl Executor for MysqlExecutor {
    async fn apply(
        &mut self,
        entries: &[CommittedEntry],
        per_row: bool,
    ) -> Result<BatchResult, DbError> {
        let result = self.try_apply(entries, per_row).await;
        if result.is_err() {
            // Whatever the error did to the session, start from a new one.
            if let Some(conn) = self.conn.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
            }
            self.max_allowed_packet = None;
        }
        result
    }
}

#[cfg(test)]
mod tests;
