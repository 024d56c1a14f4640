//! The wire format the collector accepts, and its validation. Turns a request
//! body into a `Report` ready to store, or a message naming the bad field.
//! Does not read sockets or touch the database.
//!
//! Two formats arrive:
//!
//! * `POST /api/v1/stats`, the current one:
//!   `{"metadata": {"<key>": "<string>", ...}, "payload": {"clusterID": "...", ...}}`
//!   - The top-level names match in any case, as Go's encoding/json matched
//!     them for the seed collector: its volunteer sent `{"Metadata": ...,
//!     "Payload": ...}`, since its `MarshalJSON` had a pointer receiver and
//!     was never called. Two keys naming one field (`payload` and
//!     `Payload`) are refused; any other key is refused as unknown, except
//!     the seed's `accountID` and `accountSecret` (strings), which are
//!     dropped: the seed collector kept neither once it dropped Tectonic
//!     accounts.
//!   - `metadata`: optional object of string values. `reportID`, when present,
//!     makes retries idempotent. `received_at` and `received_from` are the
//!     collector's own and always overwritten.
//!   - `payload`: required object with a non-empty string `clusterID`; stored as
//!     sent, unknown fields included (numbers keep every digit). The
//!     starter's `{"clusterID", "kubernetesNodes": [{"status": {"capacity",
//!     "nodeInfo"}}]}` is such a payload, kept as it is.
//! * `POST /api/v1`, the flat record of the Go spartakus v1.0 volunteer:
//!   `{"version", "timestamp", "clusterID", "masterVersion", "nodes", "extensions"}`.
//!   The whole record is the payload; its `timestamp` (string or integer)
//!   becomes `metadata.timestamp`. Its names match exactly, as the views
//!   read them.
//!
//! `accountSecret` is never stored: the one exception to "stored as sent".
//! The seed put it at the top of the body, beside `accountID`; a key that
//! names it (in any case, as above) at the top of the metadata or of the
//! payload (either format) is removed too. A payload that has one is
//! rewritten without it: each such member goes with one comma beside it,
//! and every other byte stays as sent. Deeper keys are the payload's own
//! and kept; no volunteer ever put a secret there.
//!
//! Bad data is the client's fault, so it is refused here, with 400 and the
//! field's name, and never reaches PostgreSQL, where it would fail a whole
//! batch of other clients' reports (store.rs). Each column of `reports`
//! (collector/migrations/) takes only what it can hold and index. The caps are far
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
//! then one byte pass for its numbers (`numbers_fit`), and one more
//! (`without_secret`) only for a payload with an `accountSecret`.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
    /// The payload's JSON text exactly as the client sent it, less any
    /// top-level `accountSecret`.
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
        payload: match top.secret {
            true => without_secret(raw.get()),
            false => raw.get().to_string(),
        },
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

/// A report's top-level fields, in the order of `TOP`.
const TOP: [&str; 4] = ["metadata", "payload", "accountID", "accountSecret"];

/// Splits a current-format body into its metadata and its payload. The
/// seed's `accountID` and `accountSecret` are read and dropped.
fn split_current(body: &[u8]) -> Result<(BTreeMap<String, String>, &RawValue), String> {
    let Members(members) = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            "body: must be a JSON object with metadata and payload".to_string()
        } else {
            json_error(e)
        }
    })?;
    // Each of TOP: the key as sent, and its value.
    let mut found: [Option<(String, &RawValue)>; 4] = Default::default();
    for (key, value) in members {
        let Some(at) = TOP.iter().position(|name| names(&key, name)) else {
            return Err(format!(
                "{key}: unknown field; a report has only metadata and payload"
            ));
        };
        if let Some((first, _)) = &found[at] {
            // Go kept the last of them; which one was meant is a guess.
            return Err(format!(
                "{key}: repeats {first}, as field names match in any case; send it once"
            ));
        }
        found[at] = Some((key, value));
    }
    let [metadata, payload, account_id, account_secret] = found;
    for (name, value) in [(TOP[2], account_id), (TOP[3], account_secret)] {
        if let Some((_, raw)) = value {
            // Read, though dropped: a body with broken JSON in it is refused.
            match serde_json::from_str::<Option<String>>(raw.get()) {
                Ok(_) => {}
                Err(e) if e.is_data() => return Err(format!("{name}: must be a string")),
                Err(e) => return Err(json_error(e)),
            }
        }
    }
    let mut map = BTreeMap::new();
    if let Some((_, raw)) = metadata.filter(|(_, r)| r.get() != "null") {
        at_most("metadata", raw.get(), MAX_METADATA)?;
        // Each value is taken as raw text and decoded only if it is a JSON
        // string: decoding into serde_json's Value would accept the object
        // {"$serde_json::private::RawValue": "\"x\""} as the string "x".
        let entries: BTreeMap<String, &RawValue> = match serde_json::from_str(raw.get()) {
            Ok(entries) => entries,
            Err(e) if e.is_data() => return Err("metadata: must be an object".into()),
            Err(e) => return Err(json_error(e)),
        };
        for (key, value) in entries {
            if !value.get().starts_with('"') {
                return Err(format!("metadata.{key}: must be a string"));
            }
            let text: String = serde_json::from_str(value.get()).map_err(json_error)?;
            if text.contains('\0') || key.contains('\0') {
                return Err(format!("metadata.{key}: contains a NUL character"));
            }
            if !names(&key, SECRET) {
                map.insert(key, text);
            }
        }
    }
    let (_, raw) = payload.ok_or("payload: required")?;
    Ok((map, raw))
}

