//! The collector binary against a real PostgreSQL over real sockets: what it
//! stores, what it refuses, and how it behaves when the database or the
//! process goes away.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("seconds fit i64")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("jsonb column as text")
}

fn rows(db: &TestDb) -> Vec<(String, Option<String>, String, Value, Value)> {
    db.client()
        .query(
            "SELECT cluster_id, report_id, received_from, metadata::text, payload::text \
             FROM report_log ORDER BY id",
            &[],
        )
        .expect("query reports")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), json(r.get(3)), json(r.get(4))))
        .collect()
}

#[test]
fn seed_example_is_stored_verbatim_with_received_at_and_from() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let before = now();
    let reply = c.post("/api/v1/stats", SEED);
    assert_eq!(reply.status, 204, "{reply:?}");
    let rows = rows(&db);
    assert_eq!(rows.len(), 1);
    let (cluster, report_id, from, metadata, payload) = &rows[0];
    let seed: Value = serde_json::from_str(SEED).expect("seed");
    assert_eq!(payload, &seed["payload"]);
    assert_eq!(cluster, "612e0f99-1912-4647-831d-ba4c3d918b66");
    assert_eq!(report_id, &None);
    assert_eq!(from, "127.0.0.1");
    assert_eq!(metadata["timestamp"], "1437174715");
    assert_eq!(metadata["received_from"], "127.0.0.1");
    let at: i64 = metadata["received_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("received_at");
    assert!(
        (before..=now()).contains(&at),
        "received_at {at} not in [{before}, now]"
    );
    let row_at: f64 = db
        .client()
        .query_one(
            "SELECT extract(epoch FROM received_at)::float8 FROM report_log",
            &[],
        )
        .expect("received_at column")
        .get(0);
    assert_eq!(row_at as i64, at);
}

#[test]
fn spoofed_metadata_and_forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let body = json!({"metadata": {"received_at": "1", "received_from": "10.9.9.9"},
                      "payload": {"clusterID": "spoof"}});
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Real-IP", "203.0.113.8"),
    ];
    let reply = request(
        c.addr,
        "POST",
        "/api/v1/stats",
        &headers,
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 204, "{reply:?}");
    let (_, _, from, metadata, _) = rows(&db).remove(0);
    assert_eq!(from, "127.0.0.1");
    assert_eq!(metadata["received_from"], "127.0.0.1");
    assert_ne!(metadata["received_at"], "1");
}

#[test]
fn a_trusted_proxy_names_the_client() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--trusted-proxy", "127.0.0.0/8"]);
    c.wait_ready(Duration::from_secs(20));
    let body = json!({"payload": {"clusterID": "proxied"}}).to_string();
    let via = |headers: &[(&str, &str)]| {
        let mut h = vec![("Content-Type", "application/json")];
        h.extend_from_slice(headers);
        let reply = request(c.addr, "POST", "/api/v1/stats", &h, body.as_bytes());
        assert_eq!(reply.status, 204, "{reply:?}");
    };
    via(&[("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 127.0.0.5")]);
    via(&[("X-Real-IP", "2001:db8::5")]);
    let from: Vec<String> = rows(&db).into_iter().map(|r| r.2).collect();
    assert_eq!(from, ["203.0.113.7", "2001:db8::5"]);
}

