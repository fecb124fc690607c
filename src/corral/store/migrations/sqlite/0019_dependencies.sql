-- Dependencies and workflows (issue 15).
-- A job that waits for others is stored with status 'blocked' (the API shows it as
-- pending with "blocked": true): it is outside jobs_queue and jobs_placed, whose
-- predicate is status = 'pending', so claims never scan it.
-- run_if: NULL when the job depends on nothing. deps_left: dependencies not finished;
-- deps_bad: dependencies failed or cancelled (domain/dependencies.py). dependants: how
-- many jobs wait for this one (the trigger below looks only at jobs where it is > 0).
ALTER TABLE jobs ADD COLUMN run_if TEXT;
ALTER TABLE jobs ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN deps_bad INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN dependants INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN workflow_id TEXT;
CREATE INDEX jobs_workflow ON jobs (workflow_id, seq) WHERE workflow_id IS NOT NULL;

CREATE TABLE job_deps (
    job_id TEXT NOT NULL,      -- the dependant
    depends_on TEXT NOT NULL,  -- the job it waits for
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX job_deps_parent ON job_deps (depends_on, job_id);

CREATE TABLE workflows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    keys TEXT NOT NULL  -- JSON object: the request's key -> job id
);

-- When a job with dependants ends, in the same transaction: count it on each blocked
-- dependant, cancel those whose run_if can no longer hold (naming this job), and make
-- claimable those whose last dependency this was. The table is domain.dependencies's
-- decide(); a cancel fires this trigger again one level down (recursive_triggers is on
-- for every connection), which is the cascade. It watches finished_at, which every
-- statement that ends a job sets, and not status, so that a claim (pending -> running,
-- no finished_at) does not even evaluate it.
CREATE TRIGGER jobs_settle_dependants AFTER UPDATE OF finished_at ON jobs
WHEN NEW.dependants > 0
  AND NEW.status IN ('completed', 'failed', 'cancelled')
  AND OLD.status NOT IN ('completed', 'failed', 'cancelled')
BEGIN
  UPDATE jobs SET deps_left = deps_left - 1,
    deps_bad = deps_bad + (NEW.status <> 'completed')
  WHERE status = 'blocked' AND id IN (SELECT job_id FROM job_deps WHERE depends_on = NEW.id);
  UPDATE jobs SET status = 'cancelled',
    finished_at = coalesce(NEW.finished_at, (julianday('now') - 2440587.5) * 86400.0),
    error_message = CASE WHEN run_if = 'failure'
      THEN 'not run: every dependency completed (the last was ' || NEW.id || ')'
      ELSE 'not run: dependency ' || NEW.id || ' ' || NEW.status END
  WHERE status = 'blocked' AND id IN (SELECT job_id FROM job_deps WHERE depends_on = NEW.id)
    AND ((run_if = 'success' AND deps_bad > 0)
      OR (run_if = 'failure' AND deps_left = 0 AND deps_bad = 0));
  UPDATE jobs SET status = 'pending'
  WHERE status = 'blocked' AND deps_left = 0
    AND id IN (SELECT job_id FROM job_deps WHERE depends_on = NEW.id);
END;
