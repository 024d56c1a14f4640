//! End to end: the volunteer reads the test Kubernetes API over HTTPS, posts
//! to the real collector, and the collector commits a row to a real
//! PostgreSQL whose payload is exactly what `--dry-run` shows the operator.

mod common;
#[path = "../../collector/tests/common/mod.rs"]
mod pg;

use common::kubeapi::KubeApi;
use common::{kube_flags, run, volunteer, TempDir, TOKEN};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_report_travels_from_the_api_through_the_collector_into_postgresql() {
    let db = pg::TestDb::new();
    let collector = pg::Collector::start(&db.url, &[]);
    collector.wait_ready(Duration::from_secs(20));
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let flags = kube_flags(&api, &dir);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let dry = run(volunteer(&flags).arg("--dry-run"), LIMIT);
    dry.expect_code(0).expect_no_token();
    let shown = dry.json();

    let url = format!("http://{}", collector.addr);
    let once = run(
        volunteer(&flags).args(["--once", "--collector", &url]),
        LIMIT,
    );
    once.expect_code(0).expect_no_token();

    let rows = db
        .client()
        .query(
            "SELECT cluster_id, report_id, metadata::text, payload::text FROM report_log",
            &[],
        )
        .expect("query reports");
    assert_eq!(rows.len(), 1, "one report stored\n{}", collector.log());
    let json = |i: usize| -> Value { serde_json::from_str(rows[0].get(i)).expect("jsonb") };
    let (metadata, payload) = (json(2), json(3));
    assert_eq!(
        payload, shown["payload"],
        "stored payload differs from --dry-run's"
    );
    assert_eq!(payload["nodes"].as_array().map(Vec::len), Some(7));
    let cluster_id: String = rows[0].get(0);
    assert_eq!(Value::from(cluster_id), shown["payload"]["clusterID"]);
    let report_id: Option<String> = rows[0].get(1);
    assert_eq!(report_id.as_deref(), metadata["reportID"].as_str());
    assert_eq!(
        metadata["volunteerVersion"],
        shown["metadata"]["volunteerVersion"]
    );
    assert_eq!(metadata["received_from"], "127.0.0.1");
    assert!(metadata["received_at"].is_string());
}
