//! Routing and answers: one plain function from a request to an `Answer`,
//! testable without a socket. Knows the endpoints, the status codes and the
//! JSON error shape. Does not own sockets or threads (see `server.rs`).

use crate::ingest::limit::RateLimit;
use crate::ingest::peer::{self, Cidr, Keep};
use crate::ingest::report::{self, Format};
use crate::ingest::store::{Store, StoreError};
use crate::insight::stats::Stats;
use crate::metrics::Metrics;
use crate::process;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tiny_http::BodyError;

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER: &str = "5";

/// `GET /`: what this is, for a person who opens it and for load balancers
/// that check `/` by default (a GCE Ingress does). No version: the build
/// stays off the public port with --metrics-listen.
const ROOT: &str =
    r#"{"service":"spartakus-collector","submit":"POST /api/v1/stats","health":"/healthz"}"#;
/// The same with `--stats on`.
const ROOT_STATS: &str = r#"{"service":"spartakus-collector","submit":"POST /api/v1/stats","health":"/healthz","stats":"/stats"}"#;

/// What the routes share.
pub struct App {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// Set on SIGTERM: reports are refused before their body is read.
    pub stopping: Arc<AtomicBool>,
    pub trusted_proxies: Vec<Cidr>,
    pub received_from: Keep,
    pub rate_limit: Option<RateLimit>,
    pub version: &'static str,
    /// `--metrics-listen` is set: /metrics and /version are served there
    /// (`route_metrics`), not on the public listener.
    pub metrics_apart: bool,
    /// `--stats on`: GET /stats, and the usage gauges on /metrics. All of
    /// its logic, shedding included, is in insight/stats.rs.
    pub stats: Option<Arc<Stats>>,
}

