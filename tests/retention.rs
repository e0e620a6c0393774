//! Idempotency-key retention on real processes: three nodes with
//! `idempotency_retention = 2s`. The leader proposes expiries in the log;
//! every node's MySQL drops the same keys at the same log index, and a
//! retry after its key expired is a new request that creates a new task.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;
use serde_json::{json, Value};

/// One node's keys as its MySQL holds them, read with its applied index
/// in one consistent snapshot: (applied index, [(key, raft index)]).
fn keys_of(url: &str) -> (u64, Vec<(String, u64)>) {
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(url)
            .await
            .expect("the node's database answers");
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .unwrap();
        let applied: Option<u64> = conn
            .query_first("SELECT applied_index FROM raft_applied WHERE id = 1")
            .await
            .unwrap();
        let keys: Vec<(String, u64)> = conn
            .query("SELECT idem_key, raft_index FROM idempotency_keys ORDER BY idem_key")
            .await
            .unwrap();
        conn.query_drop("COMMIT").await.unwrap();
        conn.disconnect().await.unwrap();
        (applied.unwrap_or(0), keys)
    })
}

fn keyed_create(url: &str, key: &str, title: &str) -> Response {
    send(
        "POST",
        &format!("{url}/api/tasks"),
        &[("Idempotency-Key", key)],
        Some(&json!({ "title": title })),
    )
}

#[test]
fn keys_expire_on_every_node_alike_and_a_retry_after_expiry_creates_a_new_task() {
    let mut cluster = Cluster::start_with(3, &[("TASKRAFT_IDEMPOTENCY_RETENTION", "2s")]);
    let leader = cluster.leader(Duration::from_secs(20));
    let url = cluster.url(leader);

    // Before the request: the key's stamp is no earlier.
    let used_at = Instant::now();
    let first = keyed_create(&url, "retained-1", "once");
    assert_eq!(first.status, 201, "{:?}", first.body);
    let first_id = first.body["id"].as_str().unwrap().to_string();
    // Within the retention a retry gets the first outcome back.
    let retry = keyed_create(&url, "retained-1", "once");
    assert_eq!(retry.status, 201, "{:?}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body["id"], first_id.as_str());

    // Every node's MySQL drops it, through the log.
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(20));
        loop {
            let (_, keys) = keys_of(&cluster.mysql_url(id));
            if !keys.iter().any(|(k, _)| k == "retained-1") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} still holds the key: {keys:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(
        used_at.elapsed() >= Duration::from_millis(1_950),
        "not before the retention (2 s, less 50 ms for the wall clock against the monotonic one)"
    );

    // A retry after expiry is a new request: a new task.
    let late = keyed_create(&url, "retained-1", "once");
    assert_eq!(late.status, 201, "{:?}", late.body);
    assert_eq!(late.header("idempotent-replayed"), None);
    let late_id = late.body["id"].as_str().unwrap().to_string();
    assert_ne!(late_id, first_id);
    for id in [&first_id, &late_id] {
        let found = get(&format!("{url}/api/tasks/{id}"));
        assert_eq!(found.status, 200, "{id}: {:?}", found.body);
    }

    // Keys used over several expiry rounds: at any one applied index,
    // every node holds exactly the same keys.
    for i in 0..30 {
        let created = keyed_create(&url, &format!("round-{i}"), &format!("round {i}"));
        assert_eq!(created.status, 201, "{:?}", created.body);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut compared = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while compared < 3 {
        let seen: Vec<(u64, Vec<(String, u64)>)> =
            (1..=3).map(|id| keys_of(&cluster.mysql_url(id))).collect();
        if seen.iter().all(|(index, _)| *index == seen[0].0) {
            for (id, (_, keys)) in seen.iter().enumerate() {
                assert_eq!(keys, &seen[0].1, "node {} at index {}", id + 1, seen[0].0);
            }
            compared += 1;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes were never at the same index: {:?}",
            seen.iter().map(|(i, _)| i).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And in the end every round's key expired everywhere.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<usize> = (1..=3)
            .map(|id| keys_of(&cluster.mysql_url(id)).1.len())
            .collect();
        if left.iter().all(|n| *n == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "keys left per node: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let view: Value = get(&format!("{url}/api/cluster")).body;
    assert_eq!(view["cluster_version"], env!("CARGO_PKG_VERSION"));
}

/// `taskraft_filter_reads_total{filters=…}` on node `id`.
fn filter_reads(cluster: &Cluster, id: u64, filters: &str) -> f64 {
    metric(
        &cluster.url(id),
        &format!("taskraft_filter_reads_total{{filters=\"{filters}\"}}"),
    )
}

#[test]
fn an_expiry_of_most_keys_reads_the_key_filter_again_and_keys_still_deduplicate() {
    // Until 2026-12-07 such an expiry dropped the applier's whole state and
    // read every task id of the history again; now the key filter alone is
    // read (after 5 expired keys here, 200,000 in production).
    let mut cluster = Cluster::start_with(
        3,
        &[
            ("TASKRAFT_IDEMPOTENCY_RETENTION", "2s"),
            ("TASKRAFT_TEST_KEY_REBUILD_AFTER", "5"),
        ],
    );
    let leader = cluster.leader(Duration::from_secs(20));
    let url = cluster.url(leader);
    let mut first_ids = Vec::new();
    for i in 0..10 {
        let created = keyed_create(&url, &format!("gone-{i}"), "expires");
        assert_eq!(created.status, 201, "{:?}", created.body);
        first_ids.push(created.body["id"].as_str().unwrap().to_string());
    }

    // Every node deletes them, then reads its key filter again, and only
    // it. The filter counts keys by the minute they were first used, and a
    // minute counts as expired once a cutoff is past its end: up to a
    // minute and the retention after the creates.
    let deadline = Instant::now() + Duration::from_secs(100);
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(20));
        while !keys_of(&cluster.mysql_url(id)).1.is_empty()
            || filter_reads(&cluster, id, "keys") < 1.0
        {
            assert!(
                Instant::now() < deadline,
                "node {id}: keys {:?}, key filter reads {}",
                keys_of(&cluster.mysql_url(id)).1,
                filter_reads(&cluster, id, "keys")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            filter_reads(&cluster, id, "all"),
            1.0,
            "node {id} read its whole state again"
        );
    }

    // Keys still work: a new one is remembered, an expired one is new again.
    let fresh = keyed_create(&url, "after-rebuild", "kept");
    assert_eq!(fresh.status, 201, "{:?}", fresh.body);
    let retry = keyed_create(&url, "after-rebuild", "kept");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body["id"], fresh.body["id"]);
    let again = keyed_create(&url, "gone-0", "expires");
    assert_eq!(again.status, 201, "{:?}", again.body);
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_ne!(again.body["id"].as_str().unwrap(), first_ids[0]);
}

/// Runs `statement` on the database at `url`.
fn execute(url: &str, statement: &str) {
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(url)
            .await
            .expect("the node's database answers");
        conn.query_drop(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        conn.disconnect().await.expect("disconnects");
    });
}

fn created_at(url: &str) -> Vec<(String, String)> {
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
        let rows: Vec<(String, String)> = conn
            .query(
                "SELECT idem_key, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%f') \
                 FROM idempotency_keys ORDER BY idem_key",
            )
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        rows
    })
}

