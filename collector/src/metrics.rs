//! Counters and the request-duration histogram, rendered in the Prometheus
//! text format for `GET /metrics`. Lock-free on the request path; owns no
//! I/O.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds, in seconds, of the request-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The statuses the collector answers with, the server's own refusals (a
/// bad head, 503 at --max-connections) included; anything else is "other".
const STATUSES: [u16; 15] = [
    200, 204, 400, 404, 405, 408, 413, 414, 415, 429, 431, 501, 503, 505, 0,
];

#[derive(Default)]
pub struct Metrics {
    pub reports_stored: AtomicU64,
    pub reports_duplicate: AtomicU64,
    pub db_errors: AtomicU64,
    responses: [AtomicU64; STATUSES.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_micros: AtomicU64,
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let slot = STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(STATUSES.len() - 1);
        self.responses[slot].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|&le| secs <= le) {
            self.buckets[b].fetch_add(1, Relaxed);
        }
        self.duration_count.fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.duration_micros.fetch_add(micros, Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        };
        counter(
            "spartakus_reports_stored_total",
            "Reports committed to PostgreSQL.",
            self.reports_stored.load(Relaxed),
        );
        counter(
            "spartakus_reports_duplicate_total",
            "Reports acknowledged without storing, because their reportID was already stored.",
            self.reports_duplicate.load(Relaxed),
        );
        counter(
            "spartakus_db_errors_total",
            "Failed PostgreSQL connections and statements.",
            self.db_errors.load(Relaxed),
        );
        let name = "spartakus_http_responses_total";
        out.push_str(&format!(
            "# HELP {name} HTTP answers by status; 4xx and 5xx are rejected requests.\n# TYPE {name} counter\n"
        ));
        for (status, n) in STATUSES.iter().zip(&self.responses) {
            let label = if *status == 0 {
                "other".to_string()
            } else {
                status.to_string()
            };
            out.push_str(&format!("{name}{{code=\"{label}\"}} {}\n", n.load(Relaxed)));
        }
        let name = "spartakus_http_request_duration_seconds";
        out.push_str(&format!(
            "# HELP {name} Time from reading a request to answering it.\n# TYPE {name} histogram\n"
        ));
        let mut cumulative = 0;
        for (le, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {cumulative}\n"));
        }
        let count = self.duration_count.load(Relaxed);
        let sum = self.duration_micros.load(Relaxed) as f64 / 1e6;
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}\n"
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_statuses_are_counted() {
        let m = Metrics::default();
        m.observe(204, Duration::from_millis(3));
        m.observe(204, Duration::from_millis(30));
        m.observe(400, Duration::from_secs(60));
        m.observe(418, Duration::from_millis(1));
        let text = m.render();
        for line in [
            "spartakus_http_responses_total{code=\"204\"} 2",
            "spartakus_http_responses_total{code=\"400\"} 1",
            "spartakus_http_responses_total{code=\"other\"} 1",
            "spartakus_http_request_duration_seconds_bucket{le=\"0.001\"} 1",
            "spartakus_http_request_duration_seconds_bucket{le=\"0.005\"} 2",
            "spartakus_http_request_duration_seconds_bucket{le=\"0.05\"} 3",
            "spartakus_http_request_duration_seconds_bucket{le=\"5\"} 3",
            "spartakus_http_request_duration_seconds_bucket{le=\"+Inf\"} 4",
            "spartakus_http_request_duration_seconds_count 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
