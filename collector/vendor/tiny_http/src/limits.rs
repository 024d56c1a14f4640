//! spartakus patch: what one client may hold, and for how long.
//!
//! Upstream set no socket timeouts, accepted any number of connections, and
//! read bodies over 1 KiB on the thread that handles the request, so a few
//! slow or idle clients could hold every worker thread. `Limits` bounds each
//! of those; `Deadline` enforces a whole-request time limit at the socket, so
//! a client trickling one byte at a time cannot stretch a request forever.

use std::convert::TryFrom;
use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits on connections and requests, for `Server::from_listener_with_limits`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Each read and each write on a connection; an idle connection is
    /// closed after this long.
    pub io_timeout: Option<Duration>,
    /// From the start of a request's head to the end of reading its body.
    pub request_timeout: Option<Duration>,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Bodies up to this size are read by the connection's own thread before
    /// the request is handed out, so a slow client holds its own thread and
    /// not the one serving requests.
    pub preread_bytes: usize,
}

impl Default for Limits {
    /// Upstream's behaviour.
    fn default() -> Limits {
        Limits {
            io_timeout: None,
            request_timeout: None,
            max_connections: usize::MAX,
            preread_bytes: 1024,
        }
    }
}

/// A reader that fails with `TimedOut` once the current request's deadline
/// has passed. The deadline is checked before each read of the socket (not
/// of the buffer above it), so it costs one clock read per system call.
pub(crate) struct Deadline<R> {
    inner: R,
    clock: Clock,
}

/// The deadline of the request being read on one connection, shared by the
/// connection (which sets it) and the socket reader (which checks it).
#[derive(Clone)]
pub(crate) struct Clock {
    base: Instant,
    /// Milliseconds after `base`; `u64::MAX` means none.
    deadline_ms: Arc<AtomicU64>,
    limit: Option<Duration>,
}

impl Clock {
    pub(crate) fn new(limit: Option<Duration>) -> Clock {
        Clock {
            base: Instant::now(),
            deadline_ms: Arc::new(AtomicU64::new(u64::MAX)),
            limit,
        }
    }

    /// A new request starts now.
    pub(crate) fn start(&self) {
        if let Some(limit) = self.limit {
            let at = self.base.elapsed() + limit;
            let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
            self.deadline_ms.store(ms, Ordering::Relaxed);
        }
    }

    fn expired(&self) -> bool {
        let deadline = self.deadline_ms.load(Ordering::Relaxed);
        deadline != u64::MAX && self.base.elapsed().as_millis() > u128::from(deadline)
    }
}

impl<R> Deadline<R> {
    pub(crate) fn new(inner: R, clock: Clock) -> Deadline<R> {
        Deadline { inner, clock }
    }
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.clock.expired() {
            return Err(IoError::new(ErrorKind::TimedOut, "request took too long"));
        }
        self.inner.read(buf)
    }
}
