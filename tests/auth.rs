//! Accounts on a real cluster of three nodes with `auth = "on"`: every
//! route against every kind of caller (the matrix is generated from the
//! route list, so a new route cannot be left out), sessions accepted by
//! every node, logout, disabling and revoking effective everywhere within
//! a second, cross-site writes refused, logins throttled, bad input 4xx.

mod common;

use std::time::{Duration, Instant};

use common::accounts::*;
use common::*;
use serde_json::{json, Value};
use taskraft::api::{route_table, Access};

/// `who` without its CSRF token (what a cross-site page can send).
fn without_csrf(who: &Who) -> Who {
    Who {
        csrf: None,
        ..who.clone()
    }
}

/// A personal token for `username` (logging in as them).
fn token_of(url: &str, username: &str) -> (Who, String) {
    let password = if username == "admin" {
        ADMIN_PASSWORD.to_string()
    } else {
        format!("{username}-password")
    };
    let session = login(url, username, &password).expect("logs in");
    let response = call(
        &session,
        "POST",
        &format!("{url}/api/tokens"),
        Some(&json!({ "name": format!("{username}'s script") })),
    );
    assert_eq!(response.status, 201, "{response:?}");
    let token = response.body["token"].as_str().unwrap().to_string();
    let id = response.body["id"].as_str().unwrap().to_string();
    (
        Who {
            bearer: Some(token),
            user_id: session.user_id.clone(),
            ..Who::default()
        },
        id,
    )
}

/// The callers of the matrix, least to most privileged.
const CALLERS: [&str; 6] = ["none", "revoked", "disabled", "viewer", "member", "admin"];

/// The least role a route needs, as the test reads the access level
/// (`None`: open to anyone; `Some("peer")`: peers only).
fn least(access: Access) -> Option<&'static str> {
    match access {
        Access::Open => None,
        Access::Internal => Some("peer"),
        Access::SignedIn | Access::SignedInOrPeer => Some("viewer"),
        Access::Member => Some("member"),
        Access::Admin | Access::AdminOrPeer => Some("admin"),
    }
}

fn rank(caller: &str) -> u8 {
    match caller {
        "viewer" => 1,
        "member" => 2,
        "admin" => 3,
        _ => 0,
    }
}

