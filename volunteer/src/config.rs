//! Flags and environment variables, validated into a typed `Config`, and the HELP text.
//!
//! It owns every rule about configuration: defaults, env fallbacks (flags win), and the checks
//! done once at startup so a mistake is one line on stderr and exit 2 rather than a failure a
//! day later (unreadable token or CA, malformed URLs, bad durations, bad extensions). It does
//! not talk to the network.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use log::LevelFilter;

use crate::error::Error;
use crate::extensions;
use crate::kube;
use crate::retry::Policy;
use crate::tls::Roots;
use crate::values;

/// The whole interface, as printed by `--help`.
pub const HELP: &str = "\
spartakus-volunteer: reports anonymous facts about a Kubernetes cluster (node count, capacity,
versions) to a spartakus collector. No names, labels, addresses or UIDs leave the cluster.

USAGE:
    spartakus-volunteer [OPTIONS]

Inside a pod the API server, service account token and CA are found automatically.

OPTIONS:
    --collector URL          Collector base URL; reports are POSTed to URL/api/v1/stats.
                             Required unless --dry-run.            [env: SPARTAKUS_COLLECTOR]
    --collector-ca-file PATH CA bundle for an https collector.
                             Default: the system roots.   [env: SPARTAKUS_COLLECTOR_CA_FILE]
    --kube-api URL           Kubernetes API server, for use outside a pod, e.g.
                             http://127.0.0.1:8001 (kubectl proxy).
                             Default in a pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
                                                                     [env: SPARTAKUS_KUBE_API]
    --token-file PATH        Bearer token, re-read for every report. Not sent over plain http.
                             Default in a pod: the service account token; outside: none.
                                                                  [env: SPARTAKUS_TOKEN_FILE]
    --ca-file PATH           CA bundle for an https --kube-api. Default in a pod: the service
                             account's ca.crt; outside: the system roots.
                                                                     [env: SPARTAKUS_CA_FILE]
    --cluster-id ID          Cluster id to report. Default: the UID of namespace kube-system.
                                                                  [env: SPARTAKUS_CLUSTER_ID]
    --extensions PATH        JSON file of string-to-string pairs, or a directory of such files
                             (dot-files skipped), added to each report. Keys are
                             [prefix/]name like Kubernetes labels. Re-read before each report.
                                                                  [env: SPARTAKUS_EXTENSIONS]
    --period DURATION        Time between reports, +-10% jitter, e.g. 30m, 24h, 1h30m.
                             Default: 24h.                            [env: SPARTAKUS_PERIOD]
    --timeout DURATION       Limit for each HTTP request. Default: 30s.
                                                                     [env: SPARTAKUS_TIMEOUT]
    --once                   Send one report, then exit: 0 if it was accepted, 1 if not.
    --dry-run                Print one report as JSON on stdout and send nothing.
    --log-level LEVEL        off, error, warn, info, debug or trace. Logs go to stderr.
                             Default: info.                        [env: SPARTAKUS_LOG_LEVEL]
    -h, --help               Print this help.
    -V, --version            Print the version.

Failed requests (429, 5xx, connection errors) are retried 5 times at most, with exponential
backoff and jitter starting at 1s (SPARTAKUS_RETRY_BASE_DELAY changes that start; the test
suite uses it). HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply to the collector only.

EXIT STATUS: 0 success (in the loop, also a stop by SIGTERM/SIGINT), 1 a report failed or was
interrupted (--once, --dry-run), 2 bad configuration.
";

/// Where the service account's files are mounted in every pod.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Help,
    Version,
    Run(Box<Config>),
}

/// How many reports to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A report at start, then one every period, until a signal.
    Loop,
    /// One report; the exit code says whether it was accepted.
    Once,
    /// One report printed on stdout; nothing is sent.
    DryRun,
}

