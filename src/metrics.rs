//! Prometheus metrics, served at `/metrics` in the text format. They live
//! in the default registry, beside raft-engine's own (`raft_engine_*`).
//!
//! The names an operator alerts on follow etcd's (`etcd_server_has_leader`
//! becomes `taskraft_server_has_leader`, and so on); the README's Metrics
//! table lists each with what to alert on, and `tests/metrics.rs` scrapes a
//! real cluster to check every name in that table is exported with its type
//! and labels. Values that are cheap to derive (apply lag, applied
//! proposals, `process_*`) are computed when `/metrics` is scraped, so the
//! write path pays nothing for them.

pub mod process;

use std::sync::LazyLock;

use prometheus::{
    register_histogram, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec, Encoder, Histogram, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, TextEncoder,
};

// Registration happens once, with constant names: it cannot fail.
pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_http_requests_total",
        "HTTP requests answered, by route and status code",
        &["method", "route", "status"]
    )
    .expect("metric registers")
});

pub static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "taskraft_http_request_duration_seconds",
        "Time to answer an HTTP request, by route pattern (not the raw path), method and status",
        &["route", "method", "status"],
        vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
    )
    .expect("metric registers")
});

pub static RAFT_TERM: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("taskraft_raft_term", "The node's current Raft term")
        .expect("metric registers")
});

pub static RAFT_IS_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_server_is_leader",
        "1 while this node is the leader"
    )
    .expect("metric registers")
});

pub static HAS_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_server_has_leader",
        "1 while this node knows a leader (0: an election is under way or the node is cut off)"
    )
    .expect("metric registers")
});

pub static READY: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_server_ready",
        "1 when /readyz would answer 200 (leader known, MySQL answers, applier not stuck), \
         as of the last probe or scrape"
    )
    .expect("metric registers")
});

pub static RAFT_LEADER_CHANGES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_server_leader_changes_seen_total",
        "Times this node saw a new leader"
    )
    .expect("metric registers")
});

pub static PROPOSALS_COMMITTED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_server_proposals_committed_total",
        "Log entries this node learned are committed"
    )
    .expect("metric registers")
});

pub static PROPOSALS_APPLIED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_server_proposals_applied_total",
        "Log entries this node applied in MySQL"
    )
    .expect("metric registers")
});

pub static PROPOSALS_FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_server_proposals_failed_total",
        "Writes taken by this node that failed to commit (no leader, leader change, timeout)"
    )
    .expect("metric registers")
});

pub static APPLY_LAG: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_apply_lag_entries",
        "Committed log entries not yet applied in this node's MySQL"
    )
    .expect("metric registers")
});

pub static WAL_FSYNC_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "taskraft_disk_wal_fsync_duration_seconds",
        "Time to write and fsync one batch of the Raft log",
        vec![
            0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
            0.512, 1.024, 2.048, 4.096, 8.192
        ]
    )
    .expect("metric registers")
});

pub static PEER_RTT_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "taskraft_network_peer_round_trip_time_seconds",
        "Leader's heartbeat to a peer until that peer's answer, by peer id",
        &["peer"],
        vec![
            0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024,
            0.2048, 0.4096, 0.8192, 1.6384
        ]
    )
    .expect("metric registers")
});

pub static PEER_SENT_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_network_peer_sent_failures_total",
        "Messages or links to a peer that failed (queue full, connection lost), by peer id",
        &["peer"]
    )
    .expect("metric registers")
});

pub static BUILD_INFO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "taskraft_build_info",
        "Always 1; the labels say which build this node runs",
        &["version", "commit"]
    )
    .expect("metric registers")
});

pub static RAFT_COMMIT_INDEX: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_raft_commit_index",
        "Highest log index known committed"
    )
    .expect("metric registers")
});

pub static APPLIED_INDEX: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_applied_index",
        "Highest log index applied in MySQL"
    )
    .expect("metric registers")
});

pub static PROPOSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_proposals_total",
        "Writes proposed through this node, by result",
        &["result"]
    )
    .expect("metric registers")
});

pub static READ_ROUNDS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_read_index_rounds_total",
        "ReadIndex rounds started (reads share rounds)"
    )
    .expect("metric registers")
});

pub static RAFT_READY_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "taskraft_raft_ready_seconds",
        "Time to handle one Raft Ready, fsync included",
        vec![0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1]
    )
    .expect("metric registers")
});

