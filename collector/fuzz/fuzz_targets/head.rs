//! Fuzzes the collector's request reader, `collector/vendor/tiny_http`, and
//! checks what it promises rather than only that it returns. Every input's
//! bytes go through `head::find_end` and `head::parse`, checked against the
//! rules head.rs documents. When the first byte is odd they are also sent to
//! one in-process `Server` over a real socket, the only way to reach the
//! connection loop and the chunked decoder, and its answers are compared
//! with a reference model of what it must write, whole or in two writes
//! (bit 2), since what arrives in one read must not change the verdict.
//! Bit 1 of the first byte inflates the input, so that short inputs reach
//! the 8 and 16 KiB limits.
//! Owns no HTTP code of the server's; the model is written from RFC 9112
//! and the crate's doc comments, except that heads are read by `head::parse`,
//! which the direct checks hold to its rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tiny_http::head::{self, Framing, Head, MAX_HEAD, MAX_HEADERS, MAX_REQUEST_LINE};
use tiny_http::{Handler, Limits, Request, Response, Server};

/// body.rs's limits, which it does not export.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_TRAILERS: usize = 8 * 1024;
/// The trailer fields body.rs makes room for; more are refused.
const MAX_TRAILER_FIELDS: usize = MAX_HEADERS;
/// Small, so that 413 is reachable with small inputs.
const MAX_BODY: usize = 4096;
/// The most filler bytes an inflated input gets: past `MAX_HEAD`.
const MAX_INFLATE: usize = 20_000;
/// A server that has the client's FIN and keeps the connection this long is
/// stuck: its own I/O timeout is 200 ms.
const HANG: Duration = Duration::from_secs(3);
/// Beyond this an exchange may have met the 500 ms request deadline (the
/// machine is shared), so a 408 is no finding.
const SLOW: Duration = Duration::from_millis(300);
/// Between the two writes of a split input: long enough, mostly, for the
/// server to read the first one on its own.
const PAUSE: Duration = Duration::from_millis(2);

const LIMITS: Limits = Limits {
    io_timeout: Duration::from_millis(200),
    request_timeout: Duration::from_millis(500),
    max_connections: 16,
    max_body: MAX_BODY,
    // One connection at a time, so only a leak can make a body wait.
    body_budget: 1024 * 1024,
};

fuzz_target!(|data: &[u8]| {
    let Some(Input {
        server,
        split,
        bytes,
    }) = decode(data)
    else {
        return;
    };
    let view = &bytes[..bytes.len().min(MAX_HEAD)];
    if let Some(end) = check_find_end(view) {
        check_parse(&view[..end]);
    }
    check_splits(view);
    if server {
        check_server(&bytes, split);
    }
});

/// `HEAD_FUZZ_SHOW=1` prints each exchange with the server, for replaying
/// an input.
fn show() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("HEAD_FUZZ_SHOW").is_some_and(|v| v == "1"))
}

struct Input {
    /// Also send the bytes to the server.
    server: bool,
    /// Send them in two writes, the second after this many bytes.
    split: Option<usize>,
    bytes: Vec<u8>,
}

/// The first byte is the mode: bit 0 sends to the server; bit 2 splits,
/// and `split: u16 LE` follows; bit 1 inflates, and `[count: u16 LE,
/// filler, at: u16 LE]` follows: `count` copies of `filler` go into the
/// bytes at `at`. The rest is the bytes.
fn decode(data: &[u8]) -> Option<Input> {
    let (&mode, mut rest) = data.split_first()?;
    let mut split = None;
    if mode & 4 != 0 {
        let [s0, s1, after @ ..] = rest else {
            return None;
        };
        split = Some(usize::from(u16::from_le_bytes([*s0, *s1])));
        rest = after;
    }
    let mut bytes = Vec::new();
    if mode & 2 == 0 {
        bytes.extend_from_slice(rest);
    } else {
        let [c0, c1, filler, a0, a1, rest @ ..] = rest else {
            return None;
        };
        let count = usize::from(u16::from_le_bytes([*c0, *c1])) % (MAX_INFLATE + 1);
        let at = usize::from(u16::from_le_bytes([*a0, *a1])) % (rest.len() + 1);
        bytes.reserve(rest.len() + count);
        bytes.extend_from_slice(&rest[..at]);
        bytes.resize(at + count, *filler);
        bytes.extend_from_slice(&rest[at..]);
    }
    Some(Input {
        server: mode & 1 == 1,
        split: split.map(|k| k % (bytes.len() + 1)),
        bytes,
    })
}

