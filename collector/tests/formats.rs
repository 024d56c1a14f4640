//! The report shapes earlier spartakus clients sent, through the real
//! collector binary over HTTP into PostgreSQL: what is stored of each, and
//! that an `accountSecret` is stored nowhere. Also `GET /`, which load
//! balancers check.
//!
//! The helpers read every table and view the collector's schema has, so a
//! check added on a new view (`relation_rows`) needs no new helper.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The secret each report sends; it must not be stored anywhere.
const CANARY: &str = "s3cr3t-canary-7f1d";

fn ready(db: &TestDb, extra: &[&str]) -> Collector {
    let c = Collector::start(&db.url, extra);
    c.wait_ready(Duration::from_secs(20));
    c
}

/// Posts `body` to `path` and expects it stored (204).
fn stored(c: &Collector, path: &str, body: &str) {
    let reply = c.post(path, body);
    assert_eq!(reply.status, 204, "{path}: {reply:?}\n{}", c.log());
}

/// Every row of a table or view, as JSON, in the database's order.
fn relation_rows(db: &TestDb, relation: &str) -> Vec<Value> {
    db.client()
        .query(
            &format!("SELECT row_to_json(r)::text FROM {relation} r"),
            &[],
        )
        .unwrap_or_else(|e| panic!("read {relation}: {e}"))
        .iter()
        .map(|row| serde_json::from_str(row.get(0)).expect("row_to_json is JSON"))
        .collect()
}

/// The tables and views of the collector's schema.
fn relations(db: &TestDb) -> Vec<String> {
    db.client()
        .query(
            "SELECT quote_ident(table_name) FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY table_name",
            &[],
        )
        .expect("list relations")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Fails naming each relation whose rows hold `needle` anywhere.
fn assert_nowhere(db: &TestDb, needle: &str) {
    let all = relations(db);
    assert!(
        all.iter().any(|r| r == "report_log"),
        "no report_log in {all:?}"
    );
    for relation in all {
        for row in relation_rows(db, &relation) {
            assert!(
                !row.to_string().contains(needle),
                "{needle:?} stored in {relation}: {row}"
            );
        }
    }
}

/// The stored reports: their payload and metadata, oldest first.
fn reports(db: &TestDb) -> Vec<(Value, Value)> {
    db.client()
        .query(
            "SELECT payload::text, metadata::text FROM report_log ORDER BY id",
            &[],
        )
        .expect("query reports")
        .iter()
        .map(|row| {
            let json = |i| serde_json::from_str(row.get(i)).expect("jsonb as text");
            (json(0), json(1))
        })
        .collect()
}

/// node_facts, the view over the state derived at ingest: cluster, OS
/// image, kubelet version, CPU in millicores, memory in bytes.
type NodeFact = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

fn node_facts(db: &TestDb) -> Vec<NodeFact> {
    db.client()
        .query(
            "SELECT cluster_id, os_image, kubelet_version, cpu_millicores, memory_bytes \
             FROM node_facts ORDER BY 1, 2",
            &[],
        )
        .expect("query node_facts")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// The seed's and the starter format's one node, as node_facts reads it.
fn coreos_node(cluster: &str) -> NodeFact {
    let (os, kubelet) = ("CoreOS 738.1.0".to_string(), "v1.0.3".to_string());
    (
        cluster.into(),
        Some(os),
        Some(kubelet),
        Some(1000),
        Some(505_020 * 1024),
    )
}

#[test]
fn the_seed_go_volunteers_capitalised_report_is_stored_with_its_payload() {
    let db = TestDb::new();
    let c = ready(&db, &[]);
    // What the seed volunteer's json.Marshal made of a report.Record: Go's
    // field names, since its MarshalJSON had a pointer receiver.
    let payload = json!({
        "clusterID": "612e0f99-1912-4647-831d-ba4c3d918b66",
        "nodes": [{"status": {"capacity": {"cpu": "1", "memory": "505020Ki", "pods": "40"},
            "nodeInfo": {"osImage": "CoreOS 738.1.0", "kernelVersion": "4.0.7-coreos-r2",
                "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.6.2"}}}]
    });
    let body = json!({
        "AccountID": "238dcbc5-4562-4fe3-9d8b-dc67911a7376",
        "AccountSecret": CANARY,
        "Metadata": {"timestamp": "1437174715"},
        "Payload": payload,
    });
    stored(&c, "/api/v1/stats", &body.to_string());
    let reports = reports(&db);
    assert_eq!(reports.len(), 1);
    let (got, metadata) = &reports[0];
    assert_eq!(got, &payload);
    assert_eq!(metadata["timestamp"], "1437174715");
    assert_eq!(metadata["received_from"], "127.0.0.1");
    assert_eq!(
        node_facts(&db),
        [coreos_node("612e0f99-1912-4647-831d-ba4c3d918b66")]
    );
    assert_nowhere(&db, CANARY);
    assert_nowhere(&db, "238dcbc5");
}

#[test]
fn the_starter_format_is_stored_without_its_account_secret() {
    let db = TestDb::new();
    let c = ready(&db, &[]);
    // The starter README's example, with the secret also in the metadata
    // and the payload, where a client might have moved it.
    let body = format!(
        r#"{{
  "accountID": "238dcbc5-4562-4fe3-9d8b-dc67911a7376",
  "accountSecret": "{CANARY}",
  "metadata": {{"generated_at": "1437174715", "accountSecret": "{CANARY}"}},
  "payload": {{
    "clusterID": "612e0f99-1912-4647-831d-ba4c3d918b66",
    "accountSecret": "{CANARY}",
    "kubernetesNodes": [
      {{"status": {{"capacity": {{"cpu": "1", "memory": "505020Ki", "pods": "40"}},
        "nodeInfo": {{"osImage": "CoreOS 738.1.0", "kernelVersion": "4.0.7-coreos-r2",
          "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.6.2"}}}}}}
    ],
    "n": 123456789012345678901234567890
  }}
}}"#
    );
    stored(&c, "/api/v1/stats", &body);
    let (payload, metadata) = reports(&db).remove(0);
    assert_eq!(
        payload["clusterID"], "612e0f99-1912-4647-831d-ba4c3d918b66",
        "{payload}"
    );
    assert_eq!(
        payload["kubernetesNodes"][0]["status"]["capacity"]["cpu"],
        "1"
    );
    assert_eq!(payload.as_object().map(|o| o.len()), Some(3), "{payload}");
    assert_eq!(metadata["generated_at"], "1437174715");
    // Every digit, as sent: jsonb keeps numbers as numeric.
    let n: String = db
        .client()
        .query_one("SELECT payload->>'n' FROM report_log", &[])
        .expect("payload n")
        .get(0);
    assert_eq!(n, "123456789012345678901234567890");
    // The views read kubernetesNodes as the nodes.
    assert_eq!(
        node_facts(&db),
        [coreos_node("612e0f99-1912-4647-831d-ba4c3d918b66")]
    );
    assert_nowhere(&db, CANARY);
}

