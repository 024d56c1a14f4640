//! `spartakus-collector export`: every stored report as JSON Lines on
//! stdout, one per line, as the table holds it: `{"metadata": {...},
//! "payload": {...}}`, with `metadata.received_at` from the column at full
//! precision (unix seconds and six decimals) and `metadata.received_from`
//! from its column. Lines come in the order the reports were stored, so
//! `export | import` keeps which of two reports received in the same
//! microsecond is the later. Read-only, one snapshot, streamed through a
//! cursor: memory does not grow with the table.

use crate::config::ExportArgs;
use crate::error::Error;
use postgres::IsolationLevel;
use std::io::Write;

/// Rows fetched per round trip: bounded memory (reports are at most 32 MiB,
/// typically a few KiB), few round trips.
const FETCH: i32 = 500;

const LINES: &str = "
SELECT jsonb_build_object(
    'metadata', metadata || jsonb_build_object(
        'received_at', extract(epoch FROM received_at)::numeric(20, 6)::text,
        'received_from', received_from),
    'payload', payload)::text
FROM report_log
ORDER BY id";

/// Writes the lines to `out`; returns how many.
pub fn export(args: &ExportArgs, out: &mut dyn Write) -> Result<u64, Error> {
    let mut client = args.db.connect_as("spartakus-collector export")?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let portal = tx.bind(LINES, &[])?;
    let mut lines = 0;
    loop {
        let rows = tx.query_portal(&portal, FETCH)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let line: &str = row.try_get(0)?;
            out.write_all(line.as_bytes()).map_err(Error::Output)?;
            out.write_all(b"\n").map_err(Error::Output)?;
            lines += 1;
        }
    }
    out.flush().map_err(Error::Output)?;
    tx.commit()?;
    Ok(lines)
}
