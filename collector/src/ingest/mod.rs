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
//! - `facts.rs`: the typed facts of a report (versions, distribution, node
//!   groups), derived once at ingest; `shapes.rs` reads them out of the
//!   payload (`lenient.rs`: a wrong-typed value is an absent one),
//!   `quantity.rs` reads Kubernetes quantities, `version.rs` versions.
//! - `store.rs`: group commit into PostgreSQL; `batch.rs`: one batch's
//!   transaction, the report and its derived state.

pub mod batch;
pub mod facts;
pub mod http;
pub mod https;
mod lenient;
pub mod limit;
pub mod peer;
pub mod quantity;
pub mod report;
pub mod server;
mod shapes;
pub mod store;
mod version;
