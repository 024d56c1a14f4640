//! `--log-format json`: every line on stderr is one JSON object with the fields of the text
//! lines, and the redaction rules are the same (no token, even at trace).

mod common;

use std::time::Duration;

use common::collector::Collector;
use common::kubeapi::KubeApi;
use common::{kube_flags, run, volunteer, Outcome, TempDir, TOKEN};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);

/// Panics unless every stderr line is a JSON object with time, level, target and message;
/// returns the messages.
fn json_lines(out: &Outcome) -> Vec<String> {
    let mut messages = Vec::new();
    for line in out.stderr.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", out.streams()));
        for field in ["time", "level", "target", "message"] {
            assert!(v[field].is_string(), "no {field} in {line}");
        }
        messages.push(v["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(!messages.is_empty(), "no log lines\n{}", out.streams());
    messages
}

#[test]
fn json_logs_at_trace_are_one_object_per_line_without_the_token() {
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let mut args = kube_flags(&api, &dir);
    args.extend(["--dry-run", "--log-format", "json", "--log-level", "trace"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(0).expect_no_token();
    let messages = json_lines(&out);
    assert!(
        messages.iter().any(|m| m.contains("printed (dry run)")),
        "the report's line\n{}",
        out.streams()
    );
    let pieces: Vec<&str> = (0..=TOKEN.len() - 6).map(|i| &TOKEN[i..i + 6]).collect();
    assert!(
        !pieces.iter().any(|p| out.stderr.contains(p)),
        "a piece of the token leaked\n{}",
        out.streams()
    );
}

#[test]
fn json_logs_of_once_come_from_the_environment_too() {
    let api = KubeApi::start(Some(TOKEN));
    let collector = Collector::start(vec![]);
    let dir = TempDir::new();
    let mut args = kube_flags(&api, &dir);
    args.extend(["--once".into(), "--collector".into(), collector.url.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(volunteer(&args).env("SPARTAKUS_LOG_FORMAT", "json"), LIMIT);
    out.expect_code(0).expect_no_token();
    let messages = json_lines(&out);
    assert!(
        messages.iter().any(|m| m.contains("accepted")),
        "{messages:?}"
    );
}
