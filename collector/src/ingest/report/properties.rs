//! Randomised properties of `parse`: thousands of generated documents,
//! poisoned and byte-mutated copies of valid reports, each checked against
//! what the generator knows the parser must find. No crates: a xorshift64*
//! generator with fixed seeds, so a failure names a seed that reproduces
//! it. collector/fuzz checks the same invariants under libFuzzer.

use super::*;
use serde_json::Value;
use std::collections::btree_map::Entry;

const AT: i64 = 1437174812;
const FROM: &str = "192.0.2.145";
const NUL_REFUSED: &str = "contains a NUL character (\\u0000), which cannot be stored";

/// xorshift64* (Vigna, 2014): tiny and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // One splitmix64 step, so that neighbouring seeds diverge at once
        // and the state is never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n`; `n` must not be 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        s.push(char::from(b'1' + self.below(9) as u8));
        (1..n).for_each(|_| s.push(char::from(b'0' + self.below(10) as u8)));
        s
    }
    fn ws(&mut self) -> &'static str {
        self.pick(&["", "", " ", "\n", "\t", "\r\n  "])
    }
}

/// How hostile generated text is: each rate is "one piece in n", 0 never.
#[derive(Clone, Copy)]
struct Hostility {
    nul: usize,
    lone: usize,
    huge: usize,
}

const TAME: Hostility = Hostility {
    nul: 0,
    lone: 0,
    huge: 0,
};

/// A string literal as written, piece by piece, and what it decodes to.
#[derive(Clone, Default)]
struct Str {
    pieces: Vec<(String, String)>,
    lone: bool,
}

impl Str {
    /// `s` (letters only) with some characters written as `\u` escapes,
    /// so that e.g. `"cluster\u0049D"` must still be read as `clusterID`.
    fn plain(rng: &mut Rng, s: &str) -> Str {
        let pieces = s
            .chars()
            .map(|c| match rng.below(8) {
                0 => (format!("\\u{:04x}", u32::from(c)), c.to_string()),
                1 => (format!("\\u{:04X}", u32::from(c)), c.to_string()),
                _ => (c.to_string(), c.to_string()),
            })
            .collect();
        Str {
            pieces,
            lone: false,
        }
    }
    fn random(rng: &mut Rng, h: Hostility) -> Str {
        let mut s = Str::default();
        for _ in 0..rng.below(5) {
            if h.nul > 0 && rng.one_in(h.nul) {
                s.pieces.push(("\\u0000".into(), "\0".into()));
            } else if h.lone > 0 && rng.one_in(h.lone) {
                s.add_lone(rng);
            } else {
                s.pieces.push(piece(rng));
            }
        }
        s
    }
    fn text(&self) -> String {
        let body: String = self.pieces.iter().map(|p| p.0.as_str()).collect();
        format!("\"{body}\"")
    }
    fn value(&self) -> String {
        self.pieces.iter().map(|p| p.1.as_str()).collect()
    }
    fn has_nul(&self) -> bool {
        self.value().contains('\0')
    }
    fn insert(&mut self, rng: &mut Rng, text: &str, value: &str) {
        let at = rng.below(self.pieces.len() + 1);
        self.pieces.insert(at, (text.into(), value.into()));
    }
    fn add_nul(&mut self, rng: &mut Rng) {
        self.insert(rng, "\\u0000", "\0");
    }
    fn add_lone(&mut self, rng: &mut Rng) {
        // A high surrogate is followed by a letter so that no later piece
        // (a lone low one) can complete the pair.
        let text = rng.pick(&[
            "\\ud800x",
            "\\udbffx",
            "\\udc00",
            "\\udfff",
            "\\ud83d\\u0041",
        ]);
        self.insert(rng, text, "\u{FFFD}");
        self.lone = true;
    }
}

/// A piece of a string that reads back cleanly: escapes, non-ASCII, words.
fn piece(rng: &mut Rng) -> (String, String) {
    let (text, value) = match rng.below(16) {
        0 => ("\\\"", "\""),
        1 => ("\\\\", "\\"),
        2 => ("\\/", "/"),
        3 => ("\\n", "\n"),
        4 => ("\\t\\b\\f\\r", "\t\u{8}\u{c}\r"),
        5 => ("\\u001f", "\u{1f}"),
        6 => ("é", "é"),
        7 => ("\\u00e9", "é"),
        8 => ("\\u20AC", "€"),
        9 => ("😀", "😀"),
        10 => ("\\ud83d\\ude00", "😀"),
        11 => ("\\uFFFF", "\u{FFFF}"),
        _ => {
            let word: String = (0..1 + rng.below(8))
                .map(|_| rng.pick(&['a', 'b', 'Z', '0', '9', ' ', '-', '.', ':', '{']))
                .collect();
            return (word.clone(), word);
        }
    };
    (text.into(), value.into())
}

/// A generated JSON value: written out by `render`, and known in advance.
#[derive(Clone)]
enum Json {
    Null,
    Bool(bool),
    /// The number's text, and whether serde_json can read it (finite).
    Number(String, bool),
    String(Str),
    Array(Vec<Json>),
    Object(Vec<(Str, Json)>),
}