/// Everything the volunteer needs, validated.
#[derive(Debug)]
pub struct Config {
    pub mode: Mode,
    /// The full stats endpoint (`<collector>/api/v1/stats`); `None` only with `--dry-run`.
    pub collector_url: Option<String>,
    /// Roots for an https collector; `None` for http.
    pub collector_roots: Option<Roots>,
    /// API server base URL, without a trailing slash.
    pub kube_api: String,
    pub token_file: Option<PathBuf>,
    /// Roots for an https API server; `None` for http.
    pub kube_roots: Option<Roots>,
    pub cluster_id: Option<String>,
    pub extensions_path: Option<PathBuf>,
    /// The extensions as read at startup, used by the first report.
    pub extensions: BTreeMap<String, String>,
    pub period: Duration,
    pub timeout: Duration,
    pub log_level: LevelFilter,
    pub retry: Policy,
}

/// Parses `args` (without the program name). `env` looks up environment variables; it is a
/// parameter so tests need not touch the process environment.
pub fn parse(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> Result<Command, Error> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    if args.contains(["-V", "--version"]) {
        return Ok(Command::Version);
    }
    let once = args.contains("--once");
    let dry_run = args.contains("--dry-run");
    let mut value = |flag: &'static str, var: &str| -> Result<Option<String>, Error> {
        let given: Option<String> = args
            .opt_value_from_str(flag)
            .map_err(|e| Error::config(flag, pico_message(e)))?;
        Ok(given.or_else(|| env(var).filter(|v| !v.is_empty())))
    };
    let collector = value("--collector", "SPARTAKUS_COLLECTOR")?;
    let collector_ca = value("--collector-ca-file", "SPARTAKUS_COLLECTOR_CA_FILE")?;
    let kube_api = value("--kube-api", "SPARTAKUS_KUBE_API")?;
    let token_file = value("--token-file", "SPARTAKUS_TOKEN_FILE")?;
    let ca_file = value("--ca-file", "SPARTAKUS_CA_FILE")?;
    let cluster_id = value("--cluster-id", "SPARTAKUS_CLUSTER_ID")?;
    let extensions_path = value("--extensions", "SPARTAKUS_EXTENSIONS")?;
    let period = value("--period", "SPARTAKUS_PERIOD")?;
    let timeout = value("--timeout", "SPARTAKUS_TIMEOUT")?;
    let log_level = value("--log-level", "SPARTAKUS_LOG_LEVEL")?;
    let leftover = args.finish();
    if let Some(first) = leftover.first() {
        let shown = first.to_string_lossy();
        let flag = if shown.starts_with('-') {
            shown.split('=').next().unwrap_or_default().to_string()
        } else {
            "arguments".into()
        };
        // A misplaced URL may hold a password.
        let secret = ["://", "@", "password"].iter().any(|s| shown.contains(s));
        let shown = match secret {
            true => "(not shown: it may hold a password)".to_string(),
            false => format!("{shown:?}"),
        };
        return Err(Error::config(
            flag,
            format!("unexpected argument {shown} (see --help)"),
        ));
    }

    let mode = match (dry_run, once) {
        (true, _) => Mode::DryRun,
        (false, true) => Mode::Once,
        (false, false) => Mode::Loop,
    };
    let ssl_cert_file = env("SSL_CERT_FILE");

    let (collector_url, collector_roots) = match (collector, mode) {
        (Some(url), _) => {
            let https = values::check_url(&url).map_err(|e| Error::config("--collector", e))?;
            let endpoint = format!("{}/api/v1/stats", url.trim_end_matches('/'));
            let roots = match (https, collector_ca) {
                (true, Some(ca)) => {
                    Some(check_roots("--collector-ca-file", Roots::File(ca.into()))?)
                }
                (true, None) => Some(check_roots(
                    "SSL_CERT_FILE",
                    Roots::system(ssl_cert_file.clone()),
                )?),
                (false, Some(_)) => {
                    return Err(Error::config(
                        "--collector-ca-file",
                        "only for an https --collector",
                    ))
                }
                (false, None) => None,
            };
            (Some(endpoint), roots)
        }
        (None, Mode::DryRun) => (None, None),
        (None, _) => {
            return Err(Error::config(
                "--collector",
                "required unless --dry-run (or set SPARTAKUS_COLLECTOR)",
            ))
        }
    };

    let in_cluster = match (
        env("KUBERNETES_SERVICE_HOST"),
        env("KUBERNETES_SERVICE_PORT"),
    ) {
        (Some(host), Some(port)) if !host.is_empty() && !port.is_empty() => Some((host, port)),
        _ => None,
    };
    let service_account = |file: &str| Path::new(SERVICE_ACCOUNT_DIR).join(file);
    let (kube_api, token_file, ca_file) = match (kube_api, in_cluster) {
        (Some(api), _) => (
            api,
            token_file.map(PathBuf::from),
            ca_file.map(PathBuf::from),
        ),
        (None, Some((host, port))) => (
            values::in_cluster_api(&host, &port),
            Some(token_file.map_or_else(|| service_account("token"), PathBuf::from)),
            Some(ca_file.map_or_else(|| service_account("ca.crt"), PathBuf::from)),
        ),
        (None, None) => return Err(Error::config(
            "--kube-api",
            "required outside a pod, where KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT \
                 are not set (or set SPARTAKUS_KUBE_API)",
        )),
    };
    let kube_https = values::check_url(&kube_api).map_err(|e| Error::config("--kube-api", e))?;
    let kube_roots = match (kube_https, ca_file) {
        (true, Some(ca)) => Some(check_roots("--ca-file", Roots::File(ca))?),
        (true, None) => Some(check_roots("SSL_CERT_FILE", Roots::system(ssl_cert_file))?),
        (false, Some(_)) => return Err(Error::config("--ca-file", "only for an https --kube-api")),
        (false, None) => None,
    };
    if let Some(path) = &token_file {
        if !kube_https {
            return Err(Error::config(
                "--token-file",
                "refusing to send a token over plain http; use an https --kube-api",
            ));
        }
        kube::read_token(path).map_err(|e| Error::config("--token-file", e))?;
    }

    if let Some(id) = &cluster_id {
        values::check_cluster_id(id).map_err(|e| Error::config("--cluster-id", e))?;
    }
    let extensions_path = extensions_path.map(PathBuf::from);
    let extensions = match &extensions_path {
        Some(path) => extensions::load(path)?,
        None => BTreeMap::new(),
    };

    let period = duration_or("--period", period, Duration::from_secs(24 * 3600))?;
    if period < Duration::from_secs(1) {
        return Err(Error::config("--period", "must be at least 1s"));
    }
    let timeout = duration_or("--timeout", timeout, Duration::from_secs(30))?;
    let log_level = match log_level {
        None => LevelFilter::Info,
        Some(l) => LevelFilter::from_str(&l).map_err(|_| {
            Error::config(
                "--log-level",
                "must be off, error, warn, info, debug or trace",
            )
        })?,
    };
    let mut retry = Policy::default();
    if let Some(base) = env("SPARTAKUS_RETRY_BASE_DELAY") {
        retry.base_delay = values::parse_duration(&base)
            .map_err(|e| Error::config("SPARTAKUS_RETRY_BASE_DELAY", e))?;
    }

    Ok(Command::Run(Box::new(Config {
        mode,
        collector_url,
        collector_roots,
        kube_api: kube_api.trim_end_matches('/').to_string(),
        token_file,
        kube_roots,
        cluster_id,
        extensions_path,
        extensions,
        period,
        timeout,
        log_level,
        retry,
    })))
}

fn duration_or(
    flag: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, Error> {
    value.map_or(Ok(default), |v| {
        values::parse_duration(&v).map_err(|e| Error::config(flag, e))
    })
}

fn check_roots(flag: &'static str, roots: Roots) -> Result<Roots, Error> {
    roots.load().map_err(|e| Error::config(flag, e))?;
    Ok(roots)
}

fn pico_message(error: pico_args::Error) -> String {
    match error {
        pico_args::Error::OptionWithoutAValue(_) => "needs a value".into(),
        pico_args::Error::NonUtf8Argument => "must be valid UTF-8".into(),
        other => other.to_string(),
    }
}
