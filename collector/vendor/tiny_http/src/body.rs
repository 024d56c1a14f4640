//! Request bodies: read whole into memory, by Content-Length or strict
//! chunked decoding (RFC 9112 section 7.1), each within `--max-body-bytes`
//! and all of them together within one byte budget. A body's memory grows
//! with what has arrived, so a client trickling a large body holds almost
//! none of the budget.

use crate::head::{is_tchar, Framing};
use crate::io::Input;
use std::io::ErrorKind;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The longest chunk-size line, extensions included.
pub const MAX_CHUNK_LINE: usize = 1024;
/// The largest trailer section, and the most fields in it.
pub const MAX_TRAILERS: usize = 8 * 1024;
pub const MAX_TRAILER_FIELDS: usize = crate::head::MAX_HEADERS;
/// A body's buffer grows by at least this much at a time.
const STEP: usize = 16 * 1024;

/// Why a body could not be read; the connection closes after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// The server's body budget is in use by other requests.
    Busy,
    /// Not complete within the request's deadline.
    TimedOut,
    /// Chunked framing broken; says how.
    Invalid(&'static str),
    /// The client closed the connection, or it failed, mid-body.
    Closed,
}

impl BodyError {
    pub fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::Busy => 503,
            BodyError::TimedOut => 408,
            BodyError::Invalid(_) | BodyError::Closed => 400,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            BodyError::TooLarge => "body: larger than the limit",
            BodyError::Busy => "busy receiving other reports, retry later",
            BodyError::TimedOut => "body: not received in time",
            BodyError::Invalid(why) => why,
            BodyError::Closed => "body: could not be read completely",
        }
    }
}

/// Bytes of bodies held in memory at once, by every connection together.
pub struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    pub fn new(max: usize) -> Budget {
        Budget {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Whether a body's first step would fit now: asked before telling an
    /// `Expect: 100-continue` client to send, so it is not told in vain.
    pub fn has_room(&self) -> bool {
        self.used.load(Ordering::Acquire).saturating_add(STEP) <= self.max
    }

    fn take(&self, n: usize) -> bool {
        let max = self.max;
        let took = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= max)
            });
        took.is_ok()
    }
}

/// A request's body; its share of the budget is given back on drop.
pub struct Body<'b> {
    bytes: Vec<u8>,
    budget: &'b Budget,
    held: usize,
    /// The most it can hold: the limit, or a Content-Length below it.
    cap: usize,
}

impl Deref for Body<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Body<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

impl<'b> Body<'b> {
    fn push(&mut self, data: &[u8]) -> Result<(), BodyError> {
        let needed = self.bytes.len() + data.len();
        if needed > self.cap {
            return Err(BodyError::TooLarge);
        }
        if needed > self.held {
            let grown = needed.max(self.held * 2).max(STEP).min(self.cap);
            if !self.budget.take(grown - self.held) {
                return Err(BodyError::Busy);
            }
            self.bytes.reserve_exact(grown - self.bytes.len());
            self.held = grown;
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }
}

fn io_error(e: std::io::Error) -> BodyError {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => BodyError::TimedOut,
        _ => BodyError::Closed,
    }
}

/// Makes sure something is buffered.
fn more(input: &mut Input) -> Result<(), BodyError> {
    if input.buffered().is_empty() && input.fill().map_err(io_error)? == 0 {
        return Err(BodyError::Closed);
    }
    Ok(())
}

pub fn read<'b>(
    input: &mut Input,
    framing: Framing,
    max: usize,
    budget: &'b Budget,
) -> Result<Body<'b>, BodyError> {
    let mut body = Body {
        bytes: Vec::new(),
        budget,
        held: 0,
        cap: max,
    };
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            let mut left = usize::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or(BodyError::TooLarge)?;
            body.cap = left;
            take(input, &mut body, &mut left)?;
        }
        Framing::Chunked => loop {
            let line = line(input, MAX_CHUNK_LINE, "chunk: size line too long")?;
            let size = chunk_size(&input.buffered()[..line])?;
            input.consume(line + 2);
            if size == 0 {
                trailers(input)?;
                break;
            }
            let mut left = usize::try_from(size)
                .ok()
                .filter(|&n| n <= max - body.len())
                .ok_or(BodyError::TooLarge)?;
            take(input, &mut body, &mut left)?;
            while input.buffered().len() < 2 {
                if input.fill().map_err(io_error)? == 0 {
                    return Err(BodyError::Closed);
                }
            }
            if &input.buffered()[..2] != b"\r\n" {
                return Err(BodyError::Invalid("chunk: data not followed by CRLF"));
            }
            input.consume(2);
        },
    }
    Ok(body)
}

/// Moves `left` bytes from the input into the body.
fn take(input: &mut Input, body: &mut Body, left: &mut usize) -> Result<(), BodyError> {
    while *left > 0 {
        more(input)?;
        let n = input.buffered().len().min(*left);
        body.push(&input.buffered()[..n])?;
        input.consume(n);
        *left -= n;
    }
    Ok(())
}

