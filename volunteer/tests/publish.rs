//! Publishing to a fake collector: the POST itself, retries with the same reportID, refusals,
//! proxies, exit codes of --once, and the loop (token rotation, SIGTERM).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::collector::Collector;
use common::kubeapi::KubeApi;
use common::{finish, kube_flags, run, volunteer, wait_for, TempDir, TOKEN};

const LIMIT: Duration = Duration::from_secs(20);

fn once(api: &KubeApi, dir: &TempDir, collector_url: &str) -> Vec<String> {
    let mut args = kube_flags(api, dir);
    args.extend(["--once".into(), "--collector".into(), collector_url.into()]);
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn once_posts_the_report_to_the_stats_endpoint() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    // A base path with a trailing slash is joined without a double slash.
    let args = once(&api, &dir, &format!("{}/spartakus/", collector.url));
    let out = run(&mut volunteer(&strs(&args)), LIMIT);
    out.expect_code(0)
        .expect_stderr("7 nodes, accepted")
        .expect_no_token();
    let posted = collector.posted();
    assert_eq!(posted.len(), 1);
    let post = &posted[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/spartakus/api/v1/stats")
    );
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert!(post
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("spartakus-volunteer/")));
    assert!(
        post.header("authorization").is_none(),
        "the cluster token is never sent to the collector"
    );
    let report = post.json();
    assert_eq!(report["payload"]["nodes"].as_array().map(Vec::len), Some(7));
    assert_eq!(report["payload"]["masterVersion"], "v1.29.4");
}

#[test]
fn unavailable_collectors_are_retried_with_the_same_report_id() {
    let api = KubeApi::start(Some(TOKEN));
    let busy = r#"{"error": {"code": 503, "message": "database unavailable"}}"#;
    let collector = Collector::start(vec![(503, busy.into()), (503, busy.into())]);
    let dir = TempDir::new();
    let out = run(
        &mut volunteer(&strs(&once(&api, &dir, &collector.url))),
        LIMIT,
    );
    out.expect_code(0).expect_stderr("retrying");
    let posted = collector.posted();
    assert_eq!(
        posted.len(),
        3,
        "two 503s, then accepted\n{}",
        out.streams()
    );
    let ids: BTreeSet<String> = posted
        .iter()
        .map(|p| p.json()["metadata"]["reportID"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one report, one reportID: {ids:?}");
    assert!(
        posted.iter().all(|p| p.body == posted[0].body),
        "every retry sends the same bytes"
    );
}

#[test]
fn a_refused_report_is_not_retried_and_the_reason_is_logged() {
    let api = KubeApi::start(Some(TOKEN));
    let refusal = r#"{"error": {"code": 400, "message": "payload.masterVersion: required"}}"#;
    let collector = Collector::start(vec![(400, refusal.into())]);
    let dir = TempDir::new();
    let out = run(
        &mut volunteer(&strs(&once(&api, &dir, &collector.url))),
        LIMIT,
    );
    out.expect_code(1)
        .expect_stderr("collector: 400 on POST")
        .expect_stderr("payload.masterVersion: required")
        .expect_no_token();
    assert_eq!(collector.posted().len(), 1);
}

#[test]
fn a_collector_that_stays_down_fails_once_with_exit_1() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start((0..5).map(|_| (500, String::new())).collect());
    let dir = TempDir::new();
    let out = run(
        &mut volunteer(&strs(&once(&api, &dir, &collector.url))),
        LIMIT,
    );
    out.expect_code(1).expect_stderr("gave up after 5 attempts");
    assert_eq!(collector.posted().len(), 5);
}

#[test]
fn the_proxy_is_used_for_the_collector_only() {
    let api = KubeApi::start(Some(TOKEN));
    // The proxy is a fake collector: a forward proxy gets the absolute URL as the target.
    let proxy = Collector::start(vec![]);
    let dir = TempDir::new();
    let args = once(&api, &dir, "http://collector.invalid:9/");
    let mut cmd = volunteer(&strs(&args));
    cmd.env("HTTP_PROXY", &proxy.url)
        .env("HTTPS_PROXY", &proxy.url);
    let out = run(&mut cmd, LIMIT);
    out.expect_code(0);
    let posted = proxy.posted();
    let seen: Vec<(&str, &str)> = posted
        .iter()
        .map(|p| (p.method.as_str(), p.path.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("CONNECT", "collector.invalid:9"),
            ("POST", "/api/v1/stats")
        ],
        "only the report goes through the proxy\n{}",
        out.streams()
    );
    assert_eq!(posted[1].header("host"), Some("collector.invalid:9"));
    assert_eq!(
        api.count("/api/v1/nodes"),
        3,
        "the Kubernetes API is reached directly"
    );

    // NO_PROXY exempts a collector.
    let collector = Collector::start(vec![]);
    let mut cmd = volunteer(&strs(&once(&api, &dir, &collector.url)));
    cmd.env("HTTP_PROXY", &proxy.url)
        .env("NO_PROXY", "127.0.0.1");
    run(&mut cmd, LIMIT).expect_code(0);
    assert_eq!(collector.posted().len(), 1);
    assert_eq!(proxy.posted().len(), 2, "nothing more through the proxy");
}

#[test]
fn the_loop_rereads_the_token_and_sigterm_ends_it_promptly() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let mut args = kube_flags(&api, &dir);
    args.extend([
        "--period".into(),
        "1s".into(),
        "--collector".into(),
        collector.url.clone(),
    ]);
    let child = volunteer(&strs(&args))
        .spawn()
        .expect("start spartakus-volunteer");
    let pid = child.id().to_string();

    assert!(
        wait_for(LIMIT, || collector.posted().len() == 1),
        "first report at start"
    );
    // The token rotates between reports; only the new one is accepted from now on.
    let rotated = "rotated-tok-SECRET-22";
    dir.file("token", rotated);
    api.state().token = Some(rotated.into());
    assert!(
        wait_for(LIMIT, || collector.posted().len() == 2),
        "second report one period later"
    );
    let auths: BTreeSet<String> = api
        .seen()
        .iter()
        .filter_map(|s| s.header("authorization").map(str::to_string))
        .collect();
    assert!(
        auths.contains(&format!("Bearer {rotated}")),
        "the new token was used: {auths:?}"
    );

    // Now the loop sleeps; SIGTERM must end it at once, not after the period.
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    let out = finish(child, Duration::from_secs(5));
    out.expect_code(0).expect_no_token();
    assert!(
        !out.stderr.contains(rotated),
        "the rotated token leaked\n{}",
        out.streams()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "took {:?} to stop",
        signalled.elapsed()
    );
}

