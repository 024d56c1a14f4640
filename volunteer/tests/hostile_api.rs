//! The volunteer against a hostile or broken Kubernetes API (tests/common/kubeapi.rs over real
//! sockets): a continue token that repeats, endless empty pages, endless pages, a page over
//! the byte bound, more nodes than a report holds, a report over the collector's default
//! size. Each ends `--once` with exit 1 and one error line, and nothing is sent.

mod common;

use std::time::Duration;

use common::collector::Collector;
use common::kubeapi::{KubeApi, Paging};
use common::{kube_flags, run, volunteer, Outcome, TempDir, TOKEN};
use serde_json::{json, Value};
use spartakus_volunteer::list::{MAX_EMPTY_PAGES, MAX_NODES, MAX_PAGES};

const LIMIT: Duration = Duration::from_secs(60);

/// Flags for `api`: with the token and CA over https, none over plain http (kubectl proxy).
fn flags(api: &KubeApi, dir: &TempDir) -> Vec<String> {
    match api.url.starts_with("https") {
        true => kube_flags(api, dir),
        false => vec!["--kube-api".into(), api.url.clone()],
    }
}

/// `--once` against `api`: exit 1, `want` in the one error line, and no report sent.
fn refused(api: &KubeApi, want: &str) -> Outcome {
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let mut args = flags(api, &dir);
    args.extend(["--once".into(), "--collector".into(), collector.url.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(1).expect_stderr(want).expect_no_token();
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line\n{}", out.streams());
    assert!(errors[0].contains(want), "{want:?} in {errors:?}");
    assert!(
        collector.posted().is_empty(),
        "never a report from a partial list\n{}",
        out.streams()
    );
    out
}

/// `count` small nodes, each with a distinct UID.
fn small_nodes(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"metadata": {"uid": format!("uid-{i}")}, "status": {"capacity": {"cpu": "4"}}}))
        .collect()
}

#[test]
fn a_continue_token_that_repeats_stops_the_list() {
    let api = KubeApi::start(Some(TOKEN));
    api.state().paging = Paging::RepeatToken;
    refused(
        &api,
        "kubernetes api: GET /api/v1/nodes: the continue token of page 2 repeats an earlier one",
    );
    assert_eq!(api.count("/api/v1/nodes"), 2, "stopped at the first repeat");
}

#[test]
fn endless_empty_pages_stop_the_list() {
    let api = KubeApi::start(Some(TOKEN));
    api.state().paging = Paging::EmptyPages;
    refused(
        &api,
        "kubernetes api: GET /api/v1/nodes: 10 empty pages in a row, each with a continue token",
    );
    assert_eq!(api.count("/api/v1/nodes"), MAX_EMPTY_PAGES as usize);
}

#[test]
fn a_list_that_never_ends_stops_at_the_page_bound() {
    let api = KubeApi::start_plain();
    {
        let mut state = api.state();
        state.nodes = small_nodes(MAX_PAGES as usize + 1);
        state.page_size = 1;
    }
    refused(
        &api,
        "kubernetes api: GET /api/v1/nodes: the list did not end after 1000 pages",
    );
    assert_eq!(api.count("/api/v1/nodes"), MAX_PAGES as usize);
}

#[test]
fn a_page_over_the_byte_bound_stops_the_list_and_is_not_retried() {
    let api = KubeApi::start(Some(TOKEN));
    // Skipped content, so only the byte bound can stop it.
    api.state().nodes[0]["metadata"]["annotations"]["big"] = Value::String("x".repeat(17 << 20));
    refused(
        &api,
        "kubernetes api: GET /api/v1/nodes: the answer is larger than 16 MiB",
    );
    assert_eq!(api.count("/api/v1/nodes"), 1);
}

#[test]
fn a_report_holds_at_most_15000_nodes_counted_while_decoding() {
    // 15,000 small nodes: a report.
    let api = KubeApi::start_plain();
    {
        let mut state = api.state();
        state.nodes = small_nodes(MAX_NODES);
        state.page_size = 250;
    }
    let out = run(
        &mut volunteer(&["--kube-api", &api.url, "--dry-run"]),
        LIMIT,
    );
    out.expect_code(0);
    let nodes = out.json()["payload"]["nodes"].as_array().map(Vec::len);
    assert_eq!(nodes, Some(MAX_NODES));

    // One more, in pages of 250 or in one page that ignores the limit: no report.
    for (paging, page_size, requests) in
        [(Paging::Honest, 250, 61), (Paging::IgnoreLimit, 20_000, 1)]
    {
        let api = KubeApi::start_plain();
        {
            let mut state = api.state();
            state.nodes = small_nodes(MAX_NODES + 1);
            state.page_size = page_size;
            state.paging = paging;
        }
        refused(
            &api,
            "kubernetes api: GET /api/v1/nodes: the cluster has more than 15000 nodes, more than \
             one report holds",
        );
        assert_eq!(api.count("/api/v1/nodes"), requests, "{paging:?}");
    }
}

#[test]
fn a_report_over_the_collectors_default_body_limit_is_not_sent() {
    let api = KubeApi::start_plain();
    {
        // 1,100 nodes with 32 long capacity values: ~9.5 MB encoded, over 8 MiB.
        let long = "9".repeat(250);
        let capacity: serde_json::Map<String, Value> = (0..32)
            .map(|k| (format!("hugepages-{k}Mi"), Value::String(long.clone())))
            .collect();
        let mut state = api.state();
        state.nodes = (0..1100)
            .map(|i| json!({"metadata": {"uid": format!("uid-{i}")}, "status": {"capacity": capacity}}))
            .collect();
        state.page_size = 250;
    }
    refused(
        &api,
        "with 1100 nodes, over the 8388608 bytes a collector accepts by default \
         (--max-body-bytes); not sent",
    );
    let dry = run(
        &mut volunteer(&["--kube-api", &api.url, "--dry-run"]),
        LIMIT,
    );
    dry.expect_code(1).expect_stderr("over the 8388608 bytes");
    assert!(
        dry.stdout.is_empty(),
        "--dry-run prints no oversized report"
    );
}