// ---------------------------------------------------------------- find_end

/// The first thing that decides a head's end: where its CRLFCRLF ends, or
/// the index of the byte that shows a CR or LF to be bare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    End(usize),
    Bare(usize),
    Open,
}

fn scan(buf: &[u8]) -> Scan {
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'\n' if i == 0 || buf[i - 1] != b'\r' => return Scan::Bare(i),
            b'\n' if i >= 3 && &buf[i - 3..i] == b"\r\n\r" => return Scan::End(i + 1),
            _ if i > 0 && buf[i - 1] == b'\r' && b != b'\n' => return Scan::Bare(i),
            _ => {}
        }
    }
    Scan::Open
}

/// No LF where a request line of `MAX_REQUEST_LINE` bytes would have its own.
fn line_too_long(buf: &[u8]) -> bool {
    buf.len() > MAX_REQUEST_LINE + 1 && !buf[..MAX_REQUEST_LINE + 2].contains(&b'\n')
}

/// `find_end` on what one read can hold (at most `MAX_HEAD` bytes), against
/// its doc comment; the end of the head, if it found one.
fn check_find_end(buf: &[u8]) -> Option<usize> {
    let got = head::find_end(buf, 0);
    let scanned = scan(buf);
    let expected = match scanned {
        Scan::End(e) => Ok(Some(e)),
        Scan::Bare(_) => Err(400),
        Scan::Open if line_too_long(buf) => Err(414),
        Scan::Open if buf.len() >= MAX_HEAD => Err(431),
        Scan::Open => Ok(None),
    };
    assert_eq!(
        got.map_err(|r| r.status),
        expected,
        "find_end on {} bytes",
        buf.len()
    );

    match scanned {
        Scan::End(e) => Some(e),
        _ => None,
    }
}

/// What the server makes of a head that arrives as `buf`: its end, not
/// yet known, or the refusal's status.
fn verdict(buf: &[u8]) -> Result<Option<usize>, u16> {
    match head::find_end(buf, 0) {
        Ok(Some(end)) => match head::parse(&buf[..end]) {
            Ok(_) => Ok(Some(end)),
            Err(r) => Err(r.status),
        },
        Ok(None) => Ok(None),
        Err(r) => Err(r.status),
    }
}

/// TCP may deliver the bytes in any pieces, and the server reads a head
/// from wherever a piece ends: whether it is refused must not depend on
/// where that is. (Which refusal may: a bare LF after 8 KiB of request line
/// gets 414 or 400.) A search resumed after a piece finds what a whole one
/// finds.
fn check_splits(buf: &[u8]) {
    let whole = verdict(buf);
    let deciding = match scan(buf) {
        Scan::End(e) => e - 1,
        Scan::Bare(i) => i,
        Scan::Open => buf.len(),
    };
    for k in [
        deciding,
        buf.len() / 2,
        buf.len() / 3,
        buf.len().saturating_sub(1),
    ] {
        let k = k.min(buf.len());
        let before = verdict(&buf[..k]);
        assert!(
            before.is_ok() || whole.is_err(),
            "the first {k} of {} bytes are refused ({before:?}), all of them not ({whole:?})",
            buf.len()
        );
        if head::find_end(&buf[..k], 0) == Ok(None) {
            assert_eq!(
                head::find_end(buf, k),
                head::find_end(buf, 0),
                "resumed at {k}"
            );
        }
    }
}

// ------------------------------------------------------------------- parse

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// The members of a comma-separated list, as RFC 9110 section 5.6.1 reads
/// it: empty ones dropped.
fn members(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|m| m.trim_matches([' ', '\t']).to_ascii_lowercase())
        .filter(|m| !m.is_empty())
        .collect()
}

