//! Upgrading a database of the first release (its schema.sql, kept as
//! tests/fixtures/legacy-schema.sql) to this one, against a real PostgreSQL
//! and the real binary: the new collector serves at once, `migrate` moves
//! the old table while reports keep arriving both ways and resumes after
//! an interruption, a replica starts behind a long read, and an old
//! collector starting against the new schema cannot point the views back.
//! Only here do tests INSERT into a table themselves: they play the old
//! collector, with its very statement.

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LEGACY_SCHEMA: &str = include_str!("fixtures/legacy-schema.sql");
/// The first release's store.rs INSERT, verbatim.
const LEGACY_INSERT: &str = "\
INSERT INTO reports (received_at, cluster_id, report_id, received_from, metadata, payload)
SELECT to_timestamp(t), c, r, f, m::jsonb, p::jsonb
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(t, c, r, f, m, p)
ON CONFLICT (report_id) DO NOTHING";
/// 2024-03-10T12:00:00Z.
const BASE: i64 = 1_710_072_000;

/// A database as the first release left it: its schema, applied as it
/// applied it, and `n` reports 3 hours apart back from BASE, over 7
/// clusters; every tenth has no reportID.
fn legacy_db(n: i64) -> TestDb {
    let db = TestDb::new();
    let mut c = db.client();
    let mut tx = c.transaction().expect("begin");
    tx.batch_execute(LEGACY_SCHEMA)
        .expect("the first release's schema applies");
    tx.commit().expect("commit");
    let reports: Vec<Legacy> = (0..n)
        .map(|i| Legacy {
            at: BASE - i * 3 * 3600,
            cluster: format!("legacy-{}", i % 7),
            id: (i % 10 != 0).then(|| format!("legacy-{i}")),
        })
        .collect();
    for chunk in reports.chunks(100) {
        legacy_insert(&mut c, chunk).expect("the old INSERT");
    }
    db
}

struct Legacy {
    at: i64,
    cluster: String,
    id: Option<String>,
}

/// Stores `reports` as the first release's collector did.
fn legacy_insert(c: &mut postgres::Client, reports: &[Legacy]) -> Result<u64, postgres::Error> {
    let at: Vec<i64> = reports.iter().map(|r| r.at).collect();
    let cluster: Vec<&str> = reports.iter().map(|r| r.cluster.as_str()).collect();
    let id: Vec<Option<&str>> = reports.iter().map(|r| r.id.as_deref()).collect();
    let from: Vec<&str> = reports.iter().map(|_| "192.0.2.1").collect();
    let metadata: Vec<String> = reports
        .iter()
        .map(|r| {
            let mut m = json!({"received_at": r.at.to_string(), "received_from": "192.0.2.1"});
            if let Some(id) = &r.id {
                m["reportID"] = json!(id);
            }
            m.to_string()
        })
        .collect();
    let payload: Vec<String> = reports
        .iter()
        .map(|r| {
            let node = json!({"status": {"nodeInfo": {"kubeletVersion": "v1.28.1"}}});
            json!({"clusterID": r.cluster, "masterVersion": "v1.28.1", "nodes": [node, node]})
                .to_string()
        })
        .collect();
    c.execute(
        LEGACY_INSERT,
        &[&at, &cluster, &id, &from, &metadata, &payload],
    )
}

fn collector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spartakus-collector"))
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run spartakus-collector")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}, stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn count(c: &mut postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

fn exists(c: &mut postgres::Client, table: &str) -> bool {
    c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .expect("to_regclass")
        .get(0)
}

fn post(c: &Collector, id: &str, cluster: &str) -> u16 {
    let body =
        json!({"metadata": {"reportID": id}, "payload": {"clusterID": cluster, "nodes": [{}]}});
    c.post("/api/v1/stats", &body.to_string()).status
}

