//! The figures' SQL, and k-anonymity: which clusters count, and which values
//! may be shown. Reads `fleet_latest` and `fleet_days` (migration 002) in
//! one read-only REPEATABLE READ snapshot, in one statement. Does not cache
//! or connect (`stats.rs` does).
//!
//! The rules, for every cell and every point of a series: a value is shown
//! only when at least `min_clusters` distinct counted clusters have it over
//! the window (for a point, on that day); everything else folds into
//! "other". A cluster counts only when it reported in the window and on at
//! least `min_days` distinct UTC days in all (up to 7, as long as its
//! reports are kept), so one forged report per fake cluster is not enough
//! to reveal a value.

use super::figures::{Breakdown, Day, Figures, Series, Share};
use postgres::{Client, IsolationLevel};
use std::collections::{BTreeMap, HashMap};

/// Rows per breakdown, and series in the adoption chart, before the rest
/// fold into "other": bounds the page, the JSON and the metrics' cardinality.
pub const TOP: usize = 20;
/// The bucket everything not shown folds into. A reported value spelled
/// the same folds there too, so no two rows (or series) share a name.
pub const OTHER: &str = "other";
/// What no report gave.
pub const UNKNOWN: &str = "(unknown)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub min_clusters: u32,
    pub min_days: u32,
}

/// Key (JSON key, metric label), title, and the key of its facet in
/// `clusters.facet_keys` (facts.rs `Facts::facets`: per breakdown each
/// distinct value with this cluster's nodes, for accelerators the devices),
/// in `Figures` order. A cluster has one facet per distinct value, so
/// counting facets counts clusters, and one with two pools of a value
/// counts once for it.
const BREAKDOWNS: [(&str, &str, &str); 8] = [
    ("minor_version", "Kubernetes minor version", "minor_version"),
    ("distribution", "Distribution", "distribution"),
    ("cloud_provider", "Cloud provider", "cloud_provider"),
    ("os_image", "OS image", "os_image"),
    (
        "container_runtime",
        "Container runtime",
        "container_runtime_version",
    ),
    ("architecture", "Architecture", "architecture"),
    ("accelerator", "Accelerator", "accelerators"),
    (
        "volunteer_version",
        "Volunteer version",
        "volunteer_version",
    ),
];

/// The facets of `BREAKDOWNS`, which ingest keeps in fleet_latest.
pub const PUBLISHED: [&str; 8] = {
    let mut facets = [""; 8];
    let mut i = 0;
    while i < facets.len() {
        facets[i] = BREAKDOWNS[i].2;
        i += 1;
    }
    facets
};

/// The first day of the window: today (UTC) and the `$1 - 1` days before.
const START: &str = "(now() AT TIME ZONE 'UTC')::date - ($1::int - 1)";

/// Everything in one statement, `$1` days, `$2` min_days, reading the rows
/// of the window's days with seen >= `$2` (migration 002), never a cluster:
/// - the totals and breakdowns: fleet_latest, each counted cluster once, at
///   the day of its latest report;
/// - the per-day series: fleet_days by minor version, each counted cluster's
///   last report of each day.
///
/// Retention: prune takes from both what the clusters it deletes counted.
fn statement() -> String {
    format!(
        "SELECT 'day', to_char(day, 'YYYY-MM-DD'), nullif(value, ''), sum(clusters)::bigint, \
                sum(nodes)::bigint \
         FROM fleet_days \
         WHERE day >= {START} AND dimension = 'minor_version' AND seen >= $2::int \
         GROUP BY day, value HAVING sum(clusters) > 0 \
         UNION ALL \
         SELECT CASE facet WHEN '' THEN 'total' ELSE facet END, NULL, nullif(value, ''), \
                sum(clusters)::bigint, sum(nodes)::bigint \
         FROM fleet_latest WHERE day >= {START} AND seen >= $2::int \
         GROUP BY facet, value HAVING sum(clusters) > 0"
    )
}

/// One value's clusters and nodes, as PostgreSQL counted them.
type Counts = (Option<String>, i64, i64);

