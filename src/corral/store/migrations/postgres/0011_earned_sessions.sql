-- Agent credentials (issue 11, items 16, 17 and 20).
-- An API token with the agent role is bound to one project.
ALTER TABLE api_tokens ADD COLUMN project_id text;
-- The token or account an agent session was earned with (NULL: an open login); leases
-- taken under it may be resumed only by sessions earned with the same credential.
ALTER TABLE agent_sessions ADD COLUMN credential_id text;
-- Agent logins without a credential, only where an admin opened them.
ALTER TABLE projects ADD COLUMN open_agent_login INTEGER NOT NULL DEFAULT 0;
-- A counter carried in every login JWT: a password reset or disabling the user moves it
-- on, which ends every earlier login at once, even one issued within the same second.
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
