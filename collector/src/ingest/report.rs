//! The wire format the collector accepts, and its validation. Turns a request
//! body into a `Report` ready to store, or a message naming the bad field.
//! Does not read sockets or touch the database.
//!
//! Two formats arrive:
//!
//! * `POST /api/v1/stats`, the current one:
//!   `{"metadata": {"<key>": "<string>", ...}, "payload": {"clusterID": "...", ...}}`
//!   - `metadata`: optional object of string values. `reportID`, when present,
//!     makes retries idempotent. `received_at` and `received_from` are the
//!     collector's own and always overwritten.
//!   - `payload`: required object with a non-empty string `clusterID`; stored as
//!     sent, unknown fields included (numbers keep every digit).
//! * `POST /api/v1`, the flat record of the Go spartakus v1.0 volunteer:
//!   `{"version", "timestamp", "clusterID", "masterVersion", "nodes", "extensions"}`.
//!   The whole record is the payload; its `timestamp` (string or integer)
//!   becomes `metadata.timestamp`.
//!
//! Bad data is the client's fault, so it is refused here, with 400 and the
//! field's name, and never reaches PostgreSQL, where it would fail a whole
//! batch of other clients' reports (store.rs). Each column of `reports`
//! (schema.sql) takes only what it can hold and index. The caps are far
//! above real data (a volunteer's `--cluster-id` is at most 253 bytes, a
//! reportID is a 36-byte UUID, metadata is a few short strings, 5,000 nodes
//! make a payload of about 2 MB) and below PostgreSQL's limits:
//!
//! | Column | Takes | Rule here |
//! |---|---|---|
//! | `cluster_id`, indexed | `payload.clusterID` (v1: `clusterID`) | 1 to 256 bytes: a B-tree entry holds at most 2,704 |
//! | `report_id`, unique | `metadata.reportID` | 1 to 256 bytes, likewise |
//! | `metadata`, jsonb | `metadata` | at most 64 KiB as sent; v1 `timestamp` at most 64 bytes |
//! | `payload`, jsonb | `payload` (v1: the body) | at most 32 MiB as sent, since jsonb holds 256 MiB and `[0,0,...]` takes 6 times its text; every number fits PostgreSQL's numeric |
//! | `received_from` | the client's IP address, written by the collector | at most 64 bytes (an address has at most 39) |
//! | `received_at`, indexed, also by UTC day | the collector's clock | years 1970 to 9999 |
//!
//! No other value is cast: the views read the payload with `->>` as text
//! and count nodes with `count(*)`. NUL (`\u0000`) anywhere is refused too,
//! since jsonb cannot hold it. jsonb keeps numbers as numeric, which has at
//! most 16383 digits after the point and an exponent of less than
//! 1073741823 either way: `1e-16384` is JSON (serde_json reads it as 0)
//! that jsonb refuses. What remains for PostgreSQL to refuse depends on the
//! database, such as a character its encoding (say LATIN1) lacks; the
//! store answers that with 400 too.
//!
//! The payload is checked without building it (`scan`), since it is stored
//! as its text and this is the hot path of every report: one serde pass,
//! then one byte pass for its numbers (`numbers_fit`).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;

/// A validated report, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub cluster_id: String,
    pub report_id: Option<String>,
    /// The final metadata, including `received_at` and `received_from`.
    pub metadata: BTreeMap<String, String>,
    /// The payload's JSON text exactly as the client sent it.
    pub payload: String,
    /// Unix seconds.
    pub received_at: i64,
    /// The same instant in unix microseconds: HTTP reports have whole
    /// seconds, imported ones what their line says.
    pub received_micros: i64,
    pub received_from: String,
}

/// Which body shape an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Current,
    V1,
}

