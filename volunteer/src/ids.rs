//! Identifiers that go into a report: the anonymous node id and the random report id.
//!
//! It owns the one-way transformation that keeps node identities out of reports. It does not
//! decide which fields are reported; that is `report.rs`.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// The anonymous id of a node: hex SHA-256 over the cluster id and the node's UID.
///
/// The cluster id is mixed in so the same UID in two clusters (restored backups, cloned VMs)
/// yields two ids, and a NUL separates the parts so ("ab", "c") and ("a", "bc") differ. The
/// result is stable across runs and reveals nothing a reader could reverse without the UID.
pub fn node_id(cluster_id: &str, node_uid: &str) -> String {
    let mut input = Vec::with_capacity(cluster_id.len() + 1 + node_uid.len());
    input.extend_from_slice(cluster_id.as_bytes());
    input.push(0);
    input.extend_from_slice(node_uid.as_bytes());
    hex(digest(&SHA256, &input).as_ref())
}

/// A fresh random UUID version 4 (RFC 9562), in its usual hyphenated lower-case form.
///
/// Fails only if the operating system's random source fails, which we report rather than
/// fall back to a weaker source.
pub fn report_id() -> Result<String, ring::error::Unspecified> {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10xx
    let h = hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// A random number in `0..n` (0 when `n` is 0), for backoff and period jitter.
///
/// Jitter does not need a cryptographic source, but ring's is already here; if it fails we
/// simply skip the jitter.
pub fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if n == 0 || SystemRandom::new().fill(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % n
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_sha256_of_cluster_nul_uid() {
        // printf 'c\0u' | sha256sum
        assert_eq!(
            node_id("c", "u"),
            "5f1149fe907fb2bc74247dace65ceb8793808c69c994ce6c04026983e5c690c7"
        );
        assert_ne!(node_id("ab", "c"), node_id("a", "bc"));
        assert_ne!(node_id("c1", "u"), node_id("c2", "u"));
    }

    #[test]
    fn report_id_is_a_fresh_uuid_v4() {
        let a = report_id().expect("system random source");
        let b = report_id().expect("system random source");
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "version nibble in {a}");
        assert!(
            matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
            "variant in {a}"
        );
    }
}
