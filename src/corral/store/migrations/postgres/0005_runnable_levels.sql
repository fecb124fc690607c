-- jobs.runnable becomes a level: 0 nothing to execute, 1 a binary, 2 a shell command,
-- so CMD Executor workers (shell lines only) can claim with "runnable >= 2".
UPDATE jobs SET runnable = 2 WHERE runnable = 1 AND (spec::jsonb ->> 'command') IS NOT NULL;
