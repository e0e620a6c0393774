//! The applier: committed log entries, in order, into MySQL.
//!
//! The Raft node tells the applier how far the log is committed
//! ([`Committed`]); the applier reads the entries from the durable log store
//! and applies them in batches, each batch one MySQL transaction
//! ([`batch`]). After each COMMIT it reports the applied index and the
//! outcomes of this node's requests back to the node ([`Applied`]), and
//! hands the new events to whoever listens (the WebSocket hub).
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

pub mod batch;
pub mod catchup;
mod state;

use std::time::{Duration, Instant};

use actix::prelude::*;
use mysql_async::Pool;
use raft::eraftpb::{Entry, EntryType};
use tokio::sync::watch;

use self::batch::{BatchEntry, BatchResult};
use self::catchup::CatchupError;
use self::state::ApplyState;
use crate::db::catchup::PageRequest;
use crate::metrics;
use crate::projection::ProjectionCache;
use crate::raft::proposal::{decode_command, ProposalContext};
use crate::raft::storage::LogError;
use crate::raft::{Applied, LogStore, RaftStatus};
use crate::task::Event;
use crate::transport::auth::PeerAuth;
use crate::transport::{PeerInfo, Peers};

/// Entries per batch; MariaDB takes ~50k events/s at 64 per transaction and
/// ~95k/s at 512.
const MAX_BATCH_ENTRIES: u64 = 512;
const MAX_BATCH_BYTES: usize = 4 << 20;
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The log is committed up to this index.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Committed(pub u64);

/// Where the applier sends its results, and where it finds peers to
/// catch up from.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Attach {
    pub raft: Recipient<Applied>,
    pub sources: CatchupSources,
}

/// The peers a node can copy committed rows from, leader first.
#[derive(Clone)]
pub struct CatchupSources {
    pub node_id: u64,
    pub auth: PeerAuth,
    pub transport: Recipient<Peers>,
    pub status: watch::Receiver<RaftStatus>,
}

impl CatchupSources {
    async fn urls(&self, log: &LogStore) -> Vec<String> {
        let leader = self.status.borrow().leader_id;
        let mut peers: Vec<PeerInfo> = self.transport.send(Peers).await.unwrap_or_default();
        // The transport knows a peer's URL once it has said hello; the log
        // knows those of members that joined.
        for (id, addr) in log.members() {
            if let Some(url) = addr.url {
                if !peers.iter().any(|p| p.id == id && p.url.is_some()) {
                    peers.push(PeerInfo {
                        id,
                        raft_addr: addr.raft_addr,
                        url: Some(url),
                        reachable: false,
                    });
                }
            }
        }
        peers.retain(|p| p.id != self.node_id && p.url.is_some());
        peers.sort_by_key(|p| (p.id != leader, !p.reachable, p.id));
        let mut urls: Vec<String> = Vec::new();
        for url in peers.into_iter().filter_map(|p| p.url) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }
}

/// Events that MySQL has just committed, for live subscribers.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Published(pub std::sync::Arc<Vec<Event>>);

/// Subscribes a recipient to every committed batch of events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<Published>);

/// How far the applier has got, for `/readyz` and metrics.
#[derive(Message)]
#[rtype(result = "ApplierStatus")]
pub struct GetApplierStatus;

#[derive(Clone, Debug, Default)]
pub struct ApplierStatus {
    pub applied_index: u64,
    pub committed_index: u64,
    /// The error of the last failed attempt, while the applier is retrying.
    pub failing: Option<String>,
    /// The snapshot index MySQL is copying rows up to from a peer.
    pub catching_up_to: Option<u64>,
}

pub struct Applier {
    node_id: u64,
    pool: Pool,
    log: LogStore,
    /// What MySQL holds, known without asking; `None` until read, and again
    /// after any error (so it is read afresh, never trusted after a doubt).
    state: Option<ApplyState>,
    /// Committed rows, shared with the api's reads.
    rows: ProjectionCache,
    applied_index: u64,
    committed_index: u64,
    busy: bool,
    raft: Option<Recipient<Applied>>,
    sources: Option<CatchupSources>,
    subscribers: Vec<Recipient<Published>>,
    retry_delay: Duration,
    failing: Option<String>,
}