/// Every stored reportID, with how often it is stored.
fn stored_ids(c: &mut postgres::Client) -> Vec<(String, i64)> {
    c.query(
        "SELECT report_id, count(*) FROM report_log WHERE report_id IS NOT NULL GROUP BY 1 ORDER BY 1",
        &[],
    )
    .expect("stored ids")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[test]
fn migrate_moves_the_first_releases_reports_while_both_versions_keep_storing() {
    let db = legacy_db(300);
    let mut c = db.client();
    let collector_new = Collector::start(&db.url, &[]);
    collector_new.wait_ready(Duration::from_secs(20));
    // The new collector stores into the new tables beside the old one.
    assert_eq!(post(&collector_new, "new-before", "new"), 204);
    assert!(exists(&mut c, "reports"));
    assert_eq!(count(&mut c, "SELECT count(*) FROM report_log"), 1);
    assert_eq!(count(&mut c, "SELECT count(*) FROM reports"), 300);
    // A report both versions stored: a volunteer's retry.
    assert_eq!(post(&collector_new, "legacy-1", "legacy-1"), 204);

    let expected = Mutex::new(BTreeSet::new());
    let legacy_without_id = Mutex::new(30_i64);
    let stop = AtomicBool::new(false);
    let migrated = std::thread::scope(|s| {
        // An old replica, storing until its table is gone.
        s.spawn(|| {
            let mut old = db.client();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let id = (i % 5 != 0).then(|| format!("old-{i}"));
                let r = Legacy {
                    at: BASE + 86_400 + i,
                    cluster: format!("old-{}", i % 3),
                    id: id.clone(),
                };
                match legacy_insert(&mut old, &[r]) {
                    Ok(_) => match id {
                        Some(id) => {
                            expected.lock().expect("lock").insert(id);
                        }
                        None => *legacy_without_id.lock().expect("lock") += 1,
                    },
                    Err(e) => {
                        let undefined =
                            e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE);
                        assert!(undefined, "the old INSERT: {e:?}");
                        return;
                    }
                }
            }
        });
        // Volunteers posting to the new collector.
        s.spawn(|| {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let id = format!("http-{i}");
                if post(&collector_new, &id, "http") == 204 {
                    expected.lock().expect("lock").insert(id);
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let first = collector(&["migrate", "--db-url", &db.url, "--batch-size", "10"]);
        assert!(
            first.status.success(),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        // Once the old replica has stopped, what it stored meanwhile moves too.
        std::thread::sleep(Duration::from_millis(100));
        let second = collector(&["migrate", "--db-url", &db.url, "--batch-size", "10"]);
        (first, second)
    });
    let (first, second) = (stdout(&migrated.0), stdout(&migrated.1));
    assert!(first.starts_with("moved "), "{first:?}");
    assert!(
        first.contains("(1 were stored already)"),
        "legacy-1 twice: {first:?}"
    );
    // The first run drops the table, or leaves what the old replica stored
    // meanwhile to the second, which then drops it.
    let dropped = "dropped the table reports\n";
    let done = if first.ends_with(dropped) {
        second.starts_with("nothing to migrate")
    } else {
        first.contains("more arrived meanwhile") && second.ends_with(dropped)
    };
    assert!(done, "first: {first:?}, second: {second:?}");
    assert!(!exists(&mut c, "reports"));

    let mut want = expected.into_inner().expect("lock");
    want.insert("new-before".into());
    want.extend(
        (0..300)
            .filter(|i| i % 10 != 0)
            .map(|i| format!("legacy-{i}")),
    );
    let got = stored_ids(&mut c);
    let twice: Vec<&(String, i64)> = got.iter().filter(|(_, n)| *n != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let got: BTreeSet<String> = got.into_iter().map(|(id, _)| id).collect();
    let lost: Vec<&String> = want.difference(&got).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM report_log WHERE report_id IS NULL"
        ),
        legacy_without_id.into_inner().expect("lock")
    );
    // The views show the moved reports as if they had arrived here.
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM cluster_latest WHERE cluster_id LIKE 'legacy-%'"
        ),
        7
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM cluster_latest WHERE cluster_id = 'legacy-0' \
             AND received_at = to_timestamp(1710072000) AND nodes = 2"
        ),
        1
    );
    // legacy-0 to legacy-4 report on 2024-03-10, at 12:00, 9:00, ... 0:00,
    // but for legacy-1, whose reportID the new collector stored first.
    assert_eq!(
        count(
            &mut c,
            "SELECT clusters FROM clusters_daily WHERE day = '2024-03-10'"
        ),
        4
    );
    assert_eq!(
        stdout(&collector(&["migrate", "--db-url", &db.url])),
        "nothing to migrate: no table reports of the first release\n"
    );
}

