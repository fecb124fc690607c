"""A host that only runs Corral: the wheel ``make dist`` builds, installed by
``scripts/install.sh`` (what deploy/Containerfile runs) into a fresh virtualenv, holds no
dev tool and nothing of this checkout, and runs a server, ``corral backup``, and a real
worker whose token comes from a file, never from its argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.docs_blocks import REPO
from tests.processes import free_port, poll

DEV_ONLY = {"pytest", "mypy", "ruff", "playwright", "schemathesis", "hypothesis", "import-linter"}


def bare_env(**extra: str) -> dict[str, str]:
    """What a bare host has: no CORRAL_*, no PYTHONPATH into this checkout, no venv on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CORRAL_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(extra)
    return env


def run(argv: list[str], cwd: Path, **extra: str) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=bare_env(**extra), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed; returns its directory."""
    root = tmp_path_factory.mktemp("bare-host")
    dist = root / "dist"
    run(
        ["bash", str(REPO / "scripts" / "dist.sh")], REPO, DIST_DIR=str(dist), PYTHON=sys.executable
    )
    (wheel,) = dist.glob("corral-*-py3-none-any.whl")
    venv = root / "venv"
    out = run(["bash", str(REPO / "scripts" / "install.sh"), str(wheel), str(venv)], root)
    assert out.strip().startswith("corral "), out
    return venv


@pytest.mark.slow  # builds a wheel and installs it with its dependencies: tens of seconds
def test_the_wheel_holds_what_runs_and_nothing_of_the_checkout(host: Path) -> None:
    listed = json.loads(run([str(host / "bin" / "pip"), "list", "--format", "json"], host))
    names = {package["name"].lower() for package in listed}
    assert "corral" in names and "asyncpg" in names and "uvicorn" in names
    assert names & DEV_ONLY == set(), f"dev tools installed on a bare host: {names & DEV_ONLY}"
    where = run([str(host / "bin" / "python"), "-c", "import corral; print(corral.__file__)"], host)
    assert where.startswith(str(host)), f"corral imported from {where}, not the wheel"
    usage = run([str(host / "bin" / "corral"), "worker", "--help"], host)
    assert "--token-file" in usage


@pytest.fixture
def wheel_server(host: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [str(host / "bin" / "corral"), "server", "--port", str(port), "--data-dir", str(data)],
            cwd=tmp_path,
            env=bare_env(),
            stdout=log,
            stderr=log,
        )
    try:
        poll(lambda: _healthy(url, server, tmp_path), 60, "the wheel's server")
        yield url, data
    finally:
        server.terminate()
        assert server.wait(30) == 0, (tmp_path / "server.log").read_text()[-3000:]


def _healthy(url: str, server: subprocess.Popen[bytes], root: Path) -> bool:
    assert server.poll() is None, (root / "server.log").read_text()[-3000:]
    try:
        return httpx.get(url + "/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow  # see above; then a server, a worker and a job, all from the wheel
def test_the_wheel_runs_a_worker_with_its_token_from_a_file(
    host: Path, wheel_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, data = wheel_server
    corral = str(host / "bin" / "corral")
    admin = (data / "admin-token").read_text().strip()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as http:
        # Templates, static files and Swagger UI's assets came with the wheel.
        assert "<form" in http.get("/login").text
        assert http.get("/api/docs").status_code == 200
        token = run(
            [corral, "token", "create", "--role", "worker", "--data-dir", str(data)], tmp_path
        )
        token_file = tmp_path / "worker.token"
        token_file.touch(0o600)
        token_file.write_text(token)
        argv = [corral, "worker", "--server", url, "--token-file", str(token_file)]
        argv += ["--name", "bare-host", "--work-dir", str(tmp_path / "work"), "--claim-wait", "2"]
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                argv, cwd=tmp_path, env=bare_env(), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            shown = Path(f"/proc/{worker.pid}/cmdline").read_bytes()
            assert token.strip().encode() not in shown
            job_id = (
                http.post("/api/v1/jobs", json={"command": "echo ran-from-the-wheel"})
                .raise_for_status()
                .json()["id"]
            )
            job = poll(lambda: _finished(http, job_id), 60, "the job on the wheel's worker")
            assert job["status"] == "completed", job
            assert job["executor_id"] == "bare-host"
            out = http.get(f"/api/v1/jobs/{job_id}/output", params={"stream": "stdout"})
            assert out.json()["data"] == "ran-from-the-wheel\n"
        finally:
            worker.terminate()
            assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    copy = tmp_path / "backup.sqlite3"
    said = run([corral, "backup", str(copy), "--data-dir", str(data)], tmp_path)
    assert "1 jobs" in said and copy.stat().st_size > 0, said


def _finished(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
    return job if job["status"] in ("completed", "failed", "cancelled") else None
