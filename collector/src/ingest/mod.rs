//! The internet-facing half: from a socket to a stored row. This is the part
//! a security reviewer must read; nothing here reads the stored reports.
//!
//! - `server.rs`: binds the listeners, runs the vendored tiny_http, and
//!   drains on SIGTERM.
//! - `https.rs`: the TLS certificate and key for HTTPS serving.
//! - `http.rs`: routing, and each endpoint's answer.
//! - `peer.rs`: who the client is (`--trusted-proxy`), and what of its
//!   address is kept (`--received-from`).
//! - `limit.rs`: the per-address rate limit.
//! - `report.rs`: the wire format and its validation.
//! - `store.rs`: group commit into PostgreSQL.

pub mod http;
pub mod https;
pub mod limit;
pub mod peer;
pub mod report;
pub mod server;
pub mod store;
