//! The applier: committed log entries, in order, into MySQL.
//!
//! The Raft node tells the applier how far the log is committed
//! ([`Committed`]); the applier reads the entries, decoded, from the durable
//! log ([`CommittedLog`]) and applies them in batches, each batch one MySQL
//! transaction ([`batch`]), split or retried as [`drive`] decides. After
//! each COMMIT it reports the applied index and the outcomes of this node's
//! requests back to the node ([`Applied`]), and hands the new events to
//! whoever listens (the WebSocket hub).
//!
//! A MySQL error rolls the batch back and the same batch is retried, with
//! backoff, until it commits: an entry is never skipped, and a
//! non-deterministic failure is never turned into a rejection. Meanwhile
//! the entries wait on disk in the log, not in memory.
//!
//! When the entries MySQL needs next were compacted away (the node
//! installed a snapshot, or restarted far behind), the applier copies the
//! rows they produced from a peer's MySQL instead ([`catchup`]), page by
//! page, up to the snapshot's index, then goes on from the log.
//!
//! An entry this version cannot decode (a command kind a newer version
//! added) is never skipped either: the applier applies what comes before
//! it and stops there, reporting why ([`stop`]).
//!
//! The rest of the node reaches the applier through [`ApplierHandle`]
//! (status, subscriptions), whose methods fail with [`ApplierError`].

mod audit;
pub mod batch;
pub mod catchup;
pub mod drive;
mod handle;
mod notify;
mod state;
pub mod stop;
mod webhooks;

pub use handle::{ApplierError, ApplierHandle};

use std::time::Instant;

use actix::prelude::*;
use mysql_async::Pool;

use self::batch::BatchResult;
use self::catchup::Catchup;
pub use self::catchup::CatchupSources;
use self::drive::{Failure, MysqlExecutor, Retry};
use self::state::ApplyState;
use crate::db::ErrorClass;
use crate::metrics;
use crate::projection::ProjectionCache;
use crate::raft::{Applied, Committed, CommittedLog, ReadError};
use crate::task::Event;

/// Entries per batch; MariaDB takes ~50k events/s at 64 per transaction and
/// ~95k/s at 512.
const MAX_BATCH_ENTRIES: u64 = 512;
/// Log entry bytes read per batch: bounds memory. What MySQL is sent is
/// bounded separately, by the bytes of SQL built ([`drive`]).
const MAX_BATCH_BYTES: usize = 4 << 20;
/// A node nobody waits on (a follower with no request of its own pending)
/// waits up to `apply_gather_ms` for this many committed entries before it
/// applies them: MySQL's cost per transaction is then shared by more.
pub const GATHER_ENTRIES: u64 = 64;

/// Where the applier sends its results, and where it finds peers to
/// catch up from.
#[derive(Message)]
#[rtype(result = "()")]
struct Attach {
    pub raft: Recipient<Applied>,
    pub sources: CatchupSources,
}

/// Events that MySQL has just committed, for live subscribers.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Published(pub std::sync::Arc<Vec<Event>>);

/// Subscribes a recipient to every committed batch of events.
#[derive(Message)]
#[rtype(result = "()")]
struct Subscribe(Recipient<Published>);

/// How far the applier has got, for `/readyz` and metrics.
#[derive(Message)]
#[rtype(result = "ApplierStatus")]
struct GetApplierStatus;

#[derive(Clone, Debug, Default)]
pub struct ApplierStatus {
    pub applied_index: u64,
    pub committed_index: u64,
    /// The error of the last failed attempt, with its class, while the
    /// applier is retrying: the node is not ready meanwhile.
    pub failing: Option<String>,
    /// `transient`, `size` or `other`, while failing.
    pub error_class: Option<&'static str>,
    /// The snapshot index MySQL is copying rows up to from a peer.
    pub catching_up_to: Option<u64>,
    /// Set when the applier stopped before an entry this version cannot
    /// decode ([`stop`]): why. The node is not ready until it runs a
    /// version that can.
    pub stopped: Option<String>,
    /// The cluster version as the log decided it, up to what MySQL applied
    /// (`crate::version::BASELINE` before any `set_cluster_version`).
    pub cluster_version: crate::version::Version,
}

