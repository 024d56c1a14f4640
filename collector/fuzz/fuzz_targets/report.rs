//! Fuzzes `report::parse`, the collector's parser and validator of request
//! bodies, and checks what it promises rather than only that it returns.
//! The first input byte picks the format (even: `/api/v1/stats`, odd:
//! `/api/v1`); the rest is the body. Owns no parsing of its own beyond the
//! plain `Tree` reading it compares against.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

// The parser is private to the collector binary; including the file keeps it
// the very code that runs in production, without a lib.rs for fuzzing's sake.
#[allow(dead_code)] // Fields like report_id are read only by the binary.
#[path = "../../src/ingest/report.rs"]
mod report;

use report::{Format, Report};

const RECEIVED_AT: i64 = 1437174812;
const RECEIVED_FROM: &str = "192.0.2.145";

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let format = match first % 2 {
        0 => Format::Current,
        _ => Format::V1,
    };
    match report::parse(format, body, RECEIVED_AT, RECEIVED_FROM) {
        Ok(r) => check_accepted(format, body, &r),
        Err(message) => check_refused(format, &message),
    }
});

fn check_accepted(format: Format, body: &[u8], r: &Report) {
    // Everything that was read is text; an accepted body has no invalid UTF-8.
    let text = std::str::from_utf8(body).expect("accepted body is UTF-8");
    assert!(!r.payload.contains('\0'), "raw NUL in the payload");
    let payload: Tree = serde_json::from_str(&r.payload).expect("accepted payload is JSON");
    let Tree::Object(members) = &payload else {
        panic!("accepted payload is not an object");
    };
    assert!(!payload.has_nul(), "accepted a payload with a NUL");
    assert!(
        !members.iter().any(|(k, _)| names(k, SECRET)),
        "stored a top-level accountSecret"
    );
    assert!(
        !r.metadata.keys().any(|k| names(k, SECRET)),
        "stored metadata.accountSecret"
    );
    // The payload as sent, when the whole body reads (it may be one level
    // too deep for serde_json's recursion limit where the payload is not).
    let sent = match format {
        Format::V1 => serde_json::from_str::<Tree>(text).ok(),
        Format::Current => serde_json::from_str::<Tree>(text)
            .ok()
            .and_then(|top| top.named("payload").cloned()),
    };
    match sent {
        // Cut out: the payload is the rest, in order.
        Some(Tree::Object(sent)) if sent.iter().any(|(k, _)| names(k, SECRET)) => {
            let rest: Vec<_> = sent
                .into_iter()
                .filter(|(k, _)| !names(k, SECRET))
                .collect();
            assert_eq!(
                payload,
                Tree::Object(rest),
                "payload is not the rest of the one sent"
            );
        }
        _ => {
            assert!(
                text.contains(r.payload.as_str()),
                "payload is not a substring of the body: {:?}",
                r.payload
            );
            if format == Format::V1 {
                let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
                assert_eq!(r.payload, trimmed, "a v1 payload is the whole body");
            }
        }
    }

    assert!(!r.cluster_id.is_empty(), "empty clusterID accepted");
    assert!(
        r.cluster_id.len() <= 256,
        "clusterID of {} bytes",
        r.cluster_id.len()
    );
    assert!(
        r.payload.len() <= 32 << 20,
        "payload of {} bytes",
        r.payload.len()
    );
    assert_eq!(
        payload.get("clusterID"),
        Some(&Tree::String(r.cluster_id.clone())),
        "clusterID is not the payload's"
    );

    assert_eq!(r.received_at, RECEIVED_AT);
    assert_eq!(r.received_from, RECEIVED_FROM);
    assert_eq!(r.metadata["received_at"], RECEIVED_AT.to_string());
    assert_eq!(r.metadata["received_from"], RECEIVED_FROM);
    for (key, value) in &r.metadata {
        assert!(
            !key.contains('\0') && !value.contains('\0'),
            "NUL in metadata"
        );
    }
    assert_eq!(r.report_id.as_ref(), r.metadata.get("reportID"));
    if let Some(id) = &r.report_id {
        assert!(
            (1..=256).contains(&id.len()),
            "reportID length {}",
            id.len()
        );
    }

    match format {
        Format::V1 => {
            assert_eq!(r.report_id, None);
            let expected_timestamp = match payload.get("timestamp") {
                Some(Tree::String(s) | Tree::Integer(s)) => Some(s.clone()),
                None | Some(Tree::Null) => None,
                Some(other) => panic!("timestamp {other:?} accepted"),
            };
            assert_eq!(r.metadata.get("timestamp"), expected_timestamp.as_ref());
            assert!(
                expected_timestamp.as_ref().map_or(0, String::len) <= 64,
                "long timestamp"
            );
            assert_eq!(
                r.metadata.len(),
                2 + usize::from(expected_timestamp.is_some())
            );
        }
        Format::Current => {
            // The whole body may be one level too deep for serde_json's
            // recursion limit while the payload alone is not; compare when it
            // reads.
            let Ok(top) = serde_json::from_str::<Tree>(text) else {
                return;
            };
            let Tree::Object(fields) = &top else {
                panic!("accepted a body that is not an object");
            };
            // One of each field, named in any case, and no other.
            for (i, (k, _)) in fields.iter().enumerate() {
                let at = TOP.iter().position(|n| names(k, n));
                assert!(at.is_some(), "accepted the unknown field {k:?}");
                assert!(
                    !fields[..i]
                        .iter()
                        .any(|(j, _)| names(j, TOP[at.unwrap_or(0)])),
                    "accepted {k:?} twice"
                );
            }
            let mut sent = r.metadata.clone();
            sent.remove("received_at");
            sent.remove("received_from");
            // A repeated key keeps its last value, as in serde_json and jsonb.
            let mut expected = std::collections::BTreeMap::new();
            if let Some(Tree::Object(entries)) = top.named("metadata") {
                expected.extend(
                    entries
                        .iter()
                        .filter(|(k, _)| !names(k, SECRET))
                        .map(|(k, v)| (k.clone(), v)),
                );
            }
            let mut expected: std::collections::BTreeMap<String, String> = expected
                .into_iter()
                .map(|(k, v)| match v {
                    Tree::String(v) => (k, v.clone()),
                    _ => panic!("metadata.{k}: accepted {v:?}, which is not a string"),
                })
                .collect();
            expected.remove("received_at");
            expected.remove("received_from");
            assert_eq!(sent, expected, "metadata is not the body's");
        }
    }
}