/// Computes the figures of the last `days` UTC days in one snapshot.
pub fn figures(client: &mut Client, days: u32, rules: Rules) -> Result<Figures, postgres::Error> {
    let n = i32::try_from(days).expect("days is one of stats::DAYS");
    let min_days = i32::try_from(rules.min_days).expect("--min-days is bounded by config");
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    // now() is the transaction's start, so both statements see one today.
    let head = tx.query_one(
        &format!(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    array(SELECT to_char({START} + i, 'YYYY-MM-DD') \
                          FROM generate_series(0, $1::int - 1) AS i ORDER BY i)"
        ),
        &[&n],
    )?;
    let computed_at: String = head.try_get(0)?;
    let window: Vec<String> = head.try_get(1)?;
    let rows = tx.query(&statement(), &[&n, &min_days])?;
    tx.commit()?;
    let mut parts: HashMap<String, Vec<(Option<String>, Counts)>> = HashMap::new();
    for row in rows {
        let part: String = row.try_get(0)?;
        let counts = (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
        parts
            .entry(part)
            .or_default()
            .push((row.try_get(1)?, counts));
    }
    let mut take = |part: &str| parts.remove(part).unwrap_or_default();
    let k = i64::from(rules.min_clusters);
    let (clusters, nodes) = take("total").first().map_or((0, 0), |(_, c)| (c.1, c.2));
    let (daily, adoption) = series(&window, take("day"), k);
    let breakdowns = BREAKDOWNS
        .iter()
        .map(|&(key, title, facet)| {
            let counts = take(facet).into_iter().map(|(_, c)| c).collect();
            fold(key, title, counts, k)
        })
        .collect();
    Ok(Figures {
        days,
        computed_at,
        min_clusters: rules.min_clusters,
        min_days: rules.min_days,
        clusters,
        nodes,
        daily,
        adoption,
        breakdowns,
    })
}

/// Values as shown: unknown named, and equal names merged.
fn merged(counts: Vec<Counts>) -> BTreeMap<String, (i64, i64)> {
    let mut out = BTreeMap::new();
    for (value, clusters, nodes) in counts {
        let e = out
            .entry(value.unwrap_or_else(|| UNKNOWN.into()))
            .or_insert((0, 0));
        e.0 += clusters;
        e.1 += nodes;
    }
    out
}

/// The shown rows, most clusters first then by value; the rest in "other".
pub fn fold(key: &'static str, title: &'static str, counts: Vec<Counts>, k: i64) -> Breakdown {
    let mut values: Vec<(String, (i64, i64))> = merged(counts).into_iter().collect();
    values.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    let mut rows = Vec::new();
    let mut other = Share {
        value: OTHER.into(),
        clusters: 0,
        nodes: 0,
    };
    let mut other_values = 0;
    for (value, (clusters, nodes)) in values {
        if clusters >= k && rows.len() < TOP && value != OTHER {
            rows.push(Share {
                value,
                clusters,
                nodes,
            });
        } else {
            other.clusters += clusters;
            other.nodes += nodes;
            other_values += 1;
        }
    }
    Breakdown {
        key,
        title,
        rows,
        other,
        other_values,
    }
}

/// The daily totals and the minor versions over time, one point per day of
/// `window`. A day with fewer than `k` counted clusters shows nothing (None,
/// and 0 in every series); a value's point shows only with at least `k`
/// clusters that day, else it is in that day's "other".
pub fn series(
    window: &[String],
    rows: Vec<(Option<String>, Counts)>,
    k: i64,
) -> (Vec<Day>, Vec<Series>) {
    let index: HashMap<&str, usize> = window
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let mut totals = vec![(0i64, 0i64); window.len()];
    let mut by_value: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (day, (value, clusters, nodes)) in rows {
        let Some(&i) = day.as_deref().and_then(|d| index.get(d)) else {
            continue;
        };
        totals[i].0 += clusters;
        totals[i].1 += nodes;
        let value = value.unwrap_or_else(|| UNKNOWN.into());
        by_value
            .entry(value)
            .or_insert_with(|| vec![0; window.len()])[i] += clusters;
    }
    let shown = |i: usize| totals[i].0 >= k;
    let daily = window
        .iter()
        .enumerate()
        .map(|(i, day)| Day {
            day: day.clone(),
            clusters: shown(i).then_some(totals[i].0),
            nodes: shown(i).then_some(totals[i].1),
        })
        .collect();
    let mut candidates: Vec<(String, Vec<i64>, i64)> = by_value
        .into_iter()
        .filter(|(value, _)| value != OTHER)
        .map(|(value, points)| {
            let points: Vec<i64> = points
                .iter()
                .enumerate()
                .map(|(i, &c)| if c >= k && shown(i) { c } else { 0 })
                .collect();
            let weight = points.iter().sum();
            (value, points, weight)
        })
        .filter(|(.., weight)| *weight > 0)
        .collect();
    candidates.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    candidates.truncate(TOP);
    let mut other: Vec<i64> = (0..window.len())
        .map(|i| if shown(i) { totals[i].0 } else { 0 })
        .collect();
    let mut adoption: Vec<Series> = candidates
        .into_iter()
        .map(|(value, clusters, _)| {
            for (o, c) in other.iter_mut().zip(&clusters) {
                *o -= c;
            }
            Series { value, clusters }
        })
        .collect();
    adoption.push(Series {
        value: OTHER.into(),
        clusters: other,
    });
    (daily, adoption)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(value: Option<&str>, clusters: i64, nodes: i64) -> Counts {
        (value.map(String::from), clusters, nodes)
    }

    #[test]
    fn values_below_k_and_past_the_top_fold_into_other() {
        let mut counts = vec![
            c(Some("rare"), 4, 40),
            c(Some("common"), 5, 50),
            c(None, 6, 6),
            c(Some("other"), 9, 9),
        ];
        counts.extend((0..TOP).map(|i| c(Some(&format!("v{i:02}")), 7, 7)));
        let b = fold("os_image", "OS image", counts, 5);
        assert_eq!(b.rows.len(), TOP);
        assert!(b.rows.iter().all(|r| r.clusters >= 5 && r.value != "rare"));
        assert!(b.rows.iter().all(|r| r.value != OTHER));
        // rare (4), "other" as reported (9), and the two 5s and 6s past the top.
        assert_eq!(b.other_values, 4);
        assert_eq!(b.other.clusters, 4 + 9 + 5 + 6);
    }

    #[test]
    fn a_series_point_needs_k_clusters_that_day() {
        let window: Vec<String> = vec!["d1".into(), "d2".into(), "d3".into()];
        let row = |day: &str, v: &str, n| (Some(day.to_string()), c(Some(v), n, n));
        let rows = vec![
            row("d1", "v1.29", 5),
            row("d1", "v1.30", 4),
            row("d2", "v1.29", 6),
            row("d2", "v1.30", 5),
            row("d3", "v1.29", 4),
        ];
        let (daily, adoption) = series(&window, rows, 5);
        assert_eq!(
            daily.iter().map(|d| d.clusters).collect::<Vec<_>>(),
            [Some(9), Some(11), None]
        );
        let got: Vec<(&str, &[i64])> = adoption
            .iter()
            .map(|s| (s.value.as_str(), &s.clusters[..]))
            .collect();
        assert_eq!(
            got,
            [
                ("v1.29", &[5, 6, 0][..]),
                ("v1.30", &[0, 5, 0][..]),
                ("other", &[4, 0, 0][..])
            ]
        );
    }
}
