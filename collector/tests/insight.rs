//! Issue #7 against a real PostgreSQL: the views in schema.sql, the real
//! binary's `summary` and `prune`, and every query of the Grafana dashboard.
//! The reports come from tests/fixtures/reports.json, in the current, seed
//! and v1 flat formats, several per cluster, inserted at fixed times.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Command, Output};
use std::time::Duration;

const SCHEMA: &str = include_str!("../../schema.sql");
const REPORTS: &str = include_str!("fixtures/reports.json");
const DASHBOARD: &str = include_str!("../../contrib/grafana/spartakus-dashboard.json");
/// The instant the fixtures' `minutes_before` count back from.
const BASE: &str = "2024-03-10 12:00:00+00";

/// A fresh database with the schema applied twice: it must be idempotent.
fn schema_db() -> TestDb {
    let db = TestDb::new();
    let mut c = db.client();
    c.batch_execute(SCHEMA).expect("schema.sql applies");
    c.batch_execute(SCHEMA).expect("schema.sql applies again");
    db
}

/// Inserts every fixture report at `base` minus its `minutes_before`, in file
/// order, so ids grow in that order.
fn load(db: &TestDb, base: &str) {
    let reports: Vec<Value> = serde_json::from_str(REPORTS).expect("fixtures are JSON");
    let mut c = db.client();
    for r in &reports {
        let minutes = r["minutes_before"].as_i64().expect("minutes_before");
        let minutes = i32::try_from(minutes).expect("fits i32");
        let cluster = r["payload"]["clusterID"].as_str().expect("clusterID");
        c.execute(
            "INSERT INTO reports (received_at, cluster_id, received_from, metadata, payload) \
             VALUES ($1::text::timestamptz - make_interval(mins => $2), $3, '127.0.0.1', '{}', $4::text::jsonb)",
            &[&base, &minutes, &cluster, &r["payload"].to_string()],
        )
        .expect("insert a fixture report");
    }
}

