"""Why a pending job waits: the reason no online worker could ever take it.

Computed on read from the workers online now, never stored: it changes the moment
a fitting worker registers. A job some online worker could take (once its running
jobs end) has no reason; one asking what none offers says which of its demands is
the first that nobody meets: labels, then a network cut, then CPUs, then memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.domain.jobs import JobSpec
from corral.domain.workers import ExecutorInfo


def pending_reason(spec: JobSpec, online: Sequence[ExecutorInfo]) -> str | None:
    """The first demand of ``spec`` that no worker in ``online`` can meet, in words."""
    if not online:
        return "no worker is online"
    fitting = [w for w in online if set(spec.labels) <= set(w.labels)]
    if not fitting:
        return _labels_reason(spec.labels, online)
    if not spec.network:
        fitting = [w for w in fitting if w.network_control]
        if not fitting:
            return "needs a worker that can cut its network; no online worker can"
    res = spec.resources
    if res is not None and res.cpus is not None:
        largest = max(w.cpu_capacity for w in fitting)
        if res.cpus > largest + 1e-9:
            return f"needs {res.cpus:g} CPUs; the largest online worker has {largest:g}"
        fitting = [w for w in fitting if res.cpus <= w.cpu_capacity + 1e-9]
    if res is not None and res.memory_mb is not None:
        most = max(w.memory_capacity for w in fitting)
        if res.memory_mb > most:
            return f"needs {res.memory_mb} MiB of memory; the largest online worker has {most} MiB"
    return None


def _labels_reason(labels: Sequence[str], online: Sequence[ExecutorInfo]) -> str:
    offered = {label for w in online for label in w.labels}
    for label in sorted(labels):
        if label not in offered:
            return f"no online worker has label {label}"
    return f"no online worker has all the labels {', '.join(sorted(labels))}"
