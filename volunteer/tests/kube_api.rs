//! The volunteer against a real HTTPS Kubernetes API server (tests/common/kubeapi.rs):
//! TLS trust, paging, retries, timeouts, permission errors, token rotation and privacy. A
//! hostile API's paging is `hostile_api.rs`.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use common::collector::Collector;
use common::kubeapi::{new_ca, Fault, KubeApi};
use common::{kube_flags, run, volunteer, Outcome, TempDir, TOKEN};
use serde_json::Value;
use spartakus_volunteer::ids;

/// The UID of namespace kube-system in the fixtures: it must never reach a report.
const KUBE_SYSTEM_UID: &str = "8c2f0a51-0d3e-4b6f-a1c9-2e7d5b4f8a13";

const LIMIT: Duration = Duration::from_secs(20);

/// `--dry-run` against `api` with extra flags.
fn dry_run(api: &KubeApi, dir: &TempDir, extra: &[&str]) -> Outcome {
    let mut args = kube_flags(api, dir);
    args.push("--dry-run".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&mut volunteer(&args), LIMIT)
}

fn node_ids(report: &Value) -> Vec<String> {
    report["payload"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dry_run_reports_every_node_across_pages_in_the_documented_shape() {
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let out = dry_run(&api, &dir, &[]);
    out.expect_code(0).expect_no_token();
    let report = out.json();

    let ids = node_ids(&report);
    assert_eq!(ids.len(), 7, "nodes in the report\n{}", out.streams());
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "node ids must be distinct and sorted");
    assert!(ids
        .iter()
        .all(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())));

    let meta = &report["metadata"];
    assert!(meta["timestamp"]
        .as_str()
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())));
    assert_eq!(meta["reportID"].as_str().map(str::len), Some(36));
    let version = option_env!("SPARTAKUS_VERSION").unwrap_or(env!("CARGO_PKG_VERSION"));
    assert_eq!(meta["volunteerVersion"], version);

    let payload = &report["payload"];
    assert_eq!(payload["clusterID"], "7a487b5e-801a-8383-9024-9d985a17519f");
    assert_eq!(payload["masterVersion"], "v1.29.4");
    assert!(payload.get("extensions").is_none(), "no extensions, no key");
    let providers: BTreeSet<&str> = payload["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["cloudProvider"].as_str())
        .collect();
    assert_eq!(
        providers,
        BTreeSet::from(["aws", "azure", "gce", "kind", "openstack"])
    );
    let gpu = payload["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["status"]["capacity"].get("nvidia.com/gpu").is_some());
    let gpu = gpu.unwrap_or_else(|| panic!("every capacity entry is kept\n{}", out.streams()));
    assert_eq!(gpu["status"]["capacity"]["nvidia.com/gpu"], "8");
    assert_eq!(gpu["status"]["capacity"]["cpu"], "16");
    let info = &gpu["status"]["nodeInfo"];
    assert_eq!(info["containerRuntimeVersion"], "cri-o://1.29.2");
    let keys: BTreeSet<&str> = info
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "architecture",
            "containerRuntimeVersion",
            "kernelVersion",
            "kubeletVersion",
            "operatingSystem",
            "osImage"
        ])
    );

    // 7 nodes at the server's 3 per page: 3 list requests, each asking for our page size.
    let lists: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.path() == "/api/v1/nodes")
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert!(lists
        .iter()
        .all(|s| s.target.starts_with("/api/v1/nodes?limit=250")));
    assert_eq!(
        lists[1].target,
        "/api/v1/nodes?limit=250&continue=offset%3D3%26rv%3D987654"
    );
    for seen in api.seen() {
        assert_eq!(
            seen.header("user-agent"),
            Some(format!("spartakus-volunteer/{version}").as_str())
        );
        assert_eq!(seen.header("accept"), Some("application/json"));
    }
}

