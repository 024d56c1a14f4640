//! The spartakus collector's HTTP/1.1 server: strict framing, one thread
//! and one request at a time per connection, and a bound on everything a
//! client can make it hold. It began as tiny_http 0.12.0; PATCHES.md maps
//! what changed and why.
//!
//! - `lib.rs`: `Server` (accepting, the connection cap, stopping) and the
//!   loop each connection runs: read a head, hand the request to the
//!   `Handler`, write its answer, then read the next.
//! - `head.rs`: parsing a request head, and what it refuses.
//! - `body.rs`: reading a body within its limit and the shared budget.
//! - `request.rs`: `Request` and `Response`.
//! - `io.rs`: timeouts and deadlines on the socket, TLS, the input buffer.
//!
//! Memory per connection is one `head::MAX_HEAD` buffer, the thread's stack
//! and, for HTTPS, rustls's buffers; request bodies, together, stay within
//! `Limits::body_budget`. Nothing else grows with what a client sends.
#![forbid(unsafe_code)]

mod body;
pub mod head;
mod io;
mod request;

pub use body::{Body, BodyError};
pub use request::{Request, Response};

use head::{Framing, Refusal};
use io::{Input, Socket, Stream};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Each connection's thread; request handling needs little (the collector
/// validates reports without recursion deeper than serde_json's 128 levels).
const STACK: usize = 512 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Each read and each write; also how long an idle connection is kept.
    pub io_timeout: Duration,
    /// From a request's first byte (or a TLS handshake's) to the end of its
    /// body.
    pub request_timeout: Duration,
    /// Connections open at once; one more is refused (503, or closed for
    /// HTTPS).
    pub max_connections: usize,
    /// The largest body; a larger Content-Length gets 413 unread.
    pub max_body: usize,
    /// Bytes of request bodies in memory at once, over all connections.
    pub body_budget: usize,
}

/// What the server calls for each request, on that connection's thread.
pub trait Handler: Sync {
    fn handle(&self, request: &mut Request) -> Response;

    /// The server answered `status` itself (a refused head, the connection
    /// cap): for logs and metrics.
    fn refused(&self, status: u16, reason: &str) {
        let _ = (status, reason);
    }
}

pub struct Server {
    listener: Mutex<Option<TcpListener>>,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    open: AtomicUsize,
    stopping: AtomicBool,
    budget: body::Budget,
}

