-- Flow control: concurrency keys and fair share (docs/flow-control.md).
--
-- Concurrency keys (domain/concurrency.py). A keyed job is stored 'held' (read back
-- as pending, outside jobs_queue) until its key has a free slot; a slot is a keyed job
-- that is 'pending' (admitted) or 'running'. So at most concurrency_limit jobs of a key
-- are ever claimable, and the claim query needs no change: jobs without a key pay
-- nothing. The triggers below admit the next held jobs whenever a slot frees or a job
-- becomes held; the single writer serialises them, which makes admission atomic.
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE jobs ADD COLUMN concurrency_limit INTEGER;
-- Fair share (domain/fairness.py): the turn a job is served in among the jobs of its
-- priority, and whose share it counts against (its owner, or its project's creator).
-- Jobs stored before this migration keep turn 0, so they stay in their old order.
ALTER TABLE jobs ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN share_id TEXT;
ALTER TABLE projects ADD COLUMN created_by TEXT;

-- The claim walks this index in order: priority, then turn, then age.
DROP INDEX jobs_queue;
CREATE INDEX jobs_queue ON jobs (priority DESC, turn, seq) WHERE status = 'pending';
-- An owner's last pending turn at a priority, read once per owner and priority per insert.
CREATE INDEX jobs_share ON jobs (share_id, priority, turn) WHERE status = 'pending';
-- A key's held jobs, best first, and its taken slots: both empty for keyless jobs.
CREATE INDEX jobs_held ON jobs (concurrency_key, priority DESC, turn, seq)
    WHERE status = 'held';
CREATE INDEX jobs_key_slots ON jobs (concurrency_key)
    WHERE status IN ('pending', 'running') AND concurrency_key IS NOT NULL;
-- A held run of a schedule is unfinished too.
DROP INDEX jobs_schedule_unfinished;
CREATE INDEX jobs_schedule_unfinished ON jobs (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL AND status IN ('pending', 'held', 'running');

-- A keyed job that becomes pending from anything but a slot (its dependencies were
-- met, a reaped attempt was handed back after the job failed) goes through the gate.
CREATE TRIGGER jobs_key_gate AFTER UPDATE OF status ON jobs
WHEN NEW.concurrency_key IS NOT NULL AND NEW.status = 'pending'
  AND OLD.status NOT IN ('pending', 'running', 'held')
BEGIN
  UPDATE jobs SET status = 'held' WHERE seq = NEW.seq;
END;

-- A slot freed (a pending or running keyed job ended) or a job became held: admit the
-- best held jobs of the key while the first one's limit leaves room (the store runs
-- the same statement for each key of a batch it inserts, once the batch is in). A job requeued
-- for another attempt (running -> pending) keeps its slot and fires nothing.
CREATE TRIGGER jobs_key_admit AFTER UPDATE OF status ON jobs
WHEN NEW.concurrency_key IS NOT NULL
  AND ((OLD.status IN ('pending', 'running') AND NEW.status NOT IN ('pending', 'running'))
    OR (NEW.status = 'held' AND OLD.status <> 'held'))
BEGIN
  UPDATE jobs SET status = 'pending' WHERE status = 'held' AND seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_held
    WHERE status = 'held' AND concurrency_key = NEW.concurrency_key
    ORDER BY priority DESC, turn, seq
    LIMIT max(0, coalesce((
        SELECT concurrency_limit FROM jobs INDEXED BY jobs_held
        WHERE status = 'held' AND concurrency_key = NEW.concurrency_key
        ORDER BY priority DESC, turn, seq LIMIT 1), 0)
      - (SELECT count(*) FROM jobs INDEXED BY jobs_key_slots
         WHERE status IN ('pending', 'running') AND concurrency_key = NEW.concurrency_key)));
END;