/// The length of the next line, without its CRLF, once it is buffered.
fn line(input: &mut Input, limit: usize, too_long: &'static str) -> Result<usize, BodyError> {
    loop {
        let buffered = input.buffered();
        if let Some(lf) = buffered.iter().position(|&b| b == b'\n') {
            if lf == 0 || buffered[lf - 1] != b'\r' {
                return Err(BodyError::Invalid("chunk: bare LF as a line end"));
            }
            if buffered[..lf - 1].contains(&b'\r') {
                return Err(BodyError::Invalid("chunk: bare CR"));
            }
            if lf - 1 > limit {
                return Err(BodyError::Invalid(too_long));
            }
            return Ok(lf - 1);
        }
        // The line and its CR may be buffered while its LF is on the way.
        if buffered.len() > limit + 1 {
            return Err(BodyError::Invalid(too_long));
        }
        if input.fill().map_err(io_error)? == 0 {
            return Err(BodyError::Closed);
        }
    }
}

/// `chunk-size [ chunk-ext ]`: hex digits with nothing around them, then
/// `;name` or `;name=value` extensions, which are checked and ignored.
fn chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let (digits, mut ext) = line.split_at(end);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(BodyError::Invalid("chunk: size must be hex digits"));
    }
    let size = digits.iter().try_fold(0u64, |n, &d| {
        let digit = u64::from(char::from(d).to_digit(16).unwrap_or(0));
        n.checked_mul(16)?.checked_add(digit)
    });
    let size = size.ok_or(BodyError::Invalid("chunk: size too large"))?;
    let bad = BodyError::Invalid("chunk: malformed extension");
    while let [b';', rest @ ..] = ext {
        let name = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name == 0 {
            return Err(bad);
        }
        ext = &rest[name..];
        if let [b'=', value @ ..] = ext {
            let len = match value {
                [b'"', ..] => quoted_len(value).ok_or(bad)?,
                _ => value.iter().take_while(|&&b| is_tchar(b)).count(),
            };
            if len == 0 {
                return Err(bad);
            }
            ext = &value[len..];
        }
    }
    match ext {
        [] => Ok(size),
        _ => Err(bad),
    }
}

/// The length of the quoted-string that `s` starts with.
fn quoted_len(s: &[u8]) -> Option<usize> {
    let text = |b: u8| b == b'\t' || b == b' ' || (0x21..0x7f).contains(&b) || b >= 0x80;
    let mut i = 1;
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' if text(*s.get(i + 1)?) => i += 2,
            b if text(b) && b != b'\\' => i += 1,
            _ => return None,
        }
    }
}

/// The trailer section after the last chunk: field lines, checked and
/// dropped, up to `MAX_TRAILERS`, ended by an empty line.
fn trailers(input: &mut Input) -> Result<(), BodyError> {
    let mut section = Vec::new();
    loop {
        let len = line(input, MAX_TRAILERS, "trailers: too large")?;
        if len == 0 {
            input.consume(2);
            break;
        }
        section.extend_from_slice(&input.buffered()[..len + 2]);
        input.consume(len + 2);
        if section.len() > MAX_TRAILERS {
            return Err(BodyError::Invalid("trailers: too large"));
        }
    }
    if section.is_empty() {
        return Ok(());
    }
    section.extend_from_slice(b"\r\n");
    let mut slots = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    match httparse::parse_headers(&section, &mut slots) {
        Ok(httparse::Status::Complete(_)) => Ok(()),
        _ => Err(BodyError::Invalid("trailers: invalid field")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_bare_hex_with_token_extensions() {
        assert_eq!(chunk_size(b"1a"), Ok(26));
        assert_eq!(chunk_size(b"0;a=b;c;d=\"x\\\"y\""), Ok(0));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"-1",
            b"+1",
            b"0x1",
            b"1;",
            b"1;a=",
            b"1;=b",
            b"1; a",
        ] {
            assert!(
                chunk_size(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(chunk_size(b"1;a=\"open").is_err());
        assert!(chunk_size(b"10000000000000000").is_err(), "overflows u64");
        assert_eq!(chunk_size(b"0000000000000000000001"), Ok(1));
    }

    #[test]
    fn the_budget_refuses_what_would_pass_its_maximum() {
        let budget = Budget::new(STEP * 2);
        let body = |cap| Body {
            bytes: Vec::new(),
            budget: &budget,
            held: 0,
            cap,
        };
        let (mut a, mut b, mut c) = (body(usize::MAX), body(usize::MAX), body(usize::MAX));
        assert_eq!(a.push(&[0; 10]), Ok(()));
        assert_eq!(a.held, STEP);
        assert_eq!(b.push(&[0; 10]), Ok(()));
        assert_eq!(c.push(&[0; 10]), Err(BodyError::Busy));
        drop((a, b));
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
        assert_eq!(c.push(&[0; 10]), Ok(()));
        let mut small = body(5);
        assert_eq!(small.push(&[0; 10]), Err(BodyError::TooLarge));
        assert_eq!(small.push(&[0; 5]), Ok(()));
        assert_eq!(small.held, 5, "a Content-Length caps what is reserved");
    }
}
