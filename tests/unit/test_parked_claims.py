"""Which waiting claims a submit takes (``services/handoff.py``): the oldest, enough of
them to cover its jobs, each taken once."""

from __future__ import annotations

from corral.domain.jobs import ClaimRequest
from corral.services.handoff import ParkedClaims


def request(executor: str, limit: int) -> ClaimRequest:
    return ClaimRequest(executor, "w", limit=limit)


async def test_a_submit_takes_the_oldest_claims_that_cover_its_jobs() -> None:
    parked = ParkedClaims()
    a, b, c = (parked.park(request(name, 2)) for name in "abc")
    assert parked.take(3) == [a, b]
    assert a.taken and b.taken and not c.taken
    assert parked.take(100) == [c]  # at least one, even if it covers fewer
    assert not parked and parked.take(1) == []


async def test_a_claim_that_left_is_not_taken() -> None:
    parked = ParkedClaims()
    a, b = parked.park(request("a", 1)), parked.park(request("b", 1))
    parked.leave(a)
    assert parked.take(1) == [b]


async def test_delivery_answers_each_taken_claim_once() -> None:
    parked = ParkedClaims()
    a, b = parked.park(request("a", 1)), parked.park(request("b", 1))
    taken = parked.take(2)
    parked.deliver(taken, None)  # the submit failed: nothing was leased
    assert a.handed.result() is None and b.handed.result() is None
