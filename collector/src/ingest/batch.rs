//! One batch of reports into PostgreSQL, in one transaction: the report
//! rows, their de-duplication keys, and the state derived from them
//! (collector/migrations/001-insight.sql says what each table holds). Used
//! by the writer (store.rs) and by `import`. Does not decide when to commit,
//! retry or answer.
//!
//! The statements run in this order, and the order is what makes them safe
//! with several collectors writing at once:
//! 1. the batch's facts go to a temporary table, `incoming`;
//! 2. keys already stored take their reports out of it (duplicates);
//! 3. the reports are inserted;
//! 4. `clusters` is upserted, sorted by cluster: that locks every cluster
//!    of the batch, also where its latest report stays, so statements 5 and
//!    6 read and replace each cluster's rows while no other writer can;
//! 5. the nodes of clusters whose latest report changed are replaced;
//! 6. cluster_days takes each cluster's last report of each day, and
//!    fleet_days the difference it makes, sorted by key.
//!
//! Locks are taken in one order (keys, then clusters, then fleet_days rows,
//! each sorted), so two writers wait for each other but never deadlock.
//!
//! `incoming` has no statistics, so each lookup of stored rows is written
//! to go through an index whatever the planner guesses of its size (a
//! LATERAL with a LIMIT, which is a loop of index probes): a sequential
//! scan of cluster_nodes or cluster_days per batch would cost what the
//! fleet or the history holds. (2000 is above facts.rs's 1,001 groups.)

use super::facts::Facts;
use super::report::Report;
use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};

const INCOMING: &str = "
CREATE TEMPORARY TABLE IF NOT EXISTS incoming (
    ord integer, key text, id bigint, received_at timestamptz, day date, cluster_id text,
    master_version text, minor_version text, distribution text, volunteer_version text,
    nodes integer, nodes_with_accelerators integer, accelerators jsonb, extensions jsonb,
    latest boolean NOT NULL DEFAULT false
) ON COMMIT DELETE ROWS";

/// Step 1: one row per key: a reportID sent twice in one batch is stored
/// once. Ids follow the batch's order (PostgreSQL evaluates nextval after
/// the ORDER BY), so that of two reports received in the same microsecond
/// the later one has the greater id.
const STAGE: &str = "
INSERT INTO incoming (ord, key, id, received_at, day, cluster_id, master_version, minor_version,
                      distribution, volunteer_version, nodes, nodes_with_accelerators,
                      accelerators, extensions)
SELECT ord, key, nextval('report_log_id'), at, (at AT TIME ZONE 'UTC')::date, c,
       mv, minor, dist, vv, n, na, acc::jsonb, ext::jsonb
