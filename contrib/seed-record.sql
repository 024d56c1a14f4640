-- The seed Go collector's PostgreSQL table, `record`, as JSON Lines for
-- `spartakus-collector import`: one report per line, in the order stored.
--
--   psql "$SEED_DB_URL" -X -At -v ON_ERROR_STOP=1 -f contrib/seed-record.sql > seed.jsonl
--
-- The seed (kubernetes-retired/spartakus, pkg/collector/repo_db.go) stored
-- metadata and payload as bytea holding JSON, and created_at in unix
-- seconds; its metadata already held received_at and received_from (the
-- X-Real-IP header, maybe empty). Its first version also kept account_id
-- and account_secret columns: they are never read. The payload is cast to
-- json, not jsonb, so its text stays as sent. Where `\d record` shows text
-- or json columns instead of bytea, put `metadata::text` and
-- `payload::text` in place of the convert_from calls.
SELECT json_build_object(
    'metadata', m || jsonb_build_object(
        'received_at', coalesce(m ->> 'received_at', created_at::text),
        'received_from', coalesce(m ->> 'received_from', '')),
    'payload', p)
FROM (SELECT id, created_at,
             coalesce(nullif(convert_from(metadata, 'UTF8'), 'null')::jsonb, '{}') AS m,
             convert_from(payload, 'UTF8')::json AS p
      FROM record) AS r
ORDER BY id;
