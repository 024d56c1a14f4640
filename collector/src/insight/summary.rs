//! `spartakus-collector summary`: what the stored reports say, read from the
//! state kept at ingest (`clusters`, `cluster_nodes`; see
//! collector/migrations/) and printed as aligned tables or as JSON. It
//! covers the clusters whose latest report is at most N days old; a
//! cluster's older reports do not count. Three queries, each one pass
//! over one row per cluster or per node group, never a payload, so the cost
//! follows the fleet's size, not its history. Read-only: it neither creates the schema
//! nor writes anything. Retention is `prune.rs`.

use crate::config::SummaryArgs;
use crate::error::Error;
use postgres::IsolationLevel;
use serde_json::Value;

/// The breakdowns, in print order: the key (facts.rs's facet, and the
/// JSON key), the table's heading, and its last column's heading.
const BREAKDOWNS: [(&str, &str, &str); 12] = [
    ("distribution", "Distribution", "Nodes"),
    ("minor_version", "Minor version", "Nodes"),
    ("master_version", "Master version", "Nodes"),
    ("kubelet_version", "Kubelet version", "Nodes"),
    ("os_image", "OS image", "Nodes"),
    ("container_runtime_version", "Container runtime", "Nodes"),
    ("architecture", "Architecture", "Nodes"),
    ("operating_system", "Operating system", "Nodes"),
    ("cloud_provider", "Cloud provider", "Nodes"),
    ("accelerators", "Accelerator", "Count"),
    ("volunteer_version", "Volunteer version", "Nodes"),
    ("extensions", "Extension", "Nodes"),
];

/// A cluster is recent when its latest report is; node groups carry that
/// report's received_at.
const RECENT: &str = "received_at >= now() - make_interval(days => $1)";

/// Every breakdown in one pass over the clusters: each cluster's facets
/// (collector/migrations/) hold its distinct values and their nodes.
const FACETS: &str = "
SELECT f.k, f.v, count(*), sum(f.n)::bigint
FROM clusters CROSS JOIN LATERAL unnest(facet_keys, facet_values, facet_nodes) AS f(k, v, n)
WHERE received_at >= now() - make_interval(days => $1)
GROUP BY 1, 2";

/// One value of a breakdown: how many nodes have it, and in how many
/// clusters. `None` is a value no report gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub value: Option<String>,
    pub clusters: i64,
    pub nodes: i64,
}

/// Everything `summary` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub days: i32,
    pub clusters: i64,
    pub nodes: i64,
    pub nodes_with_accelerators: i64,
    /// One per entry of `BREAKDOWNS`, in its order; rows by their count,
    /// most first, then by value (byte order), unknown last.
    pub breakdowns: Vec<Vec<Row>>,
}

/// Reads the summary in one read-only snapshot, so that the totals and the
/// breakdowns agree even while reports keep arriving.
pub fn summary(args: &SummaryArgs) -> Result<Summary, Error> {
    let mut client = args.db.connect_as("spartakus-collector summary")?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let totals = tx.query_one(
        &format!(
            "SELECT count(*), coalesce(sum(nodes), 0)::bigint, \
                    coalesce(sum(nodes_with_accelerators), 0)::bigint \
             FROM clusters WHERE {RECENT}"
        ),
        &[&args.days],
    )?;
    let mut breakdowns = vec![Vec::new(); BREAKDOWNS.len()];
    for r in tx.query(FACETS, &[&args.days])? {
        let key: &str = r.try_get(0)?;
        // Keys are facts.rs's; one it does not know (a newer collector's)
        // is not this summary's to print.
        let Some(at) = BREAKDOWNS.iter().position(|b| b.0 == key) else {
            continue;
        };
        breakdowns[at].push(Row {
            value: r.try_get(1)?,
            clusters: r.try_get(2)?,
            nodes: r.try_get(3)?,
        });
    }
    // By count, most first, then by value in byte order (the server's
    // locale must not decide), unknown last.
    for rows in &mut breakdowns {
        rows.sort_by(|a, b| {
            (b.nodes.cmp(&a.nodes))
                .then(a.value.is_none().cmp(&b.value.is_none()))
                .then(a.value.cmp(&b.value))
        });
    }
    tx.commit()?;
    Ok(Summary {
        days: args.days,
        clusters: totals.try_get(0)?,
        nodes: totals.try_get(1)?,
        nodes_with_accelerators: totals.try_get(2)?,
        breakdowns,
    })
}