impl Json {
    fn random(rng: &mut Rng, depth: usize, h: Hostility) -> Json {
        match rng.below(if depth == 0 { 4 } else { 7 }) {
            0 => match rng.below(3) {
                0 => Json::Null,
                n => Json::Bool(n == 1),
            },
            1 | 2 => number(rng, h),
            3 => Json::String(Str::random(rng, h)),
            4 | 5 => Json::Object(
                (0..rng.below(5))
                    .map(|_| (key(rng, h), Json::random(rng, depth - 1, h)))
                    .collect(),
            ),
            _ => Json::Array(
                (0..rng.below(5))
                    .map(|_| Json::random(rng, depth - 1, h))
                    .collect(),
            ),
        }
    }
    /// A value of any kind but a string (and not null unless `null`).
    fn not_string(rng: &mut Rng, null: bool) -> Json {
        loop {
            match Json::random(rng, 2, TAME) {
                Json::String(_) => {}
                Json::Null if !null => {}
                v => return v,
            }
        }
    }
    fn render(&self, rng: &mut Rng, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(text, _) => out.push_str(text),
            Json::String(s) => out.push_str(&s.text()),
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    out.push_str(if i == 0 { rng.ws() } else { "," });
                    out.push_str(rng.ws());
                    v.render(rng, out);
                    out.push_str(rng.ws());
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    out.push_str(if i == 0 { rng.ws() } else { "," });
                    out.push_str(rng.ws());
                    out.push_str(&k.text());
                    out.push_str(rng.ws());
                    out.push(':');
                    out.push_str(rng.ws());
                    v.render(rng, out);
                    out.push_str(rng.ws());
                }
                out.push('}');
            }
        }
    }
    fn text(&self, rng: &mut Rng) -> String {
        let mut out = String::new();
        self.render(rng, &mut out);
        out
    }
    /// This value's text, as `render` writes it, and what the collector
    /// must store of it as a payload: the same text, less each top-level
    /// accountSecret member with the comma after it (before it, for the
    /// last one kept).
    fn payload_text(&self, rng: &mut Rng) -> (String, String) {
        let Json::Object(entries) = self else {
            let text = self.text(rng);
            return (text.clone(), text);
        };
        if entries.is_empty() {
            return ("{}".into(), "{}".into());
        }
        // render's pieces: the opening, then each member and the whitespace
        // after it, a comma between them, and the close.
        let head = format!("{{{}{}", rng.ws(), rng.ws());
        let mut members = Vec::new();
        for (i, (k, v)) in entries.iter().enumerate() {
            let before = match i {
                0 => String::new(),
                _ => format!(",{}", rng.ws()),
            };
            let mut member = format!("{}{}:{}", k.text(), rng.ws(), rng.ws());
            v.render(rng, &mut member);
            let after = rng.ws();
            members.push((before, member, after, !k.lone && names(&k.value(), SECRET)));
        }
        let mut text = head.clone();
        for (before, member, after, _) in &members {
            text.push_str(&format!("{before}{member}{after}"));
        }
        text.push('}');
        let kept: Vec<usize> = (0..members.len()).filter(|&i| !members[i].3).collect();
        let mut stored = head;
        for (n, &i) in kept.iter().enumerate() {
            stored.push_str(&members[i].1);
            if n + 1 < kept.len() {
                stored.push_str(&format!("{}{}", members[i].2, members[i + 1].0));
            }
        }
        let last = members.last().expect("not empty");
        stored.push_str(&format!("{}}}", last.2));
        (text, stored)
    }
    /// Whether reading this must fail or be refused: a NUL, a lone
    /// surrogate or an out-of-range number anywhere, keys included.
    fn poisoned(&self) -> bool {
        match self {
            Json::Null | Json::Bool(_) => false,
            Json::Number(_, finite) => !finite,
            Json::String(s) => s.has_nul() || s.lone,
            Json::Array(items) => items.iter().any(Json::poisoned),
            Json::Object(entries) => entries
                .iter()
                .any(|(k, v)| k.has_nul() || k.lone || v.poisoned()),
        }
    }
    /// The value of the last entry named `name`, as serde_json keeps it.
    fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| !k.lone && k.value() == name)
                .map(|(_, v)| v),
            _ => None,
        }
    }
    fn entries(&mut self) -> &mut Vec<(Str, Json)> {
        match self {
            Json::Object(entries) => entries,
            _ => panic!("the generator made a report that is not an object"),
        }
    }
    fn strings(&self) -> usize {
        match self {
            Json::String(_) => 1,
            Json::Array(items) => items.iter().map(Json::strings).sum(),
            Json::Object(entries) => entries.iter().map(|(_, v)| 1 + v.strings()).sum(),
            _ => 0,
        }
    }
    /// The `n`th string, keys included, in document order.
    fn string_mut(&mut self, n: &mut usize) -> Option<&mut Str> {
        match self {
            Json::String(s) if *n == 0 => Some(s),
            Json::String(_) => {
                *n -= 1;
                None
            }
            Json::Array(items) => items.iter_mut().find_map(|v| v.string_mut(n)),
            Json::Object(entries) => {
                for (k, v) in entries.iter_mut() {
                    if *n == 0 {
                        return Some(k);
                    }
                    *n -= 1;
                    if let Some(s) = v.string_mut(n) {
                        return Some(s);
                    }
                }
                None
            }
            _ => None,
        }
    }
    fn values(&self) -> usize {
        match self {
            Json::Array(items) => 1 + items.iter().map(Json::values).sum::<usize>(),
            Json::Object(entries) => 1 + entries.iter().map(|(_, v)| v.values()).sum::<usize>(),
            _ => 1,
        }
    }
    /// The `n`th value in document order; this one is the 0th.
    fn value_mut(&mut self, n: &mut usize) -> Option<&mut Json> {
        if *n == 0 {
            return Some(self);
        }
        *n -= 1;
        match self {
            Json::Array(items) => items.iter_mut().find_map(|v| v.value_mut(n)),
            Json::Object(entries) => entries.iter_mut().find_map(|(_, v)| v.value_mut(n)),
            _ => None,
        }
    }
}

