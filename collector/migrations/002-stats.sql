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
SELECT c.recent_days[1], cardinality(c.recent_days), f.k, f.v, count(*), sum(f.n)
FROM clusters c
CROSS JOIN LATERAL (
    SELECT '', '', c.nodes::bigint
    UNION ALL
    SELECT u.k, coalesce(u.v, ''), u.n
    FROM unnest(c.facet_keys, c.facet_values, c.facet_nodes) AS u(k, v, n)
    WHERE u.k IN ('minor_version', 'distribution', 'cloud_provider', 'os_image',
                  'container_runtime_version', 'architecture', 'accelerators',
                  'volunteer_version')
) AS f(k, v, n)
GROUP BY 1, 2, 3, 4;

-- fleet_days gains the seen of the cluster each row counts, so that the
-- daily series can leave out clusters seen on too few days. Rebuilt from
-- cluster_days, which it sums. A cluster_days row whose cluster is gone
-- (prune deleted it on the cutoff's day) counts at seen 0: never shown.
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
SELECT d.day, f.dimension, f.value, coalesce(cardinality(c.recent_days), 0),
       sum(f.clusters), sum(f.nodes)
FROM cluster_days d
LEFT JOIN clusters c USING (cluster_id)
CROSS JOIN LATERAL (VALUES
    ('all', '', 1, d.nodes),
    ('accelerators', '', (d.nodes_with_accelerators > 0)::integer, d.nodes_with_accelerators),
    ('minor_version', coalesce(d.minor_version, ''), 1, d.nodes),
    ('distribution', d.distribution, 1, d.nodes),
    ('volunteer_version', coalesce(d.volunteer_version, ''), 1, d.nodes)
) AS f(dimension, value, clusters, nodes)
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