impl Applier {
    /// `pool` is the applier's own (it holds a connection per batch), and
    /// `applied_index` is what MySQL has applied.
    pub fn new(
        node_id: u64,
        pool: Pool,
        log: LogStore,
        applied_index: u64,
        rows: ProjectionCache,
    ) -> Applier {
        // Whatever the log compacted away was committed.
        let committed_index = applied_index.max(log.snapshot_metadata().index);
        Applier {
            node_id,
            pool,
            log,
            state: None,
            rows,
            applied_index,
            committed_index,
            busy: false,
            raft: None,
            sources: None,
            subscribers: Vec::new(),
            retry_delay: RETRY_MIN,
            failing: None,
        }
    }

    /// Starts the next batch unless one is running or nothing is committed.
    fn next_batch(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.raft.is_none() {
            return;
        }
        if self.applied_index < self.log.snapshot_metadata().index {
            self.catch_up(ctx);
            return;
        }
        let Some(mut state) = self.state.take() else {
            self.load_state(ctx);
            return;
        };
        if self.committed_index <= state.applied_index {
            self.state = Some(state);
            return;
        }
        let from = state.applied_index + 1;
        let to = self
            .committed_index
            .min(state.applied_index + MAX_BATCH_ENTRIES);
        let entries = match self.log.read_entries(from, to + 1, MAX_BATCH_BYTES) {
            Ok(entries) if entries.first().map(|e| e.index) == Some(from) => entries,
            Ok(_) => {
                self.state = Some(state);
                self.fail(ctx, format!("the log does not hold committed entry {from}"));
                return;
            }
            Err(LogError::Compacted(_)) => {
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
        let batch: Vec<BatchEntry> = entries.iter().map(decode).collect();
        self.busy = true;
        let pool = self.pool.clone();
        let node_id = self.node_id;
        let started = Instant::now();
        let work = async move {
            let result = match pool.get_conn().await {
                Ok(mut conn) => batch::apply(&mut conn, &mut state, node_id, &batch).await,
                Err(e) => Err(e.into()),
            };
            (state, result)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(move |(state, result), applier, ctx| {
                    applier.busy = false;
                    match result {
                        Ok(done) => {
                            metrics::APPLY_SECONDS.observe(started.elapsed().as_secs_f64());
                            metrics::APPLY_ENTRIES.observe((done.applied_index + 1 - from) as f64);
                            applier.state = Some(state);
                            applier.done(done);
                            applier.next_batch(ctx);
                        }
                        // The state may no longer match MySQL: read it again.
                        Err(e) => applier.fail(ctx, e.to_string()),
                    }
                }),
        );
    }

    /// Reads the state from MySQL, then carries on from where MySQL is.
    fn load_state(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        let pool = self.pool.clone();
        let rows = self.rows.clone();
        let work = async move {
            let mut conn = pool.get_conn().await?;
            batch::load_state(&mut conn, rows).await
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
                    tracing::debug!(
                        applied = state.applied_index,
                        tasks = state.known_tasks(),
                        "applier state loaded"
                    );
                    applier.state = Some(state);
                    applier.next_batch(ctx);
                }
                Err(e) => applier.fail(ctx, e.to_string()),
            }
        }));
    }

    fn done(&mut self, done: BatchResult) {
        if self.failing.take().is_some() {
            tracing::info!(applied = done.applied_index, "applying again after errors");
        }
        self.retry_delay = RETRY_MIN;
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
        let Some(sources) = self.sources.clone() else {
            return;
        };
        self.busy = true;
        self.state = None;
        self.rows.clear();
        let snapshot = self.log.snapshot_metadata();
        let pool = self.pool.clone();
        let log = self.log.clone();
        let work = async move {
            let mut conn = pool.get_conn().await?;
            let local = crate::db::applied_state(&mut conn).await?;
            let request = PageRequest {
                after_index: local.applied_index,
                after_seq: local.last_seq,
                upto: snapshot.index,
            };
            let mut errors = Vec::new();
            for url in sources.urls(&log).await {
                let (node_id, auth, source) = (sources.node_id, sources.auth.clone(), url.clone());
                let fetched = tokio::task::spawn_blocking(move || {
                    catchup::fetch(&source, request, node_id, &auth)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|page| page);
                match fetched {
                    Ok(page) if page.upto > local.applied_index => {
                        let term = page.upto_term.unwrap_or(snapshot.term);
                        let events =
                            catchup::install(&mut conn, local, request, term, &page).await?;
                        return Ok((page.upto, events, url));
                    }
                    Ok(page) => errors.push(format!(
                        "{url} has applied only up to entry {}",
                        page.source_applied
                    )),
                    Err(e) => errors.push(e),
                }
            }
            if errors.is_empty() {
                errors.push("no peer is known yet".to_string());
            }
            Err(CatchupError::Peer(errors.join("; ")))
        };
        ctx.spawn(work.into_actor(self).map(|result, applier, ctx| {
            applier.busy = false;
            match result {
                Ok((applied, events, url)) => {
                    applier.failing = None;
                    applier.retry_delay = RETRY_MIN;
                    tracing::info!(
                        applied,
                        events = events.len(),
                        from = %url,
                        snapshot = applier.log.snapshot_metadata().index,
                        "copied a page of committed rows from a peer"
                    );
                    applier.applied_index = applied;
                    metrics::APPLIED_INDEX.set(applied as i64);
                    metrics::CATCHUP_PAGES.inc();
                    metrics::EVENTS_APPLIED.inc_by(events.len() as u64);
                    applier.report(applied, Vec::new());
                    applier.publish(events);
                    applier.next_batch(ctx);
                }
                Err(e) => applier.fail(ctx, format!("catching up from a peer: {e}")),
            }
        }));
    }

    fn report(&self, index: u64, outcomes: Vec<(uuid::Uuid, crate::task::Applied)>) {
        if let Some(raft) = &self.raft {
            raft.do_send(Applied { index, outcomes });
        }
    }

    /// Forgets the state and retries after a growing delay.
    fn fail(&mut self, ctx: &mut Context<Self>, error: String) {
        self.state = None;
        self.rows.clear();
        metrics::apply_failed(&error);
        tracing::warn!(error = %error, retry_in = ?self.retry_delay, applied = self.applied_index, "apply failed; retrying the batch");
        self.failing = Some(error);
        ctx.run_later(self.retry_delay, |applier, ctx| applier.next_batch(ctx));
        self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
    }
}