pub static RAFT_READY_ENTRIES: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "taskraft_raft_ready_entries",
        "New log entries written per Raft Ready (one fsync)",
        vec![0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
    )
    .expect("metric registers")
});

pub static APPLY_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "taskraft_mysql_apply_txn_duration_seconds",
        "Time to apply one batch of entries in one MySQL transaction, COMMIT included",
        vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0]
    )
    .expect("metric registers")
});

pub static APPLY_ENTRIES: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "taskraft_apply_batch_entries",
        "Log entries per applied batch",
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]
    )
    .expect("metric registers")
});

pub static APPLY_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_apply_errors_total",
        "Batches rolled back and retried"
    )
    .expect("metric registers")
});

pub static MYSQL_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_mysql_errors_total",
        "MySQL errors met while applying, by class: transient (retried as is), \
         size (the batch is split), other (retried; the node reports itself unready)",
        &["class"]
    )
    .expect("metric registers")
});

pub static APPLY_BACKLOG_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_apply_backlog_bytes",
        "Bytes of committed entries not yet applied to MySQL (new writes get 503 past 64 MiB)"
    )
    .expect("metric registers")
});

pub static EVENTS_APPLIED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_db_events_total",
        "Events this process wrote to the node's event table"
    )
    .expect("metric registers")
});

pub static PENDING_WRITES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_server_proposals_pending",
        "Writes taken by this node, waiting for their entry to commit and apply here"
    )
    .expect("metric registers")
});

pub static PENDING_READS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_pending_reads",
        "Linearizable reads waiting for a read index or apply (reads that arrived together count once)"
    )
    .expect("metric registers")
});

pub static WS_SESSIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("taskraft_ws_sessions", "Open WebSocket sessions")
        .expect("metric registers")
});

pub static WS_RESYNCS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_ws_resyncs_total",
        "WebSocket sessions told to resync (too far behind)"
    )
    .expect("metric registers")
});

pub static WS_EVENTS_SENT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_ws_events_sent_total",
        "Event frames written to WebSocket sessions"
    )
    .expect("metric registers")
});

pub static LOG_COMPACTIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_raft_log_compactions_total",
        "Times the Raft log was compacted up to MySQL's durable applied index"
    )
    .expect("metric registers")
});

pub static LOG_FIRST_INDEX: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_raft_log_first_index",
        "The first entry the Raft log still holds"
    )
    .expect("metric registers")
});

pub static SNAPSHOTS_SENT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_raft_snapshots_sent_total",
        "Snapshots sent to followers that needed compacted entries"
    )
    .expect("metric registers")
});

pub static SNAPSHOTS_INSTALLED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_raft_snapshots_installed_total",
        "Snapshots from the leader installed in this node's log"
    )
    .expect("metric registers")
});

/// What `taskraft_filter_reads_total` counts: `all` (the id and key
/// filters, at each state read: a start, or after an error) and `keys`
/// (the key filter alone, once an expiry left it mostly expired keys).
pub const FILTER_READS_KINDS: [&str; 2] = ["all", "keys"];

pub static FILTER_READS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_filter_reads_total",
        "Reads of the applier's id and key filters from MySQL completed, by filters read: \
         all (a scan of the history) or keys (of the keys the retention keeps)",
        &["filters"]
    )
    .expect("metric registers")
});

pub static CATCHUP_PAGES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_catchup_pages_total",
        "Pages of events copied from a peer's MySQL after a snapshot"
    )
    .expect("metric registers")
});

pub static CONNECTIONS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_connections_refused_total",
        "Connections closed at once, by listener (http, raft) and reason: a cap \
         (listener_limit, address_limit) or, on the Raft port, a refused or broken hello \
         or stream",
        &["listener", "reason"]
    )
    .expect("metric registers")
});

pub static CONNECTIONS_OPEN: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "taskraft_connections_open",
        "Connections admitted and still open, by listener",
        &["listener"]
    )
    .expect("metric registers")
});

pub static WS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_ws_frames_refused_total",
        "WebSocket sessions closed for what the client sent, by reason",
        &["reason"]
    )
    .expect("metric registers")
});

/// The commit this binary was built from (`TASKRAFT_COMMIT` at build time,
/// else `git rev-parse`, else "unknown"; see build.rs).
pub const BUILD_COMMIT: &str = env!("TASKRAFT_BUILD_COMMIT");

