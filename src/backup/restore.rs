//! `taskraft restore --in FILE [--until-seq N | --until TIME]`: a fresh
//! node (empty `data_dir`, empty database) made the first member of a new
//! cluster holding a backup's state, or the state at an earlier event.
//!
//! ```text
//!   data_dir empty?  the file verified whole (and the cut found)?
//!   the database missing or empty, and no node on it?      ── else refuse,
//!                                                              writing nothing
//!   migrate; then, reading the file again on a thread:
//!     events, a page per transaction: INSERT them byte for byte, and the
//!       tasks they leave (the domain's fold, as a catch-up page does)
//!     idempotency keys still in force; the accounts
//!     raft_applied = the backup's applied index and term; the cluster
//!       version at that index = this build's (the new cluster's first)
//!   the Raft log: a snapshot at that index, this node its only voter,
//!     a new cluster id (`LogStore::restore_as_first_member`)
//! ```
//!
//! Then `serve` starts it as a one-node cluster, and new nodes join it the
//! usual way, copying its rows (a joiner is sent the snapshot).
//!
//! Point in time: the events kept are a prefix, `1..=N`: `--until-seq N`,
//! or with `--until TIME` the events up to the first one stamped after
//! TIME. The projection is their fold. An idempotency key is kept when its
//! command was decided before the first event dropped (one command makes
//! at most one event, so its outcome is within the kept events); later
//! keys are dropped, so a retry under one is a new request, as it must be
//! on a board where that write never happened. Accounts are state, not
//! history: they come back as the backup holds them, whatever the cut.
//!
//! Not done: resuming an interrupted restore. The database then holds part
//! of the rows with `raft_applied` already at the backup's index (so a
//! `serve` on it with a fresh `data_dir` refuses to start); drop the
//! database and run `restore` again.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{verify, Header, VerifyError};
use crate::accounts::{Session, Token, User};
use crate::applier::batch::{
    insert_events, insert_keys, transaction, write_checklists, write_comments, write_tails,
    write_tasks,
};
use crate::applier::catchup::fold;
use crate::config::{redact, Settings};
use crate::db::accounts::{replace_all, AccountRows};
use crate::db::catchup::EventRow;
use crate::db::rebuild::NodeLock;
use crate::db::rows::{EventRecord, KeyRow};
use crate::db::sql::Sql;
use crate::db::{self, column_tails, max_allowed_packet, round_trip_budget, DbError};
use crate::raft::membership::{Identity, MemberAddr};
use crate::raft::{LogError, LogStore};
use crate::task::Event;
use crate::time::Timestamp;

/// Events per transaction at most.
const PAGE_EVENTS: usize = 2_000;
/// Bytes of payload (or key outcomes) per transaction at most.
const PAGE_BYTES: usize = 4 << 20;
/// Pages read ahead of the writer: memory stays a few pages.
const PAGES_AHEAD: usize = 2;

/// Where a point-in-time restore stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Keep the events `1..=seq`.
    Seq(u64),
    /// Keep the events up to the first one stamped after this time.
    Time(Timestamp),
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    pub header: Header,
    pub cluster_id: String,
    pub node_id: u64,
    /// The events kept are `1..=last_seq`.
    pub last_seq: u64,
    /// The time of the last event kept.
    pub last_event_at: Option<Timestamp>,
    pub keys_kept: u64,
    pub keys_dropped: u64,
    pub users: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("backup refused, nothing written: {0}")]
    Backup(#[from] VerifyError),
    #[error("{}: {cause}", path.display())]
    Open {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "the data_dir {dir} is not empty: restore prepares a fresh node; point it at an empty \
         directory (nothing written)"
    )]
    DataDirInUse { dir: String },
    #[error(
        "the database in {url} is not empty ({what}): restore prepares a fresh node; use a new \
         database or drop this one (nothing written)"
    )]
    DatabaseInUse { url: String, what: String },
    #[error(
        "a taskraft node is running on the database in {url} (it holds the node lock): \
         restore prepares a fresh node (nothing written)"
    )]
    Running { url: String },
    #[error("--until-seq {asked}: the backup holds the events 1..={last_seq} (nothing written)")]
    BeyondBackup { asked: u64, last_seq: u64 },
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("migrating the database: {0}")]
    Migrate(String),
    #[error("restoring the rows: {0}")]
    Rows(String),
    #[error("the Raft log in {dir}: {cause}")]
    Log { dir: String, cause: LogError },
}

