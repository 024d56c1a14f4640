//! Routing and answers: one plain function from a request to an `Answer`,
//! testable without a socket. Knows the endpoints, the status codes and the
//! JSON error shape. Does not own sockets or threads (see `server.rs`).

use crate::limit::RateLimit;
use crate::metrics::Metrics;
use crate::peer::{self, Cidr, Keep};
use crate::report::{self, Format};
use crate::store::{Store, StoreError};
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER: &str = "5";

/// Bodies up to this size are read by the connection's own thread before a
/// worker sees the request (tiny_http's `Limits::preread_bytes`): a worker
/// never waits on a slow client for them. Other bodies (larger, chunked, or
/// sent only after `Expect: 100-continue`) are read by the worker, and
/// `App::large_bodies` caps how many workers may do that at once.
pub const PREREAD_BYTES: usize = 64 * 1024;

/// What the routes share.
pub struct App {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// Workers that may be reading a body over `PREREAD_BYTES` at once.
    pub large_bodies: Slots,
    pub trusted_proxies: Vec<Cidr>,
    pub received_from: Keep,
    pub rate_limit: Option<RateLimit>,
    pub version: &'static str,
}

/// The parts of a request that routing looks at.
#[derive(Debug, Default)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The request target, query string included.
    pub url: &'a str,
    pub peer: Option<SocketAddr>,
    pub content_type: Option<&'a str>,
    /// The declared Content-Length; `None` for chunked bodies.
    pub content_length: Option<usize>,
    /// The body is already in memory (or there is none): reading it cannot
    /// wait on the client.
    pub body_preread: bool,
    /// Every X-Forwarded-For header, in order.
    pub forwarded_for: Vec<&'a str>,
    pub real_ip: Option<&'a str>,
}

#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn json(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }

    /// `{"error": {"code": N, "message": "..."}}`
    fn error(status: u16, message: &str) -> Answer {
        let body = serde_json::json!({"error": {"code": status, "message": message}});
        Answer::json(status, body.to_string())
    }

    fn no_content() -> Answer {
        Answer::json(204, String::new())
    }

    /// 503 with Retry-After: the client should come back later.
    pub fn unavailable(message: &str) -> Answer {
        Answer::error(503, message).header("Retry-After", RETRY_AFTER)
    }

    fn header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_string()));
        self
    }
}

