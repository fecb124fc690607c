-- TaskDriver's agent sessions: an agent name logged in to one project.
-- The token is stored only as its SHA-256; expired rows are forgotten at later logins.
CREATE TABLE agent_sessions (
    id text PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    agent_name text NOT NULL,
    project_id text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    last_activity double precision NOT NULL,
    revoked integer NOT NULL DEFAULT 0
);
CREATE INDEX agent_sessions_expiry ON agent_sessions (expires_at);
