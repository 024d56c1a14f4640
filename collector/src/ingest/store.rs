//! PostgreSQL: migrates the schema, and stores reports by group commit.
//!
//! One writer thread owns the connection. Request threads hand it a report
//! and wait; it takes every report that is waiting (up to `MAX_BATCH`),
//! stores them in one transaction (batch.rs), which commits them together,
//! and only then answers each request. Each request's thread derives its
//! report's facts (facts.rs) before handing it over, so the writer only
//! writes. While one batch commits the next one
//! gathers, so throughput grows with load instead of paying one commit per
//! report. A failing batch is retried one row at a time, so one bad row
//! cannot fail its neighbours. Does not parse requests.
//!
//! Who is at fault: a failed batch condemns none of its rows. Only a row
//! that fails again on its own, with a data exception or an exceeded limit
//! (SQLSTATE class 22 or 54), is `Rejected` (400): sending it again would
//! fail again. Any other failure is `Unavailable` (503). report.rs refuses
//! every such row it can foresee, so this is for what depends on the
//! database, such as a character its encoding lacks.
//!
//! No report value reaches the log: PostgreSQL's message, DETAIL and
//! CONTEXT may quote them, so a failed INSERT is logged by its SQLSTATE, the
//! column or constraint it names, and the sizes of the report's fields.

use super::batch::{self, Statements};
use super::facts::{self, Facts};
use crate::db::Db;
use crate::ingest::report::Report;
use crate::metrics::Metrics;
use crate::schema::{self, Month};
use postgres::error::{DbError, SqlState};
use postgres::Client;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The seam between HTTP and storage.
pub trait Store: Send + Sync {
    /// Stores one report, returning only once it is committed (or not).
    fn store(&self, report: Report) -> Result<(), StoreError>;
    /// Whether the database answers right now (a round trip: /readyz).
    fn ready(&self) -> bool;
    /// Whether the last word from the database was good: cheap, for every
    /// report before its body is read.
    fn up(&self) -> bool {
        self.ready()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database is down or slow, or failed otherwise; the client should
    /// retry later.
    Unavailable,
    /// The database refused this row's data, on its own, with a data
    /// exception or an exceeded limit; retrying will not help.
    Rejected,
}

const MAX_BATCH: usize = 512;
/// A request waits this long for its commit before answering 503.
const COMMIT_WAIT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a month whose partition could not be made waits for another try.
const PARTITION_RETRY: Duration = Duration::from_secs(600);

type Reply = SyncSender<Result<(), StoreError>>;

enum Job {
    Store(Box<(Report, Facts)>, Reply),
    Ping(SyncSender<bool>),
}

/// The real `Store`: a handle on the writer thread.
pub struct Postgres {
    jobs: Mutex<Option<SyncSender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer's connection state after its last job.
    up: Arc<AtomicBool>,
}

impl Postgres {
    /// Starts the writer, which connects (retrying with backoff) and applies
    /// the schema in the background; until then reports get `Unavailable`.
    pub fn start(mut db: Db, metrics: Arc<Metrics>) -> Postgres {
        let config = &mut db.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_tcp_user_timeout().is_none() {
            // A vanished database must fail a commit, not hang it for minutes.
            config.tcp_user_timeout(Duration::from_secs(15));
        }
        if config.get_application_name().is_none() {
            config.application_name("spartakus-collector");
        }
        config.keepalives_idle(Duration::from_secs(30));
        let (tx, rx) = mpsc::sync_channel(4 * MAX_BATCH);
        let up = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            up: up.clone(),
            db,
            conn: None,
            migrated: false,
            months: HashSet::new(),
            months_failed: HashMap::new(),
            retry_at: Instant::now(),
            backoff: Duration::from_millis(250),
            metrics,
        };
        let handle = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || writer.run(rx))
            .expect("spawning the writer thread at start-up");
        Postgres {
            jobs: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            up,
        }
    }

    /// Lets the writer commit what it has, then stops it.
    pub fn close(&self) {
        drop(lock(&self.jobs).take());
        if let Some(handle) = lock(&self.writer).take() {
            if handle.join().is_err() {
                log::error!("the database writer thread panicked");
            }
        }
    }

    fn send(&self, job: Job) -> bool {
        let jobs = lock(&self.jobs).clone();
        jobs.is_some_and(|tx| tx.send(job).is_ok())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store for Postgres {
    fn store(&self, report: Report) -> Result<(), StoreError> {
        let facts = facts::derive(&report.metadata, &report.payload);
        let (tx, rx) = mpsc::sync_channel(1);
        if !self.send(Job::Store(Box::new((report, facts)), tx)) {
            return Err(StoreError::Unavailable);
        }
        rx.recv_timeout(COMMIT_WAIT)
            .unwrap_or(Err(StoreError::Unavailable))
    }

    fn ready(&self) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Job::Ping(tx)) && rx.recv_timeout(COMMIT_WAIT).unwrap_or(false)
    }

    fn up(&self) -> bool {
        self.up.load(Acquire)
    }
}