#[test]
fn the_flat_v1_record_loses_an_account_secret_too() {
    let db = TestDb::new();
    let c = ready(&db, &[]);
    // The Go v1 flat node: nodeInfo at its top level, capacity a list.
    let node = json!({"id": "n1", "osImage": "Ubuntu 16.04", "kubeletVersion": "v1.5.2",
        "capacity": [{"resource": "cpu", "value": "2"}, {"resource": "memory", "value": "8Gi"}]});
    let record = json!({"version": "v1.0.0", "clusterID": "c1", "accountSecret": CANARY,
        "nodes": [node]});
    stored(&c, "/api/v1", &record.to_string());
    let (payload, _) = reports(&db).remove(0);
    assert_eq!(
        payload,
        json!({"version": "v1.0.0", "clusterID": "c1", "nodes": [node]})
    );
    let (os, kubelet) = ("Ubuntu 16.04".to_string(), "v1.5.2".to_string());
    assert_eq!(
        node_facts(&db),
        [(
            "c1".into(),
            Some(os),
            Some(kubelet),
            Some(2000),
            Some(8 << 30)
        )]
    );
    let volunteer: Option<String> = db
        .client()
        .query_one("SELECT volunteer_version FROM cluster_latest", &[])
        .expect("cluster_latest")
        .get(0);
    assert_eq!(volunteer.as_deref(), Some("v1.0.0"));
    assert_nowhere(&db, CANARY);
}

#[test]
fn two_spellings_of_one_field_get_400_naming_both_and_store_nothing() {
    let db = TestDb::new();
    let c = ready(&db, &[]);
    let body = r#"{"payload": {"clusterID": "a"}, "Payload": {"clusterID": "b"}}"#;
    let reply = c.post("/api/v1/stats", body);
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(
        reply.message(),
        "Payload: repeats payload, as field names match in any case; send it once"
    );
    let reply = c.post(
        "/api/v1/stats",
        r#"{"payload": {"clusterID": "a"}, "x": 1}"#,
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(db.count(), 0);
}

#[test]
fn root_answers_200_json_without_the_version_for_load_balancer_checks() {
    let db = TestDb::new();
    for extra in [&[][..], &["--metrics-listen", "127.0.0.1:0"][..]] {
        let c = ready(&db, extra);
        let reply = get(c.addr, "/");
        assert_eq!(reply.status, 200, "{extra:?}: {reply:?}");
        assert_eq!(reply.header("Content-Type"), Some("application/json"));
        let v: Value = serde_json::from_str(&reply.body).expect("GET / is JSON");
        assert_eq!(v["service"], "spartakus-collector");
        assert_eq!(v["submit"], "POST /api/v1/stats");
        assert_eq!(v["health"], "/healthz");
        assert!(
            !reply.body.contains(env!("CARGO_PKG_VERSION")),
            "{}",
            reply.body
        );
        let head = request(c.addr, "HEAD", "/", &[], b"");
        assert_eq!((head.status, head.body.as_str()), (200, ""), "{head:?}");
        let post = request(c.addr, "POST", "/", &[], b"");
        assert_eq!(post.status, 405, "{post:?}");
        assert_eq!(post.header("Allow"), Some("GET, HEAD"));
    }
}
