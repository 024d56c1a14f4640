//! Retrying transient failures: exponential backoff with jitter, Retry-After, a bounded budget.
//!
//! Shared by the Kubernetes client and the publisher, so both follow one policy. It owns when
//! and how long to wait; the callers own which answers are transient (429, 5xx, connection
//! errors and timeouts) and which are final (401, 403, other 4xx).

use std::time::Duration;

use crate::error::Error;
use crate::ids::random_below;
use crate::shutdown::Shutdown;

/// How persistent to be with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub base_delay: Duration,
    /// No single wait is longer, and a Retry-After beyond it ends the retries.
    pub max_delay: Duration,
    /// The waits of one request never add up to more than this.
    pub max_total_delay: Duration,
}

impl Default for Policy {
    /// About a minute of patience: enough to ride out an API server restart or a collector
    /// deploy, short enough that a daily report is not stuck for long.
    fn default() -> Policy {
        Policy {
            attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_total_delay: Duration::from_secs(60),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try, after at least `after` if the server said so (Retry-After).
    Transient {
        error: Error,
        after: Option<Duration>,
    },
    /// Retrying cannot help (401, 403, other 4xx, undecodable answers).
    Final(Error),
}

/// Runs `attempt` until it succeeds, fails finally, or the policy's budget is spent.
///
/// The errors name the request already, so log lines need no more context. Waits go through
/// `shutdown`, so a signal ends them and the result is `Error::Interrupted`.
pub fn run<T>(
    policy: &Policy,
    shutdown: &Shutdown,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<T, Error> {
    let mut waited = Duration::ZERO;
    let mut number = 1;
    loop {
        // A signal ends a report between any two requests (each page of the
        // node list, the publish), not only during a retry wait.
        if shutdown.is_requested() {
            return Err(Error::Interrupted);
        }
        let (error, after) = match attempt() {
            Ok(value) => return Ok(value),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Transient { error, after }) => (error, after),
        };
        if number >= policy.attempts {
            return Err(gave_up(error, &format!("gave up after {number} attempts")));
        }
        if let Some(after) = after.filter(|a| *a > policy.max_delay) {
            let note = format!(
                "server asked to wait {}s, beyond the retry budget",
                after.as_secs()
            );
            return Err(gave_up(error, &note));
        }
        let delay = backoff(policy, number).max(after.unwrap_or_default());
        if waited + delay > policy.max_total_delay {
            return Err(gave_up(error, &format!("gave up after {number} attempts")));
        }
        log::warn!(
            "{error}; retrying in {:.1}s (attempt {} of {})",
            delay.as_secs_f64(),
            number + 1,
            policy.attempts
        );
        if shutdown.sleep(delay) {
            return Err(Error::Interrupted);
        }
        waited += delay;
        number += 1;
    }
}

/// The wait after failed attempt `number` (1-based): "equal jitter", half fixed and half
/// random, so many volunteers restarted together do not retry in lockstep.
fn backoff(policy: &Policy, number: u32) -> Duration {
    let doubling = 1u32
        .checked_shl(number.saturating_sub(1))
        .unwrap_or(u32::MAX);
    let full = policy
        .base_delay
        .saturating_mul(doubling)
        .min(policy.max_delay);
    let half = full / 2;
    let jitter_ms = random_below(u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
    half + Duration::from_millis(jitter_ms)
}

/// The most read of an error answer, which is only mined for its message.
const MAX_ERROR_BYTES: u64 = 64 * 1024;

/// An error answer's Retry-After, in seconds form.
pub fn retry_after(response: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?;
    parse_retry_after(value.to_str().ok()?)
}

/// The JSON document in an error answer's body, read to at most 64 KiB.
pub fn error_body<T: serde::de::DeserializeOwned>(
    response: &mut ureq::http::Response<ureq::Body>,
) -> Option<T> {
    let body = response.body_mut().with_config().limit(MAX_ERROR_BYTES);
    serde_json::from_reader(body.reader()).ok()
}

/// 429 and 5xx are worth another try (after `after`, when the server said);
/// every other refusal is final.
pub fn by_status(status: u16, error: Error, after: Option<Duration>) -> Failure {
    if status == 429 || (500..=599).contains(&status) {
        Failure::Transient { error, after }
    } else {
        Failure::Final(error)
    }
}

/// Reads Retry-After in its seconds form. The HTTP-date form is rare from API servers and
/// collectors, and is ignored in favour of our own backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn gave_up(error: Error, note: &str) -> Error {
    match error {
        Error::Kube(m) => Error::Kube(format!("{m} ({note})")),
        Error::Publish(m) => Error::Publish(format!("{m} ({note})")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Policy {
        Policy {
            base_delay: Duration::from_millis(1),
            ..Policy::default()
        }
    }

    fn transient(after: Option<Duration>) -> Failure {
        Failure::Transient {
            error: Error::Kube("kubernetes api: 503".into()),
            after,
        }
    }

    #[test]
    fn transient_failures_are_retried_until_success() {
        let mut calls = 0;
        let got = run(&fast(), &Shutdown::default(), || {
            calls += 1;
            if calls < 3 {
                Err(transient(None))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(got.ok(), Some(3));
    }

    #[test]
    fn final_failures_are_not_retried() {
        let mut calls = 0;
        let got: Result<(), Error> = run(&fast(), &Shutdown::default(), || {
            calls += 1;
            Err(Failure::Final(Error::Kube("kubernetes api: 403".into())))
        });
        assert!(got.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn the_attempt_budget_is_bounded() {
        let mut calls = 0;
        let got: Result<(), Error> = run(&fast(), &Shutdown::default(), || {
            calls += 1;
            Err(transient(None))
        });
        assert_eq!(calls, 5);
        let message = got.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("gave up after 5 attempts"), "{message}");
    }

    #[test]
    fn retry_after_beyond_the_longest_wait_ends_the_retries() {
        let mut calls = 0;
        let got: Result<(), Error> = run(&fast(), &Shutdown::default(), || {
            calls += 1;
            Err(transient(Some(Duration::from_secs(3600))))
        });
        assert!(got.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = Policy::default();
        for number in 1..=10 {
            let full = Duration::from_secs(1 << (number - 1).min(5)).min(p.max_delay);
            let d = backoff(&p, number);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {number}: {d:?} vs {full:?}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
