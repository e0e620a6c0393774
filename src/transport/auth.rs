//! Who may speak Raft to this node.
//!
//! The accepting side opens every connection with a fresh random challenge.
//! The dialing side answers with its hello: its node id, its cluster id and,
//! when a `cluster_secret` is configured, an HMAC-SHA256 under the secret of
//! (challenge, node id, cluster id). A connection from another cluster, or
//! without the right proof, is closed before any Raft message is read; the
//! proof is bound to the challenge, so a recorded hello cannot be replayed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::codec::Hello;

type HmacSha256 = Hmac<Sha256>;

/// What a node checks peers against.
#[derive(Clone, Debug, Default)]
pub struct PeerAuth {
    pub cluster_id: String,
    pub secret: Option<String>,
}

/// A fresh challenge: 32 random bytes.
pub fn challenge() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
}

fn mac(secret: &str, challenge: &[u8], node_id: u64, cluster_id: &str) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(challenge);
    mac.update(&node_id.to_be_bytes());
    mac.update(cluster_id.as_bytes());
    mac
}

impl PeerAuth {
    /// The proof this node sends in answer to `challenge`.
    pub fn prove(&self, challenge: &[u8], node_id: u64) -> Option<String> {
        let secret = self.secret.as_deref()?;
        let tag = mac(secret, challenge, node_id, &self.cluster_id)
            .finalize()
            .into_bytes();
        Some(tag.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Checks a peer's hello against the challenge this node sent.
    pub fn verify(&self, challenge: &[u8], hello: &Hello) -> Result<(), String> {
        let peer_cluster = hello.cluster_id.as_deref().unwrap_or("");
        if !self.cluster_id.is_empty()
            && !peer_cluster.is_empty()
            && peer_cluster != self.cluster_id
        {
            return Err(format!(
                "node {} belongs to cluster {peer_cluster}, not {}",
                hello.node_id, self.cluster_id
            ));
        }
        let Some(secret) = self.secret.as_deref() else {
            return Ok(());
        };
        let proof =
            hello.proof.as_deref().and_then(decode_hex).ok_or_else(|| {
                format!("node {} sent no proof of the cluster secret", hello.node_id)
            })?;
        // Compare in constant time: hmac's verify does.
        mac(secret, challenge, hello.node_id, peer_cluster)
            .verify_slice(&proof)
            .map_err(|_| format!("node {} does not know the cluster secret", hello.node_id))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(auth: &PeerAuth, challenge: &[u8], node_id: u64) -> Hello {
        Hello {
            node_id,
            url: "http://n".into(),
            cluster_id: Some(auth.cluster_id.clone()),
            proof: auth.prove(challenge, node_id),
        }
    }

    fn auth(cluster: &str, secret: Option<&str>) -> PeerAuth {
        PeerAuth {
            cluster_id: cluster.into(),
            secret: secret.map(str::to_string),
        }
    }

    #[test]
    fn a_peer_that_knows_the_secret_is_let_in() {
        let me = auth("c1", Some("s3cret"));
        let challenge = challenge();
        assert_eq!(me.verify(&challenge, &hello(&me, &challenge, 2)), Ok(()));
    }

    #[test]
    fn a_wrong_secret_no_proof_or_a_replayed_proof_is_refused() {
        let me = auth("c1", Some("s3cret"));
        let challenge = challenge();
        let wrong = hello(&auth("c1", Some("guess")), &challenge, 2);
        assert!(me
            .verify(&challenge, &wrong)
            .unwrap_err()
            .contains("does not know"));
        let none = hello(&auth("c1", None), &challenge, 2);
        assert!(me
            .verify(&challenge, &none)
            .unwrap_err()
            .contains("no proof"));
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
    fn a_peer_of_another_cluster_is_refused_even_without_a_secret() {
        let me = auth("c1", None);
        let challenge = challenge();
        let stranger = hello(&auth("c2", None), &challenge, 2);
        assert!(me
            .verify(&challenge, &stranger)
            .unwrap_err()
            .contains("belongs to cluster c2"));
        assert_eq!(me.verify(&challenge, &hello(&me, &challenge, 2)), Ok(()));
    }
}