/// The caps of the table above, in bytes. Longer values are refused, never
/// truncated.
const MAX_CLUSTER_ID: usize = 256;
const MAX_REPORT_ID: usize = 256;
const MAX_METADATA: usize = 64 << 10;
const MAX_TIMESTAMP: usize = 64;
const MAX_PAYLOAD: usize = 32 << 20;
const MAX_RECEIVED_FROM: usize = 64;
/// 9999-12-31T23:59:59Z in unix seconds.
const MAX_RECEIVED_AT: i64 = 253_402_300_799;
/// numeric's limits (PostgreSQL's numeric.c): digits after the point, and
/// the magnitude an exponent must stay below.
const NUMERIC_MAX_SCALE: i64 = 16383;
const NUMERIC_MAX_EXPONENT: i64 = 1_073_741_823;

/// Validates `body` and stamps it with where and when it was received.
/// The error is a message for the client that names the field.
pub fn parse(
    format: Format,
    body: &[u8],
    received_at: i64,
    received_from: &str,
) -> Result<Report, String> {
    // The collector's own values, checked so that nothing unchecked reaches
    // the database; no client can make these fail.
    at_most("received_from", received_from, MAX_RECEIVED_FROM)?;
    if !(0..=MAX_RECEIVED_AT).contains(&received_at) {
        return Err("received_at: the collector's clock must read 1970 to 9999".into());
    }
    let (mut metadata, raw) = match format {
        Format::Current => split_current(body)?,
        Format::V1 => (
            BTreeMap::new(),
            serde_json::from_slice(body).map_err(json_error)?,
        ),
    };
    let (field, id_label) = match format {
        Format::Current => ("payload", "payload.clusterID"),
        Format::V1 => ("body", "clusterID"),
    };
    at_most(field, raw.get(), MAX_PAYLOAD)?;
    let top = scan(raw, field)?;
    if !numbers_fit(raw.get()) {
        return Err(format!("{field}: {NUMERIC}"));
    }
    let cluster_id = match top.cluster_id {
        Text::String(id) if !id.is_empty() => id,
        _ => return Err(format!("{id_label}: required, a non-empty string")),
    };
    at_most(id_label, &cluster_id, MAX_CLUSTER_ID)?;
    if format == Format::V1 {
        match top.timestamp {
            Text::String(t) | Text::Integer(t) => {
                at_most("timestamp", &t, MAX_TIMESTAMP)?;
                metadata.insert("timestamp".into(), t);
            }
            Text::Absent => {}
            Text::Other => return Err("timestamp: must be unix seconds".into()),
        }
    }
    let report_id = metadata.get("reportID").cloned();
    if let Some(id) = &report_id {
        if id.is_empty() || id.len() > MAX_REPORT_ID {
            return Err(format!(
                "metadata.reportID: must be 1 to {MAX_REPORT_ID} bytes"
            ));
        }
    }
    metadata.insert("received_at".into(), received_at.to_string());
    metadata.insert("received_from".into(), received_from.to_string());
    Ok(Report {
        cluster_id,
        report_id,
        metadata,
        payload: raw.get().to_string(),
        received_at,
        received_micros: received_at * 1_000_000,
        received_from: received_from.to_string(),
    })
}

/// `field: at most N bytes` when `value` is longer than `max`.
fn at_most(field: &str, value: &str, max: usize) -> Result<(), String> {
    match value.len() <= max {
        true => Ok(()),
        false => Err(format!("{field}: at most {max} bytes")),
    }
}

fn split_current(body: &[u8]) -> Result<(BTreeMap<String, String>, &RawValue), String> {
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            "body: must be a JSON object with metadata and payload".to_string()
        } else {
            json_error(e)
        }
    })?;
    if let Some(unknown) = top.keys().find(|k| *k != "metadata" && *k != "payload") {
        return Err(format!(
            "{unknown}: unknown field; a report has only metadata and payload"
        ));
    }
    let mut metadata = BTreeMap::new();
    if let Some(raw) = top.get("metadata").filter(|r| r.get() != "null") {
        at_most("metadata", raw.get(), MAX_METADATA)?;
        // Each value is taken as raw text and decoded only if it is a JSON
        // string: decoding into serde_json's Value would accept the object
        // {"$serde_json::private::RawValue": "\"x\""} as the string "x".
        let map: BTreeMap<String, &RawValue> = match serde_json::from_str(raw.get()) {
            Ok(map) => map,
            Err(e) if e.is_data() => return Err("metadata: must be an object".into()),
            Err(e) => return Err(json_error(e)),
        };
        for (key, value) in map {
            if !value.get().starts_with('"') {
                return Err(format!("metadata.{key}: must be a string"));
            }
            let text: String = serde_json::from_str(value.get()).map_err(json_error)?;
            if text.contains('\0') || key.contains('\0') {
                return Err(format!("metadata.{key}: contains a NUL character"));
            }
            metadata.insert(key, text);
        }
    }
    let raw = top.get("payload").ok_or("payload: required")?;
    Ok((metadata, raw))
}

