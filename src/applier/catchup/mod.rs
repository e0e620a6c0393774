//! Catching MySQL up from a peer when the log no longer holds the entries
//! it needs.
//!
//! A node's log is compacted once its MySQL has applied the entries; a
//! follower that missed them is sent a snapshot, which names an index and
//! stands for the state the cluster's databases hold there. That state is
//! already in every peer's MySQL, and all of it follows from rows that
//! never change once committed: the events (append-only, dense `seq`,
//! tagged with their `raft_index`) and the idempotency keys (insert-only,
//! tagged too). So the follower copies them, a page of log entries at a
//! time, from any peer that has applied that far:
//!
//! ```text
//!   GET {peer}/internal/catchup?after_index=A&after_seq=S&upto=T
//!     ← events with seq > S and raft_index ≤ min(T, the peer's applied),
//!       cut at an entry boundary X; keys with raft_index in (A, X]
//!   START TRANSACTION;
//!     UPDATE raft_applied: A → X (an error unless MySQL is still at A, S)
//!     INSERT the events byte for byte; upsert/delete the tasks they touch
//!     (each event carries the task as it left it); INSERT the keys; raise
//!     the column tails
//!   COMMIT
//! ```
//!
//! Each page is one transaction, like an applied batch: a crash between
//! pages resumes from the last one, and nothing is ever half-copied. While
//! a page commits, the next one is already being asked for from the same
//! peer (the peer's reads and the transfer overlap the install), so the
//! copy holds at most two pages in memory; it never goes past the
//! snapshot's index: the entries after it come from the log as usual.
//!
//! The parts: [`peers`] chooses whom to ask (the leader first), [`fetch`]
//! asks one peer for a page over the node's peer-HTTP client
//! ([`crate::peer_http`], with the HMAC proof that the caller is a member),
//! and [`install`] checks the page and commits it, folding its events with
//! the domain's fold ([`crate::task::Replayed`]). [`Catchup`] ties them
//! together and remembers, between pages, whether the next one must go one
//! row per statement (after MySQL refused a page for its size).

mod install;
mod peers;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::Pool;
use tokio::task::JoinHandle;

pub(crate) use self::install::fold;
pub use self::install::PageMisfit;
pub use self::peers::CatchupSources;
use super::drive::Failure;
use crate::db::catchup::{Page, PageRequest};
use crate::db::{self, DbError, ErrorClass};
use crate::peer_http::{self, PeerCredentials, PeerHttpError, Timeouts};
use crate::raft::CommittedLog;
use crate::task::Event;

/// How long one page may take to arrive.
const PAGE_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(3),
    total: Duration::from_secs(30),
};

#[derive(Debug, thiserror::Error)]
pub enum CatchupError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    /// A peer's page does not continue where MySQL is.
    #[error(transparent)]
    Misfit(#[from] PageMisfit),
    /// No peer gave a page this node could use.
    #[error("{0}")]
    NoPage(PeerFailures),
}

impl CatchupError {
    /// A peer's trouble is transient: another peer, or the same one later,
    /// will do. MySQL's errors are classified like an applied batch's.
    pub fn class(&self) -> ErrorClass {
        match self {
            CatchupError::Db(e) => e.class(),
            CatchupError::Mysql(e) => db::classify(e),
            CatchupError::Misfit(_) | CatchupError::NoPage(_) => ErrorClass::Transient,
        }
    }
}

/// Why one peer gave no page.
#[derive(Debug, thiserror::Error)]
pub enum PeerFailure {
    #[error(transparent)]
    Http(#[from] PeerHttpError),
    #[error("{url} has applied only up to entry {applied}")]
    Behind { url: String, applied: u64 },
    #[error("asking {url}: {source}")]
    Task {
        url: String,
        source: tokio::task::JoinError,
    },
}

/// Every peer asked, and why each gave no page (none: no peer is known).
#[derive(Debug, Default)]
pub struct PeerFailures(pub Vec<PeerFailure>);

impl std::fmt::Display for PeerFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return write!(f, "no peer is known yet");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// A page that committed.
#[derive(Debug)]
pub struct CopiedPage {
    /// MySQL's applied index now.
    pub applied: u64,
    /// The events it added, for live subscribers.
    pub events: Vec<Event>,
    /// The peer it came from.
    pub source: String,
    /// Time spent waiting for it from the peer (its SELECTs, the transfer
    /// and the JSON, less what went on while the page before installed),
    /// and installing it here (check, fold, MySQL).
    pub fetch: Duration,
    pub install: Duration,
}

/// Catch-up between pages: where to copy from, how to send the next page
/// to MySQL, and the next page already asked for.
#[derive(Clone)]
pub struct Catchup {
    sources: CatchupSources,
    pace: PagePace,
    ahead: Arc<Mutex<Option<Ahead>>>,
}

/// The page after the one installing, asked for from the same peer while
/// MySQL commits that one: the peer's SELECTs and the transfer overlap the
/// install instead of following it. It is used only if MySQL then stands
/// exactly where it was asked from, and like any page it is checked
/// against MySQL before it is installed.
struct Ahead {
    request: PageRequest,
    url: String,
    page: JoinHandle<Result<Page, PeerHttpError>>,
}

/// How the next page is sent: packed, or one row per statement after MySQL
/// refused a page for its size. A plain value, so its transitions are
/// tested without MySQL or peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagePace {
    pub per_row: bool,
}

impl PagePace {
    /// A page committed: the next one is sent packed again.
    pub fn copied(&mut self) {
        self.per_row = false;
    }

