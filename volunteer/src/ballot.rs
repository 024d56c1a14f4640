//! What the node election (`elect.rs`) reads of each Node, decoded without keeping it: the
//! `status.nodeInfo.machineID`, reduced to a hash as soon as it is read, and whether the
//! `Ready` condition's status is "True".
//!
//! Neither goes into a report (`report::build` does not copy them) nor into a log line. The
//! raw machine id lives only inside the decoder, like the fields `objects.rs` skips; what is
//! kept is SHA-256 over a domain prefix and the id, 32 bytes, compared with the hash of this
//! machine's `/etc/machine-id`. It does not decide anything; that is `elect.rs`.

use std::fmt;

use ring::digest::{digest, SHA256};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// Prefixed to a machine id before hashing, so the hash is of use for this comparison only.
const MACHINE_ID_DOMAIN: &[u8] = b"spartakus machine id v1\0";

/// The longest machine id hashed: systemd's are 32 hex digits; anything longer is no id.
pub const MAX_MACHINE_ID_BYTES: usize = 256;

/// A machine id, hashed. `Debug` shows no bytes, so no log line can carry one by accident.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MachineHash(pub [u8; 32]);

impl fmt::Debug for MachineHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MachineHash(..)")
    }
}

/// The hash of a machine id, trimmed; `None` for an empty or overlong one, which cannot
/// identify a machine.
pub fn machine_hash(raw: &str) -> Option<MachineHash> {
    let id = raw.trim();
    if id.is_empty() || id.len() > MAX_MACHINE_ID_BYTES {
        return None;
    }
    let mut input = Vec::with_capacity(MACHINE_ID_DOMAIN.len() + id.len());
    input.extend_from_slice(MACHINE_ID_DOMAIN);
    input.extend_from_slice(id.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, &input).as_ref());
    Some(MachineHash(hash))
}

/// Decodes `nodeInfo.machineID` straight into its hash.
pub fn hashed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<MachineHash>, D::Error> {
    struct Hashed;
    impl Visitor<'_> for Hashed {
        type Value = Option<MachineHash>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a machine id")
        }
        fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
            Ok(machine_hash(id))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Hashed)
}

/// One entry of `status.conditions`; serde skips its reason, message and times.
#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    status: String,
}

/// Decodes `status.conditions` into whether the node is Ready, one condition at a time, so a
/// list of any length costs the memory of one entry.
pub fn ready<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct Ready;
    impl<'de> Visitor<'de> for Ready {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of node conditions")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut ready = false;
            while let Some(c) = seq.next_element::<Condition>()? {
                ready |= c.kind == "Ready" && c.status == "True";
            }
            Ok(ready)
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    deserializer.deserialize_any(Ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids_are_trimmed_hashed_and_never_shown() {
        let a = machine_hash("0123456789abcdef0123456789abcdef\n");
        assert_eq!(a, machine_hash("0123456789abcdef0123456789abcdef"));
        assert_ne!(a, machine_hash("fedcba9876543210fedcba9876543210"));
        assert_eq!(machine_hash(" \n"), None);
        assert_eq!(machine_hash(&"a".repeat(MAX_MACHINE_ID_BYTES + 1)), None);
        assert_eq!(format!("{a:?}"), "Some(MachineHash(..))");
    }

    #[test]
    fn only_a_true_ready_condition_is_ready() {
        #[derive(Deserialize)]
        struct S {
            #[serde(default, deserialize_with = "ready")]
            conditions: bool,
        }
        let cases = [
            (
                r#"{"conditions": [{"type": "Ready", "status": "True", "reason": "x"}]}"#,
                true,
            ),
            (
                r#"{"conditions": [{"type": "Ready", "status": "False"}]}"#,
                false,
            ),
            (
                r#"{"conditions": [{"type": "Ready", "status": "Unknown"}]}"#,
                false,
            ),
            (
                r#"{"conditions": [{"type": "MemoryPressure", "status": "True"}]}"#,
                false,
            ),
            (r#"{"conditions": null}"#, false),
            (r#"{}"#, false),
        ];
        for (json, want) in cases {
            let s: S = serde_json::from_str(json).expect(json);
            assert_eq!(s.conditions, want, "{json}");
        }
    }
}