/// Turns a log entry into what the state machine needs. An entry that does
/// not decode is skipped the same way on every node, loudly.
fn decode(entry: &Entry) -> BatchEntry {
    let mut decoded = BatchEntry {
        index: entry.index,
        term: entry.term,
        command: None,
        origin: None,
    };
    if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
        return decoded;
    }
    match decode_command(&entry.data) {
        Ok(command) => {
            decoded.origin = ProposalContext::decode(&entry.context).map(|c| c.origin);
            decoded.command = Some(command);
        }
        Err(e) => {
            tracing::error!(index = entry.index, error = %e, "skipping an entry that is not a command")
        }
    }
    decoded
}

impl Actor for Applier {
    type Context = Context<Self>;
}

impl Handler<Committed> for Applier {
    type Result = ();

    fn handle(&mut self, Committed(index): Committed, ctx: &mut Context<Self>) {
        self.committed_index = self.committed_index.max(index);
        self.next_batch(ctx);
    }
}

impl Handler<Attach> for Applier {
    type Result = ();

    fn handle(&mut self, Attach { raft, sources }: Attach, ctx: &mut Context<Self>) {
        self.raft = Some(raft);
        self.sources = Some(sources);
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
        let snapshot = self.log.snapshot_metadata().index;
        MessageResult(ApplierStatus {
            applied_index: self.applied_index,
            committed_index: self.committed_index,
            failing: self.failing.clone(),
            catching_up_to: (self.applied_index < snapshot).then_some(snapshot),
        })
    }
}