#[test]
fn every_error_status_is_json_and_stores_nothing() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--max-body-bytes", "1000"]);
    c.wait_ready(Duration::from_secs(20));
    let json_ct = [("Content-Type", "application/json")];
    let big = format!(
        r#"{{"payload": {{"clusterID": "c", "pad": "{}"}}}}"#,
        "x".repeat(2000)
    );
    // (method, path, headers, body, status, words of the message)
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/v1/stats",
            json_ct.to_vec(),
            b"{not json".to_vec(),
            400,
            "body: invalid JSON",
        ),
        (
            "POST",
            "/api/v1/stats",
            json_ct.to_vec(),
            br#"{"payload": {}}"#.to_vec(),
            400,
            "payload.clusterID",
        ),
        (
            "POST",
            "/api/v1/stats",
            json_ct.to_vec(),
            br#"{"metadata": {"a": 1}, "payload": {"clusterID": "c"}}"#.to_vec(),
            400,
            "metadata.a",
        ),
        (
            "POST",
            "/api/v1/stats",
            json_ct.to_vec(),
            big.into_bytes(),
            413,
            "body: larger than",
        ),
        (
            "POST",
            "/api/v1/stats",
            vec![("Content-Type", "text/plain")],
            SEED.as_bytes().to_vec(),
            415,
            "Content-Type",
        ),
        (
            "POST",
            "/api/v1/stats",
            vec![],
            SEED.as_bytes().to_vec(),
            415,
            "Content-Type",
        ),
        (
            "PUT",
            "/api/v1/stats",
            json_ct.to_vec(),
            SEED.as_bytes().to_vec(),
            405,
            "method not allowed",
        ),
        ("GET", "/api/v1", vec![], vec![], 405, "method not allowed"),
        (
            "POST",
            "/api/v2/stats",
            json_ct.to_vec(),
            SEED.as_bytes().to_vec(),
            404,
            "no such endpoint",
        ),
    ];
    for (method, path, headers, body, status, message) in cases {
        let reply = request(c.addr, method, path, &headers, &body);
        assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
        assert!(
            reply.message().contains(message),
            "{method} {path}: want {message:?} in {:?}",
            reply.body
        );
        if status == 405 {
            assert!(
                reply.header("Allow").is_some(),
                "405 without Allow: {reply:?}"
            );
        }
    }
    assert_eq!(db.count(), 0);
    assert_eq!(
        c.post("/api/v1/stats", SEED).status,
        204,
        "still serving: {}",
        c.log()
    );
}

#[test]
fn a_huge_declared_body_is_refused_without_reading_it() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    // A terabyte is declared; a few bytes follow. The answer must come at
    // once, and the process must survive (upstream tiny_http aborted here).
    let raw = b"POST /api/v1/stats HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{\"payload\":";
    let reply = raw_request(c.addr, raw);
    assert_eq!(reply.status, 413, "{reply:?}");
    // A chunked body over the limit is cut off at the limit too.
    let small = Collector::start(&db.url, &["--max-body-bytes", "100"]);
    small.wait_ready(Duration::from_secs(20));
    let mut chunked = b"POST /api/v1/stats HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        chunked.extend_from_slice(b"20\r\n                                \r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw_request(small.addr, &chunked).status, 413);
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204, "{}", c.log());
    assert_eq!(db.count(), 1);
}

#[test]
fn a_retried_report_id_is_acknowledged_and_stored_once() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let body =
        json!({"metadata": {"reportID": "3f1c-retry"}, "payload": {"clusterID": "c1"}}).to_string();
    for _ in 0..3 {
        assert_eq!(c.post("/api/v1/stats", &body).status, 204);
    }
    // Concurrent retries of another report land in one batch.
    let body2 =
        json!({"metadata": {"reportID": "3f1c-burst"}, "payload": {"clusterID": "c1"}}).to_string();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(c.post("/api/v1/stats", &body2).status, 204));
        }
    });
    let ids: Vec<Option<String>> = rows(&db).into_iter().map(|r| r.1).collect();
    assert_eq!(
        ids,
        [
            Some("3f1c-retry".to_string()),
            Some("3f1c-burst".to_string())
        ]
    );
    let metrics = get(c.addr, "/metrics").body;
    assert!(
        metrics.contains("spartakus_reports_stored_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("spartakus_reports_duplicate_total 9"),
        "{metrics}"
    );
}

#[test]
fn the_go_v1_flat_record_is_accepted_on_api_v1() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let record = json!({
        "version": "v1.0.0", "timestamp": "1437174715", "clusterID": "legacy-cluster",
        "masterVersion": "v1.2.3",
        "nodes": [{"id": "n1", "osImage": "Ubuntu 16.04", "kernelVersion": "4.4.0",
                   "containerRuntimeVersion": "docker://1.12", "kubeletVersion": "v1.2.3",
                   "capacity": [{"resource": "cpu", "value": "2"}]}],
        "extensions": [{"name": "x", "value": "y"}]
    });
    let reply = c.post("/api/v1", &record.to_string());
    assert_eq!(reply.status, 204, "{reply:?}");
    let (cluster, _, from, metadata, payload) = rows(&db).remove(0);
    assert_eq!(cluster, "legacy-cluster");
    assert_eq!(payload, record);
    assert_eq!(from, "127.0.0.1");
    assert_eq!(metadata["timestamp"], "1437174715");
    assert_eq!(metadata["received_from"], "127.0.0.1");
    assert!(metadata["received_at"].is_string());
}

