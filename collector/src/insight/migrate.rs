//! `spartakus-collector migrate`: moves the reports of the first release's
//! table, `reports`, into the partitioned report_log and the derived state,
//! while collectors go on storing new reports. A table cannot become
//! partitioned in place, and copying it at start-up would hold readiness
//! for as long as the copy takes; so collectors of this version write the
//! new tables at once (their first migration leaves `reports` alone), and
//! this moves the old rows over in short transactions.
//!
//! Each batch deletes its rows from `reports` and stores them through the
//! same transaction as ingest (batch.rs), so a batch moves whole or not at
//! all: stopping and running again resumes where it stopped, and a report
//! an old and a new collector both stored (a retry) is kept once, by its
//! reportID. Collectors of the first release still running keep writing
//! `reports`; run this after the last of them is gone, or again after. It
//! drops `reports` once it is empty.

use crate::config::MigrateArgs;
use crate::error::Error;
use crate::ingest::batch::{self, Statements};
use crate::ingest::facts::{self, Facts};
use crate::ingest::report::Report;
use crate::schema::{self, Month};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

const MOVE_BATCH: &str = "
DELETE FROM reports WHERE id IN (
    SELECT id FROM reports WHERE id <= $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, (extract(epoch FROM received_at) * 1000000)::bigint, cluster_id, report_id,
          received_from, metadata::text, payload::text";

/// What a migrate did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Whether there was a first release's table at all.
    pub legacy: bool,
    pub moved: u64,
    /// Reports already stored under the new schema (by reportID).
    pub duplicates: u64,
    pub batches: u64,
    /// Reports a collector of the first release stored while this ran,
    /// left for the next run; the table is dropped only when there are none.
    pub arrived: u64,
}

pub fn migrate(args: &MigrateArgs) -> Result<Migrated, Error> {
    let mut client = args.db.connect_as("spartakus-collector migrate")?;
    schema::migrate(&mut client)?;
    let mut done = Migrated {
        legacy: false,
        moved: 0,
        duplicates: 0,
        batches: 0,
        arrived: 0,
    };
    if !schema::has_legacy(&mut client)? {
        return Ok(done);
    }
    done.legacy = true;
    let statements = Statements::prepare(&mut client)?;
    // What is there now is moved; a collector of the first release still
    // storing would otherwise keep this running for as long as it does.
    let last: i64 = client
        .query_one("SELECT coalesce(max(id), 0)::bigint FROM reports", &[])?
        .try_get(0)?;
    let mut months = HashSet::new();
    loop {
        let mut tx = client.transaction()?;
        tx.batch_execute("SET LOCAL lock_timeout = '10s'")?;
        let rows = tx.query(MOVE_BATCH, &[&args.batch_size, &last])?;
        if rows.is_empty() {
            // Drop the table only if it is empty under a lock that keeps
            // the first release's INSERTs out; else leave the newcomers to
            // the next run.
            tx.batch_execute("LOCK TABLE reports IN ACCESS EXCLUSIVE MODE")?;
            let left: i64 = tx
                .query_one("SELECT count(*) FROM reports", &[])?
                .try_get(0)?;
            if left > 0 {
                done.arrived = left.unsigned_abs();
                return Ok(done);
            }
            // Empty; the views on it went with the first migration.
            tx.batch_execute("DROP TABLE reports")?;
            tx.commit()?;
            return Ok(done);
        }
        let mut moved: Vec<(i64, Report, Facts)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let report = legacy_report(row)?;
            let facts = facts::derive(&report.metadata, &report.payload);
            moved.push((row.try_get(0)?, report, facts));
        }
        // In the order they were stored, so that ties keep their order.
        moved.sort_by_key(|m| m.0);
        for (_, report, _) in &moved {
            let month = Month::of_micros(report.received_micros);
            if months.insert(month) {
                schema::ensure_month(&mut tx, month)?;
            }
        }
        let pairs: Vec<(&Report, &Facts)> = moved.iter().map(|(_, r, f)| (r, f)).collect();
        let stored = batch::store(&mut tx, &statements, &pairs)?;
        tx.commit()?;
        done.moved += stored;
        done.duplicates += pairs.len() as u64 - stored;
        done.batches += 1;
        if done.batches.is_multiple_of(50) {
            eprintln!(
                "spartakus-collector migrate: {} reports moved, {} duplicates",
                done.moved, done.duplicates
            );
        }
    }
}

/// A row of the first release's table as the report it stored.
fn legacy_report(row: &postgres::Row) -> Result<Report, Error> {
    let micros: i64 = row.try_get(1)?;
    let metadata: String = row.try_get(5)?;
    // The first release stored metadata as an object of strings.
    let metadata: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&metadata).unwrap_or_default();
    let metadata = metadata
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    Ok(Report {
        cluster_id: row.try_get(2)?,
        report_id: row.try_get(3)?,
        metadata,
        payload: row.try_get(6)?,
        received_at: micros.div_euclid(1_000_000),
        received_micros: micros,
        received_from: row.try_get(4)?,
    })
}

impl fmt::Display for Migrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.legacy {
            return writeln!(
                f,
                "nothing to migrate: no table reports of the first release"
            );
        }
        write!(
            f,
            "moved {} reports in {} batches ({} were stored already); ",
            self.moved, self.batches, self.duplicates
        )?;
        match self.arrived {
            0 => writeln!(f, "dropped the table reports"),
            n => writeln!(
                f,
                "{n} more arrived meanwhile (a collector of the first release is still storing): \
                 run migrate again once none is left"
            ),
        }
    }
}