struct Writer {
    up: Arc<AtomicBool>,
    db: Db,
    conn: Option<(Client, Statements)>,
    migrated: bool,
    /// Months known to have their report_log partition (or to be left in
    /// the default one), and months whose partition could not be made, with
    /// when to try again: checked before each batch, without a round trip.
    months: HashSet<Month>,
    months_failed: HashMap<Month, Instant>,
    retry_at: Instant,
    backoff: Duration,
    metrics: Arc<Metrics>,
}

impl Writer {
    fn run(mut self, jobs: Receiver<Job>) {
        self.connect();
        self.up.store(self.conn.is_some(), Release);
        loop {
            let wait = match self.conn {
                Some(_) => Duration::from_secs(3600),
                None => self.retry_at.saturating_duration_since(Instant::now()),
            };
            let first = match jobs.recv_timeout(wait) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.connect();
                    self.up.store(self.conn.is_some(), Release);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut reports = Vec::new();
            let mut pings = Vec::new();
            let mut job = Some(first);
            while let Some(j) = job.take() {
                match j {
                    Job::Store(report, reply) => reports.push((*report, reply)),
                    Job::Ping(reply) => pings.push(reply),
                }
                if reports.len() < MAX_BATCH {
                    job = jobs.try_recv().ok();
                }
            }
            self.connect();
            if !reports.is_empty() {
                self.store(reports);
            }
            for ping in pings {
                let _ = ping.send(self.ping());
            }
            self.up.store(self.conn.is_some(), Release);
        }
    }

    /// Connects and applies the schema, unless connected or backing off.
    fn connect(&mut self) {
        if self.conn.as_ref().is_some_and(|(c, _)| c.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_some() || Instant::now() < self.retry_at {
            return;
        }
        match self.open() {
            Ok(conn) => {
                log::info!("connected to PostgreSQL");
                self.conn = Some(conn);
                self.migrated = true;
                self.backoff = Duration::from_millis(250);
            }
            Err(e) => {
                self.metrics.db_errors.fetch_add(1, Relaxed);
                log::warn!(
                    "PostgreSQL unavailable, retrying in {:?}: {}",
                    self.backoff,
                    describe(&e)
                );
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn open(&self) -> Result<(Client, Statements), postgres::Error> {
        let mut client = self.db.connect()?;
        if !self.migrated {
            match schema::migrate(&mut client)? {
                0 => log::info!("schema up to date"),
                n => log::info!("schema migrated ({n} migrations applied)"),
            }
            if schema::has_legacy(&mut client)? {
                log::warn!(
                    "the first release's table reports is still here: its reports are not in \
                     the views until `spartakus-collector migrate` moves them"
                );
            }
        }
        let statements = Statements::prepare(&mut client)?;
        Ok((client, statements))
    }

    /// Creates the partitions of the months in `batch` not seen yet. A
    /// failure (a lock not granted in time) leaves their reports to the
    /// default partition, which takes them just as well, and is tried again
    /// only after `PARTITION_RETRY`, so that a held lock costs one batch one
    /// wait, not every batch.
    fn partitions(&mut self, batch: &[(Report, Facts)]) {
        let Some((client, _)) = self.conn.as_mut() else {
            return;
        };
        let now = Instant::now();
        for (report, _) in batch {
            let month = Month::of_micros(report.received_micros);
            // This month and the next, so that midnight finds its partition.
            for month in [month, month.next()] {
                let waiting = self.months_failed.get(&month).is_some_and(|at| now < *at);
                if self.months.contains(&month) || waiting {
                    continue;
                }
                let (year, m) = (month.year, month.month);
                match schema::ensure_month(client, month) {
                    Ok(true) => {}
                    Ok(false) => log::warn!(
                        "report_log_default holds reports of {year:04}-{m:02}, so that month keeps them there"
                    ),
                    Err(e) => {
                        log::warn!(
                            "could not create the partition of {year:04}-{m:02} ({}); its reports go to \
                             report_log_default meanwhile",
                            describe(&e)
                        );
                        self.months_failed.insert(month, now + PARTITION_RETRY);
                        continue;
                    }
                }
                self.months_failed.remove(&month);
                self.months.insert(month);
            }
        }
    }

    fn ping(&mut self) -> bool {
        let Some((client, _)) = self.conn.as_mut() else {
            return false;
        };
        let ok = client.is_valid(Duration::from_secs(2)).is_ok();
        if !ok {
            self.lost();
        }
        ok
    }

    fn lost(&mut self) {
        self.metrics.db_errors.fetch_add(1, Relaxed);
        self.conn = None;
    }

    fn store(&mut self, batch: Vec<((Report, Facts), Reply)>) {
        let (rows, replies): (Vec<(Report, Facts)>, Vec<Reply>) = batch.into_iter().unzip();
        self.partitions(&rows);
        let Some((client, statements)) = self.conn.as_mut() else {
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable));
            }
            return;
        };
        let pairs: Vec<(&Report, &Facts)> = rows.iter().map(|(r, f)| (r, f)).collect();
        let error = match batch::commit(client, statements, &pairs) {
            Ok(inserted) => {
                self.counted(rows.len(), inserted);
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
                return;
            }
            Err(e) => e,
        };
        self.metrics.db_errors.fetch_add(1, Relaxed);
        let n = rows.len();
        if client.is_closed() {
            log::warn!("lost PostgreSQL storing {n} reports: {}", cause(&error));
            self.conn = None;
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable));
            }
            return;
        }
        // Even a batch of one is tried again: only a row's own attempt may
        // refuse it, and this costs a round trip only when a batch fails.
        log::warn!(
            "a batch of {n} failed ({}), storing one by one",
            cause(&error)
        );
        for (row, reply) in rows.iter().zip(replies) {
            let _ = reply.send(self.store_one(row));
        }
    }

    fn store_one(&mut self, (report, facts): &(Report, Facts)) -> Result<(), StoreError> {
        let (client, statements) = self.conn.as_mut().ok_or(StoreError::Unavailable)?;
        let error = match batch::commit(client, statements, &[(report, facts)]) {
            Ok(inserted) => {
                self.counted(1, inserted);
                return Ok(());
            }
            Err(e) => e,
        };
        self.metrics.db_errors.fetch_add(1, Relaxed);
        let closed = client.is_closed();
        if closed {
            self.conn = None;
        }
        let (verdict, answer) = match error.code() {
            Some(code) if !closed && is_bad_data(code) => (StoreError::Rejected, 400),
            _ => (StoreError::Unavailable, 503),
        };
        log::warn!(
            "a report failed on its own ({}; {}), answering {answer}",
            cause(&error),
            sizes(report)
        );
        Err(verdict)
    }

    /// Counts `inserted` of `rows` reports as stored, the rest as duplicates.
    fn counted(&self, rows: usize, inserted: u64) {
        self.metrics.reports_stored.fetch_add(inserted, Relaxed);
        let duplicates = (rows as u64).saturating_sub(inserted);
        self.metrics
            .reports_duplicate
            .fetch_add(duplicates, Relaxed);
    }
}

