//! Prometheus metrics, served at `/metrics` in the text format. They live
//! in the default registry, beside raft-engine's own (`raft_engine_*`).

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
        "Time to answer an HTTP request, by route",
        &["method", "route"],
        vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
    )
    .expect("metric registers")
});

pub static RAFT_TERM: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("taskraft_raft_term", "The node's current Raft term")
        .expect("metric registers")
});

pub static RAFT_IS_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("taskraft_raft_is_leader", "1 while this node is the leader")
        .expect("metric registers")
});

pub static RAFT_LEADER_CHANGES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "taskraft_raft_leader_changes_total",
        "Times this node saw the leader or term change"
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
        "taskraft_apply_batch_seconds",
        "Time to apply one batch in one MySQL transaction",
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
        "taskraft_events_applied_total",
        "Events written to the event table"
    )
    .expect("metric registers")
});

pub static PENDING_WRITES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_pending_writes",
        "Writes waiting for their entry to be applied here"
    )
    .expect("metric registers")
});

pub static PENDING_READS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "taskraft_pending_reads",
        "Linearizable reads waiting for a read index or apply"
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

/// Everything registered, in the Prometheus text format.
pub fn render() -> String {
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail.
    let _ = TextEncoder::new().encode(&prometheus::gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