/// The parts of a request that routing looks at.
#[derive(Debug, Default)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The request target, query string included.
    pub url: &'a str,
    pub peer: Option<SocketAddr>,
    pub content_type: Option<&'a str>,
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
    pub fn error(status: u16, message: &str) -> Answer {
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

    pub fn header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// The body, in memory, and its share of the server's body budget.
pub type Body<'b> = Box<dyn Deref<Target = [u8]> + 'b>;

/// Reads the request's body, once; only a route that has accepted the
/// request calls it (that is when a client waiting on `Expect:
/// 100-continue` is told to send it).
pub type ReadBody<'r, 'b> = dyn FnMut() -> Result<Body<'b>, BodyError> + 'r;

pub fn route(req: &Incoming, body: &mut ReadBody, app: &App) -> Answer {
    let path = req.url.split('?').next().unwrap_or_default();
    let read = matches!(req.method, "GET" | "HEAD");
    if req.method == "OPTIONS" {
        return options(path, app);
    }
    if app.metrics_apart && matches!(path, "/version" | "/metrics") {
        return not_found();
    }
    match (path, req.method) {
        ("/api/v1/stats", "POST") => ingest(Format::Current, req, body, app),
        ("/api/v1", "POST") => ingest(Format::V1, req, body, app),
        ("/api/v1/stats" | "/api/v1", _) => not_allowed("POST"),
        ("/", _) if read => Answer::json(200, root(app).into()),
        ("/health" | "/healthz", _) if read => Answer::json(200, r#"{"status":"ok"}"#.into()),
        ("/readyz", _) if read => {
            if app.store.ready() {
                Answer::json(200, r#"{"status":"ready"}"#.into())
            } else {
                Answer::unavailable("database: not reachable")
            }
        }
        ("/version" | "/metrics", _) if read => route_metrics(req, app),
        ("/" | "/health" | "/healthz" | "/readyz" | "/version" | "/metrics", _) => {
            not_allowed("GET, HEAD")
        }
        ("/stats", _) => match (&app.stats, read) {
            (None, _) => not_found(),
            (Some(stats), true) => stats.answer(req.url),
            (Some(_), false) => not_allowed("GET, HEAD"),
        },
        _ => not_found(),
    }
}

fn root(app: &App) -> &'static str {
    match app.stats {
        Some(_) => ROOT_STATS,
        None => ROOT,
    }
}

/// The metrics listener (`--metrics-listen`): /metrics, /version and
/// /healthz, nothing that takes a body.
pub fn route_metrics(req: &Incoming, app: &App) -> Answer {
    let path = req.url.split('?').next().unwrap_or_default();
    if !matches!(req.method, "GET" | "HEAD") {
        return match path {
            "/metrics" | "/version" | "/healthz" => not_allowed("GET, HEAD"),
            _ => not_found(),
        };
    }
    match path {
        "/version" => Answer::json(200, serde_json::json!({"version": app.version}).to_string()),
        "/metrics" => Answer {
            content_type: "text/plain; version=0.0.4",
            ..Answer::json(200, metrics(app))
        },
        "/healthz" => Answer::json(200, r#"{"status":"ok"}"#.into()),
        _ => not_found(),
    }
}

fn metrics(app: &App) -> String {
    let mut text = app.metrics.render() + &process::render(app.version);
    if let Some(stats) = &app.stats {
        text.push_str(&stats.metrics());
    }
    text
}

fn not_found() -> Answer {
    Answer::error(404, "no such endpoint; reports go to POST /api/v1/stats")
}

/// `OPTIONS`: the methods a path allows, or all of them for `*`.
fn options(path: &str, app: &App) -> Answer {
    let allow = match path {
        "/stats" if app.stats.is_some() => "GET, HEAD, OPTIONS",
        "*" => "GET, HEAD, POST, OPTIONS",
        "/api/v1/stats" | "/api/v1" => "POST, OPTIONS",
        "/" | "/health" | "/healthz" | "/readyz" | "/version" | "/metrics" => "GET, HEAD, OPTIONS",
        _ => return not_found(),
    };
    Answer::no_content().header("Allow", allow)
}

fn not_allowed(allow: &str) -> Answer {
    Answer::error(405, &format!("method not allowed; use {allow}")).header("Allow", allow)
}

fn ingest(format: Format, req: &Incoming, body: &mut ReadBody, app: &App) -> Answer {
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
    // Refusals that need no body come first, so that a client waiting on
    // `Expect: 100-continue` never sends one in vain.
    if app.stopping.load(Ordering::Acquire) {
        return Answer::unavailable("shutting down, retry later").header("Connection", "close");
    }
    if !app.store.up() {
        return Answer::unavailable("database: unavailable, retry later");
    }
    let buf = match body() {
        Ok(buf) => buf,
        Err(e) => {
            let answer = match e {
                BodyError::TooLarge => Answer::error(
                    413,
                    &format!(
                        "body: larger than the limit of {} bytes",
                        app.max_body_bytes
                    ),
                ),
                BodyError::Busy => Answer::unavailable(e.message()),
                e => Answer::error(e.status(), e.message()),
            };
            return answer.header("Connection", "close");
        }
    };
    // To the microsecond: it orders a cluster's reports, and keys those
    // without a reportID (batch.rs).
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let received_at = micros.div_euclid(1_000_000);
    let from = match client {
        Some(ip) => app.received_from.apply(ip),
        None => Some("unknown".to_string()),
    };
    let mut report =
        match report::parse(format, &buf[..], received_at, from.as_deref().unwrap_or("")) {
            Ok(report) => report,
            Err(message) => return Answer::error(400, &message),
        };
    report.received_micros = micros;
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

/// `application/json`, in any case, with or without parameters.
fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::report::Report;
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
            !matches!(self.fail, Some(StoreError::Unavailable))
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
            stopping: Arc::default(),
            trusted_proxies: Vec::new(),
            received_from: Keep::Full,
            rate_limit: None,
            version: "test",
            metrics_apart: false,
            stats: None,
        };
        (app, fake)
    }

    fn post<'a>(url: &'a str, content_type: Option<&'a str>) -> Incoming<'a> {
        Incoming {
            method: "POST",
            url,
            content_type,
            peer: "192.0.2.9:4000".parse().ok(),
            ..Incoming::default()
        }
    }

    const REPORT: &[u8] = br#"{"payload": {"clusterID": "c"}}"#;

    /// `route` with `body` as the request's body, refused past the app's
    /// limit as the server refuses it.
    fn call(req: &Incoming, body: &[u8], app: &App) -> Answer {
        let limit = app.max_body_bytes;
        let mut read = || match body.len() > limit {
            true => Err(BodyError::TooLarge),
            false => Ok(Box::new(body.to_vec()) as Body),
        };
        route(req, &mut read, app)
    }

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
            (get("/"), b"", 200),
            (get("/?from=lb"), b"", 200),
            (post("/", json), REPORT, 405),
            (get("/index.html"), b"", 404),
            (get("/stats"), b"", 404),
        ];
        for (req, body, want) in cases {
            let (app, _) = fake_app(None);
            let got = call(&req, body, &app);
            assert_eq!(got.status, want, "{} {}: {got:?}", req.method, req.url);
            if want >= 400 {
                let v: serde_json::Value = serde_json::from_str(&got.body).expect("json error");
                assert_eq!(v["error"]["code"], want);
                assert!(v["error"]["message"].is_string());
            }
        }
    }

    #[test]
    fn reports_are_refused_before_their_body_is_read() {
        let json = Some("application/json");
        let unread = |app: &App, req: &Incoming| {
            let mut read = || -> Result<Body, BodyError> { panic!("body read") };
            route(req, &mut read, app)
        };
        let (app, _) = fake_app(Some(StoreError::Unavailable));
        assert_eq!(unread(&app, &post("/api/v1/stats", json)).status, 503);
        let (app, _) = fake_app(None);
        assert_eq!(unread(&app, &post("/api/v1/stats", None)).status, 415);
        assert_eq!(unread(&app, &post("/nope", json)).status, 404);
        app.stopping.store(true, Ordering::Release);
        let got = unread(&app, &post("/api/v1/stats", json));
        assert_eq!(got.status, 503);
        assert!(got.headers.contains(&("Connection", "close".into())));
    }

    #[test]
    fn options_lists_the_allowed_methods() {
        let (app, _) = fake_app(None);
        for (url, allow) in [
            ("*", "GET, HEAD, POST, OPTIONS"),
            ("/api/v1/stats", "POST, OPTIONS"),
            ("/", "GET, HEAD, OPTIONS"),
        ] {
            let req = Incoming {
                method: "OPTIONS",
                url,
                ..Incoming::default()
            };
            let got = call(&req, b"", &app);
            assert_eq!(
                (got.status, got.headers),
                (204, vec![("Allow", allow.to_string())])
            );
        }
    }

    #[test]
    fn root_describes_the_service_without_its_version() {
        for metrics_apart in [false, true] {
            let (mut app, _) = fake_app(None);
            app.metrics_apart = metrics_apart;
            for method in ["GET", "HEAD"] {
                let req = Incoming {
                    method,
                    url: "/",
                    ..Incoming::default()
                };
                let got = call(&req, b"", &app);
                assert_eq!((got.status, got.content_type), (200, "application/json"));
                let v: serde_json::Value = serde_json::from_str(&got.body).expect("json");
                assert_eq!(v["service"], "spartakus-collector");
                assert_eq!(v["submit"], "POST /api/v1/stats");
                assert_eq!(v["health"], "/healthz");
                assert!(!got.body.contains(app.version), "{}", got.body);
            }
        }
    }

    #[test]
    fn method_not_allowed_names_the_allowed_ones() {
        let (app, _) = fake_app(None);
        let req = Incoming {
            method: "DELETE",
            url: "/api/v1/stats",
            ..Incoming::default()
        };
        let got = call(&req, b"", &app);
        assert_eq!(got.headers, vec![("Allow", "POST".to_string())]);
    }

    #[test]
    fn database_trouble_is_503_with_retry_after_or_400_for_bad_data() {
        let (app, _) = fake_app(Some(StoreError::Unavailable));
        let got = call(
            &post("/api/v1/stats", Some("application/json")),
            REPORT,
            &app,
        );
        assert_eq!(got.status, 503);
        assert!(got.headers.contains(&("Retry-After", "5".into())));
        let ready = call(
            &Incoming {
                method: "GET",
                url: "/readyz",
                ..Incoming::default()
            },
            b"",
            &app,
        );
        assert_eq!(ready.status, 503);
        let (app, _) = fake_app(Some(StoreError::Rejected));
        let got = call(
            &post("/api/v1/stats", Some("application/json")),
            REPORT,
            &app,
        );
        assert_eq!(got.status, 400);
    }

    #[test]
    fn stored_report_is_stamped_with_the_peer() {
        let (app, fake) = fake_app(None);
        call(
            &post("/api/v1/stats", Some("application/json")),
            REPORT,
            &app,
        );
        let stored = fake.stored.lock().expect("test lock");
        assert_eq!(stored[0].received_from, "192.0.2.9");
        assert_eq!(stored[0].metadata["received_from"], "192.0.2.9");
    }
}
