"""Keyset pages of the jobs list: filters, cursors both ways, literal text, labels, order."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from corral.domain.jobs import Job, Outcome
from corral.domain.states import JobStatus
from corral.store.base import JobQuery, Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref


async def _seed(store: Store, count: int) -> list[int]:
    """``count`` jobs, ids job-000.., alternating labels; returns their seqs in order."""
    jobs = [
        new_job(
            f"job-{i:03d}",
            priority=i % 3,
            labels=("gpu", "linux") if i % 2 else ("linux",),
            command=f"echo {i}",
            project_id="proj" if i % 5 == 0 else None,
        )
        for i in range(count)
    ]
    return [j.seq for j in await store.insert_jobs(jobs)]


def ids(jobs: Sequence[Job]) -> list[str]:
    return [j.id for j in jobs]


async def test_first_page_is_newest_first_and_stable(store: Store) -> None:
    await _seed(store, 12)
    page = await store.page_jobs(JobQuery(), 5)
    assert ids(page) == [f"job-{i:03d}" for i in (11, 10, 9, 8, 7)]
    assert ids(await store.page_jobs(JobQuery(), 5)) == ids(page)


async def test_oldest_first_walks_up(store: Store) -> None:
    await _seed(store, 12)
    page = await store.page_jobs(JobQuery(newest_first=False), 4)
    assert ids(page) == ["job-000", "job-001", "job-002", "job-003"]


async def test_cursors_walk_both_ways_without_gaps_or_repeats(store: Store) -> None:
    seqs = await _seed(store, 23)
    seen: list[str] = []
    page = await store.page_jobs(JobQuery(), 5)
    while page:
        seen += ids(page)
        page = await store.page_jobs(JobQuery(before_seq=page[-1].seq), 5)
    assert seen == [f"job-{i:03d}" for i in reversed(range(23))]

    # Back towards newer jobs from a deep page: still shown newest first.
    newer = await store.page_jobs(JobQuery(after_seq=seqs[7]), 5)
    assert ids(newer) == [f"job-{i:03d}" for i in (12, 11, 10, 9, 8)]
    # Oldest first, walking back towards older jobs from a cursor.
    older = await store.page_jobs(JobQuery(before_seq=seqs[10], newest_first=False), 3)
    assert ids(older) == ["job-007", "job-008", "job-009"]
    window = await store.page_jobs(JobQuery(after_seq=seqs[2], before_seq=seqs[6]), 10)
    assert ids(window) == ["job-005", "job-004", "job-003"]


async def test_equality_filters(store: Store) -> None:
    await _seed(store, 20)
    high = await store.page_jobs(JobQuery(priority=2), 50)
    assert ids(high) == [f"job-{i:03d}" for i in reversed(range(20)) if i % 3 == 2]
    in_project = await store.page_jobs(JobQuery(project_id="proj"), 50)
    assert ids(in_project) == ["job-015", "job-010", "job-005", "job-000"]
    both = await store.page_jobs(JobQuery(project_id="proj", priority=0), 50)
    assert ids(both) == ["job-015", "job-000"]


async def test_status_and_worker_filters(store: Store) -> None:
    await _seed(store, 6)  # claims take the highest priority first: 2, 5, then 1, 4
    labels = frozenset({"gpu", "linux"})
    claimed = await store.claim(claim_request("exec-a", limit=2, labels=labels), NOW)
    other = await store.claim(claim_request("exec-b", limit=1, labels=labels), NOW)
    await store.finish(claimed[0].id, ref("exec-a"), Outcome(JobStatus.COMPLETED, 0), NOW, POLICY)

    running = await store.page_jobs(JobQuery(status=JobStatus.RUNNING), 50)
    assert ids(running) == sorted([claimed[1].id, other[0].id], reverse=True)
    done = await store.page_jobs(JobQuery(status=JobStatus.COMPLETED), 50)
    assert ids(done) == [claimed[0].id]
    on_a = await store.page_jobs(JobQuery(executor_id="exec-a"), 50)
    assert ids(on_a) == sorted(j.id for j in claimed)[::-1]
    running_on_b = await store.page_jobs(
        JobQuery(executor_id="exec-b", status=JobStatus.RUNNING), 50
    )
    assert ids(running_on_b) == [other[0].id]
    pending = await store.page_jobs(JobQuery(status=JobStatus.PENDING, before_seq=10**9), 50)
    assert len(pending) == 3


async def test_labels_match_whole_labels_only(store: Store) -> None:
    await _seed(store, 6)
    await store.insert_jobs([new_job("bare", command="echo gpu")])
    gpu = await store.page_jobs(JobQuery(label="gpu"), 50)
    assert ids(gpu) == ["job-005", "job-003", "job-001"]
    assert len(await store.page_jobs(JobQuery(label="linux"), 50)) == 6
    assert await store.page_jobs(JobQuery(label="gp"), 50) == []
    assert await store.page_jobs(JobQuery(label="lin%"), 50) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100%", ["pct"]),  # % is a character, not "anything"
        ("a_b", ["under"]),  # _ is a character, not "any one"
        ("\\", ["slash"]),
        ('say "hi"', ["quote"]),
        ("ECHO", ["quote", "slash", "under", "pct", "plain"]),  # case-insensitive
        ("ünï", ["unicode"]),
        ("nowhere", []),
    ],
)
async def test_text_matches_the_command_literally(
    store: Store, text: str, expected: list[str]
) -> None:
    await store.insert_jobs(
        [
            new_job("plain", command="echo 1000 axb"),
            new_job("pct", command="echo 100%"),
            new_job("under", command="echo a_b"),
            new_job("slash", command="echo a\\b"),
            new_job("quote", command='echo say "hi"'),
            new_job("unicode", command="printf ünïcode"),
            new_job("agent", command=None, instructions="echo 100% a_b"),
        ]
    )
    assert ids(await store.page_jobs(JobQuery(text=text), 50)) == expected


async def test_text_ignores_the_rest_of_the_spec(store: Store) -> None:
    await store.insert_jobs(
        [new_job("labelled", command="true", labels=("needle",)), new_job("cmd", command="needle")]
    )
    assert ids(await store.page_jobs(JobQuery(text="needle"), 50)) == ["cmd"]


async def test_filters_combine_with_cursors(store: Store) -> None:
    seqs = await _seed(store, 30)
    query = JobQuery(label="gpu", text="echo 2", before_seq=seqs[27])
    assert ids(await store.page_jobs(query, 2)) == ["job-025", "job-023"]
    query = JobQuery(label="gpu", text="echo 2", after_seq=seqs[21], newest_first=False)
    assert ids(await store.page_jobs(query, 10)) == ["job-023", "job-025", "job-027", "job-029"]