/// The events and keys a restore keeps, found by reading the file once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cut {
    /// The events `1..=last_seq` are kept.
    last_seq: u64,
    last_event_at: Option<Timestamp>,
    /// The log entry of the first event dropped: keys of entries from it
    /// on are dropped (`None`: every key is kept).
    first_dropped_index: Option<u64>,
}

impl Cut {
    fn keeps_key(&self, key: &KeyRow) -> bool {
        self.first_dropped_index
            .is_none_or(|dropped| key.raft_index < dropped)
    }
}

/// Finds the cut while events go by (in seq order).
struct Cutter {
    until: Option<Until>,
    cut: Cut,
    stopped: bool,
}

impl Cutter {
    fn event(&mut self, seq: u64, raft_index: u64, at: Timestamp) {
        if self.stopped {
            return;
        }
        let keep = match self.until {
            None => true,
            Some(Until::Seq(last)) => seq <= last,
            Some(Until::Time(time)) => at <= time,
        };
        if keep {
            self.cut.last_seq = seq;
            self.cut.last_event_at = Some(at);
        } else {
            self.stopped = true;
            self.cut.first_dropped_index = Some(raft_index);
        }
    }
}

#[derive(Deserialize)]
struct EventStamp {
    seq: u64,
    raft_index: u64,
    at: Timestamp,
}