pub struct Applier {
    node_id: u64,
    pool: Pool,
    log: CommittedLog,
    /// What MySQL holds, known without asking; `None` until read, and again
    /// after any error (so it is read afresh, never trusted after a doubt).
    state: Option<ApplyState>,
    /// Counts the states read: the filters read in the background for one
    /// are given only to that one.
    generation: u64,
    /// Filters read for `state`, given to it when the next batch takes it.
    filters: Option<LoadedFilters>,
    /// Committed rows, shared with the api's reads.
    rows: ProjectionCache,
    /// Committed accounts, shared with the api's credential checks.
    accounts: crate::accounts::AccountsCache,
    applied_index: u64,
    committed_index: u64,
    /// Someone waits for this node to apply ([`Committed::waited_on`]).
    waited_on: bool,
    /// Since when committed entries wait to be gathered into a larger
    /// batch, while nobody waits on this node.
    gathering: Option<Instant>,
    /// How long they may wait (`apply_gather_ms`).
    gather_wait: std::time::Duration,
    busy: bool,
    raft: Option<Recipient<Applied>>,
    /// Set once attached: where MySQL copies rows from when the log was
    /// compacted past what it applied.
    catchup: Option<Catchup>,
    subscribers: Vec<Recipient<Published>>,
    retry: Retry,
    /// The server's `max_allowed_packet`, read on the applier's connection;
    /// `None` until read, and again after any error.
    max_allowed_packet: Option<usize>,
    /// The entry this version cannot decode, once met: nothing more is
    /// applied by this process.
    stopped: Option<stop::Stopped>,
    /// The cluster version as the log decided it, as of the last state read
    /// or batch committed.
    cluster_version: crate::version::Version,
}

impl Applier {
    /// `pool` is the applier's own (it holds a connection per batch),
    /// `applied_index` is what MySQL has applied, and `gather_wait` how
    /// long committed entries may wait to be gathered while nobody waits.
    pub fn new(
        node_id: u64,
        pool: Pool,
        log: CommittedLog,
        applied_index: u64,
        rows: ProjectionCache,
        accounts: crate::accounts::AccountsCache,
        gather_wait: std::time::Duration,
    ) -> Applier {
        // Whatever the log compacted away was committed.
        let committed_index = applied_index.max(log.snapshot().index);
        Applier {
            node_id,
            pool,
            log,
            state: None,
            generation: 0,
            filters: None,
            rows,
            accounts,
            applied_index,
            committed_index,
            waited_on: true,
            gathering: None,
            gather_wait,
            busy: false,
            raft: None,
            catchup: None,
            subscribers: Vec::new(),
            retry: Retry::default(),
            max_allowed_packet: None,
            stopped: None,
            cluster_version: crate::version::BASELINE,
        }
    }

