//! Importing boards on three real nodes with accounts on: the sample
//! Trello export (tests/fixtures/trello/board.json) becomes a board with
//! its lists, cards, labels, due dates, members, checklists, comments and
//! archived cards; an exported board imported again exports the same; a
//! file sent again under its key resumes the same job and writes nothing
//! twice; a 5,000-card CSV completes exactly once with the leader killed in
//! the middle; hostile files are refused with where their first problem
//! is, writing nothing.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::accounts::*;
use common::*;
use serde_json::{json, Value};

const TRELLO: &str = include_str!("fixtures/trello/board.json");

/// POSTs `file` as it is.
fn post_file(who: &Who, url: &str, file: &[u8], key: Option<&str>) -> (u16, Value) {
    let mut request = ureq::post(url).set("Content-Type", "application/octet-stream");
    for (name, value) in who.headers() {
        request = request.set(name, &value);
    }
    if let Some(key) = key {
        request = request.set("Idempotency-Key", key);
    }
    let (status, text) = match request.send_bytes(file) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(status, r)) => (status, r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Starts an import; the job.
fn import(who: &Who, url: &str, query: &str, file: &[u8], key: Option<&str>) -> Value {
    let (status, body) = post_file(who, &format!("{url}/api/boards/import?{query}"), file, key);
    assert_eq!(status, 202, "{body}");
    body["job"].clone()
}

/// Waits for the job to end on `url`; the job as it ended.
fn finished(who: &Who, url: &str, job: &Value, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let r = call(
            who,
            "GET",
            &format!("{url}/api/jobs/{}", job["id"].as_str().unwrap()),
            None,
        );
        let job = r.ok(200)["job"].clone();
        if job["state"] != "running" {
            return job;
        }
        assert!(started.elapsed() < within, "still running: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The board as an export shows it.
fn exported(who: &Who, url: &str, board: &str) -> Value {
    call(
        who,
        "GET",
        &format!("{url}/api/boards/{board}/export"),
        None,
    )
    .ok(200)
}

/// What an export says that an import must keep: the board's name, its
/// columns in order, and each column's cards in order (live, then
/// archived), without ids, versions or times.
fn content(file: &Value) -> Value {
    let columns = file["columns"].as_array().unwrap();
    let column_names: BTreeMap<&str, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c["id"].as_str().unwrap(), i))
        .collect();
    let mut cards: Vec<Value> = file["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!({
                "column": column_names[c["column_id"].as_str().unwrap()],
                "archived": c["archived"].as_bool().unwrap_or(false),
                "position": c["position"],
                "title": c["title"], "description": c["description"],
                "priority": c["priority"], "assignee": c["assignee"],
                "labels": c["labels"], "due_date": c["due_date"],
                "comments": c["comments"].as_array().unwrap().iter().map(|c| c["body"].clone()).collect::<Vec<_>>(),
                "checklists": c["checklists"],
            })
        })
        .collect();
    cards.sort_by(|a, b| {
        (
            a["column"].as_u64(),
            a["archived"].as_bool(),
            a["position"].as_f64(),
        )
            .partial_cmp(&(
                b["column"].as_u64(),
                b["archived"].as_bool(),
                b["position"].as_f64(),
            ))
            .unwrap()
    });
    for card in &mut cards {
        card.as_object_mut().unwrap().remove("position");
    }
    json!({
        "name": file["board"]["name"],
        "columns": columns.iter().map(|c| json!({
            "name": c["name"], "wip_limit": c["wip_limit"], "color": c["color"],
        })).collect::<Vec<_>>(),
        "cards": cards,
    })
}

