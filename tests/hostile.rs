//! A hostile network against real nodes: each attack of the security
//! review, its exact refusal, and the node's resident memory (read from
//! `/proc`) staying flat while it lasts. Peak RSS before and after the fix,
//! over longer attacks, is measured by `scripts/attack-rss` (README).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use taskraft::transport::codec::{self, Frame, Hello, Wire};

/// Growth of a node's RSS an attack may cause (MiB): the attacks below
/// would cost hundreds of MiB to gigabytes if what they declare were
/// allocated.
const RSS_SLACK_MIB: u64 = 40;

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads whatever arrives within `wait`; stops at the end of the stream.
fn drain(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

/// Whether the peer has closed the connection (without waiting).
fn is_closed(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// The close code of the first close frame the server sent, if any.
fn close_code(server_bytes: &[u8]) -> Option<u16> {
    let mut at = 0;
    while at + 2 <= server_bytes.len() {
        let opcode = server_bytes[at] & 0x0f;
        let (len, head) = match server_bytes[at + 1] & 0x7f {
            126 => (
                u16::from_be_bytes([*server_bytes.get(at + 2)?, *server_bytes.get(at + 3)?])
                    as usize,
                4,
            ),
            127 => return None,
            n => (n as usize, 2),
        };
        let payload = server_bytes.get(at + head..at + head + len)?;
        if opcode == 0x8 {
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        at += head + len;
    }
    None
}

fn websocket(url: &str, query: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr(url)).unwrap();
    write!(
        stream,
        "GET /ws{query} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        addr(url)
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

#[test]
fn a_websocket_frame_declaring_2_62_bytes_is_refused_at_its_header() {
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    let pid = cluster.node(1).pid().unwrap();
    let before = rss_mib(pid);
    let watch = PeakRss::watch(pid);

    // The review's repro: 82 FF 40 00 00 00 00 00 00 00 + mask, then bytes.
    let mut socket = websocket(&url, "");
    socket
        .write_all(&[0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        .unwrap();
    let started = Instant::now();
    let chunk = vec![0u8; 64 << 10];
    let mut sent = 0usize;
    let mut cut_off = None;
    socket
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut from_server = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        // A gigabyte at full speed, then a trickle until the node lets go.
        let piece = if sent < (1 << 30) {
            &chunk[..]
        } else {
            std::thread::sleep(Duration::from_millis(10));
            &chunk[..1024]
        };
        match socket.write(piece) {
            Ok(n) => sent += n,
            Err(_) => {
                cut_off = Some(started.elapsed());
                break;
            }
        }
        // Keep what the server says (its close frame) before it resets us.
        socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.read(&mut buf) {
            if n == 0 {
                break;
            }
            from_server.extend_from_slice(&buf[..n]);
        }
        socket.set_nonblocking(false).unwrap();
    }
    let peak = watch.peak();
    drop(watch);
    assert_eq!(
        close_code(&from_server),
        Some(1009),
        "closed with 1009 (too big); the server sent {} bytes",
        from_server.len()
    );
    // The session ends at the header; the connection lingers a second
    // (reading and discarding), then is shut.
    assert!(
        cut_off.is_some_and(|t| t < Duration::from_secs(4)),
        "the node went on reading: {} MiB over {:?}",
        sent >> 20,
        started.elapsed()
    );
    assert!(
        peak < before + RSS_SLACK_MIB,
        "RSS {before} -> peak {peak} MiB while {} MiB were streamed",
        sent >> 20
    );

    // A message is bounded too, across its continuation frames.
    let mut socket = websocket(&url, "");
    let mut fragments = Vec::new();
    for (i, opcode) in [0x1u8, 0x0, 0x0].iter().enumerate() {
        let fin = if i == 2 { 0x80 } else { 0 };
        fragments.extend_from_slice(&[fin | opcode, 0x80 | 126]);
        fragments.extend_from_slice(&30_000u16.to_be_bytes());
        fragments.extend_from_slice(&[9, 9, 9, 9]);
        fragments.extend(std::iter::repeat_n(b' ' ^ 9, 30_000));
    }
    let _ = socket.write_all(&fragments);
    let (from_server, _) = drain(&mut socket, Duration::from_secs(2));
    assert_eq!(close_code(&from_server), Some(1009), "a 90 KB message");
    assert!(
        metric(
            &url,
            "taskraft_ws_frames_refused_total{reason=\"frame_too_large\"}"
        ) >= 1.0
            && metric(
                &url,
                "taskraft_ws_frames_refused_total{reason=\"message_too_large\"}"
            ) >= 1.0
    );
}

#[test]
fn a_websocket_client_that_neither_reads_nor_pongs_is_dropped() {
    let cluster = Cluster::start(1);
    let url = cluster.url(1);
    let mut socket = websocket(&url, "");
    let opened = Instant::now();
    // Say nothing, read nothing (the kernel buffers the pings), then look.
    std::thread::sleep(Duration::from_secs(12));
    let (from_server, closed) = drain(&mut socket, Duration::from_secs(4));
    assert!(
        closed,
        "still open {:?} after the upgrade ({} bytes waiting)",
        opened.elapsed(),
        from_server.len()
    );
    assert_eq!(metric(&url, "taskraft_ws_sessions"), 0.0);
}

#[test]
fn a_websocket_since_beyond_the_last_event_gets_resync_not_silence() {
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    assert_eq!(create_titled(&url, "one").status, 201);
    let mut feed = Feed::connect(&url, Some(1_000_000));
    assert_eq!(feed.expect()["type"], "hello");
    feed.set_timeout(Duration::from_secs(6));
    loop {
        match feed.next() {
            FeedItem::Message(m) if m["type"] == "cluster" => continue,
            FeedItem::Message(m) => {
                assert_eq!(m["type"], "resync", "{m}");
                break;
            }
            other => panic!("expected resync, got {other:?}"),
        }
    }
    assert!(matches!(feed.next(), FeedItem::Closed(Some(4000))));

    // A client a little ahead (it saw a node further along) is not sent
    // away: the events it waits for arrive, then the stream goes on.
    let last = get(&format!("{url}/api/tasks?limit=1")).body["last_seq"]
        .as_u64()
        .unwrap();
    let mut ahead = Feed::connect(&url, Some(last + 1));
    assert_eq!(ahead.expect()["type"], "hello");
    assert_eq!(create_titled(&cluster.url(2), "two").status, 201);
    assert_eq!(create_titled(&cluster.url(2), "three").status, 201);
    assert_eq!(seqs(&ahead.events(1)), vec![last + 2]);
}

/// One Raft connection: connects and reads the challenge (`None` when the
/// node closed it before sending one: refused at accept).
fn raft_connect(raft: &str) -> Option<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(raft).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut challenge = vec![0u8; len - 1];
    stream.read_exact(&mut challenge).ok()?;
    Some((stream, challenge))
}

#[test]
fn the_raft_port_allocates_nothing_before_a_hello_and_caps_connections() {
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    let raft = format!("127.0.0.1:{}", cluster.node(1).raft_port);
    let pid = cluster.node(1).pid().unwrap();
    let before = rss_mib(pid);
    let watch = PeakRss::watch(pid);

    // 200 connections at once, each then declaring a 64 MiB frame before
    // any hello.
    let mut challenged = Vec::new();
    let mut refused_at_accept = 0;
    for _ in 0..200 {
        match raft_connect(&raft) {
            Some((stream, _)) => challenged.push(stream),
            None => refused_at_accept += 1,
        }
    }
    for stream in &mut challenged {
        let _ = stream.write_all(&[0x04, 0x00, 0x00, 0x00, 0x01]);
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    for stream in &mut challenged {
        assert!(
            is_closed(stream) || drain(stream, Duration::from_secs(2)).1,
            "a 64 MiB header before the hello is refused at once"
        );
    }
    let took = started.elapsed();
    let peak = watch.peak();
    drop(watch);
    assert!(
        peak < before + RSS_SLACK_MIB,
        "RSS {before} -> peak {peak} MiB under 200 pre-auth 64 MiB headers"
    );
    assert!(took < Duration::from_secs(3), "closed within {took:?}");
    assert!(
        challenged.len() <= taskraft::transport::MAX_CONNECTIONS_PER_ADDRESS,
        "{} connections from one address got a challenge",
        challenged.len()
    );
    assert!(refused_at_accept >= 200 - taskraft::transport::MAX_CONNECTIONS_PER_ADDRESS);
    assert!(
        metric(
            &url,
            "taskraft_connections_refused_total{listener=\"raft\",reason=\"address_limit\"}"
        ) >= refused_at_accept as f64,
        "the excess is counted"
    );
    assert!(
        metric(
            &url,
            "taskraft_connections_refused_total{listener=\"raft\",reason=\"frame_too_large\"}"
        ) >= challenged.len() as f64
    );
    drop(challenged);
    // The cluster carries on.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(create_titled(&url, "after the flood").status, 201);
}

const OTHER_CLUSTER: &str = "0123456789abcdef0123456789abcdef.0011223344556677";

#[test]
fn forged_hellos_are_refused_and_an_authentic_one_may_only_name_a_valid_url() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(10));
    let target = (1..=3).find(|&n| n != leader).unwrap();
    let url = cluster.url(target);
    let raft = format!("127.0.0.1:{}", cluster.node(target).raft_port);
    let view = get(&format!("{url}/api/cluster")).body;
    let cluster_id = view["cluster_id"].as_str().unwrap().to_string();
    let term = view["term"].as_u64().unwrap();
    assert!(cluster_id.contains('.'), "a random part: {cluster_id}");
    let secret = cluster.secret();

    let hello_frame = |hello: Hello| {
        let mut out = Vec::new();
        codec::encode(&Frame::Hello(hello), &mut out, Wire::V1);
        out
    };
    let mut timeout_now = raft::eraftpb::Message::default();
    timeout_now.set_msg_type(raft::eraftpb::MessageType::MsgTimeoutNow);
    timeout_now.from = leader;
    timeout_now.to = target;
    timeout_now.term = term;
    let mut forged_step = Vec::new();
    codec::encode(&Frame::Raft(timeout_now.into()), &mut forged_step, Wire::V1);

    // Without a cluster id; with another cluster's id (and the right
    // secret); with no proof; with a proof under another secret.
    type MakeHello<'a> = Box<dyn Fn(&[u8]) -> Hello + 'a>;
    let cases: Vec<(&str, MakeHello)> = vec![
        (
            "no cluster id",
            Box::new(|c: &[u8]| Hello {
                node_id: leader,
                url: "http://127.0.0.1:9/evil".into(),
                cluster_id: None,
                proof: Some(peer_proof(&secret, c, leader, "")),
                wire: None,
                version: None,
            }),
        ),
        (
            "another cluster",
            Box::new(|c: &[u8]| Hello {
                node_id: leader,
                url: "http://127.0.0.1:9/evil".into(),
                cluster_id: Some(OTHER_CLUSTER.into()),
                proof: Some(peer_proof(&secret, c, leader, OTHER_CLUSTER)),
                wire: None,
                version: None,
            }),
        ),
        (
            "no proof",
            Box::new(|_: &[u8]| Hello {
                node_id: leader,
                url: "http://127.0.0.1:9/evil".into(),
                cluster_id: Some(cluster_id.clone()),
                proof: None,
                wire: None,
                version: None,
            }),
        ),
        (
            "a wrong secret",
            Box::new(|c: &[u8]| Hello {
                node_id: leader,
                url: "http://127.0.0.1:9/evil".into(),
                cluster_id: Some(cluster_id.clone()),
                proof: Some(peer_proof("a guess at the secret", c, leader, &cluster_id)),
                wire: None,
                version: None,
            }),
        ),
    ];
    for (what, make) in &cases {
        for _ in 0..10 {
            let (mut stream, challenge) = raft_connect(&raft).expect("a challenge");
            stream.write_all(&hello_frame(make(&challenge))).unwrap();
            let _ = stream.write_all(&forged_step);
            let (_, closed) = drain(&mut stream, Duration::from_secs(2));
            assert!(closed, "{what}: the node closes the connection");
        }
    }
    // An authentic hello whose URL is not one: refused too.
    let (mut stream, challenge) = raft_connect(&raft).unwrap();
    let long = format!("http://{}", "a".repeat(1 << 20));
    let _ = stream.write_all(&hello_frame(Hello {
        node_id: leader,
        url: long,
        cluster_id: Some(cluster_id.clone()),
        proof: Some(peer_proof(&secret, &challenge, leader, &cluster_id)),
        wire: None,
        version: None,
    }));
    assert!(
        drain(&mut stream, Duration::from_secs(2)).1,
        "a 1 MB hello is refused at its header"
    );
    let (mut stream, challenge) = raft_connect(&raft).unwrap();
    stream
        .write_all(&hello_frame(Hello {
            node_id: leader,
            url: "javascript:alert(1)".into(),
            cluster_id: Some(cluster_id.clone()),
            proof: Some(peer_proof(&secret, &challenge, leader, &cluster_id)),
            wire: None,
            version: None,
        }))
        .unwrap();
    assert!(
        drain(&mut stream, Duration::from_secs(2)).1,
        "a non-http URL is refused"
    );
    // Positive control: the same hello with the leader's real URL is let in.
    let (mut stream, challenge) = raft_connect(&raft).unwrap();
    stream
        .write_all(&hello_frame(Hello {
            node_id: leader,
            url: cluster.url(leader),
            cluster_id: Some(cluster_id.clone()),
            proof: Some(peer_proof(&secret, &challenge, leader, &cluster_id)),
            wire: None,
            version: None,
        }))
        .unwrap();
    assert!(
        !drain(&mut stream, Duration::from_secs(1)).1,
        "an authentic hello is kept"
    );
    drop(stream);

    std::thread::sleep(Duration::from_secs(1));
    for n in 1..=3 {
        let view = get(&format!("{}/api/cluster", cluster.url(n))).body;
        assert_eq!(
            view["term"].as_u64(),
            Some(term),
            "no forged election on {n}: {view}"
        );
        assert_eq!(view["leader_id"].as_u64(), Some(leader));
        for member in view["members"].as_array().unwrap() {
            let shown = member["url"].as_str().unwrap_or_default();
            assert!(shown.len() < 100 && !shown.contains("evil"), "{shown:.80}");
        }
    }
    for reason in ["no_cluster_id", "wrong_cluster", "no_proof", "bad_proof"] {
        let sample =
            format!("taskraft_connections_refused_total{{listener=\"raft\",reason=\"{reason}\"}}");
        assert!(metric(&url, &sample) >= 10.0, "{sample}");
    }
    // Forty refusals from one address in a few seconds: a line per reason.
    let log = std::fs::read_to_string(&cluster.node(target).log).unwrap();
    let lines = log
        .lines()
        .filter(|l| l.contains("refused a peer connection"))
        .count();
    assert!(lines <= 8, "{lines} ERROR lines for 42 refused hellos");
}

/// Sends an HTTP request head (and maybe part of a body); returns the socket.
fn raw_http(url: &str, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr(url)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn slow_idle_and_oversized_http_clients_are_answered_and_let_go() {
    let cluster = Cluster::start(3);
    let url = cluster.url(1);
    let pid = cluster.node(1).pid().unwrap();
    let before = rss_mib(pid);
    let watch = PeakRss::watch(pid);

    // A declared length far beyond the limit, and no body: 413 at once.
    let started = Instant::now();
    let mut big = raw_http(
        &url,
        "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 99999999999\r\n\r\n{\"title\":\"x\"}",
    );
    let (answer, _) = drain(&mut big, Duration::from_secs(3));
    assert_eq!(
        status_of(&answer),
        Some(413),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // 500 connections that say nothing, 50 bodies at a byte a second.
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(addr(&url)).unwrap())
        .collect();
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            raw_http(
                &url,
                "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: 200000\r\n\r\n",
            )
        })
        .collect();
    let mut answers: Vec<Vec<u8>> = vec![Vec::new(); slow.len()];
    let started = Instant::now();
    let give_up = taskraft::api::BODY_TIMEOUT + Duration::from_secs(4);
    while started.elapsed() < give_up && answers.iter().any(Vec::is_empty) {
        for (stream, answer) in slow.iter_mut().zip(&mut answers) {
            if answer.is_empty() {
                let _ = stream.write_all(b" ");
                stream.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 1024];
                if let Ok(n) = stream.read(&mut buf) {
                    answer.extend_from_slice(&buf[..n]);
                }
                stream.set_nonblocking(false).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = started.elapsed();
    for answer in &answers {
        assert_eq!(
            status_of(answer),
            Some(408),
            "a body trickling in is cut off: {}",
            String::from_utf8_lossy(answer)
        );
    }
    assert!(took < give_up, "all 50 answered within {took:?}");
    for mut stream in idle {
        assert!(
            is_closed(&mut stream),
            "an idle connection is closed after the header timeout"
        );
    }
    let peak = watch.peak();
    drop(watch);
    assert!(
        peak < before + RSS_SLACK_MIB,
        "RSS {before} -> peak {peak} MiB"
    );
    assert_eq!(create_titled(&url, "still serving").status, 201);
}

#[test]
fn http_connections_over_the_per_address_cap_are_refused_early_and_counted() {
    let cluster = Cluster::start_with(1, &[("TASKRAFT_MAX_CONNECTIONS_PER_ADDRESS", "40")]);
    let url = cluster.url(1);
    let mut held: Vec<TcpStream> = (0..70)
        .map(|_| TcpStream::connect(addr(&url)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let closed_at_once = held.iter_mut().map(is_closed).filter(|c| *c).count();
    assert!(
        closed_at_once >= 30,
        "{closed_at_once} of 70 closed at once"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        metric(
            &url,
            "taskraft_connections_refused_total{listener=\"http\",reason=\"address_limit\"}"
        ) >= 30.0
    );
}

#[test]
fn credentials_come_before_the_body_and_bodies_are_strict() {
    let cluster = Cluster::start_with(1, &[("TASKRAFT_API_TOKEN", "the-token-of-this-test")]);
    let url = cluster.url(1);
    let tasks = format!("{url}/api/tasks");
    let auth = ("Authorization", "Bearer the-token-of-this-test");
    let raw = |headers: &[(&str, &str)], body: &str| {
        let mut request = ureq::post(&tasks);
        for (k, v) in headers {
            request = request.set(k, v);
        }
        match request.send_string(body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    let json = ("Content-Type", "application/json");
    assert_eq!(raw(&[json], "{"), 401, "no token: 401 whatever the body");
    assert_eq!(raw(&[("Content-Type", "text/plain")], "x"), 401);
    assert_eq!(raw(&[json, auth], "{"), 400);
    assert_eq!(
        raw(&[json, auth], r#"["arr patched"]"#),
        400,
        "an array is not an object"
    );
    assert_eq!(
        raw(&[json, auth], r#"{"title":"a","title":"b"}"#),
        400,
        "a key twice"
    );
    assert_eq!(
        raw(
            &[json, auth, ("Content-Encoding", "gzip")],
            r#"{"title":"ct"}"#
        ),
        415,
        "a coded body"
    );
    assert_eq!(raw(&[json, auth], r#"{"title":"fine"}"#), 201);
    let members = send(
        "POST",
        &format!("{url}/api/cluster/members"),
        &[auth],
        Some(&json!([9, null, null, "voter"])),
    );
    assert_eq!(members.status, 400, "{:?}", members.body);

    // Peers only, and only with the secret, whatever the headers claim.
    let catchup = send(
        "GET",
        &format!("{url}/internal/catchup?after_index=0&after_seq=0&upto=5"),
        &[("x-taskraft-node", "2"), ("x-taskraft-cluster", "")],
        None,
    );
    assert_eq!(
        (catchup.status, catchup.error_code()),
        (403, Some("peer_refused"))
    );
}

#[test]
fn the_assignee_filter_finds_exactly_the_name_given() {
    let cluster = Cluster::start(1);
    let url = cluster.url(1);
    for (title, who) in [("a", "😀"), ("b", "😺"), ("c", "Alice"), ("d", "ALICE")] {
        assert_eq!(
            create(&url, json!({"title": title, "assignee": who})).status,
            201
        );
    }
    let titles = |who: &str| -> Vec<String> {
        let mut t: Vec<String> = get(&format!("{url}/api/tasks?assignee={}", urlencode(who))).body
            ["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    assert_eq!(titles("😀"), vec!["a"]);
    assert_eq!(titles("😺"), vec!["b"]);
    assert_eq!(titles("Alice"), vec!["c"]);
}

#[test]
fn pages_of_other_origins_may_not_drive_the_cluster() {
    let cluster = Cluster::start_with(3, &[("TASKRAFT_CORS_ORIGINS", "https://board.example.com")]);
    let url = cluster.url(1);
    let evil = ("Origin", "http://evil.example");
    let preflight = send(
        "OPTIONS",
        &format!("{url}/api/cluster/members/3"),
        &[evil, ("Access-Control-Request-Method", "DELETE")],
        None,
    );
    assert_eq!(
        (preflight.status, preflight.error_code()),
        (403, Some("origin_not_allowed"))
    );
    assert_eq!(preflight.header("Access-Control-Allow-Origin"), None);
    let removed = send(
        "DELETE",
        &format!("{url}/api/cluster/members/3"),
        &[evil],
        None,
    );
    assert_eq!(removed.status, 403);
    let moved = send(
        "POST",
        &format!("{url}/api/cluster/leader"),
        &[evil],
        Some(&json!({"to": 2})),
    );
    assert_eq!(moved.status, 403);
    let read = send("GET", &format!("{url}/api/cluster"), &[evil], None);
    assert_eq!(read.status, 200);
    assert_eq!(
        read.header("Access-Control-Allow-Origin"),
        None,
        "a foreign page cannot read it"
    );
    assert_eq!(
        cluster.wait_membership(1, &[1, 2, 3], &[], Duration::from_secs(2))["members"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Another member's board, and a listed origin: allowed, by name.
    let member = cluster.url(2);
    for origin in [member.as_str(), "https://board.example.com"] {
        let ok = send(
            "OPTIONS",
            &format!("{url}/api/tasks"),
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
            ],
            None,
        );
        assert_eq!(ok.status, 204, "{origin}");
        assert_eq!(ok.header("Access-Control-Allow-Origin"), Some(origin));
        // The board fails over with its session cookie and CSRF header.
        assert_eq!(ok.header("Access-Control-Allow-Credentials"), Some("true"));
        assert!(
            ok.header("Access-Control-Allow-Headers")
                .is_some_and(|h| h.contains("X-Taskraft-CSRF")),
            "{:?}",
            ok.header("Access-Control-Allow-Headers")
        );
    }
    let created = send(
        "POST",
        &format!("{url}/api/tasks"),
        &[("Origin", member.as_str())],
        Some(&json!({"title": "from node 2's board"})),
    );
    assert_eq!(created.status, 201);
    assert_eq!(
        created.header("Access-Control-Allow-Origin"),
        Some(member.as_str())
    );
    assert_eq!(
        created.header("Access-Control-Allow-Credentials"),
        Some("true")
    );
}
