//! The volunteer's behaviour over time: build a report, hand it over, log one line, repeat.
//!
//! It owns the modes (`--dry-run`, `--once`, the loop with a jittered period), when extensions
//! are re-read (before every report after the first, so an edited ConfigMap takes effect
//! without a restart, and a broken edit fails that report rather than sending stale or partial
//! data), that a report over the collector's default size is neither sent nor printed, and the
//! one log line per report. It works through the `Source` and `Sink` traits, so it is tested
//! with fakes; it does not know HTTP.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Config, Mode};
use crate::elect::Elected;
use crate::error::Error;
use crate::extensions;
use crate::ids;
use crate::kube::{KubeClient, Source};
use crate::publish::{Collector, Sink};
use crate::report::{self, Report, Stamp};
use crate::shutdown::Shutdown;
use crate::VERSION;

/// Runs the configured mode to its end. The loop only ends by `shutdown`, with `Ok`.
pub fn run(config: Config, shutdown: Arc<Shutdown>) -> Result<(), Error> {
    let kube = KubeClient::new(&config, Arc::clone(&shutdown));
    let elected;
    let source: &dyn Source = match config.machine_id {
        Some(own) => {
            elected = Elected { inner: &kube, own };
            &elected
        }
        None => &kube,
    };
    match config.mode {
        Mode::DryRun => dry_run(source, config.extensions, &mut std::io::stdout().lock()),
        Mode::Once => {
            let sink = Collector::new(&config, Arc::clone(&shutdown))?;
            send_report(source, &sink, config.extensions)
        }
        Mode::Loop => {
            let sink = Collector::new(&config, Arc::clone(&shutdown))?;
            let extensions = Extensions {
                path: config.extensions_path.as_deref(),
                first: config.extensions,
            };
            run_loop(source, &sink, extensions, config.period, &shutdown);
            Ok(())
        }
    }
}

/// Builds one report and writes it as pretty JSON to `out`; nothing is sent.
pub fn dry_run(
    source: &dyn Source,
    extensions: BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let started = Instant::now();
    let report = build_report(source, extensions).inspect_err(|e| log_failure(started, e))?;
    serde_json::to_writer_pretty(&mut *out, &report)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .map_err(|e| Error::Publish(format!("dry run: cannot write the report to stdout: {e}")))?;
    log_outcome(&report, "printed (dry run)", started);
    Ok(())
}

/// Builds one report and publishes it.
pub fn send_report(
    source: &dyn Source,
    sink: &dyn Sink,
    extensions: BTreeMap<String, String>,
) -> Result<(), Error> {
    let started = Instant::now();
    let report = build_report(source, extensions).inspect_err(|e| log_failure(started, e))?;
    match sink.publish(&report) {
        Ok(()) => {
            log_outcome(&report, "accepted", started);
            Ok(())
        }
        Err(e) => {
            log_outcome(&report, &format!("not accepted: {e}"), started);
            Err(e)
        }
    }
}

/// The extensions for the loop: read at startup for the first report, then re-read.
pub struct Extensions<'a> {
    pub path: Option<&'a Path>,
    pub first: BTreeMap<String, String>,
}

/// A report now, then one per `period` (+-10%), until `shutdown`. Failures are logged by
/// `send_report` and the loop goes on.
pub fn run_loop(
    source: &dyn Source,
    sink: &dyn Sink,
    extensions: Extensions,
    period: Duration,
    shutdown: &Shutdown,
) {
    let mut next = Some(extensions.first);
    loop {
        let current = match next.take() {
            Some(first) => Ok(first),
            None => extensions
                .path
                .map_or_else(|| Ok(BTreeMap::new()), extensions::load),
        };
        match current {
            Ok(current) => {
                // Already logged, and the next period may fare better.
                let _ = send_report(source, sink, current);
            }
            Err(e) => log::error!("report skipped: {e}"),
        }
        if shutdown.is_requested() || shutdown.sleep(jittered(period)) {
            return;
        }
    }
}

fn build_report(
    source: &dyn Source,
    extensions: BTreeMap<String, String>,
) -> Result<Report, Error> {
    let snapshot = source.snapshot()?;
    let report_id = ids::report_id()
        .map_err(|_| Error::Publish("report: the system random source failed".into()))?;
    // A clock before 1970 is broken beyond what a usage report can fix; 0 marks it.
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stamp = Stamp {
        report_id,
        timestamp,
        version: VERSION.to_string(),
    };
    let report = report::build(snapshot, extensions, stamp);
    report::check_size(&report)?;
    Ok(report)
}

/// `period` give or take 10%, so volunteers started together drift apart.
fn jittered(period: Duration) -> Duration {
    let tenth = period / 10;
    let spread = u64::try_from(tenth.as_millis().saturating_mul(2)).unwrap_or(u64::MAX);
    period - tenth + Duration::from_millis(ids::random_below(spread))
}

fn log_outcome(report: &Report, outcome: &str, started: Instant) {
    log::info!(
        "report {}: {} nodes, {outcome}, {:.2}s",
        report.metadata.report_id,
        report.payload.nodes.len(),
        started.elapsed().as_secs_f64()
    );
}

