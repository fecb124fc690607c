"""Stored files: streamed in, chunked, read back; artifacts fenced by attempt; expiry."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from corral.domain.files import CHUNK_SIZE, NewFile, StoredFile
from corral.errors import StaleAttempt, TooLarge
from corral.store.base import Store
from corral.store.postgres.store import PostgresStore
from corral.store.sqlite.store import SqliteStore
from tests.contract.contract_support import NOW, claim_request, new_job, ref


def new_file(file_id: str, **fields: object) -> NewFile:
    base: dict[str, object] = {
        "id": file_id,
        "owner_id": "owner-1",
        "filename": "in.zip",
        "content_type": "application/zip",
        "created_at": NOW,
        "expires_at": NOW + 3600,
    }
    return NewFile(**{**base, **fields})  # type: ignore[arg-type]


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(store: Store, file_id: str) -> bytes:
    return b"".join([chunk async for chunk in store.read_file(file_id)])


async def test_a_streamed_file_reads_back_in_one_mib_chunks(store: Store) -> None:
    data = bytes(range(256)) * (CHUNK_SIZE // 256 * 2 + 10)  # two full chunks and a tail
    parts = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    stored = await store.create_file(new_file("f1"), pieces(*parts), max_size=len(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()

    got = await store.get_file("f1")
    assert got == stored
    chunks = [c async for c in store.read_file("f1")]
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, len(data) - 2 * CHUNK_SIZE]
    assert b"".join(chunks) == data


async def test_an_empty_file_is_a_file(store: Store) -> None:
    stored = await store.create_file(new_file("empty"), pieces(), max_size=10)
    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert await read_all(store, "empty") == b""


async def test_too_large_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(TooLarge):
        await store.create_file(new_file("big"), pieces(b"x" * 6, b"y" * 6), max_size=10)
    assert await store.get_file("big") is None
    assert await read_all(store, "big") == b""


async def test_an_upload_in_progress_is_invisible(store: Store) -> None:
    seen: list[StoredFile | None] = []

    async def slow() -> AsyncIterator[bytes]:
        yield b"first"
        seen.append(await store.get_file("f1"))
        yield b"second"

    await store.create_file(new_file("f1"), slow(), max_size=100)
    assert seen == [None]
    assert await read_all(store, "f1") == b"firstsecond"


async def test_unknown_file_is_none(store: Store) -> None:
    assert await store.get_file("nope") is None
    assert await store.list_artifacts("nope") == []


async def _running(store: Store) -> None:
    await store.insert_jobs([new_job("j1")])
    await store.claim(claim_request(), NOW)


def artifact(file_id: str, path: str, attempt: int = 1) -> NewFile:
    return new_file(file_id, job_id="j1", attempt=attempt, path=path, filename=path)


async def test_artifacts_of_the_current_attempt_are_listed(store: Store) -> None:
    await _running(store)
    await store.create_file(artifact("a2", "z.txt"), pieces(b"z"), 100, fence=ref())
    await store.create_file(artifact("a1", "dir/a.txt"), pieces(b"a"), 100, fence=ref())
    listed = await store.list_artifacts("j1")
    assert [(f.id, f.path, f.attempt, f.job_id) for f in listed] == [
        ("a1", "dir/a.txt", 1, "j1"),
        ("a2", "z.txt", 1, "j1"),
    ]
    assert await read_all(store, "a1") == b"a"


async def test_same_path_again_replaces_the_artifact(store: Store) -> None:
    await _running(store)
    await store.create_file(artifact("a1", "out.txt"), pieces(b"old"), 100, fence=ref())
    await store.create_file(artifact("a2", "out.txt"), pieces(b"new"), 100, fence=ref())
    assert [f.id for f in await store.list_artifacts("j1")] == ["a2"]
    assert await store.get_file("a1") is None


async def test_a_stale_attempt_cannot_store_an_artifact(store: Store) -> None:
    await _running(store)
    with pytest.raises(StaleAttempt):
        await store.create_file(artifact("a1", "out.txt"), pieces(b"x"), 100, fence=ref(attempt=2))
    with pytest.raises(StaleAttempt):
        await store.create_file(
            artifact("a2", "out.txt"), pieces(b"x"), 100, fence=ref(executor_id="other")
        )
    assert await store.list_artifacts("j1") == []


async def test_losing_the_lease_mid_upload_leaves_nothing(store: Store) -> None:
    await _running(store)

    async def slow() -> AsyncIterator[bytes]:
        yield b"part"
        await store.release("j1", ref(), NOW + 1)  # the attempt ends while bytes arrive
        yield b"more"

    with pytest.raises(StaleAttempt):
        await store.create_file(artifact("a1", "out.txt"), slow(), 100, fence=ref())
    assert await store.list_artifacts("j1") == []
    assert await read_all(store, "a1") == b""


async def test_expired_files_are_deleted(store: Store) -> None:
    await store.create_file(new_file("old", expires_at=NOW + 10), pieces(b"o"), 10)
    await store.create_file(new_file("new", expires_at=NOW + 1000), pieces(b"n"), 10)
    assert await store.delete_expired_files(NOW + 100) == 1
    assert await store.get_file("old") is None
    assert await read_all(store, "old") == b""
    assert await store.get_file("new") is not None


async def test_an_abandoned_upload_is_swept(store: Store) -> None:
    async def dies() -> AsyncIterator[bytes]:
        yield b"half"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.create_file(new_file("gone"), dies(), 100)
    # Already discarded on the error path; nothing remains to sweep.
    assert await store.delete_expired_files(NOW + 10 * 86400) == 0
    assert await read_all(store, "gone") == b""


async def test_item22_owned_bytes_counts_complete_unexpired_files_of_one_owner(
    store: Store,
) -> None:
    """What a user's upload quota counts (services/files.py)."""
    assert await store.owned_bytes("owner-1", NOW) == 0
    await store.create_file(new_file("a"), pieces(b"x" * 10), 100)
    await store.create_file(new_file("b", expires_at=NOW + 10), pieces(b"y" * 5), 100)
    await store.create_file(new_file("c", owner_id="owner-2"), pieces(b"z" * 7), 100)

    async def half() -> AsyncIterator[bytes]:
        yield b"w" * 50
        assert await store.owned_bytes("owner-1", NOW) == 15  # in progress: not counted
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.create_file(new_file("d"), half(), 100)
    assert await store.owned_bytes("owner-1", NOW) == 15
    assert await store.owned_bytes("owner-1", NOW + 100) == 10  # "b" has expired
    assert await store.owned_bytes("owner-2", NOW) == 7


