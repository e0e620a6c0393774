//! The tests' side of accounts: a cluster with `auth = "on"`, callers
//! holding a session cookie (with its CSRF token) or a bearer token, and
//! logging in.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{send, Cluster, Response, BIN};

pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const SERVICE_TOKEN: &str = "service-token-for-the-harness-0123456789";

/// Starts `n` nodes with accounts on (the bootstrap admin `admin`, the
/// service token), `env` on every node, `setup` before they start.
pub fn start_auth(n: usize, env: &[(&str, &str)], setup: impl FnOnce(&mut Cluster)) -> Cluster {
    let mut options = testbed::Options::new(BIN);
    options.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    options.template_root = Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let options = options.with_auth(ADMIN_PASSWORD, SERVICE_TOKEN);
    Cluster::launch_after(n, options, setup)
}

/// Credentials to send: a bearer token, or a session cookie with its CSRF
/// token.
#[derive(Clone, Debug, Default)]
pub struct Who {
    pub bearer: Option<String>,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub user_id: Option<String>,
}

impl Who {
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(token) = &self.bearer {
            headers.push(("Authorization", format!("Bearer {token}")));
        }
        if let Some(cookie) = &self.cookie {
            headers.push(("Cookie", cookie.clone()));
        }
        if let Some(csrf) = &self.csrf {
            headers.push(("X-Taskraft-CSRF", csrf.clone()));
        }
        headers
    }
}

pub fn call(who: &Who, method: &str, url: &str, body: Option<&Value>) -> Response {
    let headers = who.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(method, url, &headers, body)
}

/// [`call`] with one more header.
pub fn call_with(
    who: &Who,
    method: &str,
    url: &str,
    header: (&'static str, String),
    body: Option<&Value>,
) -> Response {
    let mut headers = who.headers();
    headers.push(header);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(method, url, &headers, body)
}

/// Logs in on `url`.
pub fn login(url: &str, username: &str, password: &str) -> Result<Who, Response> {
    let response = send(
        "POST",
        &format!("{url}/api/session"),
        &[],
        Some(&json!({ "username": username, "password": password })),
    );
    if response.status != 200 {
        return Err(response);
    }
    let set_cookie = response.header("set-cookie").expect("a session cookie");
    Ok(Who {
        bearer: None,
        cookie: Some(set_cookie.split(';').next().unwrap().to_string()),
        csrf: response.body["csrf"].as_str().map(str::to_string),
        user_id: response.body["user"]["id"].as_str().map(str::to_string),
    })
}

/// The bootstrap admin's session on node 1, once it exists.
pub fn admin_session(cluster: &Cluster) -> Who {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match login(&cluster.url(1), "admin", ADMIN_PASSWORD) {
            Ok(who) => return who,
            Err(response) if Instant::now() > deadline => {
                panic!("the bootstrap admin cannot log in: {response:?}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Creates a user with the password `<username>-password`; its id.
pub fn create_user(url: &str, admin: &Who, username: &str, role: &str) -> String {
    let response = call(
        admin,
        "POST",
        &format!("{url}/api/users"),
        Some(
            &json!({ "username": username, "password": format!("{username}-password"), "role": role }),
        ),
    );
    assert_eq!(response.status, 201, "{response:?}");
    response.body["id"].as_str().unwrap().to_string()
}

/// The service token, as a caller.
pub fn service() -> Who {
    Who {
        bearer: Some(SERVICE_TOKEN.to_string()),
        ..Who::default()
    }
}

/// Waits up to `within` for `check` to hold; how long it took.
pub fn within(what: &str, within: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check() {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
