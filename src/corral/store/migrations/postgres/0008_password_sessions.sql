-- Logins issued before a user's password was last changed stop working: a JWT whose
-- iat is earlier than this (epoch seconds, whole) is refused.
ALTER TABLE users ADD COLUMN sessions_after double precision NOT NULL DEFAULT 0;
