//! spartakus patch: a request body that cannot poison its connection.
//!
//! Upstream drains an unread body on drop into `vec![0; remaining]`, so a
//! client declaring `Content-Length: 1000000000000` made the server allocate
//! a terabyte and abort, and a chunked body left unread was parsed as the next
//! request (request smuggling). `BodyGuard` drains at most `DRAIN_LIMIT` bytes
//! through a fixed buffer; past that it marks the connection poisoned and the
//! `ClientConnection` closes it instead of reading another request.

use std::io::{Read, Result as IoResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An unread remainder larger than this closes the connection instead.
const DRAIN_LIMIT: usize = 64 * 1024;

pub struct BodyGuard<R: Read> {
    inner: R,
    done: bool,
    poisoned: Arc<AtomicBool>,
}

impl<R: Read> BodyGuard<R> {
    pub fn new(inner: R, poisoned: Arc<AtomicBool>) -> Self {
        BodyGuard {
            inner,
            done: false,
            poisoned,
        }
    }
}

impl<R: Read> Read for BodyGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
        }
        Ok(n)
    }
}

impl<R: Read> Drop for BodyGuard<R> {
    fn drop(&mut self) {
        if self.poisoned.load(Ordering::Acquire) {
            return; // Request::close_connection: no draining
        }
        let mut drained = 0;
        let mut buf = [0u8; 8192];
        while !self.done && drained < DRAIN_LIMIT {
            match self.inner.read(&mut buf) {
                Ok(0) => self.done = true,
                Ok(n) => drained += n,
                Err(_) => break,
            }
        }
        if !self.done {
            self.poisoned.store(true, Ordering::Release);
        }
    }
}
