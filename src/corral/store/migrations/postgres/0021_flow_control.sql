-- Flow control: concurrency keys and fair share (docs/flow-control.md); the same
-- columns, indexes and rules as the SQLite script, whose comments explain them.
ALTER TABLE jobs ADD COLUMN concurrency_key text;
ALTER TABLE jobs ADD COLUMN concurrency_limit integer;
ALTER TABLE jobs ADD COLUMN turn bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN share_id text;
ALTER TABLE projects ADD COLUMN created_by text;

DROP INDEX jobs_queue;
CREATE INDEX jobs_queue ON jobs (priority DESC, turn, seq) WHERE status = 'pending';
CREATE INDEX jobs_share ON jobs (share_id, priority, turn) WHERE status = 'pending';
CREATE INDEX jobs_held ON jobs (concurrency_key, priority DESC, turn, seq)
    WHERE status = 'held';
CREATE INDEX jobs_key_slots ON jobs (concurrency_key)
    WHERE status IN ('pending', 'running') AND concurrency_key IS NOT NULL;
DROP INDEX jobs_schedule_unfinished;
CREATE INDEX jobs_schedule_unfinished ON jobs (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL AND status IN ('pending', 'held', 'running');

-- Admissions of one key are serialised by a transaction-scoped advisory lock on the
-- key's hash (class 0x636f7272, "corr"; the two-integer lock space is apart from the
-- migration lock's). Under READ COMMITTED each statement below takes its snapshot
-- after the lock is granted, so it counts every slot the previous holder took or
-- freed: two transactions can never both admit into the same free slot. Statements
-- touching several keys lock them in hash order first (corral_lock_keys), so two
-- such transactions cannot wait on each other in a cycle.
CREATE FUNCTION corral_lock_keys(keys text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1668248178, h)
  FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(keys) AS u(k)
        WHERE k IS NOT NULL ORDER BY 1) AS s;
END $$;

CREATE FUNCTION corral_admit(k text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  lim integer;
  taken integer;
BEGIN
  PERFORM pg_advisory_xact_lock(1668248178, hashtext(k));
  SELECT concurrency_limit INTO lim FROM jobs
  WHERE status = 'held' AND concurrency_key = k
  ORDER BY priority DESC, turn, seq LIMIT 1;
  IF lim IS NULL THEN
    RETURN;
  END IF;
  SELECT count(*) INTO taken FROM jobs
  WHERE status IN ('pending', 'running') AND concurrency_key = k;
  IF taken >= lim THEN
    RETURN;
  END IF;
  -- SKIP LOCKED: a held job being cancelled meanwhile is passed over, not waited for
  -- and then counted as admitted; the status test keeps a job that stopped being held
  -- after this statement's snapshot (cancelled) from being brought back. ARRAY(...)
  -- picks once: as an IN (...) subquery, rescanned per row, the rows this statement
  -- updated would be skipped as locked, and each rescan would pick further jobs.
  UPDATE jobs SET status = 'pending' WHERE status = 'held' AND seq = ANY(ARRAY(
    SELECT seq FROM jobs WHERE status = 'held' AND concurrency_key = k
    ORDER BY priority DESC, turn, seq LIMIT lim - taken FOR UPDATE SKIP LOCKED));
END $$;

CREATE FUNCTION corral_key_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.status := 'held';
  RETURN NEW;
END $$;
CREATE TRIGGER jobs_key_gate BEFORE UPDATE OF status ON jobs
FOR EACH ROW
WHEN (NEW.concurrency_key IS NOT NULL AND NEW.status = 'pending'
  AND OLD.status NOT IN ('pending', 'running', 'held'))
EXECUTE FUNCTION corral_key_gate();

CREATE FUNCTION corral_key_admit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM corral_admit(NEW.concurrency_key);
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_key_admit AFTER UPDATE OF status ON jobs
FOR EACH ROW
WHEN (NEW.concurrency_key IS NOT NULL
  AND ((OLD.status IN ('pending', 'running') AND NEW.status NOT IN ('pending', 'running'))
    OR (NEW.status = 'held' AND OLD.status <> 'held')))
EXECUTE FUNCTION corral_key_admit();