/// Verifies the whole file and finds where to cut it.
fn plan(path: &Path, until: Option<Until>) -> Result<(Header, Cut, u64), RestoreError> {
    let file = File::open(path).map_err(|cause| RestoreError::Open {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut cutter = Cutter {
        until,
        cut: Cut::default(),
        stopped: false,
    };
    let mut users = 0;
    let summary = verify(std::io::BufReader::new(file), |part, row| {
        match part {
            "events" => {
                let stamp: EventStamp = serde_json::from_slice(row).map_err(|e| e.to_string())?;
                cutter.event(stamp.seq, stamp.raft_index, stamp.at);
            }
            "users" => users += 1,
            _ => {}
        }
        Ok(())
    })?;
    if let Some(Until::Seq(asked)) = until {
        if asked > summary.header.last_seq {
            return Err(RestoreError::BeyondBackup {
                asked,
                last_seq: summary.header.last_seq,
            });
        }
    }
    Ok((summary.header, cutter.cut, users))
}

/// Restores `input` into the node `settings` describe (see the module's comment).
pub async fn restore(
    settings: &Settings,
    input: &Path,
    until: Option<Until>,
) -> Result<Restored, RestoreError> {
    let dir = settings.data_dir.display().to_string();
    let in_use = std::fs::read_dir(&settings.data_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if in_use {
        return Err(RestoreError::DataDirInUse { dir });
    }
    let (header, cut, users) = plan(input, until)?;
    let url = redact(&settings.mysql_url);
    if let Some(what) = database_in_use(&settings.mysql_url).await? {
        return Err(RestoreError::DatabaseInUse { url, what });
    }

    crate::server::migrate_only(settings)
        .await
        .map_err(|e| RestoreError::Migrate(e.to_string()))?;
    let pool = db::connect(&settings.mysql_url, 1).await?;
    let mut conn = pool.get_conn().await?;
    if !NodeLock::acquire(&mut conn).await? {
        drop(conn);
        let _ = pool.disconnect().await;
        return Err(RestoreError::Running { url });
    }
    let result = fill(&mut conn, input, &header, cut).await;
    let _ = NodeLock::release(&mut conn).await;
    drop(conn);
    let _ = pool.disconnect().await;
    let (keys_kept, keys_dropped) = result?;

    let store = LogStore::open(&settings.data_dir).map_err(|cause| RestoreError::Log {
        dir: dir.clone(),
        cause,
    })?;
    let voters = BTreeMap::from([(settings.node_id, settings.raft_advertise_addr.clone())]);
    let identity =
        Identity::at_bootstrap(settings.node_id, &settings.initial_cluster_token, &voters);
    let own = MemberAddr {
        raft_addr: settings.raft_advertise_addr.clone(),
        url: Some(settings.advertise_url.clone()),
    };
    store
        .restore_as_first_member(&identity, own, header.applied_index, header.applied_term)
        .map_err(|cause| RestoreError::Log { dir, cause })?;
    tracing::info!(
        cluster_id = %identity.cluster_id,
        index = header.applied_index,
        last_seq = cut.last_seq,
        "restored: this node is the first member of a new cluster"
    );
    Ok(Restored {
        header,
        cluster_id: identity.cluster_id,
        node_id: settings.node_id,
        last_seq: cut.last_seq,
        last_event_at: cut.last_event_at,
        keys_kept,
        keys_dropped,
        users,
    })
}

/// What the database already holds, if anything (`None`: missing, or
/// with empty tables and nothing applied). Reads only.
async fn database_in_use(mysql_url: &str) -> Result<Option<String>, RestoreError> {
    let opts = Opts::from_url(mysql_url).map_err(DbError::from)?;
    let name = opts
        .db_name()
        .ok_or_else(|| DbError::Url(format!("{} names no database", redact(mysql_url))))?
        .to_string();
    let server = OptsBuilder::from_opts(opts).db_name(None::<String>);
    let mut conn = Conn::new(server).await?;
    let result = tables_in_use(&mut conn, &name).await;
    let _ = conn.disconnect().await;
    result
}

async fn tables_in_use(conn: &mut Conn, name: &str) -> Result<Option<String>, RestoreError> {
    let tables: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (name,),
        )
        .await?;
    for table in [
        "task_events",
        "tasks",
        "idempotency_keys",
        "users",
        "sessions",
        "api_tokens",
    ] {
        if !tables.iter().any(|t| t == table) {
            continue;
        }
        let mut select = Sql::new();
        select
            .push("SELECT COUNT(*) FROM ")
            .identifier(name)
            .push(".")
            .identifier(table);
        let rows: Option<u64> = conn.query_first(select.into_string()).await?;
        if let Some(rows) = rows.filter(|rows| *rows > 0) {
            return Ok(Some(format!("{table} has {rows} rows")));
        }
    }
    if tables.iter().any(|t| t == "raft_applied") {
        let mut select = Sql::new();
        select
            .push("SELECT MAX(applied_index) FROM ")
            .identifier(name)
            .push(".")
            .identifier("raft_applied");
        let applied: Option<Option<u64>> = conn.query_first(select.into_string()).await?;
        if let Some(index) = applied.flatten().filter(|index| *index > 0) {
            return Ok(Some(format!("it has applied log entries up to {index}")));
        }
    }
    Ok(None)
}

/// One transaction's worth of the file.
enum Batch {
    Events(Vec<EventRow>),
    Keys(Vec<KeyRow>),
    /// Last: the accounts, and the end of the file.
    Accounts(AccountRows),
}

/// Reads the file again on a thread, sending the rows the cut keeps in
/// pages; the caller writes them. Returns (keys kept, keys dropped).
async fn fill(
    conn: &mut Conn,
    input: &Path,
    header: &Header,
    cut: Cut,
) -> Result<(u64, u64), RestoreError> {
    let (pages_tx, mut pages_rx) = mpsc::channel::<Batch>(PAGES_AHEAD);
    let path = input.to_path_buf();
    let reader = std::thread::spawn(move || read_pages(&path, cut, pages_tx));

    let budget = round_trip_budget(max_allowed_packet(conn).await?);
    let mut tails = column_tails(conn).await?;
    let mut catalog = crate::db::catalog::load_rows(conn, crate::db::catalog::Cards::Skip).await?;
    let mut last_seq = 0u64;
    let mut written = Ok(());
    while let Some(batch) = pages_rx.recv().await {
        let mut sql = Sql::new();
        sql.push("START TRANSACTION").end();
        match batch {
            Batch::Events(rows) => {
                let events = match rows
                    .iter()
                    .map(EventRow::event)
                    .collect::<Result<Vec<Event>, _>>()
                {
                    Ok(events) => events,
                    Err(e) => {
                        written = Err(RestoreError::Rows(e.to_string()));
                        break;
                    }
                };
                let folded = match fold(&events, last_seq, tails, catalog.clone()) {
                    Ok(folded) => folded,
                    Err(e) => {
                        written = Err(RestoreError::Rows(e.to_string()));
                        break;
                    }
                };
                let page_seq = rows.last().map_or(last_seq, |row| row.seq);
                applied(&mut sql, header, last_seq, page_seq);
                let records: Vec<EventRecord<'_>> = events
                    .iter()
                    .zip(&rows)
                    .map(|(event, row)| EventRecord::of(event, &row.payload))
                    .collect();
                insert_events(&mut sql, budget, &records);
                write_tasks(&mut sql, budget, &folded.upserts, &folded.deletes);
                write_comments(
                    &mut sql,
                    budget,
                    &folded.comment_upserts,
                    &folded.comment_deletes,
                );
                write_checklists(
                    &mut sql,
                    budget,
                    &folded.checklist_upserts,
                    &folded.checklist_deletes,
                );
                crate::db::notifications::write(&mut sql, &events);
                crate::db::webhooks::write(&mut sql, &events);
                if folded.tails != tails {
                    write_tails(&mut sql, folded.tails);
                }
                let (folded_catalog, dirty) = folded.catalog;
                crate::db::catalog::write(&mut sql, &folded_catalog, &dirty);
                sql.push("COMMIT");
                if let Err(e) = transaction(conn, sql, budget).await {
                    written = Err(e.into());
                    break;
                }
                last_seq = page_seq;
                tails = folded.tails;
                catalog = folded_catalog;
            }
            Batch::Keys(keys) => {
                insert_keys(&mut sql, budget, &keys);
                sql.push("COMMIT");
                if let Err(e) = transaction(conn, sql, budget).await {
                    written = Err(e.into());
                    break;
                }
            }
            Batch::Accounts(accounts) => {
                // Also where the applied index is set when no event is kept.
                applied(&mut sql, header, last_seq, last_seq);
                replace_all(&mut sql, budget, &accounts);
                sql.push("COMMIT");
                if let Err(e) = transaction(conn, sql, budget).await {
                    written = Err(e.into());
                    break;
                }
            }
        }
    }
    // Dropping the receiver stops a reader still sending.
    drop(pages_rx);
    let read = reader
        .join()
        .map_err(|_| RestoreError::Rows("the reader thread panicked".into()))?;
    written?;
    let (counts, complete) = read?;
    if !complete || last_seq != cut.last_seq {
        return Err(RestoreError::Rows(format!(
            "the restore stopped at event {last_seq} of {}",
            cut.last_seq
        )));
    }
    Ok(counts)
}

/// Sets the applied index and term to the backup's (the rows are all of
/// the entries up to it that the cut keeps), and the last seq from
/// `from` to `to`, failing unless MySQL is still at `from`.
fn applied(sql: &mut Sql, header: &Header, from: u64, to: u64) {
    sql.push("UPDATE raft_applied SET applied_index = ")
        .uint(header.applied_index)
        .push(", applied_term = ")
        .uint(header.applied_term)
        .push(", last_seq = IF(last_seq = ")
        .uint(from)
        .push(", ")
        .uint(to)
        .push(", NULL), counts_index = NULL WHERE id = 1")
        .end();
    // The new cluster runs this build from its first entry on (what it
    // writes for each entry is this version's; see `crate::upgrade`).
    sql.push("INSERT INTO cluster_versions (raft_index, version) VALUES (")
        .uint(header.applied_index)
        .push(", ")
        .ascii(&crate::version::this_version().to_string())
        .push(") ON DUPLICATE KEY UPDATE version = VALUES(version)")
        .end();
}

type ReadResult = Result<((u64, u64), bool), RestoreError>;

/// Sends the file's kept rows in pages; returns the keys kept and
/// dropped, and whether every page was taken.
fn read_pages(path: &Path, cut: Cut, pages: mpsc::Sender<Batch>) -> ReadResult {
    let file = File::open(path).map_err(|cause| RestoreError::Open {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut events: Vec<EventRow> = Vec::new();
    let mut keys: Vec<KeyRow> = Vec::new();
    let mut bytes = 0usize;
    let mut accounts = AccountRows::default();
    let (mut kept, mut dropped) = (0u64, 0u64);
    let send = |batch: Batch| {
        pages
            .blocking_send(batch)
            .map_err(|_| "the writer stopped".to_string())
    };
    verify(std::io::BufReader::new(file), |part, row| {
        let parse_err = |e: serde_json::Error| e.to_string();
        match part {
            "events" => {
                let event: EventRow = serde_json::from_slice(row).map_err(parse_err)?;
                if event.seq > cut.last_seq {
                    return Ok(());
                }
                bytes += event.payload.len();
                events.push(event);
                if events.len() >= PAGE_EVENTS || bytes >= PAGE_BYTES {
                    bytes = 0;
                    send(Batch::Events(std::mem::take(&mut events)))?;
                }
            }
            "idempotency_keys" => {
                if !events.is_empty() {
                    bytes = 0;
                    send(Batch::Events(std::mem::take(&mut events)))?;
                }
                let key: KeyRow = serde_json::from_slice(row).map_err(parse_err)?;
                if !cut.keeps_key(&key) {
                    dropped += 1;
                    return Ok(());
                }
                kept += 1;
                bytes += key.outcome.len();
                keys.push(key);
                if keys.len() >= PAGE_EVENTS || bytes >= PAGE_BYTES {
                    bytes = 0;
                    send(Batch::Keys(std::mem::take(&mut keys)))?;
                }
            }
            "users" => accounts
                .users
                .push(serde_json::from_slice::<User>(row).map_err(parse_err)?),
            "sessions" => accounts
                .sessions
                .push(serde_json::from_slice::<Session>(row).map_err(parse_err)?),
            "api_tokens" => accounts
                .tokens
                .push(serde_json::from_slice::<Token>(row).map_err(parse_err)?),
            _ => {}
        }
        Ok(())
    })?;
    // A backup with no key part rows leaves the events' last page here.
    let complete = (events.is_empty() || send(Batch::Events(events)).is_ok())
        && (keys.is_empty() || send(Batch::Keys(keys)).is_ok())
        && send(Batch::Accounts(accounts)).is_ok();
    Ok(((kept, dropped), complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_of(until: Option<Until>, events: &[(u64, u64, i64)]) -> Cut {
        let mut cutter = Cutter {
            until,
            cut: Cut::default(),
            stopped: false,
        };
        for &(seq, index, at) in events {
            cutter.event(seq, index, Timestamp(at));
        }
        cutter.cut
    }

    fn key(raft_index: u64) -> KeyRow {
        KeyRow {
            key: format!("k{raft_index}"),
            fingerprint: "f".into(),
            raft_index,
            outcome: "{}".into(),
            created_at: Timestamp(0),
        }
    }

    // (seq, raft_index, at): entries 12 and 14 made no event (a rejection,
    // an account command).
    const EVENTS: [(u64, u64, i64); 4] = [(1, 10, 100), (2, 11, 200), (3, 13, 300), (4, 15, 250)];

    #[test]
    fn a_full_restore_keeps_every_event_and_key() {
        let cut = cut_of(None, &EVENTS);
        assert_eq!(cut.last_seq, 4);
        assert_eq!(cut.first_dropped_index, None);
        assert!(cut.keeps_key(&key(99)));
    }

    #[test]
    fn until_seq_keeps_the_keys_decided_before_the_first_dropped_event() {
        let cut = cut_of(Some(Until::Seq(2)), &EVENTS);
        assert_eq!(cut.last_seq, 2);
        assert_eq!(cut.last_event_at, Some(Timestamp(200)));
        assert_eq!(cut.first_dropped_index, Some(13));
        assert!(cut.keeps_key(&key(11)), "the last kept event's key");
        assert!(cut.keeps_key(&key(12)), "a rejection before event 3");
        assert!(!cut.keeps_key(&key(13)), "event 3's key: a retry is new");
        assert!(!cut.keeps_key(&key(14)));
    }

    #[test]
    fn until_time_keeps_the_prefix_up_to_the_first_later_event() {
        // Event 4 is stamped before event 3 (a new leader's clock) but
        // comes after it: the kept events stay a prefix.
        let cut = cut_of(Some(Until::Time(Timestamp(260))), &EVENTS);
        assert_eq!(cut.last_seq, 2);
        assert_eq!(cut.first_dropped_index, Some(13));
        let cut = cut_of(Some(Until::Time(Timestamp(50))), &EVENTS);
        assert_eq!(cut.last_seq, 0, "before the first event: an empty board");
        assert_eq!(cut.last_event_at, None);
        assert!(!cut.keeps_key(&key(10)));
    }
}
