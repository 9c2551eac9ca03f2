//! What a plugin writes to its standard error, kept for the error of a call
//! that fails. Rust's panic handler writes the panic message there just
//! before the trap, and plugins have no terminal, so without this an
//! author sees only "`unreachable` instruction executed".

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes kept: the end of a panic message with its location.
const KEPT: usize = 2048;
/// The longest text a failure quotes.
const QUOTED: usize = 600;

/// The last bytes one call wrote to standard error. Writing never fails and
/// never waits: older bytes make room for newer ones, so a plugin that
/// writes a lot costs a bounded copy and no memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail(Arc<Mutex<VecDeque<u8>>>);

impl Tail {
    fn kept(&self) -> MutexGuard<'_, VecDeque<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(KEPT)..];
        let mut kept = self.kept();
        let over = (kept.len() + bytes.len()).saturating_sub(KEPT);
        kept.drain(..over);
        kept.extend(bytes);
    }

    /// The last lines written, on one line, for an error message; `None`
    /// when the call wrote nothing worth quoting. Rust's advice about
    /// `RUST_BACKTRACE` is left out: a plugin has no environment to set.
    pub(crate) fn last_words(&self) -> Option<String> {
        let bytes: Vec<u8> = self.kept().iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        let joined = lines.join(" ");
        if joined.is_empty() {
            return None;
        }
        let start = joined
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| joined.len() - i <= QUOTED)
            .unwrap_or(joined.len());
        Some(if start == 0 {
            joined
        } else {
            format!("...{}", &joined[start..])
        })
    }
}

impl IsTerminal for Tail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Tail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for Tail {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for Tail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Any amount: what does not fit pushes older bytes out.
        Ok(64 << 10)
    }
}

impl AsyncWrite for Tail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_quoted_without_the_backtrace_advice() {
        let tail = Tail::default();
        assert_eq!(tail.last_words(), None);
        tail.push(b"thread '<unnamed>' panicked at src/lib.rs:40:13:\n");
        tail.push(b"oops, forgot this\n");
        tail.push(
            b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
        assert_eq!(
            tail.last_words().as_deref(),
            Some("thread '<unnamed>' panicked at src/lib.rs:40:13: oops, forgot this")
        );
    }

    #[test]
    fn only_the_end_of_a_flood_is_kept_and_quoted() {
        let tail = Tail::default();
        for i in 0..10_000 {
            tail.push(format!("line {i} é\n").as_bytes());
        }
        assert!(tail.kept().len() <= KEPT);
        let words = tail.last_words().unwrap_or_default();
        assert!(words.ends_with("line 9999 é"), "{words}");
        assert!(words.starts_with("..."), "{words}");
        assert!(words.len() <= QUOTED + 3, "{}", words.len());
    }
}
