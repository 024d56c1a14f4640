//! `GET /stats` (with `--stats on`) and the usage gauges: figures computed
//! from the derived tables (`query.rs`, k-anonymity applied), cached, and
//! served as HTML (`page.rs`), JSON or Prometheus text (`formats.rs`).
//! Owns the cache, its database connection and the shedding that keeps a
//! flood of /stats from costing ingest anything. Does not route (http.rs).
//!
//! Cost: per allowed `days` value the figures are computed at most once a
//! minute, by one request at a time over all of them (single flight); while
//! one computes, everyone else gets the previous figures, or 503 when there
//! are none yet. A computation runs on this cache's own connection, never
//! the ingest writer's, with a 10 s statement timeout. Requests beyond
//! `RATE` per second, or beyond `IN_FLIGHT` at once, get 503 before any work.

pub mod chart;
pub mod figures;
#[cfg(test)]
pub mod fleet;
mod formats;
pub mod page;
mod query;

use crate::db::Db;
use crate::ingest::http::Answer;
use figures::Figures;
use postgres::Client;
pub use query::{Rules, PUBLISHED};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// The windows one may ask for (`?days=`), and the default. A small set, so
/// that the cache holds at most three computations.
pub const DAYS: [u32; 3] = [7, 30, 90];
pub const DEFAULT_DAYS: u32 = 30;
/// The window of the usage gauges.
pub const METRICS_DAYS: u32 = 30;
/// How long figures are served before they are computed again.
const FRESH: Duration = Duration::from_secs(60);
/// After a failed computation, the wait before the next try: one that hit
/// the statement timeout must not be run again and again.
const RETRY: Duration = Duration::from_secs(30);
/// /stats answered at once, at most; the rest get 503. Each holds a
/// connection thread for a memory copy of a cached answer, or, for one of
/// them, a computation.
const IN_FLIGHT: usize = 4;
/// /stats answered per second, over all clients, and the burst allowed.
/// At 200/s ingest loses under 10% (bench/stats); past this, 503.
const RATE: f64 = 250.0;
const BURST: f64 = 250.0;

/// One computation's results, rendered once for every request until the next.
pub struct Rendered {
    html: String,
    json: String,
    metrics: String,
}

struct Entry {
    rendered: Option<Arc<Rendered>>,
    tried: Instant,
    ok: bool,
}

impl Entry {
    fn due(&self, now: Instant) -> bool {
        let wait = if self.ok { FRESH } else { RETRY };
        now.duration_since(self.tried) >= wait
    }
}

