"""The SDK and the ``corral`` command given several replicas' URLs (``A,B``): a call moves on
to the next when one cannot be reached, and what may already have taken effect is sent
again only when that is safe.

Real HTTP on loopback: a dispatcher, ports nobody listens on (a dead replica), and the
fault-injecting proxy in front of the dispatcher (a replica that drops connections or
answers 503).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from corral.cli.config import resolve_credentials
from corral.client import (
    AsyncCorralClient,
    CorralClient,
    CorralConnectionError,
    JsonClient,
    ServerError,
)
from corral.failover import FailoverTransport
from tests.faultproxy import DROP, DROP_AFTER, PASS, Call, Countdown, FaultProxy
from tests.live import LiveServer, run_server
from tests.processes import CORRAL, clean_env, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("failover") / "data") as live:
        yield live


def dead() -> str:
    """The URL of a replica that is down: nothing listens on its port."""
    return f"http://127.0.0.1:{free_port()}"


def in_use(client: CorralClient | JsonClient) -> str:
    transport = client.http._transport
    assert isinstance(transport, FailoverTransport)
    return str(transport.endpoints.current).rstrip("/")


def test_the_sdk_moves_on_from_a_dead_replica_and_stays_on_the_live_one(
    server: LiveServer,
) -> None:
    started = time.monotonic()
    with CorralClient(f"{dead()},{server.url}", server.admin_token) as corral:
        job = corral.submit(command="true")  # a POST: the refused connection sent nothing
        assert corral.get(job.id).id == job.id
        assert in_use(corral) == server.url
    with JsonClient(f"{dead()}, {server.url}/", server.admin_token) as client:
        assert client.get(job.id)["id"] == job.id
    assert time.monotonic() - started < 5  # at once: no backoff while a replica is untried


async def test_the_async_sdk_moves_on_too(server: LiveServer) -> None:
    async with AsyncCorralClient(f"{dead()},{server.url}", server.admin_token) as corral:
        job = await corral.submit(command="true")
        assert (await corral.get(job.id)).id == job.id


def test_the_cli_takes_a_server_list_and_never_submits_twice(
    server: LiveServer, tmp_path: Path
) -> None:
    """The first replica takes ``corral submit``'s request and dies before answering: the
    command sends it again to the second, with the Idempotency-Key it made, and gets the
    same job back."""
    lost = Countdown(1)

    def dies_after_forwarding(call: Call) -> str:
        return DROP_AFTER if call.method == "POST" and lost.take() else PASS

    command = f"echo cli-{uuid.uuid4()}"
    with FaultProxy(server.url, dies_after_forwarding) as first:
        submitted = subprocess.run(
            [*CORRAL, "submit", command],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(
                XDG_CONFIG_HOME=str(tmp_path),
                CORRAL_URL=f"{first.url},{server.url}",
                CORRAL_TOKEN=server.admin_token,
            ),
        )
        forwarded = first.seen("/api/v1/jobs")
    assert submitted.returncode == 0, submitted.stderr
    assert [c.status for c in forwarded] == [None]  # taken, never answered
    job_id = submitted.stdout.strip()
    assert json.loads(forwarded[0].answer)["id"] == job_id
    with CorralClient(server.url, server.admin_token) as corral:
        assert [job.id for job in corral.list(text=command)] == [job_id]


def test_a_malformed_server_list_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as stopped:
        resolve_credentials("http://127.0.0.1:3000,localhost:3000", "t")
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err == "error: not an http(s) URL: 'localhost:3000'\n"


def test_503_is_retried_for_what_is_safe_to_repeat_and_answered_for_the_rest(
    server: LiveServer,
) -> None:
    busy = Countdown(2)

    def rule(call: Call) -> str:
        return "503" if call.path.startswith("/api/v1/jobs") and busy.take() else PASS

    with FaultProxy(server.url, rule) as proxy, CorralClient(proxy.url, server.admin_token) as c:
        assert isinstance(c.list(limit=1), list)  # a GET: 503, 503, then the answer
        assert [call.status for call in proxy.seen("/api/v1/jobs")] == [503, 503, 200]
        busy.left = 1
        with pytest.raises(ServerError):  # a POST without a key: its 503 is the answer
            c.submit(command="true")
        assert len([call for call in proxy.seen("/api/v1/jobs") if call.method == "POST"]) == 1
        busy.left = 1
        job = c.submit(command="true", idempotency_key="retry-me")  # with one: retried
        posts = [call for call in proxy.seen("/api/v1/jobs") if call.method == "POST"]
        assert [call.status for call in posts[1:]] == [503, 201]
        assert c.get(job.id).status in ("pending", "running", "completed")


def test_an_answer_lost_with_its_replica_is_asked_again_only_with_an_idempotency_key(
    server: LiveServer,
) -> None:
    """Both proxies stand for replicas of one dispatcher; the first forwards a submit and
    then dies with its answer. With a key the second replica gives the same job back; without
    one the SDK cannot tell whether the job exists and says so, rather than submit twice."""
    lost = Countdown(2)

    def dies_after_forwarding(call: Call) -> str:
        return DROP_AFTER if call.method == "POST" and lost.take() else PASS

    with (
        FaultProxy(server.url, dies_after_forwarding) as first,
        FaultProxy(server.url, lambda call: PASS) as second,
        CorralClient(f"{first.url},{second.url}", server.admin_token) as corral,
    ):
        job = corral.submit(command="true", idempotency_key="one-job")
        forwarded = first.seen("/api/v1/jobs")[0]
        assert json.loads(forwarded.answer)["id"] == job.id  # the job the lost answer named
        assert [c.status for c in second.seen("/api/v1/jobs")] == [201]  # replayed, not new
        corral.http._transport.endpoints._current = 0  # type: ignore[attr-defined]
        before = len(corral.list(limit=1000))
        with pytest.raises(CorralConnectionError):
            corral.submit(command="true")  # no key: cut off, and not sent again
        assert len([c for c in second.seen("/api/v1/jobs") if c.method == "POST"]) == 1
        assert len(corral.list(limit=1000)) == before + 1  # it did exist: why no retry


def test_when_every_replica_fails_the_call_backs_off_and_gives_up_within_its_budget(
    server: LiveServer,
) -> None:
    def dropping(call: Call) -> str:
        return DROP

    with FaultProxy(server.url, dropping) as a, FaultProxy(server.url, dropping) as b:
        urls = f"{a.url},{b.url}"
        with (
            CorralClient(urls, server.admin_token, retry_for=0) as once,
            pytest.raises(CorralConnectionError),
        ):
            once.list()
        assert (len(a.calls), len(b.calls)) == (1, 1)  # one round, no waiting
        started = time.monotonic()
        with (
            CorralClient(urls, server.admin_token, retry_for=1.0) as patient,
            pytest.raises(CorralConnectionError),
        ):
            patient.list()
        took = time.monotonic() - started
    assert took < 2.0
    tries = len(a.calls) + len(b.calls) - 2
    # Rounds of two, each after a pause of 0.125-0.25 s, then 0.25-0.5 s, ...: a few
    # rounds fit in a second, never a busy loop.
    assert 4 <= tries <= 8 and abs(len(a.calls) - len(b.calls)) <= 1, (a.calls, b.calls)
