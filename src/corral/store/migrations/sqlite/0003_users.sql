-- Accounts that log in with email and password (CMD Executor's /api/auth).
-- Emails are stored lower-cased by the service, so UNIQUE is case-insensitive in effect.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'submitter', 'viewer')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);

-- Logged-out JWTs, by jti, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- Values every replica must agree on, such as the JWT signing secret.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
