"""The PostgreSQL claim of jobs that ask for resources or for no network (issue 12).

The ordinary claim (``postgres.sql.CLAIM``) refuses to run while any such job
waits, so it never has to read capacity; when it comes back empty and the
(normally empty) ``jobs_placed`` index has rows, the claim takes this path. Here
the executor's row is locked first, in its own statement: two claims for one
executor queue on it, and under READ COMMITTED the claim statement that follows
takes its snapshot after the lock is granted, so it sees every job the other
claim leased. That is what keeps racing claims from overcommitting one worker.
"""

from __future__ import annotations

from typing import Any

from corral.store.postgres.sql import CLOCK, lease_picked

ANY_PLACED = "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND placed = 1)"

# $1 executor, $2 principal, $3 ip, $4 now (None: the database's). Records the
# executor as seen and holds its row until the claim commits.
LOCK_EXECUTOR = f"""
INSERT INTO executors (executor_id, principal_id, ip, registered_at, last_heartbeat, registered)
SELECT $1, $2, $3, t, t, false FROM (SELECT {CLOCK.replace("$1", "$4")} AS t) AS clock
ON CONFLICT (executor_id) DO UPDATE SET last_heartbeat = excluded.last_heartbeat,
  ip = coalesce(excluded.ip, executors.ip)
RETURNING coalesce(cpus, cpu_count, 0)::float8 AS cpus, coalesce(memory_mb, 0) AS memory_mb,
  network_control
"""

# $1 now, $2 labels, $3 least runnable, $4 project, $5 limit, $6 executor, $7 ip,
# $8 principal (as CLAIM), $9 CPUs offered, $10 memory offered, $11 network control.
# Free capacity is what is offered minus what the executor's running jobs reserve;
# candidates must each fit it, then, in queue order, their running total must.
CLAIM_PLACED = f"""
WITH clock AS (SELECT {CLOCK} AS t), free AS (
  SELECT $9::float8 - coalesce(sum(req_cpus), 0) AS cpus,
         $10::int8 - coalesce(sum(req_memory_mb), 0) AS memory_mb
  FROM jobs WHERE status = 'running' AND executor_id = $6
), picked AS (
  SELECT seq AS picked_seq, priority AS p, turn AS tn, req_cpus AS rc, req_memory_mb AS rm
  FROM jobs
  WHERE status = 'pending' AND run_after <= (SELECT t FROM clock)
    AND (labels IS NULL OR labels <@ $2::jsonb)
    AND runnable >= $3::integer
    AND ($4::text IS NULL OR project_id = $4)
    AND (placed = 0 OR (
      (req_cpus IS NULL OR req_cpus <= (SELECT cpus FROM free) + 1e-9)
      AND (req_memory_mb IS NULL OR req_memory_mb <= (SELECT memory_mb FROM free))
      AND (no_network = 0 OR $11::integer = 1)))
  ORDER BY priority DESC, turn, seq
  LIMIT $5
  FOR UPDATE SKIP LOCKED
), totals AS (
  SELECT picked_seq, rc, rm,
    sum(coalesce(rc, 0)) OVER w AS used_cpus, sum(coalesce(rm, 0)) OVER w AS used_memory_mb
  FROM picked WINDOW w AS (ORDER BY p DESC, tn, picked_seq ROWS UNBOUNDED PRECEDING)
), fitting AS (
  SELECT picked_seq FROM totals, free
  WHERE (rc IS NULL OR used_cpus <= free.cpus + 1e-9)
    AND (rm IS NULL OR used_memory_mb <= free.memory_mb)
), {lease_picked("fitting")}"""


async def claim_placed(conn: Any, args: tuple[Any, ...]) -> list[Any]:
    """Lock the executor, then claim within its free capacity; ``conn`` is in a
    transaction and ``args`` are CLAIM's eight arguments."""
    now, executor, ip, principal = args[0], args[5], args[6], args[7]
    offer = await conn.fetchrow(LOCK_EXECUTOR, executor, principal, ip, now)
    rows: list[Any] = await conn.fetch(
        CLAIM_PLACED, *args, offer["cpus"], offer["memory_mb"], offer["network_control"]
    )
    return rows
