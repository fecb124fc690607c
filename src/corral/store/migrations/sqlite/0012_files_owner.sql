-- A user's upload quota sums the sizes of the files they own: one index range per check.
CREATE INDEX files_owner ON files (owner_id, expires_at);
