-- Issue 14 (CLI): a job id typed as a prefix is found with `id >= ? AND id < ?` on the
-- UNIQUE index jobs already have (binary collation), so no index is added here.
SELECT 1;