impl Summary {
    /// Aligned tables for a terminal, one per breakdown.
    pub fn text(&self) -> String {
        let unit = if self.days == 1 { "day" } else { "days" };
        let mut out = format!(
            "Clusters: {}   Nodes: {}   Nodes with accelerators: {}   (seen in the last {} {unit})\n",
            self.clusters, self.nodes, self.nodes_with_accelerators, self.days
        );
        for ((_, heading, count), rows) in BREAKDOWNS.iter().zip(&self.breakdowns) {
            let names: Vec<String> = rows.iter().map(|r| printable(&r.value)).collect();
            let clusters: Vec<String> = rows.iter().map(|r| r.clusters.to_string()).collect();
            let nodes: Vec<String> = rows.iter().map(|r| r.nodes.to_string()).collect();
            let (name_w, clusters_w, nodes_w) = (
                width(heading, &names),
                width("Clusters", &clusters),
                width(count, &nodes),
            );
            out.push_str(&format!(
                "\n{heading:<name_w$}   {:>clusters_w$}  {count:>nodes_w$}\n",
                "Clusters"
            ));
            for ((name, c), n) in names.iter().zip(&clusters).zip(&nodes) {
                out.push_str(&format!(
                    "{name:<name_w$}   {c:>clusters_w$}  {n:>nodes_w$}\n"
                ));
            }
        }
        out
    }

    /// The same numbers for scripts: `days`, `clusters`, `nodes`,
    /// `nodes_with_accelerators`, then one list per breakdown of `{"value",
    /// "clusters", "nodes"}` (`"count"` for accelerators), `value` null when
    /// unknown. One line.
    pub fn json(&self) -> String {
        // Written by hand to keep this order for people reading it; every
        // string from a report goes through serde_json, so none is escaped
        // by hand.
        let mut out = format!(
            "{{\"days\": {}, \"clusters\": {}, \"nodes\": {}, \"nodes_with_accelerators\": {}",
            self.days, self.clusters, self.nodes, self.nodes_with_accelerators
        );
        for ((key, _, count), rows) in BREAKDOWNS.iter().zip(&self.breakdowns) {
            let count = count.to_lowercase();
            let rows: Vec<String> = rows
                .iter()
                .map(|r| {
                    let value = Value::from(r.value.clone());
                    format!(
                        "{{\"value\": {value}, \"clusters\": {}, \"{count}\": {}}}",
                        r.clusters, r.nodes
                    )
                })
                .collect();
            out.push_str(&format!(", \"{key}\": [{}]", rows.join(", ")));
        }
        out.push_str("}\n");
        out
    }
}

/// A column's width in chars, which is what `{:<w$}` pads by.
fn width(header: &str, cells: &[String]) -> usize {
    cells
        .iter()
        .map(|c| c.chars().count())
        .chain([header.chars().count()])
        .max()
        .unwrap_or(0)
}

/// A value fit for a terminal: `(unknown)` for none, and a quoted, escaped
/// string when it holds control characters, which a report could use to
/// rewrite the reader's screen.
fn printable(value: &Option<String>) -> String {
    match value {
        None => "(unknown)".to_string(),
        Some(v) if v.chars().any(char::is_control) => format!("{v:?}"),
        Some(v) => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(value: Option<&str>, clusters: i64, nodes: i64) -> Row {
        let value = value.map(str::to_string);
        Row {
            value,
            clusters,
            nodes,
        }
    }

    fn example() -> Summary {
        let mut breakdowns = vec![Vec::new(); BREAKDOWNS.len()];
        breakdowns[2] = vec![row(Some("v1.29.4"), 2, 9), row(None, 1, 3)];
        breakdowns[9] = vec![row(Some("nvidia.com/gpu"), 1, 16)];
        breakdowns[11] = vec![row(Some("evil\u{1b}[2J"), 1, 12)];
        Summary {
            days: 30,
            clusters: 3,
            nodes: 12,
            nodes_with_accelerators: 2,
            breakdowns,
        }
    }

    #[test]
    fn tables_align_columns_and_name_unknown_values() {
        let text = example().text();
        let want = "\
Clusters: 3   Nodes: 12   Nodes with accelerators: 2   (seen in the last 30 days)

Distribution   Clusters  Nodes

Minor version   Clusters  Nodes

Master version   Clusters  Nodes
v1.29.4                 2      9
(unknown)               1      3

Kubelet version   Clusters  Nodes
";
        assert!(text.starts_with(want), "got:\n{text}");
        let accelerators = "Accelerator      Clusters  Count\nnvidia.com/gpu          1     16\n";
        assert!(text.contains(accelerators), "got:\n{text}");
        assert!(
            text.ends_with(
                "Extension         Clusters  Nodes\n\"evil\\u{1b}[2J\"          1     12\n"
            ),
            "got:\n{text}"
        );
    }

    #[test]
    fn json_has_null_for_unknown_and_every_breakdown() {
        let v: Value = serde_json::from_str(&example().json()).expect("valid JSON");
        assert_eq!(v["clusters"], 3);
        assert_eq!(v["nodes"], 12);
        assert_eq!(v["days"], 30);
        assert_eq!(v["nodes_with_accelerators"], 2);
        assert_eq!(
            v["accelerators"],
            json!([{"value": "nvidia.com/gpu", "clusters": 1, "count": 16}])
        );
        assert_eq!(
            v["master_version"],
            json!([{"value": "v1.29.4", "clusters": 2, "nodes": 9},
                   {"value": null, "clusters": 1, "nodes": 3}])
        );
        for (key, ..) in BREAKDOWNS {
            assert!(v[key].is_array(), "{key} missing");
        }
    }
}
