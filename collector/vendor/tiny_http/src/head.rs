//! The request head, parsed strictly (RFC 9112 sections 2 to 7, RFC 9110 for
//! Host, Expect and Connection): the request line by hand, the header section
//! by httparse, then the framing rules that decide where the body ends.
//! Anything ambiguous is a `Refusal`; nothing is repaired. Knows no sockets:
//! `parse` takes the bytes up to and including the blank line.

/// The longest request line; a longer one gets 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// The longest head, request line included; a longer one gets 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header lines; more get 431.
pub const MAX_HEADERS: usize = 100;

/// A request the server answers itself, and then closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// How the body's end is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no Content-Length, or 0, and no Transfer-Encoding).
    Empty,
    Length(u64),
    Chunked,
}

#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The target in origin form (`/path?query`): an absolute-form target is
    /// reduced to it; `*` for `OPTIONS *`.
    pub path: String,
    pub http10: bool,
    /// Every header line in order, the value without surrounding whitespace
    /// (bytes outside UTF-8, obs-text, become U+FFFD).
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// `Expect: 100-continue` from an HTTP/1.1 client.
    pub expect_continue: bool,
    /// The connection ends after this request's answer: `Connection: close`,
    /// or HTTP/1.0 without `keep-alive`.
    pub close: bool,
}

/// Looks for the end of a head in `buf`, from `from` on (what was already
/// looked at). A bare CR or a bare LF anywhere is refused, though RFC 9112
/// lets a recipient accept a bare LF: a proxy in front may read it otherwise.
pub fn find_end(buf: &[u8], from: usize) -> Result<Option<usize>, Refusal> {
    for i in from..buf.len() {
        let after_cr = i > 0 && buf[i - 1] == b'\r';
        match buf[i] {
            b'\n' if !after_cr => return Err(refuse(400, "head: bare LF as a line end")),
            b'\n' if i >= 3 && &buf[i - 3..i] == b"\r\n\r" => return Ok(Some(i + 1)),
            b'\n' => {}
            _ if after_cr => return Err(refuse(400, "head: bare CR")),
            _ => {}
        }
    }
    let line_done = buf[..buf.len().min(MAX_REQUEST_LINE + 2)].contains(&b'\n');
    if !line_done && buf.len() > MAX_REQUEST_LINE + 1 {
        return Err(refuse(414, "request line: too long"));
    }
    if buf.len() >= MAX_HEAD {
        return Err(refuse(431, "head: header section too large"));
    }
    Ok(None)
}

/// Parses a whole head: `head` ends with the blank line that `find_end` found.
pub fn parse(head: &[u8]) -> Result<Head, Refusal> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(refuse(400, "request line: missing"))?;
    if line_end > MAX_REQUEST_LINE {
        return Err(refuse(414, "request line: too long"));
    }
    let (method, path, http10) = request_line(&head[..line_end])?;
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let fields = &head[line_end + 2..];
    let parsed = match httparse::parse_headers(fields, &mut slots) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        Ok(httparse::Status::Partial) => return Err(refuse(400, "head: incomplete")),
        Err(httparse::Error::TooManyHeaders) => return Err(refuse(431, "head: too many headers")),
        Err(httparse::Error::HeaderName) => {
            return Err(refuse(
                400,
                "header: invalid name (empty, not a token, space before the colon, or folded)",
            ))
        }
        Err(_) => return Err(refuse(400, "header: invalid value (a control character)")),
    };
    let mut head = Head {
        method,
        path,
        http10,
        headers: Vec::with_capacity(parsed.len()),
        framing: Framing::Empty,
        expect_continue: false,
        close: false,
    };
    let (mut hosts, mut lengths) = (0, Vec::new());
    // `None`: no Transfer-Encoding field at all; an empty one still counts.
    let mut codings: Option<Vec<&[u8]>> = None;
    let (mut keep_alive, mut closing) = (false, false);
    for field in parsed {
        let value = trim(field.value);
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(refuse(400, "header: invalid value (a control character)"));
        }
        let name = field.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !valid_authority(value, true) {
                return Err(refuse(400, "Host: invalid"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            lengths.push(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.get_or_insert_with(Vec::new).extend(list(value));
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue |= !http10 && value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            for option in list(value) {
                closing |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        let value = String::from_utf8_lossy(value).into_owned();
        head.headers.push((name.to_string(), value));
    }
    match hosts {
        0 if !http10 => return Err(refuse(400, "Host: required in HTTP/1.1")),
        0 | 1 => {}
        _ => return Err(refuse(400, "Host: more than one")),
    }
    // `close` wins over `keep-alive` (RFC 9112 section 9.6).
    head.close = closing || (http10 && !keep_alive);
    head.framing = framing(&lengths, codings.as_deref(), http10)?;
    Ok(head)
}

/// `METHOD SP request-target SP HTTP-version`, each separated by exactly one
/// space: the method, the target in origin form, and whether it is HTTP/1.0.
fn request_line(line: &[u8]) -> Result<(String, String, bool), Refusal> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(
            400,
            "request line: must be METHOD SP TARGET SP HTTP/1.1",
        ));
    };
    let http10 = match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            *minor == b'0'
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(refuse(505, "version: only HTTP/1.x is served"))
        }
        _ => return Err(refuse(400, "request line: invalid HTTP version")),
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(refuse(400, "request line: invalid method"));
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(refuse(400, "request line: invalid target"));
    }
    if method == b"CONNECT" {
        return Err(refuse(501, "CONNECT: not served"));
    }
    let path = match target {
        [b'/', ..] => target,
        b"*" if method == b"OPTIONS" => target,
        b"*" => return Err(refuse(400, "request line: * is only for OPTIONS")),
        _ => absolute_path(target).ok_or(refuse(400, "request line: invalid target"))?,
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let path = match path.first() {
        Some(b'?') => format!("/{}", text(path)),
        None => "/".to_string(),
        _ => text(path),
    };
    Ok((text(method), path, http10))
}

