"""Item 14: job topics fired here are queued for other replicas; relayed ones are not."""

from __future__ import annotations

from corral.services.events import JOBS, Hub, job_topic
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