async def read_span(store: Store, file_id: str, start: int, stop: int | None) -> list[bytes]:
    return [piece async for piece in store.read_file(file_id, start, stop)]


async def test_a_read_from_start_to_stop_gives_exactly_those_bytes(store: Store) -> None:
    data = bytes(range(256)) * (CHUNK_SIZE // 256 * 2 + 10)  # two full chunks and a tail
    await store.create_file(new_file("f1"), pieces(data), max_size=len(data))
    spans = [
        (0, None),
        (5, None),
        (CHUNK_SIZE, None),
        (CHUNK_SIZE - 1, CHUNK_SIZE + 1),  # across a chunk boundary
        (CHUNK_SIZE + 5, 2 * CHUNK_SIZE + 3),
        (0, CHUNK_SIZE),  # stops exactly at a chunk's end
        (len(data) - 1, None),
        (len(data) - 1, len(data) + 100),  # a stop past the end is the end
        (len(data), None),
        (10, 10),
    ]
    for start, stop in spans:
        got = await read_span(store, "f1", start, stop)
        assert b"".join(got) == data[start:stop], (start, stop)
        assert all(0 < len(piece) <= CHUNK_SIZE for piece in got), (start, stop)
    # A read from the middle of a chunk starts with the rest of that chunk.
    got = await read_span(store, "f1", CHUNK_SIZE + 5, None)
    assert [len(p) for p in got] == [CHUNK_SIZE - 5, len(data) - 2 * CHUNK_SIZE]


async def drop_chunk(store: Store, file_id: str, seq: int) -> None:
    """Remove one stored chunk behind the store's back, in either database."""
    sql = "DELETE FROM file_chunks WHERE file_id = {} AND seq = {}"
    if isinstance(store, SqliteStore):
        await store._writer.submit(lambda c: c.execute(sql.format("?", "?"), (file_id, seq)))
    else:
        assert isinstance(store, PostgresStore)
        async with store._conn() as conn:
            await conn.execute(sql.format("$1", "$2"), file_id, seq)


async def test_a_read_from_a_later_chunk_never_reads_the_earlier_ones(store: Store) -> None:
    """The first chunk is gone, yet a read from the second on is whole: it starts at the
    chunk holding ``start`` instead of reading (or skipping over) the file from its start."""
    data = bytes(range(256)) * (CHUNK_SIZE // 256 * 2 + 10)
    await store.create_file(new_file("f1"), pieces(data), max_size=len(data))
    await drop_chunk(store, "f1", 0)
    assert b"".join(await read_span(store, "f1", CHUNK_SIZE + 7, None)) == data[CHUNK_SIZE + 7 :]
    assert await read_all(store, "f1") == b""  # the whole file's read ends where chunks do
