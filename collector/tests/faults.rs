//! Hostile and unlucky conditions: idle and slow clients, too many
//! connections, hostile bodies, and the process killed under load.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(c: &Collector) -> TcpStream {
    TcpStream::connect(c.addr).expect("connect to collector")
}

/// Sends a request head declaring `length` body bytes, and `sent` of them.
fn stall(c: &Collector, length: usize, sent: usize) -> TcpStream {
    stall_at(c, "/api/v1/stats", "", length, sent)
}

/// `stall` to any path, with extra header lines (each ending in \r\n).
fn stall_at(c: &Collector, path: &str, extra: &str, length: usize, sent: usize) -> TcpStream {
    let mut s = connect(c);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}Content-Length: {length}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("send head");
    let part = b"{\"payload\": {\"clusterID\": \"stalled\", \"pad\": \"";
    s.write_all(&part[..sent.min(part.len())])
        .expect("send part of the body");
    s
}

#[test]
fn idle_and_stalled_clients_do_not_keep_a_normal_one_waiting() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let idle: Vec<TcpStream> = (0..400).map(|_| connect(&c)).collect();
    // Small bodies stall in their connection's own thread; large ones in a
    // worker, of which only half may be reading a large body at once.
    let mut stalled: Vec<TcpStream> = (0..40).map(|_| stall(&c, 5_000, 30)).collect();
    stalled.extend((0..10).map(|_| stall(&c, 500_000, 30)));
    // A small body the client sends only after 100 Continue is not read
    // ahead, so it counts as large; and an answer that never reads a large
    // body (404 here) must not drain it on a worker either.
    let expect = "Expect: 100-continue\r\n";
    stalled.extend((0..30).map(|_| stall_at(&c, "/api/v1/stats", expect, 5_000, 1)));
    stalled.extend((0..30).map(|_| stall_at(&c, "/nope", "", 500_000, 30)));
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..5 {
        let started = Instant::now();
        let reply = c.post("/api/v1/stats", SEED);
        let took = started.elapsed();
        assert_eq!(reply.status, 204, "{reply:?}");
        assert!(
            took < Duration::from_secs(1),
            "normal client {i} waited {took:?}"
        );
    }
    drop((idle, stalled));
    assert_eq!(db.count(), 5);
}

