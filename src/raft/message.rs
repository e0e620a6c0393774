//! The messages Raft nodes exchange, as the transport sees them: an opaque
//! value that knows its sender and recipient and how to write itself as
//! bytes. What is inside (raft-rs's protobuf `Message`) stays here.

use protobuf::Message as _;
use raft::eraftpb::Message;

/// One Raft message to or from a peer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerMessage(pub(super) Message);

/// A peer sent bytes that are not a Raft message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MessageDecodeError(#[from] protobuf::ProtobufError);

impl PeerMessage {
    /// The node that sent it.
    pub fn from_id(&self) -> u64 {
        self.0.from
    }

    /// The node it is for.
    pub fn to_id(&self) -> u64 {
        self.0.to
    }

    /// Appends the message's wire bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Writing protobuf into a Vec cannot fail.
        self.0
            .write_to_vec(out)
            .expect("raft message encodes into a Vec");
    }

    pub fn decode(bytes: &[u8]) -> Result<PeerMessage, MessageDecodeError> {
        let mut message = Message::default();
        message.merge_from_bytes(bytes)?;
        Ok(PeerMessage(message))
    }

    /// An append of `entries` entries of 200 bytes each, for tests of what
    /// carries messages.
    #[cfg(test)]
    pub(crate) fn sample_append(from: u64, to: u64, entries: usize) -> PeerMessage {
        use raft::eraftpb::{Entry, MessageType};
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.from = from;
        m.to = to;
        m.term = 7;
        m.commit = 41;
        m.entries = (0..entries)
            .map(|i| Entry {
                index: 42 + i as u64,
                term: 7,
                data: vec![b'x'; 200].into(),
                context: vec![1, 2, 3].into(),
                ..Entry::default()
            })
            .collect::<Vec<_>>()
            .into();
        PeerMessage(m)
    }
}

/// For tests outside the crate that forge a peer's message.
impl From<Message> for PeerMessage {
    fn from(message: Message) -> PeerMessage {
        PeerMessage(message)
    }
}
