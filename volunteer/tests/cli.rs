//! The command line: --help, --version, environment fallbacks, extensions, and every
//! configuration error (exit 2, one line on stderr naming the flag).

mod common;

use std::ffi::OsString;
use std::time::Duration;

use common::kubeapi::KubeApi;
use common::{kube_flags, run, volunteer, TempDir, TOKEN};
use spartakus_volunteer::config::{self, Command, Mode};
use spartakus_volunteer::error::Error;

const LIMIT: Duration = Duration::from_secs(20);

/// Arguments, environment variables, and the text the one line on stderr must contain.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn bad_configuration_is_one_line_naming_the_flag_and_exit_2() {
    let dir = TempDir::new();
    let ca = dir
        .file("ca.crt", &common::kubeapi::new_ca().0)
        .display()
        .to_string();
    let token = dir.file("token", TOKEN).display().to_string();
    dir.file("empty-token", "\n");
    dir.file("not-a-ca.crt", "hello\n");
    dir.file("ext/bad.json", r#"{"Not A Key": "v"}"#);
    let http = "http://127.0.0.1:1";
    let https = "https://127.0.0.1:1";
    let missing = dir.str("missing");
    let empty_token = dir.str("empty-token");
    let not_a_ca = dir.str("not-a-ca.crt");
    let bad_ext = dir.str("ext/bad.json");
    let empty_key = dir.file("empty-key", "\n").display().to_string();
    let short_key = dir
        .file("short-key", "0123456789abcdef")
        .display()
        .to_string();
    let key = dir.file("key", &"k".repeat(32)).display().to_string();
    let cases: Vec<Case> = vec![
        (
            vec!["--kube-api", http],
            vec![],
            "--collector: required unless --dry-run (or set SPARTAKUS_COLLECTOR)",
        ),
        (
            vec!["--dry-run"],
            vec![],
            "--kube-api: required outside a pod",
        ),
        (
            vec!["--dry-run", "--kube-api", "ftp://x"],
            vec![],
            "--kube-api: must be an http:// or https:// URL",
        ),
        (
            vec!["--dry-run", "--kube-api", "http://"],
            vec![],
            "--kube-api: must be",
        ),
        (
            vec!["--kube-api", http, "--collector", "collector.example"],
            vec![],
            "--collector: must be an http",
        ),
        // Refused URLs are not echoed: they may carry a password or a key.
        (
            vec![
                "--kube-api",
                http,
                "--collector",
                "http://c.example/?key=S3CRET",
            ],
            vec![],
            "--collector: must be a URL without ?query or #fragment\n",
        ),
        (
            vec![
                "--kube-api",
                http,
                "--collector",
                "http://u:S3CRET@c.example/",
            ],
            vec![],
            "--collector: must be a URL with a host and no user:password@\n",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                "https://admin:S3CRET@10.0.0.1:6443",
            ],
            vec![],
            "--kube-api: must be a URL with a host and no user:password@\n",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                https,
                "--ca-file",
                &ca,
                "--token-file",
                &missing,
            ],
            vec![],
            "--token-file: cannot read token",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                https,
                "--ca-file",
                &ca,
                "--token-file",
                &empty_token,
            ],
            vec![],
            "--token-file: token",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--token-file", &token],
            vec![],
            "--token-file: refusing to send a token over plain http",
        ),
        (
            vec!["--dry-run", "--kube-api", https, "--ca-file", &missing],
            vec![],
            "--ca-file: cannot read",
        ),
        (
            vec!["--dry-run", "--kube-api", https, "--ca-file", &not_a_ca],
            vec![],
            "--ca-file: no PEM certificate in",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--ca-file", &ca],
            vec![],
            "--ca-file: only for an https --kube-api",
        ),
        (
            vec!["--dry-run", "--kube-api", https],
            vec![("SSL_CERT_FILE", &missing)],
            "SSL_CERT_FILE: cannot read",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--period", "5"],
            vec![],
            "--period: must be a duration like",
        ),
        (
            vec!["--dry-run", "--kube-api", http],
            vec![("SPARTAKUS_PERIOD", "daily")],
            "--period: must be a duration like",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--period", "500ms"],
            vec![],
            "--period: must be at least 1s",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--timeout", "0s"],
            vec![],
            "--timeout: must be longer than zero",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--log-level", "loud"],
            vec![],
            "--log-level: must be off, error",
        ),
        (
            vec!["--kube-api", http, "--collector", http, "--spread", "1h"],
            vec![],
            "--spread: only with --once",
        ),
        (
            vec![
                "--once",
                "--kube-api",
                http,
                "--collector",
                http,
                "--spread",
                "25h",
            ],
            vec![],
            "--spread: must be at most 24h",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--client-cert",
                &ca,
                "--cluster-id",
                "c",
            ],
            vec![],
            "--client-cert: only for an https --kube-api",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                https,
                "--ca-file",
                &ca,
                "--client-cert",
                &ca,
                "--cluster-id",
                "c",
            ],
            vec![],
            "--client-cert: no PEM private key in",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                https,
                "--ca-file",
                &ca,
                "--client-key",
                &ca,
            ],
            vec![],
            "--client-key: only with --client-cert",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--cluster-id-from", "etcd"],
            vec![],
            "--cluster-id-from: must be kube-system or kubernetes-service",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--machine-id-file",
                &missing,
            ],
            vec![],
            "--machine-id-file: cannot read",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--machine-id-file",
                &empty_token,
            ],
            vec![],
            "--machine-id-file: ",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--log-format", "xml"],
            vec![],
            "--log-format: must be text or json",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--cluster-id", "has space"],
            vec![],
            "--cluster-id: must be",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--cluster-id-key",
                &missing,
            ],
            vec![],
            "--cluster-id-key: cannot read",
        ),
        (
            vec!["--dry-run", "--kube-api", http],
            vec![("SPARTAKUS_CLUSTER_ID_KEY", &empty_key)],
            "--cluster-id-key: ",
        ),
        (
            vec!["--dry-run", "--kube-api", http],
            vec![("SPARTAKUS_CLUSTER_ID_KEY", "")],
            "--cluster-id-key: SPARTAKUS_CLUSTER_ID_KEY is set but empty",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--cluster-id-key",
                &empty_key,
            ],
            vec![],
            "empty-key is empty",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--cluster-id-key",
                &short_key,
            ],
            vec![],
            "short-key holds 16 bytes, a key needs at least 32",
        ),
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--cluster-id-key",
                &key,
                "--cluster-id",
                "c",
            ],
            vec![],
            "--cluster-id-key: not with --cluster-id, which is reported as given",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--extensions", &missing],
            vec![],
            "--extensions:",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--extensions", &bad_ext],
            vec![],
            "bad.json: key \"Not A Key\"",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "--bogus"],
            vec![],
            "--bogus: unexpected argument",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "extra"],
            vec![],
            "arguments: unexpected argument \"extra\"",
        ),
        // A misspelt flag or a stray URL may carry a password: not echoed.
        (
            vec![
                "--dry-run",
                "--kube-api",
                http,
                "--colector=https://u:S3CRET@c",
            ],
            vec![],
            "--colector: unexpected argument (not shown: it may hold a password) (see --help)\n",
        ),
        (
            vec!["--dry-run", "--kube-api", http, "https://u:S3CRET@c"],
            vec![],
            "arguments: unexpected argument (not shown: it may hold a password) (see --help)\n",
        ),
        (
            vec!["--dry-run", "--kube-api"],
            vec![],
            "--kube-api: needs a value",
        ),
    ];
    for (args, env, want) in cases {
        let mut cmd = volunteer(&args);
        cmd.envs(env.iter().copied());
        let out = run(&mut cmd, LIMIT);
        let context = format!("args {args:?} env {env:?}");
        assert_eq!(out.code, Some(2), "{context}: exit code\n{}", out.streams());
        assert!(
            out.stdout.is_empty(),
            "{context}: nothing on stdout\n{}",
            out.streams()
        );
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{context}: one line\n{}",
            out.streams()
        );
        assert!(
            out.stderr.starts_with("spartakus-volunteer: "),
            "{context}\n{}",
            out.streams()
        );
        assert!(
            out.stderr.contains(want),
            "{context}: expected {want:?}\n{}",
            out.streams()
        );
        out.expect_no_token();
    }
}

