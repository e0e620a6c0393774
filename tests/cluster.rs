//! A 3-node cluster of real processes over TCP with a private MariaDB:
//! CRUD, linearizable reads across nodes, conditional writes, and the
//! failures a Raft service must survive without losing or doubling an
//! acknowledged write.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
fn crud_works_through_every_node() {
    let cluster = Cluster::start(3);
    let [a, b, c] = [cluster.url(1), cluster.url(2), cluster.url(3)];

    let created = create(
        &a,
        json!({"title": "Write the report", "labels": ["docs"], "assignee": "ana"}),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/tasks/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert!(created.header("x-taskraft-seq").is_some());

    let read = get(&format!("{b}/api/tasks/{id}"));
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created.body, "node 2 reads what node 1 created");

    let moved = send(
        "PATCH",
        &format!("{c}/api/tasks/{id}"),
        &[],
        Some(&json!({"status": "done", "title": "Report written"})),
    );
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(
        (
            moved.body["status"].as_str(),
            moved.body["version"].as_u64()
        ),
        (Some("done"), Some(2))
    );

    let listed = get(&format!("{a}/api/tasks?status=done"));
    assert_eq!(listed.body["tasks"][0]["title"], "Report written");

    let deleted = send("DELETE", &format!("{b}/api/tasks/{id}"), &[], None);
    assert_eq!(deleted.status, 204);
    for url in [&a, &b, &c] {
        assert_eq!(
            get(&format!("{url}/api/tasks/{id}")).status,
            404,
            "deleted on {url}"
        );
    }
    let history = get(&format!("{c}/api/tasks/{id}/events"));
    let kinds: Vec<&str> = history.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["task_created", "task_updated", "task_deleted"]);
}

#[test]
fn a_write_on_one_node_is_immediately_readable_on_another() {
    let cluster = Cluster::start(3);
    let urls = cluster.urls();
    for round in 0..30 {
        let writer = &urls[round % 3];
        let reader = &urls[(round + 1) % 3];
        let created = create_titled(writer, &format!("task {round}"));
        assert_eq!(created.status, 201);
        let id = created.body["id"].as_str().unwrap();
        let updated = send(
            "PATCH",
            &format!("{writer}/api/tasks/{id}"),
            &[],
            Some(&json!({"priority": "urgent"})),
        );
        assert_eq!(updated.status, 200);
        // No sleep, no retry: a linearizable read must see the acknowledged write.
        let read = get(&format!("{reader}/api/tasks/{id}"));
        assert_eq!(read.status, 200, "round {round}: {:?}", read.body);
        assert_eq!(
            read.body["version"], 2,
            "round {round}: {reader} is stale: {:?}",
            read.body
        );
        let feed = get(&format!("{reader}/api/events?since=0&limit=1000"));
        let last_seq = feed.body["last_seq"].as_u64().unwrap();
        let acked_seq: u64 = updated.header("x-taskraft-seq").unwrap().parse().unwrap();
        assert!(
            last_seq >= acked_seq,
            "round {round}: feed at {last_seq}, write acked at seq {acked_seq}"
        );
    }
}

#[test]
fn if_match_succeeds_on_the_current_version_and_412s_on_a_stale_one() {
    let cluster = Cluster::start(3);
    let (a, b) = (cluster.url(1), cluster.url(2));
    let id = create_titled(&a, "contested").body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let task_url = format!("{b}/api/tasks/{id}");

    let first = send(
        "PATCH",
        &task_url,
        &[("If-Match", "\"1\"")],
        Some(&json!({"title": "first"})),
    );
    assert_eq!((first.status, first.header("etag")), (200, Some("\"2\"")));

    let stale = send(
        "PATCH",
        &format!("{a}/api/tasks/{id}"),
        &[("If-Match", "\"1\"")],
        Some(&json!({"title": "second"})),
    );
    assert_eq!(stale.status, 412, "{:?}", stale.body);
    assert_eq!(stale.error_code(), Some("version_mismatch"));
    assert_eq!(
        stale.body["error"]["current"]["title"], "first",
        "the 412 carries the current task"
    );
    assert_eq!(stale.header("etag"), Some("\"2\""));

    let stale_delete = send("DELETE", &task_url, &[("If-Match", "\"1\"")], None);
    assert_eq!(stale_delete.status, 412);
    assert_eq!(
        get(&task_url).body["title"],
        "first",
        "refused writes change nothing"
    );

    let delete = send("DELETE", &task_url, &[("If-Match", "\"2\"")], None);
    assert_eq!(delete.status, 204);
}

