//! Between nodes: a node's [`Summary`], posted to each member's
//! `/internal/presence`, and the checks the receiving node makes.
//!
//! The proof is the peer HMAC (`transport::auth`) over the body itself, so
//! no byte of a summary can be changed on the way; the body names its
//! sender (which must be the node the headers prove) and when it was made,
//! so a recorded summary is refused once it is older than
//! [`PEER_REQUEST_WINDOW_SECS`], and is never newer than what the sender
//! said since ([`super::state::Received::Stale`]).

use std::time::Duration;

use super::{Summary, MAX_SUMMARY_BYTES};
use crate::peer_http::{self, PeerHttpError, Timeouts};
use crate::transport::auth::{PeerAuth, Refusal, PEER_REQUEST_WINDOW_SECS};
use crate::transport::codec::Hello;

/// Where peers post their summaries.
pub const PATH: &str = "/internal/presence";

/// A post slower than this misses one heartbeat; the next one follows.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_millis(500),
    total: Duration::from_secs(1),
};

/// The bytes a summary's proof signs.
fn challenge(body: &[u8]) -> Vec<u8> {
    let mut challenge = b"presence:".to_vec();
    challenge.extend_from_slice(body);
    challenge
}

/// A summary ready to post: its body and the headers proving it.
#[derive(Clone)]
pub struct Signed {
    /// Shared by the posts to every peer.
    pub body: std::sync::Arc<[u8]>,
    /// The sender, its cluster and the proof over `body`.
    headers: Vec<(&'static str, String)>,
}

/// How a node posts its summaries: one agent, so the connections to its
/// peers are kept between heartbeats.
pub struct Gossip {
    node_id: u64,
    /// What proves this node to its peers (the `cluster_secret`).
    auth: PeerAuth,
    /// Keeps a connection per peer between heartbeats.
    agent: ureq::Agent,
}

impl Gossip {
    pub fn new(node_id: u64, auth: PeerAuth) -> Gossip {
        Gossip {
            node_id,
            auth,
            agent: peer_http::keeping_agent(TIMEOUTS),
        }
    }

    /// `summary`, serialized and signed; `None` without a `cluster_secret`
    /// (a node that has no peers). A summary over [`MAX_SUMMARY_BYTES`]
    /// loses its last boards until it fits.
    pub fn sign(&self, mut summary: Summary) -> Option<Signed> {
        if !self.auth.has_secret() {
            return None;
        }
        let body = loop {
            let body = serde_json::to_vec(&summary).expect("a summary serializes");
            if body.len() <= MAX_SUMMARY_BYTES || summary.boards.pop_last().is_none() {
                break body;
            }
        };
        let proof = self.auth.prove(&challenge(&body), self.node_id)?;
        Some(Signed {
            body: body.into(),
            headers: vec![
                ("x-taskraft-node", self.node_id.to_string()),
                ("x-taskraft-cluster", self.auth.cluster_id()),
                ("x-taskraft-proof", proof),
            ],
        })
    }

    /// Posts `signed` to the peer serving at `base_url`. Blocking: run it
    /// on `spawn_blocking`.
    pub fn post(&self, base_url: &str, signed: &Signed) -> Result<(), PeerHttpError> {
        let url = format!("{}{PATH}", base_url.trim_end_matches('/'));
        peer_http::post_signed(&self.agent, &url, &signed.headers, &signed.body)
    }
}

/// Why a posted summary was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// Not proven by a member of this cluster.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// Proven, but naming another sender, or too far from now.
    #[error("{0}")]
    Untrusted(String),
    /// Proven, but not a summary.
    #[error("not a presence summary: {0}")]
    Malformed(String),
}

/// Checks a summary posted by the peer `peer` (its headers) at `now_ms`:
/// the proof over `body`, then the sender and the time the body names.
pub fn check(auth: &PeerAuth, peer: &Hello, body: &[u8], now_ms: i64) -> Result<Summary, Rejected> {
    auth.check_only(&challenge(body), peer)?;
    let summary: Summary =
        serde_json::from_slice(body).map_err(|e| Rejected::Malformed(e.to_string()))?;
    if summary.node_id != peer.node_id {
        return Err(Rejected::Untrusted(format!(
            "node {} posted a summary of node {}",
            peer.node_id, summary.node_id
        )));
    }
    if (now_ms - summary.sent_at).abs() > PEER_REQUEST_WINDOW_SECS * 1000 {
        return Err(Rejected::Untrusted(format!(
            "a summary made at {} ms is too far from now ({now_ms} ms)",
            summary.sent_at
        )));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::transport::auth::ClusterId;

    fn auth(secret: &str) -> PeerAuth {
        PeerAuth::new(ClusterId::fixed("c"), vec![secret.repeat(16)])
    }

    /// What the receiving node reads from the headers of `signed`.
    fn hello(signed: &Signed) -> Hello {
        let header = |name: &str| {
            signed
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        Hello {
            node_id: header("x-taskraft-node").unwrap().parse().unwrap(),
            url: String::new(),
            cluster_id: header("x-taskraft-cluster"),
            proof: header("x-taskraft-proof"),
            wire: None,
            version: None,
        }
    }

    fn summary(node_id: u64, sent_at: i64) -> Summary {
        Summary {
            node_id,
            sent_at,
            boards: BTreeMap::new(),
        }
    }

    #[test]
    fn a_signed_summary_is_taken_and_a_changed_byte_is_refused() {
        let gossip = Gossip::new(2, auth("s"));
        let signed = gossip.sign(summary(2, 1_000)).unwrap();
        let ours = auth("s");
        let taken = check(&ours, &hello(&signed), &signed.body, 1_000).unwrap();
        assert_eq!(taken, summary(2, 1_000));
        let mut changed = signed.body.to_vec();
        let at = changed.len() - 3;
        changed[at] = b'3';
        assert!(matches!(
            check(&ours, &hello(&signed), &changed, 1_000),
            Err(Rejected::Refused(_))
        ));
        assert!(matches!(
            check(&auth("t"), &hello(&signed), &signed.body, 1_000),
            Err(Rejected::Refused(_))
        ));
    }

    #[test]
    fn a_summary_of_another_node_or_from_long_ago_is_refused() {
        let gossip = Gossip::new(2, auth("s"));
        let ours = auth("s");
        let other = gossip.sign(summary(3, 1_000)).unwrap();
        assert!(matches!(
            check(&ours, &hello(&other), &other.body, 1_000),
            Err(Rejected::Untrusted(_))
        ));
        let old = gossip.sign(summary(2, 1_000)).unwrap();
        let later = 1_000 + PEER_REQUEST_WINDOW_SECS * 1000 + 1;
        assert!(matches!(
            check(&ours, &hello(&old), &old.body, later),
            Err(Rejected::Untrusted(_))
        ));
    }

    #[test]
    fn a_node_without_a_secret_tells_nobody() {
        let lonely = Gossip::new(1, PeerAuth::new(ClusterId::fixed("c"), vec![]));
        assert!(lonely.sign(summary(1, 0)).is_none());
    }
}
