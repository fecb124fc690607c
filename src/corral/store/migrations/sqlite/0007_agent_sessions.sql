-- TaskDriver's agent sessions: an agent name logged in to one project.
-- The token is stored only as its SHA-256; expired rows are forgotten at later logins.
CREATE TABLE agent_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    agent_name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    last_activity REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agent_sessions_expiry ON agent_sessions (expires_at);
