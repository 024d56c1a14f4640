//! `--spread`: the wait before a `--once` report, the same for a cluster every day.
//!
//! A CronJob copied to a whole fleet starts every cluster's volunteer in the same minute. Each
//! cluster instead waits its own slot, a hash of its final cluster id (given, or keyed or not
//! from the kube-system UID) modulo the spread, so a fleet's reports are spread evenly over the
//! spread and one cluster reports at the same time of day, day after day (like popcon's random
//! time fixed at install). The wait goes through `Shutdown`, so a signal ends it. It does not
//! decide when the wait happens; `kube.rs` waits after reading the cluster id and before
//! reading the nodes, so the report is fresh.

use std::time::Duration;

use ring::digest::{digest, SHA256};

use crate::error::Error;
use crate::shutdown::Shutdown;

/// Prefixed to the cluster id, so the slot is a hash of its own and says nothing about others.
const SPREAD_DOMAIN: &[u8] = b"spartakus spread v1\0";

/// The longest `--spread`: a slot later than a day would run into the next day's report.
pub const MAX_SPREAD: Duration = Duration::from_secs(24 * 3600);

/// This cluster's delay within `spread`, to the millisecond: the first 8 bytes of SHA-256 over
/// "spartakus spread v1", a NUL and the cluster id, big-endian, modulo the spread. Zero when
/// the spread is under a millisecond.
pub fn slot(cluster_id: &str, spread: Duration) -> Duration {
    let millis = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    let mut input = Vec::with_capacity(SPREAD_DOMAIN.len() + cluster_id.len());
    input.extend_from_slice(SPREAD_DOMAIN);
    input.extend_from_slice(cluster_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest(&SHA256, &input).as_ref()[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % millis)
}

/// Waits this cluster's slot of `spread`: whether it waited at all, or `Error::Interrupted` if a
/// signal ended the wait.
pub fn wait(cluster_id: &str, spread: Duration, shutdown: &Shutdown) -> Result<bool, Error> {
    let delay = slot(cluster_id, spread);
    if delay.is_zero() {
        return Ok(false);
    }
    log::info!(
        "waiting {:.1}s, this cluster's slot in --spread {}s, before reading the nodes",
        delay.as_secs_f64(),
        spread.as_secs()
    );
    match shutdown.sleep(delay) {
        true => Err(Error::Interrupted),
        false => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids;

    #[test]
    fn a_clusters_slot_is_stable_and_pinned() {
        let id = "7a487b5e-801a-8383-9024-9d985a17519f";
        let six_hours = Duration::from_secs(6 * 3600);
        // python3: int.from_bytes(sha256(b"spartakus spread v1\0" + id)[:8], "big") % 21600000
        assert_eq!(slot(id, six_hours), Duration::from_millis(695_750));
        assert_eq!(slot(id, six_hours), slot(id, six_hours));
        assert_ne!(slot(id, six_hours), slot("another cluster", six_hours));
        assert_eq!(slot(id, Duration::ZERO), Duration::ZERO);
        assert!(slot(id, Duration::from_secs(2)) < Duration::from_secs(2));
    }

    #[test]
    fn slots_spread_evenly_over_many_clusters() {
        const CLUSTERS: u32 = 100_000;
        const BUCKETS: usize = 24;
        let spread = Duration::from_secs(24 * 3600);
        let mut counts = [0u32; BUCKETS];
        for i in 0..CLUSTERS {
            let id = ids::cluster_id(&format!("uid-{i}"), None);
            let hour = slot(&id, spread).as_secs() / 3600;
            counts[usize::try_from(hour).expect("an hour of a day")] += 1;
        }
        let mean = f64::from(CLUSTERS) / BUCKETS as f64;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - mean).powi(2) / mean)
            .sum();
        // 23 degrees of freedom: 49.7 is the 99.9th percentile of an even spread.
        assert!(chi2 < 49.7, "chi-square {chi2:.1}: {counts:?}");
        for c in counts {
            let off = (f64::from(c) - mean).abs() / mean;
            assert!(
                off < 0.05,
                "a bucket {:.1}% off the mean: {counts:?}",
                off * 100.0
            );
        }
    }

    #[test]
    fn a_signal_ends_the_wait_as_an_interruption() {
        let shutdown = Shutdown::default();
        shutdown.request();
        let got = wait("c", Duration::from_secs(3600), &shutdown);
        assert!(matches!(got, Err(Error::Interrupted)), "{got:?}");
        assert!(
            matches!(wait("c", Duration::ZERO, &shutdown), Ok(false)),
            "no spread, no wait"
        );
    }
}
