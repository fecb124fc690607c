"""Argon2 runs on a bounded pool: a burst of callers queues instead of hashing all at once."""

from __future__ import annotations

import asyncio
import threading
import time

from corral.auth import passwords


async def test_a_burst_never_runs_more_than_the_pool_at_once() -> None:
    lock = threading.Lock()
    running = peak = 0
    names: set[str] = set()

    def work(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            names.add(threading.current_thread().name)
        time.sleep(0.01)  # hold the slot long enough for the others to pile up
        with lock:
            running -= 1
        return n

    results = await asyncio.gather(*(passwords.offload(work, n) for n in range(50)))
    assert results == list(range(50))
    assert 1 <= peak <= passwords.POOL_SIZE <= passwords.MAX_CONCURRENT_HASHES
    assert all(name.startswith("corral-argon2") for name in names)


async def test_offloaded_hashing_round_trips() -> None:
    stored = await passwords.offload(passwords.hash_password, "s3cret")
    assert await passwords.offload(passwords.verify_password, stored, "s3cret")
    assert not await passwords.offload(passwords.verify_password, None, "s3cret")
