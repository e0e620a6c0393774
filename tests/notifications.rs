//! Notifications on three real nodes: a mention in a comment or a card's
//! description rings the mentioned member's bell on every node (live on
//! the socket, to them alone), never a non-member's, an unknown name's or
//! the author's own; an edit rings only the names it adds; read marks go
//! through any node; a card's due reminder rings its assignee once, even
//! after a leader change; every node's projection is the fold of its
//! events.

mod common;

use std::time::Duration;

use common::accounts::*;
use common::*;
use serde_json::{json, Value};

/// `who`'s notifications as node `url` holds them (no ReadIndex: what
/// that node applied).
fn bell(who: &Who, url: &str) -> Value {
    call(
        who,
        "GET",
        &format!("{url}/api/notifications?consistency=local"),
        None,
    )
    .ok(200)
}

fn list(bell: &Value) -> Vec<Value> {
    bell["notifications"].as_array().unwrap().clone()
}

/// The next `event` frame that is not hidden (not `cluster` or `hello`).
fn next_visible_event(feed: &mut Feed) -> Value {
    loop {
        let frame = feed.expect();
        if frame["type"] == "event" && frame["kind"] != "hidden" {
            return frame;
        }
    }
}

/// Tomorrow (UTC) as `YYYY-MM-DD`: in the sweep's window whichever side
/// of midnight the node reads its clock.
fn tomorrow() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400
        + 1;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn mentions_ring_members_on_every_node_and_reminders_ring_once_across_leaders() {
    let mut cluster = start_auth(3, &[("TASKRAFT_DUE_REMINDER_INTERVAL", "1s")], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    for name in ["ana", "bo", "cy", "eve"] {
        create_user(&url1, &admin, name, "member");
    }
    let ana = login(&url1, "ana", "ana-password").unwrap();
    let bo = login(&url3, "bo", "bo-password").unwrap();
    let cy = login(&url2, "cy", "cy-password").unwrap();
    let eve = login(&url2, "eve", "eve-password").unwrap();
    let bo_id = bo.user_id.clone().unwrap();

    // Ana's board: Bo a member, Cy a viewer (who may be mentioned too),
    // Eve not on it.
    let board = call(
        &ana,
        "POST",
        &format!("{url1}/api/boards"),
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
            &format!("{url1}/api/boards/{board_id}/members/{user}"),
            Some(&json!({ "role": role })),
        )
        .ok(200);
    }

    // A card whose description mentions Cy (and Eve, who is not on the board).
    let card = call(
        &ana,
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&json!({
            "title": "Plan the launch",
            "column_id": todo,
            "description": "Draft with @cy, ask @eve."
        })),
    )
    .ok(201);
    let task = card["id"].as_str().unwrap().to_string();

    // Bo and Eve watch the socket on node 2.
    let last_seq = call(&bo, "GET", &format!("{url2}/api/events"), None).ok(200)["last_seq"]
        .as_u64()
        .unwrap();
    let mut bo_feed =
        Feed::connect_as(&url2, &format!("?since={last_seq}"), &bo.headers()).unwrap();
    bo_feed.set_timeout(Duration::from_secs(15));
    assert_eq!(bo_feed.expect()["type"], "hello");
    let mut eve_feed =
        Feed::connect_as(&url2, &format!("?since={last_seq}"), &eve.headers()).unwrap();
    eve_feed.set_timeout(Duration::from_secs(15));
    assert_eq!(eve_feed.expect()["type"], "hello");

    // Ana mentions Bo (any case), Eve (not a member), a name nobody has,
    // herself, and an e-mail address, in a comment through node 1.
    let comment = call(
        &ana,
        "POST",
        &format!("{url1}/api/tasks/{task}/comments"),
        Some(&json!({
            "body": "@Bo can you check this? cc @eve @nobody @ana, mail bo@example.com"
        })),
    )
    .ok(201);
    let comment_id = comment["id"].as_str().unwrap().to_string();

    // Bo's socket says so, to Bo alone.
    let frame = loop {
        let frame = next_visible_event(&mut bo_feed);
        if frame["kind"] == "notification_added" {
            break frame;
        }
    };
    assert_eq!(frame["notification"]["user_id"], bo_id.as_str(), "{frame}");
    assert_eq!(frame["notification"]["task_id"], task.as_str());
    assert_eq!(frame["notification"]["comment_id"], comment_id.as_str());
    let rung = frame["seq"].as_u64().unwrap();
    loop {
        let frame = eve_feed.expect();
        if frame["type"] != "event" {
            continue;
        }
        if frame["seq"].as_u64() == Some(rung) {
            assert_eq!(frame["kind"], "hidden", "Eve sees Bo's bell: {frame}");
            break;
        }
        assert_ne!(frame["kind"], "notification_added", "{frame}");
    }

    // On node 3, Bo's bell has it; nobody else's has a comment mention.
    within("the mention on node 3", Duration::from_secs(20), || {
        list(&bell(&bo, &url3)).len() == 1
    });
    let bo_bell = bell(&bo, &url3);
    assert_eq!(bo_bell["unread"], 1, "{bo_bell}");
    let n = &bo_bell["notifications"][0];
    assert_eq!(n["id"].as_u64(), Some(rung));
    assert_eq!(n["kind"], "mention");
    assert_eq!(n["board_id"], board_id.as_str());
    assert_eq!(n["task_id"], task.as_str());
    assert_eq!(n["comment_id"], comment_id.as_str());
    assert_eq!(n["actor"]["name"], "ana");
    assert_eq!(n["task_title"], "Plan the launch");
    assert_eq!(n["read"], false);
    assert!(
        n["excerpt"].as_str().unwrap().contains("@Bo can you check"),
        "{n}"
    );
    for url in [&url1, &url2, &url3] {
        for (who, name) in [(&eve, "eve"), (&ana, "ana")] {
            let b = bell(who, url);
            assert!(list(&b).is_empty(), "{name} on {url}: {b}");
            assert_eq!(b["unread"], 0);
        }
    }
    // Cy: the description's mention, as a viewer of the board.
    within("Cy's mention", Duration::from_secs(20), || {
        list(&bell(&cy, &url2)).len() == 1
    });
    let cy_first = &list(&bell(&cy, &url2))[0];
    assert_eq!(cy_first["kind"], "mention");
    assert!(cy_first.get("comment_id").is_none(), "{cy_first}");
    assert!(cy_first["excerpt"].as_str().unwrap().contains("@cy"));

    // An edit rings only the names it adds: Cy, not Bo again.
    call(
        &ana,
        "PATCH",
        &format!("{url1}/api/comments/{comment_id}"),
        Some(&json!({ "body": "@bo can you check this? and @cy" })),
    )
    .ok(200);
    within("Cy's second mention", Duration::from_secs(20), || {
        list(&bell(&cy, &url3)).len() == 2
    });
    assert_eq!(list(&bell(&bo, &url3)).len(), 1, "Bo is not rung twice");
    // Newest first, paged by cursor.
    let page = call(
        &cy,
        "GET",
        &format!("{url3}/api/notifications?limit=1&consistency=local"),
        None,
    )
    .ok(200);
    assert_eq!(list(&page).len(), 1);
    assert_eq!(list(&page)[0]["comment_id"], comment_id.as_str());
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let rest = call(
        &cy,
        "GET",
        &format!("{url3}/api/notifications?limit=1&cursor={cursor}&consistency=local"),
        None,
    )
    .ok(200);
    assert_eq!(list(&rest)[0]["id"], cy_first["id"]);
    assert!(rest["next_cursor"].is_null(), "{rest}");

    // Read marks through any node: Bo by id on node 2, seen on node 1.
    let read = call(
        &bo,
        "POST",
        &format!("{url2}/api/notifications/read"),
        Some(&json!({ "ids": [rung] })),
    )
    .ok(200);
    assert_eq!(read["unread"], 0, "{read}");
    within("Bo's read mark on node 1", Duration::from_secs(20), || {
        bell(&bo, &url1)["notifications"][0]["read"] == true
    });
    assert_eq!(bell(&bo, &url1)["unread"], 0);
    // Cy all of them, up to the newest, on node 3.
    let newest = list(&bell(&cy, &url3))[0]["id"].as_u64().unwrap();
    let read = call(
        &cy,
        "POST",
        &format!("{url3}/api/notifications/read"),
        Some(&json!({ "upto": newest })),
    )
    .ok(200);
    assert_eq!(read["unread"], 0, "{read}");
    // Nothing to mark is a 400; another field too.
    for body in [json!({}), json!({ "user_id": bo_id })] {
        let r = call(
            &cy,
            "POST",
            &format!("{url3}/api/notifications/read"),
            Some(&body),
        );
        assert_eq!(r.status, 400, "{body}: {r:?}");
    }

    // A card due tomorrow assigned to Bo: one reminder, rung by the leader.
    let due = tomorrow();
    let due_card = call(
        &ana,
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&json!({
            "title": "Renew the certificate",
            "column_id": todo,
            "assignee": "bo",
            "due_date": due
        })),
    )
    .ok(201);
    let due_task = due_card["id"].as_str().unwrap().to_string();
    let reminders = |url: &str| -> Vec<Value> {
        list(&bell(&bo, url))
            .into_iter()
            .filter(|n| n["kind"] == "due")
            .collect()
    };
    within("the due reminder", Duration::from_secs(30), || {
        reminders(&url3).len() == 1
    });
    let reminder = &reminders(&url3)[0];
    assert_eq!(reminder["task_id"], due_task.as_str());
    assert_eq!(reminder["due_date"], due.as_str());
    assert_eq!(reminder["excerpt"], "Renew the certificate");
    assert_eq!(reminder["actor"]["id"], "due-reminder");

    // The leader goes; the new one sweeps the same card and rings nobody.
    let old = cluster.leader(Duration::from_secs(30));
    cluster.kill(old);
    let new = cluster.leader(Duration::from_secs(60));
    assert_ne!(new, old);
    std::thread::sleep(Duration::from_secs(4));
    let survivor = cluster.url(new);
    assert_eq!(reminders(&survivor).len(), 1, "rung once across leaders");
    cluster.restart(old);
    cluster.leader(Duration::from_secs(60));

    // Every node: the notifications are the fold of its events.
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(30));
        assert_eq!(reminders(&cluster.url(id)).len(), 1, "node {id}");
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