#[test]
fn the_sample_trello_export_imports_and_a_board_round_trips_through_export_exactly() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2) = (cluster.url(1), cluster.url(2));
    create_user(&url1, &admin, "ana", "member");
    create_user(&url1, &admin, "vic", "viewer");
    let ana = login(&url2, "ana", "ana-password").unwrap();
    let vic = login(&url1, "vic", "vic-password").unwrap();

    let job = import(
        &ana,
        &url2,
        "format=trello",
        TRELLO.as_bytes(),
        Some("trello-1"),
    );
    let done = finished(&ana, &url2, &job, Duration::from_secs(60));
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["cards"], 40);
    assert_eq!(done["done"], done["total"]);
    let board = done["board_id"].as_str().unwrap().to_string();
    // Someone else's job is not theirs to read.
    let r = call(
        &vic,
        "GET",
        &format!("{url2}/api/jobs/{}", job["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(r.status, 404, "{r:?}");

    let file = exported(&ana, &url1, &board);
    assert_eq!(file["board"]["name"], "Website relaunch");
    let names: Vec<&str> = file["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Backlog", "To Do", "Doing", "Review ✅", "Done"]);
    let cards = file["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 40);
    let card = |title: &str| {
        cards
            .iter()
            .find(|c| c["title"] == title)
            .unwrap_or_else(|| panic!("no card {title}"))
    };
    // Archived: the three closed cards and the three of the archived list.
    let mut archived: Vec<&str> = cards
        .iter()
        .filter(|c| c["archived"] == true)
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    archived.sort_unstable();
    assert_eq!(
        archived,
        [
            "Add sitemap.xml",
            "CDN for assets",
            "Lighthouse score ≥ 90",
            "Monitor uptime",
            "Print stylesheet",
            "Redirects for old URLs"
        ]
    );
    let first = card("Set up the staging server");
    assert_eq!(first["assignee"], "anaperez");
    assert_eq!(
        first["labels"],
        json!(["Bug", "yellow"]),
        "an unnamed label by its colour"
    );
    // Its checklist is a checklist, not Markdown in the description.
    assert_eq!(
        first["checklists"],
        json!([{ "title": "Checklist", "items": [
            { "text": "Write it", "done": true },
            { "text": "Review it", "done": false },
        ] }]),
        "{first}"
    );
    let description = first["description"].as_str().unwrap();
    assert!(
        !description.contains("Write it") && !description.contains("Comment 0"),
        "checklists and comments are not folded in: {description}"
    );
    let lists = call(
        &ana,
        "GET",
        &format!(
            "{url1}/api/tasks/{}/checklists",
            first["id"].as_str().unwrap()
        ),
        None,
    )
    .ok(200);
    assert_eq!(
        lists["progress"],
        json!({ "done": 1, "total": 2 }),
        "{lists}"
    );
    // Its two Trello comments, oldest first, as comments, with their author.
    let thread: Vec<&str> = first["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(thread.len(), 2, "{thread:?}");
    assert!(
        thread[0].starts_with("**Ana Pérez** · 2026-11-01 (in Trello)\n\nComment 0: looks good 👍"),
        "{thread:?}"
    );
    assert!(
        thread[1].starts_with("**Bo Chen** · 2026-11-02"),
        "{thread:?}"
    );
    let listed = call(
        &ana,
        "GET",
        &format!(
            "{url1}/api/tasks/{}/comments",
            first["id"].as_str().unwrap()
        ),
        None,
    )
    .ok(200);
    assert_eq!(listed["comments"].as_array().unwrap().len(), 2, "{listed}");
    let comments: usize = cards
        .iter()
        .map(|c| c["comments"].as_array().unwrap().len())
        .sum();
    assert_eq!(comments, 15, "every Trello comment once");
    let long = card("Migrate blog posts from WordPress");
    assert!(long["description"]
        .as_str()
        .unwrap()
        .starts_with("1. Step \"1\" — check `C:\\\\tmp\\\\1`"));
    assert_eq!(
        card("Write the \"About us\" page")["due_date"],
        "2026-12-02"
    );

    // Sent again under its key: the same job, and nothing written twice.
    let again = import(
        &ana,
        &url2,
        "format=trello",
        TRELLO.as_bytes(),
        Some("trello-1"),
    );
    assert_eq!(again["id"], job["id"]);
    let done = finished(&ana, &url2, &again, Duration::from_secs(60));
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["board_id"].as_str().unwrap(), board);
    assert_eq!(
        exported(&ana, &url1, &board)["cards"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    let boards = call(&ana, "GET", &format!("{url1}/api/boards"), None).ok(200);
    let named = boards["boards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["name"] == "Website relaunch")
        .count();
    assert_eq!(named, 1, "one board, not two");

    // Export → import → export: the same board, card for card.
    let text = serde_json::to_vec(&file).unwrap();
    let job = import(&ana, &url1, "format=json", &text, None);
    let done = finished(&ana, &url1, &job, Duration::from_secs(60));
    assert_eq!(done["state"], "done", "{done}");
    let copy = exported(&ana, &url2, done["board_id"].as_str().unwrap());
    assert_eq!(content(&copy), content(&file));

    // A viewer of the site may not import.
    let (status, body) = post_file(
        &vic,
        &format!("{url1}/api/boards/import?format=trello"),
        TRELLO.as_bytes(),
        None,
    );
    assert_eq!(status, 403, "{body}");
}

#[test]
fn a_hostile_or_malformed_file_is_refused_where_it_goes_wrong_and_writes_nothing() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let url = cluster.url(1);
    let seq = |url: &str| get(&format!("{url}/api/cluster")).body["last_seq"].as_u64();
    let before = seq(&url);
    let deep = format!(
        "{{\"name\": \"B\", \"actions\": [{{\"type\": \"x\", \"data\": {}{}}}]}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("format=trello", br#"{"name": 5}"#.to_vec(), 400, "name"),
        (
            "format=trello",
            br#"{"name": "B", "lists": [{"id": "l", "name": "L"}], "cards": [{"id": "c", "name": "x", "idList": "l", "labels": "red"}]}"#.to_vec(),
            400,
            "cards[0].labels",
        ),
        ("format=trello", deep.into_bytes(), 400, "actions[0].data"),
        ("format=trello", b"not json".to_vec(), 400, "the file"),
        ("format=json", br#"{"format": "other", "version": 1, "board": {"name": "B"}, "columns": [], "cards": []}"#.to_vec(), 400, "format"),
        ("format=csv", b"title,priority\nok,low\nsecond,soon\n".to_vec(), 400, "line 3, column priority"),
        ("format=csv", b"title,prio\nx,1\n".to_vec(), 400, "line 1"),
        ("format=csv", b"title\n\"never closed\n".to_vec(), 400, "line 2"),
        ("format=csv", vec![0xff, 0xfe, b'x'], 400, "the file"),
        ("format=xml", b"<board/>".to_vec(), 400, ""),
    ];
    for (query, file, status, field) in cases {
        let (got, body) = post_file(
            &admin,
            &format!("{url}/api/boards/import?{query}"),
            &file,
            None,
        );
        assert_eq!(
            got,
            status,
            "{query} {}: {body}",
            String::from_utf8_lossy(&file[..file.len().min(60)])
        );
        if !field.is_empty() {
            let at = body["error"]["field"].as_str().unwrap_or("");
            assert!(
                at.starts_with(field),
                "{query}: field {at:?}, wanted {field:?}: {body}"
            );
        }
    }
    // 50 MB: refused before it is read.
    let huge = vec![b' '; 50 << 20];
    let (status, body) = post_file(
        &admin,
        &format!("{url}/api/boards/import?format=trello"),
        &huge,
        None,
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(seq(&url), before, "nothing written");
}

#[test]
fn a_five_thousand_card_csv_completes_exactly_once_with_the_leader_killed_in_the_middle() {
    let mut cluster = start_auth(3, &[], |_| {});
    let leader = cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let via = if leader == 1 { 2 } else { 1 };
    let url = cluster.url(via);
    let mut csv = String::from("title,description,column,priority,labels,archived\r\n");
    for i in 0..5_000 {
        csv.push_str(&format!(
            "\"Card {i}, \"\"quoted\"\"\",\"line one\nline two {i}\",{},{},\"l{}; shared\",{}\r\n",
            ["Todo", "Doing", "Done"][i % 3],
            ["low", "medium", "high", "urgent"][i % 4],
            i % 7,
            i % 10 == 0,
        ));
    }
    let job = import(
        &admin,
        &url,
        "format=csv&name=Big%20import",
        csv.as_bytes(),
        None,
    );
    // Once a fifth is written, the leader dies.
    let started = Instant::now();
    loop {
        let r = call(
            &admin,
            "GET",
            &format!("{url}/api/jobs/{}", job["id"].as_str().unwrap()),
            None,
        );
        let now = r.ok(200)["job"].clone();
        if now["done"].as_u64().unwrap() >= 1_000 {
            assert_eq!(now["state"], "running", "killed before it ended: {now}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{now}");
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.kill(leader);
    let done = finished(&admin, &url, &job, Duration::from_secs(300));
    assert_eq!(done["state"], "done", "{done}");
    let took = started.elapsed();
    let file = exported(&admin, &url, done["board_id"].as_str().unwrap());
    let cards = file["cards"].as_array().unwrap();
    let mut titles: Vec<&str> = cards.iter().map(|c| c["title"].as_str().unwrap()).collect();
    titles.sort_unstable();
    titles.dedup();
    assert_eq!(cards.len(), 5_000, "every card once");
    assert_eq!(titles.len(), 5_000, "no card twice");
    assert_eq!(cards.iter().filter(|c| c["archived"] == true).count(), 500);
    let names: Vec<&str> = file["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Todo", "Doing", "Done"]);
    let card = cards
        .iter()
        .find(|c| c["title"] == "Card 7, \"quoted\"")
        .unwrap();
    assert_eq!(card["description"], "line one\nline two 7");
    assert_eq!(card["labels"], json!(["l0", "shared"]));
    println!("5,000-card CSV import with the leader killed: {took:?}");
}
