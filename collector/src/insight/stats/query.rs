//! The figures' SQL, and k-anonymity: which clusters count, and which values
//! may be shown. Reads `clusters`, `fleet_days` and a few `cluster_days`
//! rows in one read-only REPEATABLE READ snapshot, in one statement whose
//! CTEs find the counted clusters once (see `statement`). Does not cache or
//! connect (`stats.rs` does).
//!
//! The rules, for every cell and every point of a series: a value is shown
//! only when at least `min_clusters` distinct counted clusters have it over
//! the window (for a point, on that day); everything else folds into
//! "other". A cluster counts only when it reported on at least `min_days`
//! distinct UTC days of the window, so one forged report per fake cluster is
//! not enough to reveal a value.

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

/// The first day of the window: today (UTC) and the `$1 - 1` days before.
const START: &str = "(now() AT TIME ZONE 'UTC')::date - ($1::int - 1)";

/// Everything in one statement, `$1` days, `$2` min_days, reading no more
/// than one pass over `clusters` and a few index probes:
///
/// - A cluster counts when `recent_days[$2] >= start` (migration 001).
/// - The totals and breakdowns sum the counted clusters' facets.
/// - The per-day series is `fleet_days` (every cluster's last report of each
///   day, by minor version, '' for unknown) minus the window's cluster_days
///   rows of the clusters that reported in the window but do not count
///   (one probe each: OFFSET 0 keeps the planner from a scan and hash join):
///   `recent_days[1] >= start` and fewer than `$2` days. Those have fewer
///   than 7 days in the window, so all of them are in recent_days, and each
///   row is one primary-key probe. A cluster with cluster_days rows in the
///   window has its latest report (its newest) in the window too, so its
///   recent_days[1] is there: none is missed.
/// - Retention: prune deletes cluster_days and fleet_days before the
///   cutoff's day, and clusters whose latest report is before the cutoff.
///   So the window starts at the oldest day cluster_days still holds, if
///   later (recent_days may name pruned days, which must not count). On that
///   day cluster_days may hold the rows of clusters prune deleted (their
///   latest was that day, before the cutoff): orphans, with that one day in
///   the window, counted only at min_days 1, and otherwise subtracted here
///   by one anti-join of that day. (Not exact in one case: a pruned
///   cluster that reports again has its orphan row's day missing from its
///   new recent_days.)
fn statement() -> String {
    let facets: Vec<String> = BREAKDOWNS
        .iter()
        .map(|(_, _, f)| format!("'{f}'"))
        .collect();
    format!(
        "WITH span AS ( \
             SELECT greatest(w, f) AS start_day, w AS window_day, f AS floor_day \
             FROM (SELECT {START} AS w, (SELECT min(day) FROM cluster_days) AS f) AS b), \
         seen AS MATERIALIZED ( \
             SELECT cluster_id, nodes, facet_keys, facet_values, facet_nodes, recent_days, \
                    coalesce(recent_days[$2::int] >= s.start_day, false) AS counted \
             FROM clusters, span s WHERE recent_days[1] >= s.start_day), \
         latest AS MATERIALIZED (SELECT * FROM seen WHERE counted), \
         uncounted AS ( \
             SELECT d.day, d.minor_version, d.nodes \
             FROM seen c CROSS JOIN LATERAL unnest(c.recent_days) AS r(day) \
             CROSS JOIN LATERAL ( \
                 SELECT day, minor_version, nodes FROM cluster_days \
                 WHERE day = r.day AND cluster_id = c.cluster_id OFFSET 0) AS d \
             WHERE NOT c.counted AND r.day >= (SELECT start_day FROM span) \
             UNION ALL \
             SELECT d.day, d.minor_version, d.nodes FROM cluster_days d, span s \
             WHERE $2::int > 1 AND s.floor_day >= s.window_day AND d.day = s.floor_day \
               AND NOT EXISTS (SELECT 1 FROM clusters c WHERE c.cluster_id = d.cluster_id)), \
         per_day AS ( \
             SELECT day, value, clusters, nodes FROM fleet_days \
             WHERE dimension = 'minor_version' AND day >= (SELECT start_day FROM span) \
             UNION ALL \
             SELECT day, coalesce(minor_version, ''), -1, -nodes FROM uncounted) \
         SELECT 'day', to_char(day, 'YYYY-MM-DD'), nullif(value, ''), sum(clusters)::bigint, \
                sum(nodes)::bigint \
         FROM per_day GROUP BY day, value HAVING sum(clusters) > 0 \
         UNION ALL \
         SELECT 'total', NULL, NULL, count(*), coalesce(sum(nodes), 0)::bigint FROM latest \
         UNION ALL \
         SELECT f.k, NULL, f.v, count(*), sum(f.n)::bigint \
         FROM latest, unnest(facet_keys, facet_values, facet_nodes) AS f(k, v, n) \
         WHERE f.k IN ({}) GROUP BY f.k, f.v",
        facets.join(", ")
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