/// The top-level fields of a current-format body.
const TOP: [&str; 4] = ["metadata", "payload", "accountID", "accountSecret"];
const SECRET: &str = "accountSecret";

/// Whether `key` names `name` as Go's encoding/json matches names: ASCII
/// letters in any case, and U+017F and U+212A as `s` and `k`.
fn names(key: &str, name: &str) -> bool {
    let folded: String = key
        .chars()
        .map(|c| match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    folded == name.to_ascii_lowercase()
}

/// A JSON value as written. Not `serde_json::Value`: with the raw_value
/// feature, Value reads an object keyed `$serde_json::private::RawValue` as
/// the JSON text in its string, which is not what PostgreSQL will read.
#[derive(Debug, Clone, PartialEq)]
enum Tree {
    Null,
    Bool(bool),
    /// An integer that fits an i64 or u64, as text.
    Integer(String),
    Float(f64),
    String(String),
    Array(Vec<Tree>),
    /// Entries in order, duplicates kept.
    Object(Vec<(String, Tree)>),
}

impl Tree {
    /// The last entry named `name`, the one serde_json and jsonb keep.
    fn get(&self, name: &str) -> Option<&Tree> {
        match self {
            Tree::Object(entries) => entries.iter().rev().find(|(k, _)| k == name).map(|e| &e.1),
            _ => None,
        }
    }
    /// The entry whose key names `name` in any case; accepted bodies have
    /// at most one.
    fn named(&self, name: &str) -> Option<&Tree> {
        match self {
            Tree::Object(entries) => entries.iter().find(|(k, _)| names(k, name)).map(|e| &e.1),
            _ => None,
        }
    }
    fn has_nul(&self) -> bool {
        match self {
            Tree::String(s) => s.contains('\0'),
            Tree::Array(items) => items.iter().any(Tree::has_nul),
            Tree::Object(entries) => entries.iter().any(|(k, v)| k.contains('\0') || v.has_nul()),
            Tree::Null | Tree::Bool(_) | Tree::Integer(_) | Tree::Float(_) => false,
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Integer(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Integer(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Tree>()? {
            entries.push(entry);
        }
        Ok(Tree::Object(entries))
    }
}

/// Every message report.rs can produce, by format: a field name, ':', then
/// what is wrong. `at line` suffixes come from serde_json's positions.
fn check_refused(format: Format, m: &str) {
    const NUL: &str = ": contains a NUL character (\\u0000), which cannot be stored at line ";
    const CLUSTER: &str = "clusterID: required, a non-empty string";
    const LONG_ID: &str = "clusterID: at most 256 bytes";
    const NUMERIC: &str = ": a number PostgreSQL cannot store (more than 16383 digits after the \
         point, counting a negative exponent, or an exponent of 1073741823 or more)";
    let payload = |field: &str| {
        m == format!("{field}: at most 33554432 bytes") || m == format!("{field}{NUMERIC}")
    };
    let known = m.starts_with("body: invalid JSON (") && m.ends_with(')')
        || match format {
            Format::V1 => {
                m.starts_with("body: invalid type: ") && m.contains(", expected an object at line ")
                    || m.starts_with(&format!("body{NUL}"))
                    || payload("body")
                    || m == CLUSTER
                    || m == LONG_ID
                    || m == "timestamp: must be unix seconds"
                    || m == "timestamp: at most 64 bytes"
            }
            Format::Current => {
                m == "body: must be a JSON object with metadata and payload"
                    || m.starts_with("payload: invalid type: ")
                        && m.contains(", expected an object at line ")
                    || m.starts_with(&format!("payload{NUL}"))
                    || payload("payload")
                    || m == "payload: required"
                    || m == format!("payload.{CLUSTER}")
                    || m == format!("payload.{LONG_ID}")
                    || m == "metadata: must be an object"
                    || m == "metadata: at most 65536 bytes"
                    || m == "metadata.reportID: must be 1 to 256 bytes"
                    || m.starts_with("metadata.")
                        && (m.ends_with(": must be a string")
                            || m.ends_with(": contains a NUL character"))
                    || m.strip_suffix(": unknown field; a report has only metadata and payload")
                        .is_some_and(|key| !TOP.iter().any(|n| names(key, n)))
                    || m.strip_suffix(", as field names match in any case; send it once")
                        .and_then(|m| m.split_once(": repeats "))
                        .is_some_and(|(k, first)| {
                            TOP.iter().any(|n| names(k, n) && names(first, n))
                        })
                    || m == "accountID: must be a string"
                    || m == "accountSecret: must be a string"
            }
        };
    assert!(known, "unexpected error message for {format:?}: {m:?}");
}
