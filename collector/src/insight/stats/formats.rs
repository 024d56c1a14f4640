//! The figures as `?format=json` prints them, and as Prometheus gauges for
//! the metrics listener. Every string from a report goes through serde_json
//! or `label`, never into the output as it is. Holds no state.

use super::figures::{Breakdown, Figures, Share};
use serde_json::{json, Value};
use std::fmt::Write;

/// `{"days", "computed_at", "min_clusters", "min_days", "clusters",
/// "nodes", "daily": [{"day", "clusters", "nodes"}], "adoption": [{"value",
/// "clusters": [...]}], "breakdowns": [{"key", "title", "rows": [{"value",
/// "clusters", "nodes"}], "other": {"clusters", "nodes", "values"}}]}`.
/// For accelerators, `nodes` is the devices counted.
pub fn json(f: &Figures) -> String {
    let share = |s: &Share| json!({"value": s.value, "clusters": s.clusters, "nodes": s.nodes});
    let breakdown = |b: &Breakdown| {
        json!({
            "key": b.key,
            "title": b.title,
            "rows": b.rows.iter().map(share).collect::<Vec<_>>(),
            "other": {"clusters": b.other.clusters, "nodes": b.other.nodes, "values": b.other_values},
        })
    };
    let v = json!({
        "days": f.days,
        "computed_at": f.computed_at,
        "min_clusters": f.min_clusters,
        "min_days": f.min_days,
        "clusters": f.clusters,
        "nodes": f.nodes,
        "daily": f.daily.iter().map(|d| json!({"day": d.day, "clusters": d.clusters, "nodes": d.nodes})).collect::<Vec<_>>(),
        "adoption": f.adoption.iter().map(|s| json!({"value": s.value, "clusters": s.clusters})).collect::<Vec<_>>(),
        "breakdowns": f.breakdowns.iter().map(breakdown).collect::<Vec<Value>>(),
    });
    v.to_string()
}

/// A label value in the exposition format: backslash, quote and newline
/// escaped, nothing else changed.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The usage gauges: totals, then per breakdown
/// `spartakus_usage_clusters_by_<key>{<key>="..."}` and
/// `spartakus_usage_nodes_by_<key>` (`devices` for accelerators), each
/// value's row plus "other", so summing over the label gives the fleet.
pub fn metrics(f: &Figures) -> String {
    let mut out = String::with_capacity(8192);
    let window = format!(
        "clusters seen on at least {} UTC days, reporting in the last {}",
        f.min_days, f.days
    );
    for (name, what, v) in [
        ("spartakus_usage_clusters", "Counted clusters", f.clusters),
        ("spartakus_usage_nodes", "Their nodes", f.nodes),
    ] {
        let _ = write!(
            out,
            "# HELP {name} {what}: {window}, fleet-wide (aggregate replicas with max).\n\
             # TYPE {name} gauge\n{name} {v}\n"
        );
    }
    for b in &f.breakdowns {
        let key = b.key;
        let count = if key == "accelerator" {
            "devices"
        } else {
            "nodes"
        };
        for (unit, pick) in [
            ("clusters", (|s: &Share| s.clusters) as fn(&Share) -> i64),
            (count, |s: &Share| s.nodes),
        ] {
            let name = format!("spartakus_usage_{unit}_by_{key}");
            let _ = write!(
                out,
                "# HELP {name} {} by {}, from each counted cluster's latest report; values in fewer \
                 than {} clusters, or past the top {}, are in \"other\".\n# TYPE {name} gauge\n",
                capitalized(unit),
                b.title.to_lowercase(),
                f.min_clusters,
                super::query::TOP,
            );
            for s in b.rows.iter().chain([&b.other]) {
                let _ = writeln!(out, "{name}{{{key}=\"{}\"}} {}", label(&s.value), pick(s));
            }
        }
    }
    out
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
