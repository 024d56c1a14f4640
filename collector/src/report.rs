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
//! refused here rather than failing a whole batch later.

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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
    let (metadata, payload) = match format {
        Format::Current => split_current(body)?,
        Format::V1 => {
            let raw: &RawValue = serde_json::from_slice(body).map_err(json_error)?;
            let record = object(raw, "body")?;
            let timestamp = match record.get("timestamp") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) if n.is_i64() => Some(n.to_string()),
                Some(_) => return Err("timestamp: must be unix seconds".into()),
            };
            let metadata = timestamp.map(|t| ("timestamp".to_string(), t));
            (metadata.into_iter().collect(), (raw, record))
        }
    };
    let (raw_payload, payload) = payload;
    let label = if format == Format::V1 {
        "clusterID"
    } else {
        "payload.clusterID"
    };
    let cluster_id = match payload.get("clusterID") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(format!("{label}: required, a non-empty string")),
    };
    if has_nul(&Value::Object(payload)) {
        let field = if format == Format::V1 {
            "body"
        } else {
            "payload"
        };
        return Err(format!(
            "{field}: contains a NUL character (\\u0000), which cannot be stored"
        ));
    }
    let mut metadata = metadata;
    let report_id = metadata.get("reportID").cloned();
    if let Some(id) = &report_id {
        if id.is_empty() || id.len() > MAX_REPORT_ID {
            return Err(format!(
                "metadata.reportID: must be 1 to {MAX_REPORT_ID} characters"
            ));
        }
    }
    metadata.insert("received_at".into(), received_at.to_string());
    metadata.insert("received_from".into(), received_from.to_string());
    Ok(Report {
        cluster_id,
        report_id,
        metadata,
        payload: raw_payload.get().to_string(),
        received_at,
        received_from: received_from.to_string(),
    })
}

type Payload<'a> = (&'a RawValue, Map<String, Value>);

fn split_current(body: &[u8]) -> Result<(BTreeMap<String, String>, Payload<'_>), String> {
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
        for (key, value) in object(raw, "metadata")? {
            match value {
                Value::String(s) if !s.contains('\0') && !key.contains('\0') => {
                    metadata.insert(key, s);
                }
                Value::String(_) => {
                    return Err(format!("metadata.{key}: contains a NUL character"))
                }
                _ => return Err(format!("metadata.{key}: must be a string")),
            }
        }
    }
    let raw = top.get("payload").ok_or("payload: required")?;
    Ok((metadata, (raw, object(raw, "payload")?)))
}

fn object(raw: &RawValue, field: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(raw.get()) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{field}: must be an object")),
        Err(e) => Err(json_error(e)),
    }
}

fn json_error(e: serde_json::Error) -> String {
    format!("body: invalid JSON ({e})")
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
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
            (r#"{"payload": []}"#, "payload: must be an object"),
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
            (r#""x""#, "body: must be an object"),
        ] {
            let got = parse(Format::V1, body.as_bytes(), 1, "h").expect_err(body);
            assert!(
                got.starts_with(want),
                "body {body}: want {want:?}, got {got:?}"
            );
        }
    }
}
