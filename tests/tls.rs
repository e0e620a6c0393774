//! Encrypted transport on real nodes: HTTP and the WebSocket over TLS,
//! mutual TLS between peers (a cluster CA; a peer's certificate names its
//! node), certificates replaced without a restart, and `cluster_secret`
//! rotated across a rolling restart with writes going on.
//!
//! Certificates are made here (`testbed::certs`, with rcgen).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};
use testbed::certs::{Ca, Leaf};

fn refused(url: &str, reason: &str) -> f64 {
    metric(
        url,
        &format!("taskraft_connections_refused_total{{listener=\"raft\",reason=\"{reason}\"}}"),
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    roots
}

/// A client trusting `ca_pem`, presenting `leaf` if given.
fn client(ca_pem: &str, leaf: Option<&Leaf>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(ca_pem));
    Arc::new(match leaf {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
    })
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `addr`, checking the server's certificate for
/// `name`; the handshake completed.
fn dial(addr: &str, name: &str, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    let connection = ClientConnection::new(config, name).unwrap();
    let mut tls = StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Dials a node's Raft port as a peer would: whether the node speaks to
/// us (sends its challenge) once the handshake is through.
fn raft_answers(addr: &str, node: u64, config: Arc<ClientConfig>) -> bool {
    let Ok(mut tls) = dial(addr, &format!("node-{node}"), config) else {
        return false;
    };
    let mut first = [0u8; 8];
    matches!(tls.read(&mut first), Ok(n) if n > 0)
}

/// The certificate a node's listener at `addr` presents now, through a
/// new handshake.
fn presented(addr: &str, name: &str, config: Arc<ClientConfig>) -> CertificateDer<'static> {
    let tls = dial(addr, name, config).expect("a handshake");
    tls.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn der(leaf: &Leaf) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()
}

/// The `/ws` feed over wss, trusting `ca_pem`.
fn wss(url: &str, ca_pem: &str) -> tungstenite::WebSocket<Tls> {
    let authority = url.trim_start_matches("https://");
    let host = authority.rsplit_once(':').unwrap().0;
    let tls = dial(authority, host, client(ca_pem, None)).expect("TLS to the node");
    let (socket, _) =
        tungstenite::client(format!("wss://{authority}/ws"), tls).expect("websocket handshake");
    socket
}

fn next_event(socket: &mut tungstenite::WebSocket<Tls>) -> Value {
    loop {
        match socket.read().expect("a message on the feed") {
            tungstenite::Message::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                if message["type"] == "event" {
                    return message;
                }
            }
            _ => continue,
        }
    }
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One cluster, three nodes with TLS on HTTP and between peers: writes and
/// the feed work over https and wss, a node joins over https, strangers on
/// the Raft port are refused, and certificates are replaced in place.
#[test]
fn a_tls_cluster_serves_refuses_strangers_and_takes_new_certificates_without_a_restart() {
    // A short log, so that a joining node catches up from a snapshot and
    // copies rows from a peer over https (`/internal/catchup`).
    let short_log = [
        ("TASKRAFT_SNAPSHOT_COUNT", "10"),
        ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "2"),
    ];
    let mut cluster = Cluster::start_after(3, &short_log, &[], |c| c.enable_tls());
    let ca_pem = cluster.tls_ca().unwrap().pem();
    let urls = cluster.urls();
    for url in &urls {
        assert!(url.starts_with("https://"), "{url}");
    }
    // The members advertise https (the default under TLS).
    let view = get(&format!("{}/api/cluster", urls[0])).body;
    for member in view["members"].as_array().expect("members") {
        let url = member["url"].as_str().unwrap_or_default();
        assert!(url.starts_with("https://"), "{member}");
    }

    // Writes on every node (followers forward), the feed over wss.
    let mut feed = wss(&urls[1], &ca_pem);
    for (i, url) in urls.iter().enumerate() {
        let r = create_titled(url, &format!("over tls {i}"));
        assert_eq!(r.status, 201, "{url}: {:?}", r.body);
    }
    let titles: Vec<String> = (0..3).map(|_| next_event(&mut feed).to_string()).collect();
    for i in 0..3 {
        assert!(
            titles.iter().any(|t| t.contains(&format!("over tls {i}"))),
            "{titles:?}"
        );
    }
    // Plain http on the https port gets no answer.
    let plain = urls[0].replace("https://", "http://");
    assert_eq!(get(&format!("{plain}/readyz")).status, 0);

    for i in 0..30 {
        let r = create_titled(&urls[i % 3], &format!("before the join {i}"));
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    wait_until(
        "every node compacted its log",
        Duration::from_secs(30),
        || {
            urls.iter().all(|url| {
                get(&format!("{url}/api/cluster")).body["first_index"]
                    .as_u64()
                    .unwrap_or(0)
                    > 10
            })
        },
    );
    // A fourth node joins over https (the node's own client, trusting the
    // cluster CA), gets a snapshot over mutual TLS and copies the rows over
    // https.
    let four = cluster.add_joining_node();
    cluster.wait_caught_up(four, Duration::from_secs(60));
    let url4 = cluster.url(four);
    assert!(metric(&url4, "taskraft_raft_snapshots_installed_total") >= 1.0);
    assert!(metric(&url4, "taskraft_catchup_pages_total") >= 1.0);
    let tasks = all_tasks(&url4, "local");
    assert_eq!(tasks.len(), 33, "every task on the new node");

    // `taskraft status` over https, trusting the CA given to it.
    let status = std::process::Command::new(BIN)
        .args(["status", "--url", &urls[0]])
        .env(
            "TASKRAFT_PEER_TLS_CA_FILE",
            cluster.tls_dir().join("ca.crt"),
        )
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let without_ca = std::process::Command::new(BIN)
        .args(["status", "--url", &urls[0]])
        .env_remove("TASKRAFT_PEER_TLS_CA_FILE")
        .output()
        .unwrap();
    assert!(
        !without_ca.status.success(),
        "the test CA is no public root"
    );

    // Strangers on node 1's Raft port.
    let raft1 = cluster.node(1).raft_addr();
    let ours = cluster.tls_ca().unwrap();
    let member = ours.leaf(&["node-9"], 900, 2099);
    assert!(
        raft_answers(&raft1, 1, client(&ca_pem, Some(&member))),
        "a certificate from the cluster CA gets the challenge"
    );
    let (bad_cert, no_cert, handshake) = (
        refused(&urls[0], "bad_cert"),
        refused(&urls[0], "no_client_cert"),
        refused(&urls[0], "tls_handshake"),
    );
    let elsewhere = Ca::new("another CA");
    let stranger = elsewhere.leaf(&["node-2"], 901, 2099);
    assert!(
        !raft_answers(&raft1, 1, client(&ca_pem, Some(&stranger))),
        "a certificate from another CA is refused"
    );
    assert!(
        !raft_answers(&raft1, 1, client(&ca_pem, None)),
        "no certificate is refused"
    );
    let mut tcp = TcpStream::connect(&raft1).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(&[0u8; 64]).unwrap();
    let mut buf = [0u8; 64];
    let answered = tcp.read(&mut buf).unwrap_or(0);
    assert!(
        answered == 0 || buf[0] == 0x15,
        "plain TCP gets no challenge, at most a TLS alert: {:?}",
        &buf[..answered]
    );
    wait_until("the refusals are counted", Duration::from_secs(5), || {
        refused(&urls[0], "bad_cert") >= bad_cert + 1.0
            && refused(&urls[0], "no_client_cert") >= no_cert + 1.0
            && refused(&urls[0], "tls_handshake") >= handshake + 1.0
    });

    // A node restarted with another member's certificate: the CA issued
    // it, but it names node 2, so node 1 refuses node 3's links.
    let cert_name = refused(&urls[0], "cert_name");
    let dir = cluster.tls_dir();
    cluster.terminate(3, Duration::from_secs(10));
    for key in ["TASKRAFT_PEER_TLS_CERT_FILE", "TASKRAFT_PEER_TLS_KEY_FILE"] {
        let file = if key.ends_with("CERT_FILE") {
            "n2.crt"
        } else {
            "n2.key"
        };
        cluster.set_env(3, key, &dir.join(file).to_string_lossy());
    }
    cluster.spawn(3);
    wait_until(
        "node 3's links are refused by name",
        Duration::from_secs(20),
        || refused(&urls[0], "cert_name") > cert_name,
    );
    // Back with its own certificate, it serves again.
    cluster.terminate(3, Duration::from_secs(10));
    for (key, file) in [
        ("TASKRAFT_PEER_TLS_CERT_FILE", "n3.crt"),
        ("TASKRAFT_PEER_TLS_KEY_FILE", "n3.key"),
    ] {
        cluster.set_env(3, key, &dir.join(file).to_string_lossy());
    }
    cluster.restart(3);
    cluster.wait_caught_up(3, Duration::from_secs(60));

    // Rotation: node 1's files replaced in place. New handshakes, on the
    // HTTP port and the Raft port, see the new certificate; nothing
    // restarted, and the cluster keeps writing.
    let pid = cluster.node(1).pid();
    let http1 = cluster.node(1).http_addr();
    let before = presented(&http1, "127.0.0.1", client(&ca_pem, None));
    let renewed = cluster
        .tls_ca()
        .unwrap()
        .leaf(&["node-1", "127.0.0.1", "localhost"], 1001, 2098);
    assert_ne!(der(&renewed), before);
    renewed.write(&dir.join("n1.crt"), &dir.join("n1.key"));
    wait_until(
        "HTTPS presents the new certificate",
        Duration::from_secs(5),
        || presented(&http1, "127.0.0.1", client(&ca_pem, None)) == der(&renewed),
    );
    wait_until(
        "the Raft port presents it too",
        Duration::from_secs(5),
        || presented(&raft1, "node-1", client(&ca_pem, Some(&member))) == der(&renewed),
    );
    assert_eq!(cluster.node(1).pid(), pid, "no restart");
    // Peers dial node 1 anew with it (node 2 restarted) and writes go on.
    cluster.terminate(2, Duration::from_secs(10));
    cluster.restart(2);
    for url in &urls {
        let r = create_titled(url, "after rotation");
        assert_eq!(r.status, 201, "{url}: {:?}", r.body);
    }
    cluster.wait_caught_up(2, Duration::from_secs(60));
}

/// `cluster_secret` rotated on three nodes by rolling restarts, in the
/// three steps the README gives (accept the new one, prove with it, drop
/// the old one), while a client keeps writing: no write fails, none waits
/// long, and no peer is ever refused its proof.
#[test]
fn cluster_secret_rotates_across_a_rolling_restart_without_unavailability() {
    let old = testbed::new_secret();
    let new = testbed::new_secret();
    let mut cluster = Cluster::start_with(3, &[("TASKRAFT_CLUSTER_SECRET", &old)]);
    let urls = cluster.urls();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (urls, stop) = (urls.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut longest = Duration::ZERO;
            let mut failures = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (title, key) = (format!("rotation {i}"), format!("rotation-{i}"));
                let started = Instant::now();
                let mut attempt = 0;
                loop {
                    let url = &urls[attempt % urls.len()];
                    let r = send(
                        "POST",
                        &format!("{url}/api/tasks"),
                        &[("Idempotency-Key", &key)],
                        Some(&json!({ "title": title })),
                    );
                    match r.status {
                        201 => {
                            acked.push(title.clone());
                            break;
                        }
                        0 | 503 | 504 if started.elapsed() < Duration::from_secs(30) => {
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        other => {
                            failures.push(format!("{title}: {other} {}", r.body));
                            break;
                        }
                    }
                }
                longest = longest.max(started.elapsed());
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (acked, longest, failures)
        })
    };

    for (step, secrets) in [format!("{old},{new}"), format!("{new},{old}"), new.clone()]
        .iter()
        .enumerate()
    {
        for id in 1..=3 {
            cluster.terminate(id, Duration::from_secs(15));
            cluster.set_env(id, "TASKRAFT_CLUSTER_SECRET", secrets);
            cluster.restart(id);
            cluster.leader(Duration::from_secs(30));
            for url in &urls {
                assert_eq!(
                    refused(url, "bad_proof"),
                    0.0,
                    "step {step}, node {id} restarted: a proof was refused ({url})"
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (acked, longest, failures) = writer.join().unwrap();
    eprintln!(
        "rotation: {} writes acknowledged, the longest took {longest:?}",
        acked.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(acked.len() > 20, "the writer kept writing: {}", acked.len());
    // A restart of the leader costs an election; nothing more.
    assert!(
        longest < Duration::from_secs(10),
        "a write waited {longest:?}"
    );
    let tasks = all_tasks(&urls[0], "linearizable");
    for title in &acked {
        let copies = tasks
            .iter()
            .filter(|t| t["title"] == title.as_str())
            .count();
        assert_eq!(copies, 1, "{title}");
    }
    // The old secret alone no longer gets in.
    cluster.terminate(3, Duration::from_secs(15));
    cluster.set_env(3, "TASKRAFT_CLUSTER_SECRET", &old);
    cluster.spawn(3);
    wait_until(
        "a node with only the old secret is refused",
        Duration::from_secs(20),
        || refused(&urls[0], "bad_proof") + refused(&urls[1], "bad_proof") > 0.0,
    );
}

/// A peer link that silently lost bytes and then carried them again (a
/// relay that blackholed it, then healed) leaves the acceptor's TLS layer
/// inside a record whose rest never came. It must close the connection
/// within the stall timeout, so the dialer reconnects, rather than wait for
/// the record's 16 KiB on a quiet link (votes, pings) while the peer's
/// messages are lost. Found by the fault tests run under TLS: an election
/// took 11 s after a leader isolation.
#[test]
fn a_peer_stream_that_lost_bytes_under_tls_is_closed_within_the_stall_timeout() {
    let cluster = Cluster::start_after(3, &[], &[], |c| c.enable_tls());
    let ca = cluster.tls_ca().unwrap();
    let ca_pem = ca.pem();
    let raft1 = format!("127.0.0.1:{}", cluster.node(1).raft_port);
    let view = get(&format!("{}/api/cluster", cluster.url(1))).body;
    let cluster_id = view["cluster_id"].as_str().unwrap().to_string();
    let peer = ca.leaf(&["node-2"], 99, 2099);

    // Node 2 as far as node 1 can tell: its certificate, a proven hello.
    let mut tls = dial(&raft1, "node-1", client(&ca_pem, Some(&peer))).expect("a handshake");
    let mut head = [0u8; 5];
    tls.read_exact(&mut head).expect("the challenge's header");
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut challenge = vec![0u8; len - 1];
    tls.read_exact(&mut challenge).expect("the challenge");
    let secret = cluster.secret();
    let mut hello = Vec::new();
    taskraft::transport::codec::encode(
        &taskraft::transport::codec::Frame::Hello(taskraft::transport::codec::Hello {
            node_id: 2,
            url: cluster.url(2),
            cluster_id: Some(cluster_id.clone()),
            proof: Some(peer_proof(&secret, &challenge, 2, &cluster_id)),
            wire: challenge.get(32).copied(),
            version: None,
        }),
        &mut hello,
        taskraft::transport::codec::Wire::V1,
    );
    tls.write_all(&hello).unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Then, under TLS, the start of an application-data record announcing
    // 16 KiB, and a trickle of bytes that never completes it.
    let raw = &mut tls.sock;
    raw.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    raw.write_all(&[0x17, 0x03, 0x03, 0x40, 0x00, 1, 2, 3])
        .unwrap();
    let started = Instant::now();
    let closed_after = loop {
        if started.elapsed() > Duration::from_secs(10) {
            break None;
        }
        let mut byte = [0u8; 64];
        let closed = match raw.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        if closed || raw.write_all(&[0u8; 16]).is_err() {
            break Some(started.elapsed());
        }
    };
    let closed_after = closed_after.expect("node 1 still holds the broken link after 10 s");
    assert!(
        closed_after < Duration::from_secs(5),
        "closed only after {closed_after:?}"
    );
    // Positive control: the cluster still works (its real links are whole).
    assert_eq!(create_titled(&cluster.url(1), "after").status, 201);
}
