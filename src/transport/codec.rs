//! The wire format between peers: length-prefixed frames.
//!
//! ```text
//! v1 frame = length:u32be kind:u8 body                   (length counts kind + body)
//! v2 frame = length:u32be kind:u8 head_crc:u32be body body_crc:u32be
//!            head_crc = CRC-32 of the first 5 bytes, body_crc = CRC-32 of the body
//! kind 3   = challenge: 32 random bytes, then the wire versions the acceptor reads
//!            (one byte, 2), sent by the accepting side first (v1 framing)
//! kind 1   = hello: JSON {"node_id", "url", "cluster_id", "proof", "wire"}, the
//!            dialer's answer (v1 framing)
//! kind 2   = raft: one Raft message ([`PeerMessage`], protobuf inside)
//! kind 4   = ping: empty; a v2 dialer sends one on a link idle for a while
//! ```
//!
//! After the challenge and the hello, the dialing node sends only `raft`
//! (and, in v2, `ping`) frames, in the framing its hello named: v2 when the
//! challenge offered it, else v1 (a node of the previous version, which
//! ignores the extra challenge byte and proves over it like the rest).
//!
//! Why v2: a link whose bytes were lost in the middle (a relay that drops
//! what it is given and then carries on) leaves the receiver reading the
//! middle of a frame as a length. In v1 it then waits for up to 64 MiB that
//! never come, while every message the sender writes disappears into that
//! "frame"; the sender sees successful writes. In v2 a misplaced header
//! fails its CRC at once and a frame whose tail was lost fails its body CRC
//! (or stalls, see [`Limits::stall`]): the receiver closes the connection,
//! the dialer notices and reconnects, and no corrupted message is stepped.
//!
//! Memory follows bytes that arrived, never a declared length: a body is
//! read in pieces of at most 64 KiB, and a length over the phase's limit
//! ([`PRE_AUTH_MAX_FRAME`] before the hello is verified, [`MAX_FRAME`]
//! after) or an unexpected kind ends the connection at the header.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::raft::{MessageDecodeError, PeerMessage};

/// Larger than any batch of entries raft-rs sends (`max_size_per_msg`).
pub const MAX_FRAME: usize = 64 << 20;
/// The most a peer may send before its hello is verified: a hello is a few
/// hundred bytes (its URL is at most [`crate::config::MAX_URL_LEN`]).
pub const PRE_AUTH_MAX_FRAME: usize = 8 << 10;
/// The framing this build reads after the hello, offered in the challenge.
pub const WIRE_V2: u8 = 2;

pub const KIND_HELLO: u8 = 1;
pub const KIND_RAFT: u8 = 2;
pub const KIND_CHALLENGE: u8 = 3;
pub const KIND_PING: u8 = 4;

/// Bytes read from the socket at a time while a body arrives.
const READ_PIECE: usize = 64 << 10;
/// A read buffer grown past this by a large frame is given back after it.
const KEEP_CAPACITY: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub node_id: u64,
    /// The sender's `advertise_url`, for `/api/cluster` and browser failover.
    pub url: String,
    /// The sender's cluster: peers of another cluster are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Proof the sender knows the `cluster_secret` (see `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The framing the sender uses after this hello (absent: v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<u8>,
    /// The sender's version (absent: a build from before versions were
    /// announced), for the cluster version (`crate::version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Challenge(Vec<u8>),
    Hello(Hello),
    Raft(PeerMessage),
    Ping,
}

/// Which framing a stream uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    V1,
    V2,
}

impl Wire {
    /// The framing a hello announces.
    pub fn of(hello: &Hello) -> Wire {
        match hello.wire {
            Some(v) if v >= WIRE_V2 => Wire::V2,
            _ => Wire::V1,
        }
    }

    fn header_len(self) -> usize {
        match self {
            Wire::V1 => 5,
            Wire::V2 => 9,
        }
    }
}

/// What a reader accepts in one phase of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub wire: Wire,
    /// The largest length a header may declare.
    pub max_frame: usize,
    /// The kinds allowed: anything else ends the connection at the header.
    pub kinds: &'static [u8],
    /// Once a frame has begun, each further piece must arrive within this:
    /// a frame whose rest never comes is a broken stream, not a slow peer.
    pub stall: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("empty frame")]
    Empty,
    #[error("unexpected frame kind {0}")]
    UnexpectedKind(u8),
    #[error("a frame header failed its checksum: the stream lost bytes")]
    HeaderChecksum,
    #[error("a frame body failed its checksum: the stream lost bytes")]
    BodyChecksum,
    #[error("no progress inside a frame for {0:?}: the stream lost bytes")]
    Stalled(Duration),
    #[error("undecodable hello: {0}")]
    Hello(#[from] serde_json::Error),
    #[error("undecodable raft message: {0}")]
    Raft(#[from] MessageDecodeError),
}

impl CodecError {
    /// A short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            CodecError::Io(_) => "io",
            CodecError::TooLarge(..) => "frame_too_large",
            CodecError::Empty | CodecError::UnexpectedKind(_) => "bad_frame",
            CodecError::HeaderChecksum | CodecError::BodyChecksum | CodecError::Stalled(_) => {
                "stream_out_of_sync"
            }
            CodecError::Hello(_) | CodecError::Raft(_) => "undecodable",
        }
    }
}