#[test]
fn keys_stored_before_the_retention_migration_get_the_time_of_their_entry() {
    let mut cluster = Cluster::start(1);
    let url = cluster.url(1);
    let created = keyed_create(&url, "before-v5-create", "old");
    assert_eq!(created.status, 201, "{:?}", created.body);
    // A rejection is remembered too, and makes no event of its own.
    let missing = send(
        "DELETE",
        &format!("{url}/api/tasks/00000000-0000-4000-8000-000000000001"),
        &[("Idempotency-Key", "before-v5-rejected")],
        None,
    );
    assert_eq!(missing.status, 404, "{:?}", missing.body);
    let event_at = created.body["created_at"].as_str().unwrap().to_string();
    cluster
        .terminate(1, Duration::from_secs(30))
        .expect("node 1 stops");

    // The schema as version 4 (accounts) left it: no created_at.
    let db = cluster.mysql_url(1);
    execute(&db, "ALTER TABLE idempotency_keys DROP INDEX idempotency_keys_created_at, DROP COLUMN created_at");
    execute(&db, "DELETE FROM schema_migrations WHERE version = 5");

    // Migrated at start-up: each key gets the time of the last event at or
    // before its entry, the same on every node.
    cluster.restart(1);
    let expected = event_at.trim_end_matches('Z').to_string();
    let rows = created_at(&db);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (key, at) in &rows {
        assert!(
            at.starts_with(&expected),
            "{key}: created_at {at}, the create's event was at {expected}"
        );
    }
    // And the key is still honoured (the default retention is 7 days).
    let retry = keyed_create(&url, "before-v5-create", "old");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body["id"], created.body["id"]);
}
