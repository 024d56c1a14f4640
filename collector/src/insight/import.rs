//! `spartakus-collector import`: stores reports from JSON Lines, one
//! stored report per line as `export` writes them (`{"metadata": {...,
//! "received_at", "received_from"}, "payload": {...}}`), also the lines the
//! README's SQL makes of the seed Go collector's `record` table. Each line
//! goes through the same validation (report.rs) and the same derivation and
//! batch transaction (facts.rs, batch.rs) as a report over HTTP, but keeps
//! its own received_at and received_from, this collector's
//! `--received-from` policy applied to the address. Duplicates are
//! recognised by their keys (report_keys in the schema), so an import run
//! twice stores nothing twice.
//!
//! A bad line stops the import (`--on-error stop`: the lines before it
//! are stored, and its number and fault printed) or is reported and skipped
//! (`skip`). Progress goes to stderr every few seconds.

use crate::config::{ImportArgs, OnError};
use crate::error::Error;
use crate::ingest::batch::{self, Statements};
use crate::ingest::facts::{self, Facts};
use crate::ingest::peer::Keep;
use crate::ingest::report::{self, Format, Report};
use crate::schema::{self, Month};
use postgres::Client;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The longest line: the largest payload and metadata report.rs accepts,
/// with room for the envelope.
const MAX_LINE: usize = (32 << 20) + (65 << 10);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    pub lines: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub skipped: u64,
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "read {} lines: {} reports stored, {} already stored, {} skipped",
            self.lines, self.stored, self.duplicates, self.skipped
        )
    }
}

/// A line in a file, for messages: `reports.jsonl:12`.
struct Place<'a>(&'a str, u64);

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.0 == "-" { "stdin" } else { self.0 };
        write!(f, "{name}:{}", self.1)
    }
}

pub fn import(args: &ImportArgs) -> Result<Imported, Error> {
    let mut client = args.db.connect_as("spartakus-collector import")?;
    schema::migrate(&mut client)?;
    let statements = Statements::prepare(&mut client)?;
    let mut run = Run {
        args,
        client,
        statements,
        months: HashSet::new(),
        pending: Vec::new(),
        done: Imported::default(),
        progress_at: Instant::now() + PROGRESS_EVERY,
        started: Instant::now(),
    };
    for file in &args.files {
        let input: Box<dyn Read> = match file.as_str() {
            "-" => Box::new(io::stdin().lock()),
            path => Box::new(
                std::fs::File::open(path).map_err(|e| Error::Input(format!("{path}: {e}")))?,
            ),
        };
        run.file(file, BufReader::with_capacity(1 << 20, input))?;
    }
    run.flush()?;
    Ok(run.done)
}

struct Run<'a> {
    args: &'a ImportArgs,
    client: Client,
    statements: Statements,
    months: HashSet<Month>,
    /// Lines parsed and waiting for the next batch, with where they came from.
    pending: Vec<(Report, Facts, String, u64)>,
    done: Imported,
    progress_at: Instant,
    started: Instant,
}

impl Run<'_> {
    fn file(&mut self, name: &str, mut input: impl BufRead) -> Result<(), Error> {
        let mut line = Vec::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = (&mut input)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::Input(format!("{name}: {e}")))?;
            if read == 0 {
                return Ok(());
            }
            number += 1;
            if line.len() > MAX_LINE {
                // The rest of the line is not a line of its own.
                self.done.lines += 1;
                let fault = format!("longer than {MAX_LINE} bytes");
                self.bad(&Place(name, number), &fault)?;
                skip_line(&mut input).map_err(|e| Error::Input(format!("{name}: {e}")))?;
                continue;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.done.lines += 1;
            match parse_line(text, self.args.received_from) {
                Ok(report) => {
                    let facts = facts::derive(&report.metadata, &report.payload);
                    self.pending.push((report, facts, name.to_string(), number));
                }
                Err(fault) => self.bad(&Place(name, number), &fault)?,
            }
            if self.pending.len() >= self.args.batch_size {
                self.flush()?;
            }
            if Instant::now() >= self.progress_at {
                self.progress();
            }
        }
    }

    /// A line that cannot be stored: the end of the import, or skipped.
    fn bad(&mut self, place: &Place, fault: &str) -> Result<(), Error> {
        match self.args.on_error {
            OnError::Stop => {
                self.flush()?;
                Err(Error::Input(format!(
                    "{place}: {fault} (the lines before it are stored; --on-error skip goes on)"
                )))
            }
            OnError::Skip => {
                eprintln!("spartakus-collector import: {place}: skipped: {fault}");
                self.done.skipped += 1;
                Ok(())
            }
        }
    }

    fn progress(&mut self) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprintln!(
            "spartakus-collector import: {} lines, {} stored, {} already stored, {} skipped, {:.0} lines/s",
            self.done.lines,
            self.done.stored,
            self.done.duplicates,
            self.done.skipped,
            self.done.lines as f64 / secs
        );
        self.progress_at = Instant::now() + PROGRESS_EVERY;
    }

    /// Stores the pending lines in one transaction; when that fails on a
    /// row's data, tries them one by one, to name the line at fault.
    fn flush(&mut self) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Ok(());
        }
        for (report, ..) in &pending {
            let month = Month::of_micros(report.received_micros);
            if self.months.insert(month) && !schema::ensure_month(&mut self.client, month)? {
                eprintln!(
                    "spartakus-collector import: report_log_default holds reports of {:04}-{:02}, so that month keeps them there",
                    month.year, month.month
                );
            }
        }
        let rows: Vec<(&Report, &Facts)> = pending.iter().map(|(r, f, ..)| (r, f)).collect();
        match batch::commit(&mut self.client, &self.statements, &rows) {
            Ok(stored) => {
                self.done.stored += stored;
                self.done.duplicates += rows.len() as u64 - stored;
                return Ok(());
            }
            Err(e) if !is_bad_data(&e) || self.client.is_closed() => return Err(e.into()),
            Err(_) => {}
        }
        for (report, facts, name, number) in &pending {
            match batch::commit(&mut self.client, &self.statements, &[(report, facts)]) {
                Ok(stored) => {
                    self.done.stored += stored;
                    self.done.duplicates += 1 - stored;
                }
                Err(e) if is_bad_data(&e) && !self.client.is_closed() => {
                    let code = e.code().map_or("", |c| c.code());
                    let fault = format!("PostgreSQL refused it (SQLSTATE {code})");
                    self.bad(&Place(name, *number), &fault)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn is_bad_data(e: &postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code().get(..2), Some("22" | "54")))
}

fn skip_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}