    /// Starts the next batch unless one is running or nothing is committed.
    fn next_batch(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.raft.is_none() || self.stopped.is_some() {
            return;
        }
        if self.applied_index < self.log.snapshot().index {
            self.catch_up(ctx);
            return;
        }
        let Some(mut state) = self.state.take() else {
            self.load_state(ctx);
            return;
        };
        if let Some(loaded) = self.filters.take() {
            match loaded.ids {
                Some(ids) => state.filters_loaded(ids, loaded.keys, loaded.ages),
                None => state.keys_loaded(loaded.keys, loaded.ages),
            }
        }
        if self.committed_index <= state.applied_index {
            self.state = Some(state);
            return;
        }
        if !self.waited_on
            && !self.gather_wait.is_zero()
            && self.committed_index - state.applied_index < GATHER_ENTRIES
        {
            let wait = self.gather_wait;
            let since = *self.gathering.get_or_insert_with(|| {
                ctx.run_later(wait, |applier, ctx| applier.next_batch(ctx));
                Instant::now()
            });
            if since.elapsed() < wait {
                self.state = Some(state);
                return;
            }
        }
        self.gathering = None;
        let from = state.applied_index + 1;
        let to = self
            .committed_index
            .min(state.applied_index + MAX_BATCH_ENTRIES);
        let batch = match self.log.read(from, to, MAX_BATCH_BYTES) {
            Ok(batch) => batch,
            Err(ReadError::Compacted(_)) => {
                // A snapshot replaced the log meanwhile.
                self.catch_up(ctx);
                return;
            }
            Err(e) => {
                self.state = Some(state);
                self.fail(ctx, e.to_string());
                return;
            }
        };
        // Never past an entry this version cannot decode: what comes before
        // it is applied, then the applier stops at it (see [`stop`]).
        let (batch, stopped) = stop::until_undecodable(batch);
        if batch.is_empty() {
            self.state = Some(state);
            if let Some(stopped) = stopped {
                tracing::error!(
                    index = stopped.index,
                    term = stopped.term,
                    error = %stopped.error,
                    "applier {stopped}; this node is unready, and still votes and replicates"
                );
                metrics::APPLY_ERRORS.inc();
                self.stopped = Some(stopped);
            }
            return;
        }
        self.busy = true;
        let mut executor = MysqlExecutor {
            pool: self.pool.clone(),
            conn: None,
            state,
            node_id: self.node_id,
            max_allowed_packet: self.max_allowed_packet,
        };
        let started = Instant::now();
        let work = async move {
            let progress = drive::apply_all(&mut executor, &batch).await;
            (executor, progress)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(executor, progress), applier, ctx| {
                    applier.busy = false;
                    applier.max_allowed_packet = executor.max_allowed_packet;
                    applier.cluster_version = executor.state.cluster_version;
                    let mut from = from;
                    for done in progress.done {
                        metrics::APPLY_SECONDS.observe(started.elapsed().as_secs_f64());
                        metrics::APPLY_ENTRIES.observe((done.applied_index + 1 - from) as f64);
                        from = done.applied_index + 1;
                        applier.done(done);
                    }
                    match progress.failure {
                        None => {
                            let mut state = executor.state;
                            // After an expiry that left the key filter
                            // mostly expired keys, it is read afresh.
                            if state.take_key_rebuild() {
                                applier.load_key_filter(ctx, applier.generation);
                            }
                            applier.state = Some(state);
                            applier.next_batch(ctx);
                        }
                        // The state may no longer match MySQL: read it again.
                        Some(failure) => applier.failed(ctx, failure),
                    }
                }),
        );
    }

    /// Reads the state from MySQL, then carries on from where MySQL is,
    /// while the filters are read in the background.
    fn load_state(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        self.generation += 1;
        self.filters = None;
        let pool = self.pool.clone();
        let rows = self.rows.clone();
        let accounts = self.accounts.clone();
        let work = async move {
            let mut conn = pool.get_conn().await?;
            batch::load_state(&mut conn, rows, accounts).await
        };
        ctx.spawn(work.into_actor(self).map(|result, applier, ctx| {
            applier.busy = false;
            match result {
                Ok(state) => {
                    if state.applied_index != applier.applied_index {
                        // A batch committed whose answer was lost: go on from MySQL.
                        tracing::warn!(
                            expected = applier.applied_index,
                            found = state.applied_index,
                            "resuming from MySQL's applied index"
                        );
                        applier.applied_index = state.applied_index;
                        applier.report(state.applied_index, Vec::new());
                    }
                    tracing::debug!(applied = state.applied_index, "applier state loaded");
                    applier.cluster_version = state.cluster_version;
                    applier.state = Some(state);
                    applier.load_filters(ctx, applier.generation);
                    applier.next_batch(ctx);
                }
                Err(e) => applier.fail(ctx, e),
            }
        }));
    }

    /// Reads the filters of state `generation` on a connection of its own,
    /// and gives them to that state at its next batch (or drops them, if it was replaced
    /// meanwhile). Until then the state asks MySQL about every id and key
    /// it does not cache; a failure is retried, as the state stays correct
    /// without them.
    fn load_filters(&mut self, ctx: &mut Context<Self>, generation: u64) {
        self.read_filters(ctx, generation, false);
    }

    /// Likewise the key filter alone, after an expiry left it mostly
    /// expired keys ([`state::ApplyState::take_key_rebuild`]).
    fn load_key_filter(&mut self, ctx: &mut Context<Self>, generation: u64) {
        self.read_filters(ctx, generation, true);
    }

    fn read_filters(&mut self, ctx: &mut Context<Self>, generation: u64, keys_only: bool) {
        let pool = self.pool.clone();
        let started = Instant::now();
        let work = async move {
            let mut conn = pool.get_conn().await?;
            if keys_only {
                let (keys, ages) = state::load_key_filter(&mut conn).await?;
                Ok::<_, crate::db::DbError>(LoadedFilters {
                    ids: None,
                    keys,
                    ages,
                })
            } else {
                let (ids, keys, ages) = state::load_filters(&mut conn).await?;
                Ok(LoadedFilters {
                    ids: Some(ids),
                    keys,
                    ages,
                })
            }
        };
        ctx.spawn(work.into_actor(self).map(move |result, applier, ctx| {
            if applier.generation != generation {
                return;
            }
            match result {
                Ok(loaded) => {
                    let ids = loaded.ids.as_ref();
                    tracing::info!(
                        ids = ids.map(state::Filter::held),
                        keys = loaded.keys.held(),
                        bytes = ids.map_or(0, state::Filter::bytes) + loaded.keys.bytes(),
                        ms = started.elapsed().as_millis() as u64,
                        "{} read",
                        if keys_only {
                            "key filter"
                        } else {
                            "id and key filters"
                        }
                    );
                    metrics::FILTER_READS
                        .with_label_values(&[if keys_only { "keys" } else { "all" }])
                        .inc();
                    applier.filters = Some(loaded);
                }
                Err(e) => {
                    tracing::warn!(error = %e, keys_only, "reading the filters failed; retrying");
                    ctx.run_later(std::time::Duration::from_secs(1), move |applier, ctx| {
                        if applier.generation == generation {
                            applier.read_filters(ctx, generation, keys_only);
                        }
                    });
                }
            }
        }));
    }

    fn done(&mut self, done: BatchResult) {
        if let Some(failure) = self.retry.succeeded() {
            tracing::info!(applied = done.applied_index, after = %failure, "applying again after errors");
        }
        self.applied_index = done.applied_index;
        metrics::APPLIED_INDEX.set(done.applied_index as i64);
        metrics::EVENTS_APPLIED.inc_by(done.events.len() as u64);
        self.report(done.applied_index, done.outcomes);
        self.publish(done.events);
    }

    fn publish(&mut self, events: Vec<Event>) {
        if !events.is_empty() && !self.subscribers.is_empty() {
            let published = Published(std::sync::Arc::new(events));
            self.subscribers.retain(|s| s.connected());
            for subscriber in &self.subscribers {
                subscriber.do_send(published.clone());
            }
        }
    }

    /// Copies the next page of committed rows from a peer (see [`catchup`]).
    /// The in-memory state and row cache are dropped first: the page
    /// changes MySQL behind them. Reads keep waiting for the applied index,
    /// which only moves when a page has committed.
    fn catch_up(&mut self, ctx: &mut Context<Self>) {
        let Some(catchup) = &self.catchup else {
            return;
        };
        self.busy = true;
        self.state = None;
        self.rows.clear();
        let work = catchup.copy_page(self.pool.clone(), self.log.clone());
        ctx.spawn(work.into_actor(self).map(|result, applier, ctx| {
            applier.busy = false;
            match result {
                Ok(page) => {
                    applier.retry.succeeded();
                    if let Some(catchup) = &mut applier.catchup {
                        catchup.copied();
                    }
                    tracing::info!(
                        applied = page.applied,
                        events = page.events.len(),
                        from = %page.source,
                        fetch_ms = page.fetch.as_millis() as u64,
                        install_ms = page.install.as_millis() as u64,
                        snapshot = applier.log.snapshot().index,
                        "copied a page of committed rows from a peer"
                    );
                    applier.applied_index = page.applied;
                    metrics::APPLIED_INDEX.set(page.applied as i64);
                    metrics::CATCHUP_PAGES.inc();
                    metrics::EVENTS_APPLIED.inc_by(page.events.len() as u64);
                    applier.report(page.applied, Vec::new());
                    applier.publish(page.events);
                    applier.next_batch(ctx);
                }
                Err(e) => {
                    // A catch-up only starts once attached, so `catchup` is set.
                    let failure = match &mut applier.catchup {
                        Some(catchup) => catchup.failed(&e),
                        None => catchup::failure(&e),
                    };
                    applier.max_allowed_packet = None;
                    metrics::MYSQL_ERRORS
                        .with_label_values(&[failure.class.as_str()])
                        .inc();
                    applier.failed(ctx, failure)
                }
            }
        }));
    }

    fn report(&self, index: u64, outcomes: Vec<(uuid::Uuid, crate::task::Applied)>) {
        if let Some(raft) = &self.raft {
            raft.do_send(Applied { index, outcomes });
        }
    }

    /// A failure outside MySQL's batches (the log, reading the state).
    fn fail(&mut self, ctx: &mut Context<Self>, error: impl Into<FailCause>) {
        let failure = match error.into() {
            FailCause::Db(e) => {
                let class = e.class();
                metrics::MYSQL_ERRORS
                    .with_label_values(&[class.as_str()])
                    .inc();
                Failure {
                    class,
                    error: e.to_string(),
                }
            }
            FailCause::Text(error) => Failure {
                class: ErrorClass::Other,
                error,
            },
        };
        self.failed(ctx, failure);
    }

    /// Forgets the state and retries the same work after a growing delay
    /// (capped); meanwhile the node reports the failure as its
    /// `apply_error` and is not ready.
    fn failed(&mut self, ctx: &mut Context<Self>, failure: Failure) {
        self.state = None;
        self.rows.clear();
        metrics::APPLY_ERRORS.inc();
        let attempts = self.retry.attempts + 1;
        let class = failure.class;
        let error = failure.error.clone();
        let delay = self.retry.failed(failure);
        if class == ErrorClass::Transient && attempts < 5 {
            tracing::warn!(%class, %error, retry_in = ?delay, attempts, applied = self.applied_index, "apply failed; retrying the same entries");
        } else {
            tracing::error!(%class, %error, retry_in = ?delay, attempts, applied = self.applied_index, "apply keeps failing; this node is unready until it succeeds");
        }
        ctx.run_later(delay, |applier, ctx| applier.next_batch(ctx));
    }
}