fn json_error(e: serde_json::Error) -> String {
    format!("body: invalid JSON ({e})")
}

/// What `scan` found at the top level of an object.
struct TopLevel {
    cluster_id: Text,
    timestamp: Text,
}

/// A top-level value the collector reads, as far as it matters.
enum Text {
    Absent,
    String(String),
    Integer(String),
    Other,
}

/// Checks that `raw` is an object without a NUL character anywhere, and
/// picks out its top-level `clusterID` and `timestamp`, without building the
/// value in memory: reports are stored as their text, so this is all the
/// reading they need.
fn scan(raw: &RawValue, field: &str) -> Result<TopLevel, String> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_any(Object).map_err(|e| match e.is_data() {
        true => format!("{field}: {e}"),
        false => json_error(e),
    })
}

const NUL: &str = "contains a NUL character (\\u0000), which cannot be stored";
const NUMERIC: &str = "a number PostgreSQL cannot store (more than 16383 digits after the \
     point, counting a negative exponent, or an exponent of 1073741823 or more)";

/// Whether every number in `json`, which serde_json has read as valid JSON,
/// fits numeric. Numbers are the runs of number characters outside strings.
/// About 1 ns a byte, a fifth of `parse`'s time.
fn numbers_fit(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        at += match b {
            b'"' => 1 + string_end(&bytes[at + 1..]),
            b'-' | b'0'..=b'9' => {
                let len = bytes[at..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
                    .unwrap_or(bytes.len() - at);
                // ASCII at both ends, so these are character boundaries.
                if !number_fits(&json[at..at + len]) {
                    return false;
                }
                len
            }
            _ => 1,
        };
    }
    true
}

/// The length of a string's text after its opening quote, closing quote
/// included.
fn string_end(s: &[u8]) -> usize {
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// Whether numeric takes this JSON number: PostgreSQL counts the digits
/// after the point, less the exponent, as the number's scale.
fn number_fits(number: &str) -> bool {
    let (mantissa, exponent) = number.split_once(['e', 'E']).unwrap_or((number, "0"));
    let scale = mantissa
        .split_once('.')
        .map_or(0, |(_, digits)| digits.len());
    let scale = i64::try_from(scale).unwrap_or(i64::MAX);
    // Too many digits for an i64 is out of range either way.
    let exponent: i64 = exponent.parse().unwrap_or(i64::MAX);
    exponent.abs() < NUMERIC_MAX_EXPONENT && scale.saturating_sub(exponent) <= NUMERIC_MAX_SCALE
}

/// The top-level object.
struct Object;

impl<'de> Visitor<'de> for Object {
    type Value = TopLevel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut top = TopLevel {
            cluster_id: Text::Absent,
            timestamp: Text::Absent,
        };
        while let Some(key) = map.next_key_seed(KeyName)? {
            match key {
                Key::ClusterId => top.cluster_id = map.next_value_seed(Field)?,
                Key::Timestamp => top.timestamp = map.next_value_seed(Field)?,
                Key::Other => map.next_value_seed(Any)?,
            }
        }
        Ok(top)
    }
}

/// A key of the top-level object.
enum Key {
    ClusterId,
    Timestamp,
    Other,
}

/// Reads a key of the top-level object.
struct KeyName;

impl<'de> DeserializeSeed<'de> for KeyName {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyName {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        match v {
            "clusterID" => Ok(Key::ClusterId),
            "timestamp" => Ok(Key::Timestamp),
            _ if v.contains('\0') => Err(E::custom(NUL)),
            _ => Ok(Key::Other),
        }
    }
}