/// `parse` on a head that `find_end` delimited: what it accepts is a head
/// with one meaning, and what it refuses gets a status it documents.
fn check_parse(raw: &[u8]) {
    match head::parse(raw) {
        Ok(h) => check_parsed(raw, &h),
        Err(r) => {
            let text = String::from_utf8_lossy(raw).to_ascii_lowercase();
            let lines = text.matches("\r\n").count().saturating_sub(2);
            let version = text.split("\r\n").next().and_then(|l| l.rsplit(' ').next());
            let line_end = raw.windows(2).position(|w| w == b"\r\n");
            let known = match r.status {
                400 => true,
                414 => line_end.is_some_and(|e| e > MAX_REQUEST_LINE),
                431 => lines > MAX_HEADERS,
                // CONNECT, or a coding other than chunked.
                501 => raw.starts_with(b"CONNECT ") || text.contains("transfer-encoding"),
                // HTTP/d.d, not 1.x.
                505 => version.is_some_and(|v| {
                    let v = v.as_bytes();
                    v.len() == 8 && v.starts_with(b"http/") && v[5] != b'1'
                }),
                _ => false,
            };
            assert!(known, "parse refused with {} ({})", r.status, r.reason);
        }
    }
}

fn check_parsed(raw: &[u8], h: &Head) {
    let line_end = raw
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a parsed head has a request line");
    let parts: Vec<&[u8]> = raw[..line_end].split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        panic!("accepted a request line of {} parts", parts.len());
    };
    assert!(
        !method.is_empty() && method.iter().all(|&b| head::is_tchar(b)),
        "method not a token"
    );
    assert_eq!(h.method.as_bytes(), method);
    assert_ne!(method, b"CONNECT");
    let [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] = version[..] else {
        panic!("accepted version {:?}", String::from_utf8_lossy(version));
    };
    assert!(minor.is_ascii_digit());
    assert_eq!(h.http10, minor == b'0');
    assert!(
        !target.is_empty() && target.iter().all(|b| (0x21..0x7f).contains(b)),
        "target with a byte outside VCHAR"
    );
    match target {
        [b'/', ..] => assert_eq!(h.path.as_bytes(), target),
        b"*" => assert!(method == b"OPTIONS" && h.path == "*", "* for {method:?}"),
        _ => {
            let lower = target.to_ascii_lowercase();
            assert!(
                lower.starts_with(b"http://") || lower.starts_with(b"https://"),
                "accepted target {:?}",
                String::from_utf8_lossy(target)
            );
            assert!(h.path.starts_with('/') && !h.path.contains('#'));
            let tail = h.path.strip_prefix('/').unwrap_or(&h.path);
            assert!(target.ends_with(tail.as_bytes()), "path {:?}", h.path);
        }
    }

    // Field lines: each one of `headers`, in order, with nothing repaired.
    let fields = &raw[line_end + 2..raw.len() - 2];
    let lines: Vec<&[u8]> = match fields {
        [] => Vec::new(),
        _ => fields[..fields.len() - 2]
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect(),
    };
    assert_eq!(lines.len(), h.headers.len(), "header count");
    assert!(lines.len() <= MAX_HEADERS);
    for (line, (name, value)) in lines.iter().zip(&h.headers) {
        let colon = line.iter().position(|&b| b == b':').expect("a colon");
        let raw_name = &line[..colon];
        assert!(
            !raw_name.is_empty() && raw_name.iter().all(|&b| head::is_tchar(b)),
            "accepted field name {:?}",
            String::from_utf8_lossy(raw_name)
        );
        assert_eq!(name.as_bytes(), raw_name);
        let raw_value = trim(&line[colon + 1..]);
        assert!(
            raw_value
                .iter()
                .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
            "control character in a value"
        );
        assert_eq!(*value, String::from_utf8_lossy(raw_value));
    }

    let named = |n: &str| -> Vec<&str> {
        let matching = h.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(n));
        matching.map(|(_, v)| v.as_str()).collect()
    };
    let hosts = named("host").len();
    assert!(
        hosts == 1 || h.http10 && hosts == 0,
        "{hosts} Host fields accepted (HTTP/1.{})",
        char::from(minor)
    );

    // Framing: one reading of where the body ends, or a refusal.
    let lengths = named("content-length");
    let encodings = named("transfer-encoding");
    let codings: Vec<String> = encodings.iter().flat_map(|v| members(v)).collect();
    if !encodings.is_empty() {
        assert!(
            lengths.is_empty(),
            "Transfer-Encoding {encodings:?} and Content-Length {lengths:?} accepted together"
        );
        assert!(
            !h.http10,
            "Transfer-Encoding {encodings:?} accepted from HTTP/1.0"
        );
        assert_eq!(
            codings,
            ["chunked"],
            "Transfer-Encoding {encodings:?} accepted"
        );
    }
    match h.framing {
        Framing::Chunked => assert_eq!(codings, ["chunked"]),
        Framing::Length(n) => {
            assert!(codings.is_empty() && n > 0);
            let [one] = lengths[..] else {
                panic!("Length({n}) from Content-Length {lengths:?}");
            };
            assert!(one.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(one.parse::<u64>().ok(), Some(n));
        }
        Framing::Empty => {
            assert!(codings.is_empty());
            assert!(
                lengths.is_empty() || lengths.len() == 1 && lengths[0].parse::<u64>() == Ok(0),
                "no body for Content-Length {lengths:?}"
            );
            if let [one] = lengths[..] {
                assert!(one.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    let expects = named("expect");
    let continues = expects
        .iter()
        .any(|v| v.eq_ignore_ascii_case("100-continue"));
    assert_eq!(h.expect_continue, continues && !h.http10, "expect_continue");
    let options: Vec<String> = named("connection")
        .iter()
        .flat_map(|v| members(v))
        .collect();
    let close = options.iter().any(|o| o == "close");
    let keep_alive = options.iter().any(|o| o == "keep-alive");
    // RFC 9112 section 9.6: a server that receives `close` MUST close after
    // its answer, whatever else the field says.
    let expected_close = close || h.http10 && !keep_alive;
    assert!(
        h.close == expected_close,
        "close is {} for Connection {options:?} (HTTP/1.{})",
        h.close,
        char::from(minor)
    );
}

// ------------------------------------------------------------------ server

struct Echo;

impl Handler for Echo {
    /// Reads the body (unless the path starts with /skip) and answers 200
    /// with its length and hash, or the body error's status.
    fn handle(&self, request: &mut Request) -> Response {
        let method = request.method().to_string();
        if request.url().starts_with("/skip") {
            return Response {
                status: 200,
                headers: vec![("X-Method", method)],
                body: b"unread".to_vec(),
            };
        }
        match request.read_body() {
            Ok(body) => Response {
                status: 200,
                headers: vec![
                    ("X-Method", method),
                    ("X-Body-Length", body.len().to_string()),
                    ("X-Body-Hash", format!("{:016x}", fnv(&body))),
                ],
                body: b"ok".to_vec(),
            },
            Err(e) => {
                let mut answer = Response::error(e.status(), e.message());
                answer.headers.push(("X-Method", method));
                answer
            }
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// One server for the whole run, started on first use.
fn server() -> &'static Server {
    static SERVER: OnceLock<&'static Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
        let server = Server::new(listener, None, LIMITS).expect("the listener's address");
        let server: &'static Server = Box::leak(Box::new(server));
        std::thread::spawn(move || server.serve(&Echo));
        server
    })
}

/// What the server wrote: one answer, parsed.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        let mut matching = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let first = matching.next().map(|(_, v)| v.as_str());
        assert!(matching.next().is_none(), "{name} twice in {self:?}");
        first
    }
}

/// Sends the bytes (in two writes, `PAUSE` apart, if split), then the FIN;
/// reads until the server closes.
fn exchange(addr: SocketAddr, bytes: &[u8], split: Option<usize>) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut tcp = TcpStream::connect(addr).expect("connect to the server");
    tcp.set_read_timeout(Some(HANG)).expect("a read timeout");
    tcp.set_write_timeout(Some(HANG)).expect("a write timeout");
    // The server may refuse and close before it has all of them.
    let (first, second) = bytes.split_at(split.unwrap_or(0));
    let _ = tcp.write_all(first);
    if !first.is_empty() {
        std::thread::sleep(PAUSE);
    }
    let _ = tcp.write_all(second);
    let _ = tcp.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let mut buf = [0; 16 * 1024];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server kept the connection {HANG:?} after the client's FIN, having written {:?}", String::from_utf8_lossy(&out))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    (out, start.elapsed())
}

const STATUSES: [(u16, &str); 10] = [
    (100, "Continue"),
    (200, "OK"),
    (400, "Bad Request"),
    (408, "Request Timeout"),
    (413, "Content Too Large"),
    (414, "URI Too Long"),
    (431, "Request Header Fields Too Large"),
    (501, "Not Implemented"),
    (503, "Service Unavailable"),
    (505, "HTTP Version Not Supported"),
];

/// The answers in `out`, each checked to be well-formed: a status line
/// from the set the server uses, CRLF field lines, a Date, one
/// Content-Length that the body matches (none for 100, no body for HEAD).
fn answers(out: &[u8]) -> Vec<Got> {
    let text = || String::from_utf8_lossy(out).into_owned();
    let mut rest = out;
    let mut got = Vec::new();
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("an answer's head does not end: {:?}", text()));
        let head = std::str::from_utf8(&rest[..end]).expect("an answer's head is UTF-8");
        rest = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let reason = STATUSES.iter().find(|(s, _)| *s == status).map(|s| s.1);
        let reason = reason.unwrap_or_else(|| panic!("status {status} in {:?}", text()));
        assert_eq!(status_line, format!("HTTP/1.1 {status} {reason}"));
        let mut headers = Vec::new();
        for line in lines {
            assert!(!line.contains(['\r', '\n']), "bare CR or LF in {head:?}");
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("field line {line:?}"));
            assert!(!name.is_empty() && name.bytes().all(head::is_tchar));
            headers.push((name.to_string(), value.to_string()));
        }
        let mut answer = Got {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            assert!(answer.headers.is_empty(), "100 with fields: {head:?}");
            got.push(answer);
            continue;
        }
        let date = answer.header("Date").expect("a Date");
        assert!(
            date.len() == 29 && date.ends_with(" GMT") && &date[3..5] == ", ",
            "Date {date:?}"
        );
        if let Some(c) = answer.header("Connection") {
            assert!(c == "close" || c == "keep-alive", "Connection {c:?}");
        }
        let length: usize = answer
            .header("Content-Length")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        if answer.header("X-Method") != Some("HEAD") {
            assert!(
                rest.len() >= length,
                "Content-Length {length} with {} bytes left: {:?}",
                rest.len(),
                text()
            );
            answer.body = rest[..length].to_vec();
            rest = &rest[length..];
        }
        got.push(answer);
    }
    got
}

