//! The live feed over real WebSockets on a real cluster: order, resume,
//! fan-out to many sockets, slow readers.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn hello(feed: &mut Feed) -> u64 {
    let hello = feed.expect();
    assert_eq!(
        hello["type"], "hello",
        "the first message is hello: {hello}"
    );
    assert!(hello["node_id"].as_u64().is_some());
    hello["seq"].as_u64().unwrap()
}

#[test]
fn every_node_pushes_every_committed_event_in_seq_order() {
    let cluster = Cluster::start(3);
    let urls = cluster.urls();
    let mut feeds: Vec<Feed> = urls.iter().map(|u| Feed::connect(u, None)).collect();
    let starts: Vec<u64> = feeds.iter_mut().map(hello).collect();
    for i in 0..30 {
        let url = &urls[i % 3];
        let created = create_titled(url, &format!("live {i}"));
        assert_eq!(created.status, 201);
        if i % 5 == 0 {
            let id = created.body["id"].as_str().unwrap();
            send(
                "PATCH",
                &format!("{url}/api/tasks/{id}"),
                &[],
                Some(&json!({"status": "done"})),
            );
        }
    }
    let streams: Vec<Vec<serde_json::Value>> = feeds.iter_mut().map(|f| f.events(36)).collect();
    for (i, stream) in streams.iter().enumerate() {
        let expected: Vec<u64> = (starts[i] + 1..=starts[i] + 36).collect();
        assert_eq!(
            seqs(stream),
            expected,
            "node {} sends every seq once, in order",
            i + 1
        );
        let event = &stream[0];
        for field in ["seq", "raft_index", "kind", "task_id", "task", "at"] {
            assert!(!event[field].is_null(), "an event carries {field}: {event}");
        }
    }
    assert_eq!(
        streams[0], streams[1],
        "the same events, byte for byte, on every node"
    );
    assert_eq!(streams[0], streams[2]);
    let feed = all_events(&urls[0]);
    let from_table: Vec<u64> = seqs(&feed[feed.len() - 36..]);
    assert_eq!(
        from_table,
        seqs(&streams[0]),
        "what was pushed is what was committed"
    );
}

#[test]
fn the_first_message_is_hello_and_ping_is_answered() {
    let cluster = Cluster::start(3);
    create_titled(&cluster.url(1), "before");
    // The hello carries the node's last applied seq: a linearizable read
    // there first makes sure it has applied the write made on node 1.
    assert_eq!(all_tasks(&cluster.url(2), "linearizable").len(), 1);
    let mut feed = Feed::connect(&cluster.url(2), None);
    let hello = feed.expect();
    assert_eq!(
        (hello["type"].as_str(), hello["node_id"].as_u64()),
        (Some("hello"), Some(2))
    );
    assert!(hello["seq"].as_u64().unwrap() >= 1);
    feed.send_text(r#"{"type":"ping"}"#);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let message = feed.expect();
        if message["type"] == "pong" {
            break;
        }
        assert_eq!(
            message["type"], "cluster",
            "only cluster news may come first: {message}"
        );
        assert!(message["members"].as_array().is_some_and(|m| m.len() == 3));
        assert!(Instant::now() < deadline, "no pong");
    }
}

