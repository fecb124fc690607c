-- Accounts that log in with email and password (CMD Executor's /api/auth).
-- Emails are stored lower-cased by the service, so UNIQUE is case-insensitive in effect.
CREATE TABLE users (
    id text PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('admin', 'submitter', 'viewer')),
    disabled integer NOT NULL DEFAULT 0,
    created_at double precision NOT NULL
);

-- Logged-out JWTs, by jti, kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti text PRIMARY KEY,
    expires_at double precision NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- Values every replica must agree on, such as the JWT signing secret.
CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