pub fn route(req: &Incoming, body: &mut dyn Read, app: &App) -> Answer {
    let path = req.url.split('?').next().unwrap_or_default();
    let read = matches!(req.method, "GET" | "HEAD");
    match (path, req.method) {
        ("/api/v1/stats", "POST") => ingest(Format::Current, req, body, app),
        ("/api/v1", "POST") => ingest(Format::V1, req, body, app),
        ("/api/v1/stats" | "/api/v1", _) => not_allowed("POST"),
        ("/health" | "/healthz", _) if read => Answer::json(200, r#"{"status":"ok"}"#.into()),
        ("/readyz", _) if read => {
            if app.store.ready() {
                Answer::json(200, r#"{"status":"ready"}"#.into())
            } else {
                Answer::unavailable("database: not reachable")
            }
        }
        ("/version", _) if read => {
            Answer::json(200, serde_json::json!({"version": app.version}).to_string())
        }
        ("/metrics", _) if read => Answer {
            content_type: "text/plain; version=0.0.4",
            ..Answer::json(200, app.metrics.render())
        },
        ("/health" | "/healthz" | "/readyz" | "/version" | "/metrics", _) => {
            not_allowed("GET, HEAD")
        }
        _ => Answer::error(404, "no such endpoint; reports go to POST /api/v1/stats"),
    }
}

fn not_allowed(allow: &str) -> Answer {
    Answer::error(405, &format!("method not allowed; use {allow}")).header("Allow", allow)
}

fn ingest(format: Format, req: &Incoming, body: &mut dyn Read, app: &App) -> Answer {
    if !is_json(req.content_type) {
        return Answer::error(415, "Content-Type: must be application/json");
    }
    let client = peer::client_ip(
        req.peer,
        &req.forwarded_for,
        req.real_ip,
        &app.trusted_proxies,
    );
    if let (Some(limit), Some(ip)) = (&app.rate_limit, client) {
        if let Err(wait) = limit.check(ip, Instant::now()) {
            return Answer::error(429, "too many reports from this address, retry later")
                .header("Retry-After", &wait.to_string());
        }
    }
    let limit = app.max_body_bytes;
    let too_large = || {
        Answer::error(
            413,
            &format!("body: larger than the limit of {limit} bytes"),
        )
        .header("Connection", "close")
    };
    if req.content_length.is_some_and(|n| n > limit) {
        return too_large();
    }
    let _slot = match req.body_preread {
        true => None,
        false => match app.large_bodies.take() {
            Some(slot) => Some(slot),
            None => return Answer::unavailable("busy receiving other large reports, retry later"),
        },
    };
    let mut buf = Vec::with_capacity(req.content_length.unwrap_or(8192).min(limit));
    // One byte past the limit tells "exactly at the limit" from "over it".
    let limit_plus_one = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    if let Err(e) = body.take(limit_plus_one).read_to_end(&mut buf) {
        return match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                Answer::error(408, "body: not received in time")
            }
            _ => Answer::error(400, "body: could not be read completely"),
        };
    }
    if buf.len() > limit {
        return too_large();
    }
    let received_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let from = match client {
        Some(ip) => app.received_from.apply(ip),
        None => Some("unknown".to_string()),
    };
    let mut report = match report::parse(format, &buf, received_at, from.as_deref().unwrap_or("")) {
        Ok(report) => report,
        Err(message) => return Answer::error(400, &message),
    };
    if from.is_none() {
        // --received-from none: not in metadata; the column is left empty.
        report.metadata.remove("received_from");
    }
    match app.store.store(report) {
        Ok(()) => Answer::no_content(),
        Err(StoreError::Unavailable) => Answer::unavailable("database: unavailable, retry later"),
        Err(StoreError::Rejected) => Answer::error(400, "payload: refused by the database"),
    }
}

/// A counting semaphore that never blocks: `take` fails when all are taken.
pub struct Slots {
    used: AtomicUsize,
    max: usize,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            used: AtomicUsize::new(0),
            max: max.max(1),
        }
    }

    fn take(&self) -> Option<Slot<'_>> {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        taken.ok().map(|_| Slot(self))
    }
}