#[test]
fn many_concurrent_reports_all_become_rows() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    std::thread::scope(|s| {
        for t in 0..16 {
            let c = &c;
            s.spawn(move || {
                for i in 0..25 {
                    let body = json!({"metadata": {"reportID": format!("r-{t}-{i}")}, "payload": {"clusterID": format!("c{t}")}});
                    let reply = c.post("/api/v1/stats", &body.to_string());
                    assert_eq!(reply.status, 204, "{reply:?}");
                }
            });
        }
    });
    assert_eq!(db.count(), 400);
}

#[test]
fn readiness_follows_the_database_and_the_collector_reconnects_by_itself() {
    let pg = Cluster::new();
    // The database is not up yet when the collector starts.
    let c = Collector::start(&pg.url(), &[]);
    assert_eq!(get(c.addr, "/healthz").status, 200);
    assert_eq!(get(c.addr, "/readyz").status, 503);
    let early = c.post("/api/v1/stats", SEED);
    assert_eq!(early.status, 503, "{early:?}");
    assert!(early.header("Retry-After").is_some());
    pg.start();
    c.wait_ready(Duration::from_secs(20));
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204);

    pg.stop();
    let started = Instant::now();
    let down = c.post("/api/v1/stats", SEED);
    assert_eq!(down.status, 503, "{down:?}");
    assert!(down.header("Retry-After").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "503 took {:?}",
        started.elapsed()
    );
    assert_eq!(get(c.addr, "/readyz").status, 503);
    assert_eq!(get(c.addr, "/health").status, 200);

    pg.start();
    c.wait_ready(Duration::from_secs(20));
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204, "{}", c.log());
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).expect("connect");
    let n: i64 = client
        .query_one("SELECT count(*) FROM report_log", &[])
        .expect("count")
        .get(0);
    assert_eq!(n, 2);
    assert!(
        c.log().contains("PostgreSQL unavailable"),
        "the outage is logged"
    );
}

#[test]
fn replicas_starting_at_once_on_an_empty_database_all_come_up() {
    let db = TestDb::new();
    let replicas: Vec<Collector> = (0..4).map(|_| Collector::start(&db.url, &[])).collect();
    for r in &replicas {
        r.wait_ready(Duration::from_secs(30));
        assert_eq!(r.post("/api/v1/stats", SEED).status, 204, "{}", r.log());
    }
    assert_eq!(db.count(), 4);
}

#[test]
fn sigterm_drains_in_flight_reports_and_exits_zero() {
    let db = TestDb::new();
    let mut c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let acked = acked_under_load(&c, "term", 200, || {
        std::thread::sleep(Duration::from_millis(300));
        c.signal("TERM");
    });
    let status = c
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within 10 s:\n{}", c.log()));
    assert!(status.success(), "exit {status:?}:\n{}", c.log());
    assert!(!acked.is_empty(), "nothing was acknowledged before SIGTERM");
    let stored: std::collections::HashSet<String> =
        rows(&db).into_iter().filter_map(|r| r.1).collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged reports are missing: {lost:?}",
        lost.len()
    );
}

#[test]
fn health_version_and_metrics_answer() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let version: Value = serde_json::from_str(&get(c.addr, "/version").body).expect("json");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    c.post("/api/v1/stats", "{}");
    let m = get(c.addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/plain")));
    for needle in [
        "spartakus_http_responses_total{code=\"400\"} 1",
        "spartakus_http_request_duration_seconds_bucket{le=\"+Inf\"}",
        "spartakus_db_errors_total 0",
        "spartakus_reports_stored_total 0",
    ] {
        assert!(m.body.contains(needle), "missing {needle:?} in\n{}", m.body);
    }
}

