//! Who may do what: the route levels, the principal a request carries, the
//! decision between them, the session cookie and the login throttle. Pure:
//! the api's middleware feeds it what the request and the accounts say.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{Actor, Role};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "taskraft_session";
/// The header carrying a session's CSRF token on unsafe methods.
pub const CSRF_HEADER: &str = "x-taskraft-csrf";

/// What a route requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, readiness, logging in, the API description.
    Open,
    /// Peers only; the handler checks the cluster-secret proof itself.
    Internal,
    /// Any signed-in user or token (viewers included).
    SignedIn,
    /// Any signed-in user, or a peer proving the cluster secret.
    SignedInOrPeer,
    /// Members and admins: writing tasks.
    Member,
    /// Admins: users, the cluster.
    Admin,
    /// Admins, or a peer proving the cluster secret (joining, promoting
    /// itself; the handler holds a peer to its own node id).
    AdminOrPeer,
}

impl Access {
    /// The least role that passes, for a user; `None` for routes no user
    /// needs credentials for (or only peers may use).
    pub fn least_role(self) -> Option<Role> {
        match self {
            Access::Open | Access::Internal => None,
            Access::SignedIn | Access::SignedInOrPeer => Some(Role::Viewer),
            Access::Member => Some(Role::Member),
            Access::Admin | Access::AdminOrPeer => Some(Role::Admin),
        }
    }

    pub fn admits_peers(self) -> bool {
        matches!(self, Access::SignedInOrPeer | Access::AdminOrPeer)
    }
}

/// How a request proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// The session cookie; unsafe methods need `csrf` in [`CSRF_HEADER`].
    Session { hash: String, csrf: String },
    /// A personal token (`Authorization: Bearer`, or `?token=` on `/ws`).
    Token { id: Uuid },
    /// `auth_proxy_header` from a trusted proxy, naming user `user_id`;
    /// unsafe methods need `csrf` in [`CSRF_HEADER`], as with the cookie
    /// (the proxy adds the header to a cross-site request as well).
    Proxy { user_id: Uuid, csrf: String },
    /// The configured `api_token`: an admin-level service token.
    Service,
    /// Another node of the cluster, by the cluster secret.
    Peer { node_id: u64 },
    /// `auth = "off"`: nobody is asked.
    Open,
}

/// Who a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub actor: Actor,
    pub user_id: Option<Uuid>,
    pub role: Role,
    pub via: Via,
}

impl Principal {
    pub fn service() -> Principal {
        Principal {
            actor: Actor {
                id: "service".into(),
                name: "api_token".into(),
            },
            user_id: None,
            role: Role::Admin,
            via: Via::Service,
        }
    }

    pub fn peer(node_id: u64) -> Principal {
        Principal {
            actor: Actor {
                id: format!("node-{node_id}"),
                name: format!("node {node_id}"),
            },
            user_id: None,
            role: Role::Viewer,
            via: Via::Peer { node_id },
        }
    }

    pub fn open() -> Principal {
        Principal {
            actor: Actor::anonymous(),
            user_id: None,
            role: Role::Admin,
            via: Via::Open,
        }
    }
}

/// Why a credential that was good no longer is: what a WebSocket opened
/// with it is told as it is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The session was logged out (or is gone from the accounts).
    LoggedOut,
    /// The session or token reached its expiry.
    Expired,
    /// The token was revoked (or is gone).
    Revoked,
    /// The user was disabled.
    Disabled,
    /// The user's password changed after the session was made.
    PasswordChanged,
}

impl Ended {
    /// A short machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::LoggedOut => "logged_out",
            Ended::Expired => "expired",
            Ended::Revoked => "revoked",
            Ended::Disabled => "disabled",
            Ended::PasswordChanged => "password_changed",
        }
    }

    /// What a person is told (a WebSocket close reason: at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Ended::LoggedOut => "signed out: the session was logged out",
            Ended::Expired => "signed out: the credential expired",
            Ended::Revoked => "signed out: the token was revoked",
            Ended::Disabled => "signed out: the user was disabled",
            Ended::PasswordChanged => "signed out: the password changed",
        }
    }
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// 401 `unauthenticated`: no (valid) credentials.
    Unauthenticated,
    /// 403 `forbidden`: valid credentials, not enough.
    Forbidden,
    /// 403 `csrf_failed`: the cookie without its CSRF token on a write.
    CsrfFailed,
}

