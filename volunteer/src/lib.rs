//! spartakus-volunteer: reads a Kubernetes cluster through its REST API and publishes an
//! anonymous usage report to a spartakus collector.
//!
//! The binary (`main.rs`) only parses flags and maps errors to exit codes; everything else is
//! here so the integration tests can call it. Where a change goes:
//! `config` (flags, env, HELP), `kube` (the API client), `answer` (what its answers mean),
//! `list` (the bounds of the node list), `objects` (the fields decoded), `shared` (their
//! strings), `report` (the wire format and the privacy rules), `publish` (the collector),
//! `retry` (backoff), `extensions`, `tls` (trust), `ids` (hashes and UUIDs), `shutdown`
//! (signals), `elect` and `ballot` (node mode: which node reports), `spread` (the wait before a `--once` report), `app` (modes and the loop), `error`.

#![forbid(unsafe_code)]

pub mod answer;
pub mod app;
pub mod ballot;
pub mod config;
pub mod elect;
pub mod error;
pub mod extensions;
pub mod ids;
pub mod kube;
pub mod list;
pub mod objects;
pub mod publish;
pub mod report;
pub mod retry;
pub mod shared;
pub mod shutdown;
pub mod spread;
pub mod tls;
pub mod values;

/// This program's version: SPARTAKUS_VERSION at build time (the build script stamps a git
/// description there), else the crate version.
pub const VERSION: &str = match option_env!("SPARTAKUS_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};