#[test]
fn bad_flags_exit_2_with_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "--db-url: required"),
        (
            &["--db-url", "postgres://x@y/z", "--body-memory", "lots"],
            "--body-memory:",
        ),
        (
            &["--db-url", "postgres://x@y/z", "--bogus"],
            "unexpected \"--bogus\"",
        ),
    ];
    for (args, want) in cases {
        expect_usage_error(args, want);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spartakus-collector"))
        .arg("--version")
        .output()
        .expect("run collector");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("spartakus-collector {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn received_from_can_be_truncated_or_left_out() {
    for (policy, column, in_metadata) in [
        ("truncated", "203.0.113.0", Some("203.0.113.0")),
        ("none", "", None),
    ] {
        let db = TestDb::new();
        let c = Collector::start(
            &db.url,
            &["--received-from", policy, "--trusted-proxy", "127.0.0.1"],
        );
        c.wait_ready(Duration::from_secs(20));
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", "203.0.113.77"),
        ];
        let reply = request(c.addr, "POST", "/api/v1/stats", &headers, SEED.as_bytes());
        assert_eq!(reply.status, 204, "{reply:?}");
        let (_, _, from, metadata, _) = rows(&db).remove(0);
        assert_eq!(from, column, "--received-from {policy}");
        assert_eq!(
            metadata["received_from"].as_str(),
            in_metadata,
            "--received-from {policy}"
        );
        assert!(metadata["received_at"].is_string());
    }
}

#[test]
fn sigterm_waits_for_commits_in_flight_before_exiting() {
    let db = TestDb::new();
    let mut c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    // Hold every INSERT at the database, so that reports are in flight
    // (read, not yet committed) when the signal comes.
    let mut locker = db.client();
    let mut tx = locker.transaction().expect("begin");
    tx.batch_execute("LOCK TABLE report_log IN EXCLUSIVE MODE")
        .expect("lock reports");
    let answers: Vec<_> = (0..6)
        .map(|i| {
            let addr = c.addr;
            std::thread::spawn(move || {
                let body = json!({"metadata": {"reportID": format!("held-{i}")}, "payload": {"clusterID": "c"}});
                request(addr, "POST", "/api/v1/stats", &[("Content-Type", "application/json")], body.to_string().as_bytes())
            })
        })
        .collect();
    // The writer waits on the lock with the first report; give the others
    // time to reach their workers too.
    let blocked = "SELECT count(*) FROM pg_locks WHERE NOT granted";
    let deadline = Instant::now() + Duration::from_secs(10);
    while db
        .client()
        .query_one(blocked, &[])
        .expect("pg_locks")
        .get::<_, i64>(0)
        == 0
    {
        assert!(Instant::now() < deadline, "no INSERT waits on the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    c.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(c.addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let running = matches!(c.child.try_wait(), Ok(None));
    assert!(running, "exited with commits in flight:\n{}", c.log());
    tx.commit().expect("release the lock");
    for answer in answers {
        let reply = answer.join().expect("client thread");
        assert_eq!(
            reply.status, 204,
            "an in-flight report was not finished: {reply:?}"
        );
    }
    let status = c
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit:\n{}", c.log()));
    assert!(status.success(), "exit {status:?}");
    assert_eq!(db.count(), 6);
}

#[test]
fn one_row_the_database_refuses_does_not_fail_its_batch() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    // A row PostgreSQL refuses as bad data (class 22), as a stand-in for
    // anything validation might miss.
    db.client()
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.cluster_id = 'poison' THEN
                 RAISE EXCEPTION 'poisoned row' USING ERRCODE = '22023';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_poison BEFORE INSERT ON report_log
               FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .expect("create trigger");
    // Hold INSERTs until every report is queued, so they meet in batches.
    let mut locker = db.client();
    let mut tx = locker.transaction().expect("begin");
    tx.batch_execute("LOCK TABLE report_log IN EXCLUSIVE MODE")
        .expect("lock reports");
    let replies: Vec<(String, Reply)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..24)
            .map(|i| {
                let cluster = if i % 8 == 3 {
                    "poison".to_string()
                } else {
                    format!("c{i}")
                };
                let c = &c;
                s.spawn(move || {
                    let body = json!({"payload": {"clusterID": cluster}}).to_string();
                    (cluster, c.post("/api/v1/stats", &body))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        tx.commit().expect("release the lock");
        threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect()
    });
    for (cluster, reply) in &replies {
        let want = if cluster == "poison" { 400 } else { 204 };
        assert_eq!(reply.status, want, "{cluster}: {reply:?}");
    }
    let stored: Vec<String> = rows(&db).into_iter().map(|r| r.0).collect();
    assert_eq!(
        stored.len(),
        21,
        "every good report, and none of the poisoned: {stored:?}"
    );
    assert!(!stored.contains(&"poison".to_string()));
    assert!(
        c.log().contains("storing one by one"),
        "the batch path was taken:\n{}",
        c.log()
    );
}

#[test]
fn the_log_holds_no_report_even_at_debug_and_no_forged_line() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--log-level", "debug"]);
    c.wait_ready(Duration::from_secs(20));
    let marker = "cluster-marker-5d1e";
    let body = json!({"payload": {"clusterID": marker}}).to_string();
    assert_eq!(c.post("/api/v1/stats", &body).status, 204);
    // A bare LF in the path must not start a line of its own in the log;
    // the server refuses such a head outright (tabs, since a space would
    // end the path).
    let forged = "GET /x\nFORGED\tINFO\tPOST\t/api/v1/stats\t204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_request(c.addr, forged.as_bytes());
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204);
    let log = c.log();
    assert!(!log.contains(marker), "a report reached the log:\n{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a client wrote a log line:\n{log}"
    );
    assert!(
        log.contains("400 refused: head: bare LF"),
        "refused, and logged without its text:\n{log}"
    );
    assert_eq!(db.count(), 2);
}

