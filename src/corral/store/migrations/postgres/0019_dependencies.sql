-- Dependencies and workflows (issue 15); the same tables as the SQLite script, whose
-- comments explain them. A waiting job has status 'blocked', outside jobs_queue.
ALTER TABLE jobs ADD COLUMN run_if text;
ALTER TABLE jobs ADD COLUMN deps_left integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN deps_bad integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN dependants integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN workflow_id text;
CREATE INDEX jobs_workflow ON jobs (workflow_id, seq) WHERE workflow_id IS NOT NULL;

CREATE TABLE job_deps (
    job_id text NOT NULL,
    depends_on text NOT NULL,
    PRIMARY KEY (job_id, depends_on)
);
CREATE INDEX job_deps_parent ON job_deps (depends_on, job_id);

CREATE TABLE workflows (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    name text NOT NULL,
    owner_id text NOT NULL,
    created_at double precision NOT NULL,
    keys text NOT NULL
);

-- domain.dependencies.decide(), applied in the transaction that ends a dependency;
-- the cancel fires the trigger again one level down: the cascade. It watches
-- finished_at (set by every statement that ends a job, never by a claim).
CREATE FUNCTION corral_settle_dependants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE jobs SET deps_left = deps_left - 1,
    deps_bad = deps_bad + (NEW.status <> 'completed')::int
  WHERE status = 'blocked' AND id IN (SELECT job_id FROM job_deps WHERE depends_on = NEW.id);
  UPDATE jobs SET status = 'cancelled',
    finished_at = coalesce(NEW.finished_at, extract(epoch FROM clock_timestamp())),
    error_message = CASE WHEN run_if = 'failure'
      THEN 'not run: every dependency completed (the last was ' || NEW.id || ')'
      ELSE 'not run: dependency ' || NEW.id || ' ' || NEW.status END
  WHERE status = 'blocked' AND id IN (SELECT job_id FROM job_deps WHERE depends_on = NEW.id)
    AND ((run_if = 'success' AND deps_bad > 0)
      OR (run_if = 'failure' AND deps_left = 0 AND deps_bad = 0));
  UPDATE jobs SET status = 'pending'
  WHERE status = 'blocked' AND deps_left = 0
    AND id IN (SELECT job_id FROM job_deps WHERE depends_on = NEW.id);
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_settle_dependants AFTER UPDATE OF finished_at ON jobs
FOR EACH ROW
WHEN (NEW.dependants > 0
  AND NEW.status IN ('completed', 'failed', 'cancelled')
  AND OLD.status NOT IN ('completed', 'failed', 'cancelled'))
EXECUTE FUNCTION corral_settle_dependants();
