//! The spartakus-volunteer binary: flags into a `Config`, logging, signals, `run`, exit code.
//!
//! Nothing else lives here; see `lib.rs` for where each concern is. Exit codes: 0 success (or
//! the loop stopped by a signal, or in node mode another node reports today), 1 a report failed
//! or was interrupted with `--once` or `--dry-run`, 2 bad configuration.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use spartakus_volunteer::config::{self, Command};
use spartakus_volunteer::shutdown::{self, Shutdown};
use spartakus_volunteer::{app, VERSION};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let env = |name: &str| std::env::var(name).ok();
    let config = match config::parse(args, &env) {
        Ok(Command::Help) => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("spartakus-volunteer {VERSION}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(config)) => *config,
        Err(e) => return fail(&e.to_string(), e.exit_code()),
    };

    // Other crates stop at debug: at trace, ureq-proto hex-dumps each request
    // before encryption, the bearer token included. (spartakus-log prints UTC.)
    let logged = spartakus_log::init(
        config.log_format,
        "spartakus_volunteer",
        config.log_level,
        log::LevelFilter::Debug,
    );
    if let Err(e) = logged {
        return fail(&format!("cannot start logging: {e}"), 1);
    }

    let stop = Arc::new(Shutdown::default());
    if let Err(e) = shutdown::on_signals(Arc::clone(&stop)) {
        return fail(&format!("cannot handle SIGTERM: {e}"), 1);
    }

    log::info!(
        "spartakus-volunteer {VERSION} starting ({:?} mode)",
        config.mode
    );
    match app::run(config, stop) {
        Ok(()) => ExitCode::SUCCESS,
        // The report's own log line already told the story; this is the exit.
        Err(e) => ExitCode::from(e.exit_code()),
    }
}

/// One line on stderr, then the exit code.
fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("spartakus-volunteer: {message}");
    ExitCode::from(code)
}