#[test]
fn node_ids_are_stable_across_runs_and_the_cluster_id_flag_skips_the_namespace() {
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let first = dry_run(&api, &dir, &["--cluster-id", "prod-eu-1"]);
    let second = dry_run(&api, &dir, &["--cluster-id", "prod-eu-1"]);
    first.expect_code(0);
    second.expect_code(0);
    assert_eq!(first.json()["payload"]["clusterID"], "prod-eu-1");
    assert_eq!(node_ids(&first.json()), node_ids(&second.json()));
    assert_ne!(
        first.json()["metadata"]["reportID"],
        second.json()["metadata"]["reportID"]
    );
    assert_eq!(api.count("/api/v1/namespaces/kube-system"), 0);

    let other = dry_run(&api, &dir, &["--cluster-id", "prod-us-2"]);
    assert_ne!(
        node_ids(&first.json()),
        node_ids(&other.json()),
        "the cluster id is part of the hash"
    );
}

#[test]
fn no_forbidden_field_reaches_the_report() {
    let api = KubeApi::start(Some(TOKEN));
    {
        let mut state = api.state();
        for (i, node) in state.nodes.iter_mut().enumerate() {
            let m = |what: &str| Value::String(format!("MARKER-{what}-{i}"));
            node["metadata"]["name"] = m("name");
            node["metadata"]["uid"] = m("uid");
            node["metadata"]["labels"] =
                serde_json::json!({format!("MARKER-labelkey-{i}"): m("labelvalue")});
            node["metadata"]["annotations"] =
                serde_json::json!({format!("MARKER-annokey-{i}"): m("annovalue")});
            // Half on a listed cloud, half on a private one whose scheme names its owner.
            node["spec"]["providerID"] = match i % 2 {
                0 => Value::String(format!("aws://MARKER-providerrest-{i}/i-1")),
                _ => Value::String(format!("marker-acmecorp{i}://rack-7/host-{i}")),
            };
            // An extended resource named after a company, next to an allowed GPU.
            node["status"]["capacity"][format!("marker{i}.acme.example.com/license")] =
                Value::from("1");
            node["status"]["capacity"]["nvidia.com/gpu"] = Value::from("1");
            node["spec"]["podCIDR"] = m("podcidr");
            node["spec"]["podCIDRs"] = serde_json::json!([m("podcidrs")]);
            node["spec"]["taints"] = serde_json::json!([{"key": m("taintkey"), "value": m("taintvalue"), "effect": "NoSchedule"}]);
            node["status"]["addresses"] =
                serde_json::json!([{"type": "InternalIP", "address": m("address")}]);
            node["status"]["images"] = serde_json::json!([{"names": [m("image")], "sizeBytes": 1}]);
            node["status"]["conditions"] = serde_json::json!([{"type": "Ready", "status": "True", "reason": m("reason"), "message": m("message")}]);
            node["status"]["nodeInfo"]["machineID"] = m("machineid");
            node["status"]["nodeInfo"]["systemUUID"] = m("systemuuid");
            node["status"]["nodeInfo"]["bootID"] = m("bootid");
            node["status"]["daemonEndpoints"] =
                serde_json::json!({"kubeletEndpoint": {"Port": 10250}});
        }
    }
    let dir = TempDir::new();
    let out = dry_run(&api, &dir, &[]);
    out.expect_code(0);
    let report = out.json();
    assert_eq!(
        node_ids(&report).len(),
        7,
        "the test is only meaningful with nodes\n{}",
        out.streams()
    );
    let nodes = report["payload"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let providers: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n["cloudProvider"].as_str())
        .collect();
    assert_eq!(providers, BTreeSet::from(["aws", "other"]));
    assert!(
        nodes
            .iter()
            .all(|n| n["status"]["capacity"]["nvidia.com/gpu"] == "1"),
        "allowed capacity entries stay\n{}",
        out.stdout
    );
    let text = report.to_string().to_lowercase();
    assert!(
        !text.contains("marker") && !text.contains("acme"),
        "a marker reached the report:\n{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains(KUBE_SYSTEM_UID),
        "the raw kube-system UID reached the report:\n{}",
        out.stdout
    );

    // Node mode decodes machineID and the Ready condition for the election: still neither
    // reaches the report nor the log, whichever node is chosen.
    let mut printed = 0;
    for i in 0..7 {
        let id = dir.file("machine-id", &format!("MARKER-machineid-{i}\n"));
        let out = dry_run(
            &api,
            &dir,
            &["--machine-id-file", &id.display().to_string()],
        );
        out.expect_code(0);
        assert!(
            !out.stdout.to_lowercase().contains("marker")
                && !out.stderr.to_lowercase().contains("marker"),
            "a marker reached the output in node mode\n{}",
            out.streams()
        );
        printed += usize::from(!out.stdout.is_empty());
    }
    assert_eq!(printed, 1, "one node is chosen, and prints its report");
}

