-- Jobs, attempts, output chunks, idempotency keys, executors and API tokens.
-- Same tables and column names as the SQLite schema, so store/rows.py reads both.
-- Times are epoch seconds (double precision); flags are 0/1 integers like SQLite's.
CREATE TABLE jobs (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    type text NOT NULL,
    status text NOT NULL,
    priority integer NOT NULL,
    runnable integer NOT NULL,
    -- NULL for "no labels": the claim tests containment with jsonb's <@ without
    -- parsing text per row (SQLite keeps '' for that case).
    labels jsonb,
    spec text NOT NULL,
    owner_id text NOT NULL,
    project_id text,
    batch_id text,
    task_type_id text,
    max_retries integer NOT NULL,
    lease_seconds double precision NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    releases integer NOT NULL DEFAULT 0,
    executor_id text,
    executor_ip text,
    lease_principal_id text,
    run_after double precision NOT NULL DEFAULT 0,
    lease_expires_at double precision,
    created_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    exit_code integer,
    error_message text,
    result text,
    cancel_requested integer NOT NULL DEFAULT 0,
    stdout_size bigint NOT NULL DEFAULT 0,
    stdout_truncated integer NOT NULL DEFAULT 0,
    stderr_size bigint NOT NULL DEFAULT 0,
    stderr_truncated integer NOT NULL DEFAULT 0
);
-- The claim query walks this index in order: its cost does not grow with the queue.
CREATE INDEX jobs_queue ON jobs (priority DESC, seq) WHERE status = 'pending';
CREATE INDEX jobs_backoff ON jobs (run_after) WHERE status = 'pending' AND run_after > 0;
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_running_executor ON jobs (executor_id) WHERE status = 'running';
CREATE INDEX jobs_status ON jobs (status, seq);
CREATE INDEX jobs_project ON jobs (project_id, seq) WHERE project_id IS NOT NULL;
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE attempts (
    job_id text NOT NULL,
    number integer NOT NULL,
    executor_id text NOT NULL,
    executor_ip text,
    principal_id text,
    claimed_at double precision NOT NULL,
    ended_at double precision,
    status text NOT NULL,
    exit_code integer,
    error_message text,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE job_output (
    job_id text NOT NULL,
    attempt integer NOT NULL,
    stream text NOT NULL,
    "offset" bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (job_id, attempt, stream, "offset")
);

CREATE TABLE idempotency_keys (
    principal_id text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status_code integer NOT NULL,
    body bytea NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (principal_id, key)
);

CREATE TABLE executors (
    executor_id text PRIMARY KEY,
    principal_id text NOT NULL,
    hostname text,
    ip text,
    cpu_count integer,
    memory_mb bigint,
    os text,
    labels text NOT NULL DEFAULT '[]',
    concurrency integer NOT NULL DEFAULT 1,
    metadata text NOT NULL DEFAULT '{}',
    registered_at double precision NOT NULL,
    last_heartbeat double precision NOT NULL,
    draining integer NOT NULL DEFAULT 0,
    jobs_completed bigint NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id text PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    revoked integer NOT NULL DEFAULT 0
);
