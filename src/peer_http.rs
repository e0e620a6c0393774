//! The node's one blocking HTTP client: how a node calls another node's
//! HTTP API (joining, promotion, forwarding a membership change to the
//! leader, copying committed rows during catch-up, telling who is looking
//! at which board).
//!
//! Blocking (ureq) because these calls are rare and off the hot path; run
//! them on `spawn_blocking`, never on an actor's thread. Every call has a
//! connect timeout and an overall timeout, so none waits forever.
//!
//! Peer-only endpoints (`/internal/...`) are asked with the caller's node
//! id, its cluster id and an HMAC proof over the request's challenge under
//! the `cluster_secret` ([`PeerCredentials`]); the client API is asked with
//! the client's own `Authorization`, when there is one.
//!
//! https: the public roots are trusted, and the CA given to [`set_trust`]
//! (the node passes `peer_tls_ca_file`; `taskraft status --ca-file`),
//! re-read when it changes.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::transport::auth::PeerAuth;

/// Timeouts for calls to a peer's client API (join, promotion, forwarding).
pub const API_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    total: Duration::from_secs(15),
};

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Duration,
    /// For the whole call, answer included.
    pub total: Duration,
}

/// Why a call got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum PeerHttpError {
    /// No answer: refused, unreachable, timed out, or cut off.
    #[error("{url}: {source}")]
    Unreachable {
        url: String,
        source: Box<ureq::Transport>,
    },
    /// An answer, but not a success (only where one was required).
    #[error("{url}: {status} {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// A success whose body could not be read as what was asked for.
    #[error("{url}: unreadable answer: {source}")]
    Unreadable { url: String, source: std::io::Error },
}

/// What proves to a peer that the caller is a member of its cluster.
pub struct PeerCredentials<'a> {
    pub node_id: u64,
    pub auth: &'a PeerAuth,
    /// The bytes the proof signs, which the peer derives from the request.
    pub challenge: Vec<u8>,
}

impl PeerCredentials<'_> {
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("x-taskraft-node", self.node_id.to_string()),
            ("x-taskraft-cluster", self.auth.cluster_id()),
        ];
        if let Some(proof) = self.auth.prove(&self.challenge, self.node_id) {
            headers.push(("x-taskraft-proof", proof));
        }
        headers
    }
}

static TRUST: OnceLock<crate::tls::ClientTrust> = OnceLock::new();

/// Trusts `ca` (PEM) for https besides the public roots, from now on.
/// Set once per process; a second call is refused.
pub fn set_trust(ca: Option<PathBuf>) -> Result<(), crate::tls::TlsError> {
    let trust = crate::tls::ClientTrust::new(ca)?;
    TRUST
        .set(trust)
        .map_err(|_| crate::tls::TlsError("the HTTP client's trust is already set".into()))
}

/// A client for other nodes (and `taskraft status`): http, or https
/// trusting what [`set_trust`] said.
pub fn agent_builder() -> ureq::AgentBuilder {
    let trust = TRUST
        .get_or_init(|| crate::tls::ClientTrust::new(None).expect("the public roots need no file"));
    ureq::AgentBuilder::new().tls_config(trust.config())
}

fn agent(timeouts: Timeouts) -> ureq::Agent {
    agent_builder()
        .timeout_connect(timeouts.connect)
        .timeout(timeouts.total)
        .build()
}

fn unreachable(url: &str, e: ureq::Transport) -> PeerHttpError {
    PeerHttpError::Unreachable {
        url: url.to_string(),
        source: Box::new(e),
    }
}

/// One call to a peer's client API with [`API_TIMEOUTS`]; any status is an
/// answer (returned with its body), no answer is an error.
pub fn call(
    method: &str,
    url: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, String), PeerHttpError> {
    let headers: Vec<(String, String)> = authorization
        .map(|a| ("Authorization".to_string(), a.to_string()))
        .into_iter()
        .collect();
    call_with(method, url, &headers, body)
}