#[test]
fn unknown_and_deleted_tasks_answer_404_everywhere() {
    let cluster = Cluster::start(3);
    let a = cluster.url(1);
    let missing = "01a21377-127a-70d3-b89d-000000000000";
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"title": "x"}))),
        ("DELETE", None),
    ] {
        let r = send(
            method,
            &format!("{a}/api/tasks/{missing}"),
            &[],
            body.as_ref(),
        );
        assert_eq!(
            (r.status, r.error_code()),
            (404, Some("not_found")),
            "{method}"
        );
    }
    assert_eq!(get(&format!("{a}/api/tasks/{missing}/events")).status, 404);
    let id = create_titled(&a, "short-lived").body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        send("DELETE", &format!("{a}/api/tasks/{id}"), &[], None).status,
        204
    );
    assert_eq!(
        send(
            "DELETE",
            &format!("{}/api/tasks/{id}", cluster.url(3)),
            &[],
            None
        )
        .status,
        404
    );
    let again = create(&a, json!({"id": id, "title": "back from the dead"}));
    assert_eq!((again.status, again.error_code()), (409, Some("id_taken")));
}

#[test]
fn after_a_restart_a_deleted_id_is_still_taken_and_uncached_tasks_still_update() {
    // The applier no longer holds every id ever used: after a restart it
    // knows ids only by a filter built from the events, and no rows. A
    // deleted id must still be refused (MySQL: events, no row), a live
    // task still found (its row), and a fresh id still created.
    let mut cluster = Cluster::start(3);
    let a = cluster.url(1);
    let id_of = |r: Response| r.body["id"].as_str().unwrap().to_string();
    let kept = id_of(create_titled(&a, "kept"));
    let gone = id_of(create_titled(&a, "short-lived"));
    assert_eq!(
        send("DELETE", &format!("{a}/api/tasks/{gone}"), &[], None).status,
        204
    );
    let keyed = || {
        send(
            "POST",
            &format!("{a}/api/tasks"),
            &[("Idempotency-Key", "before-the-restart")],
            Some(&json!({"title": "keyed"})),
        )
    };
    let first = keyed();
    assert_eq!(first.status, 201, "{:?}", first.body);
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.spawn(id);
    }
    for id in 1..=3 {
        cluster.wait_ready(id, Duration::from_secs(60));
    }
    // At once: the filters of used ids and keys may still be being read
    // (in the background); a used key is still known meanwhile.
    let replayed = keyed();
    assert_eq!(replayed.status, 201, "{:?}", replayed.body);
    assert_eq!(
        replayed.body["id"], first.body["id"],
        "the key's first outcome"
    );
    let again = create(&a, json!({"id": gone, "title": "back from the dead"}));
    assert_eq!((again.status, again.error_code()), (409, Some("id_taken")));
    let patched = send(
        "PATCH",
        &format!("{a}/api/tasks/{kept}"),
        &[],
        Some(&json!({"title": "kept, renamed"})),
    );
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["title"], "kept, renamed");
    let again = create(&a, json!({"id": kept, "title": "twice"}));
    assert_eq!((again.status, again.error_code()), (409, Some("id_taken")));
    let fresh = "01a21377-127a-70d3-b89d-0000000000ff";
    let created = create(&a, json!({"id": fresh, "title": "fresh"}));
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        send("DELETE", &format!("{a}/api/tasks/{gone}"), &[], None).status,
        404
    );
}

