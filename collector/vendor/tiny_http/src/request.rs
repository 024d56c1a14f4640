//! What a handler sees of a request (`Request`, its head and a way to read
//! its body once) and what it gives back (`Response`), and how a response is
//! written: status line, Date, Content-Length, Connection.

use crate::body::{self, Body, BodyError, Budget};
use crate::head::{Framing, Head};
use crate::io::Input;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Request<'c, 's, 'b> {
    pub(crate) head: Head,
    pub(crate) remote: SocketAddr,
    pub(crate) input: &'c mut Input<'s>,
    pub(crate) max_body: usize,
    pub(crate) budget: &'b Budget,
    /// The body was read to its end (or there is none).
    pub(crate) body_done: bool,
}

impl<'b> Request<'_, '_, 'b> {
    pub fn method(&self) -> &str {
        &self.head.method
    }

    /// The target in origin form: path and query.
    pub fn url(&self) -> &str {
        &self.head.path
    }

    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Every value of the header `name` (in any case), in order.
    pub fn headers<'r>(&'r self, name: &'r str) -> impl Iterator<Item = &'r str> + 'r {
        let matching = self.head.headers.iter();
        let matching = matching.filter(move |(n, _)| n.eq_ignore_ascii_case(name));
        matching.map(|(_, v)| v.as_str())
    }

    pub fn header<'r>(&'r self, name: &'r str) -> Option<&'r str> {
        self.headers(name).next()
    }

    /// Reads the whole body, once. Sends `100 Continue` first if the client
    /// waits for it: only a handler that has accepted the request reads.
    pub fn read_body(&mut self) -> Result<Body<'b>, BodyError> {
        if self.body_done && self.head.framing != Framing::Empty {
            return Err(BodyError::Invalid("body: already read"));
        }
        if self.head.expect_continue && self.head.framing != Framing::Empty {
            if !self.budget.has_room() {
                return Err(BodyError::Busy);
            }
            self.head.expect_continue = false;
            let stream = &mut self.input.stream;
            let sent = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            sent.and_then(|()| stream.flush())
                .map_err(|_| BodyError::Closed)?;
        }
        let body = body::read(self.input, self.head.framing, self.max_body, self.budget);
        self.body_done = body.is_ok();
        body
    }
}

pub struct Response {
    pub status: u16,
    /// `Content-Length`, `Date` and `Connection: keep-alive` are added when
    /// written; `Connection: close` here ends the connection.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// `{"error": {"code": N, "message": "..."}}`: how the server answers
    /// what it refuses itself.
    pub fn error(status: u16, message: &str) -> Response {
        let mut escaped = String::with_capacity(message.len());
        for c in message.chars() {
            match c {
                '"' | '\\' => escaped.extend(['\\', c]),
                '\n' => escaped.push_str("\\n"),
                c if c.is_control() => escaped.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => escaped.push(c),
            }
        }
        let message = escaped;
        let body = format!(r#"{{"error":{{"code":{status},"message":"{message}"}}}}"#);
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: body.into_bytes(),
        }
    }

    pub fn closes(&self) -> bool {
        let close = |(n, v): &(&str, String)| n.eq_ignore_ascii_case("connection") && v == "close";
        self.headers.iter().any(close)
    }

    /// Writes the response; `head_only` for HEAD, `close` when the
    /// connection ends after it.
    pub(crate) fn write(
        &self,
        out: &mut impl Write,
        head_only: bool,
        close: bool,
        http10: bool,
    ) -> io::Result<()> {
        let mut text = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        text.push_str(&format!("Date: {}\r\n", http_date(SystemTime::now())));
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("connection")
                && !name.eq_ignore_ascii_case("content-length")
            {
                text.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        if !matches!(self.status, 100..=199 | 204 | 304) {
            text.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        match (close, http10) {
            (true, _) => text.push_str("Connection: close\r\n"),
            (false, true) => text.push_str("Connection: keep-alive\r\n"),
            (false, false) => {}
        }
        text.push_str("\r\n");
        let mut bytes = text.into_bytes();
        if !head_only && !matches!(self.status, 204 | 304) {
            bytes.extend_from_slice(&self.body);
        }
        out.write_all(&bytes)?;
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// IMF-fixdate (RFC 9110 section 5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS[(days % 7) as usize];
    let month = MONTHS[(month - 1) as usize];
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{weekday}, {day:02} {month} {year} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_imf_fixdate() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(http_date(at(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(at(1_709_210_096)),
            "Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }

    #[test]
    fn error_bodies_are_json() {
        let r = Response::error(400, "a \"quoted\"\nline");
        let body = String::from_utf8(r.body).expect("utf-8");
        assert_eq!(
            body,
            r#"{"error":{"code":400,"message":"a \"quoted\"\nline"}}"#
        );
    }
}
