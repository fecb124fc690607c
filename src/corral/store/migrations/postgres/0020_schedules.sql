-- Schedules (issue 15): cron expressions that submit a job per tick.
-- last_tick is the cursor: every tick at or before it has been decided (fired or
-- skipped) by exactly one transaction, which moved it with a compare-and-set.
-- next_fire_at is when the next tick falls due (with its jitter); NULL while paused.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    job TEXT NOT NULL,
    overlap TEXT NOT NULL CHECK (overlap IN ('allow', 'skip', 'cancel_previous')),
    catch_up TEXT NOT NULL CHECK (catch_up IN ('none', 'one')),
    jitter_seconds INTEGER NOT NULL DEFAULT 0,
    paused INTEGER NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    last_tick double precision NOT NULL,
    next_fire_at double precision
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
-- A fired job names its schedule and the tick it was fired for. The unique index is
-- the store's own guarantee of one job per tick, whichever replica fires it.
ALTER TABLE jobs ADD COLUMN schedule_id TEXT;
ALTER TABLE jobs ADD COLUMN scheduled_for double precision;
CREATE UNIQUE INDEX jobs_schedule_tick ON jobs (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL;
-- A schedule's unfinished runs, read before every tick of an overlap-checking
-- schedule: only the queue's few rows, however long its history grows.
CREATE INDEX jobs_schedule_unfinished ON jobs (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL AND status IN ('pending', 'running');