#[test]
fn idle_and_slow_connections_are_closed_after_the_read_timeout() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--read-timeout", "1"]);
    c.wait_ready(Duration::from_secs(20));
    let closed_within = |mut s: TcpStream, limit: Duration| {
        s.set_read_timeout(Some(limit + Duration::from_secs(5)))
            .expect("timeout");
        let started = Instant::now();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let took = started.elapsed();
        assert!(took < limit, "connection still open after {took:?}");
        String::from_utf8_lossy(&out).to_string()
    };
    // Idle: closed after one read timeout, with 408.
    let answer = closed_within(connect(&c), Duration::from_secs(3));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    // A body trickling in a byte at a time: each read is quick, but the
    // whole request may take only 3 read timeouts.
    let mut s = stall(&c, 5_000, 10);
    let trickle = std::thread::spawn({
        let mut s = s.try_clone().expect("clone");
        move || {
            for _ in 0..60 {
                if s.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "slow body held {:?}",
        started.elapsed()
    );
    let _ = trickle.join();
    // Nothing of it was stored, and the collector still serves.
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204);
    assert_eq!(db.count(), 1);
}

#[test]
fn connections_over_the_cap_get_503_at_once() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--max-connections", "5"]);
    c.wait_ready(Duration::from_secs(20));
    let held: Vec<TcpStream> = (0..5).map(|_| connect(&c)).collect();
    // The cap counts connections once the accept thread has taken them.
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = loop {
        let reply = get(c.addr, "/healthz");
        if reply.status != 200 || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("Retry-After").is_some());
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(c.addr, "/healthz").status != 200 {
        assert!(Instant::now() < deadline, "slots never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hostile_bodies_get_4xx_never_5xx() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--max-body-bytes", "300000"]);
    c.wait_ready(Duration::from_secs(20));
    let seed = SEED.as_bytes();
    let mut bodies: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("nested arrays".into(), "[".repeat(100_000).into_bytes()),
        (
            "nested in payload".into(),
            format!(
                r#"{{"payload": {{"clusterID": "c", "x": {}}}}}"#,
                "[".repeat(100_000)
            )
            .into_bytes(),
        ),
        (
            "huge number".into(),
            br#"{"payload": {"clusterID": "c", "n": 1e999999}}"#.to_vec(),
        ),
        (
            "long number".into(),
            format!(
                r#"{{"payload": {{"clusterID": "c", "n": {}}}}}"#,
                "9".repeat(100_000)
            )
            .into_bytes(),
        ),
        (
            "invalid UTF-8".into(),
            b"{\"payload\": {\"clusterID\": \"\xc3\x28\"}}".to_vec(),
        ),
        (
            "raw NUL".into(),
            b"{\"payload\": {\"clusterID\": \"a\x00b\"}}".to_vec(),
        ),
        (
            "escaped NUL".into(),
            br#"{"payload": {"clusterID": "c", "k": "a\u0000b"}}"#.to_vec(),
        ),
        (
            "escaped NUL key".into(),
            br#"{"payload": {"clusterID": "c", "a\u0000b": 1}}"#.to_vec(),
        ),
        (
            "lone surrogate".into(),
            br#"{"payload": {"clusterID": "c", "k": "\ud800"}}"#.to_vec(),
        ),
        ("trailing garbage".into(), [seed, b"}"].concat()),
    ];
    for cut in [1, 10, 100, seed.len() / 2, seed.len() - 1] {
        bodies.push((format!("truncated at {cut}"), seed[..cut].to_vec()));
    }
    // Every single-byte mutation at a few positions, with bytes that matter.
    for pos in (0..seed.len()).step_by(23) {
        for byte in [b'"', b'{', b'}', b'[', b',', b':', b'\\', 0x00, 0xff, b'0'] {
            let mut m = seed.to_vec();
            m[pos] = byte;
            bodies.push((format!("byte {pos} set to {byte:#04x}"), m));
        }
    }
    let mut stored = 0;
    for (name, body) in &bodies {
        let reply = request(
            c.addr,
            "POST",
            "/api/v1/stats",
            &[("Content-Type", "application/json")],
            body,
        );
        match reply.status {
            204 => stored += 1,
            400..=499 => drop(reply.message()),
            _ => panic!(
                "{name}: status {} ({})\n{}",
                reply.status,
                reply.body,
                c.log()
            ),
        }
    }
    assert_eq!(db.count(), stored, "every 204 is a row, and only those");
    assert_eq!(
        c.post("/api/v1/stats", SEED).status,
        204,
        "still serving:\n{}",
        c.log()
    );
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_report() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let acked = acked_under_load(&c, "kill", usize::MAX, || {
        std::thread::sleep(Duration::from_millis(500));
        c.signal("KILL");
    });
    assert!(
        acked.len() > 10,
        "too little was acknowledged before the kill: {}",
        acked.len()
    );
    let mut client = db.client();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| {
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM report_log WHERE report_id = $1",
                    &[id],
                )
                .expect("query")
                .get(0);
            n != 1
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged reports are missing: {missing:?}",
        missing.len(),
        acked.len()
    );
}

#[test]
fn a_source_over_its_rate_limit_gets_429_with_retry_after() {
    let db = TestDb::new();
    let c = Collector::start(
        &db.url,
        &["--rate-limit", "3/min", "--trusted-proxy", "127.0.0.1"],
    );
    c.wait_ready(Duration::from_secs(20));
    let from = |ip: &str| {
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", ip),
        ];
        request(c.addr, "POST", "/api/v1/stats", &headers, SEED.as_bytes())
    };
    for _ in 0..3 {
        assert_eq!(from("203.0.113.1").status, 204);
    }
    let refused = from("203.0.113.1");
    assert_eq!(refused.status, 429, "{refused:?}");
    let wait: u64 = refused
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    assert!(refused.message().contains("too many reports"));
    assert_eq!(
        from("203.0.113.2").status,
        204,
        "another source has its own budget"
    );
    assert_eq!(
        get(c.addr, "/healthz").status,
        200,
        "only reports are limited"
    );
    assert_eq!(db.count(), 4);
}