#[test]
fn malformed_input_gets_a_4xx_json_error_and_writes_nothing() {
    let cluster = Cluster::start(3);
    let a = cluster.url(1);
    let before = get(&format!("{a}/api/events?since=0")).body["last_seq"]
        .as_u64()
        .unwrap();
    let bodies = [
        json!({"title": ""}),
        json!({"title": "x", "status": "doing"}),
        json!({"title": "x", "labels": "docs"}),
        json!({"title": "x", "due_date": "2026-02-30"}),
        json!({"title": "x", "unknown": 1}),
        json!([1, 2]),
    ];
    for body in bodies {
        let r = send("POST", &format!("{a}/api/tasks"), &[], Some(&body));
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.error_code().is_some(), "a JSON error body: {:?}", r.body);
    }
    let bad_key = send(
        "POST",
        &format!("{a}/api/tasks"),
        &[("Idempotency-Key", "has space")],
        Some(&json!({"title": "x"})),
    );
    assert_eq!(
        (bad_key.status, bad_key.error_code()),
        (400, Some("validation_failed"))
    );
    let raw = |content_type: &str, body: &str| {
        ureq::post(&format!("{a}/api/tasks"))
            .set("Content-Type", content_type)
            .send_string(body)
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(code, _) => code,
                _ => 0,
            })
    };
    assert_eq!(raw("application/json", "{\"title\": "), 400);
    assert_eq!(raw("text/plain", "{\"title\": \"x\"}"), 415);
    assert_eq!(
        raw(
            "application/json",
            &format!(
                "{{\"title\":\"x\",\"description\":\"{}\"}}",
                "a".repeat(300_000)
            )
        ),
        413
    );
    assert_eq!(get(&format!("{a}/api/tasks?limit=5000")).status, 400);
    assert_eq!(get(&format!("{a}/api/tasks?cursor=garbage")).status, 400);
    assert_eq!(get(&format!("{a}/api/tasks/not-a-uuid")).status, 400);
    assert_eq!(
        send("PUT", &format!("{a}/api/tasks"), &[], None).status,
        405
    );
    let after = get(&format!("{a}/api/events?since=0")).body["last_seq"]
        .as_u64()
        .unwrap();
    assert_eq!(before, after, "no event was written");
}

#[test]
fn the_event_feed_and_the_task_list_are_identical_on_every_node() {
    let cluster = Cluster::start(3);
    let urls = cluster.urls();
    for i in 0..40 {
        let url = &urls[i % 3];
        let id = create(
            url,
            json!({"title": format!("t{i}"), "labels": [format!("l{}", i % 4)]}),
        )
        .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        if i % 3 == 0 {
            send(
                "PATCH",
                &format!("{url}/api/tasks/{id}"),
                &[],
                Some(&json!({"status": "in_progress"})),
            );
        }
        if i % 7 == 0 {
            send("DELETE", &format!("{url}/api/tasks/{id}"), &[], None);
        }
    }
    let feeds: Vec<_> = urls.iter().map(|u| all_events(u)).collect();
    assert!(feeds[0].len() >= 40);
    let seqs: Vec<u64> = feeds[0]
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seq is dense"
    );
    let lists: Vec<_> = urls.iter().map(|u| all_tasks(u, "linearizable")).collect();
    for i in 1..3 {
        assert_eq!(feeds[i], feeds[0], "event feed of node {} differs", i + 1);
        assert_eq!(lists[i], lists[0], "task list of node {} differs", i + 1);
    }
    // Paging gives the same list as one page, in board order.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(&format!("{}/api/tasks?limit=7{cursor}", urls[0]));
        paged.extend(page.body["tasks"].as_array().unwrap().clone());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={}", urlencode(next)),
            None => break,
        }
    }
    assert_eq!(paged, lists[0]);
    let filtered = get(&format!("{}/api/tasks?label=l1&status=todo", urls[2]));
    assert!(filtered.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["labels"][0] == "l1" && t["status"] == "todo"));
}