#[test]
fn a_node_behind_the_compacted_log_catches_up_the_notifications_and_read_marks() {
    let mut cluster = start_auth(3, COMPACT_OFTEN, |_| {});
    let leader = cluster.leader(Duration::from_secs(30));
    let behind = if leader == 3 { 2 } else { 3 };
    let url = cluster.url(leader);
    let admin = admin_session(&cluster);
    for name in ["ana", "bo"] {
        create_user(&url, &admin, name, "member");
    }
    let ana = login(&url, "ana", "ana-password").unwrap();
    let bo = login(&url, "bo", "bo-password").unwrap();
    cluster.wait_caught_up(behind, Duration::from_secs(20));
    let applied_before = call(
        &admin,
        "GET",
        &format!("{}/api/cluster", cluster.url(behind)),
        None,
    )
    .ok(200)["applied_index"]
        .as_u64()
        .unwrap();
    cluster.kill(behind);

    // While it is down: a card on the default board, 40 comments that
    // mention Bo (every other one edited to mention him again: no new
    // ring), and Bo's read marks; enough to compact.
    let card = call(
        &ana,
        "POST",
        &format!("{url}/api/tasks"),
        Some(&json!({ "title": "Busy card" })),
    )
    .ok(201);
    let task = card["id"].as_str().unwrap().to_string();
    for i in 0..40 {
        let c = call(
            &ana,
            "POST",
            &format!("{url}/api/tasks/{task}/comments"),
            Some(&json!({ "body": format!("@bo number {i} \"quoted\" 💬") })),
        )
        .ok(201);
        if i % 2 == 0 {
            let id = c["id"].as_str().unwrap();
            call(
                &ana,
                "PATCH",
                &format!("{url}/api/comments/{id}"),
                Some(&json!({ "body": format!("@bo number {i}, edited") })),
            )
            .ok(200);
        }
    }
    let mine = list(&bell(&bo, &url));
    assert_eq!(mine.len(), 40, "one page of 50 holds them all");
    let middle = mine[10]["id"].as_u64().unwrap();
    let newest = mine[0]["id"].as_u64().unwrap();
    call(
        &bo,
        "POST",
        &format!("{url}/api/notifications/read"),
        Some(&json!({ "upto": middle, "ids": [newest] })),
    )
    .ok(200);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while call(&admin, "GET", &format!("{url}/api/cluster"), None).ok(200)["first_index"]
        .as_u64()
        .unwrap_or(0)
        <= applied_before + 1
    {
        assert!(std::time::Instant::now() < deadline, "no compaction");
        std::thread::sleep(Duration::from_millis(200));
    }

    cluster.restart(behind);
    cluster.wait_caught_up(behind, Duration::from_secs(60));
    let expected = bell(&bo, &url);
    assert_eq!(expected["unread"], 9, "40 rung, 31 read: {expected}");
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(30));
        assert_eq!(bell(&bo, &cluster.url(id)), expected, "node {id}'s bell");
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn the_reminder_sweep_reads_the_cards_due_not_the_whole_table() {
    // Every sweep read all of `tasks` (a million rows every five minutes
    // on a million cards): no index began with the due date.
    let mut cluster = start_auth(1, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let url = cluster.url(1);
    let due = tomorrow();
    for i in 0..300 {
        let task = if i % 100 == 0 {
            json!({ "title": format!("due {i}"), "assignee": "bo", "due_date": due })
        } else {
            json!({ "title": format!("undated {i}") })
        };
        call(&service(), "POST", &format!("{url}/api/tasks"), Some(&task)).ok(201);
    }
    let (table, key) = block_on(async {
        use mysql_async::prelude::*;
        let mut conn = mysql_async::Conn::from_url(cluster.mysql_url(1))
            .await
            .unwrap();
        conn.query_drop("ANALYZE TABLE tasks").await.unwrap();
        let plan: mysql_async::Row = conn
            .exec_first(
                format!("EXPLAIN {}", taskraft::db::notifications::DUE_UNREMINDED),
                (due.as_str(), due.as_str(), 100u64),
            )
            .await
            .unwrap()
            .unwrap();
        conn.disconnect().await.unwrap();
        let table: Option<String> = plan.get("table").unwrap();
        let key: Option<String> = plan.get("key").unwrap();
        (table.unwrap_or_default(), key.unwrap_or_default())
    });
    assert_eq!((table.as_str(), key.as_str()), ("t", "tasks_due"));
}