/// Called once at start-up: the metrics that must exist before anything
/// happens (an alert on `has_leader == 0` needs the 0 to be exported).
pub fn init() {
    BUILD_INFO
        .with_label_values(&[&crate::version::announced(), BUILD_COMMIT])
        .set(1);
    LazyLock::force(&HAS_LEADER);
    LazyLock::force(&READY);
    LazyLock::force(&RAFT_IS_LEADER);
    LazyLock::force(&APPLY_LAG);
    LazyLock::force(&PENDING_WRITES);
    LazyLock::force(&RAFT_LEADER_CHANGES);
    LazyLock::force(&PROPOSALS_COMMITTED);
    LazyLock::force(&PROPOSALS_APPLIED);
    LazyLock::force(&PROPOSALS_FAILED);
    LazyLock::force(&WAL_FSYNC_SECONDS);
    LazyLock::force(&APPLY_SECONDS);
    LazyLock::force(&EVENTS_APPLIED);
    LazyLock::force(&WS_SESSIONS);
    LazyLock::force(&WS_RESYNCS);
    LazyLock::force(&process::CPU_SECONDS);
    // A labelled family shows in the text format once a child exists: the
    // classes below are the ones an alert names.
    for class in MYSQL_ERROR_CLASSES {
        MYSQL_ERRORS.with_label_values(&[class]);
    }
    for result in WEBHOOK_RESULTS {
        WEBHOOK_DELIVERIES.with_label_values(&[result]);
    }
    for kind in FILTER_READS_KINDS {
        FILTER_READS.with_label_values(&[kind]);
    }
}

/// The results of `taskraft_webhook_deliveries_total`: `delivered` (a
/// 2xx answer), `failed` (another status), `error` (no answer, including a
/// refused private address).
pub const WEBHOOK_RESULTS: [&str; 3] = ["delivered", "failed", "error"];

pub static WEBHOOK_DELIVERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "taskraft_webhook_deliveries_total",
        "Webhook delivery attempts made by this node (as leader), by result",
        &["result"]
    )
    .expect("metric registers")
});

/// Counts one webhook delivery attempt by its result ([`WEBHOOK_RESULTS`]).
pub fn webhook_delivery(result: &'static str) {
    WEBHOOK_DELIVERIES.with_label_values(&[result]).inc();
}

/// The classes of `taskraft_mysql_errors_total`, as the applier sorts
/// errors (`db::ErrorClass`).
pub const MYSQL_ERROR_CLASSES: [&str; 3] = ["transient", "size", "other"];

/// Counts a write taken by this node by its result: `ok`, `rejected` (a
/// deterministic 4xx decided at apply) or `failed` (never committed).
pub fn proposal(result: &str) {
    PROPOSALS.with_label_values(&[result]).inc();
    if result == "failed" {
        PROPOSALS_FAILED.inc();
    }
}

/// The Raft node's commit index, after each Ready.
pub fn set_commit_index(commit: u64) {
    let previous = RAFT_COMMIT_INDEX.get().max(0) as u64;
    if commit > previous {
        // The first value after start counts the log recovered from disk:
        // that is what the node has committed, as in etcd.
        PROPOSALS_COMMITTED.inc_by(commit - previous);
        RAFT_COMMIT_INDEX.set(commit as i64);
    }
}

/// A peer the transport dials: its series exist from now on, at zero, so
/// an alert on them sees the peer before anything fails.
pub fn peer_known(id: u64) {
    let peer = id.to_string();
    PEER_RTT_SECONDS.with_label_values(&[&peer]);
    PEER_SENT_FAILURES.with_label_values(&[&peer]);
}

/// The Raft node's view of the leader changed.
pub fn set_leader(leader_id: u64, is_self: bool, new_leader: bool) {
    HAS_LEADER.set(i64::from(leader_id != 0));
    RAFT_IS_LEADER.set(i64::from(is_self));
    if new_leader {
        RAFT_LEADER_CHANGES.inc();
    }
}

/// Brings the derived values up to date: apply lag, applied proposals.
fn refresh_derived() {
    let commit = RAFT_COMMIT_INDEX.get().max(0);
    let applied = APPLIED_INDEX.get().max(0);
    APPLY_LAG.set((commit - applied).max(0));
    let counted = PROPOSALS_APPLIED.get();
    if applied as u64 > counted {
        PROPOSALS_APPLIED.inc_by(applied as u64 - counted);
    }
}

/// Everything registered, in the Prometheus text format.
pub fn render() -> String {
    refresh_derived();
    process::refresh();
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail.
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
