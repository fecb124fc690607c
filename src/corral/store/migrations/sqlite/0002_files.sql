-- Uploaded input archives and job artifacts, stored as 1 MiB chunks.
-- A row with sha256 = '' is an upload still arriving; its expires_at is a short
-- provisional deadline, so a crashed upload is swept like an expired file.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    content_type TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    job_id TEXT,
    attempt INTEGER,
    path TEXT
);
CREATE INDEX files_expiry ON files (expires_at);
CREATE INDEX files_job ON files (job_id, attempt, path) WHERE job_id IS NOT NULL;

CREATE TABLE file_chunks (
    file_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (file_id, seq)
) WITHOUT ROWID;