#[test]
fn version_and_help() {
    let version = option_env!("SPARTAKUS_VERSION").unwrap_or(env!("CARGO_PKG_VERSION"));
    let out = run(&mut volunteer(&["--version"]), LIMIT);
    out.expect_code(0);
    assert_eq!(out.stdout, format!("spartakus-volunteer {version}\n"));

    let out = run(&mut volunteer(&["--help"]), LIMIT);
    out.expect_code(0);
    let flags = [
        "--collector",
        "--collector-ca-file",
        "--kube-api",
        "--token-file",
        "--ca-file",
        "--cluster-id",
        "--cluster-id-key",
        "--extensions",
        "--period",
        "--timeout",
        "--once",
        "--dry-run",
        "--log-level",
        "--log-format",
        "--spread",
        "--cluster-id-from",
        "--client-cert",
        "--client-key",
        "--machine-id-file",
        "--help",
        "--version",
    ];
    let vars = [
        "SPARTAKUS_COLLECTOR",
        "SPARTAKUS_KUBE_API",
        "SPARTAKUS_TOKEN_FILE",
        "SPARTAKUS_CA_FILE",
        "SPARTAKUS_CLUSTER_ID",
        "SPARTAKUS_CLUSTER_ID_KEY",
        "SPARTAKUS_EXTENSIONS",
        "SPARTAKUS_PERIOD",
        "SPARTAKUS_TIMEOUT",
        "SPARTAKUS_LOG_LEVEL",
        "SPARTAKUS_LOG_FORMAT",
        "SPARTAKUS_SPREAD",
        "SPARTAKUS_CLUSTER_ID_FROM",
        "SPARTAKUS_CLIENT_CERT",
        "SPARTAKUS_CLIENT_KEY",
        "SPARTAKUS_MACHINE_ID_FILE",
    ];
    for word in flags.iter().chain(vars.iter()) {
        assert!(
            out.stdout.contains(word),
            "--help must document {word}\n{}",
            out.stdout
        );
    }
}