#[test]
fn a_minority_answers_503_and_never_a_stale_success() {
    let mut cluster = Cluster::start(3);
    let a = cluster.url(1);
    let id = create_titled(&a, "before the split").body["id"]
        .as_str()
        .unwrap()
        .to_string();
    cluster.kill(2);
    cluster.kill(3);
    let started = Instant::now();
    let write = send(
        "PATCH",
        &format!("{a}/api/tasks/{id}"),
        &[],
        Some(&json!({"title": "during"})),
    );
    assert!(
        write.status == 503 || write.status == 504,
        "a lone node must not acknowledge a write: {} {:?}",
        write.status,
        write.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the write failed fast, it did not hang"
    );
    // Once it knows it is alone, it says so at once.
    std::thread::sleep(Duration::from_secs(3));
    let read = get(&format!("{a}/api/tasks/{id}"));
    assert_eq!(
        read.status, 503,
        "a linearizable read on a minority: {:?}",
        read.body
    );
    assert!(read.header("retry-after").is_some());
    let local = get(&format!("{a}/api/tasks/{id}?consistency=local"));
    assert_eq!(
        (local.status, local.body["title"].as_str()),
        (200, Some("before the split"))
    );
    assert_eq!(get(&format!("{a}/readyz")).status, 503);
}

