-- Isolation and placement (issue 12).
-- What a pending job asks of the worker that claims it, copied out of the spec so a
-- claim can compare it with the claimer's free capacity. placed = 1 when any of them
-- is set: claims look at the (normally empty) placed queue before taking the fast path.
ALTER TABLE jobs ADD COLUMN req_cpus REAL;
ALTER TABLE jobs ADD COLUMN req_memory_mb INTEGER;
ALTER TABLE jobs ADD COLUMN no_network INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN placed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_placed ON jobs (seq) WHERE status = 'pending' AND placed = 1;
-- What a worker offers: CPUs for jobs (NULL: its cpu_count; memory_mb is the memory it
-- offers), how it isolates jobs, and whether it can cut a job's network.
ALTER TABLE executors ADD COLUMN cpus REAL;
ALTER TABLE executors ADD COLUMN isolation TEXT;
ALTER TABLE executors ADD COLUMN network_control INTEGER NOT NULL DEFAULT 0;
-- Processes of an attempt's cgroup still alive after its main process ended, killed.
ALTER TABLE attempts ADD COLUMN leftover_processes INTEGER;
