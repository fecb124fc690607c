"""Jobs that wait for other jobs: the run-if rule, and the shape of a workflow's graph.

A dependant counts its dependencies that have not finished (``left``) and those
that ended without completing (``bad``: failed or cancelled). ``decide`` turns the
two counts into a verdict:

    run_if    RUN when                      CANCEL when (as soon as it is certain)
    success   left == 0 and bad == 0        bad > 0
    failure   left == 0 and bad > 0         left == 0 and bad == 0
    always    left == 0                     never

Every verdict but ``CANCEL`` waits for the last dependency, so a dependant never
starts while something it names is still running. The stores apply this table in
the transaction that finishes a dependency (a trigger, so no path that ends a job
can forget it); ``tests/contract/test_dependencies.py`` checks the stores against
``decide`` case by case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from corral.errors import InvalidInput

MAX_DEPENDENCIES = 1000  # ids one job may name
MAX_WORKFLOW_JOBS = 2000  # jobs one workflow request may hold
_BAD = frozenset({"failed", "cancelled"})
_FINISHED = frozenset({"completed", "failed", "cancelled"})


class RunIf(StrEnum):
    SUCCESS = "success"  # every dependency completed
    FAILURE = "failure"  # at least one failed (or was cancelled)
    ALWAYS = "always"  # all finished, whatever the outcome


class Verdict(StrEnum):
    WAIT = "wait"
    RUN = "run"
    CANCEL = "cancel"


def decide(run_if: RunIf, left: int, bad: int) -> Verdict:
    """The verdict for a dependant, from its unfinished and its unsuccessful dependencies."""
    if run_if is RunIf.SUCCESS and bad > 0:
        return Verdict.CANCEL
    if left > 0:
        return Verdict.WAIT
    if run_if is RunIf.FAILURE and bad == 0:
        return Verdict.CANCEL
    return Verdict.RUN


def counts(statuses: Iterable[str]) -> tuple[int, int]:
    """(left, bad) for the given dependency statuses."""
    left = bad = 0
    for status in statuses:
        left += status not in _FINISHED
        bad += status in _BAD
    return left, bad


def cancel_reason(run_if: RunIf, decider_id: str, decider_status: str) -> str:
    """The ``error_message`` of a dependant cancelled without running: it names the
    dependency whose end decided it (the stores' trigger writes the same words)."""
    if run_if is RunIf.FAILURE:
        return f"not run: every dependency completed (the last was {decider_id})"
    return f"not run: dependency {decider_id} {decider_status}"


def decider(run_if: RunIf, parents: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """Which (id, status) of an already decided set of dependencies decided a cancel."""
    if run_if is RunIf.SUCCESS:
        return next(p for p in parents if p[1] in _BAD)
    return parents[-1]


def check_depends_on(ids: Sequence[str]) -> tuple[str, ...]:
    """Deduplicated ids, in order; at most ``MAX_DEPENDENCIES``."""
    unique = tuple(dict.fromkeys(ids))
    if len(unique) > MAX_DEPENDENCIES:
        raise InvalidInput(f"depends_on names at most {MAX_DEPENDENCIES} jobs", field="depends_on")
    if any(not isinstance(i, str) or not i for i in unique):
        raise InvalidInput("depends_on holds job ids", field="depends_on")
    return unique


def topological_order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Keys so that each comes after the keys it depends on (edges to names outside
    ``graph`` are ignored); ``InvalidInput`` naming the keys of a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if state.get(root) == 2:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            key, i = stack.pop()
            if i == 0:
                state[key] = 1
                path.append(key)
            inside = [p for p in graph[key] if p in graph]
            if i < len(inside):
                stack.append((key, i + 1))
                nxt = inside[i]
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise InvalidInput(
                        "depends_on makes a cycle: " + " -> ".join(cycle),
                        field="depends_on",
                        cycle=cycle,
                    )
                if state.get(nxt) != 2:
                    stack.append((nxt, 0))
                continue
            state[key] = 2
            path.pop()
            order.append(key)
    return order


def workflow_status(statuses: Sequence[str]) -> str:
    """A workflow's own status from its jobs': finished when all are (failed if any
    failed, else cancelled if any was, else completed); running once any has started."""
    if all(s in _FINISHED for s in statuses):
        if "failed" in statuses:
            return "failed"
        return "cancelled" if "cancelled" in statuses else "completed"
    if any(s != "pending" for s in statuses):
        return "running"
    return "pending"
