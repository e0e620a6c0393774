//! A board's export on three real nodes with accounts on: JSON and CSV
//! hold the board, its columns and every card (archived ones too, in pages
//! of 500), exactly as the API serves them; hostile text survives, and a
//! CSV cell a spreadsheet would run is defused; only members may export.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::accounts::*;
use serde_json::{json, Value};

/// The raw body of a GET (the JSON client parses; CSV is text).
fn raw(who: &Who, url: &str) -> (u16, Vec<(String, String)>, String) {
    let mut request = ureq::get(url);
    for (name, value) in who.headers() {
        request = request.set(name, &value);
    }
    match request.call() {
        Ok(r) => {
            let headers = r
                .headers_names()
                .into_iter()
                .map(|n| (n.clone(), r.header(&n).unwrap_or("").to_string()))
                .collect();
            (r.status(), headers, r.into_string().unwrap())
        }
        Err(ureq::Error::Status(status, r)) => (status, vec![], r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// RFC 4180 records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && record.is_empty(),
        "the file ends a record"
    );
    records
}

#[test]
fn a_board_exports_as_json_and_csv_exactly_as_the_api_serves_it() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2) = (cluster.url(1), cluster.url(2));
    let ana_id = create_user(&url1, &admin, "ana", "member");
    create_user(&url1, &admin, "vic", "member");
    let ana = login(&url2, "ana", "ana-password").unwrap();
    let vic = login(&url1, "vic", "vic-password").unwrap();

    let board = call(
        &ana,
        "POST",
        &format!("{url2}/api/boards"),
        Some(&json!({ "name": "Ops \"night\" 🌙" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let todo = board["columns"][0]["id"].as_str().unwrap().to_string();
    let review = call(
        &ana,
        "POST",
        &format!("{url2}/api/boards/{board_id}/columns"),
        Some(&json!({ "name": "Review, \"final\"", "wip_limit": 2, "color": "#123456" })),
    )
    .ok(201);
    let review_id = review["id"].as_str().unwrap().to_string();
    // Hostile text: 20,000 characters of backslashes, quotes, emoji and
    // line breaks; a formula; labels with the separator in them.
    let long: String = "\\\"'🚀,\r\n=é".chars().cycle().take(20_000).collect();
    let special = [
        json!({ "title": "=cmd|' /C calc'!A0", "description": long, "column_id": review_id,
                "labels": ["a;b", "c\\", "-x"], "priority": "urgent", "due_date": "2027-01-31",
                "assignee": "@ana" }),
        json!({ "title": "'=already quoted", "description": "+1", "column_id": todo }),
        json!({ "title": "plain", "description": "", "column_id": todo }),
    ];
    let mut ids = Vec::new();
    for body in special.iter().cloned().chain((0..1_100).map(|i| {
        json!({ "title": format!("card {i}"), "column_id": if i % 2 == 0 { &todo } else { &review_id } })
    })) {
        let mut body = body;
        body["board_id"] = json!(board_id);
        let r = call(&ana, "POST", &format!("{url2}/api/tasks"), Some(&body));
        assert_eq!(r.status, 201, "{r:?}");
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    // Some archived; one card elsewhere that must not come along.
    for id in ids.iter().skip(3).step_by(7) {
        call(
            &ana,
            "PATCH",
            &format!("{url2}/api/tasks/{id}"),
            Some(&json!({ "archived": true })),
        )
        .ok(200);
    }
    call(
        &vic,
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&json!({ "title": "not on the board" })),
    )
    .ok(201);
    call(
        &ana,
        "POST",
        &format!("{url2}/api/tasks/{}/comments", ids[0]),
        Some(&json!({ "body": "First! 🚀 \\ \"q\"" })),
    )
    .ok(201);
    let list = call(
        &ana,
        "POST",
        &format!("{url2}/api/tasks/{}/checklists", ids[0]),
        Some(&json!({ "title": "Steps \"1\"" })),
    )
    .ok(201);
    for text in ["Do it ☑", "Check it"] {
        call(
            &ana,
            "POST",
            &format!(
                "{url2}/api/checklists/{}/items",
                list["id"].as_str().unwrap()
            ),
            Some(&json!({ "text": text })),
        )
        .ok(201);
    }
    let lists = call(
        &ana,
        "GET",
        &format!("{url2}/api/tasks/{}/checklists", ids[0]),
        None,
    )
    .ok(200);
    let first_item = lists["checklists"][0]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &ana,
        "PATCH",
        &format!("{url2}/api/checklist-items/{first_item}"),
        Some(&json!({ "done": true })),
    )
    .ok(200);
    // The truth, as the API serves each card.
    let served: HashMap<String, Value> = ids
        .iter()
        .map(|id| {
            let task = call(&ana, "GET", &format!("{url1}/api/tasks/{id}"), None).ok(200);
            (id.clone(), task)
        })
        .collect();
    let served_board = call(&ana, "GET", &format!("{url1}/api/boards/{board_id}"), None).ok(200);

    // JSON, through another node.
    let export = format!("{url1}/api/boards/{board_id}/export");
    let (status, headers, body) = raw(&ana, &export);
    assert_eq!(status, 200, "{body}");
    let disposition = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert_eq!(disposition, "attachment; filename=\"Ops-night.json\"");
    let file: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(file["format"], "taskraft-board");
    assert_eq!(file["version"], 1);
    assert_eq!(file["board"]["name"], "Ops \"night\" 🌙");
    let names: Vec<&Value> = file["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    let served_names: Vec<&Value> = served_board["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, served_names);
    assert_eq!(file["columns"][3]["wip_limit"], 2);
    let cards = file["cards"].as_array().unwrap();
    assert_eq!(
        cards.len(),
        ids.len(),
        "every card once, none of another board"
    );
    // Live cards first, then archived, each in board order.
    let archived: Vec<bool> = cards.iter().map(|c| c["archived"] == true).collect();
    assert!(archived.windows(2).all(|w| !w[0] || w[1]), "live first");
    for card in cards {
        let id = card["id"].as_str().unwrap();
        let mut want = served[id].clone();
        want["column_id"] = card["column_id"].clone();
        want["comments"] = if id == ids[0] {
            json!([{ "author": { "id": ana_id, "name": "ana" }, "body": "First! 🚀 \\ \"q\"",
                     "created_at": card["comments"][0]["created_at"] }])
        } else {
            json!([])
        };
        want["checklists"] = if id == ids[0] {
            json!([{ "title": "Steps \"1\"", "items": [
                { "text": "Do it ☑", "done": true },
                { "text": "Check it", "done": false },
            ] }])
        } else {
            json!([])
        };
        assert!(card == &want, "{id}: {:.300}", card.to_string());
    }

    // CSV: one row per card, hostile cells intact or defused.
    let (status, _, body) = raw(&ana, &format!("{export}?format=csv"));
    assert_eq!(status, 200, "{body}");
    let records = parse_csv(&body);
    assert_eq!(
        records[0].join(","),
        "id,title,description,column,column_id,position,priority,assignee,labels,due_date,archived,created_at,updated_at,version"
    );
    assert_eq!(records.len(), ids.len() + 1);
    let by_id: HashMap<&str, &Vec<String>> =
        records[1..].iter().map(|r| (r[0].as_str(), r)).collect();
    let first = by_id[ids[0].as_str()];
    assert_eq!(first[1], "'=cmd|' /C calc'!A0", "a formula is defused");
    assert_eq!(
        first[2],
        served[&ids[0]]["description"].as_str().unwrap(),
        "20,000 hostile characters intact"
    );
    assert_eq!(first[3], "Review, \"final\"");
    assert_eq!(first[7], "'@ana");
    assert_eq!(first[8], "'-x; a\\;b; c\\\\");
    assert_eq!(first[9], "2027-01-31");
    let second = by_id[ids[1].as_str()];
    assert_eq!(second[1], "''=already quoted");
    assert_eq!(second[2], "'+1");
    for record in &records[1..] {
        let task = &served[&record[0]];
        assert_eq!(
            record[10],
            task["archived"].as_bool().unwrap_or(false).to_string()
        );
        assert_eq!(record[13], task["version"].to_string());
    }

    // Members only; bad input is a 400.
    let (status, _, body) = raw(&vic, &export);
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = raw(&ana, &format!("{export}?format=xml"));
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = raw(&ana, &format!("{url1}/api/boards/x/export"));
    assert_eq!(status, 400, "{body}");
}
