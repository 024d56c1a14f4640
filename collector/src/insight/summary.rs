//! `spartakus-collector summary`: what the stored reports say, read from the
//! views in schema.sql (`cluster_latest`, `node_facts`) and printed as aligned
//! tables or as JSON. It covers the clusters whose latest report is at most N
//! days old; a cluster's older reports do not count. Read-only: it neither
//! creates the schema nor writes anything. Retention is `prune.rs`.

use crate::config::SummaryArgs;
use crate::error::Error;
use postgres::IsolationLevel;
use serde_json::Value;

/// The breakdowns, in print order: the `node_facts` column, which is also the
/// JSON key, and the table's heading. Column names are spliced into SQL, so
/// they must only ever come from this list, never from input.
const BREAKDOWNS: [(&str, &str); 7] = [
    ("master_version", "Master version"),
    ("kubelet_version", "Kubelet version"),
    ("os_image", "OS image"),
    ("container_runtime_version", "Container runtime"),
    ("architecture", "Architecture"),
    ("operating_system", "Operating system"),
    ("cloud_provider", "Cloud provider"),
];

/// A node_facts row is recent when its cluster's latest report is: every row
/// carries that report's received_at.
const RECENT: &str = "received_at >= now() - make_interval(days => $1)";

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
    /// One per entry of `BREAKDOWNS`, in its order; rows by nodes, most
    /// first, then by value (byte order), unknown last.
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
            "SELECT (SELECT count(*) FROM cluster_latest WHERE {RECENT}), \
                    (SELECT count(*) FROM node_facts WHERE {RECENT})"
        ),
        &[&args.days],
    )?;
    let mut breakdowns = Vec::with_capacity(BREAKDOWNS.len());
    for (column, _) in BREAKDOWNS {
        // COLLATE "C": the order must not depend on the server's locale.
        let sql = format!(
            "SELECT {column}, count(DISTINCT cluster_id), count(*) FROM node_facts \
             WHERE {RECENT} GROUP BY 1 ORDER BY 3 DESC, {column} COLLATE \"C\" NULLS LAST"
        );
        let rows = tx.query(&sql, &[&args.days])?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(Row {
                    value: r.try_get(0)?,
                    clusters: r.try_get(1)?,
                    nodes: r.try_get(2)?,
                })
            })
            .collect::<Result<_, postgres::Error>>()?;
        breakdowns.push(rows);
    }
    tx.commit()?;
    Ok(Summary {
        days: args.days,
        clusters: totals.try_get(0)?,
        nodes: totals.try_get(1)?,
        breakdowns,
    })
}

impl Summary {
    /// Aligned tables for a terminal, one per breakdown.
    pub fn text(&self) -> String {
        let unit = if self.days == 1 { "day" } else { "days" };
        let mut out = format!(
            "Clusters: {}   Nodes: {}   (seen in the last {} {unit})\n",
            self.clusters, self.nodes, self.days
        );
        for ((_, heading), rows) in BREAKDOWNS.iter().zip(&self.breakdowns) {
            let names: Vec<String> = rows.iter().map(|r| printable(&r.value)).collect();
            let clusters: Vec<String> = rows.iter().map(|r| r.clusters.to_string()).collect();
            let nodes: Vec<String> = rows.iter().map(|r| r.nodes.to_string()).collect();
            let (name_w, clusters_w, nodes_w) = (
                width(heading, &names),
                width("Clusters", &clusters),
                width("Nodes", &nodes),
            );
            out.push_str(&format!(
                "\n{heading:<name_w$}   {:>clusters_w$}  {:>nodes_w$}\n",
                "Clusters", "Nodes"
            ));
            for ((name, c), n) in names.iter().zip(&clusters).zip(&nodes) {
                out.push_str(&format!(
                    "{name:<name_w$}   {c:>clusters_w$}  {n:>nodes_w$}\n"
                ));
            }
        }
        out
    }

    /// The same numbers for scripts: `days`, `clusters`, `nodes`, then one
    /// list per breakdown of `{"value", "clusters", "nodes"}`, `value` null
    /// when unknown. One line.
    pub fn json(&self) -> String {
        // Written by hand to keep this order for people reading it; every
        // string from a report goes through serde_json, so none is escaped
        // by hand.
        let mut out = format!(
            "{{\"days\": {}, \"clusters\": {}, \"nodes\": {}",
            self.days, self.clusters, self.nodes
        );
        for ((key, _), rows) in BREAKDOWNS.iter().zip(&self.breakdowns) {
            let rows: Vec<String> = rows
                .iter()
                .map(|r| {
                    let value = Value::from(r.value.clone());
                    format!(
                        "{{\"value\": {value}, \"clusters\": {}, \"nodes\": {}}}",
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
        breakdowns[0] = vec![row(Some("v1.29.4"), 2, 9), row(None, 1, 3)];
        breakdowns[6] = vec![row(Some("evil\u{1b}[2J"), 1, 12)];
        Summary {
            days: 30,
            clusters: 3,
            nodes: 12,
            breakdowns,
        }
    }

    #[test]
    fn tables_align_columns_and_name_unknown_values() {
        let text = example().text();
        let want = "\
Clusters: 3   Nodes: 12   (seen in the last 30 days)

Master version   Clusters  Nodes
v1.29.4                 2      9
(unknown)               1      3

Kubelet version   Clusters  Nodes
";
        assert!(text.starts_with(want), "got:\n{text}");
        assert!(
            text.ends_with(
                "Cloud provider    Clusters  Nodes\n\"evil\\u{1b}[2J\"          1     12\n"
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
        assert_eq!(
            v["master_version"],
            json!([{"value": "v1.29.4", "clusters": 2, "nodes": 9},
                   {"value": null, "clusters": 1, "nodes": 3}])
        );
        for (key, _) in BREAKDOWNS {
            assert!(v[key].is_array(), "{key} missing");
        }
    }
}
