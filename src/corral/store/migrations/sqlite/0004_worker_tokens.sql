-- Worker tokens scoped to one executor (CMD Executor's x-worker-token), and the
-- status a worker last reported about itself (idle, busy, error).
ALTER TABLE api_tokens ADD COLUMN executor_id TEXT;
CREATE INDEX api_tokens_executor ON api_tokens (executor_id) WHERE executor_id IS NOT NULL;
ALTER TABLE executors ADD COLUMN reported_status TEXT;
