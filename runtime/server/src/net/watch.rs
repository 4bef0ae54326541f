//! What a connection is doing and since when, so that one watchdog per connection holds it to
//! the time limits hyper has no timer for: the headers of a request (from the connection's
//! opening, or from a kept-alive connection's next byte), the idle time between requests, and
//! a response the client does not read. (The body's own limit is enforced where it is read,
//! `crate::body`, since only the handler knows how much has arrived.)

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::limits::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's headers to end.
    Head,
    /// A request is being served: its body read (under the body limits), the engine run, the
    /// response written.
    Busy,
    /// Between requests on a kept-alive connection.
    Idle,
}

/// Which limit a connection ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Its headers did not arrive within `header_timeout` (answered 408).
    Head,
    /// It stayed idle past `keep_alive_timeout` (closed, as HTTP/1.1 allows).
    Idle,
    /// It did not read its response for `body_timeout` (closed).
    Stalled,
}

struct State {
    phase: Phase,
    since: Instant,
    write_blocked_since: Option<Instant>,
}

/// One connection's phase, shared by its IO (which sees bytes), its service (which sees
/// requests and responses) and its watchdog.
pub struct Watch {
    state: Mutex<State>,
    changed: Notify,
    header_timeout: Duration,
    keep_alive_timeout: Duration,
    write_timeout: Duration,
}

impl Watch {
    /// A connection just opened: its first request's headers are due within `header_timeout`.
    pub fn new(limits: &Limits) -> Arc<Watch> {
        Arc::new(Watch {
            state: Mutex::new(State {
                phase: Phase::Head,
                since: Instant::now(),
                write_blocked_since: None,
            }),
            changed: Notify::new(),
            header_timeout: limits.header_timeout,
            keep_alive_timeout: limits.keep_alive_timeout,
            write_timeout: limits.body_timeout,
        })
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state);
        drop(state);
        self.changed.notify_one();
    }

    /// Bytes arrived: on an idle connection, a new request's headers have begun.
    fn bytes_read(&self) {
        let idle = self.state.lock().unwrap_or_else(|p| p.into_inner()).phase == Phase::Idle;
        if idle {
            self.update(|s| {
                s.phase = Phase::Head;
                s.since = Instant::now();
            });
        }
    }

    /// The headers ended and the request went to the router.
    pub fn request_started(&self) {
        self.update(|s| {
            s.phase = Phase::Busy;
            s.since = Instant::now();
        });
    }

    /// The response was handed to the connection in full.
    pub fn response_done(&self) {
        self.update(|s| {
            s.phase = Phase::Idle;
            s.since = Instant::now();
        });
    }

    fn write_blocked(&self, blocked: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match (blocked, state.write_blocked_since) {
            (true, None) => {
                state.write_blocked_since = Some(Instant::now());
                drop(state);
                self.changed.notify_one();
            }
            (false, Some(_)) => state.write_blocked_since = None,
            _ => {}
        }
    }

    /// The limit that has run out, if one has, else when the next one runs out.
    fn check(&self, now: Instant) -> Result<Option<Instant>, Expired> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let phase = match state.phase {
            Phase::Head => Some((state.since + self.header_timeout, Expired::Head)),
            Phase::Idle => Some((state.since + self.keep_alive_timeout, Expired::Idle)),
            Phase::Busy => None,
        };
        let write = state
            .write_blocked_since
            .map(|since| (since + self.write_timeout, Expired::Stalled));
        let mut next = None;
        for (deadline, limit) in phase.into_iter().chain(write) {
            if deadline <= now {
                return Err(limit);
            }
            next = Some(next.map_or(deadline, |n: Instant| n.min(deadline)));
        }
        Ok(next)
    }

    /// Resolves when a limit runs out.
    pub async fn expired(&self) -> Expired {
        loop {
            let changed = self.changed.notified();
            match self.check(Instant::now()) {
                Err(limit) => return limit,
                Ok(Some(deadline)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = changed => {}
                    }
                }
                Ok(None) => changed.await,
            }
        }
    }
}

/// A connection's IO, telling its [`Watch`] when bytes arrive and when writing blocks.
pub struct Watched<T> {
    io: T,
    watch: Arc<Watch>,
}

impl<T> Watched<T> {
    pub fn new(io: T, watch: Arc<Watch>) -> Self {
        Watched { io, watch }
    }

    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.bytes_read();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch.write_blocked(poll.is_pending());
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch.write_blocked(poll.is_pending());
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.watch.write_blocked(poll.is_pending());
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Arc<Watch> {
        let mut limits = crate::limits::tests::limits();
        limits.header_timeout = Duration::from_secs(2);
        limits.keep_alive_timeout = Duration::from_secs(5);
        limits.body_timeout = Duration::from_secs(3);
        Watch::new(&limits)
    }

    #[tokio::test(start_paused = true)]
    async fn headers_are_due_from_the_opening_and_idle_is_timed_apart() {
        let w = watch();
        let opened = Instant::now();
        assert_eq!(w.expired().await, Expired::Head);
        assert_eq!(opened.elapsed(), Duration::from_secs(2));

        let w = watch();
        w.request_started();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            w.check(Instant::now()),
            Ok(None),
            "a request being served has no deadline here"
        );
        w.response_done();
        let idle = Instant::now();
        tokio::time::sleep(Duration::from_secs(4)).await;
        // A byte of the next request: its headers are due 2 s from now, before idle runs out.
        w.bytes_read();
        assert_eq!(w.expired().await, Expired::Head);
        assert_eq!(idle.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unread_response_stalls_the_connection() {
        let w = watch();
        w.request_started();
        w.write_blocked(true);
        let blocked = Instant::now();
        assert_eq!(w.expired().await, Expired::Stalled);
        assert_eq!(blocked.elapsed(), Duration::from_secs(3));
        w.write_blocked(false);
        assert_eq!(w.check(Instant::now()), Ok(None));
        w.response_done();
        assert_eq!(w.expired().await, Expired::Idle);
    }
}