#[test]
fn a_client_resumes_with_since_without_gap_or_repeat_while_writes_continue() {
    let cluster = Cluster::start(3);
    let urls = cluster.urls();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(urls.clone(), 3, stop.clone());

    let mut received: Vec<serde_json::Value> = Vec::new();
    let mut feed = Feed::connect(&urls[0], Some(0));
    hello(&mut feed);
    for round in 0..6 {
        received.extend(feed.events(15));
        feed.close();
        // Writes go on while the client is away, then it resumes elsewhere.
        std::thread::sleep(Duration::from_millis(300));
        let since = seqs(&received).last().copied().unwrap();
        feed = Feed::connect(&urls[(round + 1) % 3], Some(since));
        hello(&mut feed);
    }
    stop.store(true, Ordering::Relaxed);
    let log = join_writers(writers);
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    let table = all_events(&urls[0]);
    let total = table.len();
    let have = received.len();
    received.extend(feed.events(total - have));
    let got = seqs(&received);
    assert_eq!(
        got,
        (1..=total as u64).collect::<Vec<_>>(),
        "every seq exactly once, in order"
    );
    assert_eq!(
        received
            .iter()
            .map(|e| e["event_id"].clone())
            .collect::<Vec<_>>(),
        table
            .iter()
            .map(|e| e["event_id"].clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn two_hundred_sockets_on_one_node_receive_the_same_sequence() {
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    let mut feeds: Vec<Feed> = (0..200).map(|_| Feed::connect(&url, None)).collect();
    let starts: Vec<u64> = feeds.iter_mut().map(hello).collect();
    assert!(
        starts.iter().all(|s| *s == starts[0]),
        "all joined at the same point"
    );
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let urls = cluster.urls();
            std::thread::spawn(move || {
                for i in 0..25 {
                    assert_eq!(
                        create_titled(&urls[(w + i) % 3], &format!("fan-out {w}-{i}")).status,
                        201
                    );
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let expected: Vec<u64> = (starts[0] + 1..=starts[0] + 100).collect();
    let first = feeds[0].events(100);
    assert_eq!(seqs(&first), expected);
    for (i, feed) in feeds.iter_mut().enumerate().skip(1) {
        assert_eq!(
            feed.events(100),
            first,
            "socket {i} saw a different sequence"
        );
    }
}

#[test]
fn a_client_that_stops_reading_is_told_to_resync_and_memory_stays_bounded() {
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    let pid = cluster.node(1).pid().unwrap();
    let rss = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .to_string();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            / 1024
    };
    let mut stalled = Feed::connect_with_buffer(&url, None, Some(4096));
    hello(&mut stalled);
    let mut live = Feed::connect(&url, None);
    let start = hello(&mut live);
    let before = rss();

    // Large events fill the kernel's buffers quickly; the stalled session's
    // mailbox then fills and the hub lets go of it.
    let description = "x".repeat(19_000);
    let urls = cluster.urls();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let urls = urls.clone();
            let description = description.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    // A burst of large entries in a debug build on a busy
                    // machine can cost an election: retry as a client would.
                    let r = create_with_retries(
                        &urls,
                        w + i,
                        &format!("big-{w}-{i}"),
                        &json!({"title": format!("big {w}-{i}"), "description": description}),
                        Duration::from_secs(30),
                    );
                    assert_eq!(r.status, 201, "{:?}", r.body);
                }
            })
        })
        .collect();
    // The reading client keeps up the whole time.
    let reader = std::thread::spawn(move || live.events(1000));

    // The stalled session's mailbox fills and the hub lets go of it. The
    // stalled client comes back to read as soon as that is visible: a
    // client silent for longer than the node's client timeout is dropped
    // without a word, which is a different case (tests/hostile.rs).
    // However slowly the writes go (a debug build on a busy machine): once
    // all 19 MB are written the mailbox is far past its bound, so the hub
    // must have let go within a few seconds of the last write.
    let mut written_at: Option<Instant> = None;
    loop {
        let metrics = get(&format!("{url}/metrics"));
        let text = metrics.body.as_str().unwrap_or_default();
        if text
            .lines()
            .any(|l| l.starts_with("taskraft_ws_resyncs_total") && !l.ends_with(" 0"))
        {
            break;
        }
        if written_at.is_none() && writers.iter().all(|w| w.is_finished()) {
            written_at = Some(Instant::now());
        }
        assert!(
            written_at.is_none_or(|at| at.elapsed() < Duration::from_secs(20)),
            "the hub never let go of the stalled session"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // When it finally reads: what was queued, then resync, then close 4000.
    stalled.set_timeout(Duration::from_secs(10));
    let mut last = 0;
    loop {
        match stalled.next() {
            FeedItem::Message(m) if m["type"] == "event" => {
                let seq = m["seq"].as_u64().unwrap();
                assert!(
                    last == 0 || seq == last + 1,
                    "no gap before resync: {last} then {seq}"
                );
                last = seq;
            }
            FeedItem::Message(m) if m["type"] == "resync" => break,
            FeedItem::Message(_) => {}
            other => panic!("expected resync, got {other:?} after seq {last}"),
        }
    }
    assert!(
        last < start + 1000,
        "the stalled client did not get everything: {last}"
    );
    assert!(
        matches!(stalled.next(), FeedItem::Closed(Some(4000))),
        "closed with the resync code"
    );

    let events = reader.join().unwrap();
    assert_eq!(
        seqs(&events),
        (start + 1..=start + 1000).collect::<Vec<_>>()
    );
    for writer in writers {
        writer.join().unwrap();
    }
    // 19 MB of descriptions went by. The node keeps recent copies on
    // purpose, each capped in bytes: the rows (projection cache), the frames
    // for sessions that resume, the Raft log's tail and the outcomes of
    // recent idempotency keys — about 85 MiB here (measured: 44 → 133 MiB
    // without idempotency keys, 44 → 141 with them). A session that kept
    // its own copy of what it could not send would add more with every
    // event, and a run of 250 writes per writer would not stay under this.
    let after = rss();
    eprintln!("node 1 RSS: {before} MiB before, {after} MiB after");
    assert!(
        after < before + 130,
        "node RSS grew from {before} MiB to {after} MiB"
    );
}

#[test]
fn a_since_older_than_the_backlog_gets_resync_and_a_recent_one_does_not() {
    let cluster = Cluster::start_with(3, &[("TASKRAFT_WS_BACKLOG", "20")]);
    let url = cluster.url(1);
    for i in 0..30 {
        assert_eq!(create_titled(&url, &format!("t{i}")).status, 201);
    }
    let mut recent = Feed::connect(&url, Some(15));
    hello(&mut recent);
    assert_eq!(seqs(&recent.events(15)), (16..=30).collect::<Vec<_>>());

    let mut old = Feed::connect(&url, Some(5));
    assert_eq!(old.expect()["type"], "hello");
    loop {
        match old.next() {
            FeedItem::Message(m) if m["type"] == "cluster" => continue,
            FeedItem::Message(m) => {
                assert_eq!(m["type"], "resync", "seq 6 is no longer in memory: {m}");
                break;
            }
            other => panic!("expected resync, got {other:?}"),
        }
    }
    assert!(matches!(old.next(), FeedItem::Closed(Some(4000))));
}