/// Appends `frame` to `out` in framing `wire`; several frames in one buffer
/// go out in one write.
pub fn encode(frame: &Frame, out: &mut Vec<u8>, wire: Wire) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let kind = match frame {
        Frame::Challenge(_) => KIND_CHALLENGE,
        Frame::Hello(_) => KIND_HELLO,
        Frame::Raft(_) => KIND_RAFT,
        Frame::Ping => KIND_PING,
    };
    out.push(kind);
    if wire == Wire::V2 {
        out.extend_from_slice(&[0; 4]);
    }
    let body = out.len();
    match frame {
        Frame::Challenge(bytes) => out.extend_from_slice(bytes),
        // A struct of strings and integers always serializes.
        Frame::Hello(hello) => serde_json::to_writer(&mut *out, hello).expect("hello serializes"),
        Frame::Raft(message) => message.encode_into(out),
        Frame::Ping => {}
    }
    let length = (out.len() - body + 1) as u32;
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
    if wire == Wire::V2 {
        let head = crc32fast::hash(&out[start..start + 5]);
        out[start + 5..start + 9].copy_from_slice(&head.to_be_bytes());
        let sum = crc32fast::hash(&out[body..]);
        out.extend_from_slice(&sum.to_be_bytes());
    }
}

/// Reads exactly `buf.len()` bytes, each piece within `stall`.
async fn read_within<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    stall: Duration,
) -> Result<(), CodecError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = tokio::time::timeout(stall, reader.read(&mut buf[filled..]))
            .await
            .map_err(|_| CodecError::Stalled(stall))??;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        filled += n;
    }
    Ok(())
}

/// Reads one frame under `limits`; `Ok(None)` at a clean end of stream
/// between frames. Waiting for a frame to begin is not bounded here (the
/// caller bounds idleness); once it has begun, [`Limits::stall`] applies.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Option<Frame>, CodecError> {
    let mut header = [0u8; 9];
    let header = &mut header[..limits.wire.header_len()];
    if reader.read(&mut header[..1]).await? == 0 {
        return Ok(None);
    }
    read_within(reader, &mut header[1..], limits.stall).await?;
    if limits.wire == Wire::V2 {
        let expected = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        if crc32fast::hash(&header[..5]) != expected {
            return Err(CodecError::HeaderChecksum);
        }
    }
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let kind = header[4];
    if length == 0 {
        return Err(CodecError::Empty);
    }
    if length > limits.max_frame {
        return Err(CodecError::TooLarge(length, limits.max_frame));
    }
    if !limits.kinds.contains(&kind) {
        return Err(CodecError::UnexpectedKind(kind));
    }
    // The body arrives piece by piece: what is allocated is what came.
    buf.clear();
    let mut remaining = length - 1;
    while remaining > 0 {
        let start = buf.len();
        let piece = remaining.min(READ_PIECE);
        buf.resize(start + piece, 0);
        let n = tokio::time::timeout(limits.stall, reader.read(&mut buf[start..]))
            .await
            .map_err(|_| CodecError::Stalled(limits.stall))??;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        buf.truncate(start + n);
        remaining -= n;
    }
    if limits.wire == Wire::V2 {
        let mut sum = [0u8; 4];
        read_within(reader, &mut sum, limits.stall).await?;
        if crc32fast::hash(buf) != u32::from_be_bytes(sum) {
            return Err(CodecError::BodyChecksum);
        }
    }
    let frame = decode_body(kind, buf);
    if buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::with_capacity(READ_PIECE);
    }
    frame.map(Some)
}

fn decode_body(kind: u8, body: &[u8]) -> Result<Frame, CodecError> {
    match kind {
        KIND_CHALLENGE => Ok(Frame::Challenge(body.to_vec())),
        KIND_HELLO => Ok(Frame::Hello(serde_json::from_slice(body)?)),
        KIND_RAFT => Ok(Frame::Raft(PeerMessage::decode(body)?)),
        KIND_PING => Ok(Frame::Ping),
        other => Err(CodecError::UnexpectedKind(other)),
    }
}

#[cfg(test)]
mod tests;
