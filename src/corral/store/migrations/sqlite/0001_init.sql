-- Jobs, attempts, output chunks, idempotency keys, executors and API tokens.
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    runnable INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    project_id TEXT,
    batch_id TEXT,
    task_type_id TEXT,
    max_retries INTEGER NOT NULL,
    lease_seconds REAL NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    releases INTEGER NOT NULL DEFAULT 0,
    executor_id TEXT,
    executor_ip TEXT,
    lease_principal_id TEXT,
    run_after REAL NOT NULL DEFAULT 0,
    lease_expires_at REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    exit_code INTEGER,
    error_message TEXT,
    result TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stdout_size INTEGER NOT NULL DEFAULT 0,
    stdout_truncated INTEGER NOT NULL DEFAULT 0,
    stderr_size INTEGER NOT NULL DEFAULT 0,
    stderr_truncated INTEGER NOT NULL DEFAULT 0
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
    job_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    executor_id TEXT NOT NULL,
    executor_ip TEXT,
    principal_id TEXT,
    claimed_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    error_message TEXT,
    PRIMARY KEY (job_id, number)
) WITHOUT ROWID;

CREATE TABLE job_output (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    stream TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, attempt, stream, "offset")
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    principal_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (principal_id, key)
) WITHOUT ROWID;

CREATE TABLE executors (
    executor_id TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL,
    hostname TEXT,
    ip TEXT,
    cpu_count INTEGER,
    memory_mb INTEGER,
    os TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    concurrency INTEGER NOT NULL DEFAULT 1,
    metadata TEXT NOT NULL DEFAULT '{}',
    registered_at REAL NOT NULL,
    last_heartbeat REAL NOT NULL,
    draining INTEGER NOT NULL DEFAULT 0,
    jobs_completed INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
