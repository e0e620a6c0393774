//! Events that are not about a task, on real nodes with accounts on: user
//! and role changes and cluster membership changes are events in the same
//! dense seq as task events, with their actors, identical on every node;
//! and in a mixed-version cluster none is written until every voter runs a
//! version that writes them (the log's cluster version switches them on at
//! one entry, for every node at once).

mod common;

use std::time::Duration;

use common::accounts::*;
use common::*;
use serde_json::{json, Value};

/// Every event node `id` holds (the service token reads them).
fn events(cluster: &Cluster, id: u64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut since = 0;
    loop {
        let page = call(
            &service(),
            "GET",
            &format!(
                "{}/api/events?since={since}&limit=1000&consistency=local",
                cluster.url(id)
            ),
            None,
        );
        assert_eq!(page.status, 200, "{:?}", page.body);
        let batch = page.body["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = batch.last() else {
            return events;
        };
        since = last["seq"].as_u64().unwrap();
        events.extend(batch);
    }
}

/// The events that are not about a task, as `(kind, subject, actor name)`:
/// the user's name, or the member's id.
fn others(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| !e["kind"].as_str().unwrap().starts_with("task_"))
        .map(|e| {
            let subject = match (&e["user"], &e["member"]) {
                (Value::Object(user), _) => user["username"].as_str().unwrap().to_string(),
                (_, Value::Object(member)) => format!("node {}", member["id"]),
                _ => "?".into(),
            };
            (
                e["kind"].as_str().unwrap().to_string(),
                subject,
                e["actor"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn owned(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// Waits until nodes `ids` hold the same events, at least `at_least` of
/// them; those events.
fn agreed(cluster: &Cluster, ids: &[u64], at_least: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let all: Vec<Vec<Value>> = ids.iter().map(|id| events(cluster, *id)).collect();
        if all.iter().all(|e| *e == all[0]) && all[0].len() >= at_least {
            return all[0].clone();
        }
        if std::time::Instant::now() > deadline {
            for (id, events) in ids.iter().zip(&all) {
                eprintln!("node {id}: {} events: {:#?}", events.len(), others(events));
            }
            let first_difference =
                (0..all[0].len()).find(|i| all.iter().any(|e| e.get(*i) != all[0].get(*i)));
            if let Some(i) = first_difference {
                for (id, events) in ids.iter().zip(&all) {
                    eprintln!("node {id} event {i}: {:?}", events.get(i));
                }
            }
            panic!("nodes {ids:?} do not hold the same {at_least}+ events");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn user_and_membership_changes_are_events_with_their_actors_on_every_node_alike() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let url = cluster.url(1);

    // A task, so the seq is shared with task events.
    let task = call(
        &admin,
        "POST",
        &format!("{url}/api/tasks"),
        Some(&json!({ "title": "Plan the offsite" })),
    );
    assert_eq!(task.status, 201, "{task:?}");

    let grace = create_user(&url, &admin, "grace", "member");
    let patch = |who: &Who, body: Value| {
        let r = call(
            who,
            "PATCH",
            &format!("{url}/api/users/{grace}"),
            Some(&body),
        );
        assert_eq!(r.status, 200, "{body}: {r:?}");
    };
    patch(&admin, json!({ "role": "viewer" }));
    // Nothing changes: no event.
    patch(&admin, json!({ "role": "viewer" }));
    let as_grace = login(&cluster.url(2), "grace", "grace-password").expect("grace logs in");
    patch(
        &as_grace,
        json!({ "password": "a-new-password-for-grace", "current_password": "grace-password" }),
    );
    patch(&admin, json!({ "disabled": true }));

    // A node joins (it adds and promotes itself), then an admin removes it.
    let four = cluster.add_joining_node();
    cluster.wait_membership(1, &[1, 2, 3, 4], &[], Duration::from_secs(60));
    // Refused (409) while the new member's URL record is still pending.
    let mut removed = None;
    within("node 4 is removed", Duration::from_secs(20), || {
        let r = call(
            &admin,
            "DELETE",
            &format!("{url}/api/cluster/members/{four}"),
            None,
        );
        let done = r.status == 202;
        removed = Some(r);
        done
    });
    assert_eq!(removed.unwrap().status, 202);
    cluster.wait_membership(1, &[1, 2, 3], &[], Duration::from_secs(30));

    let events = agreed(&cluster, &[1, 2, 3], 9);
    assert_eq!(
        others(&events),
        owned(&[
            ("user_created", "admin", "system"),
            ("user_created", "grace", "admin"),
            ("user_updated", "grace", "admin"),
            ("user_updated", "grace", "grace"),
            ("user_updated", "grace", "admin"),
            ("cluster_member_added", "node 4", "node 4"),
            ("cluster_member_promoted", "node 4", "node 4"),
            ("cluster_member_removed", "node 4", "admin"),
        ]),
        "{events:#?}"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "one dense seq"
    );

    let updates: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "user_updated")
        .collect();
    assert_eq!(
        updates[0]["changes"],
        json!({ "role": { "from": "member", "to": "viewer" } })
    );
    assert_eq!(
        updates[1]["changes"],
        json!({ "password": { "from": null, "to": "changed" } }),
        "a password change says only that it changed"
    );
    assert_eq!(
        updates[2]["changes"],
        json!({ "disabled": { "from": false, "to": true } })
    );
    assert_eq!(updates[2]["user"]["disabled"], json!(true));
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        "argon2",
        "password_hash",
        "grace-password",
        "a-new-password",
    ] {
        assert!(!text.contains(secret), "an event holds {secret:?}");
    }
    let added = events
        .iter()
        .find(|e| e["kind"] == "cluster_member_added")
        .unwrap();
    assert_eq!(added["member"]["id"], json!(four));
    assert_eq!(added["member"]["change"], "added");
    assert_eq!(
        added["member"]["url"].as_str(),
        Some(cluster.url(four).as_str()),
        "{added}"
    );
    assert!(added.get("task_id").is_none() && added.get("task").is_none());

    // A node restarted reads its state back past events about no task
    // (they have no task id), and goes on applying.
    cluster.restart(2);
    cluster.wait_caught_up(2, Duration::from_secs(30));
    let after = call(
        &admin,
        "POST",
        &format!("{}/api/tasks", cluster.url(2)),
        Some(&json!({ "title": "After the restart" })),
    );
    assert_eq!(after.status, 201, "{after:?}");

    // The board's projection folds past them.
    let check = cluster.rebuild_check(2);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The version node 3 claims while it is "old": it decodes every kind the
/// others propose, but announces a version before events of users and
/// members existed.
const OLD: &str = "0.2.0";

#[test]
fn a_mixed_version_cluster_writes_no_user_events_until_every_voter_runs_a_version_that_does() {
    let failpoints = failpoints_binary();
    let mut cluster = start_auth(3, &[], |cluster| {
        cluster.set_binary(3, &failpoints);
        cluster.set_env(3, "TASKRAFT_TEST_VERSION", OLD);
    });
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let url = cluster.url(1);
    create_user(&url, &admin, "before", "member");
    let events = agreed(&cluster, &[1, 2, 3], 0);
    assert_eq!(
        others(&events),
        Vec::new(),
        "no node writes a user event while a voter runs {OLD}: {events:#?}"
    );

    // Node 3 upgraded: the leader records the new cluster version in the
    // log, and from that entry on every node writes them.
    cluster.terminate(3, Duration::from_secs(20));
    cluster.set_env(3, "TASKRAFT_TEST_VERSION", env!("CARGO_PKG_VERSION"));
    cluster.spawn(3);
    cluster.wait_ready(3, Duration::from_secs(60));
    within(
        "the log records the new cluster version",
        Duration::from_secs(20),
        || {
            // A user created meanwhile makes an event once it is recorded.
            let name = format!("after{}", rand_suffix());
            create_user(&url, &admin, &name, "member");
            others(&events_of_1(&cluster))
                .iter()
                .any(|(kind, ..)| kind == "user_created")
        },
    );
    let events = agreed(&cluster, &[1, 2, 3], 1);
    let created = others(&events);
    assert!(
        created
            .iter()
            .all(|(kind, who, _)| kind == "user_created" && who.starts_with("after")),
        "only users created after the upgrade have events: {created:?}"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

fn events_of_1(cluster: &Cluster) -> Vec<Value> {
    events(cluster, 1)
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}