    /// A page failed: what the applier reports and retries. After a size
    /// error the next page goes one row per statement.
    pub fn failed(&mut self, error: &CatchupError) -> Failure {
        let failure = failure(error);
        if failure.class == ErrorClass::Size {
            self.per_row = true;
        }
        failure
    }
}

/// What a failed page is reported and retried as.
pub fn failure(error: &CatchupError) -> Failure {
    Failure {
        class: error.class(),
        error: format!("catching up from a peer: {error}"),
    }
}

/// Where MySQL stands once `page`, asked for with `request`, has
/// committed, and so what the next page is asked with; `None` when the
/// page reaches the snapshot and there is no next page.
pub fn next_request(request: PageRequest, page: &Page) -> Option<PageRequest> {
    (page.upto < request.upto).then(|| PageRequest {
        after_index: page.upto,
        after_seq: page.events.last().map_or(request.after_seq, |e| e.seq),
        upto: request.upto,
    })
}

impl Catchup {
    pub fn new(sources: CatchupSources) -> Catchup {
        Catchup {
            sources,
            pace: PagePace::default(),
            ahead: Arc::default(),
        }
    }

    /// Copies the next page of committed rows, up to the log's snapshot,
    /// from the first peer that has one, and commits it in MySQL; the page
    /// after it is asked for meanwhile.
    pub fn copy_page(
        &self,
        pool: Pool,
        log: CommittedLog,
    ) -> impl std::future::Future<Output = Result<CopiedPage, CatchupError>> + 'static {
        let sources = self.sources.clone();
        let per_row = self.pace.per_row;
        let ahead = self.ahead.clone();
        let snapshot = log.snapshot();
        async move {
            let mut conn = pool.get_conn().await?;
            let budget = if per_row {
                0
            } else {
                db::round_trip_budget(db::max_allowed_packet(&mut conn).await?)
            };
            let local = db::applied_state(&mut conn).await?;
            let request = PageRequest {
                after_index: local.applied_index,
                after_seq: local.last_seq,
                upto: snapshot.index,
            };
            let asked = std::time::Instant::now();
            let prefetched = ahead.lock().expect("catch-up lock").take();
            let mut found = None;
            if let Some(next) = prefetched.filter(|next| next.request == request) {
                // A peer that failed it is asked again below, with the others.
                if let Ok(Ok(page)) = next.page.await {
                    found = (page.upto > local.applied_index).then_some((next.url, page));
                }
            }
            let (url, page) = match found {
                Some(found) => found,
                None => ask(&sources, &log, request, local.applied_index).await?,
            };
            let fetch = asked.elapsed();
            if let Some(next) = next_request(request, &page) {
                *ahead.lock().expect("catch-up lock") = Some(Ahead {
                    request: next,
                    url: url.clone(),
                    page: spawn_fetch(&sources, url.clone(), next),
                });
            }
            let installing = std::time::Instant::now();
            let term = page.upto_term.unwrap_or(snapshot.term);
            let events = install::install(&mut conn, local, request, term, &page, budget).await?;
            Ok(CopiedPage {
                applied: page.upto,
                events,
                source: url,
                fetch,
                install: installing.elapsed(),
            })
        }
    }

    pub fn copied(&mut self) {
        self.pace.copied();
    }

    /// A page failed: the page asked for after it is dropped with it.
    pub fn failed(&mut self, error: &CatchupError) -> Failure {
        self.ahead.lock().expect("catch-up lock").take();
        self.pace.failed(error)
    }
}

/// Asks the peers in turn for the page of `request`: the first that has
/// one past `applied`, or why none had.
async fn ask(
    sources: &CatchupSources,
    log: &CommittedLog,
    request: PageRequest,
    applied: u64,
) -> Result<(String, Page), CatchupError> {
    let mut failures = PeerFailures::default();
    for url in sources.urls(log).await {
        match spawn_fetch(sources, url.clone(), request).await {
            Ok(Ok(page)) if page.upto > applied => return Ok((url, page)),
            Ok(Ok(page)) => failures.0.push(PeerFailure::Behind {
                url,
                applied: page.source_applied,
            }),
            Ok(Err(e)) => failures.0.push(e.into()),
            Err(source) => failures.0.push(PeerFailure::Task { url, source }),
        }
    }
    Err(CatchupError::NoPage(failures))
}

/// Asks the peer at `url` for the page of `request`, on a blocking thread.
fn spawn_fetch(
    sources: &CatchupSources,
    url: String,
    request: PageRequest,
) -> JoinHandle<Result<Page, PeerHttpError>> {
    let (node_id, auth) = (sources.node_id, sources.auth.clone());
    tokio::task::spawn_blocking(move || {
        let credentials = PeerCredentials {
            node_id,
            auth: &auth,
            challenge: request.challenge(),
        };
        fetch(&url, request, &credentials)
    })
}

/// Asks the peer at `url` for the next page (blocking: run it off the
/// actor's thread).
pub fn fetch(
    url: &str,
    request: PageRequest,
    credentials: &PeerCredentials<'_>,
) -> Result<Page, PeerHttpError> {
    peer_http::get_json(
        &format!("{url}/internal/catchup"),
        &[
            ("after_index", request.after_index.to_string()),
            ("after_seq", request.after_seq.to_string()),
            ("upto", request.upto.to_string()),
        ],
        credentials,
        PAGE_TIMEOUTS,
    )
}

#[cfg(test)]
mod tests;
