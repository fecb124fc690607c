-- Issue 14 (CLI).
-- A job id typed as a prefix is found with `id >= ? AND id < ?` on the UNIQUE index jobs
-- already have (binary collation): no index is added for it here.
-- When each output chunk arrived, so `corral logs` shows stdout and stderr interleaved
-- in arrival order. The default stamps every insert (no writer names the column); SQLite
-- cannot add a column with such a default, so the table is rebuilt; rows stored before
-- this migration read 0 and sort first.
CREATE TABLE job_output_0015 (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    stream TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    data BLOB NOT NULL,
    arrived_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    PRIMARY KEY (job_id, attempt, stream, "offset")
) WITHOUT ROWID;
INSERT INTO job_output_0015 (job_id, attempt, stream, "offset", data, arrived_at)
    SELECT job_id, attempt, stream, "offset", data, 0 FROM job_output;
DROP TABLE job_output;
ALTER TABLE job_output_0015 RENAME TO job_output;
