//! How a client request rides in a Raft entry.
//!
//! raft-rs's `propose(context, data)` keeps the two apart: `data` is the
//! serialized [`Command`], and `context` says which node took the request
//! and under which request id it waits, so that node, and only it, answers
//! when it applies the entry. Replies are matched by id, never by order.

use uuid::Uuid;

use crate::task::Command;

/// `context` of a normal entry: origin node id, then request id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposalContext {
    pub origin: u64,
    pub request_id: Uuid,
}

impl ProposalContext {
    const LEN: usize = 8 + 16;

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::LEN);
        bytes.extend_from_slice(&self.origin.to_be_bytes());
        bytes.extend_from_slice(self.request_id.as_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<ProposalContext> {
        if bytes.len() != Self::LEN {
            return None;
        }
        let origin = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let request_id = Uuid::from_slice(&bytes[8..]).ok()?;
        Some(ProposalContext { origin, request_id })
    }
}

pub fn encode_command(command: &Command) -> Vec<u8> {
    // A Command holds only strings, numbers and enums: it always serializes.
    serde_json::to_vec(command).expect("a command serializes to JSON")
}

pub fn decode_command(data: &[u8]) -> Result<Command, serde_json::Error> {
    serde_json::from_slice(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_round_trips_and_rejects_other_lengths() {
        let ctx = ProposalContext {
            origin: 3,
            request_id: Uuid::from_u128(0xfeed),
        };
        assert_eq!(ProposalContext::decode(&ctx.encode()), Some(ctx));
        assert_eq!(ProposalContext::decode(b""), None);
        assert_eq!(ProposalContext::decode(&[0; 25]), None);
    }
}
