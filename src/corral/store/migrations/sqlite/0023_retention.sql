-- Retention: finished jobs are deleted once past their age (docs/flow-control.md).
-- A job's own retention, copied out of its spec (retention_days) so a purge can find
-- the jobs past it: NULL follows the server's --retention, 0 keeps the job for ever.
ALTER TABLE jobs ADD COLUMN retention_days INTEGER;
-- The purge's two walks, oldest first: jobs on the server's age by their finish, and
-- jobs on their own age by their expiry. The status list is spelt as the purge's
-- query spells it (store/retention_port.py), so the planner can use these indexes.
CREATE INDEX jobs_finished ON jobs (finished_at, seq)
    WHERE status IN ('completed', 'failed', 'cancelled') AND retention_days IS NULL;
CREATE INDEX jobs_expiring ON jobs ((finished_at + retention_days * 86400), seq)
    WHERE status IN ('completed', 'failed', 'cancelled') AND retention_days > 0;
-- The job an idempotency record answered with: deleting the job frees its key.
ALTER TABLE idempotency_keys ADD COLUMN job_id TEXT;
CREATE INDEX idempotency_keys_job ON idempotency_keys (job_id) WHERE job_id IS NOT NULL;