/// Every answer the server writes for `bytes`, checked on its own and
/// against the model.
fn check_server(bytes: &[u8], split: Option<usize>) {
    let server = server();
    let (out, elapsed) = exchange(server.local_addr(), bytes, split);
    if show() {
        eprintln!(
            "sent {:?}, split at {split:?}",
            String::from_utf8_lossy(bytes)
        );
        eprintln!("got  {:?} in {elapsed:?}", String::from_utf8_lossy(&out));
    }
    let got = answers(&out);
    let lower = bytes.to_ascii_lowercase();
    let expect_sent = lower.windows(7).any(|w| w == b"expect:");
    let mut heads = 0;
    let mut i = 0;
    while let Some(p) = bytes[i..].windows(4).position(|w| w == b"\r\n\r\n") {
        heads += 1;
        i += p + 4;
    }
    let finals = got.iter().filter(|g| g.status != 100).count();
    assert!(finals <= heads + 1, "{finals} answers to {heads} heads");
    assert!(
        got.iter().filter(|g| g.status == 200).count() <= heads,
        "more 200s than heads"
    );
    for (n, g) in got.iter().enumerate() {
        assert!(g.status != 100 || expect_sent, "100 Continue unasked");
        if g.status >= 400 {
            assert_eq!(n + 1, got.len(), "written after a {}", g.status);
            assert_eq!(g.header("Connection"), Some("close"), "a refusal closes");
            let body = String::from_utf8_lossy(&g.body);
            let prefix = format!(r#"{{"error":{{"code":{},"message":""#, g.status);
            let head_only = g.header("X-Method") == Some("HEAD");
            assert!(
                head_only || body.starts_with(&prefix) && body.ends_with("\"}}"),
                "error body {body:?}"
            );
        }
    }
    let (wanted, alternatives) = model(bytes);
    let matches =
        |want: &[Want]| want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| w.matches(g));
    // A 408 may end any exchange that took longer than the deadline allows.
    let timed_out = |want: &[Want]| {
        let (last, before) = got.split_last().expect("a 408");
        last.status == 408
            && before.len() <= want.len()
            && want.iter().zip(before).all(|(w, g)| w.matches(g))
    };
    let fine = matches(&wanted)
        || alternatives.iter().any(|a| matches(a))
        || elapsed > SLOW
            && !got.is_empty()
            && (timed_out(&wanted) || alternatives.iter().any(|a| timed_out(a)));
    assert!(
        fine,
        "for {:?}\nexpected {wanted:?}\n(or one of {alternatives:?})\ngot {got:?}",
        String::from_utf8_lossy(bytes)
    );

    // Every connection ends, and frees its place under the cap.
    let since = Instant::now();
    while server.open_connections() > 0 {
        assert!(since.elapsed() < HANG, "a connection never ended");
        std::thread::yield_now();
    }
}

