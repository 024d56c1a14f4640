//! The read side: what the stored reports say, and their upkeep. Nothing
//! here is reachable from the ingest port.
//!
//! - `summary.rs`: `spartakus-collector summary`.
//! - `prune.rs`: `spartakus-collector prune`, retention.

pub mod prune;
pub mod summary;
