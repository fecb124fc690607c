"""Placement's pure parts (issue 12): the reason a job waits, resource validation,
and what a worker offers at registration."""

from __future__ import annotations

import pytest

from corral.agent.machine import capacity_offer
from corral.domain.jobs import JobSpec, Resources
from corral.domain.placement import pending_reason
from corral.domain.workers import ExecutorInfo
from corral.errors import InvalidInput


def worker(**fields: object) -> ExecutorInfo:
    return ExecutorInfo(executor_id="w", principal_id="p", **fields)  # type: ignore[arg-type]


def spec(**fields: object) -> JobSpec:
    return JobSpec(command="true", **fields)  # type: ignore[arg-type]


def test_item_placement_reasons_name_the_first_unmet_demand() -> None:
    small = worker(labels=("x86",), cpu_count=2, memory_mb=512)
    assert pending_reason(spec(), []) == "no worker is online"
    assert pending_reason(spec(labels=("arm64",)), [small]) == "no online worker has label arm64"
    both = [worker(labels=("a",)), worker(labels=("b",))]
    assert pending_reason(spec(labels=("a", "b")), both) == (
        "no online worker has all the labels a, b"
    )
    assert pending_reason(spec(network=False), [small]) == (
        "needs a worker that can cut its network; no online worker can"
    )
    assert pending_reason(spec(resources=Resources(cpus=64)), [small]) == (
        "needs 64 CPUs; the largest online worker has 2"
    )
    assert pending_reason(spec(resources=Resources(memory_mb=4096)), [small]) == (
        "needs 4096 MiB of memory; the largest online worker has 512 MiB"
    )
    fits = spec(labels=("x86",), resources=Resources(cpus=2, memory_mb=512, pids=5))
    assert pending_reason(fits, [small]) is None


def test_item_placement_cpus_and_memory_must_fit_one_worker() -> None:
    cpu_box = worker(cpus=16.0, memory_mb=100)
    memory_box = worker(cpus=1.0, memory_mb=10_000)
    wanted = spec(resources=Resources(cpus=8, memory_mb=5000))
    assert pending_reason(wanted, [cpu_box, memory_box]) == (
        "needs 5000 MiB of memory; the largest online worker has 100 MiB"
    )


@pytest.mark.parametrize(
    "resources",
    [Resources(cpus=0), Resources(cpus=10_000), Resources(memory_mb=0), Resources(pids=0)],
)
def test_item_placement_resources_out_of_range_are_refused(resources: Resources) -> None:
    with pytest.raises(InvalidInput):
        spec(resources=resources).validate()


def test_item_placement_placed_only_when_something_is_reserved() -> None:
    assert not spec().placed
    assert not spec(resources=Resources(pids=10)).placed
    assert spec(resources=Resources(memory_mb=1)).placed
    assert spec(network=False).placed


def test_item_placement_worker_offers_the_machine_unless_told() -> None:
    offer = capacity_offer(None, None)
    assert offer["cpus"] >= 1 and offer["memory_mb"] > 0
    assert capacity_offer(1.5, 256) == {"cpus": 1.5, "memory_mb": 256}