FROM (SELECT DISTINCT ON (key) *, timestamptz 'epoch' + us * interval '1 microsecond' AS at
      FROM unnest($1::integer[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                  $7::text[], $8::text[], $9::integer[], $10::integer[], $11::text[], $12::text[])
           AS u(ord, key, us, c, mv, minor, dist, vv, n, na, acc, ext)
      ORDER BY key, ord) AS first
ORDER BY ord";

/// Step 2: the reports already stored leave `incoming`.
const DEDUPLICATE: &str = "
WITH fresh AS (
    INSERT INTO report_keys (key, received_at)
    SELECT key, received_at FROM incoming ORDER BY key
    ON CONFLICT DO NOTHING
    RETURNING key)
DELETE FROM incoming WHERE key NOT IN (SELECT key FROM fresh)";

/// Step 3.
const REPORTS: &str = "
INSERT INTO report_log (id, received_at, cluster_id, report_id, received_from, metadata, payload)
SELECT i.id, i.received_at, i.cluster_id, u.r, u.f, u.m::jsonb, u.p::jsonb
FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(ord, r, f, m, p)
JOIN incoming i USING (ord)";

/// Step 4: a cluster's latest report is its greatest (received_at, id); only
/// that one sets its columns. recent_days merges the distinct days of all the
/// batch's reports of the cluster with the stored ones, older reports' too,
/// so an older report still updates (and so locks) the row, every other
/// column keeping its value. RETURNING gives the stored report: it is an id
/// of `incoming` only when that report became the latest.
const CLUSTERS: &str = "
WITH newest AS (
    SELECT DISTINCT ON (cluster_id) * FROM incoming
    ORDER BY cluster_id, received_at DESC, id DESC),
days AS (
    SELECT cluster_id, (array_agg(DISTINCT day ORDER BY day DESC))[1:7] AS recent
    FROM incoming GROUP BY cluster_id),
facets AS (
    SELECT ord, array_agg(k ORDER BY i) AS ks, array_agg(v ORDER BY i) AS vs,
           array_agg(n ORDER BY i) AS ns
    FROM unnest($1::integer[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY
         AS f(ord, k, v, n, i)
    GROUP BY ord),
up AS (
    INSERT INTO clusters AS c (cluster_id, received_at, report, master_version, minor_version,
                               distribution, volunteer_version, nodes, nodes_with_accelerators,
                               accelerators, extensions, facet_keys, facet_values, facet_nodes,
                               recent_days)
    SELECT cluster_id, received_at, id, master_version, minor_version, distribution,
           volunteer_version, nodes, nodes_with_accelerators, accelerators, extensions,
           coalesce(ks, '{}'), coalesce(vs, '{}'), coalesce(ns, '{}'), recent
    FROM newest JOIN days USING (cluster_id) LEFT JOIN facets USING (ord) ORDER BY cluster_id
    ON CONFLICT (cluster_id) DO UPDATE SET
        received_at = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.received_at ELSE c.received_at END,
        report = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.report ELSE c.report END,
        master_version = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.master_version ELSE c.master_version END,
        minor_version = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.minor_version ELSE c.minor_version END,
        distribution = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.distribution ELSE c.distribution END,
        volunteer_version = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.volunteer_version ELSE c.volunteer_version END,
        nodes = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.nodes ELSE c.nodes END,
        nodes_with_accelerators = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.nodes_with_accelerators ELSE c.nodes_with_accelerators END,
        accelerators = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.accelerators ELSE c.accelerators END,
        extensions = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.extensions ELSE c.extensions END,
        facet_keys = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.facet_keys ELSE c.facet_keys END,
        facet_values = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.facet_values ELSE c.facet_values END,
        facet_nodes = CASE WHEN (excluded.received_at, excluded.report) > (c.received_at, c.report) THEN excluded.facet_nodes ELSE c.facet_nodes END,
        recent_days = array(SELECT DISTINCT d FROM unnest(c.recent_days || excluded.recent_days)
                            AS d ORDER BY d DESC LIMIT 7)
    WHERE (excluded.received_at, excluded.report) > (c.received_at, c.report)
       OR NOT excluded.recent_days <@ c.recent_days
    RETURNING report)
UPDATE incoming SET latest = true FROM up WHERE incoming.id = up.report";

/// Step 5: one snapshot for both parts, so the DELETE never sees the new rows.
const NODES: &str = "
WITH gone AS (
    DELETE FROM cluster_nodes WHERE ctid = ANY (ARRAY(
        SELECT n.ctid FROM incoming i
        CROSS JOIN LATERAL (SELECT ctid FROM cluster_nodes n WHERE n.cluster_id = i.cluster_id
                            LIMIT 2000) AS n
        WHERE i.latest)))
INSERT INTO cluster_nodes (cluster_id, received_at, kubelet_version, os_image, kernel_version,
                           container_runtime_version, operating_system, architecture,
                           cloud_provider, cpu_millicores, memory_bytes, ephemeral_storage_bytes,
                           pods, accelerators, nodes)
SELECT i.cluster_id, i.received_at, g.kv, g.os, g.kernel, g.runtime, g.system, g.arch, g.cloud,
       g.cpu, g.memory, g.storage, g.pods, g.acc, g.n
FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[],
            $14::integer[])
     AS g(ord, kv, os, kernel, runtime, system, arch, cloud, cpu, memory, storage, pods, acc, n)
JOIN incoming i USING (ord)
WHERE i.latest";

/// Step 6: a day's row is replaced only by a later report of that day;
/// what it held before is subtracted from fleet_days, what it holds now added.
const DAYS: &str = "
WITH newest AS (
    SELECT DISTINCT ON (day, cluster_id) * FROM incoming
    ORDER BY day, cluster_id, received_at DESC, id DESC),
old AS (
    SELECT o.* FROM newest n
    CROSS JOIN LATERAL (SELECT * FROM cluster_days d
                        WHERE d.day = n.day AND d.cluster_id = n.cluster_id LIMIT 1) AS o),
win AS (
    SELECT n.* FROM newest n LEFT JOIN old o USING (day, cluster_id)
    WHERE o.report IS NULL OR (n.received_at, n.id) > (o.received_at, o.report)),
saved AS (
    INSERT INTO cluster_days AS d (day, cluster_id, received_at, report, minor_version,
                                   distribution, volunteer_version, nodes, nodes_with_accelerators)
    SELECT day, cluster_id, received_at, id, minor_version, distribution, volunteer_version,
           nodes, nodes_with_accelerators
    FROM win
    ON CONFLICT (day, cluster_id) DO UPDATE SET
        received_at = excluded.received_at, report = excluded.report,
        minor_version = excluded.minor_version, distribution = excluded.distribution,
        volunteer_version = excluded.volunteer_version, nodes = excluded.nodes,
        nodes_with_accelerators = excluded.nodes_with_accelerators),
change AS (
    SELECT day, 1 AS sign, minor_version, distribution, volunteer_version, nodes,
           nodes_with_accelerators
    FROM win
    UNION ALL
    SELECT o.day, -1, o.minor_version, o.distribution, o.volunteer_version, o.nodes,
           o.nodes_with_accelerators
    FROM old o JOIN win USING (day, cluster_id)),
delta AS (
    SELECT day, f.dimension, f.value, sum(sign * f.clusters) AS clusters,
           sum(sign * f.nodes) AS nodes
    FROM change
    CROSS JOIN LATERAL (VALUES
        ('all', '', 1, nodes),
        ('accelerators', '', (nodes_with_accelerators > 0)::integer, nodes_with_accelerators),
        ('minor_version', coalesce(minor_version, ''), 1, nodes),
        ('distribution', distribution, 1, nodes),
        ('volunteer_version', coalesce(volunteer_version, ''), 1, nodes)
    ) AS f(dimension, value, clusters, nodes)
    GROUP BY 1, 2, 3)
INSERT INTO fleet_days AS f (day, dimension, value, clusters, nodes)
SELECT day, dimension, value, clusters, nodes FROM delta
WHERE clusters <> 0 OR nodes <> 0
ORDER BY 1, 2, 3
ON CONFLICT (day, dimension, value) DO UPDATE SET
    clusters = f.clusters + excluded.clusters, nodes = f.nodes + excluded.nodes";

/// The prepared statements, for one connection.
pub struct Statements([Statement; 6]);

impl Statements {
    pub fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        client.batch_execute(INCOMING)?;
        let mut prepare = |sql| client.prepare(sql);
        Ok(Statements([
            prepare(STAGE)?,
            prepare(DEDUPLICATE)?,
            prepare(REPORTS)?,
            prepare(CLUSTERS)?,
            prepare(NODES)?,
            prepare(DAYS)?,
        ]))
    }
}

/// Stores `rows` in `tx`, which the caller commits; returns how many were
/// new (the rest were already stored, or repeated within the batch).
pub fn store(
    tx: &mut Transaction,
    statements: &Statements,
    rows: &[(&Report, &Facts)],
) -> Result<u64, postgres::Error> {
    let [stage, dedup, reports, clusters, nodes, days] = &statements.0;
    let c = Columns::new(rows);
    tx.execute(stage, &c.facts())?;
    tx.execute(dedup, &[])?;
    let stored = tx.execute(reports, &c.reports())?;
    tx.execute(clusters, &c.facets())?;
    tx.execute(nodes, &c.nodes())?;
    tx.execute(days, &[])?;
    Ok(stored)
}

/// `store` in a transaction of its own, committed.
pub fn commit(
    client: &mut Client,
    statements: &Statements,
    rows: &[(&Report, &Facts)],
) -> Result<u64, postgres::Error> {
    let mut tx = client.transaction()?;
    let stored = store(&mut tx, statements, rows)?;
    tx.commit()?;
    Ok(stored)
}

/// The de-duplication key of a report (see report_keys in the migration).
pub fn key(report: &Report) -> String {
    match &report.report_id {
        Some(id) => format!("id:{id}"),
        None => format!("at:{} {}", report.cluster_id, report.received_micros),
    }
}

/// The array parameters of the statements, one element per report (or per
/// node group), tied together by `ord`, the report's place in the batch.
struct Columns<'a> {
    ord: Vec<i32>,
    key: Vec<String>,
    micros: Vec<i64>,
    cluster: Vec<&'a str>,
    master: Vec<Option<&'a str>>,
    minor: Vec<Option<&'a str>>,
    distribution: Vec<&'a str>,
    volunteer: Vec<Option<&'a str>>,
    nodes: Vec<i32>,
    with_accelerators: Vec<i32>,
    accelerators: Vec<String>,
    extensions: Vec<String>,
    report_id: Vec<Option<&'a str>>,
    from: Vec<&'a str>,
    metadata: Vec<String>,
    payload: Vec<&'a str>,
    groups: Groups<'a>,
    facets: Facets<'a>,
}

