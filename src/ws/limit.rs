//! A guard in front of the WebSocket frame parser: the client's bytes pass
//! through it before `actix-web-actors` sees them.
//!
//! That parser checks its frame size limit only once the whole frame has
//! arrived, and buffers everything the socket delivers meanwhile: one
//! header declaring 2^62 bytes followed by a stream of bytes grew a node by
//! 1.5 GB. This guard reads the frame headers itself as the bytes go by (it
//! never holds more than a header), and ends the stream at the first header
//! that declares more than [`MAX_FRAME`], or at the first data frame that
//! takes a message (its continuation frames added up) past
//! [`MAX_MESSAGE`]. It also meters the bytes: past [`BURST`], the client
//! gets [`RATE`] bytes a second, and the socket is simply not read until
//! its budget allows, so the parser's buffer cannot outgrow what it decodes.
//! Both are plain values ([`FrameWatch`], [`Meter`]) under the stream
//! ([`FrameGuard`]), tested on their own.
//!
//! Kept beside the session instead of moving to `actix-ws`: it is the one
//! thing `actix-web-actors` lacked for the session, and the crate list of
//! the project names `actix-web-actors`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

/// The largest frame a client may send: its protocol is `{"type":"ping"}`
/// and a `presence` frame of two ids.
pub const MAX_FRAME: u64 = 64 << 10;
/// The largest message (a frame and its continuations).
pub const MAX_MESSAGE: u64 = 64 << 10;
/// Bytes a client may send at once before the meter applies.
pub const BURST: i64 = 256 << 10;
/// Bytes per second a client may send after its burst.
pub const RATE: i64 = 64 << 10;

/// Why the guard ended a client's stream, for the session's close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    FrameTooLarge,
    MessageTooLarge,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::FrameTooLarge => "frame_too_large",
            Refused::MessageTooLarge => "message_too_large",
        }
    }
}

/// Where the guard is in the byte stream.
enum Position {
    /// Inside a header: the bytes seen so far.
    Header { bytes: [u8; 14], have: usize },
    /// Inside a payload: how many bytes of it are still to come.
    Payload { remaining: u64 },
}

/// Follows the frame structure of a byte stream, one chunk at a time,
/// holding at most one header: the first frame or message over the limits
/// is refused at its header, before its payload.
pub struct FrameWatch {
    position: Position,
    /// Payload bytes of the message under way (data frames, continuations).
    message: u64,
}

impl Default for FrameWatch {
    fn default() -> FrameWatch {
        FrameWatch {
            position: Position::Header {
                bytes: [0; 14],
                have: 0,
            },
            message: 0,
        }
    }
}