/// The value of `clusterID` or `timestamp`.
struct Field;

impl<'de> DeserializeSeed<'de> for Field {
    type Value = Text;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        match v.contains('\0') {
            true => Err(E::custom(NUL)),
            false => Ok(Text::String(v.to_string())),
        }
    }
    fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
        Ok(Text::Integer(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
        Ok(Text::Integer(v.to_string()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Text, E> {
        Ok(Text::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Text, E> {
        Ok(Text::Other)
    }
    fn visit_unit<E>(self) -> Result<Text, E> {
        Ok(Text::Absent)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
        Any.visit_seq(seq).map(|()| Text::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
        Any.visit_map(map).map(|()| Text::Other)
    }
}

/// Any value, refused if a string or key in it holds a NUL.
struct Any;

impl<'de> DeserializeSeed<'de> for Any {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Any {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match v.contains('\0') {
            true => Err(E::custom(NUL)),
            false => Ok(()),
        }
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Any)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Any)?.is_some() {
            map.next_value_seed(Any)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"metadata": {"timestamp": "1437174715"},
 "payload": {"clusterID": "612e0f99-1912-4647-831d-ba4c3d918b66",
   "nodes": [{"status": {"capacity": {"cpu": "1", "memory": "505020Ki", "pods": "40"},
     "nodeInfo": {"osImage": "CoreOS 738.1.0", "kernelVersion": "4.0.7-coreos-r2",
       "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.6.2"}}}]}}"#;

    #[test]
    fn seed_example_is_stamped_and_kept_verbatim() {
        let r = parse(Format::Current, SEED.as_bytes(), 1437174812, "192.0.2.145").expect("valid");
        assert_eq!(r.cluster_id, "612e0f99-1912-4647-831d-ba4c3d918b66");
        assert_eq!(r.report_id, None);
        assert_eq!(r.metadata["timestamp"], "1437174715");
        assert_eq!(r.metadata["received_at"], "1437174812");
        assert_eq!(r.metadata["received_from"], "192.0.2.145");
        assert!(
            r.payload.starts_with(r#"{"clusterID": "612e0f99"#),
            "{}",
            r.payload
        );
    }

    #[test]
    fn client_cannot_set_the_collectors_fields() {
        let body = r#"{"metadata": {"received_at": "1", "received_from": "10.0.0.1", "reportID": "r1"},
            "payload": {"clusterID": "c"}}"#;
        let r = parse(Format::Current, body.as_bytes(), 99, "192.0.2.1").expect("valid");
        assert_eq!(r.metadata["received_at"], "99");
        assert_eq!(r.metadata["received_from"], "192.0.2.1");
        assert_eq!(r.report_id.as_deref(), Some("r1"));
    }

    #[test]
    fn big_numbers_keep_every_digit() {
        let body = r#"{"payload": {"clusterID": "c", "n": 123456789012345678901234567890}}"#;
        let r = parse(Format::Current, body.as_bytes(), 1, "h").expect("valid");
        assert!(r.payload.contains("123456789012345678901234567890"));
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let cases = [
            ("", "body: invalid JSON"),
            ("{", "body: invalid JSON"),
            ("[]", "body: must be a JSON object"),
            (
                r#"{"payload": {"clusterID": "c"}, "extra": 1}"#,
                "extra: unknown field",
            ),
            (r#"{"metadata": {}}"#, "payload: required"),
            (
                r#"{"payload": []}"#,
                "payload: invalid type: sequence, expected an object",
            ),
            (r#"{"payload": {}}"#, "payload.clusterID: required"),
            (
                r#"{"payload": {"clusterID": ""}}"#,
                "payload.clusterID: required",
            ),
            (
                r#"{"payload": {"clusterID": 7}}"#,
                "payload.clusterID: required",
            ),
            (
                r#"{"metadata": [], "payload": {"clusterID": "c"}}"#,
                "metadata: must be an object",
            ),
            (
                r#"{"metadata": {"a": 1}, "payload": {"clusterID": "c"}}"#,
                "metadata.a: must be a string",
            ),
            // serde_json's Value would take this object for the string "x".
            (
                r#"{"metadata": {"a": {"$serde_json::private::RawValue": "\"x\""}}, "payload": {"clusterID": "c"}}"#,
                "metadata.a: must be a string",
            ),
            (
                r#"{"metadata": {"a": "\u0000"}, "payload": {"clusterID": "c"}}"#,
                "metadata.a: contains a NUL",
            ),
            (
                r#"{"payload": {"clusterID": "c", "x": ["\u0000"]}}"#,
                "payload: contains a NUL",
            ),
            (
                r#"{"metadata": {"reportID": ""}, "payload": {"clusterID": "c"}}"#,
                "metadata.reportID: must be",
            ),
            (
                r#"{"payload": {"clusterID": "c", "n": 1e400}}"#,
                "body: invalid JSON",
            ),
        ];
        for (body, want) in cases {
            let got = parse(Format::Current, body.as_bytes(), 1, "h").expect_err(body);
            assert!(
                got.starts_with(want),
                "body {body}: want {want:?}, got {got:?}"
            );
        }
        let deep = "[".repeat(100_000);
        let got = parse(Format::Current, deep.as_bytes(), 1, "h").expect_err("deep");
        assert!(got.starts_with("body: must be a JSON object"), "{got}");
        let deep = format!(
            r#"{{"payload": {{"clusterID": "c", "x": {deep}{}}}}}"#,
            "]".repeat(100_000)
        );
        let got = parse(Format::Current, deep.as_bytes(), 1, "h").expect_err("deep");
        assert!(got.contains("recursion limit exceeded"), "{got}");
        let got = parse(
            Format::Current,
            b"{\"payload\": {\"clusterID\": \"\xff\"}}",
            1,
            "h",
        );
        assert!(got.expect_err("utf8").starts_with("body: invalid JSON"));
    }

    #[test]
    fn each_cap_takes_its_limit_and_refuses_one_byte_more() {
        let current = |id: &str, report_id: &str, pad: &str| {
            format!(
                r#"{{"metadata": {{"reportID": "{report_id}", "pad": "{pad}"}}, "payload": {{"clusterID": "{id}"}}}}"#
            )
        };
        let metadata = |n: usize| {
            current(
                "c",
                "r",
                &"m".repeat(n - r#"{"reportID": "r", "pad": ""}"#.len()),
            )
        };
        let payload = |n: usize| {
            let pad = "p".repeat(n - r#"{"clusterID": "c", "pad": ""}"#.len());
            format!(r#"{{"payload": {{"clusterID": "c", "pad": "{pad}"}}}}"#)
        };
        let v1 = |id: &str, t: &str| format!(r#"{{"clusterID": "{id}", "timestamp": "{t}"}}"#);
        // A body whose capped value is `n` bytes long.
        type Body<'a> = &'a dyn Fn(usize) -> String;
        let cases: [(Format, Body, usize, &str); 6] = [
            (
                Format::Current,
                &|n| current(&"c".repeat(n), "r", ""),
                256,
                "payload.clusterID: at most 256 bytes",
            ),
            (
                Format::Current,
                &|n| current("c", &"r".repeat(n), ""),
                256,
                "metadata.reportID: must be 1 to 256 bytes",
            ),
            (
                Format::Current,
                &metadata,
                65536,
                "metadata: at most 65536 bytes",
            ),
            (
                Format::Current,
                &payload,
                32 << 20,
                "payload: at most 33554432 bytes",
            ),
            (
                Format::V1,
                &|n| v1(&"c".repeat(n), "1"),
                256,
                "clusterID: at most 256 bytes",
            ),
            (
                Format::V1,
                &|n| v1("c", &"1".repeat(n)),
                64,
                "timestamp: at most 64 bytes",
            ),
        ];
        for (format, body, cap, want) in cases {
            let at_cap = body(cap);
            assert!(
                parse(format, at_cap.as_bytes(), 1, "h").is_ok(),
                "{want}: the cap itself"
            );
            let over = body(cap + 1);
            let got = parse(format, over.as_bytes(), 1, "h").expect_err(want);
            assert_eq!(got, want);
        }
        let v1_body = format!(r#"{{"clusterID": "c", "pad": "{}"}}"#, "p".repeat(32 << 20));
        let got = parse(Format::V1, v1_body.as_bytes(), 1, "h").expect_err("v1 body");
        assert_eq!(got, "body: at most 33554432 bytes");
    }

    #[test]
    fn numbers_numeric_cannot_hold_are_refused() {
        let fraction = |n: usize| format!("0.{}1", "0".repeat(n - 1));
        let ok = [
            "1E-16383",
            "-0e-16383",
            "0.5e-16382",
            "0e1073741822",
            "1.5e+300",
            "1e308",
            &fraction(16383),
        ];
        let refused = [
            "1e-16384",
            "1.0e-16383",
            "0e1073741823",
            "0e-1073741823",
            "1e-99999999999999999999",
            &fraction(16384),
        ];
        for (number, fits) in ok
            .iter()
            .map(|n| (n, true))
            .chain(refused.iter().map(|n| (n, false)))
        {
            for (format, body) in [
                (
                    Format::Current,
                    format!(r#"{{"payload": {{"clusterID": "c", "n": [{number}]}}}}"#),
                ),
                (
                    Format::V1,
                    format!(r#"{{"n": {{"m": {number}}}, "clusterID": "c"}}"#),
                ),
            ] {
                let got = parse(format, body.as_bytes(), 1, "h");
                match fits {
                    true => assert!(got.is_ok(), "{number}: {got:?}"),
                    false => assert!(
                        got.as_ref()
                            .expect_err(number)
                            .ends_with(&format!(": {NUMERIC}")),
                        "{number}: {got:?}"
                    ),
                }
            }
        }
        // Number characters inside strings, escaped quotes included, are text.
        let body =
            r#"{"payload": {"clusterID": "1e-99999", "s\"1e-99999": "\\", "t": "x\"1e-99999\""}}"#;
        assert!(parse(Format::Current, body.as_bytes(), 1, "h").is_ok());
    }

    #[test]
    fn the_collectors_own_values_are_checked_too() {
        let body = br#"{"payload": {"clusterID": "c"}}"#;
        let at = |t| parse(Format::Current, body, t, "h");
        assert!(at(0).is_ok() && at(MAX_RECEIVED_AT).is_ok());
        for t in [-1, MAX_RECEIVED_AT + 1, i64::MAX] {
            assert!(at(t).expect_err("clock").starts_with("received_at: "));
        }
        let from = |f: &str| parse(Format::Current, body, 1, f);
        assert!(from(&"f".repeat(64)).is_ok());
        assert_eq!(
            from(&"f".repeat(65)).expect_err("received_from"),
            "received_from: at most 64 bytes"
        );
    }

    #[test]
    fn v1_record_is_the_payload() {
        let body = r#"{"version": "v1.0.0", "timestamp": "1437174715", "clusterID": "c1",
            "masterVersion": "v1.2.0", "nodes": [{"id": "n"}], "extensions": [{"name": "a", "value": "b"}]}"#;
        let r = parse(Format::V1, body.as_bytes(), 5, "h").expect("valid");
        assert_eq!(r.cluster_id, "c1");
        assert_eq!(r.metadata["timestamp"], "1437174715");
        assert_eq!(r.payload, body);
        let r = parse(
            Format::V1,
            br#"{"clusterID": "c", "timestamp": 17}"#,
            5,
            "h",
        )
        .expect("valid");
        assert_eq!(r.metadata["timestamp"], "17");
        for (body, want) in [
            (r#"{"timestamp": "1"}"#, "clusterID: required"),
            (
                r#"{"clusterID": "c", "timestamp": [1]}"#,
                "timestamp: must be unix seconds",
            ),
            (
                r#""x""#,
                "body: invalid type: string \"x\", expected an object",
            ),
        ] {
            let got = parse(Format::V1, body.as_bytes(), 1, "h").expect_err(body);
            assert!(
                got.starts_with(want),
                "body {body}: want {want:?}, got {got:?}"
            );
        }
    }
}

#[cfg(test)]
mod properties;
