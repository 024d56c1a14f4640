//! Message framing and head syntax (RFC 9112, with RFC 9110 for Host,
//! Expect and Connection), over raw sockets: for each request as bytes, the
//! status the server must give, whether it must close afterwards, and for a
//! 200 the body the handler must have read. Each row is followed, in the
//! same write, by a valid `GET /second`: a row that must close must never
//! get it answered; one that keeps the connection must answer it next.
//! Timeouts and resources are `resources.rs`'s.

mod common;

use common::{connect, limits, show, TestServer};
use std::time::Duration;

/// The valid request every row is followed by.
const SECOND: &[u8] = b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n";
/// A request hidden in a body, for the smuggling rows.
const SMUGGLED: &[u8] = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
/// The test server's `max_body`.
const MAX_BODY: usize = 4096;
/// How long an answer may take; every row is answered at once.
const ANSWER: Duration = Duration::from_secs(5);

struct Row {
    what: &'static str,
    send: Vec<u8>,
    status: u16,
    close: bool,
    /// For a 200: the body the handler read.
    body: Option<Vec<u8>>,
    /// For a 200: the `url()` the handler saw.
    path: Option<&'static str>,
    /// Followed by `SECOND` in the same write.
    pipelined: bool,
}

/// The server refuses: `status`, JSON, and the connection closes.
fn refused(what: &'static str, status: u16, send: impl Into<Vec<u8>>) -> Row {
    Row {
        what,
        send: send.into(),
        status,
        close: true,
        body: None,
        path: None,
        pipelined: true,
    }
}

/// The handler is called, reads `body`, answers 200; the connection stays.
fn served(what: &'static str, body: &[u8], send: impl Into<Vec<u8>>) -> Row {
    Row {
        body: Some(body.to_vec()),
        status: 200,
        close: false,
        ..refused(what, 200, send)
    }
}

impl Row {
    fn closing(self) -> Row {
        Row {
            close: true,
            ..self
        }
    }

    fn at(self, path: &'static str) -> Row {
        Row {
            path: Some(path),
            ..self
        }
    }

