"""Output sent again after a lost answer is stored once; a sender's loss flags the stream."""

from __future__ import annotations

from corral.store.base import Store
from tests.contract.contract_support import NOW, claim_request, new_job, ref


async def _claim(store: Store) -> None:
    await store.insert_jobs([new_job("j1", lease_seconds=30)])
    await store.claim(claim_request(), NOW)


async def test_item6_a_resent_chunk_is_stored_once(store: Store) -> None:
    await _claim(store)
    await store.append_output("j1", ref(), "stdout", b"hello ", at=0)
    again = await store.append_output("j1", ref(), "stdout", b"hello ", at=0)
    assert (again.offset, again.size) == (6, 6)
    # A chunk whose first part arrived (the store kept it) adds only the rest.
    await store.append_output("j1", ref(), "stdout", b"wor", at=6)
    await store.append_output("j1", ref(), "stdout", b"world", at=6)
    await store.append_output("j1", ref(), "stdout", b"!", at=11)
    whole = await store.read_output("j1", "stdout", 0, 100)
    assert (whole.data, whole.truncated) == (b"hello world!", False)


async def test_item6_a_senders_loss_flags_the_stream(store: Store) -> None:
    await _claim(store)
    await store.append_output("j1", ref(), "stderr", b"before\n")
    marked = await store.append_output("j1", ref(), "stderr", b"[lost]\n", truncated=True)
    assert marked.truncated
    later = await store.append_output("j1", ref(), "stderr", b"after\n")
    assert later.truncated  # the flag stays once set
    job = await store.get_job("j1")
    assert job is not None and job.stderr.truncated and not job.stdout.truncated
    assert (await store.read_output("j1", "stderr", 0, 100)).data == b"before\n[lost]\nafter\n"