#[test]
fn the_default_cluster_id_is_a_hash_of_the_kube_system_uid_and_a_key_changes_it() {
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let report = |extra: &[&str]| {
        let out = dry_run(&api, &dir, extra);
        out.expect_code(0);
        let report = out.json();
        let id = report["payload"]["clusterID"].as_str().map(str::to_string);
        (id.unwrap_or_default(), node_ids(&report))
    };
    let node_uids: Vec<String> = api
        .state()
        .nodes
        .iter()
        .filter_map(|n| n["metadata"]["uid"].as_str().map(str::to_string))
        .collect();
    let derived = |cluster_id: &str| {
        let mut want: Vec<String> = node_uids
            .iter()
            .map(|uid| ids::node_id(cluster_id, uid))
            .collect();
        want.sort();
        want
    };

    // sha256(b"spartakus cluster id v1\0" + uid), first 16 bytes as a UUID v8.
    let (hashed, hashed_nodes) = report(&[]);
    assert_eq!(hashed, "7a487b5e-801a-8383-9024-9d985a17519f");
    assert_ne!(hashed, KUBE_SYSTEM_UID);
    assert_eq!(report(&[]).0, hashed, "stable across runs");
    assert_eq!(
        hashed_nodes,
        derived(&hashed),
        "node ids follow the reported id"
    );

    // The same keyed with HMAC-SHA256: b"k" * 32, and a key file that ends in a newline.
    let key = dir.file("key", &"k".repeat(32)).display().to_string();
    let other = dir.file("other", &format!("{}\n", "j".repeat(64)));
    let (keyed, keyed_nodes) = report(&["--cluster-id-key", &key]);
    assert_eq!(keyed, "ba5f5305-aa3d-8196-9c7b-2fcb6a682246");
    assert_eq!(
        report(&["--cluster-id-key", &key]).0,
        keyed,
        "stable with its key"
    );
    assert_eq!(keyed_nodes, derived(&keyed), "node ids follow the keyed id");
    let (other_keyed, _) = report(&["--cluster-id-key", &other.display().to_string()]);
    assert!(
        other_keyed != keyed && other_keyed != hashed && other_keyed != KUBE_SYSTEM_UID,
        "another key, another id: {other_keyed}"
    );

    let mut args = kube_flags(&api, &dir);
    args.push("--dry-run".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(
        volunteer(&args).env("SPARTAKUS_CLUSTER_ID_KEY", &key),
        LIMIT,
    );
    out.expect_code(0);
    assert_eq!(
        out.json()["payload"]["clusterID"],
        keyed.as_str(),
        "the env var"
    );
}

#[test]
fn a_cluster_ca_that_did_not_sign_the_server_is_refused() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let mut args = kube_flags(&api, &dir);
    // A valid CA, just not the one that signed the server's certificate.
    let (other_ca, _) = new_ca();
    dir.file("ca.crt", &other_ca);
    args.extend(["--once".into(), "--collector".into(), collector.url.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(1)
        .expect_stderr("kubernetes api: GET /api/v1/namespaces/kube-system: tls")
        .expect_stderr("invalid peer certificate")
        .expect_no_token();
    assert!(
        !out.stderr.contains("retrying"),
        "a certificate error is final\n{}",
        out.streams()
    );
    assert!(
        api.seen().is_empty(),
        "no request may pass an unverified connection"
    );
    assert!(collector.posted().is_empty());
}

#[test]
fn server_errors_and_dropped_connections_are_retried() {
    let cases = [
        ("/version", Fault::Status(500, None), "/version", 2),
        (
            "/api/v1/nodes",
            Fault::Status(503, None),
            "/api/v1/nodes",
            4,
        ),
        (
            "/api/v1/nodes?limit=250&continue=",
            Fault::Drop,
            "/api/v1/nodes",
            4,
        ),
        (
            "/api/v1/namespaces/",
            Fault::Status(429, None),
            "/api/v1/namespaces/kube-system",
            2,
        ),
    ];
    for (prefix, fault, path, want_path_count) in cases {
        let api = KubeApi::start(Some(TOKEN));
        api.inject(prefix, fault.clone());
        let dir = TempDir::new();
        let out = dry_run(&api, &dir, &[]);
        out.expect_code(0)
            .expect_stderr("retrying")
            .expect_no_token();
        assert_eq!(
            node_ids(&out.json()).len(),
            7,
            "{fault:?}: all nodes, no duplicates\n{}",
            out.streams()
        );
        assert_eq!(
            api.count(path),
            want_path_count,
            "{fault:?}: requests to {path}"
        );
    }
}

#[test]
fn retry_after_is_honoured() {
    let api = KubeApi::start(Some(TOKEN));
    api.inject("/version", Fault::Status(429, Some(1)));
    let dir = TempDir::new();
    let out = dry_run(&api, &dir, &[]);
    out.expect_code(0);
    assert_eq!(api.count("/version"), 2);
    // The base delay is 20 ms in tests; only Retry-After explains a wait of a second.
    assert!(
        out.elapsed >= Duration::from_secs(1),
        "waited only {:?}\n{}",
        out.elapsed,
        out.streams()
    );
}

#[test]
fn a_slow_answer_times_out_and_is_retried() {
    let api = KubeApi::start(Some(TOKEN));
    api.inject("/version", Fault::Slow(Duration::from_secs(4)));
    let dir = TempDir::new();
    let out = dry_run(&api, &dir, &["--timeout", "500ms"]);
    out.expect_code(0).expect_stderr("timeout");
    assert_eq!(api.count("/version"), 2);
    assert!(
        out.elapsed < Duration::from_secs(3),
        "did not time out: {:?}\n{}",
        out.elapsed,
        out.streams()
    );
}

#[test]
fn a_spent_retry_budget_fails_the_report_and_sends_nothing() {
    let api = KubeApi::start(Some(TOKEN));
    // The first page succeeds; the second fails every time: no report from a partial list.
    for _ in 0..5 {
        api.inject(
            "/api/v1/nodes?limit=250&continue=",
            Fault::Status(503, None),
        );
    }
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let mut args = kube_flags(&api, &dir);
    args.extend(["--once".into(), "--collector".into(), collector.url.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(1)
        .expect_stderr("kubernetes api: 503 on GET /api/v1/nodes")
        .expect_stderr("gave up after 5 attempts")
        .expect_no_token();
    assert_eq!(
        api.count("/api/v1/nodes"),
        6,
        "one good page and five tries of the next"
    );
    assert!(
        collector.posted().is_empty(),
        "a partial node list must not be reported"
    );
}

#[test]
fn an_expired_continue_token_restarts_the_list_once() {
    let api = KubeApi::start(Some(TOKEN));
    api.inject(
        "/api/v1/nodes?limit=250&continue=",
        Fault::Status(410, None),
    );
    let dir = TempDir::new();
    let out = dry_run(&api, &dir, &[]);
    out.expect_code(0).expect_stderr("restarting");
    assert_eq!(
        node_ids(&out.json()).len(),
        7,
        "no duplicates after the restart\n{}",
        out.streams()
    );
    assert_eq!(api.count("/api/v1/nodes"), 5, "1 page, a 410, then 3 pages");

    let api = KubeApi::start(Some(TOKEN));
    api.inject(
        "/api/v1/nodes?limit=250&continue=",
        Fault::Status(410, None),
    );
    api.inject(
        "/api/v1/nodes?limit=250&continue=",
        Fault::Status(410, None),
    );
    let out = dry_run(&api, &dir, &[]);
    out.expect_code(1)
        .expect_stderr("410 gone on GET /api/v1/nodes");
    assert!(out.stdout.is_empty(), "no report from a partial list");
    assert_eq!(
        api.count("/api/v1/nodes"),
        4,
        "1 page, a 410, 1 page, a 410"
    );
}

#[test]
fn a_refused_token_is_not_retried() {
    let api = KubeApi::start(Some("another-token"));
    let dir = TempDir::new();
    let out = dry_run(&api, &dir, &[]);
    out.expect_code(1)
        .expect_stderr("kubernetes api: 401 unauthorized on GET /api/v1/namespaces/kube-system")
        .expect_no_token();
    assert_eq!(api.count("/api/v1/namespaces/kube-system"), 1);
}

#[test]
fn forbidden_requests_name_the_missing_permission_and_are_not_retried() {
    let cases = [
        ("/api/v1/nodes", "kubernetes api: 403 forbidden on GET /api/v1/nodes: the service account needs permission to list nodes"),
        ("/api/v1/namespaces/kube-system", "kubernetes api: 403 forbidden on GET /api/v1/namespaces/kube-system: the service account needs permission to get namespace kube-system"),
    ];
    for (path, message) in cases {
        let api = KubeApi::start(Some(TOKEN));
        api.state().forbidden.push(path.to_string());
        let dir = TempDir::new();
        let out = dry_run(&api, &dir, &[]);
        out.expect_code(1).expect_stderr(message).expect_no_token();
        assert_eq!(api.count(path), 1, "{path} must not be retried");
    }
}

#[test]
fn kubectl_proxy_over_plain_http_needs_no_token() {
    let api = KubeApi::start_plain();
    let out = run(
        &mut volunteer(&["--kube-api", &api.url, "--dry-run"]),
        LIMIT,
    );
    out.expect_code(0);
    assert_eq!(node_ids(&out.json()).len(), 7);
    assert!(api
        .seen()
        .iter()
        .all(|s| s.header("authorization").is_none()));
}

#[test]
fn the_token_is_read_afresh_for_every_report() {
    use spartakus_volunteer::config::{self, Command};
    use spartakus_volunteer::kube::{KubeClient, Source};
    use spartakus_volunteer::shutdown::Shutdown;

    let api = KubeApi::start(Some("first-token"));
    let dir = TempDir::new();
    let token = dir.file("token", "first-token\n");
    let ca = dir.file("ca.crt", &api.ca_pem);
    let args: Vec<OsString> = [
        "--dry-run",
        "--kube-api",
        &api.url,
        "--token-file",
        &token.display().to_string(),
        "--ca-file",
        &ca.display().to_string(),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let config = match config::parse(args, &|_| None) {
        Ok(Command::Run(config)) => config,
        other => panic!("expected a config, got {other:?}"),
    };
    let client = KubeClient::new(&config, Arc::new(Shutdown::default()));
    assert_eq!(client.snapshot().map(|s| s.nodes.len()).ok(), Some(7));

    // The kubelet rotates the projected token; the API server stops accepting the old one.
    dir.file("token", "second-token\n");
    api.state().token = Some("second-token".into());
    let second = client.snapshot();
    assert_eq!(
        second.as_ref().map(|s| s.nodes.len()).ok(),
        Some(7),
        "{:?}",
        second.err()
    );
    let auth: BTreeSet<String> = api
        .seen()
        .iter()
        .filter_map(|s| s.header("authorization").map(str::to_string))
        .collect();
    assert_eq!(
        auth,
        BTreeSet::from([
            "Bearer first-token".to_string(),
            "Bearer second-token".to_string()
        ])
    );
}

#[test]
fn trace_logging_shows_neither_the_token_nor_the_nodes() {
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let out = dry_run(&api, &dir, &["--log-level", "trace"]);
    out.expect_code(0).expect_no_token();
    // A hex dump would split the token across lines: look for any piece.
    let pieces: Vec<&str> = (0..=TOKEN.len() - 6).map(|i| &TOKEN[i..i + 6]).collect();
    let leaked: Vec<&&str> = pieces.iter().filter(|p| out.stderr.contains(**p)).collect();
    assert!(leaked.is_empty(), "{leaked:?}\n{}", out.streams());
    assert!(
        !out.stderr.contains("ip-10-0-1-23") && !out.stderr.contains("ec2.internal"),
        "a node name reached the log\n{}",
        out.streams()
    );
}
