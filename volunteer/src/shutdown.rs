//! The stop flag that SIGTERM and SIGINT raise, and the interruptible sleep built on it.
//!
//! It owns signal handling (through signal-hook's iterator, so no unsafe code here) and the
//! only sleeps in the program: the wait between reports and the wait between retries both go
//! through `Shutdown::sleep`, so a signal ends either at once. It does not interrupt an HTTP
//! request in flight; those are bounded by `--timeout`.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A one-way flag: once requested, shutdown stays requested.
#[derive(Debug, Default)]
pub struct Shutdown {
    requested: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    /// Raises the flag and wakes every sleeper.
    pub fn request(&self) {
        // A poisoned lock still holds a valid bool; a panic elsewhere must not block shutdown.
        *self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        *self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration`, or less if shutdown is requested. Returns true if it was.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut requested = self
            .requested
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Condvars wake spuriously, so loop until the deadline or the flag.
        while !*requested {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            requested = self
                .wake
                .wait_timeout(requested, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *requested
    }
}

/// Starts a thread that raises `shutdown` on the first SIGTERM or SIGINT.
pub fn on_signals(shutdown: Arc<Shutdown>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("received signal {signal}, stopping");
                shutdown.request();
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_ends_early_when_shutdown_is_requested() {
        let shutdown = Arc::new(Shutdown::default());
        let other = Arc::clone(&shutdown);
        let started = Instant::now();
        let waker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            other.request();
        });
        assert!(shutdown.sleep(Duration::from_secs(30)));
        assert!(started.elapsed() < Duration::from_secs(5));
        waker.join().expect("waker thread");
    }

    #[test]
    fn sleep_runs_its_course_without_shutdown() {
        let shutdown = Shutdown::default();
        assert!(!shutdown.sleep(Duration::from_millis(20)));
        assert!(!shutdown.is_requested());
    }
}
