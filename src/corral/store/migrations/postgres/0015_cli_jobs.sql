-- Issue 14 (CLI).
-- A job id typed as a prefix (`corral status 3f2a9c1e`) is found with `id LIKE 'prefix%'`,
-- which only a text_pattern_ops index serves under any collation.
CREATE INDEX jobs_id_pattern ON jobs (id text_pattern_ops);
-- When each output chunk arrived, so `corral logs` shows stdout and stderr interleaved
-- in arrival order. The default stamps every insert (no writer names the column);
-- rows stored before this migration read 0 and sort first.
ALTER TABLE job_output ADD COLUMN arrived_at double precision NOT NULL DEFAULT 0;
ALTER TABLE job_output ALTER COLUMN arrived_at
    SET DEFAULT extract(epoch FROM clock_timestamp())::double precision;