    /// Not followed by `SECOND`: the row is a head the server must refuse
    /// before it ends, and `SECOND` would end it.
    fn alone(self) -> Row {
        Row {
            pipelined: false,
            ..self
        }
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `GET /` with Host and `fields` (whole lines, each ending in CRLF).
fn get(fields: &[u8]) -> Vec<u8> {
    cat(&[b"GET / HTTP/1.1\r\nHost: x\r\n", fields, b"\r\n"])
}

/// `POST /` with Host, `fields`, then `body` as is.
fn post(fields: &[u8], body: &[u8]) -> Vec<u8> {
    cat(&[b"POST / HTTP/1.1\r\nHost: x\r\n", fields, b"\r\n", body])
}

/// `POST /` with `Transfer-Encoding: chunked` and `body` as is.
fn chunked(body: &[u8]) -> Vec<u8> {
    post(b"Transfer-Encoding: chunked\r\n", body)
}

fn is_http10(request: &[u8]) -> bool {
    let line_end = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(request.len());
    request[..line_end].ends_with(b"HTTP/1.0")
}

/// Runs one row on its own connection; what went wrong, if anything.
fn check(server: &TestServer, row: &Row) -> Result<(), String> {
    let mut client = connect(server.addr);
    let mut bytes = row.send.clone();
    if row.pipelined {
        bytes.extend_from_slice(SECOND);
    }
    // A server that refuses early may reset before taking it all.
    let _ = client.send(&bytes);
    let first = client.answer(ANSWER, false)?;
    if first.status != row.status {
        return Err(format!("expected {}, got {}", row.status, first.describe()));
    }
    first.check_date_and_length()?;
    if first.status >= 400 {
        first.check_error_json()?;
    }
    if let Some(body) = &row.body {
        if &first.body != body {
            let got = show(&first.body);
            return Err(format!(
                "expected the body {}, the handler read {got}",
                show(body)
            ));
        }
    }
    if let Some(path) = row.path {
        if first.header("x-path") != Some(path) {
            return Err(format!(
                "expected url() {path:?}, got {:?}",
                first.header("x-path")
            ));
        }
    }
    if row.close {
        if !first.closes() {
            return Err(format!(
                "must close, but the answer lacks Connection: close: {}",
                first.describe()
            ));
        }
        return client
            .closed(Duration::from_secs(1))
            .map_err(|e| format!("must close: {e}"));
    }
    if first.closes() {
        return Err(format!(
            "must keep the connection, got {}",
            first.describe()
        ));
    }
    if is_http10(&row.send) && first.header("connection") != Some("keep-alive") {
        return Err(format!(
            "HTTP/1.0 keep-alive, answer lacks Connection: keep-alive: {}",
            first.describe()
        ));
    }
    let second = client
        .answer(ANSWER, false)
        .map_err(|e| format!("pipelined GET /second: {e}"))?;
    second.check_date_and_length()?;
    match (second.status, second.header("x-path")) {
        (200, Some("/second")) => Ok(()),
        _ => Err(format!("pipelined GET /second got {}", second.describe())),
    }
}

/// Every row on one server; fails listing each row that failed.
fn run(rows: &[Row]) {
    let server = TestServer::start(limits(), None);
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let failed = check(&server, row).err()?;
            Some(format!(
                "- {}: sent {}\n  {failed}",
                row.what,
                show(&row.send)
            ))
        })
        .collect();
    let (n, total) = (failures.len(), rows.len());
    assert!(
        failures.is_empty(),
        "{n} of {total} rows failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn content_length_and_transfer_encoding_decide_framing_or_are_refused() {
    let over = format!("Content-Length: {}\r\n", MAX_BODY + 1);
    let max = [b'b'; MAX_BODY];
    // One row a line, so the table reads like the spec it checks.
    #[rustfmt::skip]
    let rows = [
        served("Content-Length", b"hello", post(b"Content-Length: 5\r\n", b"hello")),
        served("Content-Length: 0", b"", post(b"Content-Length: 0\r\n", b"")),
        served("Content-Length with leading zeros", b"hello", post(b"Content-Length: 005\r\n", b"hello")),
        served("neither: no body, the next bytes are a request", b"", post(b"", b"")),
        served("Content-Length of max_body", &max, post(b"Content-Length: 4096\r\n", &max)),
        served("Transfer-Encoding: Chunked", b"hello", post(b"Transfer-Encoding: Chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n")),
        served("Transfer-Encoding: CHUNKED", b"hello", post(b"Transfer-Encoding: CHUNKED\r\n", b"5\r\nhello\r\n0\r\n\r\n")),
        refused("CL then TE", 400, post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n")),
        refused("TE then CL", 400, post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n")),
        refused("CL with an empty Transfer-Encoding", 400, post(b"Transfer-Encoding: \r\nContent-Length: 5\r\n", b"hello")),
        refused("TE gzip", 501, post(b"Transfer-Encoding: gzip\r\n", b"")),
        refused("TE identity", 501, post(b"Transfer-Encoding: identity\r\n", b"")),
        refused("TE deflate", 501, post(b"Transfer-Encoding: deflate\r\n", b"")),
        refused("TE gzip, chunked", 501, chunked_with(b"gzip, chunked")),
        refused("TE chunked, gzip: chunked not final", 400, chunked_with(b"chunked, gzip")),
        refused("TE chunked, chunked", 400, chunked_with(b"chunked, chunked")),
        refused("TE chunked on two lines", 400, post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n")),
        refused("TE chunked, then gzip on a line of its own", 400, post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", b"0\r\n\r\n")),
        refused("TE chunked in HTTP/1.0", 400, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        refused("TE and CL in HTTP/1.0", 400, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
        refused("TE gzip in HTTP/1.0", 400, b"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n"),
        refused("an empty TE in HTTP/1.0", 400, b"GET / HTTP/1.0\r\nTransfer-Encoding: \r\n\r\n"),
        refused("CL twice, equal", 400, post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello")),
        refused("CL twice, different", 400, post(b"Content-Length: 5\r\ncontent-length: 6\r\n", b"hello!")),
        refused("CL list 5, 5", 400, post(b"Content-Length: 5, 5\r\n", b"hello")),
        refused("CL list 5,5", 400, post(b"Content-Length: 5,5\r\n", b"hello")),
        refused("CL +5", 400, post(b"Content-Length: +5\r\n", b"hello")),
        refused("CL -5", 400, post(b"Content-Length: -5\r\n", b"hello")),
        refused("CL 0x5", 400, post(b"Content-Length: 0x5\r\n", b"hello")),
        refused("CL 5.0", 400, post(b"Content-Length: 5.0\r\n", b"hello")),
        refused("CL 5 5", 400, post(b"Content-Length: 5 5\r\n", b"hello")),
        refused("CL 1e3", 400, post(b"Content-Length: 1e3\r\n", b"hello")),
        refused("CL empty", 400, post(b"Content-Length: \r\n", b"hello")),
        refused("CL 2^64 overflows", 400, post(b"Content-Length: 18446744073709551616\r\n", b"hello")),
        refused("CL over max_body: 413, body unread", 413, post(over.as_bytes(), SMUGGLED)),
        refused("CL.CL smuggling", 400, post(b"Content-Length: 0\r\nContent-Length: 35\r\n", SMUGGLED)),
        refused("CL.TE smuggling", 400, post(b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n", &cat(&[b"0\r\n\r\n", SMUGGLED]))),
        refused("TE.TE: chunked, then identity", 400, post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"0\r\n\r\n")),
        refused("TE xchunked with CL", 400, post(b"Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n", b"hello")),
        refused("TE with a vertical tab", 400, post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n")),
        refused("TE with a space before the colon, and CL", 400, post(b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", b"hello")),
    ];
    run(&rows);
}

fn chunked_with(codings: &[u8]) -> Vec<u8> {
    post(
        &cat(&[b"Transfer-Encoding: ", codings, b"\r\n"]),
        b"5\r\nhello\r\n0\r\n\r\n",
    )
}

#[test]
fn chunked_bodies_are_decoded_strictly() {
    let long_ext = cat(&[b"5;", &[b'e'; 2000], b"\r\nhello\r\n0\r\n\r\n"]);
    let ext_under_limit = cat(&[b"5;", &[b'e'; 1000], b"\r\nhello\r\n0\r\n\r\n"]);
    let big_trailer = cat(&[b"5\r\nhello\r\n0\r\nX-T: ", &[b'a'; 9000], b"\r\n\r\n"]);
    let trailer_under_limit = cat(&[b"5\r\nhello\r\n0\r\nX-T: ", &[b'a'; 7 * 1024], b"\r\n\r\n"]);
    let mut many_big = b"5\r\nhello\r\n0\r\n".to_vec();
    for i in 0..10 {
        many_big.extend_from_slice(format!("X-T{i}: {}\r\n", "a".repeat(1000)).as_bytes());
    }
    many_big.extend_from_slice(b"\r\n");
    let mut forty = b"5\r\nhello\r\n0\r\n".to_vec();
    for i in 0..40 {
        forty.extend_from_slice(format!("X-T{i}: v\r\n").as_bytes());
    }
    forty.extend_from_slice(b"\r\n");
    let half = [b'h'; MAX_BODY / 2];
    let to_max = cat(&[b"800\r\n", &half, b"\r\n800\r\n", &half, b"\r\n0\r\n\r\n"]);
    let over_max = cat(&[
        b"800\r\n",
        &half,
        b"\r\n800\r\n",
        &half,
        b"\r\n1\r\nh\r\n0\r\n\r\n",
    ]);
    let one_over = cat(&[b"1001\r\n", &[b'h'; MAX_BODY + 1], b"\r\n0\r\n\r\n"]);
    // One row a line, so the table reads like the spec it checks.
    #[rustfmt::skip]
    let rows = [
        served("one chunk", b"hello", chunked(b"5\r\nhello\r\n0\r\n\r\n")),
        served("two chunks", b"hello world", chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")),
        served("size in upper-case hex", b"0123456789", chunked(b"A\r\n0123456789\r\n0\r\n\r\n")),
        served("size in lower-case hex, leading zeros", b"0123456789", chunked(b"000a\r\n0123456789\r\n0\r\n\r\n")),
        served("only the last chunk", b"", chunked(b"0\r\n\r\n")),
        served("extensions are ignored", b"hello", chunked(b"5;name=value;flag;q=\"quoted; \\\"s\\\"\"\r\nhello\r\n0;last\r\n\r\n")),
        served("a valid trailer section", b"hello", chunked(b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: \t d\r\nX-Empty:\r\n\r\n")),
        served("a chunk line under 1 KiB", b"hello", chunked(&ext_under_limit)),
        served("trailers under 8 KiB", b"hello", chunked(&trailer_under_limit)),
        served("a valid trailer section of 40 short fields", b"hello", chunked(&forty)),
        served("chunks adding up to max_body", &[b'h'; MAX_BODY], chunked(&to_max)),
        refused("size not hex", 400, chunked(b"g\r\nhello\r\n0\r\n\r\n")),
        refused("size empty", 400, chunked(b"\r\nhello\r\n0\r\n\r\n")),
        refused("size +5", 400, chunked(b"+5\r\nhello\r\n0\r\n\r\n")),
        refused("size -5", 400, chunked(b"-5\r\nhello\r\n0\r\n\r\n")),
        refused("size 0x5", 400, chunked(b"0x5\r\nhello\r\n0\r\n\r\n")),
        refused("size over 64 bits", 400, chunked(b"10000000000000000\r\nhello\r\n0\r\n\r\n")),
        refused("a space before the size", 400, chunked(b" 5\r\nhello\r\n0\r\n\r\n")),
        refused("a space after the size", 400, chunked(b"5 \r\nhello\r\n0\r\n\r\n")),
        refused("a tab after the size", 400, chunked(b"5\t\r\nhello\r\n0\r\n\r\n")),
        refused("a space between size and extension", 400, chunked(b"5 ;a=b\r\nhello\r\n0\r\n\r\n")),
        refused("chunk data not followed by CRLF", 400, chunked(b"5\r\nhelloXX\r\n0\r\n\r\n")),
        refused("chunk data followed by a bare LF", 400, chunked(b"5\r\nhello\n0\r\n\r\n")),
        refused("chunk data followed by a bare CR", 400, chunked(b"5\r\nhello\r0\r\n\r\n")),
        refused("a chunk line ended by a bare LF", 400, chunked(b"5\nhello\r\n0\r\n\r\n")),
        refused("a bare ;", 400, chunked(b"5;\r\nhello\r\n0\r\n\r\n")),
        refused("an extension name that is not a token", 400, chunked(b"5;a@b\r\nhello\r\n0\r\n\r\n")),
        refused("an extension without a name", 400, chunked(b"5;=v\r\nhello\r\n0\r\n\r\n")),
        refused("an extension with an empty value", 400, chunked(b"5;a=\r\nhello\r\n0\r\n\r\n")),
        refused("a control character in an extension", 400, chunked(b"5;a=\x01\r\nhello\r\n0\r\n\r\n")),
        refused("a control character in a quoted extension", 400, chunked(b"5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n")),
        refused("DEL in an extension name", 400, chunked(b"5;a\x7f\r\nhello\r\n0\r\n\r\n")),
        refused("an LF inside an extension", 400, chunked(b"5;a\nb\r\nhello\r\n0\r\n\r\n")),
        refused("a CR inside an extension", 400, chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n")),
        refused("an unterminated quoted extension", 400, chunked(b"5;a=\"open\r\nhello\r\n0\r\n\r\n")),
        refused("a chunk line over 1 KiB", 400, chunked(&long_ext)),
        refused("a chunk line over 1 KiB, its end not sent", 400, chunked(&long_ext[..2002])).alone(),
        refused("trailers over 8 KiB in one field", 400, chunked(&big_trailer)),
        refused("trailers over 8 KiB in ten fields", 400, chunked(&many_big)),
        refused("a trailer line without a colon", 400, chunked(b"5\r\nhello\r\n0\r\nnot a field\r\n\r\n")),
        refused("an obs-folded trailer", 400, chunked(b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n")),
        refused("a control character in a trailer", 400, chunked(b"5\r\nhello\r\n0\r\nX: a\x01\r\n\r\n")),
        refused("a trailer ended by a bare LF", 400, chunked(b"5\r\nhello\r\n0\r\nX: a\n\r\n")),
        refused("one chunk over max_body", 413, chunked(&one_over)),
        refused("chunks adding up to over max_body", 413, chunked(&over_max)),
    ];
    run(&rows);
}

#[test]
fn header_fields_are_parsed_strictly() {
    // One row a line, so the table reads like the spec it checks.
    #[rustfmt::skip]
    let rows = [
        served("HTAB inside a value", b"", get(b"X: a\tb\r\n")),
        served("obs-text in a value", b"", get(b"X: caf\xe9 \x80\xff\r\n")),
        served("every tchar in a name", b"", get(b"!#$%&'*+-.^_`|~09AZaz: v\r\n")),
        served("an empty value", b"", get(b"X:\r\n")),
        refused("obs-fold with a space", 400, get(b"X: a\r\n b\r\n")),
        refused("obs-fold with a tab", 400, get(b"X: a\r\n\tb\r\n")),
        refused("a space between name and colon", 400, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
        refused("a tab between name and colon", 400, get(b"X\t: a\r\n")),
        refused("a space before the first field line", 400, b"GET / HTTP/1.1\r\n Host: x\r\n\r\n"),
        refused("a tab before the first field line", 400, b"GET / HTTP/1.1\r\n\tHost: x\r\n\r\n"),
        refused("a bare CR ending the request line", 400, b"GET / HTTP/1.1\rHost: x\r\n\r\n"),
        refused("a bare CR in the request line", 400, b"GET /\r HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("a bare CR in a value", 400, get(b"X: a\rb\r\n")),
        refused("a bare CR in a name", 400, get(b"X\rY: a\r\n")),
        refused("a bare CR before the blank line", 400, b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n"),
        refused("a bare LF ending the request line", 400, b"GET / HTTP/1.1\nHost: x\r\n\r\n"),
        refused("a bare LF ending a field line", 400, b"GET / HTTP/1.1\r\nHost: x\n\r\n"),
        refused("a bare LF as the blank line", 400, b"GET / HTTP/1.1\r\nHost: x\r\n\n"),
        refused("bare LFs only", 400, b"GET / HTTP/1.1\nHost: x\n\n"),
        refused("NUL in a value", 400, get(b"X: a\x00b\r\n")),
        refused("SOH in a value", 400, get(b"X: a\x01b\r\n")),
        refused("VT in a value", 400, get(b"X: a\x0bb\r\n")),
        refused("FF in a value", 400, get(b"X: a\x0cb\r\n")),
        refused("ESC in a value", 400, get(b"X: a\x1bb\r\n")),
        refused("US ending a value", 400, get(b"X: ab\x1f\r\n")),
        refused("DEL in a value", 400, get(b"X: a\x7fb\r\n")),
        refused("an empty name", 400, get(b": x\r\n")),
        refused("( in a name", 400, get(b"X(y): z\r\n")),
        refused("/ in a name", 400, get(b"X/Y: z\r\n")),
        refused("@ in a name", 400, get(b"X@Y: z\r\n")),
        refused("a non-ASCII byte in a name", 400, get(b"X\xe9: z\r\n")),
        refused("NUL in a name", 400, get(b"X\x00: z\r\n")),
        refused("a line without a colon", 400, get(b"NoColon\r\n")),
    ];
    run(&rows);
}

#[test]
fn host_is_required_once_and_valid() {
    // One row a line, so the table reads like the spec it checks.
    #[rustfmt::skip]
    let rows = [
        served("Host with a port", b"", b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"),
        served("an IPv4 Host", b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n"),
        served("an IPv6 Host", b"", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
        served("an empty Host", b"", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        served("an empty Host, with a space", b"", b"GET / HTTP/1.1\r\nHost: \r\n\r\n"),
        served("HTTP/1.0 without Host", b"", b"GET / HTTP/1.0\r\n\r\n").closing(),
        served("absolute form: its path", b"", b"GET http://example.com/a?b HTTP/1.1\r\nHost: x\r\n\r\n").at("/a?b"),
        served("absolute form without a path", b"", b"GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n").at("/"),
        refused("HTTP/1.1 without Host", 400, b"GET / HTTP/1.1\r\n\r\n"),
        refused("HTTP/1.1 absolute form without Host", 400, b"GET http://example.com/ HTTP/1.1\r\n\r\n"),
        refused("two equal Hosts", 400, b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"),
        refused("two different Hosts", 400, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
        refused("two Hosts in other cases", 400, b"GET / HTTP/1.1\r\nhost: x\r\nHOST: x\r\n\r\n"),
        refused("two Hosts in HTTP/1.0", 400, b"GET / HTTP/1.0\r\nHost: x\r\nHost: x\r\n\r\n"),
        refused("a Host list", 400, b"GET / HTTP/1.1\r\nHost: x, y\r\n\r\n"),
        refused("a Host list of equal values", 400, b"GET / HTTP/1.1\r\nHost: x,x\r\n\r\n"),
        refused("a Host with userinfo", 400, b"GET / HTTP/1.1\r\nHost: user@x\r\n\r\n"),
        refused("a Host with userinfo and a password", 400, b"GET / HTTP/1.1\r\nHost: u:p@x\r\n\r\n"),
        refused("a Host with a path", 400, b"GET / HTTP/1.1\r\nHost: x/path\r\n\r\n"),
        refused("a Host with a query", 400, b"GET / HTTP/1.1\r\nHost: x?q\r\n\r\n"),
        refused("a Host with a non-numeric port", 400, b"GET / HTTP/1.1\r\nHost: x:http\r\n\r\n"),
        refused("a Host with a space inside", 400, b"GET / HTTP/1.1\r\nHost: x y\r\n\r\n"),
        refused("an unclosed IP literal", 400, b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
        refused("absolute form with userinfo", 400, b"GET http://u@example.com/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    run(&rows);
}

#[test]
fn the_request_line_and_version_are_parsed_strictly() {
    // One row a line, so the table reads like the spec it checks.
    #[rustfmt::skip]
    let rows = [
        served("OPTIONS *", b"", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").at("*"),
        served("an empty line before the request line", b"", b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n").at("/a"),
        served("HTTP/1.2 is served as HTTP/1.1", b"", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"),
        served("HTTP/1.9 is served as HTTP/1.1", b"", b"GET / HTTP/1.9\r\nHost: x\r\n\r\n"),
        refused("HTTP/1.2 without Host, as HTTP/1.1", 400, b"GET / HTTP/1.2\r\n\r\n"),
        refused("NUL in the target", 400, b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("SOH in the target", 400, b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("a tab in the target", 400, b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("DEL in the target", 400, b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("obs-text in the target", 400, b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("GET *", 400, b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("POST *", 400, b"POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        refused("CONNECT", 501, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
        refused("two spaces after the method", 400, b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("a space ending the line", 400, b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n"),
        refused("tabs as separators", 400, b"GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("a space before the method", 400, b" GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("a method that is not a token", 400, b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        refused("HTTP/2.0", 505, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
        refused("HTTP/3.0", 505, b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"),
        refused("the HTTP/2 preface", 505, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        refused("no version (HTTP/0.9)", 400, b"GET /\r\n\r\n"),
        refused("http/1.1 in lower case", 400, b"GET / http/1.1\r\nHost: x\r\n\r\n"),
        refused("HTTP/1.10", 400, b"GET / HTTP/1.10\r\nHost: x\r\n\r\n"),
        refused("HTTP/1", 400, b"GET / HTTP/1\r\nHost: x\r\n\r\n"),
        refused("HTTP/11", 400, b"GET / HTTP/11\r\nHost: x\r\n\r\n"),
        refused("HTTP/1.x", 400, b"GET / HTTP/1.x\r\nHost: x\r\n\r\n"),
        refused("HTTP/1.1 with a suffix", 400, b"GET / HTTP/1.1x\r\nHost: x\r\n\r\n"),
    ];
    run(&rows);
}

#[test]
fn heads_over_their_limits_get_414_or_431() {
    let long_line = cat(&[b"GET /", &[b'a'; 9000], b" HTTP/1.1\r\nHost: x\r\n\r\n"]);
    // 8 KiB exactly: "GET /" + 8178 + " HTTP/1.1".
    let line_of_8k = cat(&[b"GET /", &[b'a'; 8178], b" HTTP/1.1\r\nHost: x\r\n\r\n"]);
    let big_field = cat(&[b"X: ", &[b'a'; 17000], b"\r\n"]);
    let field_under = cat(&[b"X: ", &[b'a'; 16000], b"\r\n"]);
    let fields = |n: usize| -> Vec<u8> {
        (1..n)
            .flat_map(|i| format!("X-{i}: v\r\n").into_bytes())
            .collect()
    };
    // One row a line, so the table reads like the spec it checks.
    #[rustfmt::skip]
    let rows = [
        served("a request line of 8 KiB", b"", line_of_8k),
        served("a head just under 16 KiB", b"", get(&field_under)),
        served("100 field lines, Host included", b"", get(&fields(100))),
        refused("a request line over 8 KiB", 414, long_line.clone()),
        refused("a request line over 8 KiB, its end not sent", 414, long_line[..9005].to_vec()).alone(),
        refused("a head over 16 KiB", 431, get(&big_field)),
        refused("a head over 16 KiB, its end not sent", 431, get(&big_field)[..17010].to_vec()).alone(),
        refused("101 field lines, Host included", 431, get(&fields(101))),
    ];
    run(&rows);
}

#[test]
fn connections_persist_unless_closed_or_http10() {
    // One row a line, so the table reads like the spec it checks.
    #[rustfmt::skip]
    let rows = [
        served("HTTP/1.1 keep-alive by default", b"", get(b"")),
        served("HTTP/1.1 Connection: keep-alive", b"", get(b"Connection: keep-alive\r\n")),
        served("Connection: close", b"", get(b"Connection: close\r\n")).closing(),
        served("Connection: Close", b"", get(b"Connection: Close\r\n")).closing(),
        served("Connection: keep-alive, close", b"", get(b"Connection: keep-alive, close\r\n")).closing(),
        served("HTTP/1.0 closes by default", b"", b"GET / HTTP/1.0\r\n\r\n").closing(),
        served("HTTP/1.0 asking for keep-alive", b"", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        served("HTTP/1.0 asking for Keep-Alive", b"", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
        served("HTTP/1.0 POST, keep-alive", b"hello", b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello"),
        served("HTTP/1.0 keep-alive, then close", b"", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n").closing(),
        served("HTTP/1.0 close, then keep-alive", b"", b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n").closing(),
        served("HTTP/1.0 close, keep-alive", b"", b"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n").closing(),
    ];
    run(&rows);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(limits(), None);
    let mut client = connect(server.addr);
    let requests = [
        &b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /three HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
        b"\r\nGET /four HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    client.send(&requests.concat()).expect("the server reads");
    for (path, body) in [
        ("/one", &b"abc"[..]),
        ("/two", b""),
        ("/three", b"xyz"),
        ("/four", b""),
    ] {
        let answer = client
            .answer(ANSWER, false)
            .expect("an answer for each request");
        assert_eq!(
            (answer.status, answer.header("x-path")),
            (200, Some(path)),
            "{}",
            answer.describe()
        );
        assert_eq!(answer.body, body, "{path}: {}", answer.describe());
    }
}

#[test]
fn head_gets_no_body() {
    let server = TestServer::start(limits(), None);
    let mut client = connect(server.addr);
    client
        .send(&cat(&[b"HEAD /fixed HTTP/1.1\r\nHost: x\r\n\r\n", SECOND]))
        .expect("the server reads");
    let head = client.answer(ANSWER, true).expect("an answer to HEAD");
    assert_eq!(head.status, 200, "{}", head.describe());
    assert_eq!(
        head.header("content-length"),
        Some("10"),
        "the length GET would get: {}",
        head.describe()
    );
    // Had the body been sent, it would now be read as the next answer.
    let second = client
        .answer(ANSWER, false)
        .expect("the next answer, right after HEAD's head");
    assert_eq!(
        second.header("x-path"),
        Some("/second"),
        "{}",
        second.describe()
    );
}

#[test]
fn continue_is_sent_when_the_handler_reads_the_body() {
    let server = TestServer::start(limits(), None);
    let mut client = connect(server.addr);
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    client.send(head).expect("the server reads");
    let interim = client
        .answer(ANSWER, false)
        .expect("100 Continue before the body is sent");
    assert_eq!(interim.status, 100, "{}", interim.describe());
    client.send(b"hello").expect("the server reads");
    let answer = client.answer(ANSWER, false).expect("the final answer");
    assert_eq!(
        (answer.status, &answer.body[..]),
        (200, &b"hello"[..]),
        "{}",
        answer.describe()
    );
}

#[test]
fn a_handler_that_answers_without_reading_sends_no_continue_and_closes() {
    let server = TestServer::start(limits(), None);
    let mut client = connect(server.addr);
    let head = b"POST /status/404 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    client.send(head).expect("the server reads");
    let answer = client.answer(ANSWER, false).expect("an answer");
    assert_eq!(
        answer.status,
        404,
        "no 100 Continue first: {}",
        answer.describe()
    );
    assert!(
        answer.closes(),
        "the body is never drained: {}",
        answer.describe()
    );
    answer.check_error_json().expect("a JSON error");
    client
        .closed(Duration::from_secs(1))
        .expect("closed after the 404");
}

#[test]
fn http10_ignores_expect() {
    let server = TestServer::start(limits(), None);
    let mut client = connect(server.addr);
    client
        .send(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .expect("the server reads");
    // Proving an absence takes a wait: the 100 would come at once.
    let early = client
        .bytes_within(Duration::from_millis(300))
        .expect("still open");
    assert!(
        !early,
        "an HTTP/1.0 client got bytes before sending its body: {:?}",
        client.answer(ANSWER, false)
    );
    client.send(b"hello").expect("the server reads");
    let answer = client.answer(ANSWER, false).expect("the final answer");
    assert_eq!(
        (answer.status, &answer.body[..]),
        (200, &b"hello"[..]),
        "{}",
        answer.describe()
    );
    assert!(
        answer.closes(),
        "HTTP/1.0 without keep-alive: {}",
        answer.describe()
    );
    client
        .closed(Duration::from_secs(1))
        .expect("HTTP/1.0 closes");
}

#[test]
fn smuggling_attempts_never_yield_a_second_answer() {
    let server = TestServer::start(limits(), None);
    let attempts: [&[u8]; 7] = [
        // CL.TE: a front end going by Content-Length forwards the smuggled request.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // TE.CL: a front end going by chunked forwards it all.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n23\r\n",
        // CL.CL, different and equal.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 35\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        // TE.TE, obfuscated.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    let mut failures = Vec::new();
    for attempt in attempts {
        let mut client = connect(server.addr);
        let _ = client.send(&cat(&[attempt, SMUGGLED, SECOND]));
        let (got, closed) = client.read_all(Duration::from_secs(2));
        let answers = got.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
        let status_400 = got.starts_with(b"HTTP/1.1 400 ");
        if answers != 1 || !closed || !status_400 {
            let got = show(&got);
            failures.push(format!(
                "- sent {}: {answers} answers, closed: {closed}: {got}",
                show(attempt)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "each must get one 400 and a close:\n{}",
        failures.join("\n")
    );
}

/// Found by the fuzz target's model: whether a chunk-size line of exactly the
/// limit is accepted must not depend on where TCP splits it.
#[test]
fn a_chunk_line_at_the_limit_is_accepted_however_it_is_split() {
    let server = common::TestServer::start(common::limits(), None);
    let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let line = format!("1;{}\r", "a".repeat(1022));
    let mut client = common::connect(server.addr);
    client
        .send(format!("{head}{line}").as_bytes())
        .expect("first part");
    std::thread::sleep(std::time::Duration::from_millis(50));
    client.send(b"\nz\r\n0\r\n\r\n").expect("second part");
    let answer = client
        .answer(std::time::Duration::from_secs(3), false)
        .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.describe());
}

/// A client waiting on `Expect: 100-continue` is not told to send a body the
/// body budget has no room for: it gets 503 at once, without a 100.
#[test]
fn no_100_continue_when_the_body_budget_is_full() {
    let limits = tiny_http::Limits {
        body_budget: 16 * 1024,
        ..common::limits()
    };
    let server = common::TestServer::start(limits, None);
    // One chunked upload, one byte in, holds the whole budget.
    let mut holder = common::connect(server.addr);
    let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n";
    holder.send(chunked.as_bytes()).expect("the holder's head");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut waiting = common::connect(server.addr);
    let head = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    waiting.send(head.as_bytes()).expect("the waiting head");
    let answer = waiting
        .answer(std::time::Duration::from_secs(2), false)
        .expect("an answer");
    assert_eq!(answer.status, 503, "{}", answer.describe());
}
