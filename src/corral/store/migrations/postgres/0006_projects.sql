-- TaskDriver's projects and task types; tasks are jobs carrying project_id and task_type_id.
CREATE TABLE projects (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    instructions text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('active', 'closed')),
    config text NOT NULL DEFAULT '{}',
    agent_login integer NOT NULL DEFAULT 1,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);
CREATE INDEX projects_created ON projects (created_at, id);

CREATE TABLE task_types (
    id text PRIMARY KEY,
    project_id text NOT NULL,
    name text NOT NULL,
    template text NOT NULL DEFAULT '',
    variables text NOT NULL DEFAULT '[]',
    duplicate_handling text NOT NULL CHECK (duplicate_handling IN ('ignore', 'allow', 'fail')),
    max_retries integer,
    lease_minutes double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    UNIQUE (project_id, name)
);

-- Set only for tasks of an 'ignore' or 'fail' type: the index is what makes a racing
-- duplicate lose, whichever replica inserts it.
ALTER TABLE jobs ADD COLUMN dedupe_key text;
CREATE UNIQUE INDEX jobs_dedupe ON jobs (project_id, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX jobs_task_type ON jobs (task_type_id, seq) WHERE task_type_id IS NOT NULL;
-- The stats view's "last hour" looks at a project's recently finished tasks only.
CREATE INDEX jobs_project_finished ON jobs (project_id, finished_at)
    WHERE project_id IS NOT NULL AND finished_at IS NOT NULL;
