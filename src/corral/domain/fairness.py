"""Fair share: among jobs of one priority, owners are served in turn.

Each job gets a *turn* when it is stored, and claims take jobs by priority, then
turn, then age (``seq``). An owner's first job takes the turn now being served at
its priority (the turn of the first job there that is due); each further job of
that owner takes the turn after the owner's last pending one:

    turn = max(head, last + 1)     head: first due pending turn at the priority
                                   last: the owner's highest pending turn there

So one owner's 20,000-job backlog holds turns head .. head + 19,999, and another
owner who submits afterwards gets ``head``: their job is claimed within a claim or
two, not after the backlog. Two owners with backlogs alternate. Within one owner
jobs keep their submission order, and priorities still come first.

The turn is fixed at insertion (a retried or released job keeps it), so a claim
is a plain walk of one index, (priority, turn, seq), whatever the queue holds.
"Owner" is the submitting user or token; a TaskDriver project's tasks count as
the project's creator (``share_of``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def first_turn(head: int | None, last: int | None) -> int:
    """The turn of an owner's next job: ``head`` is the first due pending turn at the
    job's priority (None: none pending), ``last`` the owner's highest (None: none)."""
    following = 0 if last is None else last + 1
    return max(head or 0, following)


def turns(keys: Iterable[tuple[str, int]], bases: dict[tuple[str, int], int]) -> Iterator[int]:
    """Turns for jobs in submission order, each given as (share, priority): the
    group's first turn from ``bases``, then one more for each further job of it."""
    given: dict[tuple[str, int], int] = {}
    for key in keys:
        n = given.get(key, 0)
        given[key] = n + 1
        yield bases[key] + n


def share_of(owner_id: str, project_id: str | None, project_creator: str | None) -> str:
    """Whose share a job counts against: a project's tasks count as its creator (a
    project made before creators were recorded counts as itself), others as their
    owner."""
    if project_id is None:
        return owner_id
    return project_creator or f"project:{project_id}"