#[test]
fn environment_variables_stand_in_for_flags() {
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let ca = dir.file("ca.crt", &api.ca_pem);
    let ext = dir.file("ext.json", r#"{"example.com/env": "yes"}"#);
    let mut cmd = volunteer(&["--dry-run"]);
    cmd.env("SPARTAKUS_KUBE_API", &api.url)
        .env("SPARTAKUS_TOKEN_FILE", &token)
        .env("SPARTAKUS_CA_FILE", &ca)
        .env("SPARTAKUS_CLUSTER_ID", "from-env")
        .env("SPARTAKUS_EXTENSIONS", &ext)
        .env("SPARTAKUS_LOG_LEVEL", "warn");
    let out = run(&mut cmd, LIMIT);
    out.expect_code(0);
    let report = out.json();
    assert_eq!(report["payload"]["clusterID"], "from-env");
    assert_eq!(report["payload"]["extensions"]["example.com/env"], "yes");
    assert!(
        !out.stderr.contains("INFO"),
        "SPARTAKUS_LOG_LEVEL=warn hides info lines\n{}",
        out.streams()
    );
}

#[test]
fn extensions_from_a_file_and_from_a_directory() {
    let api = KubeApi::start(Some(TOKEN));
    let dir = TempDir::new();
    let mut flags = kube_flags(&api, &dir);
    flags.push("--dry-run".into());

    let file = dir.file(
        "one.json",
        r#"{"example.com/team": "platform", "tier": "gold"}"#,
    );
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let file = file.display().to_string();
    args.extend(["--extensions", &file]);
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(0);
    assert_eq!(
        out.json()["payload"]["extensions"],
        serde_json::json!({"example.com/team": "platform", "tier": "gold"})
    );

    // A ConfigMap mount: keys as files, Kubernetes' own dot-entries beside them.
    dir.file("cm/b.json", r#"{"b.example/key": "2"}"#);
    dir.file("cm/a.json", r#"{"a.example/key": "1"}"#);
    dir.file("cm/..data/ignored.json", "not json at all");
    dir.file("cm/.hidden.json", "not json either");
    let cm = dir.str("cm");
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["--extensions", &cm]);
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(0);
    assert_eq!(
        out.json()["payload"]["extensions"],
        serde_json::json!({"a.example/key": "1", "b.example/key": "2"})
    );

    // One bad file in the directory fails the whole configuration, naming it.
    dir.file("cm/c.json", r#"{"ok": 3}"#);
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(2)
        .expect_stderr("--extensions: ")
        .expect_stderr("c.json: must be a JSON object of string values");

    // The same key in two files is ambiguous, so it is refused too.
    dir.file("cm/c.json", r#"{"a.example/key": "again"}"#);
    let out = run(&mut volunteer(&args), LIMIT);
    out.expect_code(2)
        .expect_stderr("c.json: key \"a.example/key\" is also set in");
}

/// `config::parse` with a fake environment, for the rules that need no process.
fn parse(args: &[&str], vars: &[(&str, &str)]) -> Result<Command, Error> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    config::parse(args.iter().map(OsString::from).collect(), &env)
}

#[test]
fn in_a_pod_the_service_account_files_are_the_defaults() {
    let got = parse(
        &["--dry-run"],
        &[
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ],
    );
    // This machine has no service account mount, so the check at startup names the CA.
    let message = got.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with(
            "--ca-file: cannot read /var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
        ),
        "{message}"
    );
}

#[test]
fn flags_win_over_environment_variables() {
    let got = parse(
        &[
            "--dry-run",
            "--kube-api",
            "http://127.0.0.1:8001",
            "--period",
            "1h",
        ],
        &[
            ("SPARTAKUS_KUBE_API", "http://10.0.0.1:1"),
            ("SPARTAKUS_PERIOD", "2h"),
            ("SPARTAKUS_TIMEOUT", "5s"),
        ],
    );
    match got {
        Ok(Command::Run(c)) => {
            assert_eq!(c.kube_api, "http://127.0.0.1:8001");
            assert_eq!(c.period, Duration::from_secs(3600));
            assert_eq!(c.timeout, Duration::from_secs(5));
            assert_eq!(c.mode, Mode::DryRun);
            assert_eq!(c.kube_roots, None);
        }
        other => panic!("expected a config, got {other:?}"),
    }
}

#[test]
fn the_collector_endpoint_is_joined_once() {
    for base in ["http://c.example:8080", "http://c.example:8080/"] {
        match parse(
            &["--collector", base, "--kube-api", "http://127.0.0.1:8001"],
            &[],
        ) {
            Ok(Command::Run(c)) => assert_eq!(
                c.collector_url.as_deref(),
                Some("http://c.example:8080/api/v1/stats")
            ),
            other => panic!("expected a config, got {other:?}"),
        }
    }
}
