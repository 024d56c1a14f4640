//! `GET /stats` and the usage gauges against a real PostgreSQL and the real
//! binary: k-anonymity (a cluster with unique values shows nowhere, K−1
//! against K clusters, D−1 against D days), the flags, the query's bounds,
//! the JSON's shape, the cache (one computation a minute however many ask)
//! and shedding. Reports get in through `spartakus-collector import`, with
//! received_at on the days a test needs.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    i64::try_from(secs).expect("fits i64")
}

/// What one cluster reports; every field ends up in a breakdown.
#[derive(Clone, Copy)]
struct Spec {
    master: &'static str,
    os: &'static str,
    runtime: &'static str,
    arch: &'static str,
    cloud: &'static str,
    accelerator: &'static str,
    volunteer: &'static str,
    nodes: usize,
}

const COMMON: Spec = Spec {
    master: "v1.29.4",
    os: "Ubuntu 22.04.4 LTS",
    runtime: "containerd://1.7.11",
    arch: "amd64",
    cloud: "aws",
    accelerator: "nvidia.com/gpu",
    volunteer: "0.9.0",
    nodes: 2,
};

/// Every value differs from COMMON's, in every field.
const UNIQUE: Spec = Spec {
    master: "v1.17.0+k3s1",
    os: "Uniquely Forged OS 1.0",
    runtime: "unique-runtime://9.9",
    arch: "s390x",
    cloud: "unique-cloud",
    accelerator: "habana.ai/gaudi",
    volunteer: "unique-volunteer-7.7.7",
    nodes: 3,
};

/// The strings of UNIQUE that no output may hold (the distribution k3s and
/// the minor version v1.17 are derived from its master version).
const UNIQUE_STRINGS: [&str; 8] = [
    "v1.17",
    "k3s",
    "Uniquely Forged OS",
    "unique-runtime",
    "s390x",
    "unique-cloud",
    "habana",
    "unique-volunteer",
];

/// One import line: `cluster`'s report at `at`.
fn line(cluster: &str, at: i64, s: &Spec) -> String {
    let node = json!({
        "cloudProvider": s.cloud,
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", s.accelerator: "1"},
            "nodeInfo": {"osImage": s.os, "kernelVersion": "5.15.0", "kubeletVersion": s.master,
                         "containerRuntimeVersion": s.runtime, "operatingSystem": "linux",
                         "architecture": s.arch}
        }
    });
    json!({
        "metadata": {"received_at": at.to_string(), "received_from": "127.0.0.1",
                     "reportID": format!("{cluster}-{at}"), "volunteerVersion": s.volunteer},
        "payload": {"clusterID": cluster, "masterVersion": s.master,
                    "nodes": vec![node; s.nodes]}
    })
    .to_string()
}

/// `count` clusters named `<prefix>-<i>`, each reporting once on each of the
/// last `days` UTC days (today included).
fn fleet(prefix: &str, count: usize, days: i64, s: &Spec) -> String {
    let t = now();
    let mut out = String::new();
    for i in 0..count {
        for d in 0..days {
            out.push_str(&line(&format!("{prefix}-{i}"), t - d * DAY, s));
            out.push('\n');
        }
    }
    out
}

fn import(db: &TestDb, lines: &str) {
    import_lines(db, lines.as_bytes(), &[]);
}

/// A collector with --stats on (and `extra`), ready.
fn serving(db: &TestDb, extra: &[&str]) -> Collector {
    let mut args = vec!["--stats", "on"];
    args.extend_from_slice(extra);
    let c = Collector::start(&db.url, &args);
    c.wait_ready(Duration::from_secs(20));
    c
}

/// GET `path` until it is no longer 503 (the first computation).
fn fetch(c: &Collector, path: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(c.addr, path);
        if r.status != 503 || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn figures(c: &Collector, query: &str) -> Value {
    let r = fetch(c, &format!("/stats?format=json{query}"));
    assert_eq!(r.status, 200, "{r:?}");
    serde_json::from_str(&r.body).expect("JSON figures")
}

fn breakdown<'a>(f: &'a Value, key: &str) -> &'a Value {
    f["breakdowns"]
        .as_array()
        .expect("breakdowns")
        .iter()
        .find(|b| b["key"] == key)
        .unwrap_or_else(|| panic!("no breakdown {key} in {f}"))
}