/// The path and query of an absolute-form target (`http://host/path?q`),
/// which RFC 9112 section 3.2.2 requires a server to accept.
fn absolute_path(target: &[u8]) -> Option<&[u8]> {
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    let end = rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#'));
    let (authority, path) = rest.split_at(end.unwrap_or(rest.len()));
    (valid_authority(authority, false) && !path.contains(&b'#')).then_some(path)
}

/// `uri-host [":" port]`, without userinfo: a reg-name, an IPv4 address or
/// an IP literal in brackets. An empty Host is valid syntax (RFC 9110 7.2).
fn valid_authority(value: &[u8], empty_ok: bool) -> bool {
    let (host, port) = match value {
        [b'[', ..] => match value.iter().position(|&b| b == b']') {
            Some(end) => {
                let literal = &value[1..end];
                let ok = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
                if !ok {
                    return false;
                }
                (&value[..0], &value[end + 1..])
            }
            None => return false,
        },
        _ => match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &value[value.len()..]),
        },
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    // reg-name: unreserved, pct-encoded and sub-delims, less the comma that
    // would make it a list.
    let reg_name = |b: &u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=".contains(b);
    let host_ok = host.iter().all(reg_name);
    port_ok && host_ok && (empty_ok || !value.is_empty())
}

/// Where the body ends (RFC 9112 section 6): one Content-Length of decimal
/// digits, or a Transfer-Encoding whose one and final coding is chunked.
fn framing(lengths: &[&[u8]], codings: Option<&[&[u8]]>, http10: bool) -> Result<Framing, Refusal> {
    let Some(codings) = codings else {
        return match lengths {
            [] => Ok(Framing::Empty),
            [one] if !one.is_empty() && one.iter().all(u8::is_ascii_digit) => {
                let digits = std::str::from_utf8(one).unwrap_or_default();
                match digits.parse::<u64>() {
                    Ok(0) => Ok(Framing::Empty),
                    Ok(n) => Ok(Framing::Length(n)),
                    Err(_) => Err(refuse(400, "Content-Length: too large a number")),
                }
            }
            [_] => Err(refuse(400, "Content-Length: must be decimal digits")),
            _ => Err(refuse(400, "Content-Length: more than one")),
        };
    };
    if http10 {
        return Err(refuse(400, "Transfer-Encoding: not allowed in HTTP/1.0"));
    }
    if !lengths.is_empty() {
        return Err(refuse(400, "Content-Length and Transfer-Encoding together"));
    }
    if codings.is_empty() {
        return Err(refuse(400, "Transfer-Encoding: empty"));
    }
    let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
    match codings.iter().filter(|c| chunked(c)).count() {
        0 => Err(refuse(
            501,
            "Transfer-Encoding: only chunked is implemented",
        )),
        1 if codings.last().is_some_and(chunked) && codings.len() == 1 => Ok(Framing::Chunked),
        1 if codings.last().is_some_and(chunked) => Err(refuse(
            501,
            "Transfer-Encoding: only chunked is implemented",
        )),
        1 => Err(refuse(
            400,
            "Transfer-Encoding: chunked must be the final coding",
        )),
        _ => Err(refuse(400, "Transfer-Encoding: chunked more than once")),
    }
}

/// The non-empty members of a comma-separated list, trimmed.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|m| !m.is_empty())
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// RFC 9110's `tchar`.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, Refusal> {
        parse(text.as_bytes())
    }

    #[test]
    fn absolute_form_is_reduced_to_its_path() {
        let h = head("GET http://example.com:80/a?b HTTP/1.1\r\nHost: x\r\n\r\n").expect("valid");
        assert_eq!(h.path, "/a?b");
        let h = head("GET HTTP://example.com?q HTTP/1.1\r\nHost: x\r\n\r\n").expect("valid");
        assert_eq!(h.path, "/?q");
        let refused = head("GET http://u@example.com/ HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            refused.map(|_| ()),
            Err(refuse(400, "request line: invalid target"))
        );
    }

    #[test]
    fn find_end_needs_crlf_crlf_and_refuses_bare_line_ends() {
        assert_eq!(find_end(b"GET / HTTP/1.1\r\n\r\n", 0), Ok(Some(18)));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), Ok(None));
        assert_eq!(
            find_end(b"GET / HTTP/1.1\n", 0).map_err(|r| r.status),
            Err(400)
        );
        assert_eq!(
            find_end(b"GET / HTTP/1.1\rX", 0).map_err(|r| r.status),
            Err(400)
        );
        let long = vec![b'a'; MAX_REQUEST_LINE + 2];
        assert_eq!(find_end(&long, 0).map_err(|r| r.status), Err(414));
    }

    #[test]
    fn http10_closes_unless_it_asks_for_keep_alive() {
        let h = head("GET / HTTP/1.0\r\n\r\n").expect("valid");
        assert!(h.close && h.http10);
        let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").expect("valid");
        assert!(!h.close);
        let h = head("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.expect("valid").close, "close wins");
        let h = head("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.expect("valid").expect_continue);
    }
}
