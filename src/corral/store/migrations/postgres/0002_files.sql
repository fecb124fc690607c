-- Uploaded input archives and job artifacts, stored as 1 MiB chunks.
-- A row with sha256 = '' is an upload still arriving; its expires_at is a short
-- provisional deadline, so a crashed upload is swept like an expired file.
CREATE TABLE files (
    id text PRIMARY KEY,
    owner_id text NOT NULL,
    filename text NOT NULL,
    size bigint NOT NULL DEFAULT 0,
    sha256 text NOT NULL DEFAULT '',
    content_type text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    job_id text,
    attempt integer,
    path text
);
CREATE INDEX files_expiry ON files (expires_at);
CREATE INDEX files_job ON files (job_id, attempt, path) WHERE job_id IS NOT NULL;

CREATE TABLE file_chunks (
    file_id text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);
