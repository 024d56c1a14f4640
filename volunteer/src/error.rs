//! The one error type of the volunteer, and how each kind maps to an exit code.
//!
//! It owns the wording of failures: every message reads "context: cause" in lower case and
//! says what to do where it can. It does not own logging; callers decide whether an error is
//! logged and the loop goes on, or the process exits. No variant ever carries the bearer token:
//! errors are built from paths, status codes and library error texts, never from headers.

use std::fmt;

/// Everything that can go wrong in the volunteer.
#[derive(Debug)]
pub enum Error {
    /// A flag, environment variable or file named by one is unusable. Raised at startup (exit 2)
    /// and when the extensions are re-read before a later report. `flag` is the flag to fix,
    /// e.g. `--collector`; `message` is the rule that was broken.
    Config { flag: String, message: String },
    /// The Kubernetes API could not be read: a refused request, an unexpected answer, or a
    /// transient failure that outlived the retry budget. The message already starts with
    /// "kubernetes api: ".
    Kube(String),
    /// The collector did not accept the report (same rules as `Kube`). The message already
    /// starts with "collector: ".
    Publish(String),
    /// Node mode (`--machine-id-file`): this node does not report for the cluster today, for
    /// the reason given (another node is chosen, or this one cannot be told apart). Not a
    /// failure: the report ends with this one line and exit 0.
    Standby(String),
    /// A SIGTERM or SIGINT arrived while a report was waiting to retry; the report is abandoned.
    Interrupted,
}

impl Error {
    /// A configuration error naming `flag`.
    pub fn config(flag: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            flag: flag.into(),
            message: message.into(),
        }
    }

    /// The process exit code for this error: 2 for bad configuration, 1 for a failed report.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config { .. } => 2,
            // A timer on every node: the nodes that stand aside have not failed.
            Error::Standby(_) => 0,
            // Interrupted only reaches here from --once or --dry-run (the
            // loop ends on a signal with Ok): the report was not delivered,
            // so a systemd unit or CronJob must not count it a success.
            Error::Kube(_) | Error::Publish(_) | Error::Interrupted => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { flag, message } => write!(f, "{flag}: {message}"),
            Error::Kube(message) | Error::Publish(message) => f.write_str(message),
            Error::Standby(reason) => write!(f, "no report from this node: {reason}"),
            Error::Interrupted => f.write_str("interrupted: shutting down"),
        }
    }
}

impl std::error::Error for Error {}

/// Cuts text that came from a remote peer to `max` characters and replaces control characters,
/// so a hostile or broken server cannot flood or forge our log lines.
pub fn bounded(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_flag_first() {
        let e = Error::config("--period", "must be a duration like 24h");
        assert_eq!(e.to_string(), "--period: must be a duration like 24h");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn bounded_cuts_and_strips_control_characters() {
        assert_eq!(bounded("a\nb", 10), "a b");
        assert_eq!(bounded("abcdef", 3), "abc…");
    }
}
