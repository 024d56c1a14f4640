//! The HTTP front: the vendored server runs each connection on its own
//! thread and calls `Front::handle` for every request, which passes it to
//! `http::route`, logs one line and counts it. Owns the graceful drain on
//! SIGTERM or SIGINT. Does not decide any answer itself.

use crate::error::Error;
use crate::ingest::http::{self, Answer, App, Incoming};
use signal_hook::iterator::Signals;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::{Handler, Limits, Request, Response, Server};

/// The longest a SIGTERM drain may take before the process exits anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(9);

/// The metrics listener's limits: a scraper or two, no bodies.
pub const METRICS_LIMITS: Limits = Limits {
    io_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(30),
    max_connections: 32,
    max_body: 0,
    body_budget: 0,
};

pub fn bind(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
) -> Result<Server, Error> {
    let listen = |e: std::io::Error| Error::Listen(format!("{addr}: {e}"));
    let listener = std::net::TcpListener::bind(addr).map_err(listen)?;
    Server::new(listener, tls, limits).map_err(listen)
}

/// On the first of `signals`: refuse new connections at once and set
/// `stopping`, so that `serve` drains and returns. A second signal exits
/// without draining.
pub fn on_signals(mut signals: Signals, servers: Vec<Arc<Server>>, stopping: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if stopping.swap(true, Ordering::AcqRel) {
                log::warn!("second signal {signal}: exiting without draining");
                std::process::exit(1);
            }
            log::info!("signal {signal}: draining in-flight requests");
            servers.iter().for_each(|s| s.stop());
            // Orchestrators kill after a grace period (Kubernetes: 30 s);
            // a drain stuck on a slow client or database must not outlast
            // it. Requests cut off here were never acknowledged, so their
            // volunteers send them again.
            std::thread::spawn(|| {
                std::thread::sleep(DRAIN_DEADLINE);
                log::warn!("drain still running after {DRAIN_DEADLINE:?}; exiting");
                std::process::exit(0);
            });
        }
    });
}

/// Serves until the servers are stopped and every connection has ended.
pub fn serve(server: &Server, metrics: Option<&Server>, app: &App) {
    std::thread::scope(|scope| {
        if let Some(metrics) = metrics {
            let front = Front {
                app,
                metrics_only: true,
            };
            scope.spawn(move || metrics.serve(&front));
        }
        server.serve(&Front {
            app,
            metrics_only: false,
        });
    });
}

struct Front<'a> {
    app: &'a App,
    /// The `--metrics-listen` listener.
    metrics_only: bool,
}

impl Handler for Front<'_> {
    fn handle(&self, request: &mut Request) -> Response {
        let started = Instant::now();
        // Owned copies, because reading the body borrows `request` mutably.
        let owned = |v: Option<&str>| v.map(String::from);
        let (method, url) = (request.method().to_string(), request.url().to_string());
        let content_type = owned(request.header("Content-Type"));
        let real_ip = owned(request.header("X-Real-IP"));
        let forwarded_for: Vec<String> = request
            .headers("X-Forwarded-For")
            .map(String::from)
            .collect();
        let incoming = Incoming {
            method: &method,
            url: &url,
            peer: Some(request.remote_addr()),
            content_type: content_type.as_deref(),
            forwarded_for: forwarded_for.iter().map(String::as_str).collect(),
            real_ip: real_ip.as_deref(),
        };
        let answer = match self.metrics_only {
            true => http::route_metrics(&incoming, self.app),
            false => http::route(
                &incoming,
                &mut || Ok(Box::new(request.read_body()?)),
                self.app,
            ),
        };
        log_line(incoming.method, incoming.url, answer.status, started);
        self.app.metrics.observe(answer.status, started.elapsed());
        response(answer)
    }

    fn refused(&self, status: u16, reason: &str) {
        if status == 0 {
            log::warn!("{reason}");
            return;
        }
        self.app.metrics.observe(status, Duration::ZERO);
        log::info!("- - {status} refused: {reason}");
    }
}

/// One line per request. Client text is bounded and without control
/// characters, which could start a forged log line; and never the query.
fn log_line(method: &str, url: &str, status: u16, started: Instant) {
    let printable = |text: &str, max| -> String {
        let visible = |c: char| if c.is_control() { '?' } else { c };
        text.chars().take(max).map(visible).collect()
    };
    let method = printable(method, 16);
    let path = printable(url.split('?').next().unwrap_or_default(), 200);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    log::info!("{method} {path} {status} {ms:.1}ms");
}

fn response(answer: Answer) -> Response {
    let mut headers = answer.headers;
    if answer.status != 204 {
        headers.push(("Content-Type", answer.content_type.to_string()));
    }
    Response {
        status: answer.status,
        headers,
        body: answer.body.into_bytes(),
    }
}
