//! Who may speak Raft to this node.
//!
//! The accepting side opens every connection with a fresh random challenge.
//! The dialing side answers with its hello: its node id, its cluster id and
//! an HMAC-SHA256 under the `cluster_secret` of (challenge, node id, cluster
//! id). A hello that names no cluster, names another one, or lacks the
//! right proof is refused before any Raft message is read; the proof is
//! bound to the challenge, so a recorded hello cannot be replayed. A node
//! without a `cluster_secret` accepts no peer at all: it can only be a
//! cluster of one (`serve` refuses to start a larger one without it).
//!
//! `cluster_secret` may be a comma-separated list: the first proves, every
//! one is accepted, so a secret can be rotated node by node.
//!
//! The cluster id. A new cluster's id is `<base>.<random>`: `base` is a hash
//! of `initial_cluster_token` and the initial voter ids (the same on every
//! initial member), `random` is chosen at bootstrap by the initial voter
//! with the lowest id, and stored. The other initial voters start
//! *forming*, with `base` alone; they accept peers naming `base` (other
//! forming members) and adopt, and store, the first authenticated
//! `<base>.<random>` they are shown, which can only come from that lowest
//! voter or a member that adopted it. A settled node accepts its own id
//! only. Two clusters that share a token, voter ids and secret therefore
//! still tell each other apart once formed. Nodes joining later learn the
//! id from the member that admits them; data directories written before
//! ids had a random part keep their id, settled.

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::codec::Hello;

type HmacSha256 = Hmac<Sha256>;

/// Writes an adopted cluster id to the node's durable identity.
pub type PersistClusterId = Box<dyn Fn(&str) -> Result<(), PersistError> + Send + Sync>;

/// The adopted cluster id could not be stored (whatever stores it says why).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PersistError(Box<dyn std::error::Error + Send + Sync>);

impl PersistError {
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> PersistError {
        PersistError(Box::new(cause))
    }
}

/// This node's cluster id, shared by everything that names or checks it.
pub struct ClusterId {
    state: RwLock<IdState>,
    persist: PersistClusterId,
}

#[derive(Clone, Debug)]
struct IdState {
    id: String,
    /// Still `base` only, waiting to be shown the lowest voter's id.
    forming: bool,
}

impl ClusterId {
    pub fn new(id: String, forming: bool, persist: PersistClusterId) -> Arc<ClusterId> {
        Arc::new(ClusterId {
            state: RwLock::new(IdState { id, forming }),
            persist,
        })
    }

    /// A settled id that is never written anywhere (tests, tools).
    pub fn fixed(id: &str) -> Arc<ClusterId> {
        ClusterId::new(id.to_string(), false, Box::new(|_| Ok(())))
    }

    fn state(&self) -> IdState {
        // Writers never panic while holding the lock.
        self.state.read().expect("cluster id lock").clone()
    }

    /// The id as this node names it now.
    pub fn current(&self) -> String {
        self.state().id
    }

    pub fn is_forming(&self) -> bool {
        self.state().forming
    }

    /// How a peer's claimed id relates to ours.
    fn judge(&self, claimed: &str) -> Judgement {
        let me = self.state();
        if claimed == me.id {
            Judgement::Same
        } else if me.forming
            && claimed
                .strip_prefix(me.id.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|random| {
                    !random.is_empty() && random.bytes().all(|b| b.is_ascii_hexdigit())
                })
        {
            Judgement::Settles
        } else if !me.forming
            && me
                .id
                .split_once('.')
                .is_some_and(|(base, _)| base == claimed)
        {
            Judgement::PeerForming
        } else {
            Judgement::Other
        }
    }

    /// Takes the settled id `id` (already judged [`Judgement::Settles`] and
    /// authenticated): stored first, then used.
    fn adopt(&self, id: &str) -> Result<(), PersistError> {
        if !self.is_forming() {
            return Ok(());
        }
        (self.persist)(id)?;
        let mut state = self.state.write().expect("cluster id lock");
        state.id = id.to_string();
        state.forming = false;
        Ok(())
    }
}

impl std::fmt::Debug for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        write!(
            f,
            "ClusterId({}{})",
            state.id,
            if state.forming { ", forming" } else { "" }
        )
    }
}

enum Judgement {
    Same,
    /// We are forming and this is our settled id: adopt it.
    Settles,
    /// We are settled and the peer is still forming: it learns our id
    /// from our hello to it, and then comes back.
    PeerForming,
    Other,
}