impl Server {
    pub fn new(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
    ) -> std::io::Result<Server> {
        Ok(Server {
            addr: listener.local_addr()?,
            listener: Mutex::new(Some(listener)),
            tls,
            limits,
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            budget: body::Budget::new(limits.body_budget),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Closes the listening socket at once; each open connection finishes
    /// the request it is reading and closes, and idle ones close within a
    /// second. `serve` then returns.
    pub fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wakes the accept loop, which closes the listener.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    }

    /// Accepts and serves connections until `stop`, then waits for every
    /// connection to end.
    pub fn serve(&self, handler: &dyn Handler) {
        let listener = self.listener.lock().map(|mut l| l.take());
        let Ok(Some(listener)) = listener else {
            return;
        };
        std::thread::scope(|scope| {
            for accepted in listener.incoming() {
                if self.stopping.load(Ordering::Acquire) {
                    break;
                }
                let tcp = match accepted {
                    Ok(tcp) => tcp,
                    Err(e) => {
                        // EMFILE and the like pass; the loop must not end.
                        handler.refused(0, &format!("accept: {e}"));
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                if self.open.load(Ordering::Acquire) >= self.limits.max_connections {
                    self.refuse_at_cap(tcp, handler);
                    continue;
                }
                self.open.fetch_add(1, Ordering::AcqRel);
                let spawned = std::thread::Builder::new()
                    .name("http-conn".into())
                    .stack_size(STACK)
                    .spawn_scoped(scope, move || {
                        // A handler's panic ends its connection only: the slot
                        // is given back and `serve` does not panic at the end.
                        let served = || self.connection(tcp, handler);
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(served));
                        self.open.fetch_sub(1, Ordering::AcqRel);
                    });
                if let Err(e) = spawned {
                    self.open.fetch_sub(1, Ordering::AcqRel);
                    handler.refused(503, &format!("no thread for a connection: {e}"));
                }
            }
            drop(listener);
        });
    }

    /// Over plain HTTP a 503 that needs no thread (the socket's send buffer
    /// takes it at once); over HTTPS the connection is just closed, since a
    /// handshake would cost what the cap is there to save.
    fn refuse_at_cap(&self, mut tcp: TcpStream, handler: &dyn Handler) {
        handler.refused(503, "connection cap");
        if self.tls.is_none() && tcp.set_nonblocking(true).is_ok() {
            let mut answer = Response::error(503, "too many connections, retry later");
            answer.headers.push(("Retry-After", "5".into()));
            let _ = answer.write(&mut tcp, false, true, false);
        }
        let _ = tcp.shutdown(std::net::Shutdown::Both);
    }

    fn connection(&self, tcp: TcpStream, handler: &dyn Handler) {
        let Ok(remote) = tcp.peer_addr() else {
            return;
        };
        let limits = &self.limits;
        let socket = Socket::new(
            tcp,
            limits.io_timeout,
            limits.request_timeout,
            &self.stopping,
        );
        let Ok(socket) = socket else {
            return;
        };
        let stream = match &self.tls {
            None => Stream::Plain(socket),
            Some(config) => match rustls::ServerConnection::new(config.clone()) {
                Ok(tls) => Stream::Tls(Box::new(rustls::StreamOwned::new(tls, socket))),
                Err(_) => return,
            },
        };
        let mut input = Input::new(stream, head::MAX_HEAD);
        while self.exchange(&mut input, remote, handler) {}
        input.stream.close();
    }

    /// One request and its answer; whether the connection goes on.
    fn exchange(&self, input: &mut Input, remote: SocketAddr, handler: &dyn Handler) -> bool {
        input.stream.socket().idle();
        if !input.buffered().is_empty() {
            input.stream.socket().start_request();
        }
        let head = match read_head(input) {
            Ok(Some(head)) => head,
            Ok(None) => return false,
            Err(refusal) => {
                handler.refused(refusal.status, refusal.reason);
                let answer = Response::error(refusal.status, refusal.reason);
                let _ = answer.write(&mut input.stream, false, true, false);
                return false;
            }
        };
        if let Framing::Length(n) = head.framing {
            if n > self.limits.max_body as u64 {
                let limit = self.limits.max_body;
                let reason = format!("body: larger than the limit of {limit} bytes");
                handler.refused(413, &reason);
                let answer = Response::error(413, &reason);
                let _ = answer.write(&mut input.stream, false, true, head.http10);
                return false;
            }
        }
        let (head_only, asked_close, http10) = (head.method == "HEAD", head.close, head.http10);
        let mut request = Request {
            body_done: head.framing == Framing::Empty,
            head,
            remote,
            input,
            max_body: self.limits.max_body,
            budget: &self.budget,
        };
        let answer = handler.handle(&mut request);
        // A body left unread is never drained: the connection closes instead,
        // so its bytes cannot be read as a request.
        let close = asked_close
            || !request.body_done
            || answer.closes()
            || self.stopping.load(Ordering::Acquire);
        let written = answer.write(&mut request.input.stream, head_only, close, http10);
        written.is_ok() && !close
    }
}

/// The next request's head, once whole; `None` if the client closed or
/// went idle before sending one. Up to four empty lines before it are
/// skipped (RFC 9112 section 2.2).
fn read_head(input: &mut Input) -> Result<Option<head::Head>, Refusal> {
    let (mut scanned, mut skipped) = (0, 0);
    loop {
        while skipped < 4 && input.buffered().starts_with(b"\r\n") {
            input.consume(2);
            (scanned, skipped) = (0, skipped + 1);
        }
        let buffered = input.buffered();
        if let Some(end) = head::find_end(buffered, scanned)? {
            let parsed = head::parse(&buffered[..end]);
            input.consume(end);
            return parsed.map(Some);
        }
        scanned = buffered.len();
        match input.fill() {
            Ok(0) if input.buffered().is_empty() => return Ok(None),
            Ok(0) => {
                return Err(Refusal {
                    status: 400,
                    reason: "head: incomplete",
                })
            }
            Ok(_) => input.stream.socket().start_request(),
            // Idle, stopping, or gone before a request began: nothing to answer.
            Err(_) if input.buffered().is_empty() => return Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                return Err(Refusal {
                    status: 408,
                    reason: "head: not received in time",
                })
            }
            Err(_) => return Ok(None),
        }
    }
}
