//! Command-line flags and their environment fallbacks, parsed into a typed
//! `Config`. Owns the HELP text, which is the flags' spec. Does not open
//! sockets or connect to anything.

use crate::error::Error;
use crate::peer::Cidr;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::str::FromStr;

pub const HELP: &str = "\
spartakus-collector: receives anonymous Kubernetes usage reports and stores them in PostgreSQL.

USAGE:
    spartakus-collector [OPTIONS]

OPTIONS:
    --listen HOST:PORT       address to serve HTTP on [default: 127.0.0.1:8080]
                             [env: SPARTAKUS_LISTEN]
    --db-url URL             PostgreSQL connection URL, e.g.
                             postgres://spartakus@db:5432/spartakus [env: DATABASE_URL]
    --threads N              request worker threads [default: 64] [env: SPARTAKUS_THREADS]
    --max-body-bytes N       largest report body accepted [default: 8388608]
                             [env: SPARTAKUS_MAX_BODY_BYTES]
    --trusted-proxy CIDR     a proxy whose X-Forwarded-For / X-Real-IP is believed;
                             repeatable [default: none]
                             [env: SPARTAKUS_TRUSTED_PROXY, comma-separated]
    --log-level LEVEL        error, warn, info, debug or trace [default: info]
                             [env: SPARTAKUS_LOG_LEVEL]
    --version                print the version and exit
    --help                   print this help and exit

Flags win over environment variables. The collector applies its schema on start.
";

/// Everything the collector needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: postgres::Config,
    pub threads: usize,
    pub max_body_bytes: usize,
    pub trusted_proxies: Vec<Cidr>,
    pub log_level: log::LevelFilter,
}

/// What the command line asks for.
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

/// Parses flags, falling back to `env` for each one that is absent.
pub fn parse(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> Result<Command, Error> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains("--help") || args.contains("-h") {
        return Ok(Command::Help);
    }
    if args.contains("--version") || args.contains("-V") {
        return Ok(Command::Version);
    }
    let mut flag = |name: &'static str, var: &str| -> Result<Option<String>, Error> {
        match args.opt_value_from_str::<_, String>(name) {
            Ok(Some(v)) => Ok(Some(v)),
            Ok(None) => Ok(env(var).filter(|v| !v.is_empty())),
            Err(_) => Err(Error::usage(name, "needs a value")),
        }
    };
    let listen = flag("--listen", "SPARTAKUS_LISTEN")?;
    let db_url = flag("--db-url", "DATABASE_URL")?;
    let threads = flag("--threads", "SPARTAKUS_THREADS")?;
    let max_body = flag("--max-body-bytes", "SPARTAKUS_MAX_BODY_BYTES")?;
    let log_level = flag("--log-level", "SPARTAKUS_LOG_LEVEL")?;
    let mut proxies: Vec<String> = args
        .values_from_str("--trusted-proxy")
        .map_err(|_| Error::usage("--trusted-proxy", "needs a value"))?;
    if proxies.is_empty() {
        if let Some(list) = env("SPARTAKUS_TRUSTED_PROXY") {
            proxies = list.split(',').map(|s| s.trim().to_string()).collect();
            proxies.retain(|s| !s.is_empty());
        }
    }
    if let Some(extra) = args.finish().first() {
        let extra = extra.to_string_lossy();
        return Err(Error::usage(
            "arguments",
            &format!("unexpected {extra:?}; see --help"),
        ));
    }

    let listen = listen.as_deref().unwrap_or("127.0.0.1:8080");
    let listen = SocketAddr::from_str(listen).map_err(|_| {
        Error::usage(
            "--listen",
            "must be HOST:PORT with an IP host, e.g. 0.0.0.0:8080",
        )
    })?;
    let db_url =
        db_url.ok_or_else(|| Error::usage("--db-url", "required (or set DATABASE_URL)"))?;
    let db = postgres::Config::from_str(&db_url).map_err(|_| {
        Error::usage(
            "--db-url",
            "must be a PostgreSQL URL like postgres://user@host/db",
        )
    })?;
    let threads = number("--threads", threads.as_deref(), 64, 1, 4096)?;
    let max_body_bytes = number(
        "--max-body-bytes",
        max_body.as_deref(),
        8 << 20,
        64,
        1 << 30,
    )?;
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
    Ok(Command::Run(Box::new(Config {
        listen,
        db,
        threads,
        max_body_bytes,
        trusted_proxies,
        log_level,
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
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let args = args.iter().map(OsString::from).collect();
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        match parse(args, &env) {
            Ok(Command::Run(c)) => Ok(*c),
            Ok(_) => Err("not a run".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let db = "--db-url=postgres://u@h/d";
        let cases: &[(&[&str], &str)] = &[
            (&[], "--db-url: required"),
            (&[db, "--listen", "nowhere"], "--listen: must be HOST:PORT"),
            (&[db, "--threads", "0"], "--threads: must be a whole number"),
            (
                &[db, "--threads", "many"],
                "--threads: must be a whole number",
            ),
            (&[db, "--max-body-bytes", "-1"], "--max-body-bytes: must be"),
            (
                &[db, "--trusted-proxy", "10.0.0.0/33"],
                "--trusted-proxy: \"10.0.0.0/33\" is not a CIDR",
            ),
            (&[db, "--log-level", "loud"], "--log-level: must be"),
            (&[db, "--db-url"], "--db-url: needs a value"),
            (&[db, "extra"], "arguments: unexpected \"extra\""),
            (
                &["--db-url", "mysql://x"],
                "--db-url: must be a PostgreSQL URL",
            ),
        ];
        for (args, want) in cases {
            let got = run(args, &[]).expect_err("should fail");
            assert!(
                got.starts_with(want),
                "args {args:?}: want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn env_is_a_fallback_and_flags_win() {
        let env = [
            ("DATABASE_URL", "postgres://u@h/d"),
            ("SPARTAKUS_LISTEN", "0.0.0.0:9000"),
            ("SPARTAKUS_TRUSTED_PROXY", "10.0.0.0/8, 192.168.0.0/16"),
            ("SPARTAKUS_THREADS", "3"),
        ];
        let c = run(&["--threads", "5"], &env).expect("valid");
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.threads, 5);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.max_body_bytes, 8 << 20);
    }
}
