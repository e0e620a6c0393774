//! Rows of the first event payload format — every change stored with both
//! `from` and `to` — already sit in event tables. A node must still read
//! them through MySQL: rebuild folds them into the projection, history
//! serves them with both sides, and new events (stored without `to`) go on
//! after them. The row is written into a real node's database, as an older
//! version of the node wrote it.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::*;
use serde_json::{json, Value};

/// Runs `statement` with `params` on the database at `url`.
fn execute(url: &str, statement: &str, params: Vec<mysql_async::Value>) {
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(url)
            .await
            .expect("the node's database answers");
        conn.exec_drop(statement, params)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        conn.disconnect().await.expect("disconnects");
    });
}

fn rebuild(cluster: &Cluster, check: bool) -> std::process::Output {
    let mut args = vec!["rebuild"];
    if check {
        args.push("--check");
    }
    std::process::Command::new(BIN)
        .args(args)
        .env("TASKRAFT_NODE_ID", "1")
        .env("TASKRAFT_MYSQL_URL", cluster.mysql_url(1))
        .env("RUST_LOG", "warn")
        .output()
        .expect("taskraft rebuild runs")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_update_stored_in_the_first_format_still_folds_and_reads_with_both_sides() {
    let mut cluster = Cluster::start(1);
    let url = cluster.url(1);
    let created = create(
        &url,
        json!({ "title": "Write \"the\" report", "description": "C:\\tmp 😀" }),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("an id").to_string();
    let history = get(&format!("{url}/api/tasks/{id}/events"));
    let first = history.body["events"][0].clone();
    let seq = first["seq"].as_u64().expect("a seq");
    let raft_index = first["raft_index"].as_u64().expect("a raft index");
    let term = first["term"].as_u64().expect("a term");
    cluster
        .terminate(1, Duration::from_secs(30))
        .expect("node 1 stops");

    // The next event, as the first format stored it.
    let mut after = created.body.clone();
    after["title"] = json!("Ship it");
    after["assignee"] = json!("ana");
    after["version"] = json!(2);
    after["updated_at"] = json!("2026-11-24T10:05:12.345Z");
    let payload = json!({
        "task": after,
        "changes": {
            "assignee": { "from": null, "to": "ana" },
            "title": { "from": "Write \"the\" report", "to": "Ship it" },
        },
    })
    .to_string();
    let db = cluster.mysql_url(1);
    execute(
        &db,
        "INSERT INTO task_events (seq, raft_index, ordinal, term, event_id, task_id, kind, \
         payload, occurred_at, request_id) VALUES (?, ?, 1, ?, ?, ?, 'task_updated', ?, \
         '2026-11-24 10:05:12.345', ?)",
        vec![
            (seq + 1).into(),
            raft_index.into(),
            term.into(),
            "00000000-0000-4000-8000-00000000abcd".into(),
            id.clone().into(),
            payload.into(),
            "00000000-0000-4000-8000-00000000abcd".into(),
        ],
    );
    execute(
        &db,
        "UPDATE raft_applied SET last_seq = ? WHERE id = 1",
        vec![(seq + 1).into()],
    );

    let stale = rebuild(&cluster, true);
    assert!(
        !stale.status.success(),
        "the projection predates the inserted event, so the check must differ: {}",
        text(&stale)
    );
    let rebuilt = rebuild(&cluster, false);
    assert!(rebuilt.status.success(), "rebuild: {}", text(&rebuilt));
    let clean = rebuild(&cluster, true);
    assert!(clean.status.success(), "rebuild --check: {}", text(&clean));

    cluster.restart(1);
    let task = get(&format!("{url}/api/tasks/{id}"));
    assert_eq!(task.body["title"], "Ship it", "{:?}", task.body);
    assert_eq!(task.body["assignee"], "ana");
    assert_eq!(task.body["version"], 2);

    let patched = send(
        "PATCH",
        &format!("{url}/api/tasks/{id}"),
        &[("If-Match", "\"2\"")],
        Some(&json!({ "title": "Shipped", "description": "\\\\ \" 😀" })),
    );
    assert_eq!(patched.status, 200, "{:?}", patched.body);

    let events: Vec<Value> = get(&format!("{url}/api/tasks/{id}/events")).body["events"]
        .as_array()
        .expect("events")
        .clone();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["task_created", "task_updated", "task_updated"]);
    assert_eq!(
        events[1]["changes"],
        json!({
            "assignee": { "from": null, "to": "ana" },
            "title": { "from": "Write \"the\" report", "to": "Ship it" },
        }),
        "the first-format event reads as it was written"
    );
    assert_eq!(
        events[2]["changes"],
        json!({
            "description": { "from": "C:\\tmp 😀", "to": "\\\\ \" 😀" },
            "title": { "from": "Ship it", "to": "Shipped" },
        }),
        "the new event has both sides too, though it stores only `from`"
    );
    assert_eq!(events[2]["task"]["version"], 3);
    let clean = cluster.rebuild_check(1);
    assert!(
        clean.status.success(),
        "rebuild --check after: {}",
        text(&clean)
    );
}
