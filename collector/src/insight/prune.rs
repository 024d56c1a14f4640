//! `spartakus-collector prune`: retention. Deletes every report received
//! before a cutoff (now minus `--older-than`, by the database's clock, the
//! same clock `summary` uses), and the state derived from those reports.
//! Does not create the schema.
//!
//! - Months of report_log wholly before the cutoff are dropped whole: no
//!   row-by-row work, no bloat.
//! - In the month the cutoff falls in (and the default partition), reports
//!   are deleted oldest first in batches of `--batch-size`, each batch its
//!   own short transaction: one big DELETE would hold its locks and its
//!   snapshot for as long as it runs, bloat the table until it commits, and
//!   lose all its work to a dropped connection.
//! - Their de-duplication keys go the same way, so a reportID is kept
//!   exactly as long as its report.
//! - The rollups are trimmed too: cluster_days of the UTC days before the
//!   cutoff's day, and every cluster whose latest report is older than the
//!   cutoff, with its nodes and days; what each counted goes from
//!   fleet_latest and fleet_days, which stay exactly what is kept adds up
//!   to. Locks are taken as ingest takes them (clusters first, sorted), so
//!   prune can run beside ingest and import. Retention is by age alone, so a
//!   cluster that stopped reporting 400 days ago is gone after
//!   `--older-than 400d`, as the operator asked; nothing derived outlives
//!   the reports it came from by more than the day the cutoff falls in.

use crate::config::PruneArgs;
use crate::error::Error;
use crate::insight::stats::PUBLISHED;
use postgres::Client;
use std::fmt;
use std::time::SystemTime;

/// report_log's monthly partitions whose every report is older than $1.
const OLD_MONTHS: &str = "
SELECT c.relname
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'report_log'::regclass AND c.relname ~ '^report_log_[0-9]{4}_[0-9]{2}$'
  AND (to_date(substr(c.relname, 12), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= $1
ORDER BY 1";

/// The batches, oldest first where it matters, so that an interrupted
/// prune leaves no gaps. Each condition is on the deleted row itself, so a
/// row that changed meanwhile (a cluster's newer report) is rechecked.
const BATCHES: [&str; 2] = [
    "DELETE FROM report_log WHERE (id, received_at) IN (
         SELECT id, received_at FROM report_log WHERE received_at < $1
         ORDER BY received_at LIMIT $2)",
    "DELETE FROM report_keys WHERE key IN (
         SELECT key FROM report_keys WHERE received_at < $1 LIMIT $2)",
];

/// cluster_days rows of the days before the cutoff's, $2 at a time.
const OLD_DAYS: &str = "
SELECT cluster_id, day::text FROM cluster_days
WHERE day < ($1 AT TIME ZONE 'UTC')::date LIMIT $2";

/// Locks clusters, as ingest does, sorted; gives their seen.
const LOCK: &str = "
SELECT cluster_id, cardinality(recent_days)::smallint FROM clusters
WHERE cluster_id = ANY ($1) ORDER BY cluster_id FOR UPDATE";

/// The clusters whose latest report is older than $1, $2 at a time, with
/// their nodes and what they counted in fleet_latest ($3: its facets), in
/// ingest's lock order (clusters, fleet_latest, cluster_days, fleet_days).
const CLUSTERS: &str = "
WITH gone AS (
    DELETE FROM clusters WHERE received_at < $1 AND cluster_id IN (
        SELECT cluster_id FROM clusters WHERE received_at < $1
        ORDER BY cluster_id LIMIT $2 FOR UPDATE)
    RETURNING *),
nodes AS (DELETE FROM cluster_nodes WHERE cluster_id IN (SELECT cluster_id FROM gone)),
delta AS (
    SELECT g.recent_days[1] AS day, cardinality(g.recent_days) AS seen, f.facet, f.value,
           -count(*) AS clusters, -sum(f.nodes) AS nodes
    FROM gone g
    CROSS JOIN LATERAL fleet_latest_rows(g.nodes, g.facet_keys, g.facet_values, g.facet_nodes,
                                         $3::text[]) AS f
    GROUP BY 1, 2, 3, 4),
latest AS (
    INSERT INTO fleet_latest AS f (day, seen, facet, value, clusters, nodes)
    SELECT * FROM delta ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, seen, facet, value) DO UPDATE SET
        clusters = f.clusters + excluded.clusters, nodes = f.nodes + excluded.nodes)
SELECT cluster_id, d::text, cardinality(recent_days)::smallint
FROM gone CROSS JOIN LATERAL unnest(recent_days) AS d";

/// Deletes the cluster_days rows ($1 cluster, $2 day) of clusters this
/// transaction has locked, and takes from fleet_days what each counted at
/// its cluster's seen ($3).
const DAYS: &str = "
WITH gone AS (
    DELETE FROM cluster_days d
    USING unnest($1::text[], $2::text[], $3::smallint[]) AS g(cluster_id, day, seen)
    WHERE d.day = g.day::date AND d.cluster_id = g.cluster_id
    RETURNING d.*, g.seen),
delta AS (
    SELECT day, f.dimension, f.value, seen, -sum(f.clusters) AS clusters, -sum(f.nodes) AS nodes
    FROM gone
    CROSS JOIN LATERAL fleet_days_rows(minor_version, distribution, volunteer_version, nodes,
                                       nodes_with_accelerators) AS f
    GROUP BY 1, 2, 3, 4)
