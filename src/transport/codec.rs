//! The wire format between peers: length-prefixed frames.
//!
//! ```text
//! frame   = length:u32be kind:u8 body        (length counts kind + body)
//! kind 3  = challenge: 32 random bytes, sent by the accepting side first
//! kind 1  = hello: JSON {"node_id", "url", "cluster_id", "proof"}, the dialer's answer
//! kind 2  = raft:  one raft-rs Message, protobuf-encoded
//! ```
//!
//! After the challenge and the hello, the dialing node sends only `raft`
//! frames: each direction of a peer pair has its own connection. A frame
//! over [`MAX_FRAME`] or of an unknown kind ends the connection.

use protobuf::Message as _;
use raft::eraftpb::Message;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Larger than any batch of entries raft-rs sends (`max_size_per_msg`).
pub const MAX_FRAME: usize = 64 << 20;

const KIND_HELLO: u8 = 1;
const KIND_RAFT: u8 = 2;
const KIND_CHALLENGE: u8 = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub node_id: u64,
    /// The sender's `advertise_url`, for `/api/cluster` and browser failover.
    pub url: String,
    /// The sender's cluster: peers of another cluster are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// With a `cluster_secret`: proof the sender knows it (see `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Challenge(Vec<u8>),
    Hello(Hello),
    Raft(Message),
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("empty frame")]
    Empty,
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("undecodable hello: {0}")]
    Hello(#[from] serde_json::Error),
    #[error("undecodable raft message: {0}")]
    Raft(#[from] protobuf::ProtobufError),
}

/// Appends `frame` to `out`; several frames in one buffer go out in one write.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    match frame {
        Frame::Challenge(bytes) => {
            out.push(KIND_CHALLENGE);
            out.extend_from_slice(bytes);
        }
        Frame::Hello(hello) => {
            out.push(KIND_HELLO);
            // A struct of strings and integers always serializes.
            serde_json::to_writer(&mut *out, hello).expect("hello serializes");
        }
        Frame::Raft(message) => {
            out.push(KIND_RAFT);
            // Writing protobuf into a Vec cannot fail.
            message
                .write_to_vec(out)
                .expect("raft message encodes into a Vec");
        }
    }
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

/// Reads one frame; `Ok(None)` at a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<Frame>, CodecError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let length = u32::from_be_bytes(prefix) as usize;
    if length == 0 {
        return Err(CodecError::Empty);
    }
    if length > MAX_FRAME {
        return Err(CodecError::TooLarge(length));
    }
    buf.resize(length, 0);
    reader.read_exact(buf).await?;
    decode_body(buf).map(Some)
}

fn decode_body(body: &[u8]) -> Result<Frame, CodecError> {
    match body[0] {
        KIND_CHALLENGE => Ok(Frame::Challenge(body[1..].to_vec())),
        KIND_HELLO => Ok(Frame::Hello(serde_json::from_slice(&body[1..])?)),
        KIND_RAFT => {
            let mut message = Message::default();
            message.merge_from_bytes(&body[1..])?;
            Ok(Frame::Raft(message))
        }
        other => Err(CodecError::UnknownKind(other)),
    }
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::{Entry, MessageType};

    use super::*;

    fn append(from: u64, to: u64, entries: usize) -> Message {
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
        m
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Frame>, CodecError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut reader = bytes;
            let mut buf = Vec::new();
            let mut frames = Vec::new();
            while let Some(frame) = read_frame(&mut reader, &mut buf).await? {
                frames.push(frame);
            }
            Ok(frames)
        })
    }

    #[test]
    fn frames_written_back_to_back_read_back_the_same() {
        let frames = vec![
            Frame::Challenge(vec![7; 32]),
            Frame::Hello(Hello {
                node_id: 2,
                url: "http://127.0.0.1:8082".into(),
                cluster_id: Some("c1".into()),
                proof: Some("00ff".into()),
            }),
            Frame::Raft(append(2, 1, 3)),
            Frame::Raft(append(2, 1, 0)),
        ];
        let mut wire = Vec::new();
        for frame in &frames {
            encode(frame, &mut wire);
        }
        assert_eq!(read_all(&wire).unwrap(), frames);
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_an_error_not_a_clean_end() {
        let mut wire = Vec::new();
        encode(&Frame::Raft(append(1, 2, 2)), &mut wire);
        let cut = &wire[..wire.len() - 1];
        assert!(matches!(read_all(cut), Err(CodecError::Io(_))));
        assert_eq!(
            read_all(&[]).unwrap(),
            vec![],
            "no bytes at all is a clean end"
        );
    }

    #[test]
    fn oversized_empty_and_unknown_frames_are_refused() {
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(read_all(&huge), Err(CodecError::TooLarge(_))));
        assert!(matches!(read_all(&[0, 0, 0, 0]), Err(CodecError::Empty)));
        assert!(matches!(
            read_all(&[0, 0, 0, 1, 9]),
            Err(CodecError::UnknownKind(9))
        ));
        assert!(matches!(
            read_all(&[0, 0, 0, 3, KIND_RAFT, 0xff, 0xff]),
            Err(CodecError::Raft(_))
        ));
    }
}
