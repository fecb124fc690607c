-- TaskDriver's projects and task types; tasks are jobs carrying project_id and task_type_id.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    instructions TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'closed')),
    config TEXT NOT NULL DEFAULT '{}',
    agent_login INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX projects_created ON projects (created_at, id);

CREATE TABLE task_types (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    template TEXT NOT NULL DEFAULT '',
    variables TEXT NOT NULL DEFAULT '[]',
    duplicate_handling TEXT NOT NULL CHECK (duplicate_handling IN ('ignore', 'allow', 'fail')),
    max_retries INTEGER,
    lease_minutes REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (project_id, name)
);

-- Set only for tasks of an 'ignore' or 'fail' type: the index is what makes a racing
-- duplicate lose, whichever replica inserts it.
ALTER TABLE jobs ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX jobs_dedupe ON jobs (project_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX jobs_task_type ON jobs (task_type_id, seq) WHERE task_type_id IS NOT NULL;
-- The stats view's "last hour" looks at a project's recently finished tasks only.
CREATE INDEX jobs_project_finished ON jobs (project_id, finished_at)
    WHERE project_id IS NOT NULL AND finished_at IS NOT NULL;