pub struct Stats {
    db: Db,
    rules: Rules,
    /// The cache's own connection; holding this lock is what computing is,
    /// so there is one computation at a time.
    conn: Mutex<Option<Client>>,
    cache: Mutex<HashMap<u32, Entry>>,
    in_flight: AtomicUsize,
    /// Tokens, and when they were last counted.
    bucket: Mutex<(f64, Instant)>,
    computations: AtomicU64,
    failures: AtomicU64,
    shed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it leaves plain data, still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Stats {
    /// Connects only when the first figures are asked for.
    pub fn new(mut db: Db, rules: Rules) -> Stats {
        let config = &mut db.config;
        config.application_name("spartakus-collector stats");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(15));
        }
        // A computation that takes longer is cut off and tried again later,
        // rather than holding a snapshot (and vacuum) back; waiting on a
        // migration's lock likewise.
        config.options("-c statement_timeout=10s -c lock_timeout=2s");
        Stats {
            db,
            rules,
            conn: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            bucket: Mutex::new((BURST, Instant::now())),
            computations: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            shed: AtomicU64::new(0),
        }
    }

    /// The figures of `days` (one of `DAYS`): cached, or computed now by
    /// this caller if they are due and nobody else is computing; None when
    /// there are none yet (or the database fails).
    pub fn get(&self, days: u32) -> Option<Arc<Rendered>> {
        let cached = |now| {
            let cache = lock(&self.cache);
            cache.get(&days).map(|e| (e.rendered.clone(), e.due(now)))
        };
        let (previous, due) = cached(Instant::now()).unwrap_or((None, true));
        if !due {
            return previous;
        }
        let mut conn = match self.conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return previous,
        };
        // Someone may have finished this window between the look and the lock.
        if let Some((rendered, false)) = cached(Instant::now()) {
            return rendered;
        }
        self.computations.fetch_add(1, Relaxed);
        let started = Instant::now();
        let result = self.compute(&mut conn, days);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut cache = lock(&self.cache);
        let entry = cache.entry(days).or_insert(Entry {
            rendered: None,
            tried: started,
            ok: false,
        });
        entry.tried = Instant::now();
        match result {
            Ok(figures) => {
                log::info!("stats: figures of {days} days computed in {ms:.1}ms");
                let rendered = Arc::new(Rendered {
                    html: page::render(&figures),
                    json: formats::json(&figures),
                    metrics: formats::metrics(&figures),
                });
                entry.rendered = Some(rendered.clone());
                entry.ok = true;
                Some(rendered)
            }
            Err(e) => {
                self.failures.fetch_add(1, Relaxed);
                log::warn!(
                    "stats: computing {days} days failed after {ms:.1}ms: {}",
                    crate::ingest::store::describe(&e)
                );
                entry.ok = false;
                entry.rendered.clone()
            }
        }
    }

    fn compute(&self, conn: &mut Option<Client>, days: u32) -> Result<Figures, postgres::Error> {
        let client = match conn {
            Some(c) if !c.is_closed() => c,
            _ => conn.insert(self.db.connect()?),
        };
        let result = query::figures(client, days, self.rules);
        if result.is_err() {
            // Whatever went wrong, the next try starts on a new connection.
            *conn = None;
        }
        result
    }

    /// `GET /stats?days=N&format=html|json`.
    pub fn answer(&self, url: &str) -> Answer {
        let (days, json) = match parse_query(url) {
            Ok(q) => q,
            Err(message) => return Answer::error(400, &message),
        };
        if !self.take_token() {
            self.shed.fetch_add(1, Relaxed);
            return Answer::error(503, "stats: too many requests, retry later")
                .header("Retry-After", "1");
        }
        let Some(_slot) = Slot::take(&self.in_flight) else {
            self.shed.fetch_add(1, Relaxed);
            return Answer::error(503, "stats: busy, retry later").header("Retry-After", "1");
        };
        let Some(r) = self.get(days) else {
            return Answer::unavailable("stats: not computed yet, retry later");
        };
        let answer = match json {
            true => Answer {
                status: 200,
                content_type: "application/json",
                body: r.json.clone(),
                headers: Vec::new(),
            },
            false => Answer {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: r.html.clone(),
                headers: vec![(
                    "Content-Security-Policy",
                    page::CONTENT_SECURITY_POLICY.to_string(),
                )],
            },
        };
        answer
            .header("Cache-Control", "public, max-age=60")
            .header("X-Content-Type-Options", "nosniff")
    }

    /// The cache's counters, and the usage gauges of the last
    /// `METRICS_DAYS` days when there are figures (a scrape may compute them).
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        for (name, help, n) in [
            (
                "spartakus_stats_computations_total",
                "Computations of the /stats figures (at most one a minute per window).",
                &self.computations,
            ),
            (
                "spartakus_stats_failures_total",
                "Computations of the /stats figures that failed.",
                &self.failures,
            ),
            (
                "spartakus_stats_shed_total",
                "/stats requests answered 503 because too many came at once.",
                &self.shed,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                n.load(Relaxed)
            ));
        }
        if let Some(r) = self.get(METRICS_DAYS) {
            out.push_str(&r.metrics);
        }
        out
    }

    fn take_token(&self) -> bool {
        let mut bucket = lock(&self.bucket);
        let now = Instant::now();
        let (tokens, at) = *bucket;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * RATE).min(BURST);
        let (left, ok) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        *bucket = (left, now);
        ok
    }
}

/// One of the `IN_FLIGHT` places, given back on drop.
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    fn take(n: &'a AtomicUsize) -> Option<Slot<'a>> {
        let before = n.fetch_add(1, Relaxed);
        let slot = Slot(n);
        (before < IN_FLIGHT).then_some(slot)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// `days` (one of `DAYS`, default `DEFAULT_DAYS`) and whether JSON was
/// asked for. Other parameters are ignored (a cache buster changes
/// nothing here); a repeated or invalid one of these is an error naming it.
fn parse_query(url: &str) -> Result<(u32, bool), String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let (mut days, mut format) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "days" => &mut days,
            "format" => &mut format,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(format!("{name}: given more than once"));
        }
    }
    let days = match days {
        None => DEFAULT_DAYS,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if DAYS.contains(&n) => n,
            _ => return Err("days: must be 7, 30 or 90".into()),
        },
    };
    let json = match format {
        None | Some("html") => false,
        Some("json") => true,
        Some(_) => return Err("format: must be html or json".into()),
    };
    Ok((days, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_rules() {
        type Case = (&'static str, Result<(u32, bool), &'static str>);
        let cases: &[Case] = &[
            ("/stats", Ok((30, false))),
            ("/stats?days=7", Ok((7, false))),
            ("/stats?days=90&format=json", Ok((90, true))),
            ("/stats?format=html&_=123", Ok((30, false))),
            ("/stats?days=0", Err("days: must be 7, 30 or 90")),
            ("/stats?days=31", Err("days: must be 7, 30 or 90")),
            ("/stats?days=-7", Err("days: must be 7, 30 or 90")),
            ("/stats?days=", Err("days: must be 7, 30 or 90")),
            ("/stats?days=7&days=30", Err("days: given more than once")),
            ("/stats?format=xml", Err("format: must be html or json")),
        ];
        for (url, want) in cases {
            let want = want.map_err(String::from);
            assert_eq!(parse_query(url), want, "{url}");
        }
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let n = AtomicUsize::new(0);
        let held: Vec<_> = (0..IN_FLIGHT).filter_map(|_| Slot::take(&n)).collect();
        assert_eq!(held.len(), IN_FLIGHT);
        assert!(Slot::take(&n).is_none());
        drop(held);
        assert!(Slot::take(&n).is_some());
        assert_eq!(n.load(Relaxed), 0);
    }
}
