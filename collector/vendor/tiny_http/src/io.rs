//! The bytes of one connection: `Socket`, a TCP stream that enforces the
//! idle timeout, the whole-request deadline and the shutdown flag on every
//! system call; `Stream`, plain or TLS over it; and `Input`, the one fixed
//! buffer a connection reads through. Knows nothing of HTTP.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// While waiting for a request, the socket wakes this often to see whether
/// the server is stopping.
const IDLE_TICK: Duration = Duration::from_secs(1);

pub struct Socket<'s> {
    tcp: TcpStream,
    io_timeout: Duration,
    request_timeout: Duration,
    /// `None`: idle, between requests; the first byte that arrives starts the
    /// request's deadline.
    deadline: Option<Instant>,
    /// The timeout the socket has now, to skip the system call that sets it.
    read_timeout: Duration,
    stopping: &'s AtomicBool,
}

fn timed_out() -> io::Error {
    io::Error::from(ErrorKind::TimedOut)
}

impl<'s> Socket<'s> {
    pub fn new(
        tcp: TcpStream,
        io_timeout: Duration,
        request_timeout: Duration,
        stopping: &'s AtomicBool,
    ) -> io::Result<Socket<'s>> {
        tcp.set_read_timeout(Some(io_timeout))?;
        tcp.set_write_timeout(Some(io_timeout))?;
        tcp.set_nodelay(true)?;
        Ok(Socket {
            tcp,
            io_timeout,
            request_timeout,
            deadline: None,
            read_timeout: io_timeout,
            stopping,
        })
    }

    /// Starts the current request's deadline, unless it has started.
    pub fn start_request(&mut self) {
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.request_timeout);
        }
    }

    /// Between requests: no deadline until the next one's first byte.
    pub fn idle(&mut self) {
        self.deadline = None;
    }

    fn remaining(&self) -> io::Result<Duration> {
        let left = match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => self.io_timeout,
        };
        match left.min(self.io_timeout) {
            Duration::ZERO => Err(timed_out()),
            left => Ok(left),
        }
    }

    fn set_read_timeout(&mut self, t: Duration) -> io::Result<()> {
        if t != self.read_timeout {
            self.tcp.set_read_timeout(Some(t))?;
            self.read_timeout = t;
        }
        Ok(())
    }

    pub fn shutdown(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

impl Read for Socket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some() {
            let left = self.remaining()?;
            self.set_read_timeout(left)?;
            return self.tcp.read(buf);
        }
        // Idle: wait up to the I/O timeout, a tick at a time.
        let idle_until = Instant::now() + self.io_timeout;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                return Err(timed_out());
            }
            let left = idle_until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            self.set_read_timeout(left.min(IDLE_TICK))?;
            match self.tcp.read(buf) {
                Ok(n) => {
                    self.start_request();
                    return Ok(n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Socket<'_> {
    /// Each write waits at most the I/O timeout. Answers are small enough
    /// for the socket's send buffer, so a client that does not read holds
    /// its connection for one timeout, not one per byte.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Stream<'s> {
    Plain(Socket<'s>),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, Socket<'s>>>),
}

impl<'s> Stream<'s> {
    pub fn socket(&mut self) -> &mut Socket<'s> {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &mut t.sock,
        }
    }

    /// Ends the connection: TLS's close_notify, then FIN both ways.
    pub fn close(&mut self) {
        if let Stream::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.conn.complete_io(&mut t.sock);
        }
        self.socket().shutdown();
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// A fixed buffer of `head::MAX_HEAD` bytes over a stream: the whole of what
/// a connection holds of its client's bytes, however many it pipelines.
pub struct Input<'s> {
    pub stream: Stream<'s>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<'s> Input<'s> {
    pub fn new(stream: Stream<'s>, capacity: usize) -> Input<'s> {
        Input {
            stream,
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// What has arrived and not been consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
    }

    /// Reads more, after what is buffered; `Ok(0)` at the end of the stream
    /// or when the buffer is full.
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            return Ok(0);
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }
}