// ------------------------------------------------------------------- model

/// One answer the model expects.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    status: u16,
    close: bool,
    /// From the handler: the request's method.
    method: Option<String>,
    /// From the handler, having read the body: its length and hash.
    body: Option<(usize, u64)>,
    http10: bool,
}

impl Want {
    fn continue_() -> Want {
        Want {
            status: 100,
            close: false,
            method: None,
            body: None,
            http10: false,
        }
    }

    fn refusal(status: u16, http10: bool) -> Want {
        Want {
            status,
            close: true,
            method: None,
            body: None,
            http10,
        }
    }

    fn matches(&self, g: &Got) -> bool {
        if g.status != self.status {
            return false;
        }
        if self.status == 100 {
            return true;
        }
        let connection = match (self.close, self.http10) {
            (true, _) => Some("close"),
            (false, true) => Some("keep-alive"),
            (false, false) => None,
        };
        let body = self
            .body
            .map(|(len, hash)| (len.to_string(), format!("{hash:016x}")));
        let got_body = match (g.header("X-Body-Length"), g.header("X-Body-Hash")) {
            (Some(len), Some(hash)) => Some((len.to_string(), hash.to_string())),
            _ => None,
        };
        g.header("Connection") == connection
            && g.header("X-Method") == self.method.as_deref()
            && got_body == body
    }
}

