//! The tiny_http loop: a fixed pool of worker threads that take requests,
//! pass them to `http::route`, answer, log one line and count it. Owns the
//! graceful drain on SIGTERM or SIGINT. Does not decide any answer itself.

use crate::http::{self, Answer, App, Incoming};
use signal_hook::iterator::Signals;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::{Header, Request, Response, Server};

/// How often idle workers look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// After the stop signal, requests already queued are answered 503 until the
/// queue is empty, but for no longer than this; then the workers exit.
const DRAIN: Duration = Duration::from_secs(2);

/// The longest a SIGTERM drain may take before the process exits anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(9);

/// On the first of `signals`: refuse new connections at once and set
/// `stopping`, so that `serve` drains and returns. A second signal exits
/// without draining.
pub fn on_signals(mut signals: Signals, server: Arc<Server>, stopping: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if stopping.swap(true, Ordering::AcqRel) {
                log::warn!("second signal {signal}: exiting without draining");
                std::process::exit(1);
            }
            log::info!("signal {signal}: draining in-flight requests");
            // Here, not on a worker: every worker may be waiting on a commit.
            server.stop_accepting();
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

/// Serves until `stopping` is set, then finishes every request a worker
/// holds (including its commit) and returns.
pub fn serve(server: &Server, app: &App, threads: usize, stopping: &AtomicBool) {
    std::thread::scope(|scope| {
        for i in 0..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn_scoped(scope, move || work(server, app, stopping));
            if let Err(e) = spawned {
                log::error!("could not start worker thread {i}: {e}");
            }
        }
    });
}

fn work(server: &Server, app: &App, stopping: &AtomicBool) {
    while !stopping.load(Ordering::Acquire) {
        match server.recv_timeout(POLL) {
            Ok(Some(request)) => answer(request, app),
            Ok(None) => {}
            Err(e) => log::warn!("receiving a request: {e}"),
        }
    }
    // Connections that were accepted but not yet served get a clean 503
    // rather than a reset, for a bounded time.
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        match server.try_recv() {
            Ok(Some(request)) => {
                let mut a = Answer::unavailable("shutting down, retry later");
                a.headers.push(("Connection", "close".into()));
                respond(request, a, Instant::now(), &app.metrics);
            }
            _ => return,
        }
    }
}

fn answer(mut request: Request, app: &App) {
    let started = Instant::now();
    // Owned copies, because reading the body below borrows `request` mutably.
    let values = |name: &str| -> Vec<String> {
        let headers = request.headers().iter();
        let matching = headers.filter(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name));
        matching.map(|h| h.value.as_str().to_string()).collect()
    };
    let content_type = values("Content-Type");
    let forwarded_for = values("X-Forwarded-For");
    let real_ip = values("X-Real-IP");
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let incoming = Incoming {
        method: &method,
        url: &url,
        peer: request.remote_addr().copied(),
        content_type: content_type.first().map(String::as_str),
        content_length: request.body_length(),
        body_preread: request.body_preread(),
        forwarded_for: forwarded_for.iter().map(String::as_str).collect(),
        real_ip: real_ip.first().map(String::as_str),
    };
    let body_preread = incoming.body_preread;
    let answer = http::route(&incoming, request.as_reader(), app);
    if !body_preread {
        // Whatever of the body the route left unread is not drained on this
        // worker, where a trickling client could hold it: the connection
        // closes after the answer instead.
        request.close_connection();
    }
    let status = answer.status;
    respond(request, answer, started, &app.metrics);
    // Client text, so bounded and without control characters, which could
    // start a forged log line; and never the query string.
    let printable = |text: &str, max| -> String {
        let visible = |c: char| if c.is_control() { '?' } else { c };
        text.chars().take(max).map(visible).collect()
    };
    let method = printable(&method, 16);
    let path = printable(url.split('?').next().unwrap_or_default(), 200);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    log::info!("{method} {path} {status} {ms:.1}ms");
}

fn respond(request: Request, answer: Answer, started: Instant, metrics: &crate::metrics::Metrics) {
    let status = answer.status;
    let answer_closes = answer
        .headers
        .iter()
        .any(|(n, v)| *n == "Connection" && v == "close");
    let mut response = Response::from_string(answer.body).with_status_code(status);
    let content_type = Some(("Content-Type", answer.content_type.to_string()));
    let content_type = content_type.filter(|_| status != 204);
    for (name, value) in content_type.into_iter().chain(answer.headers) {
        match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            Ok(h) => response.add_header(h),
            Err(()) => log::error!("invalid response header {name}"),
        }
    }
    // tiny_http drops a Connection header, so the request is told instead.
    if answer_closes {
        request.close_connection();
    }
    // Counted before the answer leaves, so a client never sees metrics that
    // do not include its own request yet.
    metrics.observe(status, started.elapsed());
    if let Err(e) = request.respond(response) {
        log::debug!("answering: {e}");
    }
}
