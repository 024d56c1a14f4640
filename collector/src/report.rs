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
//! PostgreSQL's jsonb cannot hold a NUL character, so `\u0000` anywhere is
//! refused here rather than failing a whole batch later. The payload is
//! checked by walking it once without building it (`scan`): it is stored as
//! its text, and this is the hot path of every report.

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
    pub received_from: String,
}

/// Which body shape an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Current,
    V1,
}

/// The longest reportID kept; longer ones are refused, not truncated.
const MAX_REPORT_ID: usize = 256;

/// Validates `body` and stamps it with where and when it was received.
/// The error is a message for the client that names the field.
pub fn parse(
    format: Format,
    body: &[u8],
    received_at: i64,
    received_from: &str,
) -> Result<Report, String> {
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
    let top = scan(raw, field)?;
    let cluster_id = match top.cluster_id {
        Text::String(id) if !id.is_empty() => id,
        _ => return Err(format!("{id_label}: required, a non-empty string")),
    };
    if format == Format::V1 {
        match top.timestamp {
            Text::String(t) | Text::Integer(t) => drop(metadata.insert("timestamp".into(), t)),
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
        received_from: received_from.to_string(),
    })
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