/// [`call`] with any headers (credentials a peer proves, or relays).
pub fn call_with(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&Value>,
) -> Result<(u16, String), PeerHttpError> {
    let mut request = agent(API_TIMEOUTS).request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            let status = response.status();
            Ok((status, response.into_string().unwrap_or_default()))
        }
        Err(ureq::Error::Transport(e)) => Err(unreachable(url, e)),
    }
}

/// An agent with `timeouts` that keeps its connections open between
/// calls: for a caller that calls the same peers every second (presence).
pub fn keeping_agent(timeouts: Timeouts) -> ureq::Agent {
    agent(timeouts)
}

/// A POST of a JSON `body` with `headers` (a proof the caller made over
/// the body) to a peer-only endpoint; any status but success is an error.
pub fn post_signed(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&'static str, String)],
    body: &[u8],
) -> Result<(), PeerHttpError> {
    let mut request = agent.post(url).set("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.set(name, value);
    }
    match request.send_bytes(body) {
        // Read to the end, so the connection goes back to the agent's pool.
        Ok(response) => {
            response
                .into_string()
                .map(drop)
                .map_err(|source| PeerHttpError::Unreadable {
                    url: url.to_string(),
                    source,
                })
        }
        Err(ureq::Error::Status(status, response)) => Err(PeerHttpError::Status {
            url: url.to_string(),
            status,
            body: response.into_string().unwrap_or_default(),
        }),
        Err(ureq::Error::Transport(e)) => Err(unreachable(url, e)),
    }
}

/// The largest answer [`get_json`] reads: a catch-up page holds at most
/// [`crate::db::catchup::PAGE_BYTES`] of rows, or one entry (a request
/// body, at most [`crate::api::MAX_BODY`]) with its JSON escaping, plus
/// the account rows on its last page.
pub const MAX_ANSWER: u64 = 64 << 20;

/// Reads an answer whole, refusing one over `limit` bytes. JSON is then
/// parsed from the bytes: `serde_json::from_reader` (`into_json`) asks the
/// reader for one byte at a time, through ureq's layers of readers, and
/// took 30 % of a catching-up follower's CPU.
fn read_answer(reader: impl std::io::Read, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut body = Vec::new();
    reader.take(limit + 1).read_to_end(&mut body)?;
    if body.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the answer is over {limit} bytes"),
        ));
    }
    Ok(body)
}

/// A GET of a peer-only endpoint, answered with JSON `T`; any status but
/// success is an error.
pub fn get_json<T: DeserializeOwned>(
    url: &str,
    query: &[(&str, String)],
    credentials: &PeerCredentials<'_>,
    timeouts: Timeouts,
) -> Result<T, PeerHttpError> {
    let mut request = agent(timeouts).get(url);
    for (name, value) in query {
        request = request.query(name, value);
    }
    for (name, value) in credentials.headers() {
        request = request.set(name, &value);
    }
    let unreadable = |source| PeerHttpError::Unreadable {
        url: url.to_string(),
        source,
    };
    match request.call() {
        Ok(response) => {
            let body = read_answer(response.into_reader(), MAX_ANSWER).map_err(unreadable)?;
            serde_json::from_slice(&body).map_err(|e| unreadable(e.into()))
        }
        Err(ureq::Error::Status(status, response)) => Err(PeerHttpError::Status {
            url: url.to_string(),
            status,
            body: response.into_string().unwrap_or_default(),
        }),
        Err(ureq::Error::Transport(e)) => Err(unreachable(url, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_whole_up_to_the_limit_and_refused_past_it() {
        let body = vec![b'x'; 100];
        assert_eq!(read_answer(&body[..], 100).unwrap(), body);
        assert_eq!(read_answer(&body[..], 1_000).unwrap(), body);
        let over = read_answer(&body[..], 99).unwrap_err();
        assert_eq!(over.kind(), std::io::ErrorKind::InvalidData);
        assert!(over.to_string().contains("over 99 bytes"), "{over}");
    }
}
