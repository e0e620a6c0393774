//! Under TLS, whether the bytes arriving still turn into plaintext.
//!
//! The frame codec notices a stream that lost bytes (a checksum fails, or a
//! frame stops half-way), but under TLS it sees only what decrypts. When a
//! link drops bytes silently and then carries them again (a relay that
//! blackholed the link, then healed), the acceptor's TLS layer is left
//! inside a record whose rest was lost: it takes the new bytes as that
//! rest, and decrypts nothing until the record's announced length (up to
//! 16 KiB) has arrived. On a quiet link (votes, pings) that can take many
//! seconds, all of them lost for the peer's messages. So the acceptor
//! watches both sides of its TLS layer: bytes that came in and have not
//! turned into plaintext for [`super::STALL_TIMEOUT`] mean a broken stream,
//! and the connection is closed (the dialer reconnects at once).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// When the oldest raw byte not yet followed by plaintext arrived.
#[derive(Clone, Debug, Default)]
pub(super) struct Undecoded(Arc<Mutex<Option<Instant>>>);

impl Undecoded {
    fn arrived(&self) {
        let mut since = self.0.lock().unwrap_or_else(|e| e.into_inner());
        since.get_or_insert_with(Instant::now);
    }

    fn decoded(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether bytes have been waiting to decrypt for `limit` or longer.
    pub(super) fn stuck_for(&self, limit: Duration) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|since| since.elapsed() >= limit)
    }
}

/// The stream under TLS: notes each arrival of bytes.
pub(super) struct Raw<S> {
    inner: S,
    undecoded: Undecoded,
}

/// The stream over TLS: notes each piece of plaintext.
pub(super) struct Plain<S> {
    inner: S,
    undecoded: Undecoded,
}

impl<S> Raw<S> {
    pub(super) fn new(inner: S, undecoded: Undecoded) -> Raw<S> {
        Raw { inner, undecoded }
    }
}

impl<S> Plain<S> {
    pub(super) fn new(inner: S, undecoded: Undecoded) -> Plain<S> {
        Plain { inner, undecoded }
    }
}

/// Reads through `inner`, then tells `on_bytes` if any came.
fn read_noting<S: AsyncRead + Unpin>(
    inner: &mut S,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    on_bytes: impl FnOnce(),
) -> Poll<io::Result<()>> {
    let before = buf.filled().len();
    let polled = Pin::new(inner).poll_read(cx, buf);
    if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
        on_bytes();
    }
    polled
}

impl<S: AsyncRead + Unpin> AsyncRead for Raw<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let undecoded = &this.undecoded;
        read_noting(&mut this.inner, cx, buf, || undecoded.arrived())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Plain<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let undecoded = &this.undecoded;
        read_noting(&mut this.inner, cx, buf, || undecoded.decoded())
    }
}

macro_rules! write_through {
    ($wrapper:ident) => {
        impl<S: AsyncWrite + Unpin> AsyncWrite for $wrapper<S> {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().inner).poll_flush(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
            }
        }
    };
}

write_through!(Raw);
write_through!(Plain);

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn bytes_that_never_become_plaintext_are_stuck_and_plaintext_clears_them() {
        let undecoded = Undecoded::default();
        let (mut far, near) = tokio::io::duplex(64);
        let mut raw = Raw::new(near, undecoded.clone());
        assert!(!undecoded.stuck_for(Duration::ZERO), "nothing arrived yet");

        far.write_all(b"partial record").await.unwrap();
        let mut buf = [0u8; 64];
        let n = raw.read(&mut buf).await.unwrap();
        assert_eq!(n, 14);
        assert!(undecoded.stuck_for(Duration::ZERO));
        assert!(!undecoded.stuck_for(Duration::from_secs(60)));

        // More raw bytes keep the first arrival's time.
        tokio::time::sleep(Duration::from_millis(30)).await;
        far.write_all(b"more").await.unwrap();
        assert_eq!(raw.read(&mut buf).await.unwrap(), 4);
        assert!(undecoded.stuck_for(Duration::from_millis(30)));

        // Plaintext read above the (here absent) TLS layer clears it.
        let (mut far_plain, near_plain) = tokio::io::duplex(64);
        let mut plain = Plain::new(near_plain, undecoded.clone());
        far_plain.write_all(b"frame").await.unwrap();
        assert_eq!(plain.read(&mut buf).await.unwrap(), 5);
        assert!(!undecoded.stuck_for(Duration::ZERO));
    }
}
