"""The SDK against a real dispatcher and a real worker: credentials from the environment
and the saved login, typed answers, ``wait``, typed errors, and the async client."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from corral.client import (
    AsyncCorralClient,
    Attempt,
    CorralAPIError,
    CorralClient,
    CorralConnectionError,
    EndEvent,
    Executor,
    InvalidRequest,
    Job,
    NotFound,
    OutputEvent,
    Unauthorized,
    WaitTimeout,
)
from tests.live import LiveServer, run_server
from tests.processes import STARTUP, free_port, poll, start_worker


@pytest.fixture(scope="module")
def corral(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server and one real worker for the whole module."""
    root = tmp_path_factory.mktemp("sdk")
    with run_server(root / "data") as server:
        worker = start_worker(
            server.url,
            server.token("worker"),
            root,
            "sdk",
            "worker.log",
            "--labels",
            "sdk",
            "--claim-wait",
            "1",
        )
        try:
            with CorralClient(server.url, server.admin_token) as client:
                poll(client.executors, STARTUP, "the worker to register")
            yield server
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()


def test_item1_client_reads_url_and_token_from_the_environment(
    corral: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_URL", corral.url)
    monkeypatch.setenv("CORRAL_TOKEN", corral.admin_token)
    with CorralClient() as client:
        workers = client.executors()
    assert workers and isinstance(workers[0], Executor)
    assert workers[0].executor_id


def test_item1_client_reads_the_saved_login(
    corral: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "corral").mkdir()
    login = {"url": corral.url, "token": corral.admin_token}
    (tmp_path / "corral" / "config.json").write_text(json.dumps(login))
    with CorralClient() as client:
        assert client.url == corral.url
        assert isinstance(client.list(limit=1), list)


def test_item1_submit_and_wait_return_typed_jobs(corral: LiveServer) -> None:
    with CorralClient(corral.url, corral.admin_token) as client:
        submitted = client.submit(command="echo hello; echo oops >&2; exit 3", labels=["sdk"])
        assert isinstance(submitted, Job) and submitted.status == "pending"
        done = client.wait(submitted.id, timeout=30)
        assert done.id == submitted.id
        assert (done.status, done.exit_code, done.finished) == ("failed", 3, True)
        assert (done.stdout, done.stderr) == ("hello\n", "oops\n")
        assert done.labels == ["sdk"]
        assert isinstance(done.created_at, datetime)
        assert done.attempts and isinstance(done.attempts[0], Attempt)
        assert done.attempts[0].exit_code == 3
        assert client.read_output(done.id, "stderr") == "oops\n"
        assert submitted.id in [job.id for job in client.list(limit=20)]
        assert done.to_dict()["id"] == done.id  # JSON-ready, for callers who want a dict


def test_item1_wait_gives_up_after_its_timeout_and_cancel_is_typed(corral: LiveServer) -> None:
    with CorralClient(corral.url, corral.admin_token) as client:
        job = client.submit(command="sleep 30")
        with pytest.raises(WaitTimeout) as caught:
            client.wait(job.id, timeout=0.5)
        assert caught.value.job_id == job.id
        assert caught.value.status_now in ("pending", "running")
        cancelled = client.cancel(job.id)
        assert cancelled.id == job.id
        assert client.wait(job.id, timeout=30).status == "cancelled"


def test_item1_errors_are_typed_with_status_and_message(corral: LiveServer) -> None:
    with CorralClient(corral.url, corral.admin_token) as client:
        with pytest.raises(NotFound) as missing:
            client.get("no-such-job")
        assert missing.value.status == 404 and missing.value.message
        with pytest.raises(InvalidRequest) as invalid:
            client.submit(command="true", timeout=-1)
        assert invalid.value.status in (400, 422)
    with CorralClient(corral.url, "not-a-token") as stranger, pytest.raises(Unauthorized) as no:
        stranger.list()
    assert no.value.status == 401 and isinstance(no.value, CorralAPIError)
    with (
        CorralClient(f"http://127.0.0.1:{free_port()}", "t", retry_for=0) as nobody,
        pytest.raises(CorralConnectionError) as down,
    ):
        nobody.list()
    assert down.value.status == 0 and "cannot reach" in str(down.value)


async def test_item1_async_client_shares_the_models(corral: LiveServer) -> None:
    async with AsyncCorralClient(corral.url, corral.admin_token) as client:
        job = await client.submit(command="echo one; sleep 0.2; echo two")
        events = [event async for event in client.follow(job.id, timeout=30)]
        done = await client.wait(job.id, timeout=30)
        with pytest.raises(NotFound):
            await client.get("no-such-job")
        listed = await client.list(limit=5)
    assert isinstance(done, Job) and done.succeeded and done.stdout == "one\ntwo\n"
    assert "".join(e.data for e in events if isinstance(e, OutputEvent)) == "one\ntwo\n"
    assert isinstance(events[-1], EndEvent) and events[-1].status == "completed"
    assert all(isinstance(row, Job) for row in listed)


def _first_python_block(path: Path) -> str:
    text = path.read_text()
    start = text.index("```python\nfrom corral.client import CorralClient\n")
    return text[start + len("```python\n") : text.index("```", start + 10)]


@pytest.mark.parametrize("doc", ["README.md", "docs/sdk.md"])
def test_item1_the_documented_example_runs(
    corral: LiveServer,
    doc: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CORRAL_URL", corral.url)
    monkeypatch.setenv("CORRAL_TOKEN", corral.admin_token)
    example = _first_python_block(Path(__file__).parents[2] / doc)
    assert len(example.strip().splitlines()) == 6  # import + five lines
    exec(compile(example, doc, "exec"), {})
    assert capsys.readouterr().out == "completed 0 hello\n\n"