INSERT INTO fleet_days AS f (day, dimension, value, seen, clusters, nodes)
SELECT * FROM delta ORDER BY 1, 2, 3, 4
ON CONFLICT (day, dimension, value, seen) DO UPDATE SET
    clusters = f.clusters + excluded.clusters, nodes = f.nodes + excluded.nodes";

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: u64,
    /// Batches that deleted at least one report, and months dropped whole.
    pub batches: u64,
    pub months: Vec<String>,
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
        months: Vec::new(),
        cutoff: row.try_get(1)?,
    };
    for row in client.query(OLD_MONTHS, &[&cutoff])? {
        let name: String = row.try_get(0)?;
        pruned.deleted += drop_month(&mut client, &name)?;
        pruned.batches += 1;
        pruned.months.push(name);
    }
    for (i, sql) in BATCHES.iter().enumerate() {
        let statement = client.prepare(sql)?;
        loop {
            // Autocommit: each batch is one transaction of its own.
            let deleted = client.execute(&statement, &[&cutoff, &args.batch_size])?;
            if i == 0 && deleted > 0 {
                pruned.deleted += deleted;
                pruned.batches += 1;
            }
            if deleted < args.batch_size.unsigned_abs() {
                break;
            }
        }
    }
    prune_days(&mut client, cutoff, args.batch_size)?;
    prune_clusters(&mut client, cutoff, args.batch_size)?;
    // Rows down to zero count nothing. Rows a writer holds are left for the
    // next prune, so that this never waits in a lock order of its own; a
    // writer adding to a row deleted meanwhile inserts it again.
    client.batch_execute(
        "DELETE FROM fleet_latest WHERE (day, seen, facet, value) IN ( \
             SELECT day, seen, facet, value FROM fleet_latest \
             WHERE clusters = 0 AND nodes = 0 FOR UPDATE SKIP LOCKED); \
         DELETE FROM fleet_days WHERE (day, dimension, value, seen) IN ( \
             SELECT day, dimension, value, seen FROM fleet_days \
             WHERE clusters = 0 AND nodes = 0 FOR UPDATE SKIP LOCKED)",
    )?;
    Ok(pruned)
}

/// The cluster_days rows before the cutoff's day, a batch per transaction,
/// each cluster locked first, so that what they counted in fleet_days goes
/// with them even while an import adds old days.
fn prune_days(client: &mut Client, cutoff: SystemTime, batch: i64) -> Result<(), Error> {
    let (old_days, lock, days) = (
        client.prepare(OLD_DAYS)?,
        client.prepare(LOCK)?,
        client.prepare(DAYS)?,
    );
    loop {
        let mut tx = client.transaction()?;
        let mut rows: (Vec<String>, Vec<String>) = Default::default();
        for row in tx.query(&old_days, &[&cutoff, &batch])? {
            rows.0.push(row.try_get(0)?);
            rows.1.push(row.try_get(1)?);
        }
        if rows.0.is_empty() {
            return Ok(());
        }
        let mut seen = std::collections::HashMap::new();
        for row in tx.query(&lock, &[&rows.0])? {
            seen.insert(row.try_get::<_, String>(0)?, row.try_get::<_, i16>(1)?);
        }
        let seen: Vec<i16> = rows
            .0
            .iter()
            .map(|c| seen.get(c).copied().unwrap_or(0))
            .collect();
        tx.execute(&days, &[&rows.0, &rows.1, &seen])?;
        tx.commit()?;
    }
}

/// Deletes the clusters older than `cutoff` and what they counted, with
/// their rows of their last 7 days (the older ones are before the cutoff's
/// day), a batch per transaction.
fn prune_clusters(client: &mut Client, cutoff: SystemTime, batch: i64) -> Result<(), Error> {
    let (clusters, days) = (client.prepare(CLUSTERS)?, client.prepare(DAYS)?);
    loop {
        let mut tx = client.transaction()?;
        let rows = tx.query(&clusters, &[&cutoff, &batch, &&PUBLISHED[..]])?;
        let mut gone: (Vec<String>, Vec<String>, Vec<i16>) = Default::default();
        for row in &rows {
            gone.0.push(row.try_get(0)?);
            gone.1.push(row.try_get(1)?);
            gone.2.push(row.try_get(2)?);
        }
        tx.execute(&days, &[&gone.0, &gone.1, &gone.2])?;
        tx.commit()?;
        let clusters: std::collections::HashSet<&String> = gone.0.iter().collect();
        if clusters.len() < usize::try_from(batch).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
}

/// Drops one month's partition; returns how many reports it held. Its keys
/// go with the batches. The drop takes an exclusive lock on report_log for
/// an instant, so it waits at most a few seconds for readers (an export)
/// and is tried again next time.
fn drop_month(client: &mut Client, name: &str) -> Result<u64, Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute("SET LOCAL lock_timeout = '5s'")?;
    // The name matched OLD_MONTHS' pattern: letters, digits and underscores.
    let count: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {name}"), &[])?
        .try_get(0)?;
    tx.batch_execute(&format!("DROP TABLE {name}"))?;
    tx.commit()?;
    Ok(count.unsigned_abs())
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
        )?;
        if !self.months.is_empty() {
            writeln!(f, "dropped whole: {}", self.months.join(", "))?;
        }
        Ok(())
    }
}