#[test]
fn an_interrupted_migrate_resumes_without_loss_or_duplicates() {
    let n = 2000;
    let db = legacy_db(n);
    let mut c = db.client();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spartakus-collector"))
        .args(["migrate", "--db-url", &db.url, "--batch-size", "1"])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start migrate");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let moved =
            exists(&mut c, "report_log") && count(&mut c, "SELECT count(*) FROM report_log") >= 100;
        if moved || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill migrate");
    child.wait().expect("reap migrate");
    let left = count(&mut c, "SELECT count(*) FROM reports");
    let moved = count(&mut c, "SELECT count(*) FROM report_log");
    assert!(left > 0, "migrate finished before it was interrupted");
    // Each batch moves whole: every report is in exactly one table.
    assert_eq!(left + moved, n);

    let got = stdout(&collector(&[
        "migrate",
        "--db-url",
        &db.url,
        "--batch-size",
        "500",
    ]));
    assert!(
        got.starts_with(&format!("moved {left} reports in "))
            && got.ends_with(" (0 were stored already); dropped the table reports\n"),
        "{got:?}"
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM report_log"), n);
    let ids = stored_ids(&mut c);
    assert_eq!(ids.len(), 1800);
    assert!(ids.iter().all(|(_, k)| *k == 1));
    assert_eq!(count(&mut c, "SELECT count(*) FROM report_keys"), n);
    assert_eq!(count(&mut c, "SELECT sum(nodes)::bigint FROM clusters"), 14);
}

#[test]
fn a_replica_starting_behind_a_long_read_is_ready_within_seconds() {
    let db = TestDb::new();
    let first = Collector::start(&db.url, &[]);
    first.wait_ready(Duration::from_secs(20));
    assert_eq!(post(&first, "one", "c"), 204);
    // A dashboard's long query, and a transaction holding the tables it
    // read, as a slow `summary` would.
    let mut reader = db.client();
    reader
        .batch_execute("BEGIN; LOCK TABLE clusters, cluster_nodes, fleet_days IN ACCESS SHARE MODE")
        .expect("hold the tables");
    let url = db.url.clone();
    let long = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        let _ = c.simple_query("SELECT count(*) FROM node_facts, pg_sleep(20)");
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let second = Collector::start(&db.url, &[]);
    second.wait_ready(Duration::from_secs(5));
    assert_eq!(post(&second, "two", "c"), 204);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    reader.batch_execute("COMMIT").expect("release");
    drop(long);
}

#[test]
fn an_old_collector_starting_against_the_new_schema_cannot_repoint_the_views() {
    let db = legacy_db(20);
    let out = collector(&["migrate", "--db-url", &db.url]);
    stdout(&out);
    let mut c = db.client();
    let latest = "SELECT count(*) FROM cluster_latest WHERE report IS NOT NULL";
    assert_eq!(count(&mut c, latest), 7);

    // As the first release applied it: one transaction, which must fail.
    let mut tx = c.transaction().expect("begin");
    tx.batch_execute("SET LOCAL lock_timeout = '10s'")
        .expect("set");
    let err = tx
        .batch_execute(LEGACY_SCHEMA)
        .expect_err("the old schema must not apply");
    drop(tx);
    assert!(err.as_db_error().is_some(), "{err:?}");
    assert!(
        !exists(&mut c, "reports"),
        "the failed transaction left its table"
    );

    // Statement by statement, as by hand: every view is refused.
    for statement in LEGACY_SCHEMA
        .split(";\n")
        .filter(|s| s.contains("CREATE OR REPLACE VIEW"))
    {
        let result = c.batch_execute(statement);
        assert!(result.is_err(), "applied: {statement}");
    }
    assert_eq!(count(&mut c, latest), 7);
    assert_eq!(count(&mut c, "SELECT count(*) FROM node_facts"), 14);
    assert_eq!(count(&mut c, "SELECT count(*) FROM clusters_daily"), 3);
    let columns = "SELECT string_agg(attname, ' ' ORDER BY attnum) FROM pg_attribute \
                   WHERE attrelid = 'cluster_latest'::regclass AND attnum > 0";
    let columns: String = c.query_one(columns, &[]).expect("columns").get(0);
    assert!(
        columns.starts_with("cluster_id received_at report "),
        "{columns}"
    );
}