/// The shown values of a breakdown, with their clusters.
fn rows(f: &Value, key: &str) -> Vec<(String, i64)> {
    breakdown(f, key)["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let v = r["value"].as_str().expect("value").to_string();
            (v, r["clusters"].as_i64().expect("clusters"))
        })
        .collect()
}

#[test]
fn a_cluster_with_unique_values_in_every_field_appears_nowhere() {
    let db = TestDb::new();
    import(
        &db,
        &(fleet("common", 5, 3, &COMMON) + &fleet("unique", 1, 3, &UNIQUE)),
    );
    let c = serving(&db, &[]);
    let json = fetch(&c, "/stats?format=json").body;
    let html = fetch(&c, "/stats").body;
    let metrics = get(c.addr, "/metrics").body;
    for (what, text) in [("JSON", &json), ("HTML", &html), ("metrics", &metrics)] {
        for s in UNIQUE_STRINGS {
            assert!(!text.contains(s), "{s:?} in the {what}:\n{text}");
        }
        // And the common values are there, so the check means something.
        for s in [
            "v1.29",
            "vanilla",
            "Ubuntu 22.04.4 LTS",
            "amd64",
            "aws",
            "nvidia.com/gpu",
        ] {
            assert!(text.contains(s), "{s:?} missing from the {what}:\n{text}");
        }
    }
    let f: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        (f["clusters"].as_i64(), f["nodes"].as_i64()),
        (Some(6), Some(13))
    );
    for key in [
        "os_image",
        "distribution",
        "volunteer_version",
        "accelerator",
    ] {
        assert_eq!(breakdown(&f, key)["other"]["clusters"], 1, "{key}");
    }
    for line in [
        "spartakus_usage_clusters 6",
        "spartakus_usage_clusters_by_minor_version{minor_version=\"v1.29\"} 5",
        "spartakus_usage_clusters_by_minor_version{minor_version=\"other\"} 1",
        "spartakus_usage_nodes_by_distribution{distribution=\"vanilla\"} 10",
        "spartakus_usage_nodes_by_os_image{os_image=\"other\"} 3",
        "spartakus_usage_devices_by_accelerator{accelerator=\"nvidia.com/gpu\"} 10",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    promtool_check(&metrics);
}

#[test]
fn a_value_shows_with_k_clusters_and_not_with_k_minus_one() {
    let db = TestDb::new();
    let five = Spec {
        os: "five-os",
        ..COMMON
    };
    let four = Spec {
        os: "four-os",
        ..COMMON
    };
    let three = Spec {
        os: "three-os",
        ..COMMON
    };
    import(
        &db,
        &(fleet("five", 5, 2, &five) + &fleet("four", 4, 2, &four) + &fleet("three", 3, 2, &three)),
    );
    // Default K = 5.
    let c = serving(&db, &[]);
    let f = figures(&c, "");
    assert_eq!(rows(&f, "os_image"), [("five-os".to_string(), 5)]);
    let other = &breakdown(&f, "os_image")["other"];
    assert_eq!(
        (other["clusters"].as_i64(), other["values"].as_i64()),
        (Some(7), Some(2))
    );
    drop(c);
    // K = 4: four-os shows too, three-os still does not.
    let c = serving(&db, &["--min-clusters", "4"]);
    let f = figures(&c, "");
    assert_eq!(
        rows(&f, "os_image"),
        [("five-os".to_string(), 5), ("four-os".to_string(), 4)]
    );
    let all = fetch(&c, "/stats").body + &get(c.addr, "/metrics").body;
    assert!(!all.contains("three-os"), "{all}");
}

