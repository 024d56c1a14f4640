-- spartakus schema: the source of truth for what the collector stores.
-- The collector applies this file on every start, under an advisory lock, so
-- every statement must be idempotent (IF NOT EXISTS, OR REPLACE).

CREATE TABLE IF NOT EXISTS reports (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- When the collector received the report (its clock, not the volunteer's).
    received_at   timestamptz NOT NULL,
    -- payload.clusterID: the volunteer's anonymous cluster id.
    cluster_id    text        NOT NULL,
    -- metadata.reportID, when the volunteer sent one: a retry of a stored
    -- report is acknowledged and not stored again.
    report_id     text        UNIQUE,
    -- The client address, as the collector's --received-from policy allows.
    received_from text        NOT NULL,
    -- The volunteer's metadata plus received_at and received_from, all strings.
    metadata      jsonb       NOT NULL,
    -- The report as the volunteer sent it.
    payload       jsonb       NOT NULL
);

-- "The latest report of each cluster": DISTINCT ON (cluster_id) ... ORDER BY
-- cluster_id, received_at DESC reads this index in order.
CREATE INDEX IF NOT EXISTS reports_cluster_latest ON reports (cluster_id, received_at DESC);

-- Time-range scans (dashboards, summaries, retention).
CREATE INDEX IF NOT EXISTS reports_received_at ON reports (received_at);
