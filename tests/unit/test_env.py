"""The job environment rules (domain/env.py) and the worker's address guard (agent/netguard.py)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from pathlib import Path

import httpcore
import httpx
import orjson
import pytest

from corral.agent.binaries import BinaryCache, BinaryError
from corral.agent.dispatcher import parse_job
from corral.agent.executor import JobRun, job_env
from corral.agent.netguard import AddressRefused, guarded_client, refusal
from corral.cli.logs import JsonFormatter
from corral.domain.env import (
    MASK,
    MAX_ENTRIES,
    MAX_TOTAL_BYTES,
    MAX_VALUE_BYTES,
    dangerous,
    masked,
    validate_env,
)
from corral.domain.jobs import JobSpec
from corral.errors import InvalidInput
from corral.store.rows import spec_from_json, spec_to_json


def refused(env: dict[str, str], secret_env: dict[str, str] | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate_env(env, secret_env)
    assert caught.value.context == {"field": "env"}
    return caught.value.message


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "ld_preload",
        "DYLD_INSERT_LIBRARIES",
        "GLIBC_TUNABLES",
        "GCONV_PATH",
        "BASH_ENV",
        "ENV",
        "BASH_FUNC_ls",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "IFS",
        "PROMPT_COMMAND",
        "PERL5OPT",
        "RUBYOPT",
        "NODE_OPTIONS",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
    ],
)
def test_names_that_change_what_runs_are_refused(name: str) -> None:
    assert dangerous(name)
    assert name in refused({name: "x"})
    assert name in refused({}, {name: "x"})  # secrets follow the same rules


@pytest.mark.parametrize(
    "name", ["PATH", "PYTHONPATH", "HOME", "LANG", "CLASSPATH", "NODE_PATH", "LDFLAGS", "ENVIRON"]
)
def test_ordinary_names_are_allowed(name: str) -> None:
    assert not dangerous(name)
    validate_env({name: "/opt/x"})


@pytest.mark.parametrize("name", ["1BAD", "", "A-B", "A B", "é", "A" * 257])
def test_bad_names_are_refused(name: str) -> None:
    assert "invalid environment variable name" in refused({name: "v"})


def test_a_name_holding_a_value_is_refused_without_echoing_it() -> None:
    message = refused({}, {"TOKEN=hunter2": "x"})
    assert "hunter2" not in message


def test_nul_bytes_are_refused_and_the_value_is_never_echoed() -> None:
    message = refused({}, {"SECRET": "hun\x00ter2"})
    assert "NUL" in message and "SECRET" in message
    assert "hun" not in message


def test_sizes_are_capped() -> None:
    validate_env({"BIG": "x" * MAX_VALUE_BYTES})
    assert "longer than" in refused({"BIG": "x" * (MAX_VALUE_BYTES + 1)})
    many = {f"V{i}": "" for i in range(MAX_ENTRIES)}
    validate_env(many)
    assert "at most" in refused(many, {"ONE_MORE": ""})
    per = MAX_VALUE_BYTES - 100
    total = {f"V{i}": "x" * per for i in range(MAX_TOTAL_BYTES // per + 1)}
    assert "exceeds" in refused(total)


def test_a_name_may_not_be_both_plain_and_secret() -> None:
    assert "both" in refused({"TOKEN": "a"}, {"TOKEN": "b"})


def test_the_spec_validates_both_maps_and_hides_secrets_from_repr() -> None:
    spec = JobSpec(command="true", env={"A": "1"}, secret_env={"TOKEN": "hunter2"})
    spec.validate()
    assert "hunter2" not in repr(spec)
    assert "hunter2" not in repr(JobRun("j", 1, spec))
    with pytest.raises(InvalidInput):
        JobSpec(command="true", secret_env={"LD_PRELOAD": "/x.so"}).validate()


def test_the_store_codec_keeps_secrets() -> None:
    spec = JobSpec(command="true", env={"A": "1"}, secret_env={"TOKEN": "hunter2"})
    assert spec_from_json(spec_to_json(spec)) == spec
    assert masked(spec.secret_env) == {"TOKEN": MASK}


def test_the_worker_merges_secrets_into_the_process_env(tmp_path: Path) -> None:
    run = parse_job(
        {
            "id": "j",
            "attempt": 2,
            "command": "true",
            "env_variables": {"A": "1"},
            "secret_env": {"TOKEN": "hunter2"},
        }
    )
    env = job_env(run, {"PATH": "/bin", "WORKER_ONLY": "no"}, tmp_path)
    assert env["A"] == "1" and env["TOKEN"] == "hunter2"
    assert "WORKER_ONLY" not in env


def test_the_log_formatter_masks_environment_fields() -> None:
    record = logging.LogRecord("corral", logging.INFO, __file__, 1, "job", None, None)
    record.secret_env = {"TOKEN": "hunter2"}
    record.env_variables = {"A": "plain"}
    doc = orjson.loads(JsonFormatter().format(record))
    assert doc["secret_env"] == MASK and doc["env_variables"] == MASK


# ---- the worker's address guard ------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 spelling of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 spelling of 127.0.0.1
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "non-global"),
        ("240.0.0.1", "private"),
    ],
)
def test_addresses_the_worker_refuses(address: str, kind: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


class RecordingBackend(httpcore.AsyncMockBackend):
    """Records where the guard connects, and answers one canned HTTP response."""

    def __init__(self) -> None:
        super().__init__([b"HTTP/1.1 200 OK\r\n", b"Content-Length: 2\r\n", b"\r\n", b"ok"])
        self.connected: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        return await super().connect_tcp(host, port)


def fixed_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """A resolver that answers from ``answers``: no real DNS in unit tests."""

    async def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr("corral.agent.netguard.resolve", resolve)


async def test_a_loopback_url_is_refused_before_any_connection() -> None:
    backend = RecordingBackend()
    async with guarded_client(backend) as http:
        with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
            await http.get("http://127.0.0.1:9/tool")
    assert backend.connected == []


async def test_one_private_answer_among_public_ones_refuses_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixed_resolver(monkeypatch, {"mixed.test": ["93.184.215.14", "10.0.0.5"]})
    backend = RecordingBackend()
    async with guarded_client(backend) as http:
        with pytest.raises(AddressRefused, match=r"mixed\.test \(10\.0\.0\.5\) is a private"):
            await http.get("http://mixed.test/tool")
    assert backend.connected == []


async def test_the_guard_connects_to_the_address_it_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixed_resolver(monkeypatch, {"files.test": ["93.184.215.14"]})
    backend = RecordingBackend()
    async with guarded_client(backend) as http:
        answer = await http.get("http://files.test/tool")
    assert answer.text == "ok"
    assert backend.connected == ["93.184.215.14"]  # not the name: no second lookup to rebind
    assert answer.request.headers["host"] == "files.test"


async def test_a_redirect_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixed_resolver(
        monkeypatch, {"files.test": ["93.184.215.14"], "169.254.169.254": ["169.254.169.254"]}
    )
    redirect = [
        b"HTTP/1.1 302 Found\r\n",
        b"Location: http://169.254.169.254/latest/meta-data\r\n",
        b"Content-Length: 0\r\n",
        b"\r\n",
    ]
    async with guarded_client(httpcore.AsyncMockBackend(redirect)) as http:
        with pytest.raises(AddressRefused, match="link-local"):
            await http.get("http://files.test/tool", follow_redirects=True)


async def test_the_binary_cache_fails_the_job_for_good(tmp_path: Path) -> None:
    async with guarded_client(RecordingBackend()) as http:
        cache = BinaryCache(tmp_path, http)
        with pytest.raises(BinaryError) as caught:
            await cache.fetch("http://localhost:9/tool", "0" * 64)
    assert not caught.value.retryable
    assert "binary_url refused" in caught.value.message
    assert "--allow-private-urls" in caught.value.message


async def test_the_binary_cache_fetches_only_http(tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(BinaryError, match="http"):
            await BinaryCache(tmp_path, http).fetch("file:///bin/sh", "0" * 64)