impl FrameWatch {
    /// Follows `chunk` through the frame structure; the first violation.
    pub fn inspect(&mut self, mut chunk: &[u8]) -> Result<(), Refused> {
        while !chunk.is_empty() {
            match &mut self.position {
                Position::Payload { remaining } => {
                    let n = (*remaining).min(chunk.len() as u64);
                    *remaining -= n;
                    chunk = &chunk[n as usize..];
                    if *remaining == 0 {
                        self.position = Position::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                Position::Header { bytes, have } => {
                    bytes[*have] = chunk[0];
                    *have += 1;
                    chunk = &chunk[1..];
                    if let Some((fin, opcode, length)) = header(&bytes[..*have]) {
                        self.on_header(fin, opcode, length)?;
                        self.position = if length == 0 {
                            Position::Header {
                                bytes: [0; 14],
                                have: 0,
                            }
                        } else {
                            Position::Payload { remaining: length }
                        };
                    }
                }
            }
        }
        Ok(())
    }

    fn on_header(&mut self, fin: bool, opcode: u8, length: u64) -> Result<(), Refused> {
        if length > MAX_FRAME {
            return Err(Refused::FrameTooLarge);
        }
        // Continuation, text, binary: part of a message. Control frames may
        // come between its fragments and are not part of it.
        if opcode <= 0x2 {
            if opcode != 0x0 {
                self.message = 0;
            }
            self.message += length;
            if self.message > MAX_MESSAGE {
                return Err(Refused::MessageTooLarge);
            }
            if fin {
                self.message = 0;
            }
        }
        Ok(())
    }
}

/// The byte meter: [`BURST`] bytes at once, then [`RATE`] a second. The
/// caller says what time it is, so it can be driven without a clock.
pub struct Meter {
    /// Bytes the client may still send now (may go below zero by a chunk).
    budget: i64,
    refilled: Instant,
}

impl Meter {
    /// A full burst, as of `now`.
    pub fn new(now: Instant) -> Meter {
        Meter {
            budget: BURST,
            refilled: now,
        }
    }

    /// Adds what the time since the last refill earned, up to the burst.
    pub fn refill(&mut self, now: Instant) {
        let earned = (now - self.refilled).as_secs_f64() * RATE as f64;
        if earned >= 1.0 {
            self.budget = (self.budget + earned as i64).min(BURST);
            self.refilled = now;
        }
    }

    /// The client sent `bytes`.
    pub fn spend(&mut self, bytes: usize) {
        self.budget -= bytes as i64;
    }

    /// How long the socket must rest before it is read again; `None` while
    /// the budget allows reading now.
    pub fn wait(&self) -> Option<Duration> {
        (self.budget <= 0).then(|| Duration::from_secs_f64((1 - self.budget) as f64 / RATE as f64))
    }
}

/// The client's bytes, watched. `refused` tells the session why it ended.
pub struct FrameGuard<S> {
    inner: S,
    watch: FrameWatch,
    refused: Rc<Cell<Option<Refused>>>,
    meter: Meter,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, refused: Rc<Cell<Option<Refused>>>) -> FrameGuard<S> {
        FrameGuard {
            inner,
            watch: FrameWatch::default(),
            refused,
            meter: Meter::new(Instant::now()),
            wait: None,
        }
    }
}

/// `(fin, opcode, payload length)` once `bytes` hold a whole header (the
/// length field and the 4-byte mask clients must send); `None` before.
fn header(bytes: &[u8]) -> Option<(bool, u8, u64)> {
    if bytes.len() < 2 {
        return None;
    }
    let fin = bytes[0] & 0x80 != 0;
    let opcode = bytes[0] & 0x0f;
    let masked = bytes[1] & 0x80 != 0;
    let mask = if masked { 4 } else { 0 };
    let (length, at) = match bytes[1] & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
            4,
        ),
        127 => {
            let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(raw), 10)
        }
        n => (u64::from(n), 2),
    };
    (bytes.len() >= at + mask).then_some((fin, opcode, length))
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.refused.get().is_some() {
            return Poll::Ready(None);
        }
        if let Some(wait) = &mut this.wait {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.wait = None;
        }
        this.meter.refill(Instant::now());
        if let Some(needed) = this.meter.wait() {
            let mut wait = Box::pin(tokio::time::sleep(needed));
            // Registers the waker; the sleep is at least a tick long.
            if wait.as_mut().poll(cx).is_pending() {
                this.wait = Some(wait);
                return Poll::Pending;
            }
            this.meter.refill(Instant::now());
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.meter.spend(chunk.len());
                match this.watch.inspect(&chunk) {
                    Ok(()) => Poll::Ready(Some(Ok(chunk))),
                    Err(refused) => {
                        this.refused.set(Some(refused));
                        Poll::Ready(Some(Err(PayloadError::Overflow)))
                    }
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn frame(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match length {
            0..=125 => out.push(0x80 | length as u8),
            126..=65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&length.to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out.extend(std::iter::repeat_n(b'x', length.min(1 << 20) as usize));
        out
    }

    /// Feeds `bytes` in chunks of `chunk` and collects what passed.
    fn run(bytes: Vec<u8>, chunk: usize) -> (usize, Option<Refused>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let chunks: Vec<Result<Bytes, PayloadError>> = bytes
                .chunks(chunk)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let refused = Rc::new(Cell::new(None));
            let mut guard = FrameGuard::new(futures_util::stream::iter(chunks), refused.clone());
            let mut passed = 0;
            while let Some(item) = guard.next().await {
                match item {
                    Ok(c) => passed += c.len(),
                    Err(_) => break,
                }
            }
            (passed, refused.get())
        })
    }

    #[test]
    fn the_watch_refuses_an_oversized_frame_at_its_header_and_passes_the_rest() {
        let mut watch = FrameWatch::default();
        let mut ok = frame(true, 0x1, 15);
        ok.extend(frame(true, 0x9, 0));
        ok.extend(frame(true, 0x2, MAX_FRAME));
        assert_eq!(watch.inspect(&ok), Ok(()));
        let oversized = frame(true, 0x2, MAX_FRAME + 1);
        // The header alone (2 + 8 length bytes + 4 mask bytes) is enough.
        assert_eq!(watch.inspect(&oversized[..14]), Err(Refused::FrameTooLarge));
    }

    #[test]
    fn the_watch_reads_a_header_that_arrives_one_byte_at_a_time() {
        let mut watch = FrameWatch::default();
        let oversized = frame(false, 0x1, MAX_FRAME + 1);
        for byte in &oversized[..13] {
            assert_eq!(watch.inspect(std::slice::from_ref(byte)), Ok(()));
        }
        assert_eq!(
            watch.inspect(&oversized[13..14]),
            Err(Refused::FrameTooLarge)
        );
    }

    #[test]
    fn the_watch_adds_up_continuations_but_not_the_control_frames_between_them() {
        let mut watch = FrameWatch::default();
        assert_eq!(watch.inspect(&frame(false, 0x1, MAX_MESSAGE - 10)), Ok(()));
        assert_eq!(watch.inspect(&frame(true, 0x9, 100)), Ok(()), "a ping");
        assert_eq!(watch.inspect(&frame(false, 0x0, 10)), Ok(()));
        assert_eq!(
            watch.inspect(&frame(true, 0x0, 1)),
            Err(Refused::MessageTooLarge)
        );
    }

    #[test]
    fn the_meter_allows_a_burst_then_asks_for_a_rest_that_pays_for_the_overdraft() {
        let start = Instant::now();
        let mut meter = Meter::new(start);
        assert_eq!(meter.wait(), None, "a full burst");
        meter.spend(BURST as usize - 1);
        assert_eq!(meter.wait(), None, "one byte left");
        meter.spend(1 + RATE as usize);
        assert_eq!(
            meter.wait(),
            Some(Duration::from_secs_f64(1.0 + 1.0 / RATE as f64))
        );
        meter.refill(start + Duration::from_secs(1));
        assert_eq!(
            meter.wait(),
            Some(Duration::from_secs_f64(1.0 / RATE as f64))
        );
        meter.refill(start + Duration::from_secs(2));
        assert_eq!(meter.wait(), None, "a second more pays it back");
    }

    #[test]
    fn the_meter_never_saves_more_than_one_burst() {
        let start = Instant::now();
        let mut meter = Meter::new(start);
        meter.refill(start + Duration::from_secs(3600));
        meter.spend(BURST as usize);
        assert!(meter.wait().is_some(), "an hour idle still buys one burst");
    }

    #[test]
    fn the_reported_header_is_refused_before_its_payload() {
        // 82 FF 40 00 00 00 00 00 00 00 + mask: a binary frame of 2^62 bytes.
        let mut attack = vec![0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9];
        attack.extend(std::iter::repeat_n(0u8, 1 << 20));
        let (passed, refused) = run(attack, 4096);
        assert_eq!(refused, Some(Refused::FrameTooLarge));
        assert!(passed < 4096, "{passed} bytes went on to the parser");
    }

    #[test]
    fn headers_split_across_chunks_are_read_whole() {
        let mut ok = Vec::new();
        for _ in 0..50 {
            ok.extend(frame(true, 0x1, 15));
            ok.extend(frame(true, 0x9, 0));
            ok.extend(frame(true, 0x2, 60_000));
        }
        for chunk in [1, 3, 7, 1000] {
            let (passed, refused) = run(ok.clone(), chunk);
            assert_eq!((passed, refused), (ok.len(), None), "chunks of {chunk}");
        }
        let mut bad = frame(true, 0x1, 15);
        bad.extend(frame(true, 0x2, MAX_FRAME + 1));
        for chunk in [1, 2, 5, 64] {
            assert_eq!(run(bad.clone(), chunk).1, Some(Refused::FrameTooLarge));
        }
    }

    #[test]
    fn a_message_is_bounded_across_its_continuations() {
        let mut fragments = frame(false, 0x1, 30_000);
        fragments.extend(frame(true, 0xA, 4)); // a pong between fragments
        fragments.extend(frame(false, 0x0, 30_000));
        fragments.extend(frame(true, 0x0, 6_000));
        assert_eq!(
            run(fragments.clone(), 1000).1,
            Some(Refused::MessageTooLarge)
        );
        // Each message on its own is fine, however many there are.
        let mut many = Vec::new();
        for _ in 0..20 {
            many.extend(frame(false, 0x2, 30_000));
            many.extend(frame(true, 0x0, 30_000));
        }
        assert_eq!(run(many, 4096).1, None);
    }

    #[test]
    fn past_its_burst_a_client_is_metered_not_buffered() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let total = BURST as usize + 4 * RATE as usize;
            let mut bytes = Vec::new();
            while bytes.len() < total {
                bytes.extend(frame(true, 0x2, 8_000));
            }
            let chunks: Vec<Result<Bytes, PayloadError>> = bytes
                .chunks(8_192)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let refused = Rc::new(Cell::new(None));
            let mut guard = FrameGuard::new(futures_util::stream::iter(chunks), refused);
            let start = tokio::time::Instant::now();
            let mut passed = 0;
            while let Some(Ok(c)) = guard.next().await {
                passed += c.len();
            }
            assert_eq!(passed, bytes.len());
            let took = start.elapsed();
            assert!(
                took >= Duration::from_secs(3),
                "{} bytes passed in {took:?}",
                bytes.len()
            );
        });
    }
}
