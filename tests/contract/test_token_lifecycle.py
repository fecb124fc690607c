"""Token lifecycle fields in the store (issue 14, item 2), on both stores: an expiry and
an owning user kept as minted, and the last use recorded without ever going back."""

from __future__ import annotations

from corral.store.base import Store
from corral.store.fleet_port import TokenRecord
from tests.contract.contract_support import NOW


async def test_item2_tokens_keep_their_expiry_and_owner(store: Store) -> None:
    personal = TokenRecord(
        "t1", "laptop", "submitter", "h1", NOW, expires_at=NOW + 60, user_id="u1"
    )
    await store.create_token(personal)
    await store.create_token(TokenRecord("t2", "ci", "viewer", "h2", NOW))
    assert await store.find_token("h1") == personal
    listed = {t.id: (t.expires_at, t.user_id, t.last_used_at) for t in await store.list_tokens()}
    assert listed == {"t1": (NOW + 60, "u1", None), "t2": (None, None, None)}


async def test_item2_last_use_is_recorded_and_never_goes_back(store: Store) -> None:
    await store.create_token(TokenRecord("t1", "ci", "viewer", "h1", NOW))
    await store.touch_token("t1", NOW + 10)
    await store.touch_token("t1", NOW + 5)  # a slower replica's older write loses
    found = await store.find_token("h1")
    assert found is not None and found.last_used_at == NOW + 10
    await store.touch_token("no-such-token", NOW)  # nothing to touch: no error
