//! One batch of reports into PostgreSQL, in one transaction: the report
//! rows, their de-duplication keys, and the state derived from them
//! (collector/migrations/ say what each table holds). Used
//! by the writer (store.rs) and by `import`. Does not decide when to commit,
//! retry or answer.
//!
//! The statements run in this order, and the order is what makes them safe
//! with several collectors writing at once:
//! 1. the batch's facts go to a temporary table, `incoming`;
//! 2. keys already stored take their reports out of it (duplicates);
//! 3. the reports are inserted;
//! 4. what each cluster would store goes to a second one, `prior`;
//! 5. new clusters are inserted, sorted by cluster;
//! 6. the stored ones are locked, sorted, and what they held kept in
//!    `prior`: from here on no other writer can change any cluster of the
//!    batch, so the later statements read and replace each one's rows;
//! 7. `clusters` is updated;
//! 8. fleet_latest takes the difference each cluster's change makes;
//! 9. the nodes of clusters whose latest report changed are replaced;
//! 10. cluster_days takes each cluster's last report of each day, and
//!     fleet_days the difference it makes, sorted by key.
//!
//! Locks are taken in one order (keys, then clusters, then fleet_latest,
//! then cluster_days and fleet_days rows, each sorted), so two writers wait
//! for each other but never deadlock. Prune takes them in the same order.
//!
//! `incoming` has no statistics, so each lookup of stored rows is written
//! to go through an index whatever the planner guesses of its size (a
//! LATERAL with a LIMIT, which is a loop of index probes): a sequential
//! scan of cluster_nodes or cluster_days per batch would cost what the
//! fleet or the history holds. (2000 is above facts.rs's 1,001 groups.)

use super::facts::Facts;
use super::report::Report;
use crate::insight::stats::PUBLISHED;
use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};

const INCOMING: &str = "
CREATE TEMPORARY TABLE IF NOT EXISTS incoming (
    ord integer, key text, id bigint, received_at timestamptz, day date, cluster_id text,
    master_version text, minor_version text, distribution text, volunteer_version text,
    nodes integer, nodes_with_accelerators integer, accelerators jsonb, extensions jsonb,
    latest boolean NOT NULL DEFAULT false
) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS prior (
    cluster_id text, received_at timestamptz, report bigint, master_version text,
    minor_version text, distribution text, volunteer_version text, nodes integer,
    nodes_with_accelerators integer, accelerators jsonb, extensions jsonb, facet_keys text[],
    facet_values text[], facet_nodes bigint[], recent_days date[],
    old_days date[], old_nodes integer, old_keys text[], old_values text[], old_counts bigint[]
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

/// Step 4, what each cluster of the batch would store: its latest report
/// of the batch (greatest received_at, then id), and the distinct days of
/// all its reports of the batch.
const PENDING: &str = "
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
    GROUP BY ord)
INSERT INTO prior (cluster_id, received_at, report, master_version, minor_version, distribution,
                   volunteer_version, nodes, nodes_with_accelerators, accelerators, extensions,
                   facet_keys, facet_values, facet_nodes, recent_days)
SELECT cluster_id, received_at, id, master_version, minor_version, distribution,
       volunteer_version, nodes, nodes_with_accelerators, accelerators, extensions,
       coalesce(ks, '{}'), coalesce(vs, '{}'), coalesce(ns, '{}'), recent
FROM newest JOIN days USING (cluster_id) LEFT JOIN facets USING (ord)";

/// Step 5: new clusters are inserted, sorted, and contributed nothing
/// before. A cluster another writer is inserting waits for it, then counts
/// as stored.
const FRESH: &str = "
WITH fresh AS (
    INSERT INTO clusters (cluster_id, received_at, report, master_version, minor_version,
                          distribution, volunteer_version, nodes, nodes_with_accelerators,
                          accelerators, extensions, facet_keys, facet_values, facet_nodes,
                          recent_days)
    SELECT cluster_id, received_at, report, master_version, minor_version, distribution,
           volunteer_version, nodes, nodes_with_accelerators, accelerators, extensions,
           facet_keys, facet_values, facet_nodes, recent_days
    FROM prior WHERE old_days IS NULL ORDER BY cluster_id
    ON CONFLICT DO NOTHING
    RETURNING cluster_id, report),