/// Why a peer's hello was refused; [`Refusal::reason`] labels the metric.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "node {node} wants to connect, but this node has no cluster_secret and accepts no peers"
    )]
    NoSecretHere { node: u64 },
    #[error("node {node} named no cluster id")]
    NoClusterId { node: u64 },
    #[error("node {node} has not learned the cluster id yet; it will from this node's hello")]
    PeerForming { node: u64 },
    #[error("node {node} belongs to cluster {claimed:.80}, not {ours}")]
    WrongCluster {
        node: u64,
        claimed: String,
        ours: String,
    },
    #[error("node {node} sent no proof of the cluster secret")]
    NoProof { node: u64 },
    #[error("node {node} does not know the cluster secret")]
    BadProof { node: u64 },
    /// Authentic, and it settles our id, but the id could not be stored.
    #[error("cannot store the cluster id {id}: {cause}")]
    CannotStore {
        id: String,
        cause: Arc<PersistError>,
    },
}

impl Refusal {
    /// The metric's label and the log's `reason` field.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoSecretHere { .. } => "no_secret_here",
            Refusal::NoClusterId { .. } => "no_cluster_id",
            Refusal::PeerForming { .. } => "peer_forming",
            Refusal::WrongCluster { .. } => "wrong_cluster",
            Refusal::NoProof { .. } => "no_proof",
            Refusal::BadProof { .. } => "bad_proof",
            Refusal::CannotStore { .. } => "internal",
        }
    }
}

/// What a node checks peers against, and proves to them.
#[derive(Clone, Debug)]
pub struct PeerAuth {
    pub cluster: Arc<ClusterId>,
    /// The first proves; all are accepted. Empty: no peer is accepted.
    secrets: Arc<[String]>,
}

/// A fresh challenge: 32 random bytes, then the framing this node reads.
pub fn challenge() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(33);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.push(super::codec::WIRE_V2);
    bytes
}

fn mac(secret: &str, challenge: &[u8], node_id: u64, cluster_id: &str) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(challenge);
    mac.update(&node_id.to_be_bytes());
    mac.update(cluster_id.as_bytes());
    mac
}

impl PeerAuth {
    pub fn new(cluster: Arc<ClusterId>, secrets: Vec<String>) -> PeerAuth {
        PeerAuth {
            cluster,
            secrets: secrets.into(),
        }
    }

    /// The cluster id this node names in its hellos.
    pub fn cluster_id(&self) -> String {
        self.cluster.current()
    }

