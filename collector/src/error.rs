//! The collector's one error type for start-up, shutdown and the
//! subcommands. Request-level failures are answers (see
//! `http.rs`), not errors, and never reach here.

use std::fmt;

/// Why the collector could not start or run.
#[derive(Debug)]
pub enum Error {
    /// A flag or environment variable is missing or invalid (exit code 2).
    Usage { flag: &'static str, rule: String },
    /// The listening socket could not be opened.
    Listen(String),
    /// Installing the signal handlers failed.
    Signals(std::io::Error),
    /// A subcommand could not connect or query, or found no schema.
    Database(String),
    /// `import` could not read a file, or stopped at a bad line: the
    /// message names the file and line.
    Input(String),
    /// Writing a subcommand's output failed (a closed pipe).
    Output(std::io::Error),
}

impl Error {
    pub fn usage(flag: &'static str, rule: &str) -> Error {
        Error::Usage {
            flag,
            rule: rule.to_string(),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. } => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { flag, rule } => write!(f, "{flag}: {rule}"),
            Error::Listen(cause) => write!(f, "listen: {cause}"),
            Error::Signals(cause) => write!(f, "signals: {cause}"),
            Error::Database(cause) => write!(f, "database: {cause}"),
            Error::Input(cause) => write!(f, "import: {cause}"),
            Error::Output(cause) => write!(f, "stdout: {cause}"),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        // 42P01 is undefined_table, views included: only the serving
        // collector, import and migrate create the schema, so that summary
        // can run with a read-only role and changes nothing it reads.
        if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) {
            return Error::Database(format!(
                "{}; run this version of spartakus-collector (serving) once against this \
                 database to create the schema",
                crate::ingest::store::describe(&e)
            ));
        }
        Error::Database(crate::ingest::store::describe(&e))
    }
}
