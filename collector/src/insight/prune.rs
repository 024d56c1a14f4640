//! `spartakus-collector prune`: retention. Deletes every report received
//! before a cutoff (now minus `--older-than`, by the database's clock, the
//! same clock `summary` uses), oldest first, in batches of `--batch-size`
//! rows, each batch its own short transaction. Does not create the schema.
//!
//! Why batches: one big DELETE would hold its row locks and its snapshot for
//! as long as it runs, bloat the table until it commits, and lose all its
//! work to a dropped connection. INSERTs never wait for deleted rows (only a
//! retry of a report being deleted, on its reportID, would, for one batch).
//!
//! A cluster's latest report is deleted too when it is older than the
//! cutoff: retention is by age alone, so a cluster that stopped reporting
//! 400 days ago is gone after `--older-than 400d`, as the operator asked.

use crate::config::PruneArgs;
use crate::error::Error;
use std::fmt;
use std::time::SystemTime;

/// The oldest reports first, so that an interrupted prune leaves no gaps.
/// The subquery walks the reports_received_at index and stops at the limit.
const DELETE_BATCH: &str = "\
DELETE FROM reports WHERE id IN (
    SELECT id FROM reports WHERE received_at < $1 ORDER BY received_at LIMIT $2)";

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: u64,
    /// Batches that deleted at least one report.
    pub batches: u64,
    /// The cutoff in UTC, RFC 3339 to the second.
    pub cutoff: String,
}

pub fn prune(args: &PruneArgs) -> Result<Pruned, Error> {
    let mut client = args.db.connect_as("spartakus-collector prune")?;
    // Fixed once: batches must not chase a cutoff that moves while they run.
    let row = client.query_one(
        "SELECT t, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM (SELECT now() - make_interval(secs => $1) AS t) AS cutoff",
        &[&args.older_than.as_secs_f64()],
    )?;
    let cutoff: SystemTime = row.try_get(0)?;
    let mut pruned = Pruned {
        deleted: 0,
        batches: 0,
        cutoff: row.try_get(1)?,
    };
    let delete = client.prepare(DELETE_BATCH)?;
    loop {
        // Autocommit: each batch is one transaction of its own.
        let deleted = client.execute(&delete, &[&cutoff, &args.batch_size])?;
        if deleted == 0 {
            break;
        }
        pruned.deleted += deleted;
        pruned.batches += 1;
        if deleted < args.batch_size.unsigned_abs() {
            break;
        }
    }
    Ok(pruned)
}

impl fmt::Display for Pruned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reports = if self.deleted == 1 {
            "report"
        } else {
            "reports"
        };
        let batches = if self.batches == 1 {
            "batch"
        } else {
            "batches"
        };
        writeln!(
            f,
            "deleted {} {reports} received before {} in {} {batches}",
            self.deleted, self.cutoff, self.batches
        )
    }
}
