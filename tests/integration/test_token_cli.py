"""`corral token create|list|revoke` work straight on the server's database."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.live import run_server

CORRAL = [sys.executable, "-m", "corral.cli.main"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CORRAL, *args], capture_output=True, text=True, timeout=60)


def test_a_revoked_token_is_refused_by_the_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with run_server(data) as server:
        minted = cli("token", "create", "--role", "viewer", "--name", "ci", "--data-dir", str(data))
        assert minted.returncode == 0, minted.stderr
        secret = minted.stdout.strip()
        with server.client(secret) as http:
            assert http.get("/api/v1/jobs").status_code == 200
        listed = cli("token", "list", "--data-dir", str(data))
        rows = [line.split("\t") for line in listed.stdout.splitlines()]
        token_id = next(r[0] for r in rows if r[1] == "ci")
        assert rows[0] == ["id", "name", "role", "state", "owner", "expires_at", "last_used_at"]
        assert [r[2:6] for r in rows if r[0] == token_id] == [["viewer", "active", "-", "never"]]
        assert cli("token", "revoke", token_id, "--data-dir", str(data)).returncode == 0
        assert "revoked" in cli("token", "list", "--data-dir", str(data)).stdout
        deadline = time.monotonic() + 10  # the server's token cache lives two seconds
        with server.client(secret) as http:
            while http.get("/api/v1/jobs").status_code != 401:
                assert time.monotonic() < deadline, "a revoked token was still accepted"
                time.sleep(0.1)
        unknown = cli("token", "revoke", "no-such-id", "--data-dir", str(data))
        assert unknown.returncode == 2 and "not found" in unknown.stderr