#[test]
fn every_route_answers_every_kind_of_caller_as_the_matrix_says() {
    let cluster = start_auth(3, &[], |_| {});
    let url1 = cluster.url(1);
    let admin_session = admin_session(&cluster);
    for (name, role) in [("vera", "viewer"), ("mike", "member"), ("dora", "member")] {
        let id = create_user(&url1, &admin_session, name, role);
        let users = call(&admin_session, "GET", &format!("{url1}/api/users"), None);
        let made = users.body["users"]
            .as_array()
            .and_then(|users| users.iter().find(|u| u["id"] == id.as_str()))
            .unwrap_or_else(|| panic!("{name} listed: {users:?}"));
        assert_eq!(made["role"], role, "{made}");
    }
    // The session cookie over plain HTTP: HttpOnly, SameSite=Strict,
    // Path=/, not Secure; and a CSRF token beside it.
    let r = send(
        "POST",
        &format!("{url1}/api/session"),
        &[],
        Some(&json!({ "username": "vera", "password": "vera-password" })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let set_cookie = r.header("set-cookie").expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: not Secure");
    assert!(set_cookie.starts_with("taskraft_session="), "{set_cookie}");
    assert!(
        r.body["csrf"].as_str().is_some_and(|c| !c.is_empty()),
        "{r:?}"
    );
    let (viewer, _) = token_of(&url1, "vera");
    let (member, _) = token_of(&url1, "mike");
    let (revoked, revoked_id) = token_of(&url1, "mike");
    let (disabled, _) = token_of(&url1, "dora");
    let (admin, _) = token_of(&url1, "admin");
    let r = call(
        &admin,
        "DELETE",
        &format!("{url1}/api/tokens/{revoked_id}"),
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = call(
        &admin,
        "PATCH",
        &format!("{url1}/api/users/{}", disabled.user_id.clone().unwrap()),
        Some(&json!({ "disabled": true })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["disabled"], true);
    // A revocation and a disabling take effect on each node as it applies
    // the entry (README, Accounts): a follower may still be a few ms
    // behind (it gathers entries nobody waits on), and the matrix below
    // expects every node to refuse them.
    for (caller, who) in [("revoked", &revoked), ("disabled", &disabled)] {
        for id in 1..=3 {
            let url = cluster.url(id);
            within(
                &format!("node {id} refusing the {caller} token"),
                Duration::from_secs(5),
                || call(who, "GET", &format!("{url}/api/tasks"), None).status == 401,
            );
        }
    }
    let task = call(
        &member,
        "POST",
        &format!("{url1}/api/tasks"),
        Some(&json!({ "title": "the matrix's task" })),
    );
    assert_eq!(task.status, 201, "{task:?}");
    let task_id = task.body["id"].as_str().unwrap().to_string();

    let who = |caller: &str| -> Who {
        match caller {
            "none" => Who::default(),
            "revoked" => revoked.clone(),
            "disabled" => disabled.clone(),
            "viewer" => viewer.clone(),
            "member" => member.clone(),
            "admin" => admin.clone(),
            _ => unreachable!(),
        }
    };
    let mut table = Vec::new();
    let mut failures = Vec::new();
    let routes = route_table();
    assert!(routes.len() >= 27, "the route list: {routes:?}");
    for (i, (method, path, access)) in routes.iter().enumerate() {
        let mut row = format!("{method:6} {path:28} {:14}", format!("{access:?}"));
        for (j, caller) in CALLERS.iter().enumerate() {
            let who = who(caller);
            // Ids: the task made above, the caller's own user, ids that do
            // not exist elsewhere (a refusal must come before a 404).
            let concrete = path
                .replace(
                    "/api/users/{id}",
                    &format!(
                        "/api/users/{}",
                        who.user_id
                            .clone()
                            .unwrap_or_else(|| uuid::Uuid::nil().to_string())
                    ),
                )
                .replace("/api/tasks/{id}", &format!("/api/tasks/{task_id}"))
                .replace("/api/cluster/members/{id}", "/api/cluster/members/99")
                .replace("{id}", &uuid::Uuid::nil().to_string())
                .replace(
                    "/internal/catchup",
                    "/internal/catchup?after_index=0&after_seq=0&upto=1",
                );
            // Spread over the nodes: every node accepts every credential.
            let url = cluster.url(1 + ((i + j) % 3) as u64);
            let body = matches!(*method, "POST" | "PATCH" | "PUT").then(|| json!({}));
            // Never delete the matrix's own task or end the admin's session.
            let concrete = if *method == "DELETE" && path.starts_with("/api/tasks/") {
                format!("/api/tasks/{}", uuid::Uuid::nil())
            } else {
                concrete
            };
            let response = call(&who, method, &format!("{url}{concrete}"), body.as_ref());
            let status = response.status;
            let code = response.error_code().unwrap_or("");
            let expected_ok = match least(*access) {
                None => true,
                Some("peer") => false,
                Some(role) => rank(caller) >= rank(role),
            };
            let good = match (least(*access), expected_ok) {
                (Some("peer"), _) => status == 403 && code == "peer_refused",
                (_, true) => status != 401 && status != 403 && status != 0,
                (_, false) if rank(caller) == 0 => {
                    status == 401
                        && code == "unauthenticated"
                        && response.header("www-authenticate").is_some()
                }
                (_, false) => status == 403 && code == "forbidden",
            };
            if !good {
                failures.push(format!(
                    "{method} {concrete} as {caller}: {status} {code} ({})",
                    response.body
                ));
            }
            row.push_str(&format!(" {:>8}", status));
        }
        table.push(row);
    }
    eprintln!(
        "{:6} {:28} {:14} {}",
        "method",
        "path",
        "access",
        CALLERS.map(|c| format!("{c:>8}")).join(" ")
    );
    for row in &table {
        eprintln!("{row}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sessions_follow_the_user_across_nodes_and_end_everywhere() {
    let cluster = start_auth(3, &[], |_| {});
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    let admin = admin_session(&cluster);
    let alice_id = create_user(&url1, &admin, "alice", "member");

    // Logged in on node 1, used on nodes 2 and 3.
    let alice = login(&url1, "alice", "alice-password").unwrap();
    for url in [&url2, &url3] {
        let me = call(&alice, "GET", &format!("{url}/api/session"), None);
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(me.body["user"]["username"], "alice");
        assert_eq!(
            me.body["csrf"],
            json!(alice.csrf),
            "the same CSRF token on every node"
        );
    }

    // A cross-site write: the browser sends the cookie, but the page
    // cannot know the CSRF token.
    for bad in [None, Some("0".repeat(64))] {
        let forged = Who {
            csrf: bad,
            ..without_csrf(&alice)
        };
        let r = call(
            &forged,
            "POST",
            &format!("{url2}/api/tasks"),
            Some(&json!({ "title": "forged" })),
        );
        assert_eq!(
            (r.status, r.error_code()),
            (403, Some("csrf_failed")),
            "{r:?}"
        );
    }
    let created = call(
        &alice,
        "POST",
        &format!("{url2}/api/tasks"),
        Some(&json!({ "title": "by alice" })),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["id"].as_str().unwrap();
    // The history names her.
    let history = call(
        &alice,
        "GET",
        &format!("{url3}/api/tasks/{id}/events"),
        None,
    );
    assert_eq!(
        history.body["events"][0]["actor"],
        json!({ "id": alice_id, "name": "alice" }),
        "{history:?}"
    );
    let feed = call(&alice, "GET", &format!("{url1}/api/events?since=0"), None);
    assert_eq!(feed.status, 200, "{feed:?}");

    // A token is shown once, works on every node, and stops everywhere
    // when revoked.
    let made = call(
        &alice,
        "POST",
        &format!("{url1}/api/tokens"),
        Some(&json!({ "name": "ci", "expires_at": "2099-01-01T00:00:00Z" })),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let token = Who {
        bearer: made.body["token"].as_str().map(str::to_string),
        ..Who::default()
    };
    let listed = call(&alice, "GET", &format!("{url2}/api/tokens"), None);
    assert_eq!(listed.body["tokens"].as_array().unwrap().len(), 1);
    assert!(
        !listed
            .body
            .to_string()
            .contains(token.bearer.as_deref().unwrap()),
        "the secret is never shown again"
    );
    for url in [&url1, &url2, &url3] {
        assert_eq!(
            call(&token, "GET", &format!("{url}/api/tasks"), None).status,
            200
        );
    }
    let r = call(
        &alice,
        "DELETE",
        &format!("{url1}/api/tokens/{}", made.body["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let took = within(
        "a revoked token refused on every node",
        Duration::from_secs(1),
        || {
            [&url1, &url2, &url3]
                .iter()
                .all(|url| call(&token, "GET", &format!("{url}/api/tasks"), None).status == 401)
        },
    );
    eprintln!("revoked token refused everywhere after {took:?}");

    // Logout on node 3 ends the session on nodes 1 and 2.
    let second = login(&url1, "alice", "alice-password").unwrap();
    let r = call(&alice, "DELETE", &format!("{url3}/api/session"), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let took = within("logout on every node", Duration::from_secs(1), || {
        [&url1, &url2, &url3]
            .iter()
            .all(|url| call(&alice, "GET", &format!("{url}/api/session"), None).status == 401)
    });
    eprintln!("logout effective everywhere after {took:?}");
    assert_eq!(
        call(&second, "GET", &format!("{url2}/api/session"), None).status,
        200,
        "only that session ended"
    );

    // A role change applies to the next request, on every node.
    let r = call(
        &admin,
        "PATCH",
        &format!("{url1}/api/users/{alice_id}"),
        Some(&json!({ "role": "viewer" })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    within("a viewer cannot write", Duration::from_secs(1), || {
        [&url1, &url2, &url3].iter().all(|url| {
            call(
                &second,
                "POST",
                &format!("{url}/api/tasks"),
                Some(&json!({ "title": "as a viewer" })),
            )
            .status
                == 403
        })
    });
    // A member may not make themselves admin, nor change others.
    let r = call(
        &second,
        "PATCH",
        &format!("{url1}/api/users/{alice_id}"),
        Some(&json!({ "role": "admin" })),
    );
    assert_eq!(r.status, 403, "{r:?}");

    // Disabled: every session of hers refused everywhere.
    let r = call(
        &admin,
        "PATCH",
        &format!("{url2}/api/users/{alice_id}"),
        Some(&json!({ "disabled": true })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let took = within(
        "a disabled user refused on every node",
        Duration::from_secs(1),
        || {
            [&url1, &url2, &url3]
                .iter()
                .all(|url| call(&second, "GET", &format!("{url}/api/session"), None).status == 401)
        },
    );
    eprintln!("disabled user refused everywhere after {took:?}");
    assert_eq!(
        login(&url3, "alice", "alice-password")
            .unwrap_err()
            .error_code(),
        Some("invalid_credentials")
    );

    // A password change ends the sessions made with the old one.
    let bob_id = create_user(&url1, &admin, "bob", "member");
    let bob = login(&url1, "bob", "bob-password").unwrap();
    let r = call(
        &bob,
        "PATCH",
        &format!("{url2}/api/users/{bob_id}"),
        Some(&json!({ "password": "new-password-2" })),
    );
    assert_eq!(r.status, 400, "the current password is needed: {r:?}");
    let r = call(
        &bob,
        "PATCH",
        &format!("{url2}/api/users/{bob_id}"),
        Some(&json!({ "password": "new-password-2", "current_password": "bob-password" })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    within(
        "old sessions end with the password",
        Duration::from_secs(1),
        || call(&bob, "GET", &format!("{url3}/api/session"), None).status == 401,
    );
    assert!(login(&url3, "bob", "new-password-2").is_ok());

    // The last admin stays an admin.
    let admin_id = admin.user_id.clone().unwrap();
    let r = call(
        &admin,
        "PATCH",
        &format!("{url1}/api/users/{admin_id}"),
        Some(&json!({ "role": "member" })),
    );
    assert_eq!(
        (r.status, r.error_code()),
        (409, Some("last_admin")),
        "{r:?}"
    );
}

#[test]
fn logins_are_throttled_and_bad_input_is_refused_with_json() {
    let cluster = start_auth(3, &[], |_| {});
    let url = cluster.url(2);
    let admin = admin_session(&cluster);
    create_user(&url, &admin, "carol", "viewer");
    assert_eq!(
        create_user_status(&url, &admin, "carol"),
        (409, Some("username_taken".to_string()))
    );

    // Bad input: 4xx with a JSON error, before anything is proposed.
    let long = "a".repeat(20_000);
    for body in [
        json!({ "username": long, "password": "whatever-1" }),
        json!({ "username": "😀", "password": "whatever-1" }),
        json!({ "username": 5, "password": "whatever-1" }),
        json!({ "username": "carol" }),
        json!({ "username": "carol", "password": ["x"] }),
        json!({ "username": "carol", "password": "x", "extra": 1 }),
    ] {
        let r = send("POST", &format!("{url}/api/session"), &[], Some(&body));
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.error_code().is_some(), "{r:?}");
    }
    for body in [
        json!({ "username": "dave", "password": "short", "role": "member" }),
        json!({ "username": "dave", "password": "long-enough", "role": "god" }),
        json!({ "username": "d a v e", "password": "long-enough", "role": "member" }),
        json!({ "username": "dave", "password": "long-enough", "role": "member", "display_name": "x\u{0}y" }),
        json!({ "username": "dave", "password": "long-enough", "role": "member", "display_name": "😀".repeat(101) }),
    ] {
        let r = call(&admin, "POST", &format!("{url}/api/users"), Some(&body));
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(r.error_code().is_some(), "{r:?}");
    }
    let r = call(
        &admin,
        "POST",
        &format!("{url}/api/users"),
        Some(&json!({ "username": "Émile😀", "password": "long-enough", "role": "member" })),
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = call(
        &admin,
        "POST",
        &format!("{url}/api/users"),
        Some(
            &json!({ "username": "emile", "display_name": "Émile 😀", "password": "long-enough", "role": "member" }),
        ),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.body["display_name"], "Émile 😀");
    let r = call(&admin, "GET", &format!("{url}/api/users/nope"), None);
    assert!(r.status == 404 || r.status == 405, "{r:?}");
    let r = call(
        &admin,
        "DELETE",
        &format!("{url}/api/tokens/not-a-uuid"),
        None,
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = call(
        &admin,
        "POST",
        &format!("{url}/api/tokens"),
        Some(&json!({ "name": "t", "expires_at": "2001-01-01T00:00:00Z" })),
    );
    assert_eq!(r.status, 400, "an expiry in the past: {r:?}");

    // A brute force on one name: five wrong passwords, then 429 with
    // Retry-After, even for the right password.
    for i in 0..5 {
        let r = login(&url, "carol", &format!("wrong-{i}-password")).unwrap_err();
        assert_eq!(
            (r.status, r.error_code()),
            (401, Some("invalid_credentials")),
            "{r:?}"
        );
    }
    let r = login(&url, "carol", "carol-password").unwrap_err();
    assert_eq!(
        (r.status, r.error_code()),
        (429, Some("throttled")),
        "{r:?}"
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "Retry-After: {wait}");
    // Another name from the same address is not locked out (yet).
    assert!(login(&url, "admin", ADMIN_PASSWORD).is_ok());
    // An unknown name fails like a wrong password, and counts too.
    let r = login(&url, "nobody", "whatever-password").unwrap_err();
    assert_eq!(r.error_code(), Some("invalid_credentials"));
}

fn create_user_status(url: &str, admin: &Who, username: &str) -> (u16, Option<String>) {
    let r = call(
        admin,
        "POST",
        &format!("{url}/api/users"),
        Some(&json!({ "username": username, "password": "long-enough", "role": "viewer" })),
    );
    (r.status, r.error_code().map(str::to_string))
}

/// `/api/cluster` of `url`, read with the harness's service token.
fn view(url: &str) -> Value {
    send(
        "GET",
        &format!("{url}/api/cluster"),
        &[("Authorization", &format!("Bearer {SERVICE_TOKEN}"))],
        None,
    )
    .body
}

fn wait_compacted_past(url: &str, index: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while view(url)["first_index"].as_u64().unwrap_or(0) <= index + 1 {
        assert!(
            Instant::now() < deadline,
            "{url} did not compact past {index}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A node joining with auth on proves the cluster secret (not a user) to
/// be added and promoted; a node that installs a snapshot gets the
/// accounts with it, and sees later changes to them.
#[test]
fn joining_and_snapshot_catch_up_carry_the_accounts() {
    let mut cluster = start_auth(
        3,
        &[
            ("TASKRAFT_SNAPSHOT_COUNT", "40"),
            ("TASKRAFT_SNAPSHOT_CATCHUP_ENTRIES", "10"),
        ],
        |_| {},
    );
    let leader = cluster.leader(Duration::from_secs(20));
    let url = cluster.url(leader);
    let admin = admin_session(&cluster);
    create_user(&url, &admin, "early", "member");
    let (early, early_token) = token_of(&url, "early");
    let accounts_made = view(&url)["applied_index"].as_u64().unwrap();
    let churn = |label: &str| {
        for i in 0..60 {
            let r = call(
                &early,
                "POST",
                &format!("{url}/api/tasks"),
                Some(&json!({ "title": format!("{label} {i}") })),
            );
            assert_eq!(r.status, 201, "{r:?}");
        }
    };
    churn("before");
    wait_compacted_past(&url, accounts_made);

    // Node 4 joins: the log is compacted, so it installs a snapshot and
    // copies the rows, accounts included, from a peer.
    let id = cluster.add_joining_node();
    cluster.wait_membership(leader, &[1, 2, 3, 4], &[], Duration::from_secs(60));
    cluster.wait_caught_up(id, Duration::from_secs(60));
    let url4 = cluster.url(id);
    assert!(
        login(&url4, "early", "early-password").is_ok(),
        "a user made before the snapshot logs in on the joined node"
    );
    assert_eq!(
        call(&early, "GET", &format!("{url4}/api/tasks"), None).status,
        200
    );
    let log = std::fs::read_to_string(&cluster.node(id).log).unwrap();
    assert!(
        log.contains("copied a page of committed rows"),
        "node {id} caught up from the log only"
    );

    // Node 3 (or 2) misses a user, a revocation and a snapshot.
    let behind = if leader == 3 { 2 } else { 3 };
    cluster.kill(behind);
    create_user(&url, &admin, "late", "viewer");
    let r = call(
        &early,
        "DELETE",
        &format!("{url}/api/tokens/{early_token}"),
        None,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let applied = view(&url)["applied_index"].as_u64().unwrap();
    let (late, _) = token_of(&url, "late");
    for i in 0..60 {
        let r = call(
            &admin,
            "POST",
            &format!("{url}/api/tasks"),
            Some(&json!({ "title": format!("after {i}") })),
        );
        assert_eq!(r.status, 201, "{r:?}");
    }
    wait_compacted_past(&url, applied);
    cluster.restart(behind);
    cluster.wait_caught_up(behind, Duration::from_secs(60));
    let url_behind = cluster.url(behind);
    assert_eq!(
        call(&late, "GET", &format!("{url_behind}/api/tasks"), None).status,
        200
    );
    assert_eq!(
        call(&early, "GET", &format!("{url_behind}/api/tasks"), None).status,
        401,
        "the token revoked while the node was down"
    );
    // The history on the caught-up node still names who did what.
    let tasks = call(
        &late,
        "GET",
        &format!("{url_behind}/api/tasks?limit=1"),
        None,
    );
    let id = tasks.body["tasks"][0]["id"].as_str().unwrap();
    let history = call(
        &late,
        "GET",
        &format!("{url_behind}/api/tasks/{id}/events"),
        None,
    );
    assert!(
        history.body["events"][0]["actor"]["name"].is_string(),
        "{history:?}"
    );
}