fn log_failure(started: Instant, error: &Error) {
    if let Error::Standby(_) = error {
        log::info!("{error}");
        return;
    }
    log::error!(
        "report failed after {:.2}s: {error}",
        started.elapsed().as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::Snapshot;
    use crate::objects::Node;
    use crate::report::NodeInfo;
    use std::cell::RefCell;

    struct FakeCluster;

    impl Source for FakeCluster {
        fn snapshot(&self) -> Result<Snapshot, Error> {
            let node = |uid: &str| Node {
                uid: uid.into(),
                cloud_provider: Some("aws"),
                capacity: BTreeMap::from([("cpu".into(), "4".into())]),
                node_info: NodeInfo::default(),
                machine: None,
                ready: true,
            };
            Ok(Snapshot {
                cluster_id: "c".into(),
                master_version: "v1.29.4".into(),
                nodes: vec![node("u1"), node("u2")],
            })
        }
    }

    struct BrokenCluster;

    impl Source for BrokenCluster {
        fn snapshot(&self) -> Result<Snapshot, Error> {
            Err(Error::Kube("kubernetes api: 503".into()))
        }
    }

    #[derive(Default)]
    struct Recorder(RefCell<Vec<String>>);

    impl Sink for Recorder {
        fn publish(&self, report: &Report) -> Result<(), Error> {
            self.0.borrow_mut().push(report.metadata.report_id.clone());
            Ok(())
        }
    }

    #[test]
    fn each_report_gets_a_fresh_report_id() {
        let sink = Recorder::default();
        send_report(&FakeCluster, &sink, BTreeMap::new()).expect("first report");
        send_report(&FakeCluster, &sink, BTreeMap::new()).expect("second report");
        let ids = sink.0.borrow();
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn a_failed_snapshot_sends_nothing() {
        let sink = Recorder::default();
        assert!(send_report(&BrokenCluster, &sink, BTreeMap::new()).is_err());
        assert!(sink.0.borrow().is_empty());
    }

    #[test]
    fn dry_run_prints_the_report_as_json() {
        let mut out = Vec::new();
        dry_run(&FakeCluster, BTreeMap::new(), &mut out).expect("dry run");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["payload"]["nodes"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["payload"]["nodes"][0]["cloudProvider"], "aws");
        assert!(v["payload"].get("extensions").is_none());
    }

    #[test]
    fn the_loop_stops_when_shutdown_is_requested() {
        let shutdown = Shutdown::default();
        shutdown.request();
        let sink = Recorder::default();
        let ext = Extensions {
            path: None,
            first: BTreeMap::new(),
        };
        run_loop(
            &FakeCluster,
            &sink,
            ext,
            Duration::from_secs(3600),
            &shutdown,
        );
        assert_eq!(sink.0.borrow().len(), 1);
    }

    /// Records each report's extensions and asks to stop after `stop_after` reports.
    struct StopAfter<'a> {
        seen: RefCell<Vec<BTreeMap<String, String>>>,
        stop_after: usize,
        shutdown: &'a Shutdown,
    }

    impl Sink for StopAfter<'_> {
        fn publish(&self, report: &Report) -> Result<(), Error> {
            let mut seen = self.seen.borrow_mut();
            seen.push(report.payload.extensions.clone());
            if seen.len() >= self.stop_after {
                self.shutdown.request();
            }
            Ok(())
        }
    }

    #[test]
    fn the_loop_rereads_extensions_before_each_later_report_and_skips_on_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("spartakus-app-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ext.json");
        std::fs::write(&path, r#"{"k": "edited"}"#).expect("write extensions");
        let shutdown = Shutdown::default();
        let sink = StopAfter {
            seen: RefCell::new(Vec::new()),
            stop_after: 2,
            shutdown: &shutdown,
        };
        let first = BTreeMap::from([("k".to_string(), "at startup".to_string())]);
        let ext = Extensions {
            path: Some(&path),
            first,
        };
        run_loop(
            &FakeCluster,
            &sink,
            ext,
            Duration::from_millis(10),
            &shutdown,
        );
        let seen = sink.seen.borrow();
        assert_eq!(seen[0]["k"], "at startup");
        assert_eq!(seen[1]["k"], "edited");

        // A broken edit skips reports instead of sending stale or partial extensions.
        std::fs::write(&path, "{broken").expect("write extensions");
        let shutdown = Shutdown::default();
        let sink = StopAfter {
            seen: RefCell::new(Vec::new()),
            stop_after: 1,
            shutdown: &shutdown,
        };
        let first = BTreeMap::new();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                shutdown.request();
            });
            let ext = Extensions {
                path: Some(&path),
                first,
            };
            run_loop(
                &FakeCluster,
                &sink,
                ext,
                Duration::from_millis(10),
                &shutdown,
            );
        });
        assert_eq!(
            sink.seen.borrow().len(),
            1,
            "only the first report, from the startup read"
        );
        std::fs::remove_dir_all(&dir).expect("clean temp dir");
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }
}
