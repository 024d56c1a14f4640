//! Memory under the worst client: one that pipelines ~50 MiB of POSTs and
//! never reads an answer. The server must hold a bounded amount (its input
//! buffer, one body, the answers the socket takes) and go on serving
//! others. A file of its own, so that its process runs no other test while
//! it measures RSS.

mod common;

use common::{connect, limits, rss_bytes, TestServer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BODY: usize = 64 * 1024;
const PIPELINED: usize = 50 << 20;
/// Over about this long: loopback would take it all in a fraction of one.
const PACE: Duration = Duration::from_secs(3);
/// What the server may add to the process's RSS meanwhile.
const BOUND: usize = 32 << 20;

#[test]
fn a_pipelining_client_that_never_reads_holds_bounded_memory() {
    let limits = tiny_http::Limits {
        max_body: BODY,
        body_budget: 1 << 20,
        ..limits()
    };
    let server = TestServer::start(limits, None);
    let mut warm = connect(server.addr);
    warm.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .expect("the server reads");
    warm.answer(Duration::from_secs(2), false)
        .expect("a warm-up answer");
    drop(warm);
    let baseline = rss_bytes();

    let request = [
        format!("POST /fixed HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n").as_bytes(),
        &[b'p'; BODY],
    ]
    .concat();
    let (done, peak, written) = (
        AtomicBool::new(false),
        AtomicUsize::new(baseline),
        AtomicUsize::new(0),
    );
    let (checks, connections) = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                peak.fetch_max(rss_bytes(), Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let pipeliner = scope.spawn(|| {
            // Reconnects if the server gives up on it, so the load lasts.
            let start = Instant::now();
            let (give_up, mut connections) = (start + Duration::from_secs(20), 0);
            while written.load(Ordering::Acquire) < PIPELINED && Instant::now() < give_up {
                let mut client = connect(server.addr);
                connections += 1;
                while written.load(Ordering::Acquire) < PIPELINED && client.send(&request).is_ok() {
                    let so_far = written.fetch_add(request.len(), Ordering::AcqRel) + request.len();
                    let due = start + PACE.mul_f64(so_far as f64 / PIPELINED as f64);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
            }
            connections
        });
        let mut checks = Vec::new();
        while !pipeliner.is_finished() {
            let mut other = connect(server.addr);
            let sent = Instant::now();
            let answer = other
                .send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .map_err(|e| e.to_string())
                .and_then(|()| other.answer(Duration::from_secs(2), false));
            checks.push((sent.elapsed(), answer.map(|a| a.status)));
            std::thread::sleep(Duration::from_millis(50));
        }
        let connections = pipeliner.join().expect("the pipeliner does not panic");
        // The server may still be reading what the socket holds.
        let _ = server.wait_open(0, Duration::from_secs(5));
        done.store(true, Ordering::Release);
        (checks, connections)
    });
    let (peak, written) = (
        peak.load(Ordering::Acquire),
        written.load(Ordering::Acquire),
    );
    let mib = |n: usize| n as f64 / f64::from(1 << 20);
    assert!(
        written >= PIPELINED,
        "only {:.1} MiB pipelined in 20 s",
        mib(written)
    );
    assert!(
        peak.saturating_sub(baseline) < BOUND,
        "RSS grew {:.1} MiB (from {:.1} to {:.1}) while {:.1} MiB were pipelined over {connections} connections",
        mib(peak.saturating_sub(baseline)),
        mib(baseline),
        mib(peak),
        mib(written)
    );
    eprintln!(
        "pipelined {:.1} MiB over {connections} connections; RSS {:.1} -> {:.1} MiB; {} other clients",
        mib(written),
        mib(baseline),
        mib(peak),
        checks.len()
    );
    assert!(!checks.is_empty(), "no other client was tried");
    let failed: Vec<_> = checks
        .iter()
        .filter(|(took, status)| *took > Duration::from_secs(1) || status != &Ok(200))
        .collect();
    assert!(
        failed.is_empty(),
        "other clients not served at once: {failed:?} of {}",
        checks.len()
    );
}
