"""The pure rules of flow control: key and limit validation, the held reason, turns."""

from __future__ import annotations

import pytest

from corral.domain import concurrency, fairness
from corral.domain.concurrency import KeyUsage, held_reason
from corral.domain.jobs import JobSpec
from corral.errors import InvalidInput


@pytest.mark.parametrize(
    ("key", "limit", "field"),
    [
        (None, 2, "concurrency_limit"),
        ("", 1, "concurrency_key"),
        ("  ", 1, "concurrency_key"),
        ("a\tb", 1, "concurrency_key"),
        ("k" * 201, 1, "concurrency_key"),
        ("deploy", 0, "concurrency_limit"),
        ("deploy", 1001, "concurrency_limit"),
    ],
)
def test_bad_keys_and_limits_name_their_field(key: str | None, limit: int, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        JobSpec(command="true", concurrency_key=key, concurrency_limit=limit).validate()
    assert caught.value.context["field"] == field


def test_good_keys_and_limits_pass() -> None:
    for key, limit in ((None, 1), ("deploy-prod", 1), ("ünïcode key/with:marks", 1000)):
        JobSpec(command="true", concurrency_key=key, concurrency_limit=limit).validate()
    assert concurrency.MAX_LIMIT == 1000 and concurrency.DEFAULT_LIMIT == 1


def test_the_held_reason_names_the_key_and_who_holds_its_slots() -> None:
    full = KeyUsage("deploy", running=1, queued=0, held=3, limit=1)
    assert (
        held_reason("deploy", 1, full) == "concurrency key deploy is at its limit of 1 (1 running)"
    )
    starting = KeyUsage("deploy", running=1, queued=1, held=1, limit=2)
    assert held_reason("deploy", 2, starting) == (
        "concurrency key deploy is at its limit of 2 (1 running, 1 about to start)"
    )
    behind = KeyUsage("deploy", running=1, held=2, limit=1)
    assert held_reason("deploy", 3, behind) == (
        "waits its turn under concurrency key deploy (limit 3; 1 running)"
    )
    assert "concurrency key gone" in held_reason("gone", 1, None)


def test_an_owners_first_job_takes_the_turn_being_served() -> None:
    assert fairness.first_turn(None, None) == 0  # an empty queue
    assert fairness.first_turn(500, None) == 500  # a newcomer joins at the head
    assert fairness.first_turn(500, 19_999) == 20_000  # a backlog continues after itself
    assert fairness.first_turn(500, 100) == 500  # an owner left behind catches up to the head


def test_turns_count_on_within_each_share_and_priority() -> None:
    keys = [("a", 0), ("a", 0), ("b", 0), ("a", 2), ("a", 0)]
    bases = {("a", 0): 10, ("b", 0): 3, ("a", 2): 0}
    assert list(fairness.turns(keys, bases)) == [10, 11, 3, 0, 12]


def test_project_tasks_count_as_the_project_creator() -> None:
    assert fairness.share_of("token-1", None, None) == "token-1"
    assert fairness.share_of("agent-7", "p1", "admin-1") == "admin-1"
    assert fairness.share_of("agent-7", "p1", None) == "project:p1"