/// One taken slot, given back on drop.
struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `application/json`, in any case, with or without parameters.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;
    use std::sync::Mutex;

    /// Remembers what it stored; fails on demand.
    #[derive(Default)]
    struct Fake {
        stored: Mutex<Vec<Report>>,
        fail: Option<StoreError>,
    }

    impl Store for Fake {
        fn store(&self, report: Report) -> Result<(), StoreError> {
            if let Some(e) = &self.fail {
                return Err(e.clone());
            }
            self.stored.lock().expect("test lock").push(report);
            Ok(())
        }
        fn ready(&self) -> bool {
            self.fail.is_none()
        }
    }

    fn fake_app(fail: Option<StoreError>) -> (App, Arc<Fake>) {
        let fake = Arc::new(Fake {
            fail,
            ..Fake::default()
        });
        let app = App {
            store: fake.clone(),
            metrics: Arc::default(),
            max_body_bytes: 100,
            large_bodies: Slots::new(1),
            trusted_proxies: Vec::new(),
            received_from: Keep::Full,
            rate_limit: None,
            version: "test",
        };
        (app, fake)
    }

    fn post<'a>(url: &'a str, content_type: Option<&'a str>) -> Incoming<'a> {
        Incoming {
            method: "POST",
            url,
            content_type,
            body_preread: true,
            peer: "192.0.2.9:4000".parse().ok(),
            ..Incoming::default()
        }
    }

    const REPORT: &[u8] = br#"{"payload": {"clusterID": "c"}}"#;

    #[test]
    fn statuses() {
        let json = Some("application/json");
        let get = |url| Incoming {
            method: "GET",
            url,
            ..Incoming::default()
        };
        let cases: Vec<(Incoming, &[u8], u16)> = vec![
            (post("/api/v1/stats", json), REPORT, 204),
            (
                post("/api/v1/stats?x=1", Some("Application/JSON; charset=utf-8")),
                REPORT,
                204,
            ),
            (post("/api/v1", json), br#"{"clusterID": "c"}"#, 204),
            (post("/api/v1/stats", json), b"{", 400),
            (post("/api/v1/stats", None), REPORT, 415),
            (post("/api/v1/stats", Some("text/plain")), REPORT, 415),
            (
                post("/api/v1/stats", Some("application/jsonx")),
                REPORT,
                415,
            ),
            (post("/api/v1/stats", json), &[b' '; 101], 413),
            (post("/api/v1/stats", json), &[b' '; 100], 400),
            (post("/nope", json), REPORT, 404),
            (get("/api/v1/stats"), b"", 405),
            (post("/healthz", json), b"", 405),
            (get("/health"), b"", 200),
            (get("/healthz"), b"", 200),
            (get("/readyz"), b"", 200),
            (get("/version"), b"", 200),
            (get("/metrics"), b"", 200),
            (get("/"), b"", 404),
        ];
        for (req, body, want) in cases {
            let (app, _) = fake_app(None);
            let got = route(&req, &mut &body[..], &app);
            assert_eq!(got.status, want, "{} {}: {got:?}", req.method, req.url);
            if want >= 400 {
                let v: serde_json::Value = serde_json::from_str(&got.body).expect("json error");
                assert_eq!(v["error"]["code"], want);
                assert!(v["error"]["message"].is_string());
            }
        }
    }

    #[test]
    fn declared_oversize_body_is_refused_unread() {
        let (app, _) = fake_app(None);
        let mut req = post("/api/v1/stats", Some("application/json"));
        req.content_length = Some(1 << 40);
        let mut never = std::io::repeat(b'x').take(0);
        let got = route(&req, &mut never, &app);
        assert_eq!(got.status, 413);
    }

    #[test]
    fn bodies_not_yet_read_take_a_slot_or_get_503() {
        let (app, _) = fake_app(None);
        let mut req = post("/api/v1/stats", Some("application/json"));
        req.body_preread = false;
        let held = app.large_bodies.take().expect("the one slot");
        let got = route(&req, &mut &REPORT[..], &app);
        assert_eq!(got.status, 503);
        assert!(got.headers.contains(&("Retry-After", "5".into())));
        drop(held);
        assert_eq!(route(&req, &mut &REPORT[..], &app).status, 204);
    }

    #[test]
    fn method_not_allowed_names_the_allowed_ones() {
        let (app, _) = fake_app(None);
        let req = Incoming {
            method: "DELETE",
            url: "/api/v1/stats",
            ..Incoming::default()
        };
        let got = route(&req, &mut &b""[..], &app);
        assert_eq!(got.headers, vec![("Allow", "POST".to_string())]);
    }

    #[test]
    fn database_trouble_is_503_with_retry_after_or_400_for_bad_data() {
        let (app, _) = fake_app(Some(StoreError::Unavailable));
        let got = route(
            &post("/api/v1/stats", Some("application/json")),
            &mut &REPORT[..],
            &app,
        );
        assert_eq!(got.status, 503);
        assert!(got.headers.contains(&("Retry-After", "5".into())));
        let ready = route(
            &Incoming {
                method: "GET",
                url: "/readyz",
                ..Incoming::default()
            },
            &mut &b""[..],
            &app,
        );
        assert_eq!(ready.status, 503);
        let (app, _) = fake_app(Some(StoreError::Rejected));
        let got = route(
            &post("/api/v1/stats", Some("application/json")),
            &mut &REPORT[..],
            &app,
        );
        assert_eq!(got.status, 400);
    }

    #[test]
    fn stored_report_is_stamped_with_the_peer() {
        let (app, fake) = fake_app(None);
        route(
            &post("/api/v1/stats", Some("application/json")),
            &mut &REPORT[..],
            &app,
        );
        let stored = fake.stored.lock().expect("test lock");
        assert_eq!(stored[0].received_from, "192.0.2.9");
        assert_eq!(stored[0].metadata["received_from"], "192.0.2.9");
    }
}