#[test]
fn clusters_seen_on_fewer_than_min_days_do_not_count() {
    let db = TestDb::new();
    let three = Spec {
        os: "three-days-os",
        ..COMMON
    };
    let two = Spec {
        os: "two-days-os",
        ..COMMON
    };
    import(
        &db,
        &(fleet("three", 5, 3, &three) + &fleet("two", 5, 2, &two)),
    );
    let c = serving(&db, &["--min-days", "3"]);
    let f = figures(&c, "&days=7");
    assert_eq!(f["clusters"], 5, "{f}");
    assert_eq!(rows(&f, "os_image"), [("three-days-os".to_string(), 5)]);
    assert_eq!(breakdown(&f, "os_image")["other"]["clusters"], 0);
    let all = fetch(&c, "/stats").body + &get(c.addr, "/metrics").body;
    assert!(!all.contains("two-days-os"), "{all}");
    drop(c);
    // At --min-days 2 both fleets count.
    let c = serving(&db, &["--min-days", "2"]);
    let f = figures(&c, "&days=7");
    assert_eq!(f["clusters"], 10, "{f}");
}

#[test]
fn one_cluster_over_five_days_counts_once_and_a_day_below_k_shows_nothing() {
    let db = TestDb::new();
    // Five clusters on the 4 days before today; four of them today too.
    let t = now();
    let mut lines = String::new();
    for i in 0..5 {
        for d in 0..5 {
            if d == 0 && i == 4 {
                continue;
            }
            lines.push_str(&line(&format!("c-{i}"), t - d * DAY, &COMMON));
            lines.push('\n');
        }
    }
    import(&db, &lines);
    let c = serving(&db, &[]);
    let f = figures(&c, "&days=7");
    assert_eq!(
        (f["clusters"].as_i64(), f["nodes"].as_i64()),
        (Some(5), Some(10))
    );
    assert_eq!(rows(&f, "minor_version"), [("v1.29".to_string(), 5)]);
    let daily = f["daily"].as_array().expect("daily");
    assert_eq!(daily.len(), 7);
    let clusters: Vec<Value> = daily.iter().map(|d| d["clusters"].clone()).collect();
    assert_eq!(
        clusters,
        [
            json!(null),
            json!(null),
            json!(5),
            json!(5),
            json!(5),
            json!(5),
            json!(null)
        ]
    );
    let adoption = f["adoption"].as_array().expect("adoption");
    assert_eq!(adoption[0]["value"], "v1.29");
    assert_eq!(adoption[0]["clusters"], json!([0, 0, 5, 5, 5, 5, 0]));
    assert_eq!(adoption.last().expect("other")["value"], "other");
}

#[test]
fn stats_off_is_404_and_the_root_does_not_mention_it() {
    let db = TestDb::new();
    import(&db, &fleet("c", 5, 2, &COMMON));
    let c = Collector::start(&db.url, &[]);
    c.wait_ready(Duration::from_secs(20));
    assert_eq!(get(c.addr, "/stats").status, 404);
    assert_eq!(get(c.addr, "/stats?format=json").status, 404);
    let root: Value = serde_json::from_str(&get(c.addr, "/").body).expect("JSON");
    assert!(root.get("stats").is_none(), "{root}");
    assert!(!get(c.addr, "/metrics").body.contains("spartakus_usage_"));
    drop(c);
    let c = serving(&db, &[]);
    let root: Value = serde_json::from_str(&get(c.addr, "/").body).expect("JSON");
    assert_eq!(root["stats"], "/stats");
}

