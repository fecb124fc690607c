"""Item 13: a running server forgets idempotency keys once ``idempotency_ttl`` passed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from corral.settings import ServerSettings
from tests.live import run_server
from tests.processes import poll

API = "/api/v1"


def test_item13_server_sweeps_idempotency_keys_after_their_ttl(tmp_path: Path) -> None:
    body = {"command": "true"}
    headers = {"Idempotency-Key": "once"}
    with run_server(tmp_path / "data", idempotency_ttl=1.0) as server, server.client() as http:
        first = http.post(f"{API}/jobs", json=body, headers=headers)
        assert first.status_code == 201
        replayed = http.post(f"{API}/jobs", json=body, headers=headers)
        assert replayed.json()["id"] == first.json()["id"]

        def fresh_job() -> bool:
            again = http.post(f"{API}/jobs", json=body, headers=headers)
            assert again.status_code == 201
            return bool(again.json()["id"] != first.json()["id"])

        poll(fresh_job, seconds=5, what="the key to be forgotten")


def test_item13_idempotency_ttl_defaults_to_a_day_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ServerSettings().idempotency_ttl == 86400
    monkeypatch.setenv("CORRAL_IDEMPOTENCY_TTL", "3600")
    assert ServerSettings().idempotency_ttl == 3600
    with pytest.raises(ValidationError):
        ServerSettings(idempotency_ttl=0)