/// Every row of `sql`, each column as PostgreSQL prints it (NULL as None),
/// timestamps in UTC.
fn rows(db: &TestDb, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut c = db.client();
    c.batch_execute("SET TimeZone = 'UTC'")
        .expect("set time zone");
    c.simple_query(sql)
        .expect("query")
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn collector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spartakus-collector"))
        .args(args)
        .env_remove("DATABASE_URL")
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

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn payload_of(cluster: &str, minutes: i64, nth: usize) -> Value {
    let reports: Vec<Value> = serde_json::from_str(REPORTS).expect("fixtures are JSON");
    reports
        .into_iter()
        .filter(|r| r["payload"]["clusterID"] == cluster && r["minutes_before"] == minutes)
        .nth(nth)
        .map(|r| r["payload"].clone())
        .expect("fixture exists")
}

#[test]
fn cluster_latest_is_each_clusters_newest_report_ties_broken_by_id() {
    let db = schema_db();
    load(&db, BASE);
    let got = rows(
        &db,
        "SELECT cluster_id, received_at, payload FROM cluster_latest ORDER BY cluster_id",
    );
    let want = [
        (
            "cluster-a",
            "2024-03-09 18:00:00+00",
            payload_of("cluster-a", 1080, 0),
        ),
        (
            "cluster-b",
            "2024-03-10 07:00:00+00",
            payload_of("cluster-b", 300, 0),
        ),
        (
            "cluster-c",
            "2024-03-09 20:00:00+00",
            payload_of("cluster-c", 960, 1),
        ),
        (
            "cluster-d",
            "2024-01-25 12:00:00+00",
            payload_of("cluster-d", 64800, 0),
        ),
        (
            "cluster-e",
            "2024-03-10 11:00:00+00",
            payload_of("cluster-e", 60, 0),
        ),
        (
            "cluster-f",
            "2024-03-10 11:30:00+00",
            payload_of("cluster-f", 30, 0),
        ),
    ];
    let got: Vec<(String, String, Value)> = got
        .into_iter()
        .map(|r| match &r[..] {
            [Some(c), Some(at), Some(p)] => (
                c.clone(),
                at.clone(),
                serde_json::from_str(p).expect("payload"),
            ),
            other => panic!("unexpected row {other:?}"),
        })
        .collect();
    let want: Vec<(String, String, Value)> = want
        .into_iter()
        .map(|(c, at, p)| (c.to_string(), at.to_string(), p))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn node_facts_reads_both_node_shapes_of_latest_reports_only() {
    let db = schema_db();
    load(&db, BASE);
    let mut got = rows(
        &db,
        "SELECT cluster_id, received_at, master_version, kubelet_version, os_image, \
         kernel_version, container_runtime_version, operating_system, architecture, \
         cloud_provider, cpu, memory FROM node_facts",
    );
    got.sort();
    let row = |cells: [&str; 12]| -> Vec<Option<String>> {
        cells
            .iter()
            .map(|c| (*c != "-").then(|| c.to_string()))
            .collect()
    };
    let (a, ub, k) = (
        "2024-03-09 18:00:00+00",
        "Ubuntu 22.04.4 LTS",
        "5.15.0-1057-aws",
    );
    let (b, cos) = (
        "2024-03-10 07:00:00+00",
        "Container-Optimized OS from Google",
    );
    let c = "2024-03-09 20:00:00+00";
    let mut want = vec![
        row([
            "cluster-a",
            a,
            "v1.29.4",
            "v1.29.4",
            ub,
            k,
            "containerd://1.7.13",
            "linux",
            "amd64",
            "aws",
            "4",
            "16Gi",
        ]),
        row([
            "cluster-a",
            a,
            "v1.29.4",
            "v1.29.4",
            ub,
            k,
            "containerd://1.7.13",
            "linux",
            "amd64",
            "aws",
            "4",
            "16Gi",
        ]),
        row([
            "cluster-a",
            a,
            "v1.29.4",
            "v1.28.2",
            ub,
            k,
            "containerd://1.7.13",
            "linux",
            "arm64",
            "aws",
            "2",
            "8Gi",
        ]),
        row([
            "cluster-b",
            b,
            "v1.29.4",
            "v1.29.4",
            cos,
            "6.1.58+",
            "containerd://1.7.10",
            "linux",
            "amd64",
            "gce",
            "8",
            "32Gi",
        ]),
        row([
            "cluster-b",
            b,
            "v1.29.4",
            "v1.29.4",
            cos,
            "6.1.58+",
            "containerd://1.7.10",
            "-",
            "-",
            "-",
            "8",
            "32Gi",
        ]),
        row([
            "cluster-c",
            c,
            "-",
            "v1.0.3",
            "CoreOS 738.1.0",
            "4.0.7-coreos-r2",
            "docker://1.6.2",
            "-",
            "-",
            "-",
            "1",
            "505020Ki",
        ]),
        row([
            "cluster-c",
            c,
            "-",
            "v1.0.3",
            "CoreOS 766.3.0",
            "4.1.5-coreos",
            "docker://1.7.1",
            "-",
            "-",
            "-",
            "2",
            "1019980Ki",
        ]),
        row([
            "cluster-d",
            "2024-01-25 12:00:00+00",
            "v1.27.1",
            "v1.27.1",
            "Ubuntu 20.04.6 LTS",
            "5.4.0-1109-azure",
            "containerd://1.6.8",
            "linux",
            "amd64",
            "azure",
            "4",
            "16393292Ki",
        ]),
        row([
            "cluster-e",
            "2024-03-10 11:00:00+00",
            "v1.30.0",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
        ]),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn clusters_daily_counts_each_cluster_once_a_day_with_its_last_node_count() {
    let db = schema_db();
    load(&db, BASE);
    let got = rows(
        &db,
        "SELECT day, clusters, nodes FROM clusters_daily ORDER BY day",
    );
    let want: Vec<Vec<Option<String>>> = [
        ("2024-01-25", "1", "1"),
        ("2024-03-08", "1", "2"),
        // cluster-a's later report (3 nodes), cluster-b (1), cluster-c by id (2).
        ("2024-03-09", "3", "6"),
        // cluster-b (2), cluster-e (1 object among its nodes), cluster-f (0).
        ("2024-03-10", "3", "3"),
    ]
    .iter()
    .map(|(d, c, n)| vec![s(d), s(c), s(n)])
    .collect();
    assert_eq!(got, want);
}

fn breakdown(rows: &[(Option<&str>, i64, i64)]) -> Value {
    Value::Array(
        rows.iter()
            .map(|(v, c, n)| json!({"value": v, "clusters": c, "nodes": n}))
            .collect(),
    )
}

#[test]
fn summary_json_counts_recent_clusters_and_their_nodes() {
    let db = schema_db();
    load(&db, "now");
    let got: Value = serde_json::from_str(&stdout(&collector(&[
        "summary", "--db-url", &db.url, "--json",
    ])))
    .expect("summary --json is JSON");
    // cluster-d's only report is 45 days old: outside the default 30 days.
    let want = json!({
        "days": 30, "clusters": 5, "nodes": 8,
        "master_version": breakdown(&[(Some("v1.29.4"), 2, 5), (None, 1, 2), (Some("v1.30.0"), 1, 1)]),
        "kubelet_version": breakdown(&[(Some("v1.29.4"), 2, 4), (Some("v1.0.3"), 1, 2), (Some("v1.28.2"), 1, 1), (None, 1, 1)]),
        "os_image": breakdown(&[(Some("Ubuntu 22.04.4 LTS"), 1, 3), (Some("Container-Optimized OS from Google"), 1, 2),
            (Some("CoreOS 738.1.0"), 1, 1), (Some("CoreOS 766.3.0"), 1, 1), (None, 1, 1)]),
        "container_runtime_version": breakdown(&[(Some("containerd://1.7.13"), 1, 3), (Some("containerd://1.7.10"), 1, 2),
            (Some("docker://1.6.2"), 1, 1), (Some("docker://1.7.1"), 1, 1), (None, 1, 1)]),
        "architecture": breakdown(&[(None, 3, 4), (Some("amd64"), 2, 3), (Some("arm64"), 1, 1)]),
        "operating_system": breakdown(&[(Some("linux"), 2, 4), (None, 3, 4)]),
        "cloud_provider": breakdown(&[(None, 3, 4), (Some("aws"), 1, 3), (Some("gce"), 1, 1)]),
    });
    assert_eq!(got, want);

    let wider: Value = serde_json::from_str(&stdout(&collector(&[
        "summary", "--db-url", &db.url, "--json", "--days", "60",
    ])))
    .expect("JSON");
    assert_eq!(
        (&wider["days"], &wider["clusters"], &wider["nodes"]),
        (&json!(60), &json!(6), &json!(9))
    );
}

#[test]
fn summary_prints_aligned_tables() {
    let db = schema_db();
    load(&db, "now");
    let got = stdout(&collector(&[
        "summary", "--db-url", &db.url, "--days", "60",
    ]));
    let want = "\
Clusters: 6   Nodes: 9   (seen in the last 60 days)

Master version   Clusters  Nodes
v1.29.4                 2      5
(unknown)               1      2
v1.27.1                 1      1
v1.30.0                 1      1

Kubelet version   Clusters  Nodes
v1.29.4                  2      4
v1.0.3                   1      2
v1.27.1                  1      1
v1.28.2                  1      1
(unknown)                1      1

OS image                             Clusters  Nodes
Ubuntu 22.04.4 LTS                          1      3
Container-Optimized OS from Google          1      2
CoreOS 738.1.0                              1      1
CoreOS 766.3.0                              1      1
Ubuntu 20.04.6 LTS                          1      1
(unknown)                                   1      1

Container runtime     Clusters  Nodes
containerd://1.7.13          1      3
containerd://1.7.10          1      2
containerd://1.6.8           1      1
docker://1.6.2               1      1
docker://1.7.1               1      1
(unknown)                    1      1

Architecture   Clusters  Nodes
amd64                 3      4
(unknown)             3      4
arm64                 1      1

Operating system   Clusters  Nodes
linux                     3      5
(unknown)                 3      4

Cloud provider   Clusters  Nodes
(unknown)               3      4
aws                     1      3
azure                   1      1
gce                     1      1
";
    assert_eq!(got, want, "got:\n{got}");
}

#[test]
fn summary_without_schema_says_how_to_create_it() {
    let db = TestDb::new();
    let out = collector(&["summary", "--db-url", &db.url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("spartakus-collector: database: 42P01: ")
            && stderr.contains("run this version of spartakus-collector (serving) once"),
        "{stderr}"
    );
}

#[test]
fn reports_posted_to_the_real_collector_reach_the_views() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let v1 = payload_of("cluster-b", 300, 0);
    assert_eq!(c.post("/api/v1", &v1.to_string()).status, 204);
    assert_eq!(c.post("/api/v1/stats", SEED).status, 204);
    let got = rows(
        &db,
        "SELECT cluster_id, kubelet_version, operating_system, cpu, memory FROM node_facts \
         ORDER BY cluster_id, cpu",
    );
    let want = vec![
        vec![
            s("612e0f99-1912-4647-831d-ba4c3d918b66"),
            s("v1.0.3"),
            None,
            s("1"),
            s("505020Ki"),
        ],
        vec![s("cluster-b"), s("v1.29.4"), s("linux"), s("8"), s("32Gi")],
        vec![s("cluster-b"), s("v1.29.4"), None, s("8"), s("32Gi")],
    ];
    assert_eq!(got, want);
}

#[test]
fn prune_deletes_exactly_the_old_reports_in_batches() {
    let db = schema_db();
    let mut c = db.client();
    // 25 reports older than 400 days, and 5 newer ones, one of them a day
    // short of the cutoff.
    c.batch_execute(
        "INSERT INTO reports (received_at, cluster_id, received_from, metadata, payload)
         SELECT now() - interval '401 days' - make_interval(mins => g), 'old-' || (g % 2),
                '127.0.0.1', '{}', '{\"clusterID\": \"old\"}'
         FROM generate_series(1, 25) g;
         INSERT INTO reports (received_at, cluster_id, received_from, metadata, payload)
         SELECT now() - make_interval(days => d), 'new', '127.0.0.1', '{}', '{\"clusterID\": \"new\"}'
         FROM unnest(ARRAY[399, 100, 10, 1, 0]) d",
    )
    .expect("insert reports");
    let keep: Vec<i64> = c
        .query(
            "SELECT id FROM reports WHERE cluster_id = 'new' ORDER BY id",
            &[],
        )
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let cutoff_text = "SELECT to_char((now() - interval '400 days') AT TIME ZONE 'UTC', \
                       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
    let before: String = c.query_one(cutoff_text, &[]).expect("cutoff").get(0);
    let args = [
        "prune",
        "--db-url",
        &db.url,
        "--older-than",
        "400d",
        "--batch-size",
        "10",
    ];
    let got = stdout(&collector(&args));
    let after: String = c.query_one(cutoff_text, &[]).expect("cutoff").get(0);

    let cutoff = got
        .strip_prefix("deleted 25 reports received before ")
        .and_then(|rest| rest.strip_suffix(" in 3 batches\n"))
        .unwrap_or_else(|| panic!("got {got:?}"));
    assert!(
        (before.as_str()..=after.as_str()).contains(&cutoff),
        "{cutoff} not in [{before}, {after}]"
    );
    let left: Vec<i64> = c
        .query("SELECT id FROM reports ORDER BY id", &[])
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, keep);

    let again = stdout(&collector(&args));
    assert!(
        again.starts_with("deleted 0 reports received before ")
            && again.ends_with(" in 0 batches\n"),
        "{again:?}"
    );
}

#[test]
fn prune_and_summary_flag_errors_name_the_flag_and_exit_2() {
    let url = "postgres://postgres@127.0.0.1:1/nowhere";
    let cases: &[(&[&str], &str)] = &[
        (&["summary"], "--db-url: required (or set DATABASE_URL)"),
        (&["summary", "--db-url", url, "--days", "0"], "--days: must be a whole number from 1 to 36500"),
        (&["summary", "--db-url", url, "--since", "3"], "arguments: unexpected \"--since\"; see --help"),
        (&["prune", "--db-url", url], "--older-than: required, a duration like 400d, 36h or 90m"),
        (&["prune", "--db-url", url, "--older-than", "0d"], "--older-than: must be a duration like 400d, 36h or 90m, from 1s to 36500d, not \"0d\""),
        (&["prune", "--db-url", url, "--older-than", "soon"], "--older-than: must be a duration like 400d, 36h or 90m, from 1s to 36500d, not \"soon\""),
        (&["prune", "--db-url", url, "--older-than", "1d", "--batch-size", "many"], "--batch-size: must be a whole number from 1 to 1000000"),
        (&["purge"], "arguments: unexpected \"purge\"; see --help"),
    ];
    for (args, want) in cases {
        let out = collector(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr, format!("spartakus-collector: {want}\n"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// Expands `$__timeFilter(column)` the way Grafana's PostgreSQL data source
/// does (`column BETWEEN '<from>' AND '<to>'`, RFC 3339 in UTC). The
/// dashboard uses no other macro; a new one fails the test until added here.
fn expand_macros(sql: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(at) = rest.find("$__timeFilter(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "$__timeFilter(".len()..];
        let close = after.find(')').expect("$__timeFilter( is closed");
        out.push_str(&format!("{} BETWEEN '{from}' AND '{to}'", &after[..close]));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    assert!(!out.contains('$'), "unexpanded macro or variable in {out}");
    out
}

#[test]
fn every_dashboard_query_runs_against_the_views() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_SPARTAKUS");
    assert!(dashboard["schemaVersion"].as_i64().is_some_and(|v| v >= 36));
    let db = schema_db();
    load(&db, BASE);
    let mut ran = std::collections::BTreeMap::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        let title = panel["title"].as_str().expect("title");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(panel["gridPos"]["w"].is_u64(), "{title}: gridPos");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let sql = target["rawSql"].as_str().expect("rawSql");
            let sql = expand_macros(sql, "2024-01-01T00:00:00Z", "2024-03-11T00:00:00Z");
            let got = rows(&db, &sql);
            assert!(!got.is_empty(), "{title}: no rows from {sql}");
            ran.insert(title.to_string(), got);
        }
    }
    let column = |title: &str, i: usize| -> Vec<String> {
        ran[title]
            .iter()
            .map(|r| r[i].clone().unwrap_or_default())
            .collect()
    };
    assert_eq!(column("Clusters", 0), ["6"]);
    assert_eq!(column("Nodes", 0), ["9"]);
    assert_eq!(column("Active clusters per day", 1), ["1", "1", "3", "3"]);
    assert_eq!(column("Nodes per day", 1), ["1", "2", "6", "3"]);
    assert_eq!(
        column("Active clusters per day", 0),
        [
            "2024-01-25 00:00:00+00",
            "2024-03-08 00:00:00+00",
            "2024-03-09 00:00:00+00",
            "2024-03-10 00:00:00+00"
        ]
    );
    assert_eq!(column("Architectures", 0), ["(unknown)", "amd64", "arm64"]);
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Master versions",
        "Kubelet versions",
        "OS images",
        "Container runtimes",
        "Operating systems",
        "Cloud providers",
    ] {
        assert!(titles.contains(&want), "no panel {want:?}");
    }
}

#[test]
fn the_dashboards_day_filter_reaches_the_day_index() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let db = schema_db();
    load(&db, BASE);
    let mut c = db.client();
    // Planner costs on a fixture table would favour a scan of all of it;
    // without sequential scans the plan shows whether the filter on `day`
    // gets down to the index, as it must for a table of years of reports.
    c.batch_execute("SET enable_seqscan = off").expect("set");
    let mut checked = 0;
    for target in dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets"))
    {
        let sql = target["rawSql"].as_str().expect("rawSql");
        if !sql.contains("clusters_daily") {
            continue;
        }
        let sql = expand_macros(sql, "2024-03-09T00:00:00Z", "2024-03-11T00:00:00Z");
        let plan: Vec<String> = c
            .query(&format!("EXPLAIN {sql}"), &[])
            .expect("explain")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Cond") && plan.contains("reports_utc_day"),
            "{sql}\n{plan}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "the two per-day panels");
}
