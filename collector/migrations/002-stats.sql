-- Migration 2: what /stats publishes, kept at ingest, so that computing it
-- reads a few rows per day of the window and value shown, however many
-- clusters report (collector/src/insight/stats/query.rs).
--
-- A cluster's "seen" is the number of distinct UTC days it reported on, up
-- to 7: cardinality(clusters.recent_days). /stats counts a cluster only when
-- seen >= --min-days, so each figure is a sum over seen >= D, and every
-- collector keeps them right whatever its own --min-days.
--
-- Written by ingest (ingest/batch.rs) under each cluster's row lock, from
-- what the cluster contributed before the batch and after it; prune takes
-- away what a deleted cluster contributed.

-- What one cluster counts in fleet_latest, from its clusters row: ('', '',
-- its nodes), then each facet named in $5 with its value ('' for not
-- reported, so that "" and a missing one are one value, counted once) and
-- nodes. One SELECT, so PostgreSQL inlines it into the query.
CREATE FUNCTION fleet_latest_rows(integer, text[], text[], bigint[], text[])
RETURNS TABLE (facet text, value text, nodes bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT '', '', $1::bigint
    UNION ALL
    SELECT u.k, coalesce(u.v, ''), sum(u.n)::bigint FROM unnest($2, $3, $4) AS u(k, v, n)
    WHERE u.k = ANY ($5) GROUP BY 1, 2
$$;

-- What one cluster_days row counts in fleet_days, from its minor version,
-- distribution, volunteer version, nodes and nodes with accelerators.
CREATE FUNCTION fleet_days_rows(text, text, text, integer, integer)
RETURNS TABLE (dimension text, value text, clusters integer, nodes integer)
LANGUAGE sql IMMUTABLE AS $$
    SELECT * FROM (VALUES
        ('all', '', 1, $4),
        ('accelerators', '', ($5 > 0)::integer, $5),
        ('minor_version', coalesce($1, ''), 1, $4),
        ('distribution', $2, 1, $4),
        ('volunteer_version', coalesce($3, ''), 1, $4)) AS f
$$;

-- Per day of each cluster's latest report and its seen: the clusters and
-- their nodes by the value of each breakdown /stats shows (the facets of
-- clusters.facet_keys that query.rs BREAKDOWNS names; '' for not reported),
-- and facet '' (value ''): all of them, and their nodes.
CREATE TABLE fleet_latest (
    day      date     NOT NULL,
    seen     smallint NOT NULL,
    facet    text     NOT NULL,
    value    text     NOT NULL,
    clusters bigint   NOT NULL,
    nodes    bigint   NOT NULL,
    PRIMARY KEY (day, seen, facet, value)
);
INSERT INTO fleet_latest (day, seen, facet, value, clusters, nodes)
SELECT c.recent_days[1], cardinality(c.recent_days), f.facet, f.value, count(*), sum(f.nodes)
FROM clusters c
CROSS JOIN LATERAL fleet_latest_rows(
    c.nodes, c.facet_keys, c.facet_values, c.facet_nodes,
    '{minor_version,distribution,cloud_provider,os_image,container_runtime_version,architecture,accelerators,volunteer_version}'
) AS f
GROUP BY 1, 2, 3, 4;

-- fleet_days gains the seen of the cluster each row counts, so that the
-- daily series can leave out clusters seen on too few days. Rebuilt from
-- cluster_days, which it sums.
-- The first release's prune kept each deleted cluster's row of the cutoff's
-- day, whose reports it had deleted; they would count if the cluster came
-- back.
DELETE FROM cluster_days d WHERE NOT EXISTS (SELECT FROM clusters c WHERE c.cluster_id = d.cluster_id);
DROP VIEW clusters_daily;
CREATE TABLE fleet_days_by_seen (
    day       date     NOT NULL,
    dimension text     NOT NULL,
    value     text     NOT NULL,
    seen      smallint NOT NULL,
    clusters  bigint   NOT NULL,
    nodes     bigint   NOT NULL
);
INSERT INTO fleet_days_by_seen (day, dimension, value, seen, clusters, nodes)
SELECT d.day, f.dimension, f.value, cardinality(c.recent_days), sum(f.clusters), sum(f.nodes)
FROM cluster_days d
JOIN clusters c USING (cluster_id)
CROSS JOIN LATERAL fleet_days_rows(d.minor_version, d.distribution, d.volunteer_version, d.nodes,
                                   d.nodes_with_accelerators) AS f
GROUP BY 1, 2, 3, 4;
DROP TABLE fleet_days;
ALTER TABLE fleet_days_by_seen RENAME TO fleet_days;
ALTER TABLE fleet_days ADD PRIMARY KEY (day, dimension, value, seen);

-- Per UTC day, as before, summed over seen.
CREATE VIEW clusters_daily AS
SELECT day,
       sum(clusters) FILTER (WHERE dimension = 'all')::bigint AS clusters,
       sum(nodes) FILTER (WHERE dimension = 'all')::bigint AS nodes,
       coalesce(sum(clusters) FILTER (WHERE dimension = 'accelerators'), 0)::bigint
           AS clusters_with_accelerators,
       coalesce(sum(nodes) FILTER (WHERE dimension = 'accelerators'), 0)::bigint
           AS nodes_with_accelerators
FROM fleet_days
WHERE dimension IN ('all', 'accelerators')
GROUP BY day
HAVING count(*) FILTER (WHERE dimension = 'all') > 0;
