"""Shared counts (rate-limit windows, activity slots) on both stores."""

from __future__ import annotations

import asyncio

from corral.store.base import Store
from corral.store.counts_port import ALL_TIME

WINDOW = 1_700_000_040


async def test_takes_add_up_and_return_the_count_after(store: Store) -> None:
    assert await store.window_count("principal", "p1", WINDOW) == 0
    assert await store.add_to_window("principal", "p1", WINDOW, 5, WINDOW + 60.0) == 5
    assert await store.add_to_window("principal", "p1", WINDOW, 3, WINDOW + 60.0) == 8
    assert await store.window_count("principal", "p1", WINDOW) == 8


async def test_windows_keys_and_budgets_are_counted_apart(store: Store) -> None:
    await store.add_to_window("principal", "p1", WINDOW, 4, WINDOW + 60.0)
    assert await store.add_to_window("principal", "p1", WINDOW + 60, 1, WINDOW + 120.0) == 1
    assert await store.add_to_window("principal", "p2", WINDOW, 2, WINDOW + 60.0) == 2
    assert await store.add_to_window("worker", "p1", WINDOW, 7, WINDOW + 60.0) == 7
    assert await store.window_count("principal", "p1", WINDOW) == 4


async def test_a_give_back_never_goes_below_zero(store: Store) -> None:
    await store.add_to_window("login-ip", "10.0.0.1", WINDOW, 1, WINDOW + 60.0)
    assert await store.add_to_window("login-ip", "10.0.0.1", WINDOW, -1, WINDOW + 60.0) == 0
    assert await store.add_to_window("login-ip", "10.0.0.1", WINDOW, -1, WINDOW + 60.0) == 0
    # a give-back for a window nobody counted in yet leaves it at zero as well
    assert await store.add_to_window("login-ip", "10.0.0.2", WINDOW, -1, WINDOW + 60.0) == 0


async def test_concurrent_takes_are_never_lost(store: Store) -> None:
    await asyncio.gather(
        *(store.add_to_window("principal", "busy", WINDOW, 1, WINDOW + 60.0) for _ in range(40))
    )
    assert await store.window_count("principal", "busy", WINDOW) == 40


async def test_expired_windows_are_forgotten_in_batches(store: Store) -> None:
    for key in ("a", "b", "c"):
        await store.add_to_window("principal", key, WINDOW, 1, WINDOW + 60.0)
    await store.add_to_window("principal", "a", WINDOW + 60, 1, WINDOW + 120.0)
    assert await store.forget_windows(WINDOW + 60.5, 2) == 2
    assert await store.forget_windows(WINDOW + 60.5, 2) == 1
    assert await store.forget_windows(WINDOW + 60.5, 2) == 0
    assert await store.window_count("principal", "a", WINDOW + 60) == 1


async def test_activity_adds_to_its_slot_and_to_the_totals(store: Store) -> None:
    await store.add_activity(100, {"claimed": 3, "finished": 2, "wait:0.1": 0})
    await store.add_activity(100, {"claimed": 1})
    await store.add_activity(101, {"finished": 4})
    rows = sorted(await store.read_activity(100))
    assert rows == [
        (ALL_TIME, "claimed", 4),
        (ALL_TIME, "finished", 6),
        (100, "claimed", 4),
        (100, "finished", 2),
        (101, "finished", 4),
    ]
    assert sorted(await store.read_activity(101)) == [
        (ALL_TIME, "claimed", 4),
        (ALL_TIME, "finished", 6),
        (101, "finished", 4),
    ]


async def test_old_activity_is_forgotten_but_never_the_totals(store: Store) -> None:
    await store.add_activity(100, {"claimed": 1})
    await store.add_activity(105, {"claimed": 1})
    assert await store.forget_activity(105) == 1
    assert sorted(await store.read_activity(1)) == [(ALL_TIME, "claimed", 2), (105, "claimed", 1)]


async def test_replicas_adding_to_one_slot_at_once_lose_nothing(store: Store) -> None:
    counts = {"claimed": 1, "finished": 1, "wait:0.01": 1, "wait:0.1": 1}
    await asyncio.gather(*(store.add_activity(7, counts) for _ in range(30)))
    assert sorted(await store.read_activity(7)) == sorted(
        [(slot, name, 30) for slot in (ALL_TIME, 7) for name in counts]
    )