/// Whether a row's own failure is its data's fault: a data exception
/// (class 22) or an exceeded limit (class 54) recurs however often the
/// client sends it again.
fn is_bad_data(code: &SqlState) -> bool {
    matches!(code.code().get(..2), Some("22" | "54"))
}

/// A failed INSERT for the log: a server error by its SQLSTATE and the
/// column or constraint it names, never its text.
fn cause(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match named(db) {
            Some(name) => format!("SQLSTATE {}, {name}", db.code().code()),
            None => format!("SQLSTATE {}", db.code().code()),
        },
        // Client-side errors (a lost connection, a timeout) hold no values.
        None => describe(e),
    }
}

/// The field of a report an error names, as the client knows it, else
/// PostgreSQL's name for the column or constraint.
fn named(db: &DbError) -> Option<String> {
    let name = db.column().or(db.constraint())?;
    let field = match name {
        "cluster_id" => "payload.clusterID",
        "report_id" | "key" => "metadata.reportID",
        "received_at" => "received_at",
        "received_from" | "metadata" | "payload" => name,
        other => return Some(format!("column or constraint {other:?}")),
    };
    Some(format!("field {field}"))
}

/// The sizes of what a report puts in each column: enough to tell which
/// one PostgreSQL refused, and nothing of what it says.
fn sizes(r: &Report) -> String {
    let metadata = serde_json::to_string(&r.metadata).map_or(0, |m| m.len());
    format!(
        "payload.clusterID {} bytes, metadata.reportID {} bytes, metadata {metadata} bytes, \
         payload {} bytes",
        r.cluster_id.len(),
        r.report_id.as_ref().map_or(0, String::len),
        r.payload.len()
    )
}

/// A postgres error with its cause, which `Display` alone leaves out.
pub fn describe(e: &postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{}: {}", db.code().code(), db.message()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_data_exception_or_an_exceeded_limit_condemns_a_row() {
        let cases = [
            ("22P05", true), // a character the database's encoding lacks
            ("22003", true), // a number out of range
            ("54000", true), // an index row or a jsonb value too large
            ("54001", true), // nesting too deep for the server's stack
            ("08006", false),
            ("40001", false),
            ("53100", false), // disk full
            ("57P01", false),
            ("23505", false),
            ("XX000", false),
            ("2", false),
        ];
        for (code, bad) in cases {
            assert_eq!(is_bad_data(&SqlState::from_code(code)), bad, "{code}");
        }
    }

    #[test]
    fn a_refused_row_is_logged_by_its_sizes_not_its_values() {
        let report = Report {
            cluster_id: "secret-cluster".into(),
            report_id: Some("secret-id".into()),
            metadata: [("k".to_string(), "secret".to_string())].into(),
            payload: r#"{"clusterID": "secret-cluster"}"#.into(),
            received_at: 1,
            received_micros: 1_000_000,
            received_from: "192.0.2.1".into(),
        };
        let line = sizes(&report);
        assert_eq!(
            line,
            "payload.clusterID 14 bytes, metadata.reportID 9 bytes, metadata 14 bytes, \
             payload 31 bytes"
        );
    }
}
