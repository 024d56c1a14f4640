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
use ring::hmac;

use crate::ballot::MachineHash;
use crate::elect;
use crate::error::Error;
use crate::extensions;
use crate::ids;
use crate::kube;
use crate::retry::Policy;
use crate::spread;
use crate::tls::{self, Roots};
use crate::values;

/// The whole interface, as printed by `--help`.
pub const HELP: &str = include_str!("help.txt");

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

/// The object whose UID the default cluster id is a hash of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// Namespace kube-system: it cannot be deleted. Node credentials may not read it.
    KubeSystem,
    /// Service default/kubernetes: readable with node credentials, but recreated with a new
    /// UID if someone deletes it.
    KubernetesService,
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
    /// `--cluster-id`, reported as given.
    pub cluster_id: Option<String>,
    /// `--cluster-id-from`: the object whose UID the default cluster id hashes.
    pub cluster_id_from: IdSource,
    /// `--cluster-id-key`, read at startup. (ring's `Debug` shows the algorithm, not the key.)
    pub cluster_id_key: Option<hmac::Key>,
    /// `--client-cert` and the file with its key (`--client-key`, else the same file).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `--machine-id-file`, hashed at startup: node mode, where only the day's chosen node
    /// reports (`elect.rs`).
    pub machine_id: Option<MachineHash>,
    pub extensions_path: Option<PathBuf>,
    /// The extensions as read at startup, used by the first report.
    pub extensions: BTreeMap<String, String>,
    pub period: Duration,
    /// `--spread`: with `--once`, the wait before the report is this cluster's slot in it.
    pub spread: Duration,
    pub timeout: Duration,
    pub log_level: LevelFilter,
    /// `--log-format`: text lines, or one JSON object per line.
    pub log_format: spartakus_log::Format,
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
    let cluster_id_key = value("--cluster-id-key", "SPARTAKUS_CLUSTER_ID_KEY")?;
    // Set but empty is more likely a missing Secret than a wish for the
    // unkeyed hash, which would change every report's cluster id.
    if cluster_id_key.is_none() && env("SPARTAKUS_CLUSTER_ID_KEY").is_some_and(|v| v.is_empty()) {
        let rule = "SPARTAKUS_CLUSTER_ID_KEY is set but empty; unset it for the unkeyed hash";
        return Err(Error::config("--cluster-id-key", rule));
    }
    let cluster_id_from = value("--cluster-id-from", "SPARTAKUS_CLUSTER_ID_FROM")?;
    let client_cert = value("--client-cert", "SPARTAKUS_CLIENT_CERT")?;
    let client_key = value("--client-key", "SPARTAKUS_CLIENT_KEY")?;
    let machine_id_file = value("--machine-id-file", "SPARTAKUS_MACHINE_ID_FILE")?;
    let extensions_path = value("--extensions", "SPARTAKUS_EXTENSIONS")?;
    let period = value("--period", "SPARTAKUS_PERIOD")?;
    let spread = value("--spread", "SPARTAKUS_SPREAD")?;
    let timeout = value("--timeout", "SPARTAKUS_TIMEOUT")?;
    let log_level = value("--log-level", "SPARTAKUS_LOG_LEVEL")?;
    let log_format = value("--log-format", "SPARTAKUS_LOG_FORMAT")?;
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
            // With a client certificate, the service account token is not the credential.
            match (&token_file, &client_cert) {
                (None, Some(_)) => None,
                _ => Some(token_file.map_or_else(|| service_account("token"), PathBuf::from)),
            },
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

    let client_cert = match (client_cert, client_key) {
        (None, Some(_)) => return Err(Error::config("--client-key", "only with --client-cert")),
        (None, None) => None,
        (Some(cert), key) => {
            if !kube_https {
                return Err(Error::config(
                    "--client-cert",
                    "only for an https --kube-api",
                ));
            }
            if token_file.is_some() {
                return Err(Error::config(
                    "--client-cert",
                    "not with --token-file: one credential, the certificate or the token",
                ));
            }
            let key = PathBuf::from(key.unwrap_or_else(|| cert.clone()));
            let cert = PathBuf::from(cert);
            tls::read_client_cert(&cert, &key).map_err(|e| Error::config("--client-cert", e))?;
            Some((cert, key))
        }
    };
    let cluster_id_from = match cluster_id_from.as_deref() {
        None | Some("kube-system") => IdSource::KubeSystem,
        Some("kubernetes-service") => IdSource::KubernetesService,
        Some(_) => {
            return Err(Error::config(
                "--cluster-id-from",
                "must be kube-system or kubernetes-service",
            ))
        }
    };
    if client_cert.is_some() && cluster_id.is_none() && cluster_id_from == IdSource::KubeSystem {
        return Err(Error::config(
            "--client-cert",
            "node credentials may not read namespace kube-system: give --cluster-id, or \
             --cluster-id-from kubernetes-service (and the same to every volunteer of this \
             cluster, so it keeps one id)",
        ));
    }
    let machine_id = match machine_id_file {
        Some(path) => Some(
            elect::read_machine_id(Path::new(&path))
                .map_err(|e| Error::config("--machine-id-file", e))?,
        ),
        None => None,
    };
    if let Some(id) = &cluster_id {
        values::check_cluster_id(id).map_err(|e| Error::config("--cluster-id", e))?;
    }
    let cluster_id_key = match (cluster_id_key, &cluster_id) {
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "--cluster-id-key",
                "not with --cluster-id, which is reported as given",
            ))
        }
        (Some(path), None) => Some(
            ids::read_key(Path::new(&path)).map_err(|e| Error::config("--cluster-id-key", e))?,
        ),
        (None, _) => None,
    };
    let extensions_path = extensions_path.map(PathBuf::from);
    let extensions = match &extensions_path {
        Some(path) => extensions::load(path)?,
        None => BTreeMap::new(),
    };

    let period = duration_or("--period", period, Duration::from_secs(24 * 3600))?;
    if period < Duration::from_secs(1) {
        return Err(Error::config("--period", "must be at least 1s"));
    }
    let spread = duration_or("--spread", spread, Duration::ZERO)?;
    if spread > spread::MAX_SPREAD {
        return Err(Error::config("--spread", "must be at most 24h"));
    }
    if !spread.is_zero() && mode != Mode::Once {
        return Err(Error::config(
            "--spread",
            "only with --once (the loop spreads its reports with jitter)",
        ));
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
    let log_format = match log_format {
        None => spartakus_log::Format::Text,
        Some(f) => spartakus_log::Format::from_str(&f)
            .map_err(|()| Error::config("--log-format", "must be text or json"))?,
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
        cluster_id_from,
        cluster_id_key,
        client_cert,
        machine_id,
        extensions_path,
        extensions,
        period,
        spread,
        timeout,
        log_level,
        log_format,
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
