//! What the integration tests share: a real `tiny_http::Server` on
//! 127.0.0.1:0 running the `Echo` handler, a raw client (plain TCP or
//! rustls) that writes bytes and reads answers byte for byte, TLS
//! configurations from an rcgen self-signed certificate, and the process's
//! RSS. It knows no test's cases; each test file states its own.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::{Handler, Limits, Request, Response, Server};

/// Short limits, so that every timeout a test waits for is a second or three.
pub fn limits() -> Limits {
    Limits {
        io_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3),
        max_connections: 64,
        max_body: 4096,
        body_budget: 1 << 20,
    }
}

/// The handler of every test server:
/// - `/status/N`: `Response::error(N, ..)`, the body left unread;
/// - `/fixed`: reads the body, answers 200 with `0123456789`;
/// - anything else: reads the body and answers 200 with it as its body.
///
/// Every 200 says `X-Body: <length read>`, `X-Path: <url>` and
/// `X-Method: <method>`; a body that cannot be read is answered with the
/// `BodyError`'s own status and message.
pub struct Echo;

impl Handler for Echo {
    fn handle(&self, request: &mut Request) -> Response {
        let url = request.url().to_string();
        if let Some(code) = url.strip_prefix("/status/") {
            let status = code.parse().expect("tests ask for /status/<u16>");
            return Response::error(status, "asked for by the test");
        }
        let body = match request.read_body() {
            Ok(body) => body.to_vec(),
            Err(e) => return Response::error(e.status(), e.message()),
        };
        let headers = vec![
            ("X-Body", body.len().to_string()),
            ("X-Path", url.clone()),
            ("X-Method", request.method().to_string()),
        ];
        let body = if url == "/fixed" {
            b"0123456789".to_vec()
        } else {
            body
        };
        Response {
            status: 200,
            headers,
            body,
        }
    }
}

/// A server serving `Echo` on its own thread. Dropping it stops the server
/// without waiting for it, so that a connection a bug keeps open fails the
/// test instead of hanging it.
pub struct TestServer {
    pub server: Arc<Server>,
    pub addr: SocketAddr,
}

impl TestServer {
    pub fn start(limits: Limits, tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        let server = Server::new(listener, tls, limits).expect("a server on a bound listener");
        let server = Arc::new(server);
        let serving = server.clone();
        std::thread::spawn(move || serving.serve(&Echo));
        TestServer {
            addr: server.local_addr(),
            server,
        }
    }

    pub fn open(&self) -> usize {
        self.server.open_connections()
    }

    /// Waits until exactly `want` connections are open; how long it took,
    /// or what was open at the deadline.
    pub fn wait_open(&self, want: usize, within: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        if wait_until(within, || self.open() == want) {
            return Ok(start.elapsed());
        }
        let open = self.open();
        Err(format!(
            "{open} connections open after {within:?}, expected {want}"
        ))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.stop();
    }
}

/// Polls `done` every 10 ms until it holds or `within` has passed.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes for a failure message: escaped, and cut after 200.
pub fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(200)];
    let text: String = cut
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    match bytes.len() {
        n if n > 200 => format!("\"{text}\"... ({n} bytes)"),
        _ => format!("\"{text}\""),
    }
}