/// A report of `nodes` nodes, about 420 bytes each, with its own reportID.
fn large_report(id: &str, nodes: usize) -> String {
    let node = serde_json::json!({
        "id": "9f2c0a51d0e64b6fa1c92e7d5b4f8a13c67e5357ff274ec2828ac9629b69af91",
        "cloudProvider": "aws",
        "status": {
            "capacity": {"cpu": "4", "memory": "16393072Ki", "pods": "110",
                         "ephemeral-storage": "101430960Ki", "hugepages-2Mi": "0"},
            "nodeInfo": {"osImage": "Ubuntu 22.04.4 LTS", "kernelVersion": "5.15.0-1057-aws",
                         "kubeletVersion": "v1.29.4", "containerRuntimeVersion": "containerd://1.7.13",
                         "operatingSystem": "linux", "architecture": "amd64"}}
    });
    let nodes = vec![node; nodes];
    serde_json::json!({
        "metadata": {"reportID": id, "timestamp": "1437174715"},
        "payload": {"clusterID": "large-cluster", "masterVersion": "v1.29.4", "nodes": nodes}
    })
    .to_string()
}

/// One trickling client: a chunked POST whose body comes one byte per
/// `every`, from `source`, reconnecting at once whenever it is cut off,
/// until `until`.
fn trickle(addr: std::net::SocketAddr, source: std::net::IpAddr, every: Duration, until: Instant) {
    use socket2::{Domain, Socket, Type};
    while Instant::now() < until {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let bound = socket.bind(&std::net::SocketAddr::new(source, 0).into());
        if bound.is_err() || socket.connect(&addr.into()).is_err() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let mut s: TcpStream = socket.into();
        let head = "POST /api/v1/stats HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        if s.write_all(head.as_bytes()).is_err() {
            continue;
        }
        // Each chunk is one byte of the body: "1\r\n{\r\n".
        while Instant::now() < until && s.write_all(b"1\r\n \r\n").is_ok() {
            std::thread::sleep(every.min(until.saturating_duration_since(Instant::now())));
        }
    }
}

#[test]
fn trickling_clients_do_not_deny_a_large_report() {
    let db = TestDb::new();
    // The defaults: a 10 s read timeout, so a request may take 30 s.
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let every = Duration::from_secs(9);
    let until = Instant::now() + Duration::from_secs(60);
    let localhost: std::net::IpAddr = [127, 0, 0, 1].into();
    // 40 from one address and 40 from 40 others, at once.
    let sources = (0..40).map(|_| localhost);
    let sources = sources.chain((0..40).map(|i| std::net::IpAddr::from([127, 0, 1, 1 + i])));
    let addr = c.addr;
    let tricklers: Vec<_> = sources
        .map(|source| std::thread::spawn(move || trickle(addr, source, every, until)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut sent: i64 = 0;
    while Instant::now() + Duration::from_secs(5) < until {
        // About 134 KiB: 325 nodes.
        let report = large_report(&format!("large-{sent}"), 325);
        assert!(
            (130 << 10..140 << 10).contains(&report.len()),
            "{}",
            report.len()
        );
        let started = Instant::now();
        let reply = c.post("/api/v1/stats", &report);
        let took = started.elapsed();
        // No retry needed: the volunteer's budget (5 attempts, about a
        // minute) is never touched.
        assert_eq!(reply.status, 204, "large report {sent}: {reply:?}");
        assert!(
            took < Duration::from_secs(2),
            "large report {sent} took {took:?}"
        );
        sent += 1;
        std::thread::sleep(Duration::from_secs(3));
    }
    for t in tricklers {
        t.join().expect("trickler");
    }
    assert!(sent >= 10, "only {sent} large reports in the minute");
    assert_eq!(
        db.count(),
        sent,
        "every large report stored, no trickled one"
    );
}
