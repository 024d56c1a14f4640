//! The read side against a real PostgreSQL and the real binary: the views
//! and tables of collector/migrations/, `summary`, `prune`, `import` and
//! `export`, and every query of the Grafana dashboard. Reports get in only
//! the ways they do in production: `spartakus-collector import` (JSON
//! Lines) or HTTP. The fixture reports (tests/fixtures/reports.json) come in
//! the current, seed and v1 flat formats, several per cluster, at fixed
//! times.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REPORTS: &str = include_str!("fixtures/reports.json");
const DASHBOARD: &str = include_str!("../../contrib/grafana/spartakus-dashboard.json");
/// 2024-03-10T12:00:00Z, the instant the fixtures' `minutes_before` count
/// back from.
const BASE: i64 = 1_710_072_000;

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits i64")
}

/// One import line, as `export` writes them.
fn line(at: &str, id: Option<&str>, payload: &Value) -> String {
    let mut metadata = json!({"received_at": at, "received_from": "127.0.0.1"});
    if let Some(id) = id {
        metadata["reportID"] = json!(id);
    }
    json!({"metadata": metadata, "payload": payload}).to_string()
}

/// The fixture reports as import lines at `base` minus their
/// `minutes_before`, in file order, each with reportID `fixture-<index>`
/// but for clusters d and f, which send none.
fn fixture_lines(base: i64) -> String {
    let reports: Vec<Value> = serde_json::from_str(REPORTS).expect("fixtures are JSON");
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        let at = base - r["minutes_before"].as_i64().expect("minutes_before") * 60;
        let cluster = r["payload"]["clusterID"].as_str().expect("clusterID");
        let id = format!("fixture-{i}");
        let id = (!matches!(cluster, "cluster-d" | "cluster-f")).then_some(id.as_str());
        let mut v: Value = serde_json::from_str(&line(&at.to_string(), id, &r["payload"]))
            .expect("a line is JSON");
        if let Some(extra) = r["metadata"].as_object() {
            for (k, value) in extra {
                v["metadata"][k] = value.clone();
            }
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

fn collector_with(args: &[&str], input: &str) -> Output {
    run_collector(args, input.as_bytes())
}

fn collector(args: &[&str]) -> Output {
    collector_with(args, "")
}

/// `import` of `input` from stdin with `extra` flags; its stdout.
fn import(db: &TestDb, input: &str, extra: &[&str]) -> String {
    let mut args = vec!["import", "--db-url", &db.url];
    args.extend_from_slice(extra);
    stdout(&collector_with(&args, input))
}

fn export(db: &TestDb) -> String {
    stdout(&collector(&["export", "--db-url", &db.url]))
}

/// A fresh database holding the fixture reports at `base`.
fn loaded(base: i64) -> TestDb {
    let db = TestDb::new();
    let got = import(&db, &fixture_lines(base), &[]);
    assert_eq!(
        got,
        "read 11 lines: 11 reports stored, 0 already stored, 0 skipped\n"
    );
    assert_kept_figures_match_a_rebuild(&db);
    db
}

/// Every row of `sql`, each column as PostgreSQL prints it (NULL as None),
/// timestamps in UTC.
fn rows(db: &TestDb, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut c = db.client();
    c.batch_execute("SET TimeZone = 'UTC'")
        .expect("set time zone");
    c.simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
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

/// The one value of a one-row, one-column query.
fn value(db: &TestDb, sql: &str) -> String {
    match &rows(db, sql)[..] {
        [row] => row[0].clone().unwrap_or_default(),
        other => panic!("{sql}: want one row, got {other:?}"),
    }
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

/// Rows from string cells, "-" for NULL.
fn table(cells: &[&[&str]]) -> Vec<Vec<Option<String>>> {
    cells
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| (*c != "-").then(|| c.to_string()))
                .collect()
        })
        .collect()
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

/// Everything derived at ingest, one row per table row, as JSON text.
fn derived(db: &TestDb) -> Vec<Vec<Option<String>>> {
    rows(
        db,
        "SELECT 'clusters', to_jsonb(t)::text FROM clusters t
         UNION ALL SELECT 'cluster_nodes', to_jsonb(t)::text FROM cluster_nodes t
         UNION ALL SELECT 'cluster_days', to_jsonb(t)::text FROM cluster_days t
         UNION ALL SELECT 'fleet_days', to_jsonb(t)::text FROM fleet_days t
         UNION ALL SELECT 'fleet_latest', to_jsonb(t)::text FROM fleet_latest t
         ORDER BY 1, 2",
    )
}

/// What /stats sums, as ingest and prune keep it (migration 002), must be
/// what `clusters` and `cluster_days` say, computed here from scratch.
fn assert_kept_figures_match_a_rebuild(db: &TestDb) {
    let kept = rows(
        db,
        "SELECT day, seen, facet, value, clusters, nodes FROM fleet_latest \
         WHERE clusters <> 0 OR nodes <> 0 ORDER BY 1, 2, 3, 4",
    );
    let rebuilt = rows(
        db,
        "SELECT c.recent_days[1], cardinality(c.recent_days), f.k, f.v, \
                count(DISTINCT c.cluster_id), sum(f.n) \
         FROM clusters c CROSS JOIN LATERAL ( \
             SELECT '', '', c.nodes::bigint UNION ALL \
             SELECT k, coalesce(v, ''), n FROM unnest(c.facet_keys, c.facet_values, c.facet_nodes) \
             AS u(k, v, n) WHERE k IN ('minor_version', 'distribution', 'cloud_provider', \
             'os_image', 'container_runtime_version', 'architecture', 'accelerators', \
             'volunteer_version')) AS f(k, v, n) \
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    );
    assert_eq!(kept, rebuilt, "fleet_latest");
    assert!(!kept.is_empty() || value(db, "SELECT count(*) FROM clusters") == "0");
    let kept = rows(
        db,
        "SELECT day, dimension, value, seen, clusters, nodes FROM fleet_days \
         WHERE clusters <> 0 OR nodes <> 0 ORDER BY 1, 2, 3, 4",
    );
    let rebuilt = rows(
        db,
        "SELECT * FROM ( \
             SELECT d.day, f.dim, f.v, coalesce(cardinality(c.recent_days), 0) AS seen, \
                    sum(f.c) AS clusters, sum(f.n) AS nodes \
             FROM cluster_days d LEFT JOIN clusters c USING (cluster_id) \
             CROSS JOIN LATERAL (VALUES ('all', '', 1, d.nodes), \
                 ('accelerators', '', (d.nodes_with_accelerators > 0)::int, d.nodes_with_accelerators), \
                 ('minor_version', coalesce(d.minor_version, ''), 1, d.nodes), \
                 ('distribution', d.distribution, 1, d.nodes), \
                 ('volunteer_version', coalesce(d.volunteer_version, ''), 1, d.nodes)) AS f(dim, v, c, n) \
             GROUP BY 1, 2, 3, 4) AS r \
         WHERE clusters <> 0 OR nodes <> 0 ORDER BY 1, 2, 3, 4",
    );
    assert_eq!(kept, rebuilt, "fleet_days");
}

#[test]
fn cluster_latest_is_each_clusters_newest_report_ties_broken_by_id() {
    let db = loaded(BASE);
    let got = rows(
        &db,
        "SELECT l.cluster_id, l.received_at, r.payload FROM cluster_latest l \
         JOIN report_log r ON r.id = l.report ORDER BY l.cluster_id",
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
        (
            "cluster-g",
            "2024-03-10 10:00:00+00",
            payload_of("cluster-g", 120, 0),
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
    let db = loaded(BASE);
    let mut got = rows(
        &db,
        "SELECT cluster_id, received_at, master_version, kubelet_version, os_image, \
         kernel_version, container_runtime_version, operating_system, architecture, \
         cloud_provider, cpu_millicores, memory_bytes, accelerators FROM node_facts",
    );
    got.sort();
    let (a, ub, k) = (
        "2024-03-09 18:00:00+00",
        "Ubuntu 22.04.4 LTS",
        "5.15.0-1057-aws",
    );
    let (b, cos) = (
        "2024-03-10 07:00:00+00",
        "Container-Optimized OS from Google",
    );
    let (c, g) = ("2024-03-09 20:00:00+00", "2024-03-10 10:00:00+00");
    let (eks, al2, al2k) = (
        "v1.29.3-eks-adc7111",
        "Amazon Linux 2",
        "5.10.210-201.852.amzn2.x86_64",
    );
    let mut want = table(&[
        &[
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
            "4000",
            "17179869184",
            "-",
        ],
        &[
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
            "4000",
            "17179869184",
            "-",
        ],
        &[
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
            "2000",
            "8589934592",
            "-",
        ],
        &[
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
            "8000",
            "34359738368",
            "-",
        ],
        &[
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
            "8000",
            "34359738368",
            "-",
        ],
        &[
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
            "1000",
            "517140480",
            "-",
        ],
        &[
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
            "2000",
            "1044459520",
            "-",
        ],
        &[
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
            "4000",
            "16786731008",
            "-",
        ],
        &[
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
            "-",
        ],
        &[
            "cluster-g",
            g,
            eks,
            "v1.29.3-eks-ae9a62a",
            al2,
            al2k,
            "containerd://1.7.11",
            "linux",
            "amd64",
            "aws",
            "4000",
            "17179869184",
            "-",
        ],
        &[
            "cluster-g",
            g,
            eks,
            "v1.29.3-eks-ae9a62a",
            al2,
            al2k,
            "containerd://1.7.11",
            "linux",
            "amd64",
            "aws",
            "8000",
            "34359738368",
            "4",
        ],
    ]);
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn clusters_daily_counts_each_cluster_once_a_day_with_its_last_node_count() {
    let db = loaded(BASE);
    let got = rows(
        &db,
        "SELECT day, clusters, nodes, clusters_with_accelerators, nodes_with_accelerators \
         FROM clusters_daily ORDER BY day",
    );
    let want = table(&[
        &["2024-01-25", "1", "1", "0", "0"],
        &["2024-03-08", "1", "2", "0", "0"],
        // cluster-a's later report (3 nodes), cluster-b (1), cluster-c by id (2).
        &["2024-03-09", "3", "6", "0", "0"],
        // cluster-b (2), cluster-e (1 object among its nodes), cluster-f (0),
        // cluster-g (2, one with accelerators).
        &["2024-03-10", "4", "5", "1", "1"],
    ]);
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
    let db = loaded(now());
    let got: Value = serde_json::from_str(&stdout(&collector(&[
        "summary", "--db-url", &db.url, "--json",
    ])))
    .expect("summary --json is JSON");
    // cluster-d's only report is 45 days old: outside the default 30 days.
    let want = json!({
        "days": 30, "clusters": 6, "nodes": 10, "nodes_with_accelerators": 1,
        "distribution": breakdown(&[(Some("vanilla"), 3, 6), (Some("eks"), 1, 2), (Some("unknown"), 2, 2)]),
        "minor_version": breakdown(&[(Some("v1.29"), 3, 7), (None, 2, 2), (Some("v1.30"), 1, 1)]),
        "master_version": breakdown(&[(Some("v1.29.4"), 2, 5), (Some("v1.29.3-eks-adc7111"), 1, 2), (None, 2, 2), (Some("v1.30.0"), 1, 1)]),
        "kubelet_version": breakdown(&[(Some("v1.29.4"), 2, 4), (Some("v1.0.3"), 1, 2), (Some("v1.29.3-eks-ae9a62a"), 1, 2),
            (Some("v1.28.2"), 1, 1), (None, 1, 1)]),
        "os_image": breakdown(&[(Some("Ubuntu 22.04.4 LTS"), 1, 3), (Some("Amazon Linux 2"), 1, 2),
            (Some("Container-Optimized OS from Google"), 1, 2), (Some("CoreOS 738.1.0"), 1, 1), (Some("CoreOS 766.3.0"), 1, 1), (None, 1, 1)]),
        "container_runtime_version": breakdown(&[(Some("containerd://1.7.13"), 1, 3), (Some("containerd://1.7.10"), 1, 2),
            (Some("containerd://1.7.11"), 1, 2), (Some("docker://1.6.2"), 1, 1), (Some("docker://1.7.1"), 1, 1), (None, 1, 1)]),
        "architecture": breakdown(&[(Some("amd64"), 3, 5), (None, 3, 4), (Some("arm64"), 1, 1)]),
        "operating_system": breakdown(&[(Some("linux"), 3, 6), (None, 3, 4)]),
        "cloud_provider": breakdown(&[(Some("aws"), 2, 5), (None, 3, 4), (Some("gce"), 1, 1)]),
        "accelerators": [{"value": "nvidia.com/gpu", "clusters": 1, "count": 4}],
        "volunteer_version": breakdown(&[(None, 4, 6), (Some("v0.3.0"), 1, 2), (Some("v1.0.0"), 1, 2)]),
        "extensions": breakdown(&[(Some("example.com/plan=gold"), 1, 2)]),
    });
    assert_eq!(got, want, "got:\n{got:#}");

    let wider: Value = serde_json::from_str(&stdout(&collector(&[
        "summary", "--db-url", &db.url, "--json", "--days", "60",
    ])))
    .expect("JSON");
    assert_eq!(
        (&wider["days"], &wider["clusters"], &wider["nodes"]),
        (&json!(60), &json!(7), &json!(11))
    );
}

#[test]
fn summary_prints_aligned_tables() {
    let db = loaded(now());
    let got = stdout(&collector(&[
        "summary", "--db-url", &db.url, "--days", "60",
    ]));
    let want = "\
Clusters: 7   Nodes: 11   Nodes with accelerators: 1   (seen in the last 60 days)

Distribution   Clusters  Nodes
vanilla               3      6
eks                   1      2
unknown               2      2
aks                   1      1

Minor version   Clusters  Nodes
v1.29                  3      7
(unknown)              2      2
v1.27                  1      1
v1.30                  1      1

Master version        Clusters  Nodes
v1.29.4                      2      5
v1.29.3-eks-adc7111          1      2
(unknown)                    2      2
v1.27.1                      1      1
v1.30.0                      1      1

Kubelet version       Clusters  Nodes
v1.29.4                      2      4
v1.0.3                       1      2
v1.29.3-eks-ae9a62a          1      2
v1.27.1                      1      1
v1.28.2                      1      1
(unknown)                    1      1

OS image                             Clusters  Nodes
Ubuntu 22.04.4 LTS                          1      3
Amazon Linux 2                              1      2
Container-Optimized OS from Google          1      2
CoreOS 738.1.0                              1      1
CoreOS 766.3.0                              1      1
Ubuntu 20.04.6 LTS                          1      1
(unknown)                                   1      1

Container runtime     Clusters  Nodes
containerd://1.7.13          1      3
containerd://1.7.10          1      2
containerd://1.7.11          1      2
containerd://1.6.8           1      1
docker://1.6.2               1      1
docker://1.7.1               1      1
(unknown)                    1      1

Architecture   Clusters  Nodes
amd64                 4      6
(unknown)             3      4
arm64                 1      1

Operating system   Clusters  Nodes
linux                     4      7
(unknown)                 3      4

Cloud provider   Clusters  Nodes
aws                     2      5
(unknown)               3      4
azure                   1      1
gce                     1      1

Accelerator      Clusters  Count
nvidia.com/gpu          1      4

Volunteer version   Clusters  Nodes
(unknown)                  5      7
v0.3.0                     1      2
v1.0.0                     1      2

Extension               Clusters  Nodes
example.com/plan=gold          1      2
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
    let mut got = rows(
        &db,
        "SELECT cluster_id, kubelet_version, operating_system, cpu_millicores, memory_bytes \
         FROM node_facts",
    );
    got.sort();
    let mut want = table(&[
        &[
            "612e0f99-1912-4647-831d-ba4c3d918b66",
            "v1.0.3",
            "-",
            "1000",
            "517140480",
        ],
        &["cluster-b", "v1.29.4", "linux", "8000", "34359738368"],
        &["cluster-b", "v1.29.4", "-", "8000", "34359738368"],
    ]);
    want.sort();
    assert_eq!(got, want);
    assert_eq!(value(&db, "SELECT sum(clusters) FROM clusters_daily"), "2");
}

/// `--older-than` in seconds that puts prune's cutoff at `cutoff` (unix
/// seconds), give or take the seconds the command takes to start.
fn older_than(cutoff: i64) -> String {
    format!("{}s", now() - cutoff)
}

#[test]
fn prune_deletes_exactly_the_old_reports_in_batches() {
    // 2024-03-15T12:00:00Z: 25 reports in the two hours before, 5 after,
    // all in one month, so that nothing is dropped whole.
    let cutoff = 1_710_504_000;
    let mut input = String::new();
    for g in 0..25 {
        let p = json!({"clusterID": format!("old-{}", g % 2)});
        input += &line(
            &(cutoff - 600 - g * 240).to_string(),
            Some(&format!("old-{g}")),
            &p,
        );
        input.push('\n');
    }
    for d in [1, 2, 3, 5, 8] {
        input += &line(
            &(cutoff + d * 3600).to_string(),
            Some(&format!("new-{d}")),
            &json!({"clusterID": "new"}),
        );
        input.push('\n');
    }
    let db = TestDb::new();
    import(&db, &input, &[]);
    let keep = rows(
        &db,
        "SELECT id FROM report_log WHERE cluster_id = 'new' ORDER BY id",
    );
    let args = [
        "prune",
        "--db-url",
        &db.url,
        "--older-than",
        &older_than(cutoff),
        "--batch-size",
        "10",
    ];
    let got = stdout(&collector(&args));
    let at = got
        .strip_prefix("deleted 25 reports received before 2024-03-15T12:00:")
        .and_then(|rest| rest.strip_suffix("Z in 3 batches\n"))
        .unwrap_or_else(|| panic!("got {got:?}"));
    assert!(at.len() == 2 && at < "30", "cutoff drifted: {got:?}");
    assert_eq!(rows(&db, "SELECT id FROM report_log ORDER BY id"), keep);

    let again = stdout(&collector(&args));
    assert!(
        again.starts_with("deleted 0 reports received before ")
            && again.ends_with(" in 0 batches\n"),
        "{again:?}"
    );
}

#[test]
fn prune_drops_old_months_whole_and_trims_what_was_derived_from_them() {
    // The cutoff, 2024-03-15T00:00:00Z: January and February are older
    // whole; March is the boundary month.
    let cutoff = 1_710_460_800;
    let day = 86_400;
    let mut input = String::new();
    let mut add = |at: i64, id: &str, cluster: &str| {
        let p = json!({"clusterID": cluster, "nodes": [{"status": {"nodeInfo": {"kubeletVersion": "v1.29.1"}}}]});
        input += &line(&at.to_string(), Some(id), &p);
        input.push('\n');
    };
    add(cutoff - 60 * day, "jan-1", "gone"); // 2024-01-15
    add(cutoff - 59 * day, "jan-2", "gone");
    add(cutoff - 30 * day, "feb-1", "kept"); // 2024-02-14
    for i in 0..12 {
        add(cutoff - 10 * day + i * 3600, &format!("mar-{i}"), "gone"); // 2024-03-05
    }
    add(cutoff + 2 * day, "mar-new", "kept"); // 2024-03-17
    add(cutoff + 20 * day, "apr-new", "new"); // 2024-04-04
    let db = TestDb::new();
    import(&db, &input, &[]);
    let months = "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits i \
                  JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'report_log'::regclass";
    assert_eq!(
        value(&db, months),
        "report_log_2024_01 report_log_2024_02 report_log_2024_03 report_log_2024_04 report_log_default"
    );

    let args = [
        "prune",
        "--db-url",
        &db.url,
        "--older-than",
        &older_than(cutoff),
        "--batch-size",
        "5",
    ];
    let got = stdout(&collector(&args));
    // Two months dropped, and 12 reports of March in batches of 5.
    let (first, second) = got.split_once('\n').unwrap_or_else(|| panic!("{got:?}"));
    assert!(
        first.starts_with("deleted 15 reports received before 2024-03-15T00:00:")
            && first.ends_with("Z in 5 batches"),
        "{got:?}"
    );
    assert_eq!(
        second,
        "dropped whole: report_log_2024_01, report_log_2024_02\n"
    );
    assert_eq!(
        value(&db, months),
        "report_log_2024_03 report_log_2024_04 report_log_default"
    );
    assert_eq!(
        value(&db, "SELECT to_regclass('report_log_2024_01') IS NULL"),
        "t"
    );

    let left = "SELECT string_agg(report_id, ' ' ORDER BY report_id) FROM report_log";
    assert_eq!(value(&db, left), "apr-new mar-new");
    let keys = "SELECT string_agg(key, ' ' ORDER BY key) FROM report_keys";
    assert_eq!(value(&db, keys), "id:apr-new id:mar-new");
    // Nothing derived is older than the cutoff's day; "gone" reported last
    // before it.
    assert_eq!(
        value(
            &db,
            "SELECT string_agg(cluster_id, ' ' ORDER BY 1) FROM clusters"
        ),
        "kept new"
    );
    assert_eq!(
        value(
            &db,
            "SELECT string_agg(DISTINCT cluster_id, ' ' ORDER BY cluster_id) FROM cluster_nodes"
        ),
        "kept new"
    );
    assert_eq!(
        value(&db, "SELECT min(day) FROM cluster_days"),
        "2024-03-17"
    );
    assert_eq!(value(&db, "SELECT min(day) FROM fleet_days"), "2024-03-17");
    assert_eq!(
        rows(
            &db,
            "SELECT day, clusters, nodes FROM clusters_daily ORDER BY 1"
        ),
        table(&[&["2024-03-17", "1", "1"], &["2024-04-04", "1", "1"]])
    );

    // A pruned reportID is no longer known: it can be stored again.
    let again = line(
        &(cutoff + day).to_string(),
        Some("jan-1"),
        &json!({"clusterID": "gone"}),
    );
    assert_kept_figures_match_a_rebuild(&db);
    assert_eq!(
        import(&db, &again, &[]),
        "read 1 lines: 1 reports stored, 0 already stored, 0 skipped\n"
    );
    assert_kept_figures_match_a_rebuild(&db);
}

#[test]
fn flag_errors_name_the_flag_and_exit_2() {
    let url = "postgres://postgres@127.0.0.1:1/nowhere";
    let cases: &[(&[&str], &str)] = &[
        (&["summary"], "--db-url: required (or set DATABASE_URL)"),
        (&["summary", "--db-url", url, "--days", "0"], "--days: must be a whole number from 1 to 36500"),
        (&["summary", "--db-url", url, "--since", "3"], "arguments: unexpected \"--since\"; see --help"),
        (&["prune", "--db-url", url], "--older-than: required, a duration like 400d, 36h or 90m"),
        (&["prune", "--db-url", url, "--older-than", "0d"], "--older-than: must be a duration like 400d, 36h or 90m, from 1s to 36500d, not \"0d\""),
        (&["prune", "--db-url", url, "--older-than", "soon"], "--older-than: must be a duration like 400d, 36h or 90m, from 1s to 36500d, not \"soon\""),
        (&["prune", "--db-url", url, "--older-than", "1d", "--batch-size", "many"], "--batch-size: must be a whole number from 1 to 1000000"),
        (&["import"], "--db-url: required (or set DATABASE_URL)"),
        (&["import", "--db-url", url, "--on-error", "ignore"], "--on-error: must be stop or skip"),
        (&["import", "--db-url", url, "--received-from", "half"], "--received-from: must be full, truncated or none"),
        (&["import", "--db-url", url, "--batch-size", "0"], "--batch-size: must be a whole number from 1 to 10000"),
        (&["import", "--db-url", url, "a.jsonl", "--force"], "arguments: unexpected \"--force\"; see --help"),
        (&["export", "--db-url", url, "--all"], "arguments: unexpected \"--all\"; see --help"),
        (&["migrate", "--db-url", url, "--batch-size", "100001"], "--batch-size: must be a whole number from 1 to 100000"),
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

#[test]
fn a_duplicate_report_id_changes_no_derived_state() {
    let db = loaded(BASE);
    let before = derived(&db);
    assert_eq!(
        import(&db, &fixture_lines(BASE), &[]),
        "read 11 lines: 0 reports stored, 11 already stored, 0 skipped\n"
    );
    // The same reportIDs a day later, with other payloads: still duplicates.
    let other = json!({"clusterID": "cluster-a", "masterVersion": "v1.31.0", "nodes": []});
    let later = line(&(BASE + 86_400).to_string(), Some("fixture-2"), &other);
    assert_eq!(
        import(&db, &later, &[]),
        "read 1 lines: 0 reports stored, 1 already stored, 0 skipped\n"
    );
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    let body = json!({"metadata": {"reportID": "fixture-6"}, "payload": other});
    assert_eq!(c.post("/api/v1/stats", &body.to_string()).status, 204);
    assert_eq!(value(&db, "SELECT count(*) FROM report_log"), "11");
    assert_eq!(derived(&db), before);
}

#[test]
fn an_older_report_never_replaces_the_latest_but_counts_in_its_own_day() {
    let db = TestDb::new();
    let report = |version: &str, nodes: usize| {
        let node = json!({"status": {"nodeInfo": {"kubeletVersion": version}}});
        json!({"clusterID": "x", "masterVersion": version, "nodes": vec![node; nodes]})
    };
    // 2024-03-10 and, imported later, 2024-03-08.
    import(
        &db,
        &line(&BASE.to_string(), Some("new"), &report("v1.29.4", 3)),
        &[],
    );
    let latest = rows(&db, "SELECT * FROM cluster_latest");
    let nodes = rows(&db, "SELECT * FROM node_facts");
    import(
        &db,
        &line(
            &(BASE - 2 * 86_400).to_string(),
            Some("old"),
            &report("v1.27.1", 5),
        ),
        &[],
    );
    assert_eq!(rows(&db, "SELECT * FROM cluster_latest"), latest);
    assert_eq!(rows(&db, "SELECT * FROM node_facts"), nodes);
    assert_eq!(value(&db, "SELECT minor_version FROM clusters"), "v1.29");
    assert_eq!(
        rows(
            &db,
            "SELECT day, clusters, nodes FROM clusters_daily ORDER BY 1"
        ),
        table(&[&["2024-03-08", "1", "5"], &["2024-03-10", "1", "3"]])
    );
    assert_eq!(
        // Both days count at seen 2, the first moved there from seen 1.
        rows(
            &db,
            "SELECT day, value, seen, clusters, nodes FROM fleet_days \
                   WHERE dimension = 'minor_version' AND (clusters <> 0 OR nodes <> 0) ORDER BY 1"
        ),
        table(&[
            &["2024-03-08", "v1.27", "2", "1", "5"],
            &["2024-03-10", "v1.29", "2", "1", "3"]
        ])
    );
}

/// Two reports of cluster x on 2024-03-10, the first with 2 nodes of
/// v1.28, the later with 5 of v1.29, in `order` (indices into them).
fn same_day(order: [usize; 2]) -> Vec<String> {
    let report = |version: &str, nodes: usize| {
        let node = json!({"status": {"nodeInfo": {"kubeletVersion": version}}});
        json!({"clusterID": "x", "masterVersion": version, "nodes": vec![node; nodes]})
    };
    let lines = [
        line(
            &(BASE - 3600).to_string(),
            Some("morning"),
            &report("v1.28.3", 2),
        ),
        line(
            &(BASE + 3600).to_string(),
            Some("afternoon"),
            &report("v1.29.4", 5),
        ),
    ];
    order.iter().map(|&i| lines[i].clone()).collect()
}

/// What the day's rollups say, leaving out values no cluster has any more.
fn day_rollup(db: &TestDb) -> Vec<Vec<Option<String>>> {
    rows(
        db,
        "SELECT day, dimension, value, clusters, nodes FROM fleet_days \
         WHERE clusters <> 0 OR nodes <> 0 ORDER BY 1, 2, 3",
    )
}

fn want_afternoon() -> Vec<Vec<Option<String>>> {
    table(&[
        &["2024-03-10", "all", "", "1", "5"],
        &["2024-03-10", "distribution", "vanilla", "1", "5"],
        &["2024-03-10", "minor_version", "v1.29", "1", "5"],
        &["2024-03-10", "volunteer_version", "", "1", "5"],
    ])
}

#[test]
fn a_second_report_the_same_day_replaces_the_first_across_batches() {
    let db = TestDb::new();
    for l in same_day([0, 1]) {
        import(&db, &l, &[]);
    }
    assert_eq!(day_rollup(&db), want_afternoon());
    assert_eq!(
        rows(&db, "SELECT day, clusters, nodes FROM clusters_daily"),
        table(&[&["2024-03-10", "1", "5"]])
    );
    // A report between the two changes nothing: the day has a later one.
    let noon = json!({"clusterID": "x", "masterVersion": "v1.30.0"});
    import(&db, &line(&BASE.to_string(), Some("noon"), &noon), &[]);
    assert_eq!(day_rollup(&db), want_afternoon());
    assert_kept_figures_match_a_rebuild(&db);
}

#[test]
fn a_second_report_the_same_day_replaces_the_first_within_a_batch() {
    for order in [[0, 1], [1, 0]] {
        let db = TestDb::new();
        import(&db, &same_day(order).join("\n"), &[]);
        assert_eq!(day_rollup(&db), want_afternoon(), "order {order:?}");
        assert_eq!(value(&db, "SELECT count(*) FROM cluster_days"), "1");
        assert_kept_figures_match_a_rebuild(&db);
    }
}

/// Waits until `n` sessions wait for a lock.
fn wait_for_lock_waiters(db: &TestDb, n: i64) {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while value(db, sql).parse::<i64>().expect("a count") < n {
        assert!(
            std::time::Instant::now() < deadline,
            "no {n} sessions waiting for a lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn report_at(cluster: &str, at: i64) -> String {
    line(
        &at.to_string(),
        Some(&format!("{cluster}-{at}")),
        &json!({"clusterID": cluster}),
    ) + "\n"
}

#[test]
fn prune_deleting_a_cluster_two_writers_are_storing_counts_it_once() {
    let (db, t) = (TestDb::new(), now());
    import(
        &db,
        &(report_at("a", t - 3_600) + &report_at("x", t - 10 * 86_400)),
        &[],
    );
    // Another writer holds cluster a, so the next batch waits after
    // finding x stored and before locking it.
    let mut holder = db.client();
    let mut held = holder.transaction().expect("begin");
    held.execute(
        "SELECT FROM clusters WHERE cluster_id = 'a' FOR UPDATE",
        &[],
    )
    .expect("lock a");
    let db = &db;
    std::thread::scope(|s| {
        let batch = report_at("a", t - 60) + &report_at("x", t - 1_800);
        let first = s.spawn(move || import(db, &batch, &[]));
        wait_for_lock_waiters(db, 1);
        // Meanwhile prune deletes x, and a second writer stores x anew.
        let args = ["prune", "--db-url", &db.url, "--older-than", "5d"];
        assert!(collector(&args).status.success());
        import(db, &report_at("x", t - 1_200), &[]);
        held.commit().expect("release a");
        first.join().expect("the first writer");
    });
    assert_eq!(
        value(
            db,
            "SELECT string_agg(cluster_id, ' ' ORDER BY cluster_id) FROM clusters"
        ),
        "a x"
    );
    assert_kept_figures_match_a_rebuild(db);
}

#[test]
fn an_import_of_old_days_during_prune_keeps_the_figures_exact() {
    let (db, t) = (TestDb::new(), now());
    let old = t - 10 * 86_400;
    import(
        &db,
        &(report_at("a", t - 3_600) + &report_at("a", old) + &report_at("z", old)),
        &[],
    );
    // Prune locks a, then waits for z; an import of an old day of a waits
    // for prune.
    let mut holder = db.client();
    let mut held = holder.transaction().expect("begin");
    held.execute(
        "SELECT FROM clusters WHERE cluster_id = 'z' FOR UPDATE",
        &[],
    )
    .expect("lock z");
    let db = &db;
    std::thread::scope(|s| {
        let prune = s.spawn(move || {
            collector(&[
                "prune",
                "--db-url",
                &db.url,
                "--older-than",
                "5d",
                "--batch-size",
                "10",
            ])
        });
        wait_for_lock_waiters(db, 1);
        let late = report_at("a", old + 86_400);
        let import = s.spawn(move || import(db, &late, &[]));
        wait_for_lock_waiters(db, 2);
        held.commit().expect("release z");
        assert!(prune.join().expect("prune").status.success());
        import.join().expect("import");
    });
    assert_kept_figures_match_a_rebuild(db);
}

#[test]
fn a_value_sent_empty_and_missing_counts_its_cluster_once() {
    let db = TestDb::new();
    let node = |os: Option<&str>| json!({"status": {"nodeInfo": {"osImage": os}}});
    let p = json!({"clusterID": "c", "nodes": [node(Some("")), node(None)]});
    import(&db, &line(&BASE.to_string(), Some("r"), &p), &[]);
    assert_eq!(
        value(
            &db,
            "SELECT clusters || ' ' || nodes FROM fleet_latest WHERE facet = 'os_image'"
        ),
        "1 2"
    );
    assert_kept_figures_match_a_rebuild(&db);
}

#[test]
fn migration_2_builds_the_published_figures_from_a_database_at_version_1() {
    let db = loaded(BASE);
    // Days before, so that seen is more than 1 for some clusters.
    import(
        &db,
        &fixture_lines(BASE - 86_400).replace("fixture-", "before-"),
        &[],
    );
    assert_kept_figures_match_a_rebuild(&db);
    let kept = |db: &TestDb| {
        let latest = rows(
            db,
            "SELECT * FROM fleet_latest WHERE clusters <> 0 ORDER BY 1, 2, 3, 4",
        );
        let days = rows(
            db,
            "SELECT * FROM fleet_days WHERE clusters <> 0 ORDER BY 1, 2, 3, 4",
        );
        (latest, days)
    };
    let want = kept(&db);
    assert!(want.0.iter().any(|r| r[1] == s("2")), "{want:?}");
    // Back to what migration 1 made, holding the same reports.
    let v1 = include_str!("../migrations/001-insight.sql");
    let view = &v1[v1
        .find("CREATE VIEW clusters_daily")
        .expect("the view in 001")..];
    db.client()
        .batch_execute(&format!(
            "BEGIN; DROP VIEW clusters_daily; DROP TABLE fleet_latest; \
             DROP FUNCTION fleet_latest_rows, fleet_days_rows; \
             CREATE TABLE v1 AS SELECT day, dimension, value, sum(clusters)::bigint AS clusters, \
                 sum(nodes)::bigint AS nodes FROM fleet_days GROUP BY 1, 2, 3; \
             DROP TABLE fleet_days; ALTER TABLE v1 RENAME TO fleet_days; \
             ALTER TABLE fleet_days ADD PRIMARY KEY (day, dimension, value); {view} \
             DELETE FROM spartakus_migrations WHERE version = 2; COMMIT;"
        ))
        .expect("back to version 1");
    assert_eq!(
        import(&db, "", &[]),
        "read 0 lines: 0 reports stored, 0 already stored, 0 skipped\n"
    );
    assert_eq!(
        value(&db, "SELECT max(version) FROM spartakus_migrations"),
        "2"
    );
    assert_eq!(kept(&db), want);
}

#[test]
fn concurrent_writers_keep_the_published_figures_exact() {
    // Two imports at once, in batches of 7, over the same 30 clusters: each
    // cluster's reports split between them, one oldest first and the other
    // newest first, so new clusters race to be inserted, seen changes under
    // both, and older reports arrive after newer ones.
    let db = TestDb::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for cluster in 0..30 {
        for day in 0..9 {
            for half in 0..2 {
                let arch = ["amd64", "arm64"][day % 2];
                let version = ["v1.29.1", "v1.30.2", "v1.31.0"][(day + half) % 3];
                let node = json!({"status": {"nodeInfo": {
                    "kubeletVersion": "v1.29.1", "architecture": arch,
                    "osImage": format!("Ubuntu {}", (cluster + day) % 4)}}});
                let p = json!({
                    "clusterID": format!("c{cluster}"), "masterVersion": version,
                    "nodes": vec![node; 1 + (cluster + day + half) % 4]});
                let at =
                    BASE - i64::try_from(day * 86_400 + half * 3_600 + cluster).expect("small");
                let l = line(
                    &at.to_string(),
                    Some(&format!("{cluster}-{day}-{half}")),
                    &p,
                );
                if (cluster + day + half) % 2 == 0 {
                    a.push(l)
                } else {
                    b.push(l)
                }
            }
        }
    }
    a.reverse();
    let outs: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = [a.join("\n"), b.join("\n")]
            .into_iter()
            .map(|input| {
                let db = &db;
                s.spawn(move || import(db, &input, &["--batch-size", "7"]))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("import"))
            .collect()
    });
    for out in &outs {
        assert!(
            out.starts_with("read 270 lines: 270 reports stored, 0 already"),
            "{out}"
        );
    }
    assert_kept_figures_match_a_rebuild(&db);
    assert_eq!(
        value(
            &db,
            "SELECT sum(clusters) FROM fleet_latest WHERE facet = ''"
        ),
        "30"
    );
    // Every cluster was seen on 9 days: 7 at most are kept.
    assert_eq!(
        value(&db, "SELECT min(seen) FROM fleet_latest WHERE clusters > 0"),
        "7"
    );
    // A prune mid-way through a day removes what its clusters counted.
    let cutoff = BASE - 4 * 86_400 - 1_800;
    let args = [
        "prune",
        "--db-url",
        &db.url,
        "--older-than",
        &older_than(cutoff),
        "--batch-size",
        "4",
    ];
    let out = collector(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_kept_figures_match_a_rebuild(&db);
}

#[test]
fn export_then_import_round_trips_byte_for_byte() {
    let db = loaded(BASE);
    // Microseconds, a report without reportID, an address kept empty.
    let extra = [
        r#"{"metadata": {"received_at": "1710072000.000001", "received_from": "2001:db8::1", "reportID": "micro"}, "payload": {"clusterID": "cluster-m", "nodes": []}}"#,
        r#"{"metadata": {"received_at": "1710072000.5", "received_from": "192.0.2.7"}, "payload": {"clusterID": "cluster-m", "n": 1.50}}"#,
        r#"{"metadata": {"received_at": "1710072001.999999", "received_from": "", "volunteerVersion": "v0.3.0"}, "payload": {"clusterID": "cluster-n"}}"#,
    ];
    import(&db, &extra.join("\n"), &[]);
    let first = export(&db);
    assert_eq!(first.lines().count(), 14);
    assert!(
        first.contains(r#""received_at": "1710072000.000001""#),
        "{first}"
    );
    assert!(
        first.contains(r#""received_at": "1710072000.500000""#),
        "{first}"
    );

    let copy = TestDb::new();
    assert_eq!(
        import(&copy, &first, &[]),
        "read 14 lines: 14 reports stored, 0 already stored, 0 skipped\n"
    );
    assert_eq!(export(&copy), first);
    assert_eq!(derived(&copy), derived(&db));
    // Again: every line is known, also the four without reportID.
    assert_eq!(
        import(&copy, &first, &[]),
        "read 14 lines: 0 reports stored, 14 already stored, 0 skipped\n"
    );
    assert_eq!(export(&copy), first);
}

#[test]
fn reports_received_in_the_same_microsecond_keep_their_order_through_import() {
    // The later line is the later report, whatever its reportID.
    let at = "1710072000.123456";
    let lines = [
        line(
            at,
            Some("zz-first"),
            &json!({"clusterID": "t", "masterVersion": "v1.1.0"}),
        ),
        line(
            at,
            Some("aa-second"),
            &json!({"clusterID": "t", "masterVersion": "v1.2.0"}),
        ),
    ];
    let db = TestDb::new();
    import(&db, &lines.join("\n"), &[]);
    assert_eq!(
        value(&db, "SELECT master_version FROM cluster_latest"),
        "v1.2.0"
    );
    assert_eq!(value(&db, "SELECT minor_version FROM cluster_days"), "v1.2");
    let exported = export(&db);
    let order: Vec<&str> = exported
        .lines()
        .map(|l| {
            if l.contains("zz-first") {
                "first"
            } else {
                "second"
            }
        })
        .collect();
    assert_eq!(order, ["first", "second"]);
    let copy = TestDb::new();
    import(&copy, &exported, &[]);
    assert_eq!(
        value(&copy, "SELECT master_version FROM cluster_latest"),
        "v1.2.0"
    );
}

/// A temporary file of `contents`, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("spartakus-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write a temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn numbered(n: usize) -> String {
    line(
        &(BASE + n as i64).to_string(),
        Some(&format!("r{n}")),
        &json!({"clusterID": "c"}),
    )
}

#[test]
fn import_stops_at_a_bad_line_naming_it_and_keeps_the_lines_before() {
    let bad_lines: [(&str, String, &str); 5] = [
        ("json", "{\"metadata\": ".into(), "invalid JSON ("),
        (
            "at",
            r#"{"metadata": {"received_at": "yesterday"}, "payload": {"clusterID": "c"}}"#.into(),
            "metadata.received_at: required, unix seconds like 1764547200.123456",
        ),
        (
            "from",
            r#"{"metadata": {"received_at": "1710072000", "received_from": "gateway"}, "payload": {"clusterID": "c"}}"#.into(),
            "metadata.received_from: must be an IP address",
        ),
        (
            "payload",
            r#"{"metadata": {"received_at": "1710072000"}, "payload": {"clusterID": ""}}"#.into(),
            "payload.clusterID: required, a non-empty string",
        ),
        ("cap", format!("{{\"pad\": \"{}\"}}", "x".repeat((33 << 20) + 10)), "longer than 33620992 bytes"),
    ];
    for (name, bad, want) in &bad_lines {
        let contents = [
            numbered(1),
            numbered(2),
            numbered(3),
            bad.clone(),
            numbered(5),
        ]
        .join("\n");
        let file = TempFile::new(&format!("stop-{name}.jsonl"), contents.as_bytes());
        let db = TestDb::new();
        let out = collector(&["import", "--db-url", &db.url, file.path()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        let want = format!("spartakus-collector: import: {}:4: {want}", file.path());
        assert!(
            stderr.starts_with(&want),
            "{name}: want {want:?}, got {stderr:?}"
        );
        assert!(
            stderr.ends_with("(the lines before it are stored; --on-error skip goes on)\n"),
            "{name}: {stderr:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr:?}");
        assert_eq!(
            value(
                &db,
                "SELECT string_agg(report_id, ' ' ORDER BY id) FROM report_log"
            ),
            "r1 r2 r3"
        );

        let db = TestDb::new();
        let out = collector(&[
            "import",
            "--db-url",
            &db.url,
            "--on-error",
            "skip",
            file.path(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stdout(&out),
            "read 5 lines: 4 reports stored, 0 already stored, 1 skipped\n",
            "{name}"
        );
        let skipped = format!("spartakus-collector import: {}:4: skipped: ", file.path());
        assert!(stderr.starts_with(&skipped), "{name}: {stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr:?}");
        assert_eq!(
            value(
                &db,
                "SELECT string_agg(report_id, ' ' ORDER BY id) FROM report_log"
            ),
            "r1 r2 r3 r5"
        );
    }
}

#[test]
fn import_truncates_addresses_under_received_from_truncated() {
    let lines = [
        r#"{"metadata": {"received_at": "1710072000", "received_from": "192.0.2.77", "reportID": "v4"}, "payload": {"clusterID": "c"}}"#,
        r#"{"metadata": {"received_at": "1710072001", "received_from": "2001:db8:1:2:3:4:5:6", "reportID": "v6"}, "payload": {"clusterID": "c"}}"#,
    ];
    let db = TestDb::new();
    import(&db, &lines.join("\n"), &["--received-from", "truncated"]);
    assert_eq!(
        rows(
            &db,
            "SELECT received_from, metadata ->> 'received_from' FROM report_log ORDER BY id"
        ),
        table(&[
            &["192.0.2.0", "192.0.2.0"],
            &["2001:db8:1:2::", "2001:db8:1:2::"]
        ])
    );
    let exported = export(&db);
    assert!(
        !exported.contains("192.0.2.77") && !exported.contains(":5:6"),
        "{exported}"
    );
}

#[test]
fn an_account_secret_is_never_stored() {
    let secret = "s3cret-4f1d";
    let lines = [
        format!(
            r#"{{"metadata": {{"received_at": "1710072000", "reportID": "m", "accountSecret": "{secret}"}}, "payload": {{"clusterID": "c"}}}}"#
        ),
        format!(
            r#"{{"metadata": {{"received_at": "1710072001", "reportID": "p"}}, "payload": {{"clusterID": "c", "accountSecret": "{secret}"}}}}"#
        ),
    ];
    let db = TestDb::new();
    import(&db, &lines.join("\n"), &[]);
    assert_eq!(value(&db, "SELECT count(*) FROM report_log"), "2");
    let stored = format!(
        "SELECT count(*) FROM report_log WHERE metadata::text LIKE '%{secret}%' \
         OR payload::text LIKE '%{secret}%' OR metadata ? 'accountSecret' OR payload ? 'accountSecret'"
    );
    assert_eq!(value(&db, &stored), "0");
    assert!(!export(&db).contains(secret));
}

#[test]
fn importing_old_months_creates_their_partitions_and_boundaries_land_right() {
    let lines = [
        ("1698796800", "nov"),             // 2023-11-01T00:00:00Z
        ("1701388799.999999", "nov-last"), // 2023-11-30T23:59:59.999999Z
        ("1701388800", "dec"),             // 2023-12-01T00:00:00Z
        ("1706745599.999999", "jan-last"), // 2024-01-31T23:59:59.999999Z
        ("1706745600", "feb"),             // 2024-02-01T00:00:00Z
    ];
    let input: Vec<String> = lines
        .iter()
        .map(|(at, id)| line(at, Some(id), &json!({"clusterID": "p"})))
        .collect();
    let db = TestDb::new();
    import(&db, &input.join("\n"), &[]);
    let got = rows(
        &db,
        "SELECT report_id, tableoid::regclass::text FROM report_log ORDER BY received_at",
    );
    assert_eq!(
        got,
        table(&[
            &["nov", "report_log_2023_11"],
            &["nov-last", "report_log_2023_11"],
            &["dec", "report_log_2023_12"],
            &["jan-last", "report_log_2024_01"],
            &["feb", "report_log_2024_02"],
        ])
    );
    let partitions = "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits i \
                      JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'report_log'::regclass";
    assert_eq!(
        value(&db, partitions),
        "report_log_2023_11 report_log_2023_12 report_log_2024_01 report_log_2024_02 report_log_default"
    );
    assert_eq!(value(&db, "SELECT count(*) FROM report_log_default"), "0");
}

#[test]
fn reports_go_to_the_default_partition_only_when_their_month_cannot_be_made() {
    let db = TestDb::new();
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    // Attaching a partition locks the default partition; a reader holding
    // it makes the collector give up on this month's partition.
    let mut reader = db.client();
    reader
        .batch_execute("BEGIN; LOCK TABLE report_log_default IN ACCESS SHARE MODE")
        .expect("lock the default partition");
    let body = json!({"metadata": {"reportID": "while-locked"}, "payload": {"clusterID": "c"}});
    // The writer waits out its lock timeout on this month's partition and
    // the next one's, which may outlast the request's wait for its commit
    // (503); the report is stored either way.
    let status = c.post("/api/v1/stats", &body.to_string()).status;
    assert!(status == 204 || status == 503, "{status}");
    let placed = "SELECT tableoid::regclass::text FROM report_log WHERE report_id = 'while-locked'";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while rows(&db, placed).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.batch_execute("COMMIT").expect("unlock");
    assert_eq!(value(&db, placed), "report_log_default");
    // That month stays in the default partition, which holds its reports;
    // an import of another month gets its partition.
    let body = json!({"metadata": {"reportID": "after"}, "payload": {"clusterID": "c"}});
    assert_eq!(c.post("/api/v1/stats", &body.to_string()).status, 204);
    import(
        &db,
        &line("1698796800", Some("nov"), &json!({"clusterID": "p"})),
        &[],
    );
    assert_eq!(
        rows(
            &db,
            "SELECT report_id, tableoid::regclass::text FROM report_log ORDER BY id"
        ),
        table(&[
            &["while-locked", "report_log_default"],
            &["after", "report_log_default"],
            &["nov", "report_log_2023_11"],
        ])
    );
}

/// Expands the Grafana PostgreSQL data source's macros as it does:
/// `$__timeFilter(column)` is `column BETWEEN '<from>' AND '<to>'`,
/// `$__timeFrom()` and `$__timeTo()` the quoted instants, RFC 3339 in UTC.
/// The dashboard uses no other; a new one fails the test until added here.
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
    let out = out
        .replace("$__timeFrom()", &format!("'{from}'"))
        .replace("$__timeTo()", &format!("'{to}'"));
    assert!(!out.contains('$'), "unexpanded macro or variable in {out}");
    out
}

/// Every panel's title and its queries.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        for target in panel["targets"].as_array().expect("targets") {
            let sql = target["rawSql"].as_str().expect("rawSql");
            out.push((title.to_string(), sql.to_string()));
        }
    }
    out
}

#[test]
fn every_dashboard_query_runs_against_the_views() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_SPARTAKUS");
    assert!(dashboard["schemaVersion"].as_i64().is_some_and(|v| v >= 36));
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(panel["gridPos"]["w"].is_u64(), "{title}: gridPos");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    let db = loaded(BASE);
    let mut ran = std::collections::BTreeMap::new();
    for (title, sql) in dashboard_queries() {
        let sql = expand_macros(&sql, "2024-01-01T00:00:00Z", "2024-03-11T00:00:00Z");
        let got = rows(&db, &sql);
        assert!(!got.is_empty(), "{title}: no rows from {sql}");
        ran.insert(title, got);
    }
    let column = |title: &str, i: usize| -> Vec<String> {
        ran.get(title)
            .unwrap_or_else(|| panic!("no panel {title:?}"))
            .iter()
            .map(|r| r[i].clone().unwrap_or_default())
            .collect()
    };
    assert_eq!(column("Clusters", 0), ["7"]);
    assert_eq!(column("Nodes", 0), ["11"]);
    assert_eq!(column("Nodes with accelerators", 0), ["1"]);
    assert_eq!(column("Active clusters per day", 1), ["1", "1", "3", "4"]);
    assert_eq!(column("Nodes per day", 1), ["1", "2", "6", "5"]);
    assert_eq!(
        column("Active clusters per day", 0),
        [
            "2024-01-25 00:00:00+00",
            "2024-03-08 00:00:00+00",
            "2024-03-09 00:00:00+00",
            "2024-03-10 00:00:00+00"
        ]
    );
    assert_eq!(column("Architectures", 0), ["amd64", "(unknown)", "arm64"]);
    assert_eq!(column("Architectures", 1), ["6", "4", "1"]);
    assert_eq!(column("Architectures", 2), ["4", "3", "1"]);
    assert_eq!(
        column("Distributions", 0),
        ["vanilla", "eks", "unknown", "aks"]
    );
    assert_eq!(column("Accelerators", 0), ["nvidia.com/gpu"]);
    assert_eq!(column("Accelerators", 1), ["4"]);
    assert_eq!(
        column("Volunteer versions", 0),
        ["(unknown)", "v0.3.0", "v1.0.0"]
    );
    let minors = &ran["Clusters by minor version per day"];
    assert!(
        minors.contains(&vec![s("2024-03-10 00:00:00+00"), s("v1.29"), s("2")]),
        "{minors:?}"
    );
    for want in [
        "Master versions",
        "Minor versions",
        "Kubelet versions",
        "OS images",
        "Container runtimes",
        "Operating systems",
        "Cloud providers",
        "Clusters by distribution per day",
        "Clusters with accelerators per day",
    ] {
        assert!(ran.contains_key(want), "no panel {want:?}");
    }
}

#[test]
fn the_dashboards_per_day_queries_read_only_the_days_asked_for() {
    let db = loaded(BASE);
    let mut c = db.client();
    // Planner costs on a fixture table would favour a scan of all of it;
    // without sequential scans the plan shows whether the filter on `day`
    // gets down to fleet_days' key, as it must for years of days.
    c.batch_execute("SET enable_seqscan = off").expect("set");
    let mut checked = 0;
    for (title, sql) in dashboard_queries() {
        if !sql.contains("clusters_daily") && !sql.contains("fleet_days") {
            continue;
        }
        let sql = expand_macros(&sql, "2024-03-09T00:00:00Z", "2024-03-11T00:00:00Z");
        let plan: Vec<String> = c
            .query(&format!("EXPLAIN {sql}"), &[])
            .expect("explain")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("fleet_days_pkey") && plan.contains("Index Cond: ((day >="),
            "{title}: {sql}\n{plan}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "the per-day panels: {checked}");
}