#[test]
fn the_query_is_checked_and_answers_have_their_types() {
    let db = TestDb::new();
    import(&db, &fleet("c", 5, 2, &COMMON));
    let c = serving(&db, &[]);
    for q in [
        "days=0",
        "days=1",
        "days=31",
        "days=91",
        "days=abc",
        "days=7&days=7",
    ] {
        let r = get(c.addr, &format!("/stats?{q}"));
        assert_eq!(r.status, 400, "{q}: {r:?}");
        assert!(r.message().starts_with("days: "), "{q}: {}", r.message());
    }
    let r = get(c.addr, "/stats?format=xml");
    assert_eq!(
        (r.status, r.message()),
        (400, "format: must be html or json".into())
    );
    let html = fetch(&c, "/stats?days=7");
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert!(html.header("Content-Security-Policy").is_some(), "{html:?}");
    let head = request(c.addr, "HEAD", "/stats", &[], b"");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let post = request(c.addr, "POST", "/stats", &[], b"");
    assert_eq!(post.status, 405);
    let json = fetch(&c, "/stats?format=json&days=90");
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    let f: Value = serde_json::from_str(&json.body).expect("JSON");
    assert_eq!(
        (
            f["days"].as_i64(),
            f["min_clusters"].as_i64(),
            f["min_days"].as_i64()
        ),
        (Some(90), Some(5), Some(2))
    );
    assert!(f["computed_at"]
        .as_str()
        .is_some_and(|t| t.len() == 20 && t.ends_with('Z')));
    assert_eq!(f["daily"].as_array().map(Vec::len), Some(90));
    let keys: Vec<&str> = f["breakdowns"]
        .as_array()
        .expect("breakdowns")
        .iter()
        .map(|b| b["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        keys,
        [
            "minor_version",
            "distribution",
            "cloud_provider",
            "os_image",
            "container_runtime",
            "architecture",
            "accelerator",
            "volunteer_version"
        ]
    );
    let b = breakdown(&f, "distribution");
    assert_eq!(
        b["rows"],
        json!([{"value": "vanilla", "clusters": 5, "nodes": 10}])
    );
    assert_eq!(b["other"], json!({"clusters": 0, "nodes": 0, "values": 0}));
    assert!(b["title"].is_string());
}

fn counter(c: &Collector, name: &str) -> i64 {
    let m = get(c.addr, "/metrics").body;
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{m}"))
}

#[test]
fn many_concurrent_requests_cause_one_computation_per_window() {
    let db = TestDb::new();
    import(&db, &fleet("c", 5, 2, &COMMON));
    let c = serving(&db, &[]);
    let statuses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                for _ in 0..10 {
                    let r = get(c.addr, "/stats?format=json");
                    statuses.lock().expect("lock").push(r.status);
                }
            });
        }
    });
    let statuses = statuses.into_inner().expect("lock");
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    // The scrape reads the same 30-day figures.
    assert_eq!(counter(&c, "spartakus_stats_computations_total"), 1);
    assert_eq!(fetch(&c, "/stats?days=7").status, 200);
    assert_eq!(counter(&c, "spartakus_stats_computations_total"), 2);
}

