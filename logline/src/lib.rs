//! Logging for both programs (`--log-format text|json`): the text lines
//! simple_logger prints, or one JSON object per line with the same fields
//! (`time`, `level`, `target`, `message`), for log pipelines that parse
//! JSON. The messages are the programs' own, already redacted where they
//! are written; this crate only formats them. Lines go to stderr.

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl FromStr for Format {
    type Err = ();
    fn from_str(s: &str) -> Result<Format, ()> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(()),
        }
    }
}

/// Logs the program's own crate (`own`, e.g. "spartakus_collector") at
/// `level`, and every other crate at most at `others`.
pub fn init(
    format: Format,
    own: &'static str,
    level: LevelFilter,
    others: LevelFilter,
) -> Result<(), String> {
    let others = others.min(level);
    match format {
        Format::Text => simple_logger::SimpleLogger::new()
            .with_level(others)
            .with_module_level(own, level)
            .with_utc_timestamps()
            .init()
            .map_err(|e| e.to_string()),
        Format::Json => {
            log::set_max_level(level.max(others));
            log::set_boxed_logger(Box::new(Json { own, level, others })).map_err(|e| e.to_string())
        }
    }
}

struct Json {
    own: &'static str,
    level: LevelFilter,
    others: LevelFilter,
}

impl Log for Json {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let target = metadata.target();
        let own = target == self.own || target.starts_with(&format!("{}::", self.own));
        metadata.level() <= if own { self.level } else { self.others }
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = serde_json::json!({
            "time": rfc3339(SystemTime::now()),
            "level": record.level().as_str(),
            "target": record.target(),
            "message": record.args().to_string(),
        });
        // One write per line, so lines from two threads never interleave.
        let _ = std::io::stderr()
            .lock()
            .write_all(format!("{line}\n").as_bytes());
    }

    fn flush(&self) {}
}

/// `2026-12-01T20:41:37.678Z`, as the text lines print it.
pub fn rfc3339(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, ms) = (since.as_secs(), since.subsec_millis());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// The (year, month, day) of a day counted from 1970-01-01: Howard
/// Hinnant's civil_from_days.
pub fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(1_709_210_096_007)), "2024-02-29T12:34:56.007Z");
        assert_eq!(rfc3339(at(951_782_400_000)), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn other_crates_stop_at_their_own_level() {
        let json = Json {
            own: "spartakus_collector",
            level: LevelFilter::Trace,
            others: LevelFilter::Info,
        };
        let meta = |target, level| Metadata::builder().target(target).level(level).build();
        assert!(json.enabled(&meta("spartakus_collector::store", log::Level::Trace)));
        assert!(!json.enabled(&meta("tokio_postgres::query", log::Level::Debug)));
        assert!(!json.enabled(&meta("spartakus_collectorx", log::Level::Debug)));
        assert!(json.enabled(&meta("rustls", log::Level::Info)));
    }
}
