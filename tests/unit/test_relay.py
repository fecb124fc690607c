"""Item 14: job topics fired here are queued for other replicas; relayed ones are not."""

from __future__ import annotations

import asyncio

import pytest

from corral.errors import Unavailable
from corral.services import relay
from corral.services.events import CHANGES, JOBS, Hub, job_topic
from corral.services.relay import PAYLOAD_LIMIT, pack


async def test_item14_local_job_topics_are_queued_once_relayed_ones_never() -> None:
    hub = Hub()
    hub.fire(job_topic("a"))  # before relaying starts: nothing is kept
    outbox = hub.start_relaying()
    hub.fire(job_topic("b"))
    hub.fire(job_topic("c"))
    hub.fire(job_topic("b"))
    hub.fire(JOBS)  # announced by its own callers, not through the outbox
    signal = hub.signal(job_topic("d"))
    seen = signal.generation
    hub.relayed(f"{job_topic('d')} {job_topic('e')}")  # another replica's news
    assert signal.generation == seen + 1  # wakes the waiters here...
    assert outbox.drain() == [job_topic("b"), job_topic("c")]  # ...but is never sent back
    assert outbox.drain() == []


def test_item14_topics_pack_into_payloads_postgres_accepts() -> None:
    topics = [job_topic(f"{n:036d}") for n in range(500)]
    payloads = list(pack(topics))
    assert len(payloads) > 1
    assert all(len(p.encode()) < PAYLOAD_LIMIT for p in payloads)
    assert " ".join(payloads).split(" ") == topics
    assert list(pack([])) == []


class FlakyAnnouncer:
    """The one store call the relays make; the first ``failures`` calls meet a database
    that is away (``Unavailable``, as the PostgreSQL store raises it)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []
        self.heard = asyncio.Event()

    async def announce(self, payload: str) -> None:
        if self.failures:
            self.failures -= 1
            raise Unavailable("the database is unavailable; try again shortly")
        self.sent.append(payload)
        self.heard.set()


async def test_job_topics_that_could_not_be_announced_are_sent_once_the_database_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay, "RETRY_PAUSE", 0.01)
    hub = Hub()
    store = FlakyAnnouncer(failures=2)
    task = asyncio.create_task(relay.relay_job_topics(hub.start_relaying(), store))  # type: ignore[arg-type]
    hub.fire(job_topic("a"))
    await asyncio.wait_for(store.heard.wait(), 5.0)
    hub.close()
    await asyncio.wait_for(task, 5.0)
    assert store.sent == [job_topic("a")] and store.failures == 0


async def test_a_change_that_could_not_be_announced_is_retried_without_a_new_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay, "RETRY_PAUSE", 0.01)
    monkeypatch.setattr(relay, "RELAY_EVERY", 0.01)
    hub = Hub()
    store = FlakyAnnouncer(failures=3)
    task = asyncio.create_task(relay.relay_changes(hub, store))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    hub.job_changed()
    await asyncio.wait_for(store.heard.wait(), 5.0)
    hub.close()
    await asyncio.wait_for(task, 5.0)
    assert store.sent == [CHANGES]
