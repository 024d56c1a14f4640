-- Migration 1: reports in monthly partitions, and the state derived from
-- them at ingest, so that a read costs what its answer holds, not what the
-- history holds. Applied once, in one transaction, under the advisory lock
-- (collector/src/migrate.rs). On a database of the first release, whose
-- `reports` table and views came from its schema.sql, it leaves `reports` in
-- place for `spartakus-collector migrate` to move, and replaces the views.
--
-- Written by the collector, in one transaction per batch (ingest/store.rs):
--   report_log     every report as sent, partitioned by month of received_at;
--   report_keys    one key per stored report, for de-duplication;
--   clusters       each cluster's latest report, as typed facts;
--   cluster_nodes  the nodes of that report, grouped by identical facts;
--   cluster_days   each cluster's last report of each UTC day, as facts;
--   fleet_days     per UTC day, clusters and nodes by dimension value.
-- Everything but report_log is derived (ingest/facts.rs) and could be
-- rebuilt from it. Unknown values are NULL, except in fleet_days, whose key
-- holds '' for "not reported".

-- Every report as stored. received_at is in the key because PostgreSQL
-- requires each unique key of a partitioned table to hold the partition key.
-- `id` orders reports received in the same microsecond; ingest takes it from
-- the sequence itself, so that one batch can refer to its rows.
CREATE SEQUENCE report_log_id AS bigint;
CREATE TABLE report_log (
    id            bigint      NOT NULL DEFAULT nextval('report_log_id'),
    received_at   timestamptz NOT NULL,
    cluster_id    text        NOT NULL,
    report_id     text,
    received_from text        NOT NULL,
    metadata      jsonb       NOT NULL,
    payload       jsonb       NOT NULL,
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
ALTER SEQUENCE report_log_id OWNED BY report_log.id;
-- Months without a partition of their own land here, so that no insert ever
-- fails at a month boundary; the collector and import create each month's
-- partition before its first report (partitions.rs).
CREATE TABLE report_log_default PARTITION OF report_log DEFAULT;
-- Reports arrive in time order, so a BRIN index is a few pages per month and
-- still finds the rows of a range (prune's boundary month, export).
CREATE INDEX report_log_received_at ON report_log USING brin (received_at);

-- De-duplication, which a partitioned report_log cannot do by itself. The
-- key is 'id:' and metadata.reportID, or, for a report without one,
-- 'at:', its clusterID, a space and received_at in unix microseconds: so
-- re-importing an export stores nothing twice. Written in the same
-- transaction as the report, and pruned with it.
CREATE TABLE report_keys (
    key         text        PRIMARY KEY,
    received_at timestamptz NOT NULL
);
CREATE INDEX report_keys_received_at ON report_keys USING brin (received_at);

-- The latest report of each cluster (greatest received_at, then id). An
-- older report, imported or late, never replaces it.
CREATE TABLE clusters (
    cluster_id              text        PRIMARY KEY,
    received_at             timestamptz NOT NULL,
    report                  bigint      NOT NULL,
    master_version          text,
    minor_version           text,
    distribution            text        NOT NULL,
    volunteer_version       text,
    nodes                   integer     NOT NULL,
    nodes_with_accelerators integer     NOT NULL,
    -- {"nvidia.com/gpu": 16}: allow-listed accelerator names, total counts.
    accelerators            jsonb       NOT NULL,
    -- {"name": "value"}: the report's extensions.
    extensions              jsonb       NOT NULL,
    -- What `summary` counts, per cluster, aligned arrays: the breakdown
    -- (distribution, os_image, ...), the value (NULL: not reported), and
    -- this cluster's nodes with it (for accelerators, the devices). One
    -- entry per distinct value, so summing over clusters needs no
    -- per-cluster grouping at read.
    facet_keys              text[]      NOT NULL,
    facet_values            text[]      NOT NULL,
    facet_nodes             bigint[]    NOT NULL,
    -- The cluster's most recent distinct UTC days with a report, newest
    -- first, at most 7 (--min-days is at most 7): merged from every report,
    -- older (imported) ones too, which change nothing else here. "Reported
    -- on at least D days since S" is recent_days[D] >= S (no day is after
    -- today), so /stats finds its counted clusters without cluster_days.
    recent_days             date[]      NOT NULL
);
CREATE INDEX clusters_received_at ON clusters (received_at);

-- The nodes of each cluster's latest report, one row per group of nodes
-- with the same facts (a node pool, usually). Replaced with `clusters`.
CREATE TABLE cluster_nodes (
    cluster_id                text        NOT NULL,
    received_at               timestamptz NOT NULL,
    kubelet_version           text,
    os_image                  text,
    kernel_version            text,
    container_runtime_version text,
    operating_system          text,
    architecture              text,
    cloud_provider            text,
    cpu_millicores            bigint,
    memory_bytes              bigint,
    ephemeral_storage_bytes   bigint,
    pods                      bigint,
    accelerators              bigint,
    nodes                     integer     NOT NULL
);
CREATE INDEX cluster_nodes_cluster ON cluster_nodes (cluster_id);

-- Each cluster's last report of each UTC day. Kept so that a second report
-- the same day replaces the first in fleet_days rather than adding to it.
CREATE TABLE cluster_days (
    day                     date        NOT NULL,
    cluster_id              text        NOT NULL,
    received_at             timestamptz NOT NULL,
    report                  bigint      NOT NULL,
    minor_version           text,
    distribution            text        NOT NULL,
    volunteer_version       text,
    nodes                   integer     NOT NULL,
    nodes_with_accelerators integer     NOT NULL,
    PRIMARY KEY (day, cluster_id)
);

-- Per UTC day and dimension value: the clusters whose last report of the
-- day had it, and their nodes. Dimensions: 'all' (value ''), 'accelerators'
-- (clusters with any, and their nodes with any), 'minor_version',
-- 'distribution', 'volunteer_version'. Kept by deltas from cluster_days.
CREATE TABLE fleet_days (
    day       date   NOT NULL,
    dimension text   NOT NULL,
    value     text   NOT NULL,
    clusters  bigint NOT NULL,
    nodes     bigint NOT NULL,
    PRIMARY KEY (day, dimension, value)
);

-- The views: the questions "how are our clusters used" without writing SQL
-- against the tables. Their columns differ from the first release's, on
-- purpose: an old collector starting against this database fails its
-- CREATE OR REPLACE VIEW (and retries, answering 503) instead of pointing
-- the views back at `reports`.
DROP VIEW IF EXISTS clusters_daily, node_facts, cluster_latest;

CREATE VIEW cluster_latest AS
SELECT cluster_id, received_at, report, master_version, minor_version, distribution,
       volunteer_version, nodes, nodes_with_accelerators, accelerators, extensions
FROM clusters;

-- One row per node of each cluster's latest report.
CREATE VIEW node_facts AS
SELECT n.cluster_id, n.received_at, c.minor_version, c.master_version, c.distribution,
       n.kubelet_version, n.os_image, n.kernel_version, n.container_runtime_version,
       n.operating_system, n.architecture, n.cloud_provider, n.cpu_millicores,
       n.memory_bytes, n.ephemeral_storage_bytes, n.pods, n.accelerators
FROM cluster_nodes n
JOIN clusters c USING (cluster_id)
CROSS JOIN LATERAL generate_series(1, n.nodes) AS node;

-- One row per UTC day on which any cluster reported: distinct clusters, and
-- the nodes of each one's last report of the day, summed.
CREATE VIEW clusters_daily AS
SELECT a.day, a.clusters, a.nodes,
       coalesce(g.clusters, 0) AS clusters_with_accelerators,
       coalesce(g.nodes, 0) AS nodes_with_accelerators
FROM fleet_days a
LEFT JOIN fleet_days g ON g.day = a.day AND g.dimension = 'accelerators' AND g.value = ''
WHERE a.dimension = 'all' AND a.value = '';
