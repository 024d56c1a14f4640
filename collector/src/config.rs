//! Command-line flags and their environment fallbacks, parsed into a typed
//! `Command`: serve (`Config`), or a subcommand (config/commands.rs).
//! Owns the HELP text (config/help.txt), which is the flags' spec. Reads
//! the files flags name; does not open sockets or connect to anything.

use crate::db::Db;
use crate::error::Error;
use crate::ingest::peer::{Cidr, Keep};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

mod commands;
pub use commands::{ExportArgs, ImportArgs, MigrateArgs, OnError, PruneArgs, SummaryArgs};

/// The flags' spec, printed by --help.
pub const HELP: &str = include_str!("config/help.txt");

/// Everything the collector needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where /metrics and /version are served, apart from reports.
    pub metrics_listen: Option<SocketAddr>,
    pub db: Db,
    pub max_body_bytes: usize,
    /// Bytes of request bodies held at once, over all connections.
    pub body_memory: usize,
    pub max_connections: usize,
    pub read_timeout: Duration,
    pub trusted_proxies: Vec<Cidr>,
    pub received_from: Keep,
    /// Reports per client address per minute.
    pub rate_limit: Option<u32>,
    /// The paths of the PEM certificate chain and its private key, which
    /// `https.rs` reads (and reads again when they change).
    pub tls: Option<(String, String)>,
    pub log_level: log::LevelFilter,
    pub log_format: spartakus_log::Format,
    /// `--stats on`: GET /stats and the usage gauges, under these rules.
    pub stats: Option<crate::insight::stats::Rules>,
}

/// What the command line asks for.
pub enum Command {
    Run(Box<Config>),
    Summary(SummaryArgs),
    Prune(PruneArgs),
    Import(ImportArgs),
    Export(ExportArgs),
    Migrate(MigrateArgs),
    Help,
    Version,
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses flags, falling back to `env` for each one that is absent.
pub fn parse(args: Vec<OsString>, env: Env) -> Result<Command, Error> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains("--help") || args.contains("-h") {
        return Ok(Command::Help);
    }
    if args.contains("--version") || args.contains("-V") {
        return Ok(Command::Version);
    }
    let command = args
        .subcommand()
        .map_err(|_| Error::usage("arguments", "must be valid UTF-8"))?;
    match command.as_deref() {
        None => parse_run(args, env),
        Some("summary") => commands::summary(args, env),
        Some("prune") => commands::prune(args, env),
        Some("import") => commands::import(args, env),
        Some("export") => commands::export(args, env),
        Some("migrate") => commands::migrate(args, env),
        Some(other) => Err(unexpected(other)),
    }
}

/// One flag's value, else its environment variable's when it has one.
fn flag(
    args: &mut pico_args::Arguments,
    env: Env,
    name: &'static str,
    var: Option<&str>,
) -> Result<Option<String>, Error> {
    match args.opt_value_from_str::<_, String>(name) {
        Ok(Some(v)) => Ok(Some(v)),
        Ok(None) => Ok(var.and_then(env).filter(|v| !v.is_empty())),
        Err(_) => Err(Error::usage(name, "needs a value")),
    }
}

/// Refuses leftover arguments, which are typos more often than not.
fn finish(args: pico_args::Arguments) -> Result<(), Error> {
    match args.finish().first() {
        Some(extra) => Err(unexpected(&extra.to_string_lossy())),
        None => Ok(()),
    }
}

fn unexpected(extra: &str) -> Error {
    // A misplaced URL may hold a password.
    let secret = ["://", "@", "password"].iter().any(|s| extra.contains(s));
    let shown = match secret {
        true => "argument (not shown: it may hold a password)".to_string(),
        false => format!("{extra:?}"),
    };
    Error::usage("arguments", &format!("unexpected {shown}; see --help"))
}

/// `--db-url` and `--db-ca-file`, which every command takes, unchecked.
type DbFlags = (Option<String>, Option<String>);

fn db_flags(args: &mut pico_args::Arguments, env: Env) -> Result<DbFlags, Error> {
    let url = flag(args, env, "--db-url", Some("DATABASE_URL"))?;
    let ca_file = flag(args, env, "--db-ca-file", Some("SPARTAKUS_DB_CA_FILE"))?;
    // Empty means unset for every other variable, but here it would mean
    // plain instead of TLS: more likely a missing Secret than a choice.
    if ca_file.is_none() && env("SPARTAKUS_DB_CA_FILE").is_some() {
        return Err(Error::usage(
            "--db-ca-file",
            "SPARTAKUS_DB_CA_FILE is set but empty",
        ));
    }
    Ok((url, ca_file))
}

fn db_config((url, ca_file): DbFlags) -> Result<Db, Error> {
    let url = url.ok_or_else(|| Error::usage("--db-url", "required (or set DATABASE_URL)"))?;
    Db::new(&url, ca_file.as_deref())
}