latest AS (UPDATE incoming SET latest = true FROM fresh WHERE incoming.id = fresh.report)
UPDATE prior SET old_days = '{}', old_nodes = 0, old_keys = '{}', old_values = '{}',
                 old_counts = '{}'
FROM fresh WHERE prior.cluster_id = fresh.cluster_id";

/// Step 6: the stored clusters are locked, sorted, and what they held is
/// kept: a new statement, so it reads what other writers committed.
const LOCK: &str = "
UPDATE prior p SET old_days = c.recent_days, old_nodes = c.nodes, old_keys = c.facet_keys,
                   old_values = c.facet_values, old_counts = c.facet_nodes
FROM (SELECT cluster_id, recent_days, nodes, facet_keys, facet_values, facet_nodes
      FROM clusters
      WHERE cluster_id = ANY (ARRAY(SELECT cluster_id FROM prior WHERE old_days IS NULL))
      ORDER BY cluster_id FOR UPDATE) AS c
WHERE p.cluster_id = c.cluster_id";

/// Step 7: a stored cluster's latest report is its greatest (received_at,
/// id); only that one sets its columns. recent_days merges the batch's
/// days with the stored ones, older reports' too, every other column
/// keeping its value. RETURNING gives the stored report: it is an id of
/// `incoming` only when that report became the latest.
const CLUSTERS: &str = "
WITH up AS (
    INSERT INTO clusters AS c (cluster_id, received_at, report, master_version, minor_version,
                               distribution, volunteer_version, nodes, nodes_with_accelerators,
                               accelerators, extensions, facet_keys, facet_values, facet_nodes,
                               recent_days)
    SELECT cluster_id, received_at, report, master_version, minor_version, distribution,
           volunteer_version, nodes, nodes_with_accelerators, accelerators, extensions,
           facet_keys, facet_values, facet_nodes, recent_days
    FROM prior WHERE old_days <> '{}' ORDER BY cluster_id
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

/// Step 8: fleet_latest loses what each changed cluster counted before and
/// gains what it counts now, for the facets /stats shows ($1), sorted by key.
/// The clusters are locked: each lookup is one probe of one of them.
const LATEST: &str = "
WITH now AS (
    SELECT p.old_days, p.old_nodes, p.old_keys, p.old_values, p.old_counts, c.*
    FROM prior p
    CROSS JOIN LATERAL (SELECT recent_days, nodes, facet_keys, facet_values, facet_nodes
                        FROM clusters c WHERE c.cluster_id = p.cluster_id LIMIT 1) AS c
    WHERE (p.old_days[1], cardinality(p.old_days), p.old_nodes, p.old_keys, p.old_values,
           p.old_counts)
          IS DISTINCT FROM (c.recent_days[1], cardinality(c.recent_days), c.nodes, c.facet_keys,
                            c.facet_values, c.facet_nodes)),
change AS (
    SELECT recent_days[1] AS day, cardinality(recent_days) AS seen, 1 AS sign, nodes,
           facet_keys AS ks, facet_values AS vs, facet_nodes AS ns
    FROM now
    UNION ALL
    SELECT old_days[1], cardinality(old_days), -1, old_nodes, old_keys, old_values, old_counts
    FROM now WHERE old_days <> '{}'),
delta AS (
    SELECT day, seen, f.facet, f.value, sum(sign) AS clusters, sum(sign * f.nodes) AS nodes
    FROM change CROSS JOIN LATERAL fleet_latest_rows(nodes, ks, vs, ns, $1::text[]) AS f
    GROUP BY 1, 2, 3, 4)
INSERT INTO fleet_latest AS f (day, seen, facet, value, clusters, nodes)
SELECT * FROM delta WHERE clusters <> 0 OR nodes <> 0 ORDER BY 1, 2, 3, 4
ON CONFLICT (day, seen, facet, value) DO UPDATE SET
    clusters = f.clusters + excluded.clusters, nodes = f.nodes + excluded.nodes";

/// Step 9: one snapshot for both parts, so the DELETE never sees the new rows.
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

/// Step 10: a day's row is replaced only by a later report of that day;
/// what it held before is subtracted from fleet_days, what it holds now
/// added, each at the seen of its cluster (migration 002). A cluster whose
/// seen changed (fewer than 7 days before, so all its days are in its old
/// recent_days) moves every row it has from the old seen to the new.
const DAYS: &str = "
WITH newest AS (
    SELECT DISTINCT ON (day, cluster_id) * FROM incoming
    ORDER BY day, cluster_id, received_at DESC, id DESC),
seen AS (
    SELECT p.cluster_id, p.old_days, cardinality(p.old_days) AS was,
           cardinality(c.recent_days) AS now
    FROM prior p
    CROSS JOIN LATERAL (SELECT recent_days FROM clusters c
                        WHERE c.cluster_id = p.cluster_id LIMIT 1) AS c),
affected AS (
    SELECT day, cluster_id FROM newest
    UNION
    SELECT d, cluster_id FROM seen, unnest(old_days) AS d WHERE was <> now),
old AS (
    SELECT o.* FROM affected a
    CROSS JOIN LATERAL (SELECT * FROM cluster_days d
                        WHERE d.day = a.day AND d.cluster_id = a.cluster_id LIMIT 1) AS o),
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
after AS (
    SELECT day, cluster_id, minor_version, distribution, volunteer_version, nodes,
           nodes_with_accelerators
    FROM win
    UNION ALL
    SELECT day, cluster_id, minor_version, distribution, volunteer_version, nodes,
           nodes_with_accelerators
    FROM old o
    WHERE NOT EXISTS (SELECT FROM win w WHERE w.day = o.day AND w.cluster_id = o.cluster_id)),
change AS (
    SELECT a.day, s.now AS seen, 1 AS sign, a.minor_version, a.distribution,
           a.volunteer_version, a.nodes, a.nodes_with_accelerators
    FROM after a JOIN seen s USING (cluster_id)
    UNION ALL
    SELECT o.day, s.was, -1, o.minor_version, o.distribution, o.volunteer_version, o.nodes,
           o.nodes_with_accelerators
    FROM old o JOIN seen s USING (cluster_id)),
delta AS (
    SELECT day, f.dimension, f.value, seen, sum(sign * f.clusters) AS clusters,
           sum(sign * f.nodes) AS nodes
    FROM change
    CROSS JOIN LATERAL fleet_days_rows(minor_version, distribution, volunteer_version, nodes,
                                       nodes_with_accelerators) AS f
    GROUP BY 1, 2, 3, 4)
INSERT INTO fleet_days AS f (day, dimension, value, seen, clusters, nodes)
SELECT day, dimension, value, seen, clusters, nodes FROM delta
WHERE clusters <> 0 OR nodes <> 0
ORDER BY 1, 2, 3, 4
ON CONFLICT (day, dimension, value, seen) DO UPDATE SET
    clusters = f.clusters + excluded.clusters, nodes = f.nodes + excluded.nodes";

/// The prepared statements, for one connection.
pub struct Statements([Statement; 10]);

impl Statements {
    pub fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        client.batch_execute(INCOMING)?;
        let mut prepare = |sql| client.prepare(sql);
        Ok(Statements([
            prepare(STAGE)?,
            prepare(DEDUPLICATE)?,
            prepare(REPORTS)?,
            prepare(PENDING)?,
            prepare(FRESH)?,
            prepare(LOCK)?,
            prepare(CLUSTERS)?,
            prepare(LATEST)?,
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
    let [stage, dedup, reports, pending, fresh, lock, clusters, latest, nodes, days] =
        &statements.0;
    let c = Columns::new(rows);
    tx.execute(stage, &c.facts())?;
    tx.execute(dedup, &[])?;
    let stored = tx.execute(reports, &c.reports())?;
    tx.execute(pending, &c.facets())?;
    // A cluster prune deletes between the two is neither inserted nor
    // locked, and another writer may insert it meanwhile: again, until
    // every cluster of the batch is one or the other.
    loop {
        tx.execute(fresh, &[])?;
        tx.execute(lock, &[])?;
        let left: i64 = tx
            .query_one("SELECT count(*) FROM prior WHERE old_days IS NULL", &[])?
            .get(0);
        if left == 0 {
            break;
        }
    }
    tx.execute(clusters, &[])?;
    tx.execute(latest, &[&&PUBLISHED[..]])?;
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
