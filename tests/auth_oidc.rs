//! OpenID Connect sign-on against a real provider: `oidc-provider` (npm,
//! `tests/oidc/`) started by the test on loopback, its own login and
//! consent pages filled in over HTTP, three taskraft nodes with accounts
//! on. No mocks: the code flow with PKCE, the token exchange, the ID
//! token's signature and claims are the real ones.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::accounts::*;

const CLIENT_ID: &str = "taskraft";
const CLIENT_SECRET: &str = "taskraft-client-secret-0123456789";

/// The provider's process, killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider(redirect_uri: &str) -> Provider {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    if !dir.join("node_modules/oidc-provider").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in tests/oidc");
    }
    let port = testbed::free_ports(1)[0];
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .args([&port.to_string(), CLIENT_ID, CLIENT_SECRET, redirect_uri])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    // The provider goes on writing (notices): keep its pipe drained.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let issuer = serde_json::from_str::<serde_json::Value>(&line)
        .unwrap_or_else(|_| panic!("the provider's first line: {line:?}"))["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    Provider { child, issuer }
}

/// A browser's cookies, by host (as browsers keep them: not by port).
#[derive(Default)]
struct Jar(HashMap<String, HashMap<String, String>>);

impl Jar {
    fn host(url: &str) -> String {
        url::Url::parse(url)
            .unwrap()
            .host_str()
            .unwrap()
            .to_string()
    }

    fn header(&self, url: &str) -> String {
        self.0
            .get(&Jar::host(url))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn take(&mut self, url: &str, response: &ureq::Response) {
        for set in response.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let cookies = self.0.entry(Jar::host(url)).or_default();
                if value.is_empty()
                    || set.contains("Max-Age=0")
                    || set.contains("expires=Thu, 01 Jan 1970")
                {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_string(), value.to_string());
                }
            }
        }
    }
}

/// One request without following redirects: status, Location, body.
fn step(
    jar: &mut Jar,
    method: &str,
    url: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, Option<String>, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let request = agent.request(method, url).set("Cookie", &jar.header(url));
    let result = match form {
        Some(form) => request.send_form(form),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    jar.take(url, &response);
    let status = response.status();
    let location = response
        .header("location")
        .map(|l| url::Url::parse(url).unwrap().join(l).unwrap().to_string());
    (status, location, response.into_string().unwrap_or_default())
}

/// Signs in as `username` at the provider, starting on `node_url`; the
/// final answer of taskraft's callback (status, Location) and the jar.
fn sign_in(node_url: &str, username: &str, jar: &mut Jar) -> (u16, Option<String>, String) {
    let mut at = format!("{node_url}/auth/oidc/login");
    let mut forms = 0;
    loop {
        let (status, location, body) = step(jar, "GET", &at, None);
        let callback = at.contains("/auth/oidc/callback");
        match (status, location) {
            (status, location) if callback => return (status, location, body),
            (300..=399, Some(next)) => at = next,
            (200, _) if at.contains("/interaction/") => {
                // The provider's own pages: the login form, then consent.
                forms += 1;
                assert!(forms <= 4, "the provider keeps asking: {body:.500}");
                let action = body
                    .split_once("action=\"")
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(action, _)| url::Url::parse(&at).unwrap().join(action).unwrap())
                    .unwrap_or_else(|| panic!("a form on {at}: {body:.500}"))
                    .to_string();
                let (status, location, body) = if body.contains("name=\"login\"") {
                    step(
                        jar,
                        "POST",
                        &action,
                        Some(&[
                            ("prompt", "login"),
                            ("login", username),
                            ("password", "any"),
                        ]),
                    )
                } else {
                    step(jar, "POST", &action, Some(&[("prompt", "consent")]))
                };
                at = location.unwrap_or_else(|| panic!("after a form: {status} {body:.500}"));
            }
            (status, _) => panic!("GET {at}: {status} {body:.500}"),
        }
    }
}

fn session_cookie(jar: &Jar, url: &str) -> Who {
    let cookie = jar
        .0
        .get(&Jar::host(url))
        .and_then(|c| c.get("taskraft_session"))
        .expect("a session cookie")
        .clone();
    Who {
        cookie: Some(format!("taskraft_session={cookie}")),
        ..Who::default()
    }
}

