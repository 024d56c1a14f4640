//! `--rate-limit N/min`: a token bucket per client address, in a table of
//! bounded size. Does not know about HTTP; `http.rs` turns a refusal into
//! 429 with Retry-After.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sources tracked at once. A full table is swept of sources whose bucket
/// has refilled; sources that still do not fit share one bucket, so memory
/// stays bounded however many addresses an attacker has.
const MAX_SOURCES: usize = 65_536;
/// A full table is swept at most this often, so a flood of new addresses
/// cannot make every request pay for a sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct RateLimit {
    per_minute: f64,
    max_sources: usize,
    table: Mutex<Table>,
}

struct Table {
    buckets: HashMap<Source, Bucket>,
    swept: Option<Instant>,
}

/// Whom a bucket belongs to. IPv6 clients are counted per /64, the block one
/// host usually gets, so a host cannot multiply its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6Prefix(u64),
    Overflow,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit::with_capacity(per_minute, MAX_SOURCES)
    }

    fn with_capacity(per_minute: u32, max_sources: usize) -> RateLimit {
        RateLimit {
            per_minute: f64::from(per_minute),
            max_sources,
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                swept: None,
            }),
        }
    }

    /// Takes one report from `ip`'s budget, or says in how many whole
    /// seconds the next one would be accepted.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let mut source = Source::of(ip);
        if !table.buckets.contains_key(&source) && table.buckets.len() >= self.max_sources {
            self.sweep(&mut table, now);
            if table.buckets.len() >= self.max_sources {
                source = Source::Overflow;
            }
        }
        let full = Bucket {
            tokens: self.per_minute,
            at: now,
        };
        let bucket = table.buckets.entry(source).or_insert(full);
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let rate = self.per_minute / 60.0;
        // The epsilon keeps float noise from rounding 1.0000000001 s up to 2.
        let wait = ((1.0 - bucket.tokens) / rate - 1e-9).ceil().max(1.0);
        Err(wait as u64)
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_minute / 60.0).min(self.per_minute)
    }

    /// Forgets sources whose bucket is full again: they are as good as new.
    fn sweep(&self, table: &mut Table, now: Instant) {
        if table
            .swept
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_EVERY)
        {
            return;
        }
        table.swept = Some(now);
        let capacity = self.per_minute;
        table
            .buckets
            .retain(|source, b| *source == Source::Overflow || self.refilled(b, now) < capacity);
    }
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => Source::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_source_gets_its_budget_then_waits_for_a_refill() {
        let limit = RateLimit::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limit.check(ip("192.0.2.1"), t0), Ok(()));
        }
        assert_eq!(limit.check(ip("192.0.2.1"), t0), Err(20));
        assert_eq!(
            limit.check(ip("192.0.2.2"), t0),
            Ok(()),
            "another source has its own budget"
        );
        assert_eq!(
            limit.check(ip("192.0.2.1"), t0 + Duration::from_secs(19)),
            Err(1)
        );
        assert_eq!(
            limit.check(ip("192.0.2.1"), t0 + Duration::from_secs(20)),
            Ok(())
        );
    }

    #[test]
    fn ipv6_hosts_are_counted_per_64() {
        let limit = RateLimit::new(1);
        let t0 = Instant::now();
        assert_eq!(limit.check(ip("2001:db8:1:2::1"), t0), Ok(()));
        assert!(limit.check(ip("2001:db8:1:2:ffff::9"), t0).is_err());
        assert_eq!(limit.check(ip("2001:db8:1:3::1"), t0), Ok(()));
    }

    #[test]
    fn the_table_stays_bounded_and_overflow_is_shared() {
        let limit = RateLimit::with_capacity(2, 4);
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(limit.check(ip(&format!("198.51.100.{i}")), t0), Ok(()));
        }
        // Full of busy sources: newcomers share the overflow bucket.
        assert_eq!(limit.check(ip("203.0.113.1"), t0), Ok(()));
        assert_eq!(limit.check(ip("203.0.113.2"), t0), Ok(()));
        assert!(limit.check(ip("203.0.113.3"), t0).is_err());
        let len = |l: &RateLimit| l.table.lock().map(|t| t.buckets.len()).unwrap_or(0);
        assert_eq!(len(&limit), 5, "four sources and the overflow bucket");
        // A minute later the old sources are refilled and swept away.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(limit.check(ip("203.0.113.4"), later), Ok(()));
        assert!(len(&limit) <= 5);
        let t = limit.table.lock().expect("lock");
        assert!(t.buckets.contains_key(&Source::of(ip("203.0.113.4"))));
    }
}
