//! `--once --spread`: the wait before the report is this cluster's slot, the nodes are read
//! after it, and SIGTERM ends it at once with exit 1.

mod common;

use std::process::Command;
use std::time::Duration;

use common::collector::Collector;
use common::kubeapi::KubeApi;
use common::{finish, kube_flags, run, volunteer, TempDir, TOKEN};
use spartakus_volunteer::spread;

const LIMIT: Duration = Duration::from_secs(20);

/// A cluster id whose slot in `spread` is at least `at_least`.
fn cluster_with_slot(spread: Duration, at_least: Duration) -> (String, Duration) {
    (0..10_000)
        .map(|n| format!("spread-test-{n}"))
        .map(|id| {
            let slot = spread::slot(&id, spread);
            (id, slot)
        })
        .find(|(_, slot)| *slot >= at_least)
        .expect("some id has a late slot")
}

fn args(api: &KubeApi, dir: &TempDir, collector: &str, id: &str, spread: &str) -> Vec<String> {
    let mut args = kube_flags(api, dir);
    args.extend(
        [
            "--once",
            "--collector",
            collector,
            "--cluster-id",
            id,
            "--spread",
            spread,
        ]
        .map(String::from),
    );
    args
}

#[test]
fn once_waits_the_clusters_slot_before_reading_the_nodes() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let (id, slot) = cluster_with_slot(Duration::from_secs(2), Duration::from_millis(1200));
    let args = args(&api, &dir, &collector.url, &id, "2s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(0).expect_stderr("waiting");
    assert!(
        out.elapsed >= slot,
        "ran {:?}, the slot is {slot:?}\n{}",
        out.elapsed,
        out.streams()
    );
    let posted = collector.posted();
    assert_eq!(posted.len(), 1, "{}", out.streams());
    assert_eq!(posted[0].json()["payload"]["clusterID"], id.as_str());
    assert_eq!(api.count("/api/v1/nodes"), 3, "7 nodes in pages of 3");
}

#[test]
fn sigterm_during_the_spread_wait_exits_1_at_once_without_reading_nodes() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let (id, _) = cluster_with_slot(Duration::from_secs(3600), Duration::from_secs(600));
    let args = args(&api, &dir, &collector.url, &id, "1h");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = volunteer(&args).spawn().expect("start spartakus-volunteer");
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    let out = finish(child, Duration::from_secs(5));
    out.expect_code(1)
        .expect_stderr("waiting")
        .expect_stderr("interrupted");
    assert_eq!(api.count("/api/v1/nodes"), 0, "{}", out.streams());
    assert!(collector.posted().is_empty());
}