#[test]
fn acknowledged_writes_survive_a_leader_kill_exactly_once() {
    let mut cluster = Cluster::start(3);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(cluster.urls(), 6, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    let leader = cluster.leader(Duration::from_secs(10));
    let killed_at = Instant::now();
    cluster.kill(leader);
    let new_leader = cluster.leader(Duration::from_secs(10));
    assert_ne!(new_leader, leader);
    eprintln!(
        "leader {leader} killed; node {new_leader} leads after {:?}",
        killed_at.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let log = join_writers(writers);
    assert!(
        log.errors.is_empty(),
        "unexpected answers: {:?}",
        log.errors
    );
    assert!(
        log.acked.len() > 50,
        "the clients made progress: {} writes",
        log.acked.len()
    );

    cluster.restart(leader);
    cluster.wait_caught_up(leader, Duration::from_secs(30));
    for url in cluster.urls() {
        assert_writes_present_once(&url, &log);
    }
    let feeds: Vec<_> = cluster.urls().iter().map(|u| all_events(u)).collect();
    assert_eq!(feeds[0], feeds[1]);
    assert_eq!(
        feeds[0], feeds[2],
        "the restarted node holds the same events"
    );
    for id in 1..=3 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "rebuild --check on node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn nothing_acknowledged_is_lost_when_every_node_is_killed_at_once() {
    let mut cluster = Cluster::start(3);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(cluster.urls(), 6, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    for id in 1..=3 {
        cluster.kill(id);
    }
    std::thread::sleep(Duration::from_millis(500));
    for id in 1..=3 {
        cluster.spawn(id);
    }
    for id in 1..=3 {
        cluster.wait_ready(id, Duration::from_secs(60));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let log = join_writers(writers);
    assert!(
        log.errors.is_empty(),
        "unexpected answers: {:?}",
        log.errors
    );
    assert!(
        log.acked.len() > 50,
        "the clients made progress: {} writes",
        log.acked.len()
    );
    for id in 1..=3 {
        cluster.wait_caught_up(id, Duration::from_secs(30));
    }
    for url in cluster.urls() {
        assert_writes_present_once(&url, &log);
    }
    for id in 1..=3 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "rebuild --check on node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn sigterm_hands_leadership_over_and_exits_cleanly() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(10));
    let status = cluster
        .terminate(leader, Duration::from_secs(15))
        .expect("the node exits");
    assert!(status.success(), "exit status {status}");
    let next = cluster.leader(Duration::from_secs(5));
    assert_ne!(next, leader);
    assert_eq!(
        create_titled(&cluster.url(next), "after handover").status,
        201
    );
}

#[test]
fn hostile_text_and_fractional_positions_are_stored_exactly() {
    let cluster = Cluster::start(3);
    let urls = cluster.urls();
    let titles = [
        "it's a \"quoted\" title",
        "back\\slash at the end\\",
        "'); DROP TABLE tasks; --",
        "<img src=x onerror=alert(1)>",
        "emoji 🚀 and ünïcödé 中文",
        "%_ like wildcards _%",
    ];
    let description = "line 1\nline 2\r\n\ttab \u{0} nul \u{1a} sub 'q' \"dq\" \\";
    let positions: [f64; 5] = [
        0.1 + 0.2,
        1.0 / 3.0,
        -2.5e-300,
        999_999_999_999_999.9,
        5e-324,
    ];
    let mut created = Vec::new();
    for (i, title) in titles.iter().enumerate() {
        let body = json!({
            "title": title,
            "description": description,
            "position": positions[i % positions.len()],
            "labels": [format!("l'{i}\\"), "Ops", "ops"],
            "assignee": "O'Brien",
        });
        let r = create(&urls[i % 3], body);
        assert_eq!(r.status, 201, "{title}: {:?}", r.body);
        created.push(r.body);
    }
    for url in &urls {
        for task in &created {
            let id = task["id"].as_str().unwrap();
            let read = get(&format!("{url}/api/tasks/{id}"));
            assert_eq!(&read.body, task, "{url} stores exactly what was created");
            let sent = task["position"].as_f64().unwrap();
            assert!(
                positions.iter().any(|p| p.to_bits() == sent.to_bits()),
                "position {sent} is bit-exact"
            );
        }
    }
    let found = get(&format!("{}/api/tasks?q={}", urls[1], urlencode("%_ like")));
    assert_eq!(
        found.body["tasks"].as_array().unwrap().len(),
        1,
        "% and _ are no wildcards, the word `like` matches one title: {:?}",
        found.body
    );
    let by_label = get(&format!(
        "{}/api/tasks?label={}",
        urls[2],
        urlencode("l'3\\")
    ));
    assert_eq!(by_label.body["tasks"][0]["title"], titles[3]);
    let ops = get(&format!("{}/api/tasks?label=Ops", urls[0]));
    assert_eq!(
        ops.body["tasks"].as_array().unwrap().len(),
        titles.len(),
        "labels differing in case are different labels"
    );
    for id in 1..=3 {
        let check = cluster.rebuild_check(id);
        assert!(
            check.status.success(),
            "node {id}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn a_follower_nobody_waits_on_gathers_entries_and_one_asked_applies_at_once() {
    // A window long enough that the follower's batches show whatever the
    // machine's speed; the default is 5 ms.
    let mut cluster = Cluster::start_with(3, &[("TASKRAFT_APPLY_GATHER_MS", "3000")]);
    let leader = cluster.leader(Duration::from_secs(10));
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (l, f) = (cluster.url(leader), cluster.url(follower));
    let batches = |url: &str| metric(url, "taskraft_apply_batch_entries_count");
    let (leader_before, follower_before) = (batches(&l), batches(&f));

    let started = Instant::now();
    for i in 0..20 {
        create_titled(&l, &format!("gathered {i}")).ok(201);
    }
    let wrote_in = started.elapsed();
    // Its clients wait on the leader: it applies each write as it commits.
    assert!(batches(&l) - leader_before >= 20.0);
    // Nobody waits on the follower: it gathers them, then applies them in
    // few transactions (one if the writes took less than the window).
    let deadline = Instant::now() + Duration::from_secs(20);
    while all_tasks(&f, "local").len() < 20 {
        assert!(Instant::now() < deadline, "the follower never applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    let gathered = batches(&f) - follower_before;
    let most = 1.0 + (wrote_in.as_secs_f64() / 3.0).ceil();
    assert!(
        gathered <= most,
        "{gathered} follower batches for 20 writes made in {wrote_in:?}"
    );

    // A read taken by the follower ends its wait: it is answered long
    // before the window closes, and sees the write just made.
    let id = create_titled(&l, "read at once").body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let asked = Instant::now();
    let read = get(&format!("{f}/api/tasks/{id}"));
    assert_eq!(
        (read.status, read.body["title"].as_str()),
        (200, Some("read at once"))
    );
    assert!(
        asked.elapsed() < Duration::from_millis(2500),
        "the read waited for the gather window: {:?}",
        asked.elapsed()
    );
    // So does a write taken there.
    let asked = Instant::now();
    create_titled(&f, "written at once").ok(201);
    assert!(
        asked.elapsed() < Duration::from_millis(2500),
        "the write waited for the gather window: {:?}",
        asked.elapsed()
    );
}