/// One answer as read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// `Date` in IMF-fixdate and `Content-Length`, on every final answer.
    pub fn check_date_and_length(&self) -> Result<(), String> {
        let date = self.header("date").ok_or("no Date header")?;
        let b = date.as_bytes();
        let fixdate = b.len() == 29
            && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&date[..3])
            && &b[3..5] == b", "
            && date.ends_with(" GMT");
        if !fixdate {
            return Err(format!("Date {date:?} is not an IMF-fixdate"));
        }
        match self.header("content-length") {
            Some(_) => Ok(()),
            None => Err("no Content-Length header".into()),
        }
    }

    /// `{"error":{"code":<status>,"message":"..."}}`, as application/json.
    pub fn check_error_json(&self) -> Result<(), String> {
        let prefix = format!(r#"{{"error":{{"code":{},"message":""#, self.status);
        let body = String::from_utf8_lossy(&self.body);
        let shaped =
            body.starts_with(&prefix) && body.ends_with(r#""}}"#) && body.len() > prefix.len() + 3;
        if !shaped {
            return Err(format!(
                "error body is not {prefix}...\"}}}}: {}",
                show(&self.body)
            ));
        }
        match self.header("content-type") {
            Some("application/json") => Ok(()),
            other => Err(format!("error answer's Content-Type is {other:?}")),
        }
    }

    pub fn describe(&self) -> String {
        format!("{} {}", show(self.head.as_bytes()), show(&self.body))
    }
}

/// A raw client: what it writes goes out as is; answers are parsed from
/// the bytes read, which it keeps between answers (pipelining).
pub struct Client<S> {
    pub io: S,
    /// The TCP socket under `io`, for its timeouts and for shutting it.
    pub tcp: TcpStream,
    buf: Vec<u8>,
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

pub fn connect(addr: SocketAddr) -> Client<TcpStream> {
    let tcp = TcpStream::connect(addr).expect("the test server accepts connections");
    tcp.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("a write timeout on a TCP socket");
    let io = tcp.try_clone().expect("a TCP socket can be cloned");
    Client {
        io,
        tcp,
        buf: Vec::new(),
    }
}

/// A TLS connection to `localhost` at `addr`, its handshake done.
pub fn connect_tls(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> io::Result<Client<TlsStream>> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("localhost").expect("localhost is a DNS name");
    let mut conn = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let mut sock = tcp.try_clone()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(Client {
        io: rustls::StreamOwned::new(conn, sock),
        tcp,
        buf: Vec::new(),
    })
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl<S: Read + Write> Client<S> {
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes)?;
        self.io.flush()
    }

    /// Ends the TCP connection both ways, without TLS's close_notify.
    pub fn hang_up(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// Reads once, waiting until `deadline`: how many bytes came (0 at EOF).
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.tcp.set_read_timeout(Some(left))?;
        let mut chunk = [0; 16 * 1024];
        let n = self.io.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Whether any bytes arrive within `wait` (or are already here).
    pub fn bytes_within(&mut self, wait: Duration) -> Result<bool, String> {
        if !self.buf.is_empty() {
            return Ok(true);
        }
        match self.fill(Instant::now() + wait) {
            Ok(0) => Err("closed without an answer".into()),
            Ok(_) => Ok(true),
            Err(e) if timed_out(&e) => Ok(false),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// The next answer, interim (1xx) ones included, within `within`;
    /// `head_only` for the answer to a HEAD.
    pub fn answer(&mut self, within: Duration, head_only: bool) -> Result<Answer, String> {
        let deadline = Instant::now() + within;
        let failed = |e: io::Error, buf: &[u8]| match timed_out(&e) {
            true => format!("no whole answer within {within:?}; got {}", show(buf)),
            false => format!("read failed ({e}); got {}", show(buf)),
        };
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            match self.fill(deadline) {
                Ok(0) => {
                    return Err(format!(
                        "closed before a whole answer; got {}",
                        show(&self.buf)
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(failed(e, &self.buf)),
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = match status_line.strip_prefix("HTTP/1.1 ") {
            Some(rest) => rest.get(..3).and_then(|s| s.parse().ok()),
            None => None,
        };
        let status = status
            .ok_or_else(|| format!("not an HTTP/1.1 status line: {}", show(head.as_bytes())))?;
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut answer = Answer {
            status,
            head,
            headers,
            body: Vec::new(),
        };
        let bodiless = head_only || (100..200).contains(&status) || status == 204 || status == 304;
        let length = match (bodiless, answer.header("content-length")) {
            (true, _) => 0,
            (false, Some(n)) => n.parse().map_err(|_| format!("bad Content-Length {n:?}"))?,
            (false, None) => return Err(format!("no Content-Length in {}", answer.describe())),
        };
        while self.buf.len() < end + length {
            match self.fill(deadline) {
                Ok(0) => return Err(format!("closed inside a body; got {}", show(&self.buf))),
                Ok(_) => {}
                Err(e) => return Err(failed(e, &self.buf)),
            }
        }
        answer.body = self.buf[end..end + length].to_vec();
        self.buf.drain(..end + length);
        Ok(answer)
    }

    /// Ok if the server ends the connection (EOF or a reset) within
    /// `within` and sends nothing more.
    pub fn closed(&mut self, within: Duration) -> Result<(), String> {
        if !self.buf.is_empty() {
            return Err(format!("more bytes after the answer: {}", show(&self.buf)));
        }
        match self.fill(Instant::now() + within) {
            Ok(0) => Ok(()),
            Ok(_) => Err(format!("more bytes after the answer: {}", show(&self.buf))),
            Err(e) if timed_out(&e) => {
                Err(format!("connection still open {within:?} after the answer"))
            }
            // A reset, or (TLS) a TCP close without close_notify.
            Err(_) => Ok(()),
        }
    }

    /// Everything the server sends until it closes, or until `within`.
    pub fn read_all(&mut self, within: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + within;
        let closed = loop {
            match self.fill(deadline) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if timed_out(&e) => break false,
                Err(_) => break true,
            }
        };
        (std::mem::take(&mut self.buf), closed)
    }
}

/// A server configuration with a fresh self-signed certificate for
/// `localhost`, and a client configuration that trusts only it; ring is
/// the one provider.
pub struct Tls {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
}

pub fn tls() -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("rcgen makes a self-signed certificate");
    let cert = issued.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("the key is the certificate's");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("rcgen's certificate parses");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Tls {
        server: Arc::new(server),
        client: Arc::new(client),
    }
}

/// This process's resident set size, from /proc/self/status.
pub fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux's /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim();
    kib.parse::<usize>().expect("VmRSS in kB") * 1024
}
