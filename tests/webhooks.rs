//! Outgoing webhooks on three real nodes: a board admin registers a
//! receiver; the leader posts the board's events to it signed with the
//! webhook's secret, retries the same event after the receiver fails (the
//! log shows the 500s, then the 2xx), never skips ahead, resumes in order
//! from a new leader after the old one is killed, and stops when the
//! webhook is deleted. Only a board admin may register one (a member 403,
//! a non-member 404); a bad URL or event kind is a 400; without
//! `webhook_allow_private` a local address is refused. Every node's
//! projection stays the fold of its events.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::accounts::*;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether the receiver answered 2xx.
    accepted: bool,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn seq(&self) -> u64 {
        self.json()["event"]["seq"]
            .as_u64()
            .expect("the event's seq")
    }
}

/// A receiver on loopback that answers 500 to the first `failures`
/// requests and while `failing` is set, else 204; every request it got,
/// in order.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    fn start(failures: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = got.clone();
        let failing: Arc<AtomicBool> = Arc::default();
        let fail = failing.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let mut got = log.lock().unwrap();
                let accepted = got.len() >= failures && !fail.load(Ordering::SeqCst);
                got.push(Received {
                    headers,
                    body,
                    accepted,
                });
                drop(got);
                let answer = if !accepted {
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
                } else {
                    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Receiver { url, got, failing }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The seqs received and answered 2xx.
    fn delivered(&self) -> BTreeSet<u64> {
        self.got()
            .iter()
            .filter(|r| r.accepted)
            .map(Received::seq)
            .collect()
    }
}

/// The board's events a webhook is sent, as its admin reads the activity
/// (newest first there; here in seq order).
fn sendable(admin: &Who, url: &str, board: &str) -> Vec<u64> {
    let page = call(
        admin,
        "GET",
        &format!("{url}/api/boards/{board}/activity?limit=200"),
        None,
    )
    .ok(200);
    let mut seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["kind"].as_str().unwrap().starts_with("webhook_"))
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    seqs
}

/// Every request is signed with `secret` and names its webhook, event and
/// delivery; the distinct seqs arrive in order without a gap, and a seq
/// seen before comes again only as a re-send of what was already sent
/// (never one skipped ahead): after each new seq only older ones or the
/// next one of `expected` may come.
fn assert_signed_in_order(got: &[Received], secret: &str, webhook: &str, expected: &[u64]) {
    let mut next = 0;
    for (i, r) in got.iter().enumerate() {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&r.body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            r.header("X-Taskraft-Signature"),
            format!("sha256={hex}"),
            "request {i}"
        );
        assert_eq!(r.header("Content-Type"), "application/json");
        let body = r.json();
        let seq = r.seq();
        assert_eq!(body["webhook_id"], webhook, "{body}");
        assert_eq!(r.header("X-Taskraft-Event"), body["event"]["kind"]);
        assert_eq!(r.header("X-Taskraft-Delivery"), format!("{webhook}:{seq}"));
        if next < expected.len() && seq == expected[next] {
            next += 1;
        } else {
            assert!(
                expected[..next].contains(&seq),
                "request {i}: seq {seq} is neither the next expected ({:?}) nor a re-send; \
                 all: {:?}",
                expected.get(next),
                got.iter().map(Received::seq).collect::<Vec<_>>()
            );
        }
    }
    assert_eq!(next, expected.len(), "every event arrived");
}