/// The key that is never stored, wherever `names` finds it: at the top of
/// the body, of the metadata or of the payload.
const SECRET: &str = "accountSecret";

/// Whether `key` names the field `name` (ASCII) as Go's encoding/json, and
/// so the seed collector, matched them: in any case. Under Unicode's simple
/// case folding, which Go uses, two more characters fold to ASCII letters:
/// the long s (U+017F) and the Kelvin sign (U+212A).
fn names(key: &str, name: &str) -> bool {
    let mut chars = key.chars();
    name.bytes().all(|n| {
        let c = match chars.next() {
            Some('\u{17F}') => 's',
            Some('\u{212A}') => 'k',
            Some(c) => c,
            None => return false,
        };
        c.eq_ignore_ascii_case(&char::from(n))
    }) && chars.next().is_none()
}

/// A JSON object's members in order, duplicates kept, values as sent.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(Members(members))
    }
}

/// `object`'s text without its top-level `accountSecret` members: each is
/// cut out with the comma after it (before it, for the last one), and
/// every other byte stays as sent. `object` is an object `scan` has read.
fn without_secret(object: &str) -> String {
    let b = object.as_bytes();
    // Where each member's key starts and its value ends, and whether it is
    // the secret.
    let mut members = Vec::new();
    let mut at = skip_ws(b, 1);
    while b.get(at) == Some(&b'"') {
        let start = at;
        at += 1 + string_end(&b[at + 1..]);
        // Every key here decodes (scan read them); one that did not would
        // go, rather than risk keeping a secret.
        let secret = serde_json::from_str::<String>(&object[start..at])
            .map_or(true, |key| names(&key, SECRET));
        // Past the colon and the whitespace around it.
        at = skip_ws(b, skip_ws(b, at) + 1);
        at = value_end(b, at);
        members.push((start, at, secret));
        at = skip_ws(b, at);
        if b.get(at) == Some(&b',') {
            at = skip_ws(b, at + 1);
        }
    }
    let (Some(first), Some(last)) = (members.first(), members.last()) else {
        return object.to_string();
    };
    let mut out = String::with_capacity(object.len());
    out.push_str(&object[..first.0]);
    let kept: Vec<usize> = (0..members.len()).filter(|&i| !members[i].2).collect();
    for (n, &i) in kept.iter().enumerate() {
        let (start, end, _) = members[i];
        out.push_str(&object[start..end]);
        if n + 1 < kept.len() {
            out.push_str(&object[end..members[i + 1].0]);
        }
    }
    out.push_str(&object[last.1..]);
    out
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while matches!(b.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Where the JSON value starting at `at` ends, in text serde_json has read.
fn value_end(b: &[u8], mut at: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&c) = b.get(at) {
        match c {
            b'"' => at += string_end(&b[at + 1..]),
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return at,
            b'}' | b']' => depth -= 1,
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return at,
            _ => {}
        }
        at += 1;
        if depth == 0 && matches!(c, b'"' | b'}' | b']') {
            return at;
        }
    }
    at
}

fn json_error(e: serde_json::Error) -> String {
    format!("body: invalid JSON ({e})")
}

/// What `scan` found at the top level of an object.
struct TopLevel {
    cluster_id: Text,
    timestamp: Text,
    /// Whether a key `names` accountSecret is among them.
    secret: bool,
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
            secret: false,
        };
        while let Some(key) = map.next_key_seed(KeyName)? {
            match key {
                Key::ClusterId => top.cluster_id = map.next_value_seed(Field)?,
                Key::Timestamp => top.timestamp = map.next_value_seed(Field)?,
                Key::Secret => {
                    top.secret = true;
                    map.next_value_seed(Any)?;
                }
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
    Secret,
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
            _ if names(v, SECRET) => Ok(Key::Secret),
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
mod tests;

#[cfg(test)]
mod properties;