/// The metrics listener's address, from the collector's log.
fn metrics_addr(c: &Collector) -> std::net::SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = c.log();
        let found = log
            .lines()
            .find_map(|l| l.split("metrics and version on http://").nth(1));
        if let Some(addr) = found {
            return addr.trim().parse().expect("metrics address");
        }
        assert!(Instant::now() < deadline, "no metrics address in\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_listen_keeps_the_build_and_the_counts_off_the_public_port() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--metrics-listen", "127.0.0.1:0"]);
    c.wait_ready(Duration::from_secs(20));
    let metrics = metrics_addr(&c);
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204);
    for path in ["/metrics", "/version"] {
        assert_eq!(get(c.addr, path).status, 404, "{path} on the public port");
        assert_eq!(get(metrics, path).status, 200, "{path} on the metrics port");
    }
    assert_eq!(get(c.addr, "/healthz").status, 200);
    assert_eq!(get(metrics, "/healthz").status, 200);
    // No reports there: it takes no body at all.
    let post = request(metrics, "POST", "/api/v1/stats", &[], b"{}");
    assert_eq!(post.status, 413, "{post:?}");
    let m = get(metrics, "/metrics").body;
    for needle in [
        "spartakus_reports_stored_total 1",
        "spartakus_build_info{version=\"",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
        "process_start_time_seconds ",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in\n{m}");
    }
    promtool_check(&m);
}

#[test]
fn json_logs_are_one_object_per_line_with_the_same_redaction() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &["--log-format", "json", "--log-level", "debug"]);
    c.wait_ready(Duration::from_secs(20));
    let marker = "cluster-marker-77f0";
    let body = json!({"payload": {"clusterID": marker}}).to_string();
    assert_eq!(c.post("/api/v1/stats?token=secret", &body).status, 204);
    raw_request(c.addr, b"GET /x\nFORGED HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(get(c.addr, "/healthz").status, 200);
    let log = c.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    for line in &lines {
        for key in ["time", "level", "target", "message"] {
            assert!(line[key].is_string(), "{key} missing in {line}");
        }
    }
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("POST /api/v1/stats 204 ")),
        "{log}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("400 refused: head: bare LF")),
        "{log}"
    );
    assert!(
        !log.contains(marker) && !log.contains("secret"),
        "report or query logged:\n{log}"
    );
}