/// The methods that change something: with the cookie, they need the CSRF
/// header.
pub fn is_unsafe(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// May `principal` (none: no valid credentials) use a route of `access`
/// with `method`? `csrf` is the request's CSRF header.
pub fn decide(
    access: Access,
    principal: Option<&Principal>,
    method: &str,
    csrf: Option<&str>,
) -> Result<(), Denial> {
    let Some(least) = access.least_role() else {
        return Ok(());
    };
    let Some(principal) = principal else {
        return Err(Denial::Unauthenticated);
    };
    match &principal.via {
        Via::Open => return Ok(()),
        Via::Peer { .. } => {
            return if access.admits_peers() {
                Ok(())
            } else {
                Err(Denial::Forbidden)
            }
        }
        Via::Session { csrf: expected, .. } | Via::Proxy { csrf: expected, .. }
            if is_unsafe(method) =>
        {
            let given = csrf.unwrap_or("");
            if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                return Err(Denial::CsrfFailed);
            }
        }
        _ => {}
    }
    if principal.role >= least {
        Ok(())
    } else {
        Err(Denial::Forbidden)
    }
}

/// Compares without an early exit, so timing does not reveal a prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of the session cookie in a `Cookie` header, if present and
/// well formed (64 hex digits: what this server hands out).
pub fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value for a session secret (`None`: clear it).
/// `secure` when the request came over TLS.
pub fn set_cookie(secret: Option<&str>, max_age: Duration, secure: bool) -> String {
    let (value, age) = match secret {
        Some(secret) => (secret, max_age.as_secs()),
        None => ("", 0),
    };
    let mut cookie =
        format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Failed logins allowed per user name within [`THROTTLE_WINDOW`].
pub const THROTTLE_PER_NAME: u32 = 5;
/// Failed logins allowed per client address within [`THROTTLE_WINDOW`].
pub const THROTTLE_PER_ADDRESS: u32 = 20;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(300);
/// Names and addresses remembered at most (each map); beyond, the oldest
/// window is forgotten first.
pub const THROTTLE_KEYS: usize = 10_000;

/// Failed logins, per user name and per client address, in fixed windows,
/// in memory on each node (bounded by [`THROTTLE_KEYS`]).
#[derive(Debug, Default)]
pub struct Throttle {
    names: HashMap<String, (Instant, u32)>,
    addresses: HashMap<IpAddr, (Instant, u32)>,
}

impl Throttle {
    /// `Err(wait)` when this name or address has failed too often lately.
    pub fn check(&self, name: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let blocked = |entry: Option<&(Instant, u32)>, limit: u32| {
            entry.and_then(|(start, count)| {
                let end = *start + THROTTLE_WINDOW;
                (*count >= limit && now < end).then(|| end - now)
            })
        };
        let by_name = blocked(self.names.get(name), THROTTLE_PER_NAME);
        let by_address =
            address.and_then(|a| blocked(self.addresses.get(&a), THROTTLE_PER_ADDRESS));
        match by_name.max(by_address) {
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    pub fn failed(&mut self, name: &str, address: Option<IpAddr>, now: Instant) {
        bump(&mut self.names, name.to_string(), now);
        if let Some(address) = address {
            bump(&mut self.addresses, address, now);
        }
    }

    /// A good password clears the name's failures (not the address's: one
    /// valid account must not unlock guessing at others).
    pub fn succeeded(&mut self, name: &str) {
        self.names.remove(name);
    }
}

fn bump<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, (Instant, u32)>,
    key: K,
    now: Instant,
) {
    if !map.contains_key(&key) && map.len() >= THROTTLE_KEYS {
        map.retain(|_, (start, _)| now < *start + THROTTLE_WINDOW);
        if map.len() >= THROTTLE_KEYS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (s, _))| *s)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
    }
    let entry = map.entry(key).or_insert((now, 0));
    if now >= entry.0 + THROTTLE_WINDOW {
        *entry = (now, 0);
    }
    entry.1 += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, via: Via) -> Principal {
        Principal {
            actor: Actor::system(),
            user_id: Some(Uuid::nil()),
            role,
            via,
        }
    }

    #[test]
    fn the_role_table() {
        let token = |role| user(role, Via::Token { id: Uuid::nil() });
        // (access, viewer, member, admin) for a GET and a POST by token.
        for (access, expected) in [
            (Access::SignedIn, [true, true, true]),
            (Access::SignedInOrPeer, [true, true, true]),
            (Access::Member, [false, true, true]),
            (Access::Admin, [false, false, true]),
            (Access::AdminOrPeer, [false, false, true]),
        ] {
            for (role, allowed) in Role::ALL.into_iter().zip(expected) {
                for method in ["GET", "POST"] {
                    let got = decide(access, Some(&token(role)), method, None);
                    let want = if allowed {
                        Ok(())
                    } else {
                        Err(Denial::Forbidden)
                    };
                    assert_eq!(got, want, "{access:?} {role} {method}");
                }
            }
            assert_eq!(
                decide(access, None, "GET", None),
                Err(Denial::Unauthenticated)
            );
            let peer = Principal::peer(4);
            assert_eq!(
                decide(access, Some(&peer), "POST", None).is_ok(),
                access.admits_peers(),
                "{access:?} for a peer"
            );
        }
        for access in [Access::Open, Access::Internal] {
            assert_eq!(decide(access, None, "POST", None), Ok(()));
        }
        assert_eq!(
            decide(Access::Admin, Some(&Principal::service()), "DELETE", None),
            Ok(())
        );
        assert_eq!(
            decide(Access::Admin, Some(&Principal::open()), "DELETE", None),
            Ok(())
        );
    }

    #[test]
    fn a_cookie_needs_its_csrf_token_on_writes_only() {
        let session = user(
            Role::Admin,
            Via::Session {
                hash: "h".into(),
                csrf: "c0ffee".into(),
            },
        );
        assert_eq!(decide(Access::Member, Some(&session), "GET", None), Ok(()));
        for method in ["POST", "PATCH", "PUT", "DELETE"] {
            assert_eq!(
                decide(Access::Member, Some(&session), method, None),
                Err(Denial::CsrfFailed)
            );
            assert_eq!(
                decide(Access::Member, Some(&session), method, Some("c0ffef")),
                Err(Denial::CsrfFailed)
            );
            assert_eq!(
                decide(Access::Member, Some(&session), method, Some("c0ffee")),
                Ok(())
            );
        }
        // A viewer with the right token is still only a viewer.
        let viewer = user(
            Role::Viewer,
            Via::Session {
                hash: "h".into(),
                csrf: "c".into(),
            },
        );
        assert_eq!(
            decide(Access::Member, Some(&viewer), "POST", Some("c")),
            Err(Denial::Forbidden)
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_must_be_ours() {
        let secret = "a".repeat(64);
        assert_eq!(
            session_cookie(&format!("x=1; taskraft_session={secret}; y=2")),
            Some(secret.as_str())
        );
        assert_eq!(
            session_cookie(&format!("taskraft_session={secret}")),
            Some(secret.as_str())
        );
        assert_eq!(session_cookie("taskraft_session=short"), None);
        assert_eq!(session_cookie(&format!("taskraft_sessionx={secret}")), None);
        assert_eq!(
            session_cookie(&format!("taskraft_session={}", "z".repeat(64))),
            None
        );
        assert_eq!(session_cookie(""), None);
        let cookie = set_cookie(Some(&secret), Duration::from_secs(60), true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(!set_cookie(Some(&secret), Duration::from_secs(60), false).contains("Secure"));
        assert!(set_cookie(None, Duration::from_secs(60), false).contains("Max-Age=0"));
    }

    #[test]
    fn failed_logins_are_throttled_by_name_and_by_address() {
        let mut throttle = Throttle::default();
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..THROTTLE_PER_NAME {
            assert!(throttle.check("alice", Some(a), t0).is_ok());
            throttle.failed("alice", Some(a), t0);
        }
        let wait = throttle.check("alice", Some(b), t0).unwrap_err();
        assert!(
            wait <= THROTTLE_WINDOW && wait >= Duration::from_secs(299),
            "{wait:?}"
        );
        assert!(
            throttle.check("bob", Some(a), t0).is_ok(),
            "another name, same address"
        );
        // The window ends.
        assert!(throttle
            .check("alice", Some(a), t0 + THROTTLE_WINDOW)
            .is_ok());
        // Many names from one address.
        for i in 0..THROTTLE_PER_ADDRESS {
            throttle.failed(&format!("n{i}"), Some(b), t0);
        }
        assert!(throttle.check("fresh", Some(b), t0).is_err());
        assert!(throttle.check("fresh", Some(a), t0).is_ok());
        // A success clears the name only.
        throttle.succeeded("alice");
        assert!(throttle.check("alice", None, t0).is_ok());
    }

    #[test]
    fn the_throttle_stays_bounded() {
        let mut throttle = Throttle::default();
        let t0 = Instant::now();
        for i in 0..THROTTLE_KEYS + 50 {
            throttle.failed(
                &format!("user{i}"),
                None,
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert!(throttle.names.len() <= THROTTLE_KEYS);
        assert!(throttle
            .names
            .contains_key(&format!("user{}", THROTTLE_KEYS + 49)));
        assert!(
            !throttle.names.contains_key("user0"),
            "the oldest went first"
        );
    }
}
