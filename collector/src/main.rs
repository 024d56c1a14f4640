//! spartakus-collector: flags, logging and wiring; `run` serves until SIGTERM
//! or SIGINT, and the `summary` and `prune` subcommands print what they
//! found or did. Every error becomes an exit code here and nowhere else.
#![forbid(unsafe_code)]

mod config;
mod db;
mod error;
mod ingest;
mod insight;
mod metrics;
mod process;
mod schema;

use config::{Command, Config};
use error::Error;
use ingest::{http, https, limit, server, store};
use insight::{export, import, migrate, prune, summary};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The version, stamped from git by ./build, else the crate's.
pub const VERSION: &str = match option_env!("SPARTAKUS_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

fn main() {
    let args = std::env::args_os().skip(1).collect();
    let code = match config::parse(args, &|name| std::env::var(name).ok()) {
        Ok(Command::Help) => {
            print!("{}", config::HELP);
            0
        }
        Ok(Command::Version) => {
            println!("spartakus-collector {VERSION}");
            0
        }
        Ok(Command::Run(config)) => match run(*config) {
            Ok(()) => 0,
            Err(e) => fail(&e),
        },
        Ok(Command::Summary(args)) => {
            let render = if args.json {
                summary::Summary::json
            } else {
                summary::Summary::text
            };
            print(summary::summary(&args).map(|s| render(&s)))
        }
        Ok(Command::Prune(args)) => print(prune::prune(&args).map(|p| p.to_string())),
        Ok(Command::Migrate(args)) => print(migrate::migrate(&args).map(|m| m.to_string())),
        Ok(Command::Import(args)) => print(import::import(&args).map(|i| i.to_string())),
        Ok(Command::Export(args)) => {
            match export::export(
                &args,
                &mut std::io::BufWriter::new(std::io::stdout().lock()),
            ) {
                Ok(_) => 0,
                Err(e) => fail(&e),
            }
        }
        Err(e) => fail(&e),
    };
    std::process::exit(code);
}

fn fail(e: &Error) -> i32 {
    eprintln!("spartakus-collector: {e}");
    e.exit_code()
}

/// Writes a subcommand's output; `print!` would panic on a closed pipe.
fn print(output: Result<String, Error>) -> i32 {
    let written = output.and_then(|text| {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(Error::Output)
    });
    match written {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

fn run(config: Config) -> Result<(), Error> {
    // Other crates stop at info: at debug, tokio-postgres logs every INSERT's
    // parameters, which are whole reports.
    let (level, info) = (config.log_level, log::LevelFilter::Info);
    spartakus_log::init(config.log_format, "spartakus_collector", level, info)
        .map_err(|e| Error::usage("--log-level", &e))?;

    let tls = match &config.tls {
        Some((cert, key)) => Some(https::server_config(cert, key)?),
        None => None,
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(Error::Signals)?;
    let limits = tiny_http::Limits {
        io_timeout: config.read_timeout,
        request_timeout: config.read_timeout * 3,
        max_connections: config.max_connections,
        max_body: config.max_body_bytes,
        body_budget: config.body_memory,
    };
    let https = tls.is_some();
    let server = Arc::new(server::bind(config.listen, tls, limits)?);
    let metrics_server = match config.metrics_listen {
        Some(addr) => Some(Arc::new(server::bind(addr, None, server::METRICS_LIMITS)?)),
        None => None,
    };
    let servers = [Some(server.clone()), metrics_server.clone()];
    server::on_signals(
        signals,
        servers.into_iter().flatten().collect(),
        stopping.clone(),
    );
    let addr = server.local_addr();
    let scheme = if https { "https" } else { "http" };
    log::info!("spartakus-collector {VERSION} serving {scheme}, listening on {addr}");
    if let Some(m) = &metrics_server {
        log::info!("metrics and version on http://{}", m.local_addr());
    }
    log::info!("connecting to PostgreSQL {}", config.db.describe());

    let metrics = Arc::new(metrics::Metrics::default());
    // Its own connection, opened at the first /stats: never the writer's.
    let stats = config
        .stats
        .map(|rules| Arc::new(insight::stats::Stats::new(config.db.clone(), rules)));
    let store = Arc::new(store::Postgres::start(config.db, metrics.clone()));
    let app = http::App {
        store: store.clone(),
        metrics,
        max_body_bytes: config.max_body_bytes,
        stopping: stopping.clone(),
        trusted_proxies: config.trusted_proxies,
        received_from: config.received_from,
        rate_limit: config.rate_limit.map(limit::RateLimit::new),
        version: VERSION,
        metrics_apart: metrics_server.is_some(),
        stats,
    };
    server::serve(&server, metrics_server.as_deref(), &app);
    store.close();
    log::info!("stopped");
    Ok(())
}
