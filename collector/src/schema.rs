//! The database schema: versioned migrations (collector/migrations/), and
//! report_log's monthly partitions. Used by the writer at connect, by
//! `import`, and by `migrate`. Does not store or read reports.
//!
//! Start-up never waits behind readers: a database already at this
//! version costs one SELECT, which no query blocks. Only a pending migration
//! takes the advisory lock and runs its DDL, with a lock timeout, so that a
//! long `summary` makes a new replica retry, not hang.

use postgres::error::SqlState;
use postgres::{Client, GenericClient};

/// Each migration once, in order; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "insight", include_str!("../migrations/001-insight.sql")),
    (2, "stats", include_str!("../migrations/002-stats.sql")),
];
/// Serializes schema changes between replicas starting at once ("spartaku").
const SCHEMA_LOCK: i64 = 0x7370_6172_7461_6b75;
/// Serializes partition creation between writers and imports.
const PARTITION_LOCK: i64 = SCHEMA_LOCK + 1;

/// Applies the pending migrations; returns how many ran.
pub fn migrate(client: &mut Client) -> Result<usize, postgres::Error> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if version(client)? >= latest {
        return Ok(0);
    }
    let mut tx = client.transaction()?;
    // DDL on a view waits for the queries reading it (a dashboard); give up
    // and retry later rather than queue every other statement behind it.
    // Notices ("view does not exist, skipping") would be logged as info.
    tx.batch_execute("SET LOCAL lock_timeout = '10s'; SET LOCAL client_min_messages = warning")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS spartakus_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM spartakus_migrations",
            &[],
        )?
        .get(0);
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO spartakus_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )?;
        applied += 1;
    }
    tx.commit()?;
    Ok(applied)
}

/// The database's schema version, 0 before the first migration.
pub fn version(client: &mut Client) -> Result<i32, postgres::Error> {
    let row = client.query_one(
        "SELECT CASE WHEN to_regclass('spartakus_migrations') IS NULL THEN 0 \
         ELSE (SELECT coalesce(max(version), 0) FROM spartakus_migrations) END",
        &[],
    );
    // to_regclass's table may vanish between the check and the read.
    match row {
        Ok(row) => Ok(row.get(0)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Whether the first release's table `reports` is still here, for
/// `migrate` to move.
pub fn has_legacy(client: &mut impl GenericClient) -> Result<bool, postgres::Error> {
    let row = client.query_one("SELECT to_regclass('reports') IS NOT NULL", &[])?;
    Ok(row.get(0))
}

/// A calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    pub year: u64,
    pub month: u64,
}

impl Month {
    /// The month of an instant in unix microseconds (0 for anything before
    /// 1970, which validation has refused already).
    pub fn of_micros(micros: i64) -> Month {
        let days = u64::try_from(micros.max(0) / 86_400_000_000).unwrap_or(0);
        let (year, month, _) = spartakus_log::civil(days);
        Month { year, month }
    }

    pub fn next(self) -> Month {
        match self.month {
            12 => Month {
                year: self.year + 1,
                month: 1,
            },
            m => Month {
                year: self.year,
                month: m + 1,
            },
        }
    }

    fn partition(self) -> String {
        format!("report_log_{:04}_{:02}", self.year, self.month)
    }

    fn start(self) -> String {
        format!("{:04}-{:02}-01 00:00:00+00", self.year, self.month)
    }
}

/// Makes sure report_log has a partition for `month`. Creating and
/// attaching one takes only a SHARE UPDATE EXCLUSIVE lock on report_log, so
/// ingest and readers go on. When report_log_default already holds reports
/// of that month the attach is refused and they stay there, where queries
/// find them all the same; returns whether the partition exists now.
pub fn ensure_month(
    client: &mut impl GenericClient,
    month: Month,
) -> Result<bool, postgres::Error> {
    let name = month.partition();
    // A scan of pg_class, not to_regclass: after the advisory lock, which
    // reads no invalidations, the catalog cache may not yet know of a
    // partition another writer just created.
    let exists = "SELECT EXISTS (SELECT FROM pg_class WHERE relname = $1 \
                  AND relnamespace = current_schema()::regnamespace)";
    if client.query_one(exists, &[&name])?.get(0) {
        return Ok(true);
    }
    let mut tx = client.transaction()?;
    // The writer waits here with a batch in hand: better the default
    // partition for a while than a stalled ingest.
    tx.batch_execute("SET LOCAL lock_timeout = '2s'")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
    if tx.query_one(exists, &[&name])?.get(0) {
        return Ok(true);
    }
    // The name and bounds come from two integers, never from input.
    let (from, to) = (month.start(), month.next().start());
    let ddl = format!(
        "CREATE TABLE {name} (LIKE report_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
         ALTER TABLE report_log ATTACH PARTITION {name} FOR VALUES FROM ('{from}') TO ('{to}');"
    );
    match tx.batch_execute(&ddl) {
        Ok(()) => {
            tx.commit()?;
            Ok(true)
        }
        // The default partition holds rows of this month.
        Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_follow_utc_days_and_roll_over_the_year() {
        // 2026-12-31T23:59:59.999999Z and one microsecond later.
        let last = 1_798_761_599_999_999;
        assert_eq!(
            Month::of_micros(last),
            Month {
                year: 2026,
                month: 12
            }
        );
        assert_eq!(
            Month::of_micros(last + 1),
            Month {
                year: 2027,
                month: 1
            }
        );
        assert_eq!(
            Month::of_micros(last).next(),
            Month {
                year: 2027,
                month: 1
            }
        );
        assert_eq!(
            Month::of_micros(-5),
            Month {
                year: 1970,
                month: 1
            }
        );
        let m = Month {
            year: 2026,
            month: 2,
        };
        assert_eq!(
            (m.partition(), m.start()),
            ("report_log_2026_02".into(), "2026-02-01 00:00:00+00".into())
        );
    }
}
