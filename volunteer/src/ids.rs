//! Identifiers that go into a report: the cluster id, the anonymous node id, the report id.
//!
//! It owns the one-way transformations that keep the cluster's and the nodes' UIDs out of
//! reports, and the reading of the `--cluster-id-key` file they may be keyed with. It does not
//! decide which fields are reported; that is `report.rs`.

use std::io::Read;
use std::path::Path;

use ring::digest::{digest, SHA256};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Prefixed to the kube-system UID before hashing, so the cluster id is a hash made for this
/// purpose only: nobody else's SHA-256 of the same UID (or of anything) equals it by accident.
const CLUSTER_ID_DOMAIN: &[u8] = b"spartakus cluster id v1\0";

/// The shortest `--cluster-id-key`: HMAC-SHA256 keys should be as long as its output.
pub const MIN_KEY_BYTES: usize = 32;

/// The longest `--cluster-id-key` file read; anything longer is a wrong file.
const MAX_KEY_BYTES: usize = 4096;

/// The default cluster id: SHA-256 (or, with `key`, HMAC-SHA256) over "spartakus cluster id
/// v1", a NUL and the UID of namespace kube-system, its first 16 bytes shaped as a UUID
/// version 8 (RFC 9562's custom kind).
///
/// One-way: the report does not hold the raw UID, which other telemetry uses as a cluster id.
/// But without a key, whoever knows the raw UID can compute the same id; only a key the
/// operator keeps makes reports unlinkable to other data.
pub fn cluster_id(kube_system_uid: &str, key: Option<&hmac::Key>) -> String {
    let mut input = Vec::with_capacity(CLUSTER_ID_DOMAIN.len() + kube_system_uid.len());
    input.extend_from_slice(CLUSTER_ID_DOMAIN);
    input.extend_from_slice(kube_system_uid.as_bytes());
    let mut b = [0u8; 16];
    match key {
        Some(key) => b.copy_from_slice(&hmac::sign(key, &input).as_ref()[..16]),
        None => b.copy_from_slice(&digest(&SHA256, &input).as_ref()[..16]),
    }
    uuid(b, 8)
}

/// Reads a `--cluster-id-key` file: its bytes, without trailing whitespace (so a newline an
/// editor adds does not change every cluster id), at least `MIN_KEY_BYTES` of them.
pub fn read_key(path: &Path) -> Result<hmac::Key, String> {
    let shown = path.display();
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_BYTES as u64 + 1).read_to_end(&mut raw))
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if raw.len() > MAX_KEY_BYTES {
        return Err(format!("{shown} is longer than {MAX_KEY_BYTES} bytes"));
    }
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    match end {
        0 => Err(format!("{shown} is empty")),
        n if n < MIN_KEY_BYTES => Err(format!(
            "{shown} holds {n} bytes, a key needs at least {MIN_KEY_BYTES} \
             (e.g. openssl rand -hex 32 > {shown})"
        )),
        n => Ok(hmac::Key::new(hmac::HMAC_SHA256, &raw[..n])),
    }
}

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
    Ok(uuid(b, 4))
}

/// Sixteen bytes as a UUID of `version` (RFC 9562): version nibble and variant bits set, then
/// the usual hyphenated lower-case form.
fn uuid(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10xx
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
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
    fn cluster_id_is_a_domain_separated_hash_shaped_as_a_uuid_v8() {
        // python3: sha256(b"spartakus cluster id v1\0" + uid), first 16 bytes, version 8.
        let uid = "8c2f0a51-0d3e-4b6f-a1c9-2e7d5b4f8a13";
        assert_eq!(
            cluster_id(uid, None),
            "7a487b5e-801a-8383-9024-9d985a17519f"
        );
        // The same with hmac.new(b"k" * 32, ...).
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[b'k'; 32]);
        assert_eq!(
            cluster_id(uid, Some(&key)),
            "ba5f5305-aa3d-8196-9c7b-2fcb6a682246"
        );
        let other = hmac::Key::new(hmac::HMAC_SHA256, &[b'j'; 32]);
        assert_ne!(cluster_id(uid, Some(&key)), cluster_id(uid, Some(&other)));
    }

    #[test]
    fn key_files_are_read_without_trailing_whitespace_and_checked() {
        let dir = std::env::temp_dir().join(format!("spartakus-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let write = |name: &str, content: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, content).expect("write key file");
            path
        };
        let uid = "u";
        let plain = read_key(&write("plain", &[b'k'; 32])).expect("a 32-byte key");
        let newline = read_key(&write("newline", b"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\n"))
            .expect("a key with a newline");
        assert_eq!(
            cluster_id(uid, Some(&plain)),
            cluster_id(uid, Some(&newline))
        );
        let refused = [
            ("empty", b" \n".to_vec(), "is empty"),
            (
                "short",
                vec![b'k'; 31],
                "holds 31 bytes, a key needs at least 32",
            ),
            ("long", vec![b'k'; 4097], "longer than 4096 bytes"),
        ];
        for (name, content, want) in refused {
            let e = read_key(&write(name, &content)).err().unwrap_or_default();
            assert!(e.contains(want), "{name}: {e}");
        }
        let e = read_key(&dir.join("missing")).err().unwrap_or_default();
        assert!(e.starts_with("cannot read "), "{e}");
        std::fs::remove_dir_all(&dir).expect("clean temp dir");
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