fn parse_run(mut args: pico_args::Arguments, env: Env) -> Result<Command, Error> {
    let db = db_flags(&mut args, env)?;
    let mut value = |name, var| flag(&mut args, env, name, Some(var));
    let listen = value("--listen", "SPARTAKUS_LISTEN")?;
    let metrics_listen = value("--metrics-listen", "SPARTAKUS_METRICS_LISTEN")?;
    let body_memory = value("--body-memory", "SPARTAKUS_BODY_MEMORY")?;
    let max_body = value("--max-body-bytes", "SPARTAKUS_MAX_BODY_BYTES")?;
    let max_connections = value("--max-connections", "SPARTAKUS_MAX_CONNECTIONS")?;
    let read_timeout = value("--read-timeout", "SPARTAKUS_READ_TIMEOUT")?;
    let received_from = value("--received-from", "SPARTAKUS_RECEIVED_FROM")?;
    let rate_limit = value("--rate-limit", "SPARTAKUS_RATE_LIMIT")?;
    let tls_cert = value("--tls-cert", "SPARTAKUS_TLS_CERT")?;
    let tls_key = value("--tls-key", "SPARTAKUS_TLS_KEY")?;
    let log_level = value("--log-level", "SPARTAKUS_LOG_LEVEL")?;
    let log_format = value("--log-format", "SPARTAKUS_LOG_FORMAT")?;
    let stats = value("--stats", "SPARTAKUS_STATS")?;
    let min_clusters = value("--min-clusters", "SPARTAKUS_MIN_CLUSTERS")?;
    let min_days = value("--min-days", "SPARTAKUS_MIN_DAYS")?;
    let mut proxies: Vec<String> = args
        .values_from_str("--trusted-proxy")
        .map_err(|_| Error::usage("--trusted-proxy", "needs a value"))?;
    if proxies.is_empty() {
        if let Some(list) = env("SPARTAKUS_TRUSTED_PROXY") {
            proxies = list.split(',').map(|s| s.trim().to_string()).collect();
            proxies.retain(|s| !s.is_empty());
        }
    }
    finish(args)?;

    let listen = listen.as_deref().unwrap_or("127.0.0.1:8080");
    let listen = SocketAddr::from_str(listen).map_err(|_| {
        Error::usage(
            "--listen",
            "must be HOST:PORT with an IP host, e.g. 0.0.0.0:8080",
        )
    })?;
    let metrics_listen = match metrics_listen.as_deref().map(SocketAddr::from_str) {
        None => None,
        Some(Ok(addr)) => Some(addr),
        Some(Err(_)) => {
            let rule = "must be HOST:PORT with an IP host, e.g. 0.0.0.0:9090";
            return Err(Error::usage("--metrics-listen", rule));
        }
    };
    let db = db_config(db)?;
    let max_body_bytes = number(
        "--max-body-bytes",
        max_body.as_deref(),
        8 << 20,
        64,
        1 << 30,
    )?;
    let body_memory = number(
        "--body-memory",
        body_memory.as_deref(),
        64 << 20,
        64,
        1 << 34,
    )?;
    // A body's buffer grows by doubling, so a full-size body may reserve
    // up to twice what it holds before its last bytes arrive.
    if body_memory < max_body_bytes.saturating_mul(2) {
        let rule = "must be at least twice --max-body-bytes, or a full-size body could not be read";
        return Err(Error::usage("--body-memory", rule));
    }
    let max_connections = number(
        "--max-connections",
        max_connections.as_deref(),
        1024,
        1,
        65536,
    )?;
    let read_timeout = number("--read-timeout", read_timeout.as_deref(), 10, 1, 3600)?;
    let read_timeout = Duration::from_secs(read_timeout as u64);
    let tls = match (tls_cert, tls_key) {
        (None, None) => None,
        (Some(_), None) => return Err(Error::usage("--tls-key", "required with --tls-cert")),
        (None, Some(_)) => return Err(Error::usage("--tls-cert", "required with --tls-key")),
        (Some(cert), Some(key)) => Some((cert, key)),
    };
    let received_from = Keep::from_str(received_from.as_deref().unwrap_or("full"))
        .map_err(|_| Error::usage("--received-from", "must be full, truncated or none"))?;
    let rate_limit = match rate_limit.as_deref() {
        None => None,
        Some(text) => match text.strip_suffix("/min").map(str::parse::<u32>) {
            Some(Ok(n)) if (1..=1_000_000).contains(&n) => Some(n),
            _ => {
                let rule = "must be reports per minute like 10/min, from 1 to 1000000";
                return Err(Error::usage("--rate-limit", rule));
            }
        },
    };
    let trusted_proxies = proxies
        .iter()
        .map(|p| {
            Cidr::from_str(p).map_err(|_| {
                Error::usage(
                    "--trusted-proxy",
                    &format!("{p:?} is not a CIDR like 10.0.0.0/8"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let log_level = log::LevelFilter::from_str(log_level.as_deref().unwrap_or("info"))
        .map_err(|_| Error::usage("--log-level", "must be error, warn, info, debug or trace"))?;
    let log_format = spartakus_log::Format::from_str(log_format.as_deref().unwrap_or("text"))
        .map_err(|()| Error::usage("--log-format", "must be text or json"))?;
    // Bounded by the shortest window (7 days), so every window can show
    // something.
    let min_days = number("--min-days", min_days.as_deref(), 2, 1, 7)?;
    let min_clusters = number("--min-clusters", min_clusters.as_deref(), 5, 2, 1_000_000)?;
    let rules = crate::insight::stats::Rules {
        min_clusters: u32::try_from(min_clusters).expect("bounded to 1000000 just above"),
        min_days: u32::try_from(min_days).expect("bounded to 7 just above"),
    };
    let stats = match stats.as_deref() {
        None | Some("off") => None,
        Some("on") => Some(rules),
        Some(_) => return Err(Error::usage("--stats", "must be off or on")),
    };
    Ok(Command::Run(Box::new(Config {
        listen,
        metrics_listen,
        db,
        max_body_bytes,
        body_memory,
        max_connections,
        read_timeout,
        trusted_proxies,
        received_from,
        rate_limit,
        tls,
        log_level,
        log_format,
        stats,
    })))
}

fn number(
    flag: &'static str,
    value: Option<&str>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, Error> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::usage(
            flag,
            &format!("must be a whole number from {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests;
