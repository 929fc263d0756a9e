//! The client socket as the server holds it: every write bounded by the send timeout, and
//! the connection's slot under the cap and its place in the open-connections gauge held for
//! as long as the socket lives (through a WebSocket upgrade too, which keeps this socket).
//!
//! A write that cannot proceed (the client's receive window and our send buffer are full:
//! it stopped reading) starts a deadline; any progress clears it. Past the deadline the write
//! fails with `TimedOut`, and so does every later one, so whoever writes (hyper for a
//! response or an SSE stream, tungstenite for a WebSocket) ends the connection and frees what
//! it held.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;
use crate::metrics::connections::{CutReason, OpenConnection};

pub(super) struct GuardedStream<S> {
    inner: S,
    send_timeout: Duration,
    /// Armed while a write is blocked; reused across stalls.
    deadline: Option<Pin<Box<Sleep>>>,
    blocked: bool,
    stalled: Arc<AtomicBool>,
    metrics: Metrics,
    _slot: OwnedSemaphorePermit,
    _open: OpenConnection,
}

impl<S> GuardedStream<S> {
    pub fn new(
        inner: S,
        send_timeout: Duration,
        metrics: Metrics,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        let open = metrics.connections().opened();
        Self {
            inner,
            send_timeout,
            deadline: None,
            blocked: false,
            stalled: Arc::new(AtomicBool::new(false)),
            metrics,
            _slot: slot,
            _open: open,
        }
    }

    /// Set once a write timed out.
    pub fn stalled_flag(&self) -> Arc<AtomicBool> {
        self.stalled.clone()
    }

    fn timed_out() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading (send timeout)",
        )
    }

    /// After a write returned `Pending`: arms the deadline on the first one of a stall, and
    /// fails once it has passed.
    fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let until = Instant::now() + self.send_timeout;
        if !self.blocked {
            self.blocked = true;
            match &mut self.deadline {
                Some(sleep) => sleep.as_mut().reset(until),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(until))),
            }
        }
        let sleep = self.deadline.as_mut().expect("armed above");
        ready!(sleep.as_mut().poll(cx));
        if !self.stalled.swap(true, Ordering::Relaxed) {
            self.metrics.connections().closed(CutReason::SendTimeout);
        }
        Poll::Ready(Err(Self::timed_out()))
    }

    fn outcome<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => self.blocked(cx),
            ready => {
                self.blocked = false;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stalled.load(Ordering::Relaxed) {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.outcome(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.stalled.load(Ordering::Relaxed) {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.outcome(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.outcome(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
