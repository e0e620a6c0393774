//! Presence over real WebSockets on a real 3-node cluster with accounts:
//! who is looking at a board is seen on every node, never by a non-member,
//! gone soon after a closed socket or a killed node, and never in the log.

mod common;

use std::time::{Duration, Instant};

use common::accounts::*;
use common::*;
use serde_json::{json, Value};

/// How long a node's users may outlive it elsewhere: the presence TTL
/// (5 s), the heartbeat that notices (1 s), and a generous margin for a
/// loaded test machine.
const NODE_GONE_WITHIN: Duration = Duration::from_secs(15);
/// How long anything else may take to show.
const DEADLINE: Duration = Duration::from_secs(15);

/// Opens `who`'s socket on `url` and reads its `hello`.
fn socket(url: &str, who: &Who) -> Feed {
    let mut feed = Feed::connect_as(url, "", &who.headers()).expect("websocket handshake");
    feed.set_timeout(Duration::from_millis(500));
    let hello = feed.expect();
    assert_eq!(hello["type"], "hello", "{hello}");
    feed
}

fn announce(feed: &mut Feed, board: &str, editing: Option<&str>) {
    feed.send_text(
        &json!({ "type": "presence", "board_id": board, "editing": editing }).to_string(),
    );
}

/// The ids of the viewers a presence frame lists.
fn viewer_ids(frame: &Value) -> Vec<String> {
    frame["viewers"]
        .as_array()
        .unwrap_or_else(|| panic!("a presence frame lists viewers: {frame}"))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

/// Reads `feed` until a presence frame of `board` satisfies `wanted`;
/// that frame and how long it took. Other frames are skipped.
fn presence_until(
    feed: &mut Feed,
    board: &str,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < DEADLINE {
        match feed.next() {
            FeedItem::Message(frame) if frame["type"] == "presence" => {
                assert_eq!(
                    frame["board_id"], board,
                    "only the board announced: {frame}"
                );
                if wanted(&frame) {
                    return (frame, started.elapsed());
                }
                last = frame;
            }
            FeedItem::Message(_) | FeedItem::TimedOut => {}
            FeedItem::Closed(code) => panic!("{what}: the socket closed ({code:?})"),
        }
    }
    panic!("{what}: not within {DEADLINE:?}; the last presence frame: {last}");
}

/// Everything `feed` says for `within`.
fn frames_for(feed: &mut Feed, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    let mut frames = Vec::new();
    while started.elapsed() < within {
        match feed.next() {
            FeedItem::Message(frame) => frames.push(frame),
            FeedItem::TimedOut => {}
            FeedItem::Closed(code) => panic!("the socket closed ({code:?})"),
        }
    }
    frames
}

fn last_seq(url: &str, who: &Who) -> u64 {
    call(
        who,
        "GET",
        &format!("{url}/api/events?since=0&limit=1"),
        None,
    )
    .ok(200)["last_seq"]
        .as_u64()
        .unwrap()
}

#[test]
fn presence_is_seen_across_nodes_by_members_only_and_clears_after_a_close_or_a_dead_node() {
    let mut cluster = start_auth(3, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    create_user(&url1, &admin, "ana", "member");
    create_user(&url1, &admin, "bo", "member");
    create_user(&url1, &admin, "eve", "member");
    let ana = login(&url1, "ana", "ana-password").unwrap();
    let bo = login(&url2, "bo", "bo-password").unwrap();
    let eve = login(&url2, "eve", "eve-password").unwrap();
    let (ana_id, bo_id) = (ana.user_id.clone().unwrap(), bo.user_id.clone().unwrap());

    // Ana's board, with bo on it and a card; eve is not on it.
    let board = call(
        &ana,
        "POST",
        &format!("{url1}/api/boards"),
        Some(&json!({ "name": "Launch plan" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    call(
        &ana,
        "PUT",
        &format!("{url1}/api/boards/{board_id}/members/{bo_id}"),
        Some(&json!({ "role": "member" })),
    )
    .ok(200);
    let card = call(
        &ana,
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&json!({ "title": "secret launch date", "board_id": board_id })),
    )
    .ok(201);
    let card_id = card["id"].as_str().unwrap().to_string();
    // Every node has applied the membership before anyone announces.
    for url in [&url1, &url2, &url3] {
        let seen = || call(&bo, "GET", &format!("{url}/api/boards/{board_id}"), None).status == 200;
        within("bo is on the board everywhere", DEADLINE, seen);
    }
    let seq_before = last_seq(&url1, &ana);

    // Ana on node 1 and bo on node 2 look at the board: each hears both.
    let mut ana_feed = socket(&url1, &ana);
    let mut bo_feed = socket(&url2, &bo);
    announce(&mut ana_feed, &board_id, None);
    announce(&mut bo_feed, &board_id, None);
    let both = |frame: &Value| {
        let ids = viewer_ids(frame);
        ids.contains(&ana_id) && ids.contains(&bo_id) && ids.len() == 2
    };
    let (frame, took) = presence_until(&mut ana_feed, &board_id, "ana sees bo", both);
    eprintln!("ana (node 1) saw bo (node 2) after {took:?}: {frame}");
    let names: Vec<&str> = frame["viewers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ana") && names.contains(&"bo"), "{frame}");
    presence_until(&mut bo_feed, &board_id, "bo sees ana", both);

    // A second tab of bo's, on node 3: still one bo.
    let mut bo_tab = socket(&url3, &bo);
    announce(&mut bo_tab, &board_id, None);
    presence_until(&mut bo_tab, &board_id, "bo's second tab sees both", both);

    // Bo opens the card: ana sees who has it open.
    announce(&mut bo_feed, &board_id, Some(&card_id));
    let (frame, _) = presence_until(&mut ana_feed, &board_id, "ana sees bo editing", |f| {
        f["editing"][&card_id]
            .as_array()
            .is_some_and(|users| users.len() == 1 && users[0]["id"] == bo_id.as_str())
    });
    assert!(both(&frame), "bo is listed once: {frame}");

    // Eve, not on the board, announces it on node 2: refused, in words
    // that do not say the board exists, and she hears nothing of it.
    let mut eve_feed = socket(&url2, &eve);
    announce(&mut eve_feed, &board_id, None);
    let heard = frames_for(&mut eve_feed, Duration::from_secs(3));
    let refusal = heard
        .iter()
        .find(|f| f["type"] == "error")
        .unwrap_or_else(|| panic!("eve is told no: {heard:?}"));
    assert_eq!(refusal["code"], "presence_refused", "{refusal}");
    for frame in &heard {
        assert_ne!(frame["type"], "presence", "eve hears no presence: {frame}");
        let text = frame.to_string();
        assert!(
            !text.contains(&ana_id) && !text.contains(&bo_id) && !text.contains("Launch"),
            "eve learns nothing of the board: {frame}"
        );
    }
    // Nor may she claim to edit its card from a board she is on.
    announce(
        &mut eve_feed,
        "00000000-0000-0000-0000-000000000001",
        Some(&card_id),
    );
    let heard = frames_for(&mut eve_feed, Duration::from_secs(2));
    assert!(
        heard.iter().all(|f| !f.to_string().contains(&bo_id)),
        "the default board's presence names neither ana nor bo: {heard:?}"
    );
    // And she never shows among the board's viewers.
    for frame in frames_for(&mut ana_feed, Duration::from_secs(1)) {
        if frame["type"] == "presence" {
            assert!(
                !viewer_ids(&frame).contains(&eve.user_id.clone().unwrap()),
                "{frame}"
            );
        }
    }

    // Presence is never proposed: the event seq has not moved.
    assert_eq!(
        last_seq(&url3, &ana),
        seq_before,
        "presence traffic wrote nothing to the log or MySQL"
    );

    // Bo closes both his tabs: ana's view clears within seconds.
    bo_feed.close();
    let (_, still) = presence_until(&mut ana_feed, &board_id, "one tab closed", |f| {
        viewer_ids(f).contains(&bo_id) && f["editing"].as_object().is_some_and(|e| e.is_empty())
    });
    eprintln!("bo's card closed with his tab after {still:?}");
    bo_tab.close();
    let (frame, took) = presence_until(&mut ana_feed, &board_id, "bo's tabs closed", |f| {
        viewer_ids(f) == [ana_id.clone()]
    });
    eprintln!("bo gone from ana's view after {took:?}: {frame}");

    // Bo on node 3 again; then node 3 dies: he is gone within the TTL.
    let mut bo_again = socket(&url3, &bo);
    announce(&mut bo_again, &board_id, None);
    presence_until(&mut ana_feed, &board_id, "bo is back", both);
    let killed_at = Instant::now();
    cluster.kill(3);
    drop(bo_again);
    presence_until(&mut ana_feed, &board_id, "node 3's users gone", |f| {
        viewer_ids(f) == [ana_id.clone()]
    });
    let took = killed_at.elapsed();
    eprintln!("node 3's users gone from node 1 after {took:?}");
    assert!(
        took < NODE_GONE_WITHIN,
        "a dead node's users vanish within the TTL: {took:?}"
    );
    assert_eq!(
        last_seq(&url1, &ana),
        seq_before,
        "still nothing in the log"
    );
}