fn key(rng: &mut Rng, h: Hostility) -> Str {
    match rng.below(13) {
        i @ 0..=5 => {
            let names = [
                "clusterID",
                "timestamp",
                "metadata",
                "payload",
                "reportID",
                "",
            ];
            Str::plain(rng, names[i])
        }
        6 => {
            let name = any_case(rng, SECRET);
            Str::plain(rng, &name)
        }
        _ => Str::random(rng, h),
    }
}

/// `name` in a random case, sometimes with the characters Go folds to `s`
/// and `k`: each spelling names the same field.
fn any_case(rng: &mut Rng, name: &str) -> String {
    if rng.one_in(3) {
        return name.to_string();
    }
    name.chars()
        .map(|c| match rng.below(10) {
            0 if c.eq_ignore_ascii_case(&'s') => '\u{17F}',
            0 if c.eq_ignore_ascii_case(&'k') => '\u{212A}',
            0..=3 => c.to_ascii_uppercase(),
            4..=7 => c.to_ascii_lowercase(),
            _ => c,
        })
        .collect()
}

/// Integers up to 300 digits, fractions, exponents far beyond f64 in both
/// directions (1e-400 reads as 0) up to the edge of PostgreSQL's numeric,
/// and with `h.huge` numbers that overflow an f64 or numeric.
fn number(rng: &mut Rng, h: Hostility) -> Json {
    let sign = rng.pick(&["", "", "-"]);
    if h.huge > 0 && rng.one_in(h.huge) {
        let text = match rng.below(4) {
            0 => rng.digits(400),
            1 => format!("{}e{}", rng.digits(2), rng.pick(&["400", "+999", "309"])),
            2 => format!("{}.5E{}", rng.digits(3), 400),
            // serde_json reads these (as 0); numeric cannot hold them.
            _ => rng
                .pick(&[
                    "1e-16384",
                    "1.0E-16383",
                    "0e1073741823",
                    "5e-99999999999999999999",
                ])
                .to_string(),
        };
        return Json::Number(format!("{sign}{text}"), false);
    }
    let text = match rng.below(6) {
        0 => rng
            .pick(&[
                "0",
                "0.0",
                "0.0e-7",
                "0e0",
                "1E-16383",
                "0.5e-16382",
                "0e1073741822",
            ])
            .to_string(),
        1 => (rng.next_u64() >> rng.below(64)).to_string(),
        2 => {
            let n = 1 + rng.below(25);
            rng.digits(n)
        }
        3 => rng.digits(300),
        _ => {
            // At most 3 integer digits and an exponent of at most 300:
            // always finite, however far from an f64 the exponent is.
            let exp = rng.pick(&["e-400", "E-30", "e-1", "e0", "E+7", "e30", "e300", ""]);
            let n = 1 + rng.below(3);
            let whole = rng.digits(n);
            format!("{whole}.{}{exp}", rng.below(10_000))
        }
    };
    Json::Number(format!("{sign}{text}"), true)
}

/// A report the collector must accept, and what it must make of it.
#[derive(Clone)]
struct Model {
    format: Format,
    /// Current: the body's top-level object; V1: the payload itself.
    top: Json,
    cluster_id: String,
    /// What the metadata must be, the collector's own fields aside.
    metadata: BTreeMap<String, String>,
}

