//! A board's activity on three real nodes with accounts on: who did what,
//! newest first, filtered by person, paged by cursor, only for the board's
//! members; and V11's fill of the rows written before it, the same as what
//! the applier writes.

mod common;

use std::time::Duration;

use common::accounts::*;
use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

/// `(kind, actor name)` of each event of a page.
fn summary(page: &Value) -> Vec<(String, String)> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["actor"]["name"].as_str().unwrap_or("system").to_string(),
            )
        })
        .collect()
}

/// Every row's `(seq, board_id, actor_id)` in a node's database.
fn columns(mysql_url: &str) -> Vec<(u64, Option<String>, Option<String>)> {
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(mysql_url).await.unwrap();
        let rows = conn
            .query("SELECT seq, board_id, actor_id FROM task_events ORDER BY seq")
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        rows
    })
}

#[test]
fn a_boards_activity_is_its_members_newest_first_by_person_and_paged() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    create_user(&url1, &admin, "ana", "member");
    let bo_id = create_user(&url1, &admin, "bo", "member");
    create_user(&url1, &admin, "vic", "member");
    let ana = login(&url2, "ana", "ana-password").unwrap();
    let bo = login(&url3, "bo", "bo-password").unwrap();
    let vic = login(&url1, "vic", "vic-password").unwrap();

    // Ana's board, with Bo on it; a card Ana makes and Bo moves; a column.
    let board = call(
        &ana,
        "POST",
        &format!("{url2}/api/boards"),
        Some(&json!({ "name": "Ops \"night\" 🌙" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let done = board["columns"][2]["id"].as_str().unwrap().to_string();
    call(
        &ana,
        "PUT",
        &format!("{url2}/api/boards/{board_id}/members/{bo_id}"),
        Some(&json!({ "role": "member" })),
    )
    .ok(200);
    let card = call(
        &ana,
        "POST",
        &format!("{url2}/api/tasks"),
        Some(&json!({ "title": "Rotate keys", "board_id": board_id })),
    )
    .ok(201);
    let card_id = card["id"].as_str().unwrap().to_string();
    call(
        &bo,
        "PATCH",
        &format!("{url3}/api/tasks/{card_id}"),
        Some(&json!({ "column_id": done })),
    )
    .ok(200);
    call(
        &ana,
        "POST",
        &format!("{url1}/api/boards/{board_id}/columns"),
        Some(&json!({ "name": "Review" })),
    )
    .ok(201);
    // Elsewhere: Vic's card on the default board is not this board's.
    call(
        &vic,
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&json!({ "title": "Not here" })),
    )
    .ok(201);

    // Newest first, each with its actor, read through any node.
    let activity = format!("/api/boards/{board_id}/activity");
    let expected: Vec<(String, String)> = [
        ("column_created", "ana"),
        ("task_updated", "bo"),
        ("task_created", "ana"),
        ("board_member_changed", "ana"),
        // A new board: itself, its three columns, its maker as its admin.
        ("board_member_changed", "ana"),
        ("column_created", "ana"),
        ("column_created", "ana"),
        ("column_created", "ana"),
        ("board_created", "ana"),
    ]
    .iter()
    .map(|(k, a)| (k.to_string(), a.to_string()))
    .collect();
    for (who, url) in [(&ana, &url1), (&bo, &url3), (&admin, &url2)] {
        let page = call(who, "GET", &format!("{url}{activity}"), None).ok(200);
        assert_eq!(summary(&page), expected, "{page:#}");
        assert_eq!(page["next_cursor"], Value::Null);
    }
    let moved = &call(&bo, "GET", &format!("{url3}{activity}"), None).ok(200)["events"][1];
    assert_eq!(moved["task"]["id"], card_id.as_str());
    assert_eq!(
        moved["changes"]["column_id"]["to"],
        done.as_str(),
        "{moved:#}"
    );

    // One person's part.
    let page = call(
        &ana,
        "GET",
        &format!("{url2}{activity}?actor={bo_id}"),
        None,
    )
    .ok(200);
    assert_eq!(summary(&page), [expected[1].clone()]);
    let page = call(&ana, "GET", &format!("{url2}{activity}?actor=nobody"), None).ok(200);
    assert_eq!(summary(&page), []);

    // Pages of two: every event once, in order, then no cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".to_string(),
        };
        let page = call(&bo, "GET", &format!("{url1}{activity}{query}"), None).ok(200);
        seen.extend(summary(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 10, "the cursor never ends");
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 5);

    // Not on the board: 404, as for its cards. Bad input: 400, never 5xx.
    let r = call(&vic, "GET", &format!("{url1}{activity}"), None);
    assert_eq!(r.status, 404, "{r:?}");
    for (query, field) in [
        ("?cursor=x", "cursor"),
        ("?cursor=0", "cursor"),
        ("?cursor=-1", "cursor"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
    ] {
        let r = call(&ana, "GET", &format!("{url1}{activity}{query}"), None);
        assert_eq!(r.status, 400, "{query}: {r:?}");
        assert!(r.body.to_string().contains(field), "{query}: {r:?}");
    }
    let long = "a".repeat(101);
    let r = call(&ana, "GET", &format!("{url1}{activity}?actor={long}"), None);
    assert_eq!(r.status, 400, "{r:?}");
    let r = call(
        &ana,
        "GET",
        &format!("{url1}/api/boards/nope/activity"),
        None,
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = call(&ana, "GET", &format!("{url1}{activity}?what=1"), None);
    assert_eq!(r.status, 400, "{r:?}");

    // Each page reads one range of the board's index, in order (no sort),
    // once most events are other boards' (on a few rows MariaDB scans).
    for i in 0..300 {
        let r = call(
            &service(),
            "POST",
            &format!("{url1}/api/tasks"),
            Some(&json!({ "title": format!("elsewhere {i}") })),
        );
        assert_eq!(r.status, 201, "{r:?}");
    }
    cluster.wait_caught_up(1, Duration::from_secs(20));
    let plans = block_on(async {
        let mut conn = mysql_async::Conn::from_url(cluster.mysql_url(1))
            .await
            .unwrap();
        let mut plans = Vec::new();
        for filter in [
            "",
            " AND actor_id = 'x'",
            " AND seq < 100",
            " AND actor_id = 'x' AND seq < 100",
        ] {
            let row: mysql_async::Row = conn
                .query_first(format!(
                    "EXPLAIN SELECT * FROM task_events WHERE board_id = '{board_id}'{filter} \
                     ORDER BY seq DESC LIMIT 51"
                ))
                .await
                .unwrap()
                .unwrap();
            let key: Option<String> = row.get("key").unwrap();
            let extra: Option<String> = row.get("Extra").unwrap();
            plans.push((filter, key.unwrap_or_default(), extra.unwrap_or_default()));
        }
        conn.disconnect().await.unwrap();
        plans
    });
    for (filter, key, extra) in plans {
        let want = if filter.contains("actor_id") {
            "task_events_board_actor"
        } else {
            "task_events_board"
        };
        assert_eq!(key, want, "{filter}: {extra}");
        assert!(!extra.contains("filesort"), "{filter}: {extra}");
    }
}

#[test]
fn v11_fills_in_the_rows_before_it_as_the_applier_writes_them() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let url = cluster.url(1);
    let bo_id = create_user(&url, &admin, "bo", "member");
    // One event of each kind that has a board, and some that have none.
    let board = call(
        &admin,
        "POST",
        &format!("{url}/api/boards"),
        Some(&json!({ "name": "B" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let todo = board["columns"][0]["id"].as_str().unwrap().to_string();
    call(
        &admin,
        "PUT",
        &format!("{url}/api/boards/{board_id}/members/{bo_id}"),
        Some(&json!({ "role": "viewer" })),
    )
    .ok(200);
    call(
        &admin,
        "PATCH",
        &format!("{url}/api/columns/{todo}"),
        Some(&json!({ "name": "Next" })),
    )
    .ok(200);
    let on_board = call(
        &admin,
        "POST",
        &format!("{url}/api/tasks"),
        Some(&json!({ "title": "on B", "board_id": board_id })),
    )
    .ok(201);
    let default = call(
        &service(),
        "POST",
        &format!("{url}/api/tasks"),
        Some(&json!({ "title": "on the default board" })),
    )
    .ok(201);
    // A card that leaves B for the default board, and one deleted.
    call(
        &admin,
        "PATCH",
        &format!("{url}/api/tasks/{}", on_board["id"].as_str().unwrap()),
        Some(&json!({ "board_id": "00000000-0000-0000-0000-000000000001" })),
    )
    .ok(200);
    call(
        &admin,
        "DELETE",
        &format!("{url}/api/tasks/{}", default["id"].as_str().unwrap()),
        None,
    )
    .ok(204);
    call(
        &admin,
        "PATCH",
        &format!("{url}/api/boards/{board_id}"),
        Some(&json!({ "archived": true })),
    )
    .ok(200);
    cluster.wait_caught_up(2, Duration::from_secs(20));

    let mysql = cluster.mysql_url(2);
    let written = columns(&mysql);
    assert!(written.len() >= 10, "{written:?}");
    assert!(written.iter().all(|(_, _, actor)| actor.is_some()));
    assert!(
        written.iter().any(|(_, board, _)| board.is_none()),
        "user events have no board"
    );
    assert!(written
        .iter()
        .any(|(_, board, _)| board.as_deref() == Some(board_id.as_str())));

    // As a database of before V11: the two columns empty, V11 not recorded.
    cluster.kill(2);
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        for sql in [
            "DROP TRIGGER task_events_no_update",
            "UPDATE task_events SET board_id = NULL, actor_id = NULL",
            "DELETE FROM schema_migrations WHERE version = 11",
        ] {
            conn.query_drop(sql).await.unwrap();
        }
        conn.disconnect().await.unwrap();
    });
    cluster.restart(2);
    cluster.wait_caught_up(2, Duration::from_secs(30));
    assert_eq!(
        columns(&mysql),
        written,
        "V11's fill differs from the applier's"
    );
    // And the table is append-only again.
    let refused = block_on(async {
        let mut conn = mysql_async::Conn::from_url(&mysql).await.unwrap();
        let refused = conn
            .query_drop("UPDATE task_events SET actor_id = 'x' WHERE seq = 1")
            .await
            .is_err();
        conn.disconnect().await.unwrap();
        refused
    });
    assert!(refused, "the no-update trigger is back");
}