#[test]
fn openid_connect_signs_in_against_a_real_provider_and_creates_the_user_once() {
    let mut provider = None;
    let cluster = start_auth(3, &[], |cluster| {
        let redirect = format!("{}/auth/oidc/callback", cluster.url(1));
        let started = start_provider(&redirect);
        for id in 1..=3 {
            cluster.set_env(id, "TASKRAFT_OIDC_ISSUER", &started.issuer);
            cluster.set_env(id, "TASKRAFT_OIDC_CLIENT_ID", CLIENT_ID);
            cluster.set_env(id, "TASKRAFT_OIDC_CLIENT_SECRET", CLIENT_SECRET);
            cluster.set_env(id, "TASKRAFT_OIDC_REDIRECT_URL", &redirect);
            cluster.set_env(id, "TASKRAFT_OIDC_DEFAULT_ROLE", "member");
        }
        provider = Some(started);
    });
    let _provider = provider.unwrap();
    let (url1, url2, url3) = (cluster.url(1), cluster.url(2), cluster.url(3));
    let admin = admin_session(&cluster);

    // Started on node 2, back through node 1 (the redirect URL): the
    // flow's cookie is signed with the cluster secret, so any node checks it.
    let mut jar = Jar::default();
    let (status, _, body) = sign_in(&url2, "olivia", &mut jar);
    assert_eq!(status, 303, "the callback: {body:.500}");
    let olivia = session_cookie(&jar, &url1);
    let me = call(&olivia, "GET", &format!("{url3}/api/session"), None);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["user"]["username"], "olivia");
    assert_eq!(me.body["user"]["role"], "member", "oidc_default_role");
    assert_eq!(
        me.body["user"]["display_name"],
        "olivia (from the provider)"
    );
    let id = me.body["user"]["id"].as_str().unwrap().to_string();
    // An ordinary session: writes with its CSRF token.
    let olivia = Who {
        csrf: me.body["csrf"].as_str().map(str::to_string),
        ..olivia
    };
    let r = call(
        &olivia,
        "POST",
        &format!("{url2}/api/tasks"),
        Some(&serde_json::json!({ "title": "signed in with OpenID Connect" })),
    );
    assert_eq!(r.status, 201, "{r:?}");

    // A second sign-in is the same user, not a new one.
    let mut again = Jar::default();
    let (status, _, _) = sign_in(&url1, "olivia", &mut again);
    assert_eq!(status, 303);
    let me = call(
        &session_cookie(&again, &url1),
        "GET",
        &format!("{url1}/api/session"),
        None,
    );
    assert_eq!(me.body["user"]["id"].as_str(), Some(id.as_str()));
    let users = call(&admin, "GET", &format!("{url1}/api/users"), None);
    let named: Vec<_> = users.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["username"] == "olivia")
        .collect();
    assert_eq!(named.len(), 1, "{users:?}");

    // Disabled: the provider's word is not enough.
    let r = call(
        &admin,
        "PATCH",
        &format!("{url1}/api/users/{id}"),
        Some(&serde_json::json!({ "disabled": true })),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let mut disabled = Jar::default();
    let (status, _, body) = sign_in(&url1, "olivia", &mut disabled);
    assert_eq!(status, 401, "{body:.300}");

    // Someone at the provider who calls themselves `admin` is a new member
    // whose name says it is not the local admin, never the local admin.
    let mut impostor = Jar::default();
    let (status, _, body) = sign_in(&url2, "admin", &mut impostor);
    assert_eq!(status, 303, "{body:.300}");
    let me = call(
        &session_cookie(&impostor, &url1),
        "GET",
        &format!("{url1}/api/session"),
        None,
    );
    assert_eq!(me.status, 200, "{me:?}");
    let name = me.body["user"]["username"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("admin.") && name.len() == "admin.".len() + 6,
        "{me:?}"
    );
    assert_eq!(me.body["user"]["role"], "member", "{me:?}");
    let local_admin = call(&admin, "GET", &format!("{url1}/api/session"), None);
    assert_ne!(me.body["user"]["id"], local_admin.body["user"]["id"]);
    assert_eq!(local_admin.body["user"]["username"], "admin");

    // A callback this browser did not start, or with another state: refused.
    let mut stranger = Jar::default();
    let (status, _, body) = step(
        &mut stranger,
        "GET",
        &format!("{url1}/auth/oidc/callback?code=abc&state=def"),
        None,
    );
    assert_eq!(status, 400, "{body}");
    let mut tampered = Jar::default();
    let (status, location, _) = step(
        &mut tampered,
        "GET",
        &format!("{url1}/auth/oidc/login"),
        None,
    );
    assert_eq!(status, 302);
    assert!(location.unwrap().starts_with(&_provider.issuer));
    let (status, _, body) = step(
        &mut tampered,
        "GET",
        &format!("{url1}/auth/oidc/callback?code=abc&state=not-the-state"),
        None,
    );
    assert_eq!(status, 400, "{body}");
    // The provider refusing: 403, nothing signed in.
    let (status, _, _) = step(
        &mut tampered,
        "GET",
        &format!("{url1}/auth/oidc/callback?error=access_denied&state=x"),
        None,
    );
    assert_eq!(status, 403);
}