impl Model {
    fn valid(rng: &mut Rng, format: Format) -> Model {
        let mut id = match rng.one_in(20) {
            true => Str::plain(rng, &"c".repeat(256)),
            false => Str::random(rng, TAME),
        };
        if id.value().is_empty() {
            id.pieces.push(("c".into(), "c".into()));
        }
        let cluster_id = id.value();
        let mut payload = vec![(Str::plain(rng, "clusterID"), Json::String(id))];
        let mut metadata = BTreeMap::new();
        if format == Format::V1 && !rng.one_in(4) {
            let t = match rng.below(3) {
                0 => Json::Null,
                1 => {
                    let n = 1 + rng.below(10);
                    Json::Number(rng.digits(n), true)
                }
                _ => Json::String(Str::random(rng, TAME)),
            };
            match &t {
                Json::Number(n, _) => drop(metadata.insert("timestamp".into(), n.clone())),
                Json::String(s) => drop(metadata.insert("timestamp".into(), s.value())),
                _ => {}
            }
            payload.push((Str::plain(rng, "timestamp"), t));
        }
        for _ in 0..rng.below(6) {
            let k = Str::random(rng, TAME);
            if k.value() != "clusterID" && k.value() != "timestamp" {
                payload.push((k, Json::random(rng, 4, TAME)));
            }
        }
        // Secrets, which the collector must cut out of the stored text.
        for _ in 0..rng.below(3).saturating_sub(rng.below(2)) {
            let name = any_case(rng, SECRET);
            payload.push((Str::plain(rng, &name), Json::random(rng, 3, TAME)));
        }
        shuffle(rng, &mut payload);
        let payload = Json::Object(payload);
        let top = match format {
            Format::V1 => payload,
            Format::Current => {
                let name = any_case(rng, "payload");
                let mut top = vec![(Str::plain(rng, &name), payload)];
                // The seed's account fields, read and dropped.
                for field in ["accountID", SECRET] {
                    if rng.one_in(4) {
                        let name = any_case(rng, field);
                        let v = match rng.one_in(4) {
                            true => Json::Null,
                            false => Json::String(Str::random(rng, TAME)),
                        };
                        top.push((Str::plain(rng, &name), v));
                    }
                }
                let name = any_case(rng, "metadata");
                match rng.below(4) {
                    0 => {}
                    1 => top.push((Str::plain(rng, &name), Json::Null)),
                    _ => {
                        let mut entries = Vec::new();
                        for _ in 0..rng.below(5) {
                            let k = match rng.below(5) {
                                0 => Str::plain(rng, "reportID"),
                                1 => Str::plain(rng, "received_at"),
                                2 => {
                                    // Never stored, so not in `metadata`.
                                    let secret = any_case(rng, SECRET);
                                    let secret = Str::plain(rng, &secret);
                                    let v = Json::String(Str::random(rng, TAME));
                                    entries.push((secret, v));
                                    continue;
                                }
                                _ => Str::random(rng, TAME),
                            };
                            let v = match k.value().as_str() {
                                "reportID" => {
                                    let n = 1 + rng.below(256);
                                    let id: String = (0..n).map(|_| 'r').collect();
                                    Str::plain(rng, &id)
                                }
                                _ => Str::random(rng, TAME),
                            };
                            // Distinct keys: a repeated one would keep the last.
                            if let Entry::Vacant(slot) = metadata.entry(k.value()) {
                                slot.insert(v.value());
                                entries.push((k, Json::String(v)));
                            }
                        }
                        top.push((Str::plain(rng, &name), Json::Object(entries)));
                    }
                }
                shuffle(rng, &mut top);
                Json::Object(top)
            }
        };
        Model {
            format,
            top,
            cluster_id,
            metadata,
        }
    }
    fn payload(&mut self) -> &mut Json {
        match self.format {
            Format::V1 => &mut self.top,
            Format::Current => self.field("payload").expect("a valid report has a payload"),
        }
    }
    /// The top-level field `name` names, in any case.
    fn field(&mut self, name: &str) -> Option<&mut Json> {
        self.top
            .entries()
            .iter_mut()
            .find(|(k, _)| names(&k.value(), name))
            .map(|(_, v)| v)
    }
    /// The body, and the payload text the collector must store from it.
    fn render(&self, rng: &mut Rng) -> (String, String) {
        let mut body = rng.ws().to_string();
        let payload = match (&self.format, &self.top) {
            (Format::V1, top) => {
                let (text, stored) = top.payload_text(rng);
                body.push_str(&text);
                stored
            }
            (Format::Current, Json::Object(entries)) => {
                let mut payload = String::new();
                body.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    let (text, stored) = v.payload_text(rng);
                    if names(&k.value(), "payload") {
                        payload = stored;
                    }
                    body.push_str(&format!("{}{}:{}{text}", rng.ws(), k.text(), rng.ws()));
                }
                body.push_str(rng.ws());
                body.push('}');
                payload
            }
            (Format::Current, top) => {
                body.push_str(&top.text(rng));
                String::new()
            }
        };
        body.push_str(rng.ws());
        (body, payload)
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// Parses `body` and checks every promise `parse` makes about any input,
/// returning its answer for further checks, or the broken promise.
fn check(format: Format, body: &[u8]) -> Result<Result<Report, String>, String> {
    let got = parse(format, body, AT, FROM);
    match &got {
        Ok(r) => accepted(format, body, r)?,
        Err(m) if !refused(format, m) => return Err(format!("unexpected message {m:?}")),
        Err(_) => {}
    }
    Ok(got)
}

fn accepted(format: Format, body: &[u8], r: &Report) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "accepted invalid UTF-8")?;
    // With the raw_value feature, Value reads an object keyed
    // "$serde_json::private::RawValue" as the JSON in its string; no
    // generated key is that token (collector/fuzz reads its own tree).
    let payload: Value = serde_json::from_str(&r.payload)
        .map_err(|e| format!("accepted payload does not read as JSON: {e}"))?;
    let Value::Object(object) = &payload else {
        return Err("accepted payload is not an object".into());
    };
    if object.keys().any(|k| names(k, SECRET)) || r.metadata.keys().any(|k| names(k, SECRET)) {
        return Err("stored an accountSecret".into());
    }
    // The payload as sent, when the whole body reads (it may be one level
    // too deep for serde_json's recursion limit where the payload is not).
    let sent = match format {
        Format::V1 => serde_json::from_str::<Value>(text).ok(),
        Format::Current => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(top)) => top
                .into_iter()
                .find_map(|(k, v)| names(&k, "payload").then_some(v)),
            _ => None,
        },
    };
    match sent {
        Some(Value::Object(mut sent)) if sent.keys().any(|k| names(k, SECRET)) => {
            sent.retain(|k, _| !names(k, SECRET));
            if Value::Object(sent) != payload {
                return Err(format!("payload {:?} is not the one sent", r.payload));
            }
        }
        _ => {
            if !text.contains(r.payload.as_str()) {
                return Err(format!("payload {:?} is not in the body", r.payload));
            }
            let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
            if format == Format::V1 && r.payload != trimmed {
                return Err("a v1 payload is not the whole body".into());
            }
        }
    }
    if r.payload.contains('\0') || has_nul(&payload) {
        return Err("accepted a payload with a NUL".into());
    }
    if r.cluster_id.is_empty()
        || r.cluster_id.len() > 256
        || object.get("clusterID").and_then(Value::as_str) != Some(r.cluster_id.as_str())
    {
        return Err(format!("clusterID {:?} is not the payload's", r.cluster_id));
    }
    let stamps = [
        ("received_at", AT.to_string()),
        ("received_from", FROM.to_string()),
    ];
    if r.received_at != AT
        || r.received_from != FROM
        || stamps.iter().any(|(k, v)| r.metadata.get(*k) != Some(v))
    {
        return Err(format!("not stamped: {:?}", r.metadata));
    }
    if r.metadata
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err("accepted metadata with a NUL".into());
    }
    if r.report_id.as_ref() != r.metadata.get("reportID")
        || r.report_id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 256)
    {
        return Err(format!("reportID {:?}", r.report_id));
    }
    Ok(())
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Whether `m` is one of the messages report.rs writes: a field, ':',
/// then the rule. serde_json's own messages end in a position.
fn refused(format: Format, m: &str) -> bool {
    let serde = |field: &str| {
        let rest = m.strip_prefix(field).unwrap_or("");
        rest.starts_with(&format!(": {NUL_REFUSED} at line "))
            || rest.starts_with(": invalid type: ")
                && rest.contains(", expected an object at line ")
    };
    let cluster = "clusterID: required, a non-empty string";
    let long_id = "clusterID: at most 256 bytes";
    let own = |field: &str| {
        m == format!("{field}: at most 33554432 bytes") || m == format!("{field}: {NUMERIC}")
    };
    m.starts_with("body: invalid JSON (") && m.ends_with(')')
        || match format {
            Format::V1 => {
                serde("body")
                    || own("body")
                    || m == cluster
                    || m == long_id
                    || m == "timestamp: must be unix seconds"
                    || m == "timestamp: at most 64 bytes"
            }
            Format::Current => {
                serde("payload")
                    || own("payload")
                    || m == "body: must be a JSON object with metadata and payload"
                    || m == "payload: required"
                    || m == format!("payload.{cluster}")
                    || m == format!("payload.{long_id}")
                    || m == "metadata: must be an object"
                    || m == "metadata: at most 65536 bytes"
                    || m == "metadata.reportID: must be 1 to 256 bytes"
                    || m.starts_with("metadata.")
                        && (m.ends_with(": must be a string")
                            || m.ends_with(": contains a NUL character"))
                    || m.strip_suffix(": unknown field; a report has only metadata and payload")
                        .is_some_and(|k| !TOP.iter().any(|name| names(k, name)))
                    || m.strip_suffix(", as field names match in any case; send it once")
                        .and_then(|m| m.split_once(": repeats "))
                        .is_some_and(|(k, first)| {
                            TOP.iter().any(|n| names(k, n) && names(first, n))
                        })
                    || m == "accountID: must be a string"
                    || m == "accountSecret: must be a string"
            }
        }
}

