-- Tokens people can manage (issue 14): an optional expiry, when the token was last used
-- (written at most once a minute per token, never on every request), and the user a
-- personal token belongs to (it acts as that user, with the user's current role).
ALTER TABLE api_tokens ADD COLUMN expires_at REAL;
ALTER TABLE api_tokens ADD COLUMN last_used_at REAL;
ALTER TABLE api_tokens ADD COLUMN user_id TEXT;
CREATE INDEX api_tokens_user ON api_tokens (user_id) WHERE user_id IS NOT NULL;