    pub fn has_secret(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// The proof this node sends in answer to `challenge`.
    pub fn prove(&self, challenge: &[u8], node_id: u64) -> Option<String> {
        let secret = self.secrets.first()?;
        let tag = mac(secret, challenge, node_id, &self.cluster_id())
            .finalize()
            .into_bytes();
        Some(tag.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Checks a peer's hello against the challenge this node sent; an
    /// authenticated hello that settles a forming cluster id is adopted.
    pub fn verify(&self, challenge: &[u8], hello: &Hello) -> Result<(), Refusal> {
        let adopt = self.check(challenge, hello)?;
        if adopt {
            let id = hello.cluster_id.as_deref().unwrap_or_default();
            self.cluster
                .adopt(id)
                .map_err(|cause| Refusal::CannotStore {
                    id: id.to_string(),
                    cause: Arc::new(cause),
                })?;
            tracing::info!(cluster_id = %id, peer = hello.node_id, "learned the cluster id from a peer");
        }
        Ok(())
    }

    /// Like [`PeerAuth::verify`], but never adopts (for HTTP requests).
    pub fn check_only(&self, challenge: &[u8], hello: &Hello) -> Result<(), Refusal> {
        self.check(challenge, hello).map(|_| ())
    }

    /// `Ok(true)`: authentic, and it settles our forming id.
    fn check(&self, challenge: &[u8], hello: &Hello) -> Result<bool, Refusal> {
        let node = hello.node_id;
        if self.secrets.is_empty() {
            return Err(Refusal::NoSecretHere { node });
        }
        let claimed = hello.cluster_id.as_deref().unwrap_or("");
        if claimed.is_empty() {
            return Err(Refusal::NoClusterId { node });
        }
        let judgement = self.cluster.judge(claimed);
        if let Judgement::PeerForming = judgement {
            return Err(Refusal::PeerForming { node });
        }
        if let Judgement::Other = judgement {
            return Err(Refusal::WrongCluster {
                node,
                claimed: claimed.to_string(),
                ours: self.cluster_id(),
            });
        }
        let proof = hello
            .proof
            .as_deref()
            .and_then(decode_hex)
            .ok_or(Refusal::NoProof { node })?;
        // Compare in constant time: hmac's verify does.
        let known = self.secrets.iter().any(|secret| {
            mac(secret, challenge, node, claimed)
                .verify_slice(&proof)
                .is_ok()
        });
        if !known {
            return Err(Refusal::BadProof { node });
        }
        Ok(matches!(judgement, Judgement::Settles))
    }
}

/// How long a peer's signed HTTP request stays good: the proof signs the
/// time, so a recorded request cannot be replayed later than this.
pub const PEER_REQUEST_WINDOW_SECS: i64 = 60;

/// The bytes a peer's HTTP request to another node's api signs: method,
/// path and the time (Unix seconds).
pub fn peer_request_challenge(method: &str, path: &str, time: i64) -> Vec<u8> {
    format!("peer-http:{method}:{path}:{time}").into_bytes()
}

impl PeerAuth {
    /// Headers proving this node (`node_id`) knows the cluster secret, for
    /// a request to a peer's api (joining, promoting itself, reading
    /// `/api/cluster`) with `auth = "on"`. Bound to the method, the path
    /// and the time; not to a cluster id, which a joining node does not
    /// know yet. `None` without a secret.
    pub fn sign_request(
        &self,
        node_id: u64,
        method: &str,
        path: &str,
    ) -> Option<Vec<(&'static str, String)>> {
        let secret = self.secrets.first()?;
        let time = crate::time::Timestamp::now().0 / 1000;
        let challenge = peer_request_challenge(method, path, time);
        let tag = mac(secret, &challenge, node_id, "").finalize().into_bytes();
        Some(vec![
            ("x-taskraft-node", node_id.to_string()),
            ("x-taskraft-peer-time", time.to_string()),
            (
                "x-taskraft-peer-proof",
                tag.iter().map(|b| format!("{b:02x}")).collect(),
            ),
        ])
    }

    /// Checks what [`PeerAuth::sign_request`] made, at `now` (Unix seconds).
    pub fn check_request(
        &self,
        node_id: u64,
        method: &str,
        path: &str,
        time: i64,
        proof: &str,
        now: i64,
    ) -> bool {
        if (now - time).abs() > PEER_REQUEST_WINDOW_SECS {
            return false;
        }
        let Some(proof) = decode_hex(proof) else {
            return false;
        };
        let challenge = peer_request_challenge(method, path, time);
        self.secrets.iter().any(|secret| {
            mac(secret, &challenge, node_id, "")
                .verify_slice(&proof)
                .is_ok()
        })
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn a_signed_peer_request_is_bound_to_its_secret_method_path_node_and_time() {
        let ours = PeerAuth::new(ClusterId::fixed("c"), vec!["s".repeat(16), "old".repeat(6)]);
        let rotated = PeerAuth::new(ClusterId::fixed("x"), vec!["old".repeat(6)]);
        let stranger = PeerAuth::new(ClusterId::fixed("c"), vec!["t".repeat(16)]);
        let headers = |auth: &PeerAuth| {
            auth.sign_request(4, "POST", "/api/cluster/members")
                .unwrap()
        };
        let parts = |h: Vec<(&str, String)>| (h[1].1.parse::<i64>().unwrap(), h[2].1.clone());
        let (time, proof) = parts(headers(&ours));
        assert!(ours.check_request(4, "POST", "/api/cluster/members", time, &proof, time));
        assert!(ours.check_request(4, "POST", "/api/cluster/members", time, &proof, time + 60));
        assert!(!ours.check_request(4, "POST", "/api/cluster/members", time, &proof, time + 61));
        assert!(!ours.check_request(5, "POST", "/api/cluster/members", time, &proof, time));
        assert!(!ours.check_request(4, "GET", "/api/cluster/members", time, &proof, time));
        assert!(!ours.check_request(4, "POST", "/api/cluster", time, &proof, time));
        assert!(!ours.check_request(4, "POST", "/api/cluster/members", time + 1, &proof, time));
        let (time, proof) = parts(headers(&stranger));
        assert!(!ours.check_request(4, "POST", "/api/cluster/members", time, &proof, time));
        // A node still proving with the old secret is accepted during rotation.
        let (time, proof) = parts(headers(&rotated));
        assert!(ours.check_request(4, "POST", "/api/cluster/members", time, &proof, time));
        assert!(PeerAuth::new(ClusterId::fixed("c"), vec![])
            .sign_request(1, "GET", "/")
            .is_none());
    }

    fn hello(auth: &PeerAuth, challenge: &[u8], node_id: u64) -> Hello {
        Hello {
            node_id,
            url: "http://n".into(),
            cluster_id: Some(auth.cluster_id()),
            proof: auth.prove(challenge, node_id),
            wire: None,
            version: None,
        }
    }

    fn auth(cluster: &str, secret: Option<&str>) -> PeerAuth {
        PeerAuth::new(
            ClusterId::fixed(cluster),
            secret.map(str::to_string).into_iter().collect(),
        )
    }

    #[test]
    fn a_peer_that_knows_the_secret_is_let_in() {
        let me = auth("c1", Some("s3cret"));
        let challenge = challenge();
        assert!(me.verify(&challenge, &hello(&me, &challenge, 2)).is_ok());
    }

    #[test]
    fn a_wrong_secret_no_proof_or_a_replayed_proof_is_refused() {
        let me = auth("c1", Some("s3cret"));
        let challenge = challenge();
        let wrong = hello(&auth("c1", Some("guess")), &challenge, 2);
        assert_eq!(
            me.verify(&challenge, &wrong).unwrap_err().reason(),
            "bad_proof"
        );
        let none = hello(&auth("c1", None), &challenge, 2);
        assert_eq!(
            me.verify(&challenge, &none).unwrap_err().reason(),
            "no_proof"
        );
        let old = hello(&me, &super::challenge(), 2);
        assert!(
            me.verify(&challenge, &old).is_err(),
            "a proof for another challenge"
        );
        let mut other_id = hello(&me, &challenge, 2);
        other_id.node_id = 3;
        assert!(
            me.verify(&challenge, &other_id).is_err(),
            "the proof names the node"
        );
    }

    #[test]
    fn a_hello_must_name_this_cluster() {
        let me = auth("c1", Some("s3cret"));
        let challenge = challenge();
        let stranger = hello(&auth("c2", Some("s3cret")), &challenge, 2);
        let refused = me.verify(&challenge, &stranger).unwrap_err();
        assert_eq!(refused.reason(), "wrong_cluster");
        assert!(refused.to_string().contains("belongs to cluster c2"));
        let mut nameless = hello(&me, &challenge, 2);
        nameless.cluster_id = None;
        assert_eq!(
            me.verify(&challenge, &nameless).unwrap_err().reason(),
            "no_cluster_id"
        );
    }

    #[test]
    fn without_a_secret_no_peer_is_accepted() {
        let me = auth("c1", None);
        let challenge = challenge();
        let refused = me
            .verify(&challenge, &hello(&me, &challenge, 2))
            .unwrap_err();
        assert_eq!(refused.reason(), "no_secret_here");
    }

    #[test]
    fn any_listed_secret_is_accepted_and_the_first_proves() {
        let rotating = PeerAuth::new(
            ClusterId::fixed("c1"),
            vec!["new-secret".into(), "old-secret".into()],
        );
        let old = auth("c1", Some("old-secret"));
        let new = auth("c1", Some("new-secret"));
        let challenge = challenge();
        assert!(rotating
            .verify(&challenge, &hello(&old, &challenge, 2))
            .is_ok(),);
        assert!(rotating
            .verify(&challenge, &hello(&new, &challenge, 2))
            .is_ok(),);
        assert!(new
            .verify(&challenge, &hello(&rotating, &challenge, 3))
            .is_ok(),);
        assert!(old
            .verify(&challenge, &hello(&rotating, &challenge, 3))
            .is_err());
    }

    #[test]
    fn a_forming_node_adopts_the_settled_id_of_its_own_base_only() {
        let stored = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = stored.clone();
        let forming = PeerAuth::new(
            ClusterId::new(
                "base".into(),
                true,
                Box::new(move |id| {
                    sink.lock().unwrap().push(id.to_string());
                    Ok(())
                }),
            ),
            vec!["secret".into()],
        );
        let challenge = challenge();
        // Another forming member: accepted, nothing learned.
        let peer_forming = auth("base", Some("secret"));
        assert!(forming
            .verify(&challenge, &hello(&peer_forming, &challenge, 3))
            .is_ok(),);
        assert!(forming.cluster.is_forming());
        // Another base, or a settled id of another base: refused.
        for other in ["base2.00ff", "other.00ff", "base.", "base.xyz"] {
            let stranger = auth(other, Some("secret"));
            assert!(
                forming
                    .verify(&challenge, &hello(&stranger, &challenge, 3))
                    .is_err(),
                "{other}"
            );
        }
        // A settled id of an unauthenticated peer: refused, not adopted.
        let settled_wrong = auth("base.0a1b2c3d", Some("guess"));
        assert!(forming
            .verify(&challenge, &hello(&settled_wrong, &challenge, 1))
            .is_err());
        assert!(forming.cluster.is_forming());
        // The lowest voter's settled id, authenticated: stored, then used.
        let settled = auth("base.0a1b2c3d", Some("secret"));
        assert!(forming
            .verify(&challenge, &hello(&settled, &challenge, 1))
            .is_ok(),);
        assert_eq!(forming.cluster_id(), "base.0a1b2c3d");
        assert_eq!(*stored.lock().unwrap(), vec!["base.0a1b2c3d".to_string()]);
        // Settled now: a forming peer is refused (it must adopt first).
        assert_eq!(
            forming
                .verify(&challenge, &hello(&peer_forming, &challenge, 3))
                .unwrap_err()
                .reason(),
            "peer_forming"
        );
    }
}