/// What summary counts per cluster (clusters.facet_*), flattened.
#[derive(Default)]
struct Facets<'a> {
    ord: Vec<i32>,
    key: Vec<&'static str>,
    value: Vec<Option<std::borrow::Cow<'a, str>>>,
    nodes: Vec<i64>,
}

#[derive(Default)]
struct Groups<'a> {
    ord: Vec<i32>,
    text: [Vec<Option<&'a str>>; 7],
    numbers: [Vec<Option<i64>>; 5],
    nodes: Vec<i32>,
}

impl<'a> Columns<'a> {
    fn new(rows: &[(&'a Report, &'a Facts)]) -> Columns<'a> {
        let mut groups = Groups::default();
        for (ord, (_, facts)) in (0..).zip(rows) {
            for g in &facts.groups {
                groups.ord.push(ord);
                let text = [
                    &g.kubelet_version,
                    &g.os_image,
                    &g.kernel_version,
                    &g.container_runtime_version,
                    &g.operating_system,
                    &g.architecture,
                    &g.cloud_provider,
                ];
                for (column, value) in groups.text.iter_mut().zip(text) {
                    column.push(value.as_deref());
                }
                let numbers = [
                    g.cpu_millis,
                    g.memory_bytes,
                    g.ephemeral_storage_bytes,
                    g.pods,
                    g.accelerators,
                ];
                for (column, value) in groups.numbers.iter_mut().zip(numbers) {
                    column.push(value);
                }
                groups.nodes.push(g.nodes);
            }
        }
        let mut facets = Facets::default();
        for (ord, (_, f)) in (0..).zip(rows) {
            for (key, value, nodes) in f.facets() {
                facets.ord.push(ord);
                facets.key.push(key);
                facets.value.push(value);
                facets.nodes.push(nodes);
            }
        }
        let object = |pairs: &mut dyn Iterator<Item = (String, serde_json::Value)>| {
            serde_json::Value::Object(pairs.collect()).to_string()
        };
        Columns {
            ord: (0..).take(rows.len()).collect(),
            key: rows.iter().map(|(r, _)| key(r)).collect(),
            micros: rows.iter().map(|(r, _)| r.received_micros).collect(),
            cluster: rows.iter().map(|(r, _)| r.cluster_id.as_str()).collect(),
            master: rows
                .iter()
                .map(|(_, f)| f.master_version.as_deref())
                .collect(),
            minor: rows
                .iter()
                .map(|(_, f)| f.minor_version.as_deref())
                .collect(),
            distribution: rows.iter().map(|(_, f)| f.distribution).collect(),
            volunteer: rows
                .iter()
                .map(|(_, f)| f.volunteer_version.as_deref())
                .collect(),
            nodes: rows.iter().map(|(_, f)| f.nodes).collect(),
            with_accelerators: rows
                .iter()
                .map(|(_, f)| f.nodes_with_accelerators)
                .collect(),
            accelerators: rows
                .iter()
                .map(|(_, f)| {
                    object(&mut f.accelerators.iter().map(|(k, v)| (k.clone(), (*v).into())))
                })
                .collect(),
            extensions: rows
                .iter()
                .map(|(_, f)| {
                    object(
                        &mut f
                            .extensions
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone().into())),
                    )
                })
                .collect(),
            report_id: rows.iter().map(|(r, _)| r.report_id.as_deref()).collect(),
            from: rows.iter().map(|(r, _)| r.received_from.as_str()).collect(),
            metadata: rows
                .iter()
                .map(|(r, _)| {
                    serde_json::to_string(&r.metadata).expect("a map of strings always serializes")
                })
                .collect(),
            payload: rows.iter().map(|(r, _)| r.payload.as_str()).collect(),
            groups,
            facets,
        }
    }

    fn facts(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.ord,
            &self.key,
            &self.micros,
            &self.cluster,
            &self.master,
            &self.minor,
            &self.distribution,
            &self.volunteer,
            &self.nodes,
            &self.with_accelerators,
            &self.accelerators,
            &self.extensions,
        ]
    }

    fn facets(&self) -> [&(dyn ToSql + Sync); 4] {
        let f = &self.facets;
        [&f.ord, &f.key, &f.value, &f.nodes]
    }

    fn reports(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.ord,
            &self.report_id,
            &self.from,
            &self.metadata,
            &self.payload,
        ]
    }

    fn nodes(&self) -> [&(dyn ToSql + Sync); 14] {
        let g = &self.groups;
        let [t0, t1, t2, t3, t4, t5, t6] = &g.text;
        let [n0, n1, n2, n3, n4] = &g.numbers;
        [
            &g.ord, t0, t1, t2, t3, t4, t5, t6, n0, n1, n2, n3, n4, &g.nodes,
        ]
    }
}