/// What the server must write for `bytes`, sent at once and followed by the
/// client's FIN; and what it may write instead where its verdict depends on
/// how the bytes arrive.
fn model(bytes: &[u8]) -> (Vec<Want>, Vec<Vec<Want>>) {
    let mut want = Vec::new();
    let mut alternatives = Vec::new();
    let mut rest = bytes;
    loop {
        // RFC 9112 section 2.2: empty lines before a request; four, here.
        for _ in 0..4 {
            match rest.strip_prefix(b"\r\n") {
                Some(r) => rest = r,
                None => break,
            }
        }
        if rest.is_empty() {
            return (want, alternatives);
        }
        let view = &rest[..rest.len().min(MAX_HEAD)];
        let end = match scan(view) {
            Scan::End(e) => e,
            Scan::Bare(i) if line_too_long(&view[..i]) => {
                // Which refusal depends on whether the bare byte came in the
                // same read as the 8 KiB before it.
                let mut refused = want.clone();
                refused.push(Want::refusal(414, false));
                alternatives.push(refused);
                want.push(Want::refusal(400, false));
                return (want, alternatives);
            }
            other => {
                let status = match other {
                    Scan::Open if line_too_long(view) => 414,
                    Scan::Open if view.len() >= MAX_HEAD => 431,
                    // A bare CR or LF, or the client's FIN inside a head.
                    _ => 400,
                };
                want.push(Want::refusal(status, false));
                return (want, alternatives);
            }
        };
        let h = match head::parse(&view[..end]) {
            Ok(h) => h,
            Err(r) => {
                want.push(Want::refusal(r.status, false));
                return (want, alternatives);
            }
        };
        rest = &rest[end..];
        if let Framing::Length(n) = h.framing {
            if n > MAX_BODY as u64 {
                want.push(Want::refusal(413, h.http10));
                return (want, alternatives);
            }
        }
        let answer = |status, close, body| Want {
            status,
            close,
            method: Some(h.method.clone()),
            body,
            http10: h.http10,
        };
        if h.path.starts_with("/skip") {
            // A body left unread closes the connection.
            let close = h.close || h.framing != Framing::Empty;
            want.push(answer(200, close, None));
            if close {
                return (want, alternatives);
            }
            continue;
        }
        if h.expect_continue && h.framing != Framing::Empty {
            want.push(Want::continue_());
        }
        let body = match h.framing {
            Framing::Empty => Ok((Vec::new(), 0)),
            Framing::Length(n) => match rest.get(..n as usize) {
                Some(body) => Ok((body.to_vec(), body.len())),
                None => Err(400),
            },
            Framing::Chunked => dechunk(rest),
        };
        match body {
            Ok((body, used)) => {
                want.push(answer(200, h.close, Some((body.len(), fnv(&body)))));
                if h.close {
                    return (want, alternatives);
                }
                rest = &rest[used..];
            }
            Err(status) => {
                want.push(answer(status, true, None));
                return (want, alternatives);
            }
        }
    }
}

