-- Issue 14 (CLI): a job id typed as a prefix (`corral status 3f2a9c1e`) is found with
-- `id LIKE 'prefix%'`, which only a text_pattern_ops index serves under any collation.
CREATE INDEX jobs_id_pattern ON jobs (id text_pattern_ops);
