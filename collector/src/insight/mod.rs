//! The read side: what the stored reports say, and their upkeep. Nothing
//! here is reachable from the ingest port.
//!
//! - `summary.rs`: `spartakus-collector summary`.
//! - `prune.rs`: `spartakus-collector prune`, retention.
//! - `import.rs` and `export.rs`: reports in and out as JSON Lines.
//! - `migrate.rs`: moves the first release's table into the new schema.
//! - `stats.rs`: `GET /stats` and the usage gauges, k-anonymous and cached;
//!   its page is `stats/page.rs` (with `chart.rs`).

pub mod export;
pub mod import;
pub mod migrate;
pub mod prune;
pub mod stats;
pub mod summary;
