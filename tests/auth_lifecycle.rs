//! Accounts beyond the route matrix (`tests/auth.rs`), on real nodes with
//! `auth = "on"`: the open metrics listener (`metrics_addr`), WebSockets
//! closed when their credential ends, ended sessions pruned through the
//! log, and the trusted proxy header.

mod common;

use std::time::{Duration, Instant};

use common::accounts::*;
use common::*;
use serde_json::Value;

#[test]
fn the_metrics_listener_serves_metrics_without_credentials_and_nothing_else() {
    let ports = testbed::free_ports(3);
    let cluster = start_auth(3, &[], |cluster| {
        for id in 1..=3u64 {
            let addr = format!("127.0.0.1:{}", ports[id as usize - 1]);
            cluster.set_env(id, "TASKRAFT_METRICS_ADDR", &addr);
        }
    });
    for id in 1..=3u64 {
        let metrics_url = format!("http://127.0.0.1:{}", ports[id as usize - 1]);
        let open = get(&format!("{metrics_url}/metrics"));
        assert_eq!(open.status, 200, "node {id}: {open:?}");
        let text = open.body.as_str().unwrap_or_default();
        assert!(
            text.contains("taskraft_build_info"),
            "node {id}: {text:.200}"
        );
        assert!(text.contains("taskraft_server_has_leader 1"), "node {id}");
        for path in ["/healthz", "/readyz"] {
            assert_eq!(get(&format!("{metrics_url}{path}")).status, 200, "{path}");
        }
        // Nothing but metrics and health there, with or without credentials.
        for path in [
            "/api/tasks",
            "/api/cluster",
            "/api/users",
            "/ws",
            "/",
            "/openapi.json",
        ] {
            let r = call(&service(), "GET", &format!("{metrics_url}{path}"), None);
            assert_eq!(r.status, 404, "{path} on the metrics listener: {r:?}");
            assert_eq!(r.error_code(), Some("not_found"), "{r:?}");
        }
        let r = call(
            &service(),
            "POST",
            &format!("{metrics_url}/api/tasks"),
            Some(&serde_json::json!({ "title": "through the metrics port" })),
        );
        assert_eq!(r.status, 404, "{r:?}");
        // The main listener's /metrics still needs credentials.
        let url = cluster.url(id);
        let closed = get(&format!("{url}/metrics"));
        assert_eq!(
            (closed.status, closed.error_code()),
            (401, Some("unauthenticated")),
            "{closed:?}"
        );
        let r = call(&service(), "GET", &format!("{url}/metrics"), None);
        assert_eq!(r.status, 200);
    }
    let log = std::fs::read_to_string(&cluster.node(1).log).unwrap();
    assert!(log.contains("serving /metrics, /healthz and /readyz without credentials"));
}

/// Reads `feed` until it closes (within `within`); the close code and
/// reason, and whether a `signed_out` frame came first.
fn wait_closed(feed: &mut Feed, within: Duration) -> (Option<u16>, String, Option<Value>) {
    feed.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let mut signed_out = None;
    loop {
        match feed.next() {
            FeedItem::Closed(code) => {
                return (
                    code,
                    feed.close_reason.clone().unwrap_or_default(),
                    signed_out,
                )
            }
            FeedItem::Message(m) if m["type"] == "signed_out" => signed_out = Some(m),
            FeedItem::Message(_) | FeedItem::TimedOut => {}
        }
        assert!(
            started.elapsed() < within,
            "the socket is still open after {within:?}"
        );
    }
}

/// A socket is open and greeted.
fn open_feed(url: &str, query: &str, who: &Who) -> Feed {
    let mut feed = Feed::connect_as(url, query, &who.headers()).expect("the socket opens");
    assert_eq!(feed.expect()["type"], "hello");
    feed
}