#[test]
fn sigterm_ends_a_long_sleep_between_reports() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let mut args = kube_flags(&api, &dir);
    args.extend(["--collector".into(), collector.url.clone()]);
    let child = volunteer(&strs(&args))
        .spawn()
        .expect("start spartakus-volunteer");
    let pid = child.id().to_string();
    assert!(
        wait_for(LIMIT, || collector.posted().len() == 1),
        "first report at start"
    );
    // The default period is 24h: only the signal can end this run in time.
    thread_sleep_briefly();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    finish(child, Duration::from_secs(5))
        .expect_code(0)
        .expect_stderr("stopping");
}

fn thread_sleep_briefly() {
    std::thread::sleep(Duration::from_millis(100));
}

/// A collector that takes the report and then says nothing for `silence`,
/// once, and afterwards answers 204; it returns the reportIDs it was sent.
fn slow_collector(silence: Duration) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().flatten().enumerate() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let report: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let _ = tx.send(report["metadata"]["reportID"].to_string());
                if n == 0 {
                    std::thread::sleep(silence);
                    return;
                }
                let answer = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
                let _ = reader.get_mut().write_all(answer);
            });
        }
    });
    (url, rx)
}

#[test]
fn a_slow_collector_times_out_and_the_same_report_is_sent_again() {
    let api = KubeApi::start(Some(TOKEN));
    let (url, sent) = slow_collector(Duration::from_secs(5));
    let dir = TempDir::new();
    let mut args = once(&api, &dir, &url);
    args.extend(["--timeout".into(), "1s".into()]);
    let out = run(&mut volunteer(&strs(&args)), LIMIT);
    out.expect_code(0)
        .expect_stderr("retrying")
        .expect_no_token();
    assert!(
        out.elapsed < Duration::from_secs(5),
        "waited out the silence: {:?}",
        out.elapsed
    );
    let ids: Vec<String> = sent.try_iter().collect();
    assert_eq!(
        ids.len(),
        2,
        "the slow attempt, then the retry\n{}",
        out.streams()
    );
    assert_eq!(ids[0], ids[1], "a retry keeps its reportID");
}

#[test]
fn a_signal_during_once_is_a_failure_and_ends_the_retries_at_once() {
    let api = KubeApi::start(Some(TOKEN));
    let busy = r#"{"error": {"code": 503, "message": "database unavailable"}}"#;
    let collector = Collector::start(vec![(503, busy.into()); 5]);
    let dir = TempDir::new();
    let child = volunteer(&strs(&once(&api, &dir, &collector.url)))
        .env("SPARTAKUS_RETRY_BASE_DELAY", "20s")
        .spawn()
        .expect("start spartakus-volunteer");
    assert!(
        wait_for(LIMIT, || collector.posted().len() == 1),
        "the first attempt"
    );
    thread_sleep_briefly();
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    // Not 0: a systemd unit or CronJob must not count an unsent report a success.
    let out = finish(child, Duration::from_secs(5));
    out.expect_code(1).expect_stderr("interrupted");
    assert_eq!(collector.posted().len(), 1, "no attempt after the signal");
}

#[test]
fn a_signal_while_a_page_loads_stops_before_the_next_request() {
    let api = KubeApi::start(Some(TOKEN));
    api.inject(
        "/api/v1/nodes",
        common::kubeapi::Fault::Slow(Duration::from_millis(1500)),
    );
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let child = volunteer(&strs(&once(&api, &dir, &collector.url)))
        .spawn()
        .expect("start spartakus-volunteer");
    assert!(
        wait_for(LIMIT, || api.count("/api/v1/nodes") == 1),
        "the first page was asked for"
    );
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()));
    let out = finish(child, Duration::from_secs(5));
    out.expect_code(1).expect_stderr("interrupted");
    assert_eq!(api.count("/api/v1/nodes"), 1, "no page after the signal");
    assert!(collector.posted().is_empty(), "nothing is sent");
}
