//! Comments on a card on three real nodes: added, edited and deleted
//! through different nodes by the people the rules allow (and refused to
//! the others), `If-Match` conflicts, hostile bodies, the events with
//! their actors (and hidden from a non-member, on the feed and the
//! socket), the count on the board page, a card's comments going with
//! it; every node's projection equal to the fold of its events, and a
//! node behind the compacted log catching up the comments.

mod common;

use std::time::Duration;

use common::accounts::*;
use common::*;
use serde_json::{json, Value};

fn thread(who: &Who, url: &str, task: &str) -> Response {
    call(
        who,
        "GET",
        &format!("{url}/api/tasks/{task}/comments"),
        None,
    )
}

fn bodies(thread: &Value) -> Vec<String> {
    thread["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn comments_through_every_node_by_the_people_allowed_with_conflicts_and_events() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    for name in ["ana", "bo", "cy", "eve"] {
        create_user(&url1, &admin, name, "member");
    }
    let ana = login(&url2, "ana", "ana-password").unwrap();
    let bo = login(&url3, "bo", "bo-password").unwrap();
    let cy = login(&url1, "cy", "cy-password").unwrap();
    let eve = login(&url1, "eve", "eve-password").unwrap();
    let bo_id = bo.user_id.clone().unwrap();

    // Ana's board: Bo a member, Cy a viewer, Eve not on it.
    let board = call(
        &ana,
        "POST",
        &format!("{url2}/api/boards"),
        Some(&json!({ "name": "Ops" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let todo = board["columns"][0]["id"].as_str().unwrap().to_string();
    for (who, role) in [(&bo, "member"), (&cy, "viewer")] {
        let user = who.user_id.clone().unwrap();
        call(
            &ana,
            "PUT",
            &format!("{url2}/api/boards/{board_id}/members/{user}"),
            Some(&json!({ "role": role })),
        )
        .ok(200);
    }
    let card = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks"),
        Some(&json!({ "title": "Discuss", "column_id": todo })),
    )
    .ok(201);
    let task = card["id"].as_str().unwrap().to_string();

    // Eve watches the feed: the board's comment events never reach her.
    let last_seq = call(&eve, "GET", &format!("{url1}/api/events"), None).ok(200)["last_seq"]
        .as_u64()
        .unwrap();
    let mut eve_feed =
        Feed::connect_as(&url1, &format!("?since={last_seq}"), &eve.headers()).unwrap();
    eve_feed.set_timeout(Duration::from_secs(10));
    assert_eq!(eve_feed.expect()["type"], "hello");

    // Bo comments through node 3; Ana reads it through node 2.
    let first = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks/{task}/comments"),
        Some(&json!({ "body": "  Ship it **today**?  " })),
    );
    let first_body = first.ok(201);
    let first_id = first_body["id"].as_str().unwrap().to_string();
    assert_eq!(first_body["body"], "Ship it **today**?", "trimmed");
    assert_eq!(first_body["version"], 1);
    assert_eq!(first_body["task_id"], task.as_str());
    assert_eq!(first_body["board_id"], board_id.as_str());
    assert_eq!(first_body["author"]["id"], bo_id.as_str());
    assert_eq!(first_body["author"]["name"], "bo");
    assert_eq!(first.header("etag"), Some("\"1\""));
    assert_eq!(
        first.header("location"),
        Some(format!("/api/comments/{first_id}").as_str())
    );
    let seen = thread(&ana, &url2, &task).ok(200);
    assert_eq!(bodies(&seen), ["Ship it **today**?"]);
    assert_eq!(seen["total"], 1);
    assert_eq!(seen["comments"][0], first_body);

    // Ana answers through node 1; oldest first everywhere.
    let second = call(
        &ana,
        "POST",
        &format!("{url1}/api/tasks/{task}/comments"),
        Some(&json!({ "body": "Yes 🚀" })),
    )
    .ok(201);
    let second_id = second["id"].as_str().unwrap().to_string();
    for url in [&url1, &url2, &url3] {
        assert_eq!(
            bodies(&thread(&cy, url, &task).ok(200)),
            ["Ship it **today**?", "Yes 🚀"],
            "a viewer reads the thread on {url}"
        );
    }
    // Paged.
    let page = call(
        &ana,
        "GET",
        &format!("{url2}/api/tasks/{task}/comments?limit=1"),
        None,
    )
    .ok(200);
    assert_eq!(bodies(&page), ["Ship it **today**?"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let rest = call(
        &ana,
        "GET",
        &format!(
            "{url2}/api/tasks/{task}/comments?limit=1&cursor={}",
            urlencode(&cursor)
        ),
        None,
    )
    .ok(200);
    assert_eq!(bodies(&rest), ["Yes 🚀"]);
    assert!(rest["next_cursor"].is_null(), "{rest}");

    // A viewer cannot comment; someone not on the board is told there is
    // no such card or comment.
    let r = call(
        &cy,
        "POST",
        &format!("{url1}/api/tasks/{task}/comments"),
        Some(&json!({ "body": "me too" })),
    );
    assert_eq!(
        (r.status, r.error_code()),
        (403, Some("forbidden")),
        "{r:?}"
    );
    let r = thread(&eve, &url1, &task);
    assert_eq!(r.status, 404, "{r:?}");
    let r = call(
        &eve,
        "POST",
        &format!("{url1}/api/tasks/{task}/comments"),
        Some(&json!({ "body": "hello?" })),
    );
    assert_eq!(r.status, 404, "{r:?}");
    for method in ["PATCH", "DELETE"] {
        let r = call(
            &eve,
            method,
            &format!("{url1}/api/comments/{first_id}"),
            Some(&json!({ "body": "mine" })).filter(|_| method == "PATCH"),
        );
        assert_eq!(r.status, 404, "{method}: {r:?}");
    }

    // Only the author edits, even the board's admin may not; If-Match
    // names the version, a stale one is 412 with the comment as it is.
    let r = call(
        &ana,
        "PATCH",
        &format!("{url2}/api/comments/{first_id}"),
        Some(&json!({ "body": "edited by ana" })),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let edited = call_with(
        &bo,
        "PATCH",
        &format!("{url1}/api/comments/{first_id}"),
        ("If-Match", "\"1\"".into()),
        Some(&json!({ "body": "Ship it *tomorrow*" })),
    );
    assert_eq!(edited.ok(200)["version"], 2);
    assert_eq!(edited.header("etag"), Some("\"2\""));
    let stale = call_with(
        &bo,
        "PATCH",
        &format!("{url2}/api/comments/{first_id}"),
        ("If-Match", "\"1\"".into()),
        Some(&json!({ "body": "too late" })),
    );
    assert_eq!(
        (stale.status, stale.error_code()),
        (412, Some("version_mismatch")),
        "{stale:?}"
    );
    assert_eq!(stale.body["error"]["current_version"], 2);
    assert_eq!(
        stale.body["error"]["current_comment"]["body"],
        "Ship it *tomorrow*"
    );

    // Hostile bodies: too long, empty, control characters, unknown fields
    // are 400 with the field named; the longest allowed, full of
    // backslashes, quotes, emoji and markup, is stored exactly.
    let hostile: String = "\\\"'<script>alert(1)</script>🦀`&amp;"
        .chars()
        .cycle()
        .take(20_000)
        .collect();
    for body in [
        json!({ "body": hostile }),
        json!({ "body": "   \n\t " }),
        json!({ "body": "bell \u{7}" }),
        json!({ "body": "x", "pinned": true }),
        json!({ "body": 42 }),
        json!({}),
    ] {
        let r = call(
            &bo,
            "POST",
            &format!("{url3}/api/tasks/{task}/comments"),
            Some(&body),
        );
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.error_code().is_some(), "{r:?}");
    }
    let r = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks/{task}/comments"),
        Some(&json!({ "body": hostile })),
    );
    assert_eq!(r.body["error"]["field"], "body", "{r:?}");
    let longest: String = hostile.chars().take(10_000).collect();
    let stored = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks/{task}/comments"),
        Some(&json!({ "body": longest })),
    )
    .ok(201);
    let longest_id = stored["id"].as_str().unwrap().to_string();
    let read = thread(&ana, &url1, &task).ok(200);
    assert_eq!(read["comments"][2]["body"], longest.as_str());

    // Bad ids, cursors and limits: 400 with a code, never 5xx.
    for (method, path) in [
        ("GET", "/api/tasks/not-a-uuid/comments".to_string()),
        ("GET", format!("/api/tasks/{task}/comments?cursor=zzz")),
        ("GET", format!("/api/tasks/{task}/comments?limit=0")),
        ("GET", format!("/api/tasks/{task}/comments?limit=501")),
        ("PATCH", "/api/comments/not-a-uuid".to_string()),
        ("DELETE", "/api/comments/not-a-uuid".to_string()),
    ] {
        let r = call(
            &bo,
            method,
            &format!("{url3}{path}"),
            Some(&json!({ "body": "x" })).filter(|_| method == "PATCH"),
        );
        assert_eq!(r.status, 400, "{method} {path}: {r:?}");
        assert!(r.error_code().is_some(), "{r:?}");
    }

    // The board page counts each card's comments.
    let page = call(
        &ana,
        "GET",
        &format!("{url2}/api/boards/{board_id}/tasks?column={todo}"),
        None,
    )
    .ok(200);
    assert_eq!(page["tasks"][0]["comment_count"], 3, "{page}");

    // Deletion: not by another member or a viewer; by the board's admin
    // (Bo's comment) and by the author (Ana's own).
    let r = call(
        &cy,
        "DELETE",
        &format!("{url1}/api/comments/{longest_id}"),
        None,
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = call(
        &bo,
        "DELETE",
        &format!("{url3}/api/comments/{second_id}"),
        None,
    );
    assert_eq!(r.status, 403, "Bo is not Ana's comment's author: {r:?}");
    call(
        &ana,
        "DELETE",
        &format!("{url2}/api/comments/{longest_id}"),
        None,
    )
    .ok(204);
    call(
        &ana,
        "DELETE",
        &format!("{url1}/api/comments/{second_id}"),
        None,
    )
    .ok(204);
    let r = call(
        &ana,
        "DELETE",
        &format!("{url1}/api/comments/{second_id}"),
        None,
    );
    assert_eq!(r.status, 404, "deleted once: {r:?}");
    assert_eq!(
        bodies(&thread(&bo, &url3, &task).ok(200)),
        ["Ship it *tomorrow*"]
    );

    // The card's history holds every comment event, each with its actor.
    let history = call(
        &ana,
        "GET",
        &format!("{url2}/api/tasks/{task}/events"),
        None,
    )
    .ok(200);
    let comment_events: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("comment_"))
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["actor"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("comment_added", "bo"),
        ("comment_added", "ana"),
        ("comment_edited", "bo"),
        ("comment_added", "bo"),
        ("comment_deleted", "ana"),
        ("comment_deleted", "ana"),
    ]
    .iter()
    .map(|(k, a)| (k.to_string(), a.to_string()))
    .collect();
    assert_eq!(comment_events, expected, "{history:#}");

    // Eve's feed and socket: the board's events are only seqs to her.
    let feed = call(
        &eve,
        "GET",
        &format!("{url1}/api/events?since={last_seq}"),
        None,
    )
    .ok(200);
    let events = feed["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["kind"] == "hidden"), "{feed:#}");
    for _ in 0..6 {
        let frame = eve_feed.next_event();
        assert_eq!(frame["kind"], "hidden", "{frame}");
        assert!(!frame.to_string().contains("Ship it"), "{frame}");
    }
    // Ana's feed shows them in full.
    let mine = call(
        &ana,
        "GET",
        &format!("{url2}/api/events?since={last_seq}"),
        None,
    )
    .ok(200);
    let added = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "comment_added")
        .unwrap();
    assert_eq!(added["comment"]["id"], first_id.as_str(), "{added}");
    assert_eq!(added["task_id"], task.as_str());

    // The card deleted: its comments go with it.
    call(&admin, "DELETE", &format!("{url2}/api/tasks/{task}"), None).ok(204);
    let r = thread(&ana, &url3, &task);
    assert_eq!(r.status, 404, "{r:?}");
    let r = call(
        &bo,
        "PATCH",
        &format!("{url3}/api/comments/{first_id}"),
        Some(&json!({ "body": "ghost" })),
    );
    assert_eq!(r.status, 404, "{r:?}");

    // Every node: the projection is the fold of its events.
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(20));
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "rebuild --check on node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// Small enough that a few hundred writes compact the log.
const COMPACT_OFTEN: &[(&str, &str)] = &[
    ("TASKRAFT_SNAPSHOT_COUNT", "40"),
    ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "10"),
];

fn threads_of(url: &str, tasks: &[String]) -> Vec<Value> {
    tasks
        .iter()
        .map(|task| {
            let r = get(&format!(
                "{url}/api/tasks/{task}/comments?limit=500&consistency=linearizable"
            ));
            assert_eq!(r.status, 200, "{r:?}");
            r.body["comments"].clone()
        })
        .collect()
}

#[test]
fn a_node_behind_the_compacted_log_catches_up_the_comments() {
    let mut cluster = Cluster::start_with(3, COMPACT_OFTEN);
    let leader = cluster.leader(Duration::from_secs(20));
    let behind = if leader == 3 { 2 } else { 3 };
    let url = cluster.url(leader);
    cluster.wait_caught_up(behind, Duration::from_secs(20));
    let applied_before = get(&format!("{}/api/cluster", cluster.url(behind))).body["applied_index"]
        .as_u64()
        .unwrap();
    cluster.kill(behind);

    // While it is down: two cards, comments added, edited and deleted on
    // both, then one card deleted with its comments; enough to compact.
    let mut tasks = Vec::new();
    for title in ["kept", "deleted"] {
        let r = create_titled(&url, title);
        assert_eq!(r.status, 201, "{r:?}");
        tasks.push(r.body["id"].as_str().unwrap().to_string());
    }
    for i in 0..60 {
        let task = &tasks[i % 2];
        let r = send(
            "POST",
            &format!("{url}/api/tasks/{task}/comments"),
            &[],
            Some(&json!({ "body": format!("comment {i} \\ \"quoted\" 💬") })),
        );
        assert_eq!(r.status, 201, "{r:?}");
        let id = r.body["id"].as_str().unwrap().to_string();
        if i % 3 == 0 {
            let r = send(
                "PATCH",
                &format!("{url}/api/comments/{id}"),
                &[("If-Match", "\"1\"")],
                Some(&json!({ "body": format!("comment {i}, edited") })),
            );
            assert_eq!(r.status, 200, "{r:?}");
        }
        if i % 5 == 0 {
            let r = send("DELETE", &format!("{url}/api/comments/{id}"), &[], None);
            assert_eq!(r.status, 204, "{r:?}");
        }
    }
    let r = send(
        "DELETE",
        &format!("{url}/api/tasks/{}", tasks[1]),
        &[],
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while get(&format!("{url}/api/cluster")).body["first_index"]
        .as_u64()
        .unwrap_or(0)
        <= applied_before + 1
    {
        assert!(std::time::Instant::now() < deadline, "no compaction");
        std::thread::sleep(Duration::from_millis(200));
    }

    cluster.restart(behind);
    cluster.wait_caught_up(behind, Duration::from_secs(60));
    let kept = &tasks[..1];
    let expected = threads_of(&url, kept);
    assert_eq!(
        expected[0].as_array().unwrap().len(),
        24,
        "30 added, 6 deleted"
    );
    for id in 1..=3 {
        assert_eq!(
            threads_of(&cluster.url(id), kept),
            expected,
            "node {id}'s comments"
        );
        let r = get(&format!(
            "{}/api/tasks/{}/comments",
            cluster.url(id),
            tasks[1]
        ));
        assert_eq!(r.status, 404, "node {id}: the deleted card's thread: {r:?}");
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}
