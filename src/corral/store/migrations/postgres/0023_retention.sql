-- Retention; the same columns and indexes as the SQLite script, whose comments
-- explain them.
ALTER TABLE jobs ADD COLUMN retention_days integer;
CREATE INDEX jobs_finished ON jobs (finished_at, seq)
    WHERE status IN ('completed', 'failed', 'cancelled') AND retention_days IS NULL;
CREATE INDEX jobs_expiring ON jobs ((finished_at + retention_days * 86400), seq)
    WHERE status IN ('completed', 'failed', 'cancelled') AND retention_days > 0;
ALTER TABLE idempotency_keys ADD COLUMN job_id text;
CREATE INDEX idempotency_keys_job ON idempotency_keys (job_id) WHERE job_id IS NOT NULL;
