//! Checklists on a card on three real nodes: lists and items created,
//! ticked, moved and removed through different nodes, by members (a
//! viewer refused, a non-member told there is no such card), `If-Match`
//! conflicts, hostile text and limits, `checklist_changed` events with
//! their actors (hidden from a non-member), the `done/total` on the board
//! page, an item turned into a card, a card's checklists going with it;
//! every node's projection equal to the fold of its events, and a node
//! behind the compacted log catching up the checklists.

mod common;

use std::time::Duration;

use common::accounts::*;
use common::*;
use serde_json::{json, Value};

fn lists(who: &Who, url: &str, task: &str) -> Response {
    call(
        who,
        "GET",
        &format!("{url}/api/tasks/{task}/checklists"),
        None,
    )
}

fn items(list: &Value) -> Vec<(String, bool)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["text"].as_str().unwrap().to_string(),
                i["done"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn checklists_through_every_node_with_roles_conflicts_limits_and_events() {
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
        Some(&json!({ "title": "Launch", "column_id": todo })),
    )
    .ok(201);
    let task = card["id"].as_str().unwrap().to_string();
    let last_seq = call(&eve, "GET", &format!("{url1}/api/events"), None).ok(200)["last_seq"]
        .as_u64()
        .unwrap();

    // Bo makes a list through node 3, Ana adds items through node 1.
    let made = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks/{task}/checklists"),
        Some(&json!({ "title": "  Before launch  " })),
    );
    let list = made.ok(201);
    let list_id = list["id"].as_str().unwrap().to_string();
    assert_eq!(list["title"], "Before launch");
    assert_eq!(list["board_id"], board_id.as_str());
    assert_eq!(made.header("etag"), Some("\"1\""));
    let hostile = format!("Say \"hi\" \\ 🚀 <b>{}", "x".repeat(100));
    for text in ["Write it", hostile.as_str()] {
        call(
            &ana,
            "POST",
            &format!("{url1}/api/checklists/{list_id}/items"),
            Some(&json!({ "text": text })),
        )
        .ok(201);
    }
    for url in [&url1, &url2, &url3] {
        let seen = lists(&cy, url, &task).ok(200);
        assert_eq!(
            items(&seen["checklists"][0]),
            [("Write it".to_string(), false), (hostile.clone(), false)],
            "a viewer reads on {url}"
        );
        assert_eq!(seen["progress"], json!({ "done": 0, "total": 2 }));
    }
    let seen = lists(&bo, &url2, &task).ok(200);
    let first_item = seen["checklists"][0]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second_item = seen["checklists"][0]["items"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(seen["checklists"][0]["version"], 3);

    // Ticked with If-Match through node 2; a stale If-Match is 412.
    let ticked = call_with(
        &bo,
        "PATCH",
        &format!("{url2}/api/checklist-items/{first_item}"),
        ("If-Match", "\"3\"".into()),
        Some(&json!({ "done": true })),
    )
    .ok(200);
    assert_eq!(ticked["version"], 4);
    let stale = call_with(
        &ana,
        "PATCH",
        &format!("{url1}/api/checklist-items/{second_item}"),
        ("If-Match", "\"3\"".into()),
        Some(&json!({ "position": 0 })),
    );
    assert_eq!(stale.status, 412, "{stale:?}");
    assert_eq!(stale.body["error"]["current_checklist"]["version"], 4);
    let moved = call_with(
        &ana,
        "PATCH",
        &format!("{url1}/api/checklist-items/{second_item}"),
        ("If-Match", "\"4\"".into()),
        Some(&json!({ "position": 0 })),
    )
    .ok(200);
    assert_eq!(
        items(&moved),
        [(hostile.clone(), false), ("Write it".to_string(), true)]
    );

    // Bad input and limits: clear 4xx.
    for (body, status) in [
        (json!({ "text": "" }), 400),
        (json!({ "text": "x".repeat(20_000) }), 400),
        (json!({ "text": "two\nlines" }), 400),
        (json!({ "text": 5 }), 400),
        (json!({ "nope": "x" }), 400),
    ] {
        let r = call(
            &bo,
            "POST",
            &format!("{url3}/api/checklists/{list_id}/items"),
            Some(&body),
        );
        assert_eq!(r.status, status, "{body}: {r:?}");
    }
    let r = call(
        &bo,
        "PATCH",
        &format!("{url3}/api/checklist-items/{first_item}"),
        Some(&json!({})),
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = call(
        &bo,
        "PATCH",
        &format!("{url3}/api/checklist-items/nope"),
        Some(&json!({"done": true})),
    );
    assert_eq!(r.status, 400, "{r:?}");
    for n in 1..20 {
        call(
            &bo,
            "POST",
            &format!("{url3}/api/tasks/{task}/checklists"),
            Some(&json!({ "title": format!("List {n}") })),
        )
        .ok(201);
    }
    let r = call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks/{task}/checklists"),
        Some(&json!({ "title": "One too many" })),
    );
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.body["error"]["code"], "limit_reached");

    // A viewer is refused; someone not on the board sees nothing.
    let r = call(
        &cy,
        "PATCH",
        &format!("{url1}/api/checklist-items/{first_item}"),
        Some(&json!({ "done": false })),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = call(
        &cy,
        "POST",
        &format!("{url1}/api/tasks/{task}/checklists"),
        Some(&json!({ "title": "mine" })),
    );
    assert_eq!(r.status, 403, "{r:?}");
    for r in [
        lists(&eve, &url1, &task),
        call(
            &eve,
            "PATCH",
            &format!("{url1}/api/checklist-items/{first_item}"),
            Some(&json!({ "done": false })),
        ),
        call(
            &eve,
            "POST",
            &format!("{url1}/api/checklists/{list_id}/items"),
            Some(&json!({ "text": "sneaky" })),
        ),
    ] {
        assert_eq!(r.status, 404, "{r:?}");
    }

    // The card on the board page: done/total over all its lists.
    let page = call(
        &ana,
        "GET",
        &format!("{url2}/api/boards/{board_id}/tasks?column={todo}"),
        None,
    )
    .ok(200);
    let on_page = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        on_page["checklist_progress"],
        json!({ "done": 1, "total": 2 }),
        "{on_page}"
    );

    // An item made a card: a card in the same column, the item gone.
    let made_card = call(
        &bo,
        "POST",
        &format!("{url3}/api/checklist-items/{second_item}/card"),
        None,
    );
    let new_card = made_card.ok(201);
    assert_eq!(new_card["title"], hostile.as_str());
    assert_eq!(new_card["column_id"], todo.as_str());
    let again = call(
        &bo,
        "POST",
        &format!("{url1}/api/checklist-items/{second_item}/card"),
        None,
    );
    assert_eq!(again.ok(201)["id"], new_card["id"], "a retry answers it");
    let seen = lists(&ana, &url2, &task).ok(200);
    assert_eq!(
        items(&seen["checklists"][0]),
        [("Write it".to_string(), true)]
    );

    // Removed, renamed, deleted.
    call(
        &ana,
        "PATCH",
        &format!("{url2}/api/checklists/{list_id}"),
        Some(&json!({ "title": "Launch day" })),
    )
    .ok(200);
    let after = call(
        &ana,
        "DELETE",
        &format!("{url2}/api/checklist-items/{first_item}"),
        None,
    )
    .ok(200);
    assert!(after["items"].as_array().unwrap().is_empty());

    // The events, each with its actor; hidden from Eve.
    let history = call(
        &ana,
        "GET",
        &format!("{url2}/api/tasks/{task}/events"),
        None,
    )
    .ok(200);
    let changes: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "checklist_changed")
        .map(|e| {
            (
                e["checklist_change"]["what"].as_str().unwrap().to_string(),
                e["actor"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes[..5].to_vec(),
        [
            ("created", "bo"),
            ("item_added", "ana"),
            ("item_added", "ana"),
            ("item_updated", "bo"),
            ("item_updated", "ana"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .to_vec(),
        "{history:#}"
    );
    assert_eq!(
        changes[changes.len() - 3..].to_vec(),
        [
            ("item_removed", "bo"),
            ("renamed", "ana"),
            ("item_removed", "ana")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .to_vec()
    );
    let feed = call(
        &eve,
        "GET",
        &format!("{url1}/api/events?since={last_seq}"),
        None,
    )
    .ok(200);
    assert!(feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"] == "hidden"));

    call(
        &ana,
        "DELETE",
        &format!("{url2}/api/checklists/{list_id}"),
        None,
    )
    .ok(204);
    // The card deleted: its checklists go with it.
    call(&admin, "DELETE", &format!("{url2}/api/tasks/{task}"), None).ok(204);
    assert_eq!(lists(&ana, &url3, &task).status, 404);

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

const COMPACT_OFTEN: &[(&str, &str)] = &[
    ("TASKRAFT_SNAPSHOT_COUNT", "40"),
    ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "10"),
];

fn lists_of(url: &str, task: &str) -> Value {
    let r = get(&format!(
        "{url}/api/tasks/{task}/checklists?consistency=linearizable"
    ));
    assert_eq!(r.status, 200, "{r:?}");
    r.body["checklists"].clone()
}

#[test]
fn a_node_behind_the_compacted_log_catches_up_the_checklists() {
    let mut cluster = Cluster::start_with(3, COMPACT_OFTEN);
    let leader = cluster.leader(Duration::from_secs(20));
    let behind = if leader == 3 { 2 } else { 3 };
    let url = cluster.url(leader);
    cluster.wait_caught_up(behind, Duration::from_secs(20));
    let applied_before = get(&format!("{}/api/cluster", cluster.url(behind))).body["applied_index"]
        .as_u64()
        .unwrap();
    cluster.kill(behind);

    let mut tasks = Vec::new();
    for title in ["kept", "deleted"] {
        let r = create_titled(&url, title);
        assert_eq!(r.status, 201, "{r:?}");
        tasks.push(r.body["id"].as_str().unwrap().to_string());
    }
    let mut list_ids = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        for n in 0..2 {
            let r = send(
                "POST",
                &format!("{url}/api/tasks/{task}/checklists"),
                &[],
                Some(&json!({ "title": format!("list {i}.{n}") })),
            );
            assert_eq!(r.status, 201, "{r:?}");
            list_ids.push((i, r.body["id"].as_str().unwrap().to_string()));
        }
    }
    for i in 0..60 {
        let (_, list) = &list_ids[i % list_ids.len()];
        let r = send(
            "POST",
            &format!("{url}/api/checklists/{list}/items"),
            &[],
            Some(&json!({ "text": format!("item {i} \\ \"quoted\" ☑") })),
        );
        assert_eq!(r.status, 201, "{r:?}");
        let item = r.body["items"].as_array().unwrap().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        if i % 3 == 0 {
            let r = send(
                "PATCH",
                &format!("{url}/api/checklist-items/{item}"),
                &[],
                Some(&json!({ "done": true, "position": 0 })),
            );
            assert_eq!(r.status, 200, "{r:?}");
        }
        if i % 5 == 0 {
            let r = send(
                "DELETE",
                &format!("{url}/api/checklist-items/{item}"),
                &[],
                None,
            );
            assert_eq!(r.status, 200, "{r:?}");
        }
    }
    let r = send(
        "DELETE",
        &format!("{url}/api/checklists/{}", list_ids[1].1),
        &[],
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
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
    let expected = lists_of(&url, &tasks[0]);
    assert_eq!(expected.as_array().unwrap().len(), 1, "one of two deleted");
    for id in 1..=3 {
        assert_eq!(
            lists_of(&cluster.url(id), &tasks[0]),
            expected,
            "node {id}'s checklists"
        );
        let r = get(&format!(
            "{}/api/tasks/{}/checklists",
            cluster.url(id),
            tasks[1]
        ));
        assert_eq!(r.status, 404, "node {id}: the deleted card's lists: {r:?}");
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// An item turned into a card by the same request on every node at once,
/// each sent four times: every node meets the item, the card, or the
/// item's removal being applied between its two reads (which once made
/// the handler panic and drop the connection). Every answer is 201 with
/// the one card, and the list ends without the items.
#[test]
fn an_item_made_a_card_on_every_node_at_once_answers_the_one_card_everywhere() {
    const ITEMS: usize = 20;
    let mut cluster = start_auth(3, &[], |_| {});
    let leader = cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let url = cluster.url(leader);
    let card = call(
        &admin,
        "POST",
        &format!("{url}/api/tasks"),
        Some(&json!({ "title": "Race" })),
    )
    .ok(201);
    let task = card["id"].as_str().unwrap().to_string();
    let list = call(
        &admin,
        "POST",
        &format!("{url}/api/tasks/{task}/checklists"),
        Some(&json!({ "title": "Items" })),
    )
    .ok(201);
    let list_id = list["id"].as_str().unwrap().to_string();
    for i in 0..ITEMS {
        call(
            &admin,
            "POST",
            &format!("{url}/api/checklists/{list_id}/items"),
            Some(&json!({ "text": format!("item {i}") })),
        )
        .ok(201);
    }
    let seen = lists(&admin, &url, &task).ok(200);
    let item_ids: Vec<String> = seen["checklists"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(item_ids.len(), ITEMS);
    for item in &item_ids {
        let answers: Vec<Vec<Response>> = std::thread::scope(|s| {
            let sent: Vec<_> = cluster
                .urls()
                .into_iter()
                .map(|url| {
                    let admin = &admin;
                    s.spawn(move || {
                        (0..4)
                            .map(|_| {
                                call(
                                    admin,
                                    "POST",
                                    &format!("{url}/api/checklist-items/{item}/card"),
                                    None,
                                )
                            })
                            .collect()
                    })
                })
                .collect();
            sent.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut cards = std::collections::BTreeSet::new();
        for answer in answers.iter().flatten() {
            cards.insert(answer.ok(201)["id"].as_str().unwrap().to_string());
        }
        assert_eq!(cards.len(), 1, "one card for item {item}: {cards:?}");
    }
    for url in cluster.urls() {
        let seen = lists(&admin, &url, &task).ok(200);
        assert_eq!(seen["checklists"][0]["items"], json!([]), "{url}");
    }
}