/// One line into a report ready to store, or what is wrong with it.
fn parse_line(line: &[u8], keep: Keep) -> Result<Report, String> {
    let (at, from) = stamp(line)?;
    let micros = at
        .as_deref()
        .and_then(unix_micros)
        .ok_or("metadata.received_at: required, unix seconds like 1764547200.123456")?;
    let from = match from.as_deref() {
        None | Some("") => String::new(),
        Some(text) => {
            let ip = text
                .parse::<IpAddr>()
                .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
                .map_err(|_| "metadata.received_from: must be an IP address")?;
            keep.apply(ip).unwrap_or_default()
        }
    };
    let mut report = report::parse(Format::Current, line, micros.div_euclid(1_000_000), &from)?;
    report.received_micros = micros;
    if from.is_empty() {
        report.metadata.remove("received_from");
    }
    Ok(report)
}

/// The line's metadata.received_at and received_from, where they are
/// strings; report::parse checks the rest.
fn stamp(line: &[u8]) -> Result<(Option<String>, Option<String>), String> {
    let json = |e: serde_json::Error| format!("invalid JSON ({e})");
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(line).map_err(json)?;
    let Some(metadata) = top.get("metadata") else {
        return Ok((None, None));
    };
    let metadata: BTreeMap<String, &RawValue> =
        serde_json::from_str(metadata.get()).map_err(|_| "metadata: must be an object")?;
    let text = |key: &str| match metadata.get(key) {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| format!("metadata.{key}: must be a string")),
    };
    Ok((text("received_at")?, text("received_from")?))
}

/// `1764547200` or `1764547200.123456` (at most six decimals) in
/// microseconds.
fn unix_micros(text: &str) -> Option<i64> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) || secs.len() > 12 {
        return None;
    }
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = format!("{fraction:0<6}").parse().ok()?;
    secs.parse::<i64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_at_is_unix_seconds_to_the_microsecond() {
        let cases = [
            ("1764547200", Some(1_764_547_200_000_000)),
            ("1764547200.5", Some(1_764_547_200_500_000)),
            ("1764547200.123456", Some(1_764_547_200_123_456)),
            ("0", Some(0)),
            ("1764547200.1234567", None),
            ("-1", None),
            ("1e9", None),
            ("", None),
            (".5", None),
            ("12.3.4", None),
            ("9999999999999", None),
        ];
        for (text, want) in cases {
            assert_eq!(unix_micros(text), want, "{text:?}");
        }
    }

    #[test]
    fn a_line_keeps_its_stamp_under_the_policy() {
        let line = br#"{"metadata": {"received_at": "1764547200.25", "received_from": "192.0.2.77", "reportID": "r"}, "payload": {"clusterID": "c"}}"#;
        let r = parse_line(line, Keep::Truncated).expect("valid");
        assert_eq!(r.received_micros, 1_764_547_200_250_000);
        assert_eq!(r.received_from, "192.0.2.0");
        assert_eq!(r.metadata["received_from"], "192.0.2.0");
        assert_eq!(r.metadata["received_at"], "1764547200");
        let r = parse_line(line, Keep::None).expect("valid");
        assert_eq!(r.received_from, "");
        assert!(!r.metadata.contains_key("received_from"));
    }

    #[test]
    fn a_bad_line_names_its_fault() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"payload": {"clusterID": "c"}}"#, "metadata.received_at: required"),
            (br#"{"metadata": {"received_at": "x"}, "payload": {"clusterID": "c"}}"#, "metadata.received_at: required"),
            (br#"{"metadata": {"received_at": "1", "received_from": "host"}, "payload": {"clusterID": "c"}}"#, "metadata.received_from: must be an IP address"),
            (br#"{"metadata": {"received_at": "1"}, "payload": {}}"#, "payload.clusterID: required"),
            (b"{", "invalid JSON"),
        ];
        for (line, want) in cases {
            let got = parse_line(line, Keep::Full).expect_err("refused");
            assert!(
                got.starts_with(want),
                "{got:?} for {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