/// Filters read in the background ([`Applier::read_filters`]): both, or
/// the key filter alone (`ids` is `None`).
struct LoadedFilters {
    ids: Option<state::Filter>,
    keys: state::Filter,
    ages: state::KeyAges,
}

/// Why something other than a batch failed.
enum FailCause {
    Db(crate::db::DbError),
    Text(String),
}

impl From<crate::db::DbError> for FailCause {
    fn from(e: crate::db::DbError) -> Self {
        FailCause::Db(e)
    }
}

impl From<String> for FailCause {
    fn from(e: String) -> Self {
        FailCause::Text(e)
    }
}

impl Actor for Applier {
    type Context = Context<Self>;
}

impl Handler<Committed> for Applier {
    type Result = ();

    fn handle(&mut self, log: Committed, ctx: &mut Context<Self>) {
        self.committed_index = self.committed_index.max(log.index);
        self.waited_on = log.waited_on;
        self.next_batch(ctx);
    }
}

impl Handler<Attach> for Applier {
    type Result = ();

    fn handle(&mut self, Attach { raft, sources }: Attach, ctx: &mut Context<Self>) {
        self.raft = Some(raft);
        self.catchup = Some(Catchup::new(sources));
        self.next_batch(ctx);
    }
}

impl Handler<Subscribe> for Applier {
    type Result = ();

    fn handle(&mut self, Subscribe(recipient): Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(recipient);
    }
}

impl Handler<GetApplierStatus> for Applier {
    type Result = MessageResult<GetApplierStatus>;

    fn handle(&mut self, _: GetApplierStatus, _: &mut Context<Self>) -> Self::Result {
        let snapshot = self.log.snapshot().index;
        MessageResult(ApplierStatus {
            applied_index: self.applied_index,
            committed_index: self.committed_index,
            failing: self.retry.apply_error(),
            error_class: self.retry.failure().map(|f| f.class.as_str()),
            catching_up_to: (self.applied_index < snapshot).then_some(snapshot),
            stopped: self.stopped.as_ref().map(|s| format!("applier {s}")),
            cluster_version: self.cluster_version,
        })
    }
}
