//! Boards, columns and board membership on three real nodes with accounts
//! on: the lifecycle of a board and its columns through every node, who
//! sees what (a non-member gets 404, not 403, for a board's cards, events
//! and socket frames), WIP limits reported but not enforced, cards moved
//! between boards under `If-Match`, archive and restore, a column emptied
//! into another before it goes; and every node's catalog the same.

mod common;

use std::time::Duration;

use common::accounts::*;
use common::*;
use serde_json::{json, Value};

/// The `key` column of a board answer.
fn column<'a>(board: &'a Value, key: &str) -> &'a Value {
    board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("no column {key} in {board:#}"))
}

fn page(who: &Who, url: &str, board: &str, query: &str) -> Response {
    call(
        who,
        "GET",
        &format!("{url}/api/boards/{board}/tasks?{query}"),
        None,
    )
}

fn ids(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn boards_columns_members_and_cards_through_every_node() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    create_user(&url1, &admin, "ana", "member");
    create_user(&url1, &admin, "bo", "member");
    create_user(&url1, &admin, "vic", "member");
    let ana = login(&url2, "ana", "ana-password").unwrap();
    let bo = login(&url3, "bo", "bo-password").unwrap();
    let vic = login(&url1, "vic", "vic-password").unwrap();

    // The default board is everyone's, with the three status columns.
    let boards = call(&ana, "GET", &format!("{url2}/api/boards"), None).ok(200);
    let default = &boards["boards"][0];
    assert_eq!(default["default"], true, "{boards:#}");
    assert_eq!(default["role"], "member");
    let keys: Vec<&str> = default["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["todo", "in_progress", "done"]);

    // Ana makes a board (she is its admin), with a name full of quotes.
    let name = "Launch \"Q3\" \\ 🚀";
    let board = call(
        &ana,
        "POST",
        &format!("{url2}/api/boards"),
        Some(&json!({ "name": name })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    assert_eq!(board["name"], name);
    assert_eq!(board["role"], "admin");
    let todo = column(&board, "todo")["id"].as_str().unwrap().to_string();
    let done = column(&board, "done")["id"].as_str().unwrap().to_string();

    // Bo is not on it: 404 everywhere, as if it did not exist.
    for path in [
        format!("/api/boards/{board_id}"),
        format!("/api/boards/{board_id}/tasks?column={todo}"),
    ] {
        let r = call(&bo, "GET", &format!("{url3}{path}"), None);
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    let mine = call(&bo, "GET", &format!("{url3}/api/boards"), None).ok(200);
    assert_eq!(mine["boards"].as_array().unwrap().len(), 1, "{mine:#}");
    let r = call(
        &bo,
        "POST",
        &format!("{url3}/api/boards/{board_id}/columns"),
        Some(&json!({ "name": "Sneaky" })),
    );
    assert_eq!(r.status, 404, "{r:?}");

    // A column with a WIP limit, added through node 1 by ana.
    let review = call(
        &ana,
        "POST",
        &format!("{url1}/api/boards/{board_id}/columns"),
        Some(&json!({ "name": "Review", "wip_limit": 1, "color": "#AA3300" })),
    )
    .ok(201);
    let review_id = review["id"].as_str().unwrap().to_string();
    assert_eq!(review["key"], "review");
    assert_eq!(review["color"], "#aa3300");
    // It went to the end; move it between todo and done.
    let moved = call(
        &ana,
        "PATCH",
        &format!("{url3}/api/columns/{review_id}"),
        Some(&json!({ "position": 2500.0 })),
    )
    .ok(200);
    assert_eq!(moved["position"], 2500.0);
    let board_now = call(&ana, "GET", &format!("{url2}/api/boards/{board_id}"), None).ok(200);
    let order: Vec<&str> = board_now["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["todo", "in_progress", "review", "done"]);

    // Cards in the review column: the second goes over the limit, is
    // accepted, and the breach is reported.
    let card = |title: &str| {
        call(
            &ana,
            "POST",
            &format!("{url1}/api/tasks"),
            Some(&json!({ "title": title, "column_id": review_id })),
        )
    };
    let first = card("first").ok(201);
    assert_eq!(first["board_id"], board_id.as_str());
    assert_eq!(first["column_id"], review_id.as_str());
    assert_eq!(first["status"], "in_progress", "the column's category");
    assert!(first.get("wip_breach").is_none(), "{first:#}");
    let second = card("second").ok(201);
    assert_eq!(
        second["wip_breach"],
        json!({ "column_id": review_id, "cards": 2, "limit": 1 })
    );
    let p = page(&ana, &url3, &board_id, &format!("column={review_id}")).ok(200);
    assert_eq!(p["total"], 2);
    assert_eq!(
        ids(&p),
        [
            first["id"].as_str().unwrap(),
            second["id"].as_str().unwrap()
        ]
    );
    // Paged: one at a time, with a cursor.
    let p1 = page(
        &ana,
        &url3,
        &board_id,
        &format!("column={review_id}&limit=1"),
    )
    .ok(200);
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let p2 = page(
        &ana,
        &url3,
        &board_id,
        &format!("column={review_id}&limit=1&cursor={cursor}"),
    )
    .ok(200);
    assert_eq!(ids(&p2), [second["id"].as_str().unwrap()]);
    assert!(p2["next_cursor"].is_null());

    // The default board's list does not show another board's cards, and
    // bo cannot read or change them.
    let first_id = first["id"].as_str().unwrap().to_string();
    let listed = all_tasks_as(&ana, &url2);
    assert!(
        !listed.contains(&first_id),
        "GET /api/tasks is the default board's"
    );
    let r = call(&bo, "GET", &format!("{url3}/api/tasks/{first_id}"), None);
    assert_eq!(r.status, 404, "{r:?}");
    let r = call(
        &bo,
        "PATCH",
        &format!("{url3}/api/tasks/{first_id}"),
        Some(&json!({ "title": "mine now" })),
    );
    assert_eq!(r.status, 404, "{r:?}");
    let r = call(
        &bo,
        "GET",
        &format!("{url3}/api/tasks/{first_id}/events"),
        None,
    );
    assert_eq!(r.status, 404, "{r:?}");

    // Bo's socket on node 3 gets the seq of ana's board's events, never
    // their content; once he is a viewer, he gets them.
    let last_seq = call(
        &bo,
        "GET",
        &format!("{url3}/api/events?since=0&limit=1"),
        None,
    )
    .body["last_seq"]
        .as_u64()
        .unwrap();
    let mut feed = Feed::connect_as(&url3, &format!("?since={last_seq}"), &bo.headers()).unwrap();
    feed.set_timeout(Duration::from_secs(10));
    let hello = feed.expect();
    assert_eq!(hello["type"], "hello", "{hello}");
    call(
        &ana,
        "PATCH",
        &format!("{url1}/api/tasks/{first_id}"),
        Some(&json!({ "title": "secret plan" })),
    )
    .ok(200);
    let frame = feed.next_event();
    assert_eq!(frame["kind"], "hidden", "{frame}");
    assert!(!frame.to_string().contains("secret"), "{frame}");
    let bo_id = bo.user_id.clone().unwrap();
    call(
        &ana,
        "PUT",
        &format!("{url2}/api/boards/{board_id}/members/{bo_id}"),
        Some(&json!({ "role": "viewer" })),
    )
    .ok(200);
    let frame = feed.next_event();
    assert_eq!(frame["kind"], "board_member_changed", "{frame}");
    assert_eq!(frame["board_member"]["role"], "viewer");
    // A viewer reads, and cannot change.
    let r = call(&bo, "GET", &format!("{url3}/api/tasks/{first_id}"), None);
    assert_eq!(r.status, 200, "{r:?}");
    let r = call(
        &bo,
        "PATCH",
        &format!("{url3}/api/tasks/{first_id}"),
        Some(&json!({ "title": "mine now" })),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = call(
        &bo,
        "POST",
        &format!("{url3}/api/boards/{board_id}/columns"),
        Some(&json!({ "name": "Sneaky" })),
    );
    assert_eq!(r.status, 403, "{r:?}");

    // A move to the default board under If-Match: a stale version is 412,
    // the current one moves it to the column with the same key, else the
    // first (review has no twin there: to do).
    let current = call(&ana, "GET", &format!("{url1}/api/tasks/{first_id}"), None);
    let version = current.body["version"].as_u64().unwrap();
    let to_default = json!({ "board_id": "00000000-0000-0000-0000-000000000001" });
    let patch_at = |v: u64| {
        with_header(&ana, "If-Match", format!("\"{v}\""), |h| {
            send(
                "PATCH",
                &format!("{url2}/api/tasks/{first_id}"),
                h,
                Some(&to_default),
            )
        })
    };
    let stale = patch_at(version - 1);
    assert_eq!(stale.status, 412, "{stale:?}");
    let moved = patch_at(version);
    assert_eq!(moved.status, 200, "{moved:?}");
    assert!(
        moved.body.get("board_id").is_none(),
        "the default board: {moved:?}"
    );
    assert_eq!(moved.body["status"], "in_progress");
    assert!(all_tasks_as(&bo, &url3).contains(&first_id));

    // Archive and restore: the card leaves its column and comes back.
    let second_id = second["id"].as_str().unwrap().to_string();
    call(
        &ana,
        "PATCH",
        &format!("{url3}/api/tasks/{second_id}"),
        Some(&json!({ "archived": true })),
    )
    .ok(200);
    let live = page(&ana, &url1, &board_id, &format!("column={review_id}")).ok(200);
    assert_eq!(live["total"], 0, "{live:#}");
    let archived = page(&ana, &url1, &board_id, "archived=true").ok(200);
    assert_eq!(ids(&archived), [second_id.as_str()]);
    assert_eq!(archived["total"], 1);

    // A column holding cards (archived too) is not deleted without
    // move_to; with it, its cards move first, each its own command (a
    // regression: under the request's Idempotency-Key they all got the
    // first move's answer, and the column stayed).
    let third = card("third").ok(201);
    let third_id = third["id"].as_str().unwrap().to_string();
    let r = call(
        &ana,
        "DELETE",
        &format!("{url2}/api/columns/{review_id}"),
        None,
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.error_code(), Some("column_not_empty"));
    let delete = || {
        with_header(&ana, "Idempotency-Key", "delete-review".into(), |h| {
            send(
                "DELETE",
                &format!("{url2}/api/columns/{review_id}?move_to={done}"),
                h,
                None,
            )
        })
    };
    let r = delete();
    assert_eq!(r.status, 204, "{r:?}");
    let r = delete();
    assert_eq!(r.status, 204, "a retry gets the first answer: {r:?}");
    let board_now = call(&ana, "GET", &format!("{url2}/api/boards/{board_id}"), None).ok(200);
    assert!(
        !board_now.to_string().contains(&review_id),
        "the column is gone: {board_now:#}"
    );
    call(
        &ana,
        "PATCH",
        &format!("{url3}/api/tasks/{second_id}"),
        Some(&json!({ "archived": false })),
    )
    .ok(200);
    let done_page = page(&ana, &url1, &board_id, &format!("column={done}")).ok(200);
    assert_eq!(ids(&done_page), [third_id.as_str(), second_id.as_str()]);
    assert_eq!(done_page["tasks"][0]["status"], "done");
    let r = page(&ana, &url1, &board_id, &format!("column={review_id}"));
    assert_eq!(r.status, 404, "the column is gone: {r:?}");

    // Archive the board: gone from lists, back with ?archived=true; no
    // new card lands on it.
    call(
        &ana,
        "PATCH",
        &format!("{url1}/api/boards/{board_id}"),
        Some(&json!({ "archived": true })),
    )
    .ok(200);
    let listed = call(&ana, "GET", &format!("{url1}/api/boards"), None).ok(200);
    assert!(!listed.to_string().contains(&board_id));
    let listed = call(
        &ana,
        "GET",
        &format!("{url1}/api/boards?archived=true"),
        None,
    )
    .ok(200);
    assert!(listed.to_string().contains(&board_id));
    let r = call(
        &ana,
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&json!({ "title": "late", "board_id": board_id })),
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.error_code(), Some("board_archived"));

    // Vic, never on the board, is refused as if it did not exist; the
    // default board cannot be archived.
    let r = call(&vic, "GET", &format!("{url1}/api/boards/{board_id}"), None);
    assert_eq!(r.status, 404, "{r:?}");
    let r = call(
        &admin,
        "PATCH",
        &format!("{url1}/api/boards/00000000-0000-0000-0000-000000000001"),
        Some(&json!({ "archived": true })),
    );
    assert_eq!(r.status, 409, "{r:?}");

    // Every node holds the same catalog and the same board pages, and a
    // rebuild of the projection from the events agrees with it.
    let views: Vec<Value> = [&url1, &url2, &url3]
        .iter()
        .map(|u| call(&admin, "GET", &format!("{u}/api/boards/{board_id}"), None).ok(200))
        .collect();
    assert!(views.iter().all(|v| *v == views[0]), "{views:#?}");

    // Bo taken off the board: his socket gets that event (his own
    // membership), so his page learns the board is no longer his; then
    // the board's events are hidden from him again.
    call(
        &ana,
        "DELETE",
        &format!("{url2}/api/boards/{board_id}/members/{bo_id}"),
        None,
    )
    .ok(204);
    let removed = loop {
        let frame = feed.next_event();
        if frame["kind"] == "board_member_changed" && frame["board_member"]["role"].is_null() {
            break frame;
        }
    };
    assert_eq!(
        removed["board_member"]["user_id"],
        bo_id.as_str(),
        "{removed}"
    );
    // So does his page's catch-up through GET /api/events.
    let seq = removed["seq"].as_u64().unwrap();
    let caught_up = call(
        &bo,
        "GET",
        &format!("{url3}/api/events?since={}&limit=1", seq - 1),
        None,
    )
    .ok(200);
    assert_eq!(
        caught_up["events"][0]["kind"], "board_member_changed",
        "{caught_up}"
    );
    let r = call(&bo, "GET", &format!("{url3}/api/boards/{board_id}"), None);
    assert_eq!(r.status, 404, "{r:?}");
    drop(feed);
    for id in 1..=3 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "rebuild --check on node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// `who`'s credentials and one more header, for `send`.
fn with_header(
    who: &Who,
    name: &'static str,
    value: String,
    f: impl FnOnce(&[(&str, &str)]) -> Response,
) -> Response {
    let mut headers = who.headers();
    headers.push((name, value));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f(&headers)
}

/// Every task GET /api/tasks lists for `who`.
fn all_tasks_as(who: &Who, url: &str) -> Vec<String> {
    let r = call(who, "GET", &format!("{url}/api/tasks?limit=1000"), None);
    assert_eq!(r.status, 200, "{r:?}");
    ids(&r.body)
}

/// Small enough that a few hundred writes compact the log.
const COMPACT_OFTEN: &[(&str, &str)] = &[
    ("TASKRAFT_SNAPSHOT_COUNT", "40"),
    ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "10"),
];

/// Every board with its columns and their counts, as node `url` answers.
fn boards_of(url: &str) -> Value {
    get(&format!(
        "{url}/api/boards?archived=true&consistency=linearizable"
    ))
    .body
}

#[test]
fn a_node_behind_the_compacted_log_catches_up_boards_columns_and_their_cards() {
    let mut cluster = Cluster::start_with(3, COMPACT_OFTEN);
    let leader = cluster.leader(Duration::from_secs(20));
    let behind = if leader == 3 { 2 } else { 3 };
    let url = cluster.url(leader);
    cluster.wait_caught_up(behind, Duration::from_secs(20));
    let applied_before = get(&format!("{}/api/cluster", cluster.url(behind))).body["applied_index"]
        .as_u64()
        .unwrap();
    cluster.kill(behind);

    // While it is down: a board, columns added, renamed, reordered and
    // one deleted, cards in them, moved, archived; enough to compact.
    let board = send(
        "POST",
        &format!("{url}/api/boards"),
        &[],
        Some(&json!({ "name": "Ops" })),
    );
    assert_eq!(board.status, 201, "{board:?}");
    let board_id = board.body["id"].as_str().unwrap().to_string();
    let add = |name: &str, wip: u32| {
        let r = send(
            "POST",
            &format!("{url}/api/boards/{board_id}/columns"),
            &[],
            Some(&json!({ "name": name, "wip_limit": wip })),
        );
        assert_eq!(r.status, 201, "{r:?}");
        r.body["id"].as_str().unwrap().to_string()
    };
    let triage = add("Triage", 5);
    let blocked = add("Blocked", 2);
    let gone = add("Gone soon", 1);
    let r = send(
        "PATCH",
        &format!("{url}/api/columns/{blocked}"),
        &[],
        Some(&json!({ "name": "Blocked ⛔", "position": 10.0, "color": "#ff0000" })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = send("DELETE", &format!("{url}/api/columns/{gone}"), &[], None);
    assert_eq!(r.status, 204, "{r:?}");
    for i in 0..60 {
        let column = if i % 2 == 0 { &triage } else { &blocked };
        let r = send(
            "POST",
            &format!("{url}/api/tasks"),
            &[],
            Some(&json!({ "title": format!("card {i}"), "column_id": column })),
        );
        assert_eq!(r.status, 201, "{r:?}");
        let id = r.body["id"].as_str().unwrap().to_string();
        if i % 3 == 0 {
            let r = send(
                "PATCH",
                &format!("{url}/api/tasks/{id}"),
                &[],
                Some(&json!({ "archived": true })),
            );
            assert_eq!(r.status, 200, "{r:?}");
        }
        if i % 7 == 0 {
            let r = send(
                "PATCH",
                &format!("{url}/api/tasks/{id}"),
                &[],
                Some(&json!({ "status": "done" })),
            );
            assert_eq!(r.status, 200, "{r:?}");
        }
    }
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
    let expected = boards_of(&url);
    for id in 1..=3 {
        assert_eq!(boards_of(&cluster.url(id)), expected, "node {id}'s boards");
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    let triage_cards = expected["boards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == board_id.as_str())
        .and_then(|b| b["columns"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["id"] == triage.as_str()))
        .map(|c| c["cards"].clone())
        .unwrap();
    assert!(triage_cards.as_u64().unwrap() > 0, "{expected:#}");

    // The caught-up node takes a card at the end of a column as every
    // other node would place it.
    let r = send(
        "POST",
        &format!("{}/api/tasks", cluster.url(behind)),
        &[],
        Some(&json!({ "title": "after", "column_id": triage })),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let page = |u: &str| {
        get(&format!(
            "{u}/api/boards/{board_id}/tasks?column={triage}&limit=500"
        ))
        .body
    };
    let leader_page = page(&url);
    let last = leader_page["tasks"].as_array().unwrap().last().unwrap();
    assert_eq!(last["title"], "after", "at the end: {leader_page:#}");
    for id in 1..=3 {
        assert_eq!(
            page(&cluster.url(id))["tasks"],
            leader_page["tasks"],
            "node {id}"
        );
    }
}

/// Three days, in milliseconds.
const THREE_DAYS_MS: &str = "-259200000";

#[test]
fn a_column_archives_cards_left_unchanged_for_its_days_through_the_log() {
    // The node's clock is three days behind while the cards are made (a
    // test build's offset), then right: the cards are three days old.
    let failpoints = failpoints_binary();
    let mut cluster = Cluster::start_after(
        1,
        &[("TASKRAFT_AUTO_ARCHIVE_INTERVAL", "1s")],
        &[],
        |cluster| {
            cluster.set_binary(1, &failpoints);
            cluster.set_env(1, "TASKRAFT_TEST_CLOCK_OFFSET_MS", THREE_DAYS_MS);
        },
    );
    let url = cluster.url(1);
    let board = send(
        "POST",
        &format!("{url}/api/boards"),
        &[],
        Some(&json!({ "name": "Ops" })),
    );
    assert_eq!(board.status, 201, "{board:?}");
    let board_id = board.body["id"].as_str().unwrap().to_string();
    let done = column(&board.body, "done")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doing = column(&board.body, "in_progress")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let make = |column: &str, title: &str| -> Value {
        let r = create(&url, json!({ "title": title, "column_id": column }));
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    };
    let old_done: Vec<Value> = (0..3)
        .map(|i| make(&done, &format!("old done {i}")))
        .collect();
    let old_doing: Vec<Value> = (0..2)
        .map(|i| make(&doing, &format!("old doing {i}")))
        .collect();

    cluster.terminate(1, Duration::from_secs(20));
    cluster.set_env(1, "TASKRAFT_TEST_CLOCK_OFFSET_MS", "0");
    cluster.spawn(1);
    cluster.wait_ready(1, Duration::from_secs(60));
    let fresh = make(&done, "fresh done");

    // Days out of range are a 400 naming the field.
    for bad in [json!(0), json!(3651), json!("x"), json!(-1)] {
        let r = send(
            "PATCH",
            &format!("{url}/api/columns/{done}"),
            &[],
            Some(&json!({ "archive_after_days": bad })),
        );
        assert_eq!(r.status, 400, "{bad}: {r:?}");
    }
    // Done archives after 2 days (the old cards are due), In progress
    // after 4 (none is).
    for (column, days) in [(&done, 2), (&doing, 4)] {
        let r = send(
            "PATCH",
            &format!("{url}/api/columns/{column}"),
            &[],
            Some(&json!({ "archive_after_days": days })),
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["archive_after_days"], days);
    }
    let archived = || {
        let r = get(&format!(
            "{url}/api/boards/{board_id}/tasks?column={done}&archived=true&consistency=linearizable"
        ));
        assert_eq!(r.status, 200, "{r:?}");
        let mut got = ids(&r.body);
        got.sort();
        got
    };
    let mut want: Vec<String> = old_done
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    within(
        "the old cards of Done are archived",
        Duration::from_secs(30),
        || archived() == want,
    );
    let live = ids(&get(&format!("{url}/api/boards/{board_id}/tasks?column={done}")).body);
    assert_eq!(
        live,
        [fresh["id"].as_str().unwrap()],
        "the fresh card stays"
    );
    let doing_live = ids(&get(&format!("{url}/api/boards/{board_id}/tasks?column={doing}")).body);
    assert_eq!(doing_live.len(), old_doing.len(), "not yet 4 days old");

    // Each archive is an event of the log, by auto-archive, conditional on
    // the version read: the card's history says so.
    let id = want[0].as_str();
    let history = get(&format!("{url}/api/tasks/{id}/events"));
    assert_eq!(history.status, 200, "{history:?}");
    let last = history.body["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"]["name"], "auto-archive", "{last:#}");
    assert_eq!(last["changes"]["archived"]["to"], true, "{last:#}");

    // Restored, a card is changed now: not due again.
    let r = send(
        "PATCH",
        &format!("{url}/api/tasks/{id}"),
        &[],
        Some(&json!({ "archived": false })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(archived().len(), 2, "the restored card stays on the board");

    // Auto-archive off: null clears it.
    let r = send(
        "PATCH",
        &format!("{url}/api/columns/{done}"),
        &[],
        Some(&json!({ "archive_after_days": null })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["archive_after_days"], Value::Null);
    let check = cluster.rebuild_check(1);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// Cards per column: `column → (live, archived)`.
type Cards = std::collections::BTreeMap<String, (u64, u64)>;

/// `(counts_index, applied_index)` of node `mysql`'s database, and its
/// stored cards per column against the cards its `tasks` hold.
fn stored_and_counted(mysql: &str) -> ((Option<u64>, u64), Cards, Cards) {
    use mysql_async::prelude::Queryable;
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(mysql).await.unwrap();
        let at: (Option<u64>, u64) = conn
            .query_first("SELECT counts_index, applied_index FROM raft_applied WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        let stored: Vec<(String, u64, u64)> = conn
            .query("SELECT column_id, live, archived FROM column_counts WHERE live + archived > 0")
            .await
            .unwrap();
        let counted: Vec<(String, u64, u64)> = conn
            .query(
                "SELECT column_id, SUM(archived = 0), SUM(archived = 1) FROM tasks GROUP BY column_id",
            )
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        let cards = |rows: Vec<(String, u64, u64)>| -> Cards {
            rows.into_iter().map(|(c, l, a)| (c, (l, a))).collect()
        };
        (at, cards(stored), cards(counted))
    })
}

fn sql(mysql: &str, statement: &str) {
    use mysql_async::prelude::Queryable;
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(mysql).await.unwrap();
        conn.query_drop(statement).await.unwrap();
        conn.disconnect().await.unwrap();
    })
}

/// The cards `url` says column `column` of board `board` holds.
fn cards_in(url: &str, board: &str, column: &str) -> u64 {
    let boards = boards_of(url);
    boards["boards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == board)
        .and_then(|b| b["columns"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["id"] == column))
        .and_then(|c| c["cards"].as_u64())
        .unwrap_or_else(|| panic!("no column {column} on board {board}: {boards:#}"))
}

#[test]
fn the_cards_per_column_are_stored_and_a_start_trusts_them_only_at_their_index() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(20));
    let url = cluster.url(leader);
    let node = if leader == 3 { 2 } else { 3 };
    let mysql = cluster.mysql_url(node);

    // Cards made, moved, archived and deleted on a board of two columns.
    let board = send(
        "POST",
        &format!("{url}/api/boards"),
        &[],
        Some(&json!({ "name": "Counted" })),
    );
    assert_eq!(board.status, 201, "{board:?}");
    let board_id = board.body["id"].as_str().unwrap().to_string();
    let todo = column(&board.body, "todo")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = column(&board.body, "done")["id"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..12 {
        let r = send(
            "POST",
            &format!("{url}/api/tasks"),
            &[],
            Some(&json!({ "title": format!("card {i}"), "column_id": todo })),
        );
        assert_eq!(r.status, 201, "{r:?}");
        let id = r.body["id"].as_str().unwrap().to_string();
        let change = match i % 4 {
            0 => Some(json!({ "column_id": done })),
            1 => Some(json!({ "archived": true })),
            _ => None,
        };
        if let Some(change) = change {
            let r = send(
                "PATCH",
                &format!("{url}/api/tasks/{id}"),
                &[],
                Some(&change),
            );
            assert_eq!(r.status, 200, "{r:?}");
        }
        if i == 11 {
            let r = send("DELETE", &format!("{url}/api/tasks/{id}"), &[], None);
            assert_eq!(r.status, 204, "{r:?}");
        }
    }
    // todo: 12 made, 3 moved to done, 3 archived, 1 deleted.
    cluster.wait_caught_up(node, Duration::from_secs(20));
    let ((counts_index, applied), stored, counted) = stored_and_counted(&mysql);
    assert_eq!(counts_index, Some(applied), "stored with every batch");
    assert_eq!(stored, counted, "as the tasks count them");
    assert_eq!(counted.get(&todo), Some(&(5, 3)), "{counted:?}");
    assert_eq!(counted.get(&done), Some(&(3, 0)), "{counted:?}");

    // A start at the stored index takes the stored counts as they are:
    // made wrong while the node is down, they show, and the check says so.
    cluster.kill(node);
    sql(
        &mysql,
        &format!("UPDATE column_counts SET live = live + 1000 WHERE column_id = '{todo}'"),
    );
    cluster.restart(node);
    let write_elsewhere = |title: &str| {
        let r = send(
            "POST",
            &format!("{url}/api/tasks"),
            &[],
            Some(&json!({ "title": title, "column_id": done })),
        );
        assert_eq!(r.status, 201, "{r:?}");
    };
    // A write makes the restarted node read its state (its first batch).
    write_elsewhere("after the first restart");
    cluster.wait_caught_up(node, Duration::from_secs(20));
    assert_eq!(cards_in(&cluster.url(node), &board_id, &todo), 1005);
    let check = cluster.rebuild_check(node);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{report}");
    assert!(report.contains("cards per column"), "{report}");

    // Anything else that writes cards clears the index (here by hand):
    // the next start counts them and stores what it counted.
    cluster.kill(node);
    sql(&mysql, "UPDATE raft_applied SET counts_index = NULL");
    cluster.restart(node);
    write_elsewhere("after the second restart");
    cluster.wait_caught_up(node, Duration::from_secs(20));
    assert_eq!(cards_in(&cluster.url(node), &board_id, &todo), 5);
    assert_eq!(cards_in(&cluster.url(node), &board_id, &done), 5);
    let ((counts_index, applied), stored, counted) = stored_and_counted(&mysql);
    assert_eq!(counts_index, Some(applied));
    assert_eq!(stored, counted);
    for id in 1..=3 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// Only a board's admins delete its cards (its members archive them; on
/// the default board that is site admins, as before boards), a move into
/// a full column is accepted and reports the breach, and an archived board
/// restored takes cards again.
#[test]
fn board_admins_delete_cards_moves_report_wip_breaches_and_a_board_is_restored() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    for name in ["ana", "bo", "vic", "nia"] {
        create_user(&url1, &admin, name, "member");
    }
    let ana = login(&url1, "ana", "ana-password").unwrap();
    let bo = login(&url2, "bo", "bo-password").unwrap();
    let vic = login(&url3, "vic", "vic-password").unwrap();
    let nia = login(&url1, "nia", "nia-password").unwrap();

    // Ana's board: bo a member of it, vic a viewer, nia not on it.
    let board = call(
        &ana,
        "POST",
        &format!("{url1}/api/boards"),
        Some(&json!({ "name": "Ops" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let todo = column(&board, "todo")["id"].as_str().unwrap().to_string();
    let done = column(&board, "done")["id"].as_str().unwrap().to_string();
    for (who, role) in [(&bo, "member"), (&vic, "viewer")] {
        let user = who.user_id.clone().unwrap();
        call(
            &ana,
            "PUT",
            &format!("{url2}/api/boards/{board_id}/members/{user}"),
            Some(&json!({ "role": role })),
        )
        .ok(200);
    }
    call(
        &ana,
        "PATCH",
        &format!("{url3}/api/columns/{done}"),
        Some(&json!({ "wip_limit": 1 })),
    )
    .ok(200);
    let card = |column: &str, title: &str| {
        call(
            &ana,
            "POST",
            &format!("{url1}/api/tasks"),
            Some(&json!({ "title": title, "column_id": column })),
        )
        .ok(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (first, second, shipped) = (card(&todo, "a"), card(&todo, "b"), card(&done, "c"));

    // A member's move into the full column: accepted, the breach reported.
    let moved = call(
        &bo,
        "PATCH",
        &format!("{url3}/api/tasks/{first}"),
        Some(&json!({ "column_id": done })),
    )
    .ok(200);
    assert_eq!(moved["column_id"], done.as_str());
    assert_eq!(
        moved["wip_breach"],
        json!({ "column_id": done, "cards": 2, "limit": 1 })
    );
    let p = page(&ana, &url2, &board_id, &format!("column={done}")).ok(200);
    assert_eq!(p["total"], 2, "{p:#}");

    // Delete: a member and a viewer of the board 403, someone not on it
    // 404; its admin (a site member) and a site admin delete.
    for (who, url, status) in [(&bo, &url2, 403), (&vic, &url3, 403), (&nia, &url1, 404)] {
        let r = call(who, "DELETE", &format!("{url}/api/tasks/{first}"), None);
        assert_eq!(r.status, status, "{r:?}");
    }
    let r = call(&ana, "DELETE", &format!("{url3}/api/tasks/{first}"), None);
    assert_eq!(r.status, 204, "{r:?}");
    let r = call(
        &admin,
        "DELETE",
        &format!("{url2}/api/tasks/{second}"),
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let p = page(&bo, &url1, &board_id, &format!("column={done}")).ok(200);
    assert_eq!(ids(&p), [shipped.as_str()]);
    let r = call(&bo, "GET", &format!("{url1}/api/tasks/{first}"), None);
    assert_eq!(r.status, 404, "deleted: {r:?}");

    // On the default board a site member is a member: they archive, a
    // site admin deletes.
    let mine = call(
        &bo,
        "POST",
        &format!("{url2}/api/tasks"),
        Some(&json!({ "title": "on the default board" })),
    )
    .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(&bo, "DELETE", &format!("{url3}/api/tasks/{mine}"), None);
    assert_eq!(r.status, 403, "{r:?}");
    let r = call(&admin, "DELETE", &format!("{url1}/api/tasks/{mine}"), None);
    assert_eq!(r.status, 204, "{r:?}");

    // Archived, the board takes no card; restored, it is listed again and
    // takes them, through every node.
    let set_archived = |archived: bool| {
        call(
            &ana,
            "PATCH",
            &format!("{url2}/api/boards/{board_id}"),
            Some(&json!({ "archived": archived })),
        )
        .ok(200)
    };
    set_archived(true);
    let r = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks"),
        Some(&json!({ "title": "late", "column_id": todo })),
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.error_code(), Some("board_archived"));
    let restored = set_archived(false);
    assert_eq!(restored["archived"], false, "{restored:#}");
    for url in [&url1, &url2, &url3] {
        let listed = call(&bo, "GET", &format!("{url}/api/boards"), None).ok(200);
        assert!(listed.to_string().contains(&board_id), "{url}: {listed:#}");
        let one = call(&bo, "GET", &format!("{url}/api/boards/{board_id}"), None).ok(200);
        assert_eq!(one["archived"], false, "{url}: {one:#}");
    }
    let back = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks"),
        Some(&json!({ "title": "back", "column_id": todo })),
    )
    .ok(201);
    assert_eq!(back["board_id"], board_id.as_str());
    for id in 1..=3 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "rebuild --check on node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// A column's version as `If-Match` and its ETag spell it.
fn tag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The column `id` as node `url` shows it on its board, after a
/// linearizable read.
fn column_on(url: &str, board: &str, id: &str) -> Option<Value> {
    let board = get(&format!(
        "{url}/api/boards/{board}?consistency=linearizable"
    ))
    .ok(200);
    board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
}

#[test]
fn a_column_changed_under_a_stale_if_match_is_refused_through_any_node() {
    let mut cluster = Cluster::start(3);
    cluster.leader(Duration::from_secs(20));
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));

    // A column made through node 1 is at version 1, and its ETag says so.
    let board = send(
        "POST",
        &format!("{url1}/api/boards"),
        &[],
        Some(&json!({ "name": "Versions" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let made = send(
        "POST",
        &format!("{url1}/api/boards/{board_id}/columns"),
        &[],
        Some(&json!({ "name": "Review" })),
    );
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(made.body["version"], 1, "{made:?}");
    assert_eq!(made.header("ETag"), Some(tag(1).as_str()));
    let id = made.body["id"].as_str().unwrap().to_string();
    let column_url = |url: &str| format!("{url}/api/columns/{id}");
    let change = |url: &str, version: u64, body: Value| {
        send(
            "PATCH",
            &column_url(url),
            &[("If-Match", &tag(version))],
            Some(&body),
        )
    };

    // Renamed through node 2 under its version: one more.
    let renamed = change(&url2, 1, json!({ "name": "Code review" }));
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.body["version"], 2);
    assert_eq!(renamed.header("ETag"), Some(tag(2).as_str()));

    // The stale version again, through node 3: 412 with the column as it
    // is, and nothing changed.
    let stale = change(&url3, 1, json!({ "wip_limit": 3 }));
    assert_eq!(stale.status, 412, "{stale:?}");
    assert_eq!(stale.error_code(), Some("version_mismatch"));
    assert_eq!(stale.body["error"]["expected_version"], 1);
    assert_eq!(stale.body["error"]["current_version"], 2);
    assert_eq!(stale.body["error"]["current_column"]["name"], "Code review");
    assert_eq!(stale.header("ETag"), Some(tag(2).as_str()));
    let now = column_on(&url1, &board_id, &id).expect("the column");
    assert_eq!(
        (&now["name"], &now["wip_limit"], &now["version"]),
        (&json!("Code review"), &Value::Null, &json!(2)),
        "{now:#}"
    );

    // A delete under the stale version, through node 1: 412, the column
    // stays.
    let r = send("DELETE", &column_url(&url1), &[("If-Match", &tag(1))], None);
    assert_eq!(r.status, 412, "{r:?}");
    assert_eq!(r.error_code(), Some("version_mismatch"));
    assert!(column_on(&url3, &board_id, &id).is_some());

    // Two changes under the same version at once, through two nodes: the
    // log lets exactly one through.
    let racers: Vec<_> = [(url2.clone(), "Left"), (url3.clone(), "Right")]
        .into_iter()
        .map(|(url, name)| {
            let target = column_url(&url);
            std::thread::spawn(move || {
                let r = send(
                    "PATCH",
                    &target,
                    &[("If-Match", &tag(2))],
                    Some(&json!({ "name": name })),
                );
                (r.status, name)
            })
        })
        .collect();
    let mut results: Vec<(u16, &str)> = racers.into_iter().map(|h| h.join().unwrap()).collect();
    results.sort();
    assert_eq!(
        results.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [200, 412],
        "{results:?}"
    );
    let now = column_on(&url1, &board_id, &id).expect("the column");
    assert_eq!(now["name"], results[0].1, "the winner's change holds");
    assert_eq!(now["version"], 3);

    // Without If-Match the change goes through as before; a delete under
    // the current version goes.
    let r = send(
        "PATCH",
        &column_url(&url3),
        &[],
        Some(&json!({ "color": "#112233" })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["version"], 4);
    let r = send("DELETE", &column_url(&url2), &[("If-Match", &tag(4))], None);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(column_on(&url1, &board_id, &id).is_none());

    // Every node holds the same columns and versions, and they are the
    // fold of the events.
    let views: Vec<Value> = [&url1, &url2, &url3]
        .iter()
        .map(|u| {
            get(&format!(
                "{u}/api/boards/{board_id}?consistency=linearizable"
            ))
            .ok(200)
        })
        .collect();
    assert!(views.iter().all(|v| *v == views[0]), "{views:#?}");
    for node in 1..=3 {
        let check = cluster.rebuild_check(node);
        assert!(
            check.status.success(),
            "rebuild --check on node {node}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn columns_stored_before_versions_get_theirs_from_their_events_at_migration() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(20));
    let url = cluster.url(leader);
    let node = if leader == 3 { 2 } else { 3 };
    let mysql = cluster.mysql_url(node);
    let write = |method: &str, path: &str, body: Value| {
        let r = send(method, &format!("{url}{path}"), &[], Some(&body));
        assert!(r.status == 200 || r.status == 201, "{r:?}");
        r.body
    };

    // A board's new column changed twice; a default column once.
    let board = write("POST", "/api/boards", json!({ "name": "Old" }));
    let board_id = board["id"].as_str().unwrap().to_string();
    let made = write(
        "POST",
        &format!("/api/boards/{board_id}/columns"),
        json!({ "name": "Review" }),
    );
    let review = made["id"].as_str().unwrap().to_string();
    write(
        "PATCH",
        &format!("/api/columns/{review}"),
        json!({ "wip_limit": 2 }),
    );
    write(
        "PATCH",
        &format!("/api/columns/{review}"),
        json!({ "name": "Code review" }),
    );
    let todo = "00000000-0000-0000-0000-000000000010";
    write(
        "PATCH",
        &format!("/api/columns/{todo}"),
        json!({ "name": "Backlog" }),
    );
    cluster.wait_caught_up(node, Duration::from_secs(20));

    // The node's database as a build before V18 left it: no versions.
    cluster.kill(node);
    sql(&mysql, "ALTER TABLE kanban_columns DROP COLUMN version");
    sql(&mysql, "DELETE FROM schema_migrations WHERE version = 18");
    cluster.restart(node);
    write(
        "POST",
        "/api/tasks",
        json!({ "title": "after the upgrade" }),
    );
    cluster.wait_caught_up(node, Duration::from_secs(20));

    // 1 when made, one more per change, as the fold of the events says.
    let version_on = |board: &str, column: &str| {
        let view = get(&format!(
            "{}/api/boards/{board}?consistency=local",
            cluster.url(node)
        ))
        .ok(200);
        view["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == column)
            .map(|c| c["version"].clone())
    };
    assert_eq!(version_on(&board_id, &review), Some(json!(3)));
    assert_eq!(
        version_on("00000000-0000-0000-0000-000000000001", todo),
        Some(json!(2))
    );
    let untouched = column(&board, "todo")["id"].as_str().unwrap().to_string();
    assert_eq!(version_on(&board_id, &untouched), Some(json!(1)));
    let check = cluster.rebuild_check(node);
    assert!(
        check.status.success(),
        "rebuild --check on node {node}: {}",
        String::from_utf8_lossy(&check.stdout)
    );
}
