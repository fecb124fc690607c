"""Real `corral server` + `corral worker`: an input archive in, an artifact out, zip-slip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_worker_e2e import Cluster, cluster  # noqa: F401


@pytest.fixture(scope="module")
def files_worker(cluster: Cluster) -> Any:  # noqa: F811
    return cluster.worker("files", "--concurrency", "2", "--grace", "1")


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def submit(cluster: Cluster, *args: str) -> str:  # noqa: F811
    done = cluster.cli("submit", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_input_archive_in_artifact_out(
    cluster: Cluster,  # noqa: F811
    files_worker: Any,
    tmp_path: Path,
) -> None:
    archive = write_zip(tmp_path / "x.zip", {"in.txt": b"payload from the archive\n"})
    job_id = submit(
        cluster,
        "--input",
        str(archive),
        "--output",
        "out.txt",
        "--output",
        "never.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > out.txt",
    )
    job = cluster.wait_status(job_id, ("completed", "failed"), 30)
    assert job["status"] == "completed", job
    assert job["result"] == {"output_notes": ["missing output: never.txt"]}

    listed = cluster.cli("artifacts", job_id)
    assert listed.returncode == 0, listed.stderr
    assert "out.txt" in listed.stdout

    dest = tmp_path / "downloaded"
    fetched = cluster.cli("artifacts", job_id, "--download", str(dest))
    assert fetched.returncode == 0, fetched.stderr
    assert (dest / "out.txt").read_bytes() == b"payload from the archive\n"


def test_zip_slip_is_refused_at_upload_and_runs_nothing(
    cluster: Cluster,  # noqa: F811
    files_worker: Any,
    tmp_path: Path,
) -> None:
    """The dispatcher refuses the archive before any job exists; the worker's own check
    (tests/unit/test_agent_archive.py) stays as the second line for archives stored earlier."""
    archive = write_zip(tmp_path / "slip.zip", {"ok.txt": b"ok", "../../escaped.txt": b"pwned"})
    marker = tmp_path / "ran"
    with cluster.http() as http:
        before = int(http.get("/jobs", params={"limit": 1}).headers["X-Total-Count"])
    done = cluster.cli("submit", "--input", str(archive), "--", "touch", str(marker))
    assert done.returncode == 2
    assert "input archive refused" in done.stderr and "escaped.txt" in done.stderr
    with cluster.http() as http:
        assert int(http.get("/jobs", params={"limit": 1}).headers["X-Total-Count"]) == before
    assert not marker.exists()
    assert not list(cluster.root.rglob("escaped.txt"))


def test_a_missing_input_fails_the_job(
    cluster: Cluster,  # noqa: F811
    files_worker: Any,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    with cluster.http() as http:
        answer = http.post(
            "/jobs", json={"command": f"touch {marker}", "inputs": ["data.csv"], "max_retries": 0}
        )
        job_id = answer.raise_for_status().json()["id"]
    job = cluster.wait_status(job_id, ("completed", "failed"), 30)
    assert job["status"] == "failed"
    assert job["error_message"] == "missing input: data.csv"
    assert not marker.exists()