#[test]
fn a_socket_closes_on_every_node_when_its_credential_ends() {
    let cluster = start_auth(3, &[], |_| {});
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    let admin = admin_session(&cluster);
    let alice_id = create_user(&url1, &admin, "alice", "member");
    create_user(&url1, &admin, "bob", "member");

    // No credentials: no socket at all.
    let refused = Feed::connect_as(&url2, "", &[]).err().expect("refused");
    assert!(refused.contains("401"), "{refused}");

    // Logout on node 1 closes the socket opened with that session on
    // node 2 (and only that one: another session of hers stays open).
    let alice = login(&url1, "alice", "alice-password").unwrap();
    let other = login(&url3, "alice", "alice-password").unwrap();
    let mut on_node2 = open_feed(&url2, "", &alice);
    let mut other_feed = open_feed(&url3, "", &other);
    let started = Instant::now();
    let r = call(&alice, "DELETE", &format!("{url1}/api/session"), None);
    assert_eq!(r.status, 204, "{r:?}");
    let (code, reason, frame) = wait_closed(&mut on_node2, Duration::from_secs(2));
    eprintln!(
        "logout on node 1 closed the socket on node 2 after {:?}",
        started.elapsed()
    );
    assert_eq!(code, Some(4001));
    assert_eq!(reason, "signed out: the session was logged out");
    assert_eq!(frame.unwrap()["reason"], "logged_out");
    // The other session's socket is still fed.
    let created = call(
        &other,
        "POST",
        &format!("{url3}/api/tasks"),
        Some(&serde_json::json!({ "title": "still live" })),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let events = other_feed.events(1);
    assert_eq!(events[0]["task"]["title"], "still live");

    // A token's socket (?token=) on node 3 closes when it is revoked on node 1.
    let made = call(
        &other,
        "POST",
        &format!("{url1}/api/tokens"),
        Some(&serde_json::json!({ "name": "feed reader" })),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let token = made.body["token"].as_str().unwrap().to_string();
    let mut by_token = open_feed(&url3, &format!("?token={token}"), &Who::default());
    let r = call(
        &other,
        "DELETE",
        &format!("{url1}/api/tokens/{}", made.body["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let (code, reason, _) = wait_closed(&mut by_token, Duration::from_secs(2));
    assert_eq!(
        (code, reason.as_str()),
        (Some(4001), "signed out: the token was revoked")
    );

    // Disabling her on node 2 closes her remaining socket on node 3.
    let r = call(
        &admin,
        "PATCH",
        &format!("{url2}/api/users/{alice_id}"),
        Some(&serde_json::json!({ "disabled": true })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let (code, reason, _) = wait_closed(&mut other_feed, Duration::from_secs(2));
    assert_eq!(
        (code, reason.as_str()),
        (Some(4001), "signed out: the user was disabled")
    );

    // Bob's password change (on node 3) closes his socket on node 1.
    let bob = login(&url1, "bob", "bob-password").unwrap();
    let mut bobs = open_feed(&url1, "", &bob);
    let r = call(
        &bob,
        "PATCH",
        &format!("{url3}/api/users/{}", bob.user_id.clone().unwrap()),
        Some(
            &serde_json::json!({ "password": "bob-new-password", "current_password": "bob-password" }),
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let (code, reason, _) = wait_closed(&mut bobs, Duration::from_secs(2));
    assert_eq!(
        (code, reason.as_str()),
        (Some(4001), "signed out: the password changed")
    );

    // A token that expires: its socket closes within a heartbeat (4 s)
    // of the expiry, with nobody doing anything.
    create_user(&url1, &admin, "carol", "viewer");
    // Node 2 may not have applied her creation yet (it answered on node 1):
    // a 401 until it has.
    let mut carol = None;
    within(
        "carol can sign in on node 2",
        Duration::from_secs(5),
        || {
            carol = login(&url2, "carol", "carol-password").ok();
            carol.is_some()
        },
    );
    let carol = carol.unwrap();
    let expires = taskraft::time::Timestamp(taskraft::time::Timestamp::now().0 + 2_000);
    let made = call(
        &carol,
        "POST",
        &format!("{url2}/api/tokens"),
        Some(&serde_json::json!({ "name": "short", "expires_at": expires.to_string() })),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let token = made.body["token"].as_str().unwrap().to_string();
    let mut expiring = open_feed(&url1, &format!("?token={token}"), &Who::default());
    let (code, reason, frame) = wait_closed(&mut expiring, Duration::from_secs(8));
    assert_eq!(
        (code, reason.as_str()),
        (Some(4001), "signed out: the credential expired")
    );
    assert_eq!(frame.unwrap()["reason"], "expired");
    assert!(
        taskraft::time::Timestamp::now() >= expires,
        "closed only once expired"
    );

    // The service token's socket is not an account's: it stays.
    let mut service_feed = open_feed(&url2, "", &service());
    service_feed.set_timeout(Duration::from_millis(500));
    assert!(matches!(
        service_feed.next(),
        FeedItem::TimedOut | FeedItem::Message(_)
    ));
}

/// One node's sessions as its MySQL holds them: (hash, ended), by hash.
fn sessions_of(mysql_url: &str) -> Vec<(String, bool)> {
    use mysql_async::prelude::*;
    block_on(async {
        let mut conn = mysql_async::Conn::from_url(mysql_url)
            .await
            .expect("the node's database answers");
        let rows: Vec<(String, bool)> = conn
            .query("SELECT hash, ended FROM sessions ORDER BY hash")
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        rows
    })
}

#[test]
fn ended_sessions_are_pruned_from_every_node_through_the_log() {
    // A 2 s retention: the leader's housekeeping runs every second.
    let cluster = start_auth(3, &[("TASKRAFT_IDEMPOTENCY_RETENTION", "2s")], |_| {});
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    let admin = admin_session(&cluster);
    create_user(&url1, &admin, "alice", "member");
    let sessions: Vec<Who> = [&url1, &url2, &url3, &url1]
        .iter()
        .map(|url| login(url, "alice", "alice-password").unwrap())
        .collect();
    for (who, url) in sessions[..3].iter().zip([&url2, &url3, &url1]) {
        let r = call(who, "DELETE", &format!("{url}/api/session"), None);
        assert_eq!(r.status, 204, "{r:?}");
    }
    // The three ended sessions leave every node's table; the admin's and
    // alice's last one stay, and are the same rows on every node.
    let took = within(
        "ended sessions pruned on every node",
        Duration::from_secs(15),
        || {
            let tables: Vec<Vec<(String, bool)>> = (1..=3)
                .map(|id| sessions_of(&cluster.mysql_url(id)))
                .collect();
            tables
                .iter()
                .all(|t| t.len() == 2 && t.iter().all(|(_, ended)| !ended))
                && tables.windows(2).all(|w| w[0] == w[1])
        },
    );
    eprintln!("pruned everywhere after {took:?}");
    // The live ones still work, on every node; the ended ones do not.
    for url in [&url1, &url2, &url3] {
        let me = call(&sessions[3], "GET", &format!("{url}/api/session"), None);
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(
            call(&admin, "GET", &format!("{url}/api/session"), None).status,
            200
        );
        for ended in &sessions[..3] {
            assert_eq!(
                call(ended, "GET", &format!("{url}/api/session"), None).status,
                401
            );
        }
    }
    // The pruning is a log entry decided by the leader: a node restarted
    // from its log and MySQL holds the same rows.
    let mut cluster = cluster;
    let before = sessions_of(&cluster.mysql_url(2));
    cluster.kill(2);
    cluster.restart(2);
    assert_eq!(sessions_of(&cluster.mysql_url(2)), before);
    assert_eq!(
        call(&sessions[3], "GET", &format!("{url2}/api/session"), None).status,
        200
    );
}

/// A request sent from the local address `from` (any of 127.0.0.0/8):
/// the status and the JSON body.
fn raw_from(
    from: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value) {
    use std::io::{Read, Write};
    let authority = url.trim_start_matches("http://");
    let (authority, path) = authority.split_at(authority.find('/').unwrap_or(authority.len()));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket
        .bind(&local.into())
        .expect("bind the client's address");
    let addr: std::net::SocketAddr = authority.parse().unwrap();
    socket.connect(&addr.into()).expect("connect to the node");
    let mut stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn a_trusted_proxy_names_the_user_and_anyone_else_is_ignored() {
    let cluster = start_auth(
        3,
        &[
            ("TASKRAFT_AUTH_PROXY_HEADER", "X-Forwarded-User"),
            ("TASKRAFT_AUTH_PROXY_TRUSTED", "127.0.0.1/32, 10.0.0.0/8"),
        ],
        |_| {},
    );
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    let admin = admin_session(&cluster);
    let pat_id = create_user(&url1, &admin, "pat", "member");
    create_user(&url1, &admin, "vic", "viewer");
    let as_proxy = |name: &str| vec![("X-Forwarded-User", name.to_string())];
    let proxied =
        |name: &str, method: &str, url: &str, body: Option<&Value>, csrf: Option<&str>| {
            let mut headers = as_proxy(name);
            if let Some(csrf) = csrf {
                headers.push(("X-Taskraft-CSRF", csrf.to_string()));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(method, url, &headers, body)
        };

    // From the trusted address (127.0.0.1), on every node: the named user.
    let me = proxied("Pat", "GET", &format!("{url2}/api/session"), None, None);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["user"]["username"], "pat");
    let csrf = me.body["csrf"].as_str().expect("a CSRF token").to_string();
    let again = proxied("pat", "GET", &format!("{url3}/api/session"), None, None);
    assert_eq!(
        again.body["csrf"].as_str(),
        Some(csrf.as_str()),
        "the same on every node"
    );
    // A write needs the CSRF token, as with the cookie (the proxy adds its
    // header to a cross-site request too).
    let task = serde_json::json!({ "title": "through the proxy" });
    let r = proxied(
        "pat",
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&task),
        None,
    );
    assert_eq!(
        (r.status, r.error_code()),
        (403, Some("csrf_failed")),
        "{r:?}"
    );
    let r = proxied(
        "pat",
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&task),
        Some(&csrf),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.body["id"].as_str().unwrap();
    let history = call(
        &admin,
        "GET",
        &format!("{url3}/api/tasks/{id}/events"),
        None,
    );
    assert_eq!(
        history.body["events"][0]["actor"],
        serde_json::json!({ "id": pat_id, "name": "pat" })
    );
    // The role still comes from the accounts.
    let vic = proxied("vic", "GET", &format!("{url1}/api/session"), None, None);
    let vic_csrf = vic.body["csrf"].as_str().unwrap().to_string();
    let r = proxied(
        "vic",
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&task),
        Some(&vic_csrf),
    );
    assert_eq!(
        (r.status, r.error_code()),
        (403, Some("forbidden")),
        "{r:?}"
    );
    // A name that is no user: refused (users are not made on sight).
    let r = proxied("nobody", "GET", &format!("{url1}/api/tasks"), None, None);
    assert_eq!(
        (r.status, r.error_code()),
        (401, Some("unauthenticated")),
        "{r:?}"
    );

    // From an address not trusted (127.0.0.2): the header is ignored.
    for url in [&url1, &url2, &url3] {
        for path in ["/api/session", "/api/tasks"] {
            let (status, body) = raw_from(
                "127.0.0.2",
                "GET",
                &format!("{url}{path}"),
                &[("X-Forwarded-User", "pat")],
                None,
            );
            assert_eq!(status, 401, "{url}{path} from 127.0.0.2: {body}");
            assert_eq!(body["error"]["code"], "unauthenticated");
        }
        let (status, _) = raw_from(
            "127.0.0.2",
            "POST",
            &format!("{url}/api/tasks"),
            &[("X-Forwarded-User", "admin"), ("X-Taskraft-CSRF", &csrf)],
            Some(r#"{"title":"forged"}"#),
        );
        assert_eq!(status, 401, "a write from an untrusted address");
        // The same raw client from the trusted address is believed (the
        // refusal above is the address's, not the client's).
        let (status, body) = raw_from(
            "127.0.0.1",
            "GET",
            &format!("{url}/api/session"),
            &[("X-Forwarded-User", "pat")],
            None,
        );
        assert_eq!(
            (status, &body["user"]["username"]),
            (200, &Value::from("pat"))
        );
    }

    // A socket opened through the proxy closes when the user is disabled.
    let mut feed = Feed::connect_as(&url2, "", &as_proxy("pat")).expect("the socket opens");
    assert_eq!(feed.expect()["type"], "hello");
    let r = call(
        &admin,
        "PATCH",
        &format!("{url1}/api/users/{pat_id}"),
        Some(&serde_json::json!({ "disabled": true })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let (code, reason, _) = wait_closed(&mut feed, Duration::from_secs(2));
    assert_eq!(
        (code, reason.as_str()),
        (Some(4001), "signed out: the user was disabled")
    );
    let r = proxied("pat", "GET", &format!("{url2}/api/session"), None, None);
    assert_eq!(r.status, 401, "a disabled user is refused: {r:?}");
}