#[test]
fn deliveries_are_signed_retried_in_order_and_survive_a_leader_change() {
    let mut cluster = start_auth(
        3,
        &[
            ("TASKRAFT_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("TASKRAFT_WEBHOOK_RETRY_MAX", "2s"),
        ],
        |_| {},
    );
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    for name in ["ana", "bo", "eve"] {
        create_user(&url1, &admin, name, "member");
    }
    let ana = login(&url1, "ana", "ana-password").unwrap();
    let bo = login(&url2, "bo", "bo-password").unwrap();
    let eve = login(&url3, "eve", "eve-password").unwrap();
    let board = call(
        &ana,
        "POST",
        &format!("{url1}/api/boards"),
        Some(&json!({ "name": "Ops" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let todo = board["columns"][0]["id"].as_str().unwrap().to_string();
    let done = board["columns"][2]["id"].as_str().unwrap().to_string();
    let bo_id = bo.user_id.clone().unwrap();
    call(
        &ana,
        "PUT",
        &format!("{url1}/api/boards/{board_id}/members/{bo_id}"),
        Some(&json!({ "role": "member" })),
    )
    .ok(200);
    let hooks = |url: &str| format!("{url}/api/boards/{board_id}/webhooks");
    let receiver = Receiver::start(3);

    // Who may not: a member 403, a non-member 404 (nothing of the board).
    let body = json!({ "url": receiver.url });
    let r = call(&bo, "POST", &hooks(&url2), Some(&body));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(call(&bo, "GET", &hooks(&url2), None).status, 403);
    let r = call(&eve, "POST", &hooks(&url3), Some(&body));
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(call(&eve, "GET", &hooks(&url3), None).status, 404);
    // What may not be sent: bad URLs, an unknown kind (named), a kind
    // webhooks are never sent.
    for (bad, says) in [
        (json!({ "url": "ftp://example.com/x" }), "http or https"),
        (json!({ "url": "not a url" }), "not a URL"),
        (json!({ "url": "https://u:p@example.com/" }), "user name"),
        (
            json!({ "url": receiver.url, "events": ["task_created", "task_exploded"] }),
            "task_exploded",
        ),
        (
            json!({ "url": receiver.url, "events": ["notification_added"] }),
            "never sent",
        ),
    ] {
        let r = call(&ana, "POST", &hooks(&url1), Some(&bad));
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(says),
            "{bad}: {r:?}"
        );
    }

    // Ana registers the receiver through node 2; the secret is shown once.
    let created = call(
        &ana,
        "POST",
        &hooks(&url2),
        Some(&json!({ "url": receiver.url, "description": "chat" })),
    )
    .ok(201);
    let webhook = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64, "{created}");
    let listed = call(&ana, "GET", &hooks(&url3), None).ok(200);
    assert_eq!(listed["webhooks"][0]["id"], webhook.as_str(), "{listed}");
    assert!(
        !listed.to_string().contains(&secret),
        "GET repeats the secret: {listed}"
    );
    // The event that added it: Ana sees it, Bo (a member) only its seq,
    // and nobody its secret.
    let feed = |who: &Who| call(who, "GET", &format!("{url1}/api/events"), None).ok(200);
    let ana_feed = feed(&ana);
    assert!(!ana_feed.to_string().contains(&secret));
    let added_seq = created_seq(&ana_feed);
    let at = |feed: &Value| -> Value {
        feed["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["seq"].as_u64() == Some(added_seq))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        at(&ana_feed)["webhook"]["webhook"]["url"],
        receiver.url.as_str(),
        "{ana_feed}"
    );
    assert_eq!(at(&feed(&bo))["kind"], "hidden");
    // On the socket too, and in the board's activity.
    let mut bo_feed =
        Feed::connect_as(&url2, &format!("?since={}", added_seq - 1), &bo.headers()).unwrap();
    bo_feed.set_timeout(Duration::from_secs(15));
    let frame = loop {
        let frame = bo_feed.expect();
        if frame["type"] == "event" && frame["seq"].as_u64() == Some(added_seq) {
            break frame;
        }
    };
    assert_eq!(frame["kind"], "hidden", "{frame}");
    let activity = |who: &Who| {
        call(
            who,
            "GET",
            &format!("{url2}/api/boards/{board_id}/activity"),
            None,
        )
        .ok(200)
        .to_string()
    };
    assert!(
        !activity(&bo).contains("webhook_added"),
        "{}",
        activity(&bo)
    );
    assert!(activity(&ana).contains("webhook_added"));
    assert!(!activity(&ana).contains(&secret));

    // Cards, a move and a comment through every node.
    let mut cards = Vec::new();
    for (i, url) in [&url1, &url2, &url3].into_iter().enumerate() {
        let card = call(
            &ana,
            "POST",
            &format!("{url}/api/tasks"),
            Some(&json!({ "title": format!("Card {i}"), "column_id": todo })),
        )
        .ok(201);
        cards.push(card["id"].as_str().unwrap().to_string());
    }
    call(
        &bo,
        "PATCH",
        &format!("{url2}/api/tasks/{}", cards[0]),
        Some(&json!({ "column_id": done })),
    )
    .ok(200);
    call(
        &bo,
        "POST",
        &format!("{url3}/api/tasks/{}/comments", cards[1]),
        Some(&json!({ "body": "on it" })),
    )
    .ok(201);
    let expected = sendable(&ana, &url1, &board_id);
    let after_add: Vec<u64> = expected
        .iter()
        .copied()
        .filter(|s| *s > added_seq)
        .collect();
    assert_eq!(
        after_add.len(),
        5,
        "3 cards, a move, a comment: {expected:?}"
    );
    within("every event delivered", Duration::from_secs(30), || {
        after_add.iter().all(|s| receiver.delivered().contains(s))
    });
    assert_signed_in_order(&receiver.got(), &secret, &webhook, &after_add);
    let first = receiver.got()[0].json();
    assert_eq!(first["board_id"], board_id.as_str());
    assert_eq!(first["event"]["kind"], "task_created", "{first}");
    assert_eq!(first["event"]["task"]["title"], "Card 0");

    // The log: the three 500s of the first event, then its 204, newest
    // first; the list says how far it got.
    let log_url = format!("{}/{webhook}/deliveries", hooks(&url3));
    within("the log through Raft", Duration::from_secs(10), || {
        call(&ana, "GET", &log_url, None).ok(200)["deliveries"]
            .as_array()
            .unwrap()
            .len()
            >= 4 + after_add.len() - 1
    });
    let log = call(&ana, "GET", &log_url, None).ok(200)["deliveries"]
        .as_array()
        .unwrap()
        .clone();
    let oldest: Vec<&Value> = log.iter().rev().take(4).collect();
    for (i, d) in oldest.iter().enumerate() {
        assert_eq!(d["seq"].as_u64(), Some(after_add[0]), "{d}");
        assert_eq!(d["attempt"].as_u64(), Some(i as u64 + 1), "{d}");
        assert_eq!(d["status"], if i < 3 { 500 } else { 204 }, "{d}");
        assert!(d["duration_ms"].is_u64() && d["at"].is_string(), "{d}");
    }
    assert_eq!(log[0]["status"], 204);
    // (At least the last card's: events it is not sent count as done.)
    within("delivered_seq", Duration::from_secs(10), || {
        let listed = call(&ana, "GET", &hooks(&url2), None).ok(200);
        listed["webhooks"][0]["delivered_seq"].as_u64() >= after_add.last().copied()
    });
    assert!(
        !activity(&ana).contains("webhook_delivered"),
        "delivery reports are no one's activity"
    );
    let listed = call(&ana, "GET", &hooks(&url2), None).ok(200);
    assert_eq!(listed["webhooks"][0]["last_delivery"]["status"], 204);
    assert!(listed["webhooks"][0].get("failing_since").is_none());

    // Mid-stream: the receiver fails again while three more cards wait;
    // once the leader is retrying the first, it is killed, and the new
    // leader delivers them all, in order after the rest.
    receiver.failing.store(true, Ordering::SeqCst);
    let before = receiver.got().len();
    for (i, url) in [&url1, &url2, &url3].into_iter().enumerate() {
        call(
            &ana,
            "POST",
            &format!("{url}/api/tasks"),
            Some(&json!({ "title": format!("After {i}"), "column_id": todo })),
        )
        .ok(201);
    }
    within("the leader retrying", Duration::from_secs(15), || {
        receiver.got().len() >= before + 2
    });
    let old = cluster.leader(Duration::from_secs(30));
    cluster.kill(old);
    receiver.failing.store(false, Ordering::SeqCst);
    let new = cluster.leader(Duration::from_secs(60));
    let survivor = cluster.url(new);
    let expected: Vec<u64> = sendable(&ana, &survivor, &board_id)
        .into_iter()
        .filter(|s| *s >= after_add[0])
        .collect();
    assert_eq!(expected.len(), after_add.len() + 3, "{expected:?}");
    within(
        "delivery from the new leader",
        Duration::from_secs(30),
        || expected.iter().all(|s| receiver.delivered().contains(s)),
    );
    assert_signed_in_order(&receiver.got(), &secret, &webhook, &expected);
    let refused = receiver.got()[before..]
        .iter()
        .filter(|r| !r.accepted)
        .count();
    assert!(refused >= 2, "the old leader was stopped mid-stream");

    // The webhook and its log on the new leader: the fold of its events.
    let check = cluster.rebuild_check(new);
    assert!(
        check.status.success(),
        "rebuild --check with a live webhook: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Deleted: nothing more is sent.
    let r = call(
        &ana,
        "DELETE",
        &format!("{}/{webhook}", hooks(&survivor)),
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let sent = receiver.got().len();
    call(
        &ana,
        "POST",
        &format!("{survivor}/api/tasks"),
        Some(&json!({ "title": "Unsent", "column_id": todo })),
    )
    .ok(201);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.got().len(), sent, "a deleted webhook still sends");
    let listed = call(&ana, "GET", &hooks(&survivor), None).ok(200);
    assert_eq!(listed["webhooks"], json!([]), "{listed}");
    let r = call(&ana, "GET", &log_url.replace(&url3, &survivor), None);
    assert_eq!(r.status, 404, "{r:?}");

    // Every node: the webhooks and their log are the fold of its events.
    cluster.restart(old);
    cluster.leader(Duration::from_secs(60));
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(30));
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "rebuild --check on node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// The seq of the `webhook_added` event (the last such in the feed).
fn created_seq(feed: &Value) -> u64 {
    feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["kind"] == "webhook_added")
        .and_then(|e| e["seq"].as_u64())
        .unwrap_or_else(|| panic!("no webhook_added event: {feed}"))
}

#[test]
fn without_the_setting_a_webhook_may_not_name_a_local_address() {
    let mut cluster = start_auth(1, &[], |_| {});
    cluster.leader(Duration::from_secs(30));
    let admin = admin_session(&cluster);
    let url = cluster.url(1);
    let board = call(
        &admin,
        "POST",
        &format!("{url}/api/boards"),
        Some(&json!({ "name": "Ops" })),
    )
    .ok(201);
    let hooks = format!(
        "{url}/api/boards/{}/webhooks",
        board["id"].as_str().unwrap()
    );
    for local in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/hook",
        "http://localhost:9/hook",
    ] {
        let r = call(&admin, "POST", &hooks, Some(&json!({ "url": local })));
        assert_eq!(r.status, 400, "{local}: {r:?}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("webhook_allow_private"),
            "{local}: {r:?}"
        );
    }
    let listed = call(&admin, "GET", &hooks, None).ok(200);
    assert_eq!(listed["webhooks"], json!([]));
}

/// Compacts the log every few dozen entries.
const COMPACT_OFTEN: &[(&str, &str)] = &[
    ("TASKRAFT_SNAPSHOT_COUNT", "40"),
    ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "10"),
    ("TASKRAFT_WEBHOOK_ALLOW_PRIVATE", "true"),
];

#[test]
fn a_node_behind_the_compacted_log_catches_up_the_webhooks_and_their_log() {
    let mut cluster = start_auth(3, COMPACT_OFTEN, |_| {});
    let leader = cluster.leader(Duration::from_secs(30));
    let behind = if leader == 3 { 2 } else { 3 };
    let url = cluster.url(leader);
    let admin = admin_session(&cluster);
    create_user(&url, &admin, "ana", "member");
    let ana = login(&url, "ana", "ana-password").unwrap();
    let board = call(
        &ana,
        "POST",
        &format!("{url}/api/boards"),
        Some(&json!({ "name": "Busy" })),
    )
    .ok(201);
    let board_id = board["id"].as_str().unwrap().to_string();
    let todo = board["columns"][0]["id"].as_str().unwrap().to_string();
    let hooks = |url: &str| format!("{url}/api/boards/{board_id}/webhooks");
    let receiver = Receiver::start(0);
    let kept = call(
        &ana,
        "POST",
        &hooks(&url),
        Some(&json!({ "url": receiver.url, "events": ["task_created"] })),
    )
    .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = call(
        &ana,
        "POST",
        &hooks(&url),
        Some(&json!({ "url": format!("{}/other", receiver.url) })),
    )
    .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
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

    // While it is down: one webhook removed, and more cards than the log
    // keeps attempts of (each sent to the one left); enough to compact.
    let r = call(&ana, "DELETE", &format!("{}/{gone}", hooks(&url)), None);
    assert_eq!(r.status, 204, "{r:?}");
    let mut last = 0;
    for i in 0..110 {
        let card = call(
            &ana,
            "POST",
            &format!("{url}/api/tasks"),
            Some(&json!({ "title": format!("Card {i}"), "column_id": todo })),
        );
        last = card.header("X-Taskraft-Seq").unwrap().parse().unwrap();
        assert_eq!(card.status, 201, "{card:?}");
    }
    let log_url = |url: &str| format!("{}/{kept}/deliveries", hooks(url));
    within("110 deliveries reported", Duration::from_secs(60), || {
        let listed = call(&ana, "GET", &hooks(&url), None).ok(200);
        listed["webhooks"][0]["delivered_seq"].as_u64() >= Some(last)
            && call(&ana, "GET", &log_url(&url), None).ok(200)["deliveries"][0]["seq"].as_u64()
                == Some(last)
    });
    let log = call(&ana, "GET", &log_url(&url), None).ok(200);
    assert_eq!(
        log["deliveries"].as_array().unwrap().len(),
        100,
        "the newest 100 kept"
    );
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
    let expected = (
        call(&ana, "GET", &hooks(&url), None).ok(200),
        call(&ana, "GET", &log_url(&url), None).ok(200),
    );
    assert_eq!(
        expected.0["webhooks"].as_array().unwrap().len(),
        1,
        "{}",
        expected.0
    );
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(30));
        let there = cluster.url(id);
        let found = (
            call(&ana, "GET", &hooks(&there), None).ok(200),
            call(&ana, "GET", &log_url(&there), None).ok(200),
        );
        assert_eq!(found, expected, "node {id}'s webhooks and log");
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}