/// The line `b` starts with, up to its CRLF, and what follows; 400 for a
/// bare CR or LF or no line end before the client's FIN.
fn line(b: &[u8]) -> Result<(&[u8], &[u8]), u16> {
    let lf = b.iter().position(|&c| c == b'\n').ok_or(400u16)?;
    let line = b[..lf].strip_suffix(b"\r").ok_or(400u16)?;
    if line.contains(&b'\r') {
        return Err(400);
    }
    Ok((line, &b[lf + 1..]))
}

/// A chunked body (RFC 9112 section 7.1, without whitespace in extensions,
/// a size line within `MAX_CHUNK_LINE`): the decoded bytes and how many
/// bytes of `b` it took, or the status of its refusal.
fn dechunk(b: &[u8]) -> Result<(Vec<u8>, usize), u16> {
    let mut out = Vec::new();
    let mut rest = b;
    loop {
        let (size_line, after) = line(rest)?;
        if size_line.len() > MAX_CHUNK_LINE {
            return Err(400);
        }
        let size = chunk_size(size_line).ok_or(400u16)?;
        rest = after;
        if size == 0 {
            rest = trailers(rest)?;
            return Ok((out, b.len() - rest.len()));
        }
        if size > (MAX_BODY - out.len()) as u64 {
            return Err(413);
        }
        let size = size as usize;
        out.extend_from_slice(rest.get(..size).ok_or(400u16)?);
        rest = rest[size..].strip_prefix(b"\r\n").ok_or(400u16)?;
    }
}

/// `1*HEXDIG *( ";" token [ "=" ( token / quoted-string ) ] )`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let mut size: u64 = 0;
    for &d in &line[..digits] {
        let d = char::from(d).to_digit(16)?;
        size = size.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    let mut ext = &line[digits..];
    let token = |s: &[u8]| s.iter().take_while(|&&b| head::is_tchar(b)).count();
    while let [b';', rest @ ..] = ext {
        let name = token(rest);
        if name == 0 {
            return None;
        }
        ext = &rest[name..];
        if let [b'=', value @ ..] = ext {
            let len = match value {
                [b'"', ..] => quoted(value)?,
                _ => token(value),
            };
            if len == 0 {
                return None;
            }
            ext = &value[len..];
        }
    }
    ext.is_empty().then_some(size)
}

/// RFC 9110 section 5.6.4: the length of the quoted-string `s` starts with.
fn quoted(s: &[u8]) -> Option<usize> {
    let qdtext = |b: u8| matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..);
    let pair = |b: u8| matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..);
    let mut i = 1;
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' if pair(*s.get(i + 1)?) => i += 2,
            b if qdtext(b) => i += 1,
            _ => return None,
        }
    }
}

/// The trailer section after the last chunk: field lines up to an empty
/// one, within `MAX_TRAILERS` bytes and `MAX_TRAILER_FIELDS` lines; what
/// follows it.
fn trailers(mut rest: &[u8]) -> Result<&[u8], u16> {
    let (mut size, mut count) = (0, 0);
    loop {
        let (field, after) = line(rest)?;
        rest = after;
        if field.is_empty() {
            return Ok(rest);
        }
        size += field.len() + 2;
        count += 1;
        let colon = field.iter().position(|&b| b == b':').ok_or(400u16)?;
        let name_ok = colon > 0 && field[..colon].iter().all(|&b| head::is_tchar(b));
        let value_ok = field[colon + 1..]
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80);
        if !name_ok || !value_ok || size > MAX_TRAILERS || count > MAX_TRAILER_FIELDS {
            return Err(400);
        }
    }
}