#[test]
fn a_flood_of_stats_gets_503s_while_reports_are_stored_promptly() {
    let db = TestDb::new();
    import(&db, &fleet("c", 5, 2, &COMMON));
    let c = serving(&db, &[]);
    assert_eq!(fetch(&c, "/stats").status, 200);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (counts, slowest) = std::thread::scope(|s| {
        let flood: Vec<_> = (0..12)
            .map(|_| {
                s.spawn(|| {
                    let (mut ok, mut shed) = (0, 0);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = get(c.addr, "/stats");
                        match r.status {
                            200 => ok += 1,
                            503 => {
                                assert_eq!(r.header("Retry-After"), Some("1"), "{r:?}");
                                shed += 1;
                            }
                            other => panic!("/stats answered {other}"),
                        }
                    }
                    (ok, shed)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let mut slowest = Duration::ZERO;
        for i in 0..30 {
            let body = format!(
                r#"{{"metadata": {{"reportID": "flood-{i}"}}, "payload": {{"clusterID": "c"}}}}"#
            );
            let started = Instant::now();
            assert_eq!(c.post("/api/v1/stats", &body).status, 204);
            slowest = slowest.max(started.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let counts: Vec<(u32, u32)> = flood
            .into_iter()
            .map(|t| t.join().expect("flood"))
            .collect();
        (counts, slowest)
    });
    let shed: u32 = counts.iter().map(|c| c.1).sum();
    let ok: u32 = counts.iter().map(|c| c.0).sum();
    assert!(shed > 0, "no /stats was shed: {ok} answered");
    assert!(
        slowest < Duration::from_secs(2),
        "a report took {slowest:?} during the flood"
    );
    assert!(counter(&c, "spartakus_stats_shed_total") >= i64::from(shed));
}

#[test]
fn an_imported_older_report_adds_its_day_without_replacing_the_latest_state() {
    let db = TestDb::new();
    let t = now();
    import(&db, &line("c-0", t, &COMMON));
    let old = Spec {
        master: "v1.28.2",
        os: "older-os",
        ..COMMON
    };
    // Older reports, one a day for 9 days before today, in one import.
    let lines: String = (1..10)
        .map(|d| line("c-0", t - d * DAY, &old) + "\n")
        .collect();
    import(&db, &lines);
    let mut client = db.client();
    let row = client
        .query_one(
            "SELECT c.minor_version, c.report = max(l.id), \
                    array(SELECT to_char(d, 'YYYY-MM-DD') FROM unnest(c.recent_days) AS d), \
                    array(SELECT DISTINCT os_image FROM cluster_nodes) \
             FROM clusters c, report_log l GROUP BY c.cluster_id",
            &[],
        )
        .expect("the cluster");
    let (minor, stored_is_the_newest_id): (Option<String>, bool) = (row.get(0), row.get(1));
    assert_eq!(minor.as_deref(), Some("v1.29"));
    // The latest report stayed the first one (the others got greater ids).
    assert!(!stored_is_the_newest_id);
    let days: Vec<String> = row.get(2);
    let want: Vec<String> = client
        .query_one(
            "SELECT array(SELECT to_char((now() AT TIME ZONE 'UTC')::date - i, 'YYYY-MM-DD') \
             FROM generate_series(0, 6) AS i ORDER BY i)",
            &[],
        )
        .expect("days")
        .get(0);
    assert_eq!(days, want);
    let os: Vec<Option<String>> = row.get(3);
    assert_eq!(os, [Some(COMMON.os.to_string())]);
}

#[test]
fn a_cluster_with_one_day_too_few_is_subtracted_from_the_daily_series_exactly() {
    let db = TestDb::new();
    let new = Spec {
        master: "v1.30.1",
        nodes: 7,
        ..COMMON
    };
    import(
        &db,
        &(fleet("counted", 5, 3, &COMMON) + &fleet("new", 1, 2, &new)),
    );
    let c = serving(&db, &["--min-days", "3"]);
    let f = figures(&c, "&days=7");
    assert_eq!(
        (f["clusters"].as_i64(), f["nodes"].as_i64()),
        (Some(5), Some(10))
    );
    let daily = f["daily"].as_array().expect("daily");
    let got: Vec<(Value, Value)> = daily
        .iter()
        .map(|d| (d["clusters"].clone(), d["nodes"].clone()))
        .collect();
    let none = (json!(null), json!(null));
    let five = (json!(5), json!(10));
    assert_eq!(
        got,
        [
            none.clone(),
            none.clone(),
            none.clone(),
            none,
            five.clone(),
            five.clone(),
            five
        ]
    );
    let adoption = f["adoption"].as_array().expect("adoption");
    let series: Vec<(Value, Value)> = adoption
        .iter()
        .map(|s| (s["value"].clone(), s["clusters"].clone()))
        .collect();
    assert_eq!(
        series,
        [
            (json!("v1.29"), json!([0, 0, 0, 0, 5, 5, 5])),
            (json!("other"), json!([0, 0, 0, 0, 0, 0, 0]))
        ]
    );
    assert_eq!(rows(&f, "minor_version"), [("v1.29".to_string(), 5)]);
}

#[test]
fn a_cluster_seen_on_d_days_counts_in_a_window_that_holds_only_one_of_them() {
    let db = TestDb::new();
    let weekly = Spec {
        os: "weekly-os",
        ..COMMON
    };
    let once = Spec {
        os: "once-os",
        ..COMMON
    };
    // Five clusters that report every two weeks, today and 14 days ago;
    // five more seen only today.
    let t = now();
    let mut lines = String::new();
    for i in 0..5 {
        for at in [t, t - 14 * DAY] {
            lines.push_str(&(line(&format!("weekly-{i}"), at, &weekly) + "\n"));
        }
        lines.push_str(&(line(&format!("once-{i}"), t, &once) + "\n"));
    }
    import(&db, &lines);
    let c = serving(&db, &[]);
    let f = figures(&c, "&days=7");
    assert_eq!(f["clusters"], 5, "{f}");
    assert_eq!(rows(&f, "os_image"), [("weekly-os".to_string(), 5)]);
    let daily = f["daily"].as_array().expect("daily");
    assert_eq!(daily.last().expect("today")["clusters"], 5, "{f}");
    let all = fetch(&c, "/stats").body + &get(c.addr, "/metrics").body;
    assert!(!all.contains("once-os"), "{all}");
}