fn formats(case: u64) -> Format {
    match case % 2 {
        0 => Format::Current,
        _ => Format::V1,
    }
}

#[test]
fn any_document_gets_a_valid_report_or_a_message_naming_the_field() {
    let (mut ok, mut refused) = (0, 0);
    for case in 0..4000u64 {
        let seed = 0x5EED_0001_0000_0000 + case;
        let mut rng = Rng::new(seed);
        let format = formats(case);
        let h = rng.pick(&[
            TAME,
            Hostility {
                nul: 60,
                lone: 80,
                huge: 40,
            },
            Hostility {
                nul: 8,
                lone: 10,
                huge: 5,
            },
        ]);
        let doc = match (format, rng.below(5)) {
            (_, 0) => Json::random(&mut rng, 5, h),
            (Format::V1, _) => {
                let mut entries: Vec<_> = (0..rng.below(4))
                    .map(|_| (key(&mut rng, h), Json::random(&mut rng, 4, h)))
                    .collect();
                let id = match rng.below(6) {
                    0 => Json::random(&mut rng, 1, h),
                    _ => Json::String(Str::random(&mut rng, h)),
                };
                entries.push((Str::plain(&mut rng, "clusterID"), id));
                let timestamp = match rng.below(4) {
                    0 => Json::random(&mut rng, 1, h),
                    1 => Json::String(Str::random(&mut rng, h)),
                    _ => Json::Number(rng.next_u64().to_string(), true),
                };
                entries.push((Str::plain(&mut rng, "timestamp"), timestamp));
                shuffle(&mut rng, &mut entries);
                Json::Object(entries)
            }
            (Format::Current, _) => {
                let mut entries = vec![(Str::plain(&mut rng, "payload"), report_like(&mut rng, h))];
                if !rng.one_in(3) {
                    let metadata = match rng.below(3) {
                        0 => Json::random(&mut rng, 2, h),
                        _ => Json::Object(
                            (0..rng.below(4))
                                .map(|_| (key(&mut rng, h), Json::String(Str::random(&mut rng, h))))
                                .collect(),
                        ),
                    };
                    entries.push((Str::plain(&mut rng, "metadata"), metadata));
                }
                if rng.one_in(8) {
                    entries.push((key(&mut rng, h), Json::random(&mut rng, 2, h)));
                }
                shuffle(&mut rng, &mut entries);
                Json::Object(entries)
            }
        };
        let body = doc.text(&mut rng);
        let got = check(format, body.as_bytes())
            .unwrap_or_else(|e| panic!("seed {seed:#x}, {format:?}, body {body:?}: {e}"));
        let payload = match format {
            Format::V1 => Some(&doc),
            Format::Current => doc.get("payload"),
        };
        if payload.is_some_and(Json::poisoned) && got.is_ok() {
            panic!("seed {seed:#x}, {format:?}, body {body:?}: accepted a poisoned payload");
        }
        match got {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
    }
    // Guards against a generator that only ever makes one kind of case.
    assert!(
        ok > 600 && refused > 600,
        "{ok} accepted, {refused} refused"
    );
}

/// A payload-shaped value: usually an object with a clusterID.
fn report_like(rng: &mut Rng, h: Hostility) -> Json {
    if rng.one_in(5) {
        return Json::random(rng, 3, h);
    }
    let id = match rng.below(6) {
        0 => Json::random(rng, 1, h),
        _ => Json::String(Str::random(rng, h)),
    };
    let mut entries = vec![(Str::plain(rng, "clusterID"), id)];
    for _ in 0..rng.below(5) {
        entries.push((key(rng, h), Json::random(rng, 4, h)));
    }
    shuffle(rng, &mut entries);
    Json::Object(entries)
}

#[test]
fn valid_reports_are_accepted_with_their_exact_text() {
    for case in 0..2000u64 {
        let seed = 0x5EED_0002_0000_0000 + case;
        let mut rng = Rng::new(seed);
        let model = Model::valid(&mut rng, formats(case));
        let (body, payload) = model.render(&mut rng);
        let fail = |e: &str| panic!("seed {seed:#x}, {:?}, body {body:?}: {e}", model.format);
        let r = match check(model.format, body.as_bytes()) {
            Ok(Ok(r)) => r,
            Ok(Err(m)) => fail(&format!("refused: {m}")),
            Err(e) => fail(&e),
        };
        let mut metadata = model.metadata.clone();
        metadata.insert("received_at".into(), AT.to_string());
        metadata.insert("received_from".into(), FROM.into());
        if r.cluster_id != model.cluster_id {
            fail(&format!("clusterID {:?}", r.cluster_id));
        }
        if r.payload != payload {
            fail(&format!("payload {:?}", r.payload));
        }
        if r.metadata != metadata || r.report_id.as_ref() != model.metadata.get("reportID") {
            fail(&format!("metadata {:?}", r.metadata));
        }
    }
}

/// What a poisoned report must be refused with.
enum Want {
    Exactly(String),
    StartsWith(String),
}

/// Breaks one rule in a valid report, returning the message it must get.
fn poison(rng: &mut Rng, m: &mut Model) -> Want {
    use Want::{Exactly, StartsWith};
    let field = match m.format {
        Format::Current => "payload",
        Format::V1 => "body",
    };
    let invalid = StartsWith("body: invalid JSON (".into());
    // 0 to 6 for both formats but 5 (the timestamp) for V1 only; 7 to 13
    // for Current only; 14 and 15 for both, 16 for V1, 17 to 19 for Current.
    let picks: &[usize] = match m.format {
        Format::V1 => &[0, 1, 2, 3, 4, 5, 6, 14, 15, 16],
        Format::Current => &[
            0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19,
        ],
    };
    let pick = rng.pick(picks);
    match pick {
        0 | 1 => {
            let mut n = rng.below(m.payload().strings());
            let s = m
                .payload()
                .string_mut(&mut n)
                .expect("n is below the count");
            match pick {
                0 => s.add_nul(rng),
                _ => s.add_lone(rng),
            }
            match pick {
                0 => StartsWith(format!("{field}: {NUL_REFUSED}")),
                _ => invalid,
            }
        }
        2 | 3 => {
            let mut n = 1 + rng.below(m.payload().values() - 1);
            let v = m.payload().value_mut(&mut n).expect("n is below the count");
            if pick == 2 {
                *v = Json::Number(format!("-{}e400", rng.digits(3)), false);
                return invalid;
            }
            *v = (0..130).fold(Json::Null, |inner, _| Json::Array(vec![inner]));
            StartsWith("body: invalid JSON (recursion limit exceeded".into())
        }
        4 => {
            let entries = m.payload().entries();
            let at = entries
                .iter()
                .position(|(k, _)| k.value() == "clusterID")
                .expect("a valid report has a clusterID");
            match rng.below(3) {
                0 => drop(entries.remove(at)),
                1 => entries[at].1 = Json::String(Str::default()),
                _ => entries[at].1 = Json::not_string(rng, true),
            }
            Exactly(match m.format {
                Format::Current => "payload.clusterID: required, a non-empty string".into(),
                Format::V1 => "clusterID: required, a non-empty string".into(),
            })
        }
        5 => {
            // Numbers that are not integers an i64 or u64 holds.
            let numbers = ["1.5", "1e3", "-0", "18446744073709551616", "-1.0"];
            let v = loop {
                match Json::not_string(rng, false) {
                    Json::Number(..) => {}
                    v if rng.one_in(2) => break v,
                    _ => break Json::Number(rng.pick(&numbers).into(), true),
                }
            };
            let field = Str::plain(rng, "timestamp");
            let entries = m.top.entries();
            entries.retain(|(k, _)| k.value() != "timestamp");
            entries.push((field, v));
            Exactly("timestamp: must be unix seconds".into())
        }
        6 => {
            let v = Json::not_string(rng, true);
            let v = match v {
                Json::Object(_) => Json::Array(vec![]),
                v => v,
            };
            match m.format {
                Format::V1 => {
                    m.top = v;
                    StartsWith("body: invalid type: ".into())
                }
                Format::Current => {
                    *m.payload() = v;
                    StartsWith("payload: invalid type: ".into())
                }
            }
        }
        7..=9 => {
            let mut metadata = match m.field("metadata") {
                Some(Json::Object(entries)) if !entries.is_empty() => entries.clone(),
                _ => vec![(Str::plain(rng, "a"), Json::String(Str::random(rng, TAME)))],
            };
            let at = rng.below(metadata.len());
            let (k, v) = &mut metadata[at];
            let want = match pick {
                7 if rng.one_in(2) => {
                    k.add_nul(rng);
                    Exactly(format!("metadata.{}: contains a NUL character", k.value()))
                }
                7 => {
                    if let Json::String(s) = v {
                        s.add_nul(rng);
                    }
                    Exactly(format!("metadata.{}: contains a NUL character", k.value()))
                }
                8 => {
                    *v = Json::not_string(rng, false);
                    Exactly(format!("metadata.{}: must be a string", k.value()))
                }
                _ => {
                    *k = Str::plain(rng, "reportID");
                    let long: String = (0..257).map(|_| 'r').collect();
                    let id = rng.pick(&["", &long]);
                    *v = Json::String(Str::plain(rng, id));
                    Exactly("metadata.reportID: must be 1 to 256 bytes".into())
                }
            };
            if pick == 9 {
                let poisoned = metadata.remove(at);
                metadata.retain(|(k, _)| k.value() != "reportID");
                metadata.push(poisoned);
            }
            let entries = m.top.entries();
            entries.retain(|(k, _)| !names(&k.value(), "metadata"));
            entries.push((Str::plain(rng, "metadata"), Json::Object(metadata)));
            want
        }
        10 => {
            let metadata = Json::not_string(rng, false);
            let metadata = match metadata {
                Json::Object(_) => Json::Array(vec![]),
                v => v,
            };
            let entries = m.top.entries();
            entries.retain(|(k, _)| !names(&k.value(), "metadata"));
            entries.push((Str::plain(rng, "metadata"), metadata));
            Exactly("metadata: must be an object".into())
        }
        11 => {
            let mut k = Str::random(rng, TAME);
            if TOP.iter().any(|name| names(&k.value(), name)) {
                k.pieces.push(("x".into(), "x".into()));
            }
            let want = format!(
                "{}: unknown field; a report has only metadata and payload",
                k.value()
            );
            m.top.entries().push((k, Json::random(rng, 2, TAME)));
            Exactly(want)
        }
        12 => {
            m.top
                .entries()
                .retain(|(k, _)| !names(&k.value(), "payload"));
            Exactly("payload: required".into())
        }
        13 => {
            let top = std::mem::replace(&mut m.top, Json::Null);
            m.top = Json::Array(vec![top]);
            Exactly("body: must be a JSON object with metadata and payload".into())
        }
        14 => {
            let long = "c".repeat(257 + rng.below(100));
            let id = Json::String(Str::plain(rng, &long));
            let entries = m.payload().entries();
            entries.retain(|(k, _)| k.value() != "clusterID");
            entries.push((Str::plain(rng, "clusterID"), id));
            Exactly(match m.format {
                Format::Current => "payload.clusterID: at most 256 bytes".into(),
                Format::V1 => "clusterID: at most 256 bytes".into(),
            })
        }
        15 => {
            let mut n = 1 + rng.below(m.payload().values() - 1);
            let v = m.payload().value_mut(&mut n).expect("n is below the count");
            let number = rng.pick(&["1e-16384", "-0.5e-16383", "0E+1073741823"]);
            *v = Json::Number(number.into(), false);
            Exactly(format!("{field}: {NUMERIC}"))
        }
        16 => {
            let long = "1".repeat(65 + rng.below(100));
            let t = Json::String(Str::plain(rng, &long));
            let entries = m.top.entries();
            entries.retain(|(k, _)| k.value() != "timestamp");
            entries.push((Str::plain(rng, "timestamp"), t));
            Exactly("timestamp: at most 64 bytes".into())
        }
        18 => {
            // A second spelling of a field the report has.
            let name = match m.field("metadata") {
                Some(_) if rng.one_in(2) => "metadata",
                _ => "payload",
            };
            let entries = m.top.entries();
            let first = entries
                .iter()
                .find(|(k, _)| names(&k.value(), name))
                .map(|(k, _)| k.value())
                .expect("the report has it");
            let again = any_case(rng, name);
            let want =
                format!("{again}: repeats {first}, as field names match in any case; send it once");
            let v = Json::random(rng, 2, TAME);
            entries.push((Str::plain(rng, &again), v));
            Exactly(want)
        }
        19 => {
            let field = rng.pick(&["accountID", SECRET]);
            let name = any_case(rng, field);
            let entries = m.top.entries();
            entries.retain(|(k, _)| !names(&k.value(), field));
            entries.push((Str::plain(rng, &name), Json::not_string(rng, false)));
            Exactly(format!("{field}: must be a string"))
        }
        _ => {
            let pad = Json::String(Str::plain(rng, &"m".repeat(65536)));
            let mut metadata = match m.field("metadata") {
                Some(Json::Object(entries)) => entries.clone(),
                _ => Vec::new(),
            };
            metadata.push((Str::plain(rng, "pad"), pad));
            let entries = m.top.entries();
            entries.retain(|(k, _)| !names(&k.value(), "metadata"));
            entries.push((Str::plain(rng, "metadata"), Json::Object(metadata)));
            Exactly("metadata: at most 65536 bytes".into())
        }
    }
}

#[test]
fn a_broken_rule_is_refused_with_its_field() {
    for case in 0..3000u64 {
        let seed = 0x5EED_0003_0000_0000 + case;
        let mut rng = Rng::new(seed);
        let mut model = Model::valid(&mut rng, formats(case));
        let want = poison(&mut rng, &mut model);
        let (body, _) = model.render(&mut rng);
        let got = check(model.format, body.as_bytes())
            .unwrap_or_else(|e| panic!("seed {seed:#x}, {:?}, body {body:?}: {e}", model.format));
        let ok = match (&got, &want) {
            (Err(m), Want::Exactly(w)) => m == w,
            (Err(m), Want::StartsWith(w)) => m.starts_with(w.as_str()),
            (Ok(_), _) => false,
        };
        let want = match want {
            Want::Exactly(w) | Want::StartsWith(w) => w,
        };
        assert!(
            ok,
            "seed {seed:#x}, {:?}, body {body:?}: want {want:?}, got {:?}",
            model.format,
            got.map(|r| r.payload)
        );
    }
}

#[test]
fn byte_mutations_of_valid_reports_never_break_a_promise() {
    let bytes = b"\"\\{}[],:0-.eEu \x00\x7f\xc3\xa9\xff";
    for case in 0..3000u64 {
        let seed = 0x5EED_0004_0000_0000 + case;
        let mut rng = Rng::new(seed);
        let model = Model::valid(&mut rng, formats(case));
        let mut body = model.render(&mut rng).0.into_bytes();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(body.len() + 1);
            match rng.below(4) {
                0 if at < body.len() => body[at] ^= 1 << rng.below(8),
                1 if at < body.len() => drop(body.remove(at)),
                2 => {
                    let end = (at + 1 + rng.below(16)).min(body.len());
                    let copy = body[at.min(end)..end].to_vec();
                    body.splice(at..at, copy);
                }
                _ => body.insert(at, rng.pick(bytes)),
            }
        }
        if let Err(e) = check(model.format, &body) {
            let body = String::from_utf8_lossy(&body);
            panic!("seed {seed:#x}, {:?}, body {body:?}: {e}", model.format);
        }
    }
}
