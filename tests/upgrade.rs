//! Rolling upgrades on real processes: a mixed-version cluster where nodes
//! 1 and 2 run a "newer" build (the failpoints binary claiming version
//! 99.0.0 with `TASKRAFT_TEST_VERSION`, and knowing a command kind,
//! `future_create`, that release builds cannot decode) and node 3 the
//! normal build (`CARGO_PKG_VERSION`).
//!
//! - The cluster version is the lowest voter's (node 3's), and the node taking
//!   a request refuses the new kind with 503 `cluster_version_too_old`.
//! - Past the gate (a failpoint), the entry commits: the new nodes apply
//!   it, the old node's applier stops before it — not ready, with the cause
//!   in `/readyz` and `/api/cluster` — and its rows stay those of the
//!   others up to there: no divergence, nothing skipped.
//! - Upgraded (the new binary, restarted on its data), the old node applies
//!   the entry from its log and everything after it, and the cluster
//!   version rises, so the gate lets the new kind through.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const NEW_VERSION: &str = "99.0.0";
const OLD_VERSION: &str = env!("CARGO_PKG_VERSION");

fn view(url: &str) -> Value {
    get(&format!("{url}/api/cluster")).body
}

/// Waits until `check` holds for `url`'s `/api/cluster`.
fn wait_view(url: &str, what: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let v = view(url);
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{url}: {what}; last view {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Makes node `to` the leader.
fn lead(cluster: &mut Cluster, to: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.leader(Duration::from_secs(20)) != to {
        let leader = cluster.leader(Duration::from_secs(20));
        let _ = send(
            "POST",
            &format!("{}/api/cluster/leader", cluster.url(leader)),
            &[],
            Some(&json!({ "to": to })),
        );
        assert!(Instant::now() < deadline, "node {to} never became leader");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn events_of(cluster: &Cluster, id: u64) -> Vec<Value> {
    all_events(&cluster.url(id))
}

#[test]
fn an_old_node_stops_at_a_kind_it_cannot_decode_and_the_gate_holds_until_every_voter_is_new() {
    let failpoints = failpoints_binary();
    let mut cluster = Cluster::start_after(3, &[], &[], |cluster| {
        for id in [1, 2] {
            cluster.set_binary(id, &failpoints);
            cluster.set_env(id, "TASKRAFT_TEST_VERSION", NEW_VERSION);
        }
        // Creates node 1 takes are proposed as `future_create`; its gate's
        // second refusal is overridden (once), the others stand.
        cluster.set_env(
            1,
            "TASKRAFT_CRASH_POINTS",
            "api_propose_future_kind=1;raft_skip_version_gate=after:2",
        );
    });
    lead(&mut cluster, 1);
    let leader = cluster.url(1);
    let plain = cluster.url(2);
    let old = cluster.url(3);

    // Every node knows every voter's version: the cluster's is the old one.
    for id in 1..=3 {
        let v = wait_view(
            &cluster.url(id),
            "cluster version is the old node's",
            Duration::from_secs(20),
            |v| v["cluster_version"] == OLD_VERSION,
        );
        let expected = if id == 3 { OLD_VERSION } else { NEW_VERSION };
        assert_eq!(v["version"], expected, "node {id}");
        assert!(!v["commit"].as_str().unwrap_or("").is_empty());
    }
    // Today's kinds pass the gate (node 2 proposes plain creates).
    for i in 0..3 {
        let created = create_titled(&plain, &format!("before {i}"));
        assert_eq!(created.status, 201, "{:?}", created.body);
    }

    // The new kind is refused while an old voter remains.
    let refused = create_titled(&leader, "future, refused");
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.error_code(), Some("cluster_version_too_old"));
    assert_eq!(refused.body["error"]["cluster_version"], OLD_VERSION);
    assert_eq!(refused.body["error"]["kind"], "future_create");
    assert_eq!(refused.body["error"]["outcome_unknown"], false);
    assert!(refused.header("retry-after").is_some());

    // Past the gate (the failpoint): committed, applied by the new nodes.
    let before = view(&leader)["commit_index"].as_u64().unwrap();
    let future = create_titled(&leader, "future, forced");
    assert_eq!(future.status, 201, "{:?}", future.body);
    let future_id = future.body["id"].as_str().unwrap().to_string();

    // The old node stops right before it, and says why.
    let stopped = wait_view(
        &old,
        "the old node's applier stops",
        Duration::from_secs(20),
        |v| {
            v["apply_error"]
                .as_str()
                .is_some_and(|e| e.contains("cannot decode"))
        },
    );
    let error = stopped["apply_error"].as_str().unwrap();
    assert!(error.contains("future_create"), "{error}");
    let stop_index: u64 = error
        .split("log entry ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no index in {error}"));
    assert!(stop_index > before, "{stop_index} after {before}");
    let ready = get(&format!("{old}/readyz"));
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    let problems = ready.body["problems"].to_string();
    assert!(
        problems.contains("cannot decode") && problems.contains("future_create"),
        "{problems}"
    );
    let log = std::fs::read_to_string(&cluster.node(3).log).unwrap();
    assert!(
        log.contains("cannot decode"),
        "{}",
        tail(&cluster.node(3).log, 20)
    );

    // Writes go on (the old node still votes and replicates); it applies
    // none of them.
    for i in 0..3 {
        let created = create_titled(&plain, &format!("after {i}"));
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let after = wait_view(
        &leader,
        "the new nodes apply everything",
        Duration::from_secs(20),
        |v| v["applied_index"].as_u64() >= Some(stop_index + 3),
    );
    let old_view = view(&old);
    assert_eq!(old_view["applied_index"].as_u64(), Some(stop_index - 1));
    assert!(old_view["commit_index"].as_u64() >= Some(stop_index));
    assert!(after["applied_index"].as_u64() > old_view["applied_index"].as_u64());

    // No divergence: the new nodes agree, and the old node holds exactly
    // their events before the entry it stopped at.
    cluster.wait_caught_up(2, Duration::from_secs(20));
    let new_events = events_of(&cluster, 1);
    assert_eq!(events_of(&cluster, 2), new_events);
    let old_events = events_of(&cluster, 3);
    let expected: Vec<Value> = new_events
        .iter()
        .filter(|e| e["raft_index"].as_u64() < Some(stop_index))
        .cloned()
        .collect();
    assert_eq!(old_events.len(), 3, "{old_events:?}");
    assert_eq!(old_events, expected);
    assert!(new_events
        .iter()
        .any(|e| e["task_id"] == future_id.as_str()));
    // Still refused for the new kind: the old voter remains.
    let refused = create_titled(&leader, "future, refused again");
    assert_eq!(refused.status, 503, "{:?}", refused.body);

    // Upgrade the old node: the new build, restarted on its data.
    cluster.kill(3);
    cluster.set_binary(3, &failpoints);
    cluster.set_env(3, "TASKRAFT_TEST_VERSION", NEW_VERSION);
    cluster.restart(3);
    cluster.wait_caught_up(3, Duration::from_secs(30));
    let new_events = events_of(&cluster, 1);
    assert_eq!(
        events_of(&cluster, 3),
        new_events,
        "the upgraded node applied the entry and everything after it"
    );
    assert_eq!(view(&old)["apply_error"], Value::Null);

    // Every voter is new: the gate lets the new kind through.
    for id in 1..=3 {
        wait_view(
            &cluster.url(id),
            "cluster version rises",
            Duration::from_secs(20),
            |v| v["cluster_version"] == NEW_VERSION,
        );
    }
    let allowed = create_titled(&leader, "future, allowed");
    assert_eq!(allowed.status, 201, "{:?}", allowed.body);
    cluster.wait_caught_up(3, Duration::from_secs(20));
    assert_eq!(events_of(&cluster, 3), events_of(&cluster, 1));
}
