//! Accounts beyond the route matrix (`tests/auth.rs`), on real nodes with
//! `auth = "on"`: the open metrics listener (`metrics_addr`), WebSockets
//! closed when their credential ends, ended sessions pruned through the
//! log, and the trusted proxy header.

mod common;

use common::accounts::*;
use common::*;

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
