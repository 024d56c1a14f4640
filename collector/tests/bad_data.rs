//! Bad data is the client's fault: the collector binary against a real
//! PostgreSQL. Every value bound for an indexed or typed column is capped or
//! checked before the database sees it (400 naming the field); a row that
//! PostgreSQL still refuses on its own as bad data gets 400 while its batch
//! neighbours are stored; any other failure is 503; and no value of a
//! refused report reaches the log.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// Put into every refused value; the log must never hold it.
const CANARY: &str = "canary-7f3e9b";

fn started(db: &TestDb, extra: &[&str]) -> Collector {
    let mut args = vec!["--log-level", "trace"];
    args.extend_from_slice(extra);
    let c = Collector::start(&db.url, &args);
    c.wait_ready(Duration::from_secs(20));
    c
}

/// `n` bytes starting with the canary.
fn canary(n: usize) -> String {
    format!("{CANARY}{}", "x".repeat(n - CANARY.len()))
}

fn assert_no_canary(c: &Collector) {
    let log = c.log();
    assert!(
        !log.contains(CANARY),
        "a report value reached the log:\n{log}"
    );
}

fn stored_clusters(db: &TestDb) -> Vec<String> {
    db.client()
        .query("SELECT cluster_id FROM report_log ORDER BY id", &[])
        .expect("query reports")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A body for one cap: the capped value (or the whole payload or metadata)
/// is exactly `n` bytes.
type Body = fn(usize) -> String;

/// `{"pad": "..."}`-style padding to make `outer` exactly `n` bytes.
fn padded(n: usize, outer: &str) -> String {
    outer.replace("PAD", &canary(n + 3 - outer.len()))
}

#[test]
fn each_cap_accepts_its_limit_and_refuses_one_byte_more_naming_the_field() {
    let db = TestDb::new();
    let c = started(
        &db,
        &["--max-body-bytes", "40000000", "--body-memory", "80000000"],
    );
    let cases: [(&str, Body, usize, &str); 7] = [
        (
            "/api/v1/stats",
            |n| json!({"payload": {"clusterID": canary(n)}}).to_string(),
            256,
            "payload.clusterID: at most 256 bytes",
        ),
        (
            "/api/v1",
            |n| json!({"clusterID": canary(n)}).to_string(),
            256,
            "clusterID: at most 256 bytes",
        ),
        (
            "/api/v1/stats",
            |n| {
                json!({"metadata": {"reportID": canary(n)}, "payload": {"clusterID": "c"}})
                    .to_string()
            },
            256,
            "metadata.reportID: must be 1 to 256 bytes",
        ),
        (
            "/api/v1",
            |n| json!({"clusterID": "c", "timestamp": canary(n)}).to_string(),
            64,
            "timestamp: at most 64 bytes",
        ),
        (
            "/api/v1/stats",
            |n| {
                let metadata = padded(n, r#"{"pad": "PAD"}"#);
                format!(r#"{{"metadata": {metadata}, "payload": {{"clusterID": "c"}}}}"#)
            },
            65536,
            "metadata: at most 65536 bytes",
        ),
        (
            "/api/v1/stats",
            |n| {
                let payload = padded(n, r#"{"clusterID": "c", "pad": "PAD"}"#);
                format!(r#"{{"payload": {payload}}}"#)
            },
            32 << 20,
            "payload: at most 33554432 bytes",
        ),
        (
            "/api/v1",
            |n| padded(n, r#"{"clusterID": "c", "pad": "PAD"}"#),
            32 << 20,
            "body: at most 33554432 bytes",
        ),
    ];
    for (path, body, cap, want) in cases {
        let reply = c.post(path, &body(cap));
        assert_eq!(reply.status, 204, "{want}, at the cap: {reply:?}");
        let reply = c.post(path, &body(cap + 1));
        assert_eq!(reply.status, 400, "{want}, one byte over: {reply:?}");
        assert_eq!(reply.message(), want);
    }
    assert_eq!(db.count(), 7, "each value at its cap is stored");
    assert_no_canary(&c);
}

#[test]
fn numbers_are_refused_exactly_when_postgresql_would_refuse_them() {
    let db = TestDb::new();
    let c = started(&db, &[]);
    let mut pg = db.client();
    let fraction = |digits: usize| format!("0.{}7", "0".repeat(digits - 1));
    let numbers = [
        "1E-16383".to_string(),
        "1.0e-16383".into(),
        "1e-16384".into(),
        "-0.5e-16382".into(),
        "0e1073741822".into(),
        "0e1073741823".into(),
        "0e-1073741823".into(),
        "1e-99999999999999999999".into(),
        "1.5e308".into(),
        fraction(16383),
        fraction(16384),
    ];
    let mut refused = 0;
    for number in &numbers {
        let payload = format!(r#"{{"clusterID": "n", "x": [{number}]}}"#);
        let fits = pg
            .query_one("SELECT $1::text::jsonb IS NOT NULL", &[&payload])
            .is_ok();
        let reply = c.post("/api/v1/stats", &format!(r#"{{"payload": {payload}}}"#));
        let short = &number[..number.len().min(24)];
        match fits {
            true => assert_eq!(reply.status, 204, "{short}: {reply:?}"),
            false => {
                refused += 1;
                assert_eq!(reply.status, 400, "{short}: {reply:?}");
                let message = reply.message();
                assert!(
                    message.starts_with("payload: a number PostgreSQL cannot store"),
                    "{short}: {message}"
                );
            }
        }
    }
    assert_eq!(refused, 6, "PostgreSQL refuses what the cases expect");
    assert!(
        !c.log().contains("storing one by one"),
        "the database saw a bad number:\n{}",
        c.log()
    );
}

#[test]
fn a_1_mib_cluster_id_gets_400_and_a_good_report_beside_it_is_stored() {
    let db = TestDb::new();
    let c = started(&db, &[]);
    let huge = json!({"payload": {"clusterID": CANARY.repeat((1 << 20) / CANARY.len() + 1)}});
    let (bad, good) = std::thread::scope(|s| {
        let bad = s.spawn(|| c.post("/api/v1/stats", &huge.to_string()));
        let good: Vec<_> = (0..4)
            .map(|i| {
                let c = &c;
                s.spawn(move || {
                    let body = json!({"payload": {"clusterID": format!("good-{i}")}});
                    c.post("/api/v1/stats", &body.to_string())
                })
            })
            .collect();
        let good: Vec<Reply> = good
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect();
        (bad.join().expect("client thread"), good)
    });
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.message(), "payload.clusterID: at most 256 bytes");
    for reply in &good {
        assert_eq!(reply.status, 204, "{reply:?}");
    }
    assert_eq!(get(c.addr, "/healthz").status, 200);
    assert_eq!(get(c.addr, "/readyz").status, 200);
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204, "still storing");
    assert_eq!(db.count(), 5);
    let log = c.log();
    assert!(
        !log.contains("storing one by one"),
        "the database saw it:\n{log}"
    );
    assert_no_canary(&c);
}

/// A fresh database in LATIN1, which cannot hold every character a report
/// may carry: a refusal only PostgreSQL can make.
fn latin1_db() -> TestDb {
    let db = TestDb::new();
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL, as for TestDb");
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect as admin");
    admin
        .batch_execute(&format!("DROP DATABASE {}", db.name))
        .expect("drop the UTF8 test database");
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
            db.name
        ))
        .expect("create a LATIN1 test database");
    db
}

/// Posts `bodies` at once while INSERTs are held, so that they meet in one
/// batch: a first report takes the writer into the held INSERT, and the rest
/// queue behind it. Returns their answers in order.
fn in_one_batch(c: &Collector, db: &TestDb, bodies: &[String]) -> Vec<Reply> {
    let mut locker = db.client();
    let mut tx = locker.transaction().expect("begin");
    tx.batch_execute("LOCK TABLE report_log IN EXCLUSIVE MODE")
        .expect("lock reports");
    std::thread::scope(|s| {
        let first = s.spawn(|| c.post("/api/v1/stats", r#"{"payload": {"clusterID": "first"}}"#));
        std::thread::sleep(Duration::from_millis(300));
        let rest: Vec<_> = bodies
            .iter()
            .map(|body| s.spawn(move || c.post("/api/v1/stats", body)))
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        tx.commit().expect("release the lock");
        assert_eq!(first.join().expect("client thread").status, 204);
        rest.into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect()
    })
}

/// The size of the largest batch the log says failed.
fn largest_failed_batch(log: &str) -> usize {
    log.split("a batch of ")
        .skip(1)
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_row_postgresql_refuses_as_bad_data_gets_400_and_its_batch_neighbours_are_stored() {
    let db = latin1_db();
    let c = started(&db, &[]);
    // Neither passes in LATIN1: a character in a text column, and a
    // \u escape in jsonb (whose error quotes the payload around it).
    let bad = [
        json!({"payload": {"clusterID": format!("{CANARY}-日本")}}).to_string(),
        format!(r#"{{"payload": {{"clusterID": "{CANARY}", "osImage": "{CANARY} \u65e5"}}}}"#),
    ];
    let mut bodies: Vec<String> = (0..8)
        .map(|i| json!({"payload": {"clusterID": format!("good-{i}-é")}}).to_string())
        .collect();
    bodies.insert(3, bad[0].clone());
    bodies.insert(6, bad[1].clone());
    let replies = in_one_batch(&c, &db, &bodies);
    for (body, reply) in bodies.iter().zip(&replies) {
        match bad.contains(body) {
            true => {
                assert_eq!(reply.status, 400, "{reply:?}");
                assert!(!reply.message().is_empty());
            }
            false => assert_eq!(reply.status, 204, "{reply:?}"),
        }
    }
    let stored = stored_clusters(&db);
    assert_eq!(stored.len(), 9, "the first and every good one: {stored:?}");
    assert!(stored.iter().all(|id| !id.contains(CANARY)), "{stored:?}");
    let log = c.log();
    assert!(
        largest_failed_batch(&log) > 1,
        "the bad rows failed a batch with neighbours:\n{log}"
    );
    assert!(log.contains("SQLSTATE 22P05"), "{log}");
    assert_eq!(log.matches("answering 400").count(), 2, "{log}");
    // PostgreSQL's message names the bytes of the character it refused.
    assert!(
        !log.contains("0xe6"),
        "a value's bytes reached the log:\n{log}"
    );
    assert_no_canary(&c);
}

#[test]
fn a_failed_batch_condemns_none_of_its_rows() {
    let db = TestDb::new();
    let c = started(&db, &[]);
    // Any statement of more than one row fails as bad data, with a message
    // that quotes the rows, as PostgreSQL's own messages may.
    db.client()
        .batch_execute(
            "CREATE FUNCTION refuse_batches() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF (SELECT count(*) FROM added) > 1 THEN
                 RAISE EXCEPTION 'batch of %', (SELECT string_agg(cluster_id, ',') FROM added)
                   USING ERRCODE = '22023';
               END IF;
               RETURN NULL;
             END $$;
             CREATE TRIGGER refuse_batches AFTER INSERT ON report_log
               REFERENCING NEW TABLE AS added
               FOR EACH STATEMENT EXECUTE FUNCTION refuse_batches();",
        )
        .expect("create trigger");
    let bodies: Vec<String> = (0..8)
        .map(|i| json!({"payload": {"clusterID": format!("{CANARY}-{i}")}}).to_string())
        .collect();
    let replies = in_one_batch(&c, &db, &bodies);
    for reply in &replies {
        assert_eq!(reply.status, 204, "{reply:?}");
    }
    assert_eq!(db.count(), 9);
    let log = c.log();
    assert!(largest_failed_batch(&log) > 1, "a batch failed:\n{log}");
    assert_no_canary(&c);
}

#[test]
fn a_row_failing_on_its_own_for_another_reason_gets_503() {
    let db = TestDb::new();
    let c = started(&db, &[]);
    // Disk full (class 53) for one row: the database's trouble, not the
    // report's, so the client must come back later.
    db.client()
        .batch_execute(
            "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.cluster_id LIKE 'full-%' THEN
                 RAISE EXCEPTION 'no room for %', NEW.cluster_id USING ERRCODE = '53100';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER disk_full BEFORE INSERT ON report_log
               FOR EACH ROW EXECUTE FUNCTION disk_full();",
        )
        .expect("create trigger");
    let full = json!({"payload": {"clusterID": format!("full-{CANARY}")}}).to_string();
    let mut bodies: Vec<String> = (0..6)
        .map(|i| json!({"payload": {"clusterID": format!("good-{i}")}}).to_string())
        .collect();
    bodies.insert(2, full.clone());
    let replies = in_one_batch(&c, &db, &bodies);
    for (body, reply) in bodies.iter().zip(&replies) {
        match *body == full {
            true => {
                assert_eq!(reply.status, 503, "{reply:?}");
                assert!(reply.header("Retry-After").is_some(), "{reply:?}");
            }
            false => assert_eq!(reply.status, 204, "{reply:?}"),
        }
    }
    assert_eq!(db.count(), 7);
    let log = c.log();
    assert!(log.contains("SQLSTATE 53100"), "{log}");
    assert!(log.contains("answering 503"), "{log}");
    assert_no_canary(&c);
}
