//! The figures `GET /stats` publishes, as plain data: what `stats.rs`
//! computes from the derived tables (k-anonymity applied) and what
//! `page.rs` draws and `?format=json` prints. Holds no logic.

/// Everything one `/stats` answer shows, for one `days` window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// The window: the last `days` UTC days, today included.
    pub days: u32,
    /// When these were computed, RFC 3339 UTC to the second.
    pub computed_at: String,
    /// `--min-clusters` and `--min-days`: no value shown is seen in fewer
    /// than `min_clusters` clusters, each seen on at least `min_days` days
    /// in all.
    pub min_clusters: u32,
    pub min_days: u32,
    /// Clusters counted (seen on at least `min_days` days in all and
    /// reporting in the window), and their nodes, from each one's latest
    /// report.
    pub clusters: i64,
    pub nodes: i64,
    /// One point per UTC day of the window, oldest first: counted clusters
    /// that reported that day, and their nodes that day. A day with fewer
    /// than `min_clusters` of them has `None` for both.
    pub daily: Vec<Day>,
    /// Kubernetes minor versions ("v1.29") over time: one series per value
    /// that reaches `min_clusters` on some day, plus "other".
    pub adoption: Vec<Series>,
    /// Shares, from each counted cluster's latest report, in this order:
    /// minor_version, distribution, cloud_provider, os_image,
    /// container_runtime, architecture, accelerators, volunteer_version.
    pub breakdowns: Vec<Breakdown>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// "2026-12-01".
    pub day: String,
    pub clusters: Option<i64>,
    pub nodes: Option<i64>,
}

/// A value's clusters per day, aligned with `Figures::daily`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// The value, or "other" for everything folded.
    pub value: String,
    pub clusters: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    /// The JSON key and the metric's label name: "minor_version".
    pub key: &'static str,
    /// The heading: "Kubernetes minor version".
    pub title: &'static str,
    /// Most clusters first, then by value; every one in at least
    /// `min_clusters` counted clusters. "(unknown)" for not reported.
    pub rows: Vec<Share>,
    /// Everything below the threshold, or past the top rows, together;
    /// `values` says how many values it holds.
    pub other: Share,
    pub other_values: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub value: String,
    pub clusters: i64,
    /// Nodes with that value (for accelerators: the devices counted).
    pub nodes: i64,
}
