"""The server's edge as deployed: HTTPS from its own ``--tls-cert/--tls-key`` (a worker and
the CLI trusting a private CA through ``SSL_CERT_FILE``), a bad certificate refused in one
line before anything starts, and ``--forwarded-allow-ips``: behind a proxy the per-IP
limits count the client the proxy saw, and only for the proxies named."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from tests.processes import CORRAL, clean_env, free_port, server_process

OPENSSL_SELF_SIGNED = ["openssl", "req", "-x509", "-newkey", "ec", "-nodes", "-days", "30"]
OPENSSL_SELF_SIGNED += ["-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/CN=localhost"]
OPENSSL_SELF_SIGNED += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]


def self_signed(where: Path, name: str = "tls") -> tuple[Path, Path]:
    cert, key = where / f"{name}.crt", where / f"{name}.key"
    argv = [*OPENSSL_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)]
    subprocess.run(argv, check=True, capture_output=True)
    return cert, key


@contextmanager
def server(root: Path, *args: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server of the test's own, which must stop cleanly (exit status 0) when asked."""
    log = root / f"server-{len(list(root.glob('server-*.log')))}.log"
    with server_process(root / "data", log, *args, env=clean_env(**env)) as (url, proc):
        yield url, proc
    assert proc.returncode == 0, log.read_text()[-3000:]


@pytest.mark.slow  # a server, a worker and the CLI over TLS: several seconds
def test_tls_server_is_reached_by_a_worker_and_the_cli_trusting_its_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with server(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as (url, _):
        assert "listening on https://" in next(tmp_path.glob("server-*.log")).read_text()
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port is not served
            httpx.get(url.replace("https://", "http://") + "/api/v1/health", timeout=5)
        with pytest.raises(httpx.ConnectError):  # nor is a client that does not trust it
            httpx.get(url + "/api/v1/health", timeout=5)
        admin = (tmp_path / "data" / "admin-token").read_text().strip()
        worker_token = subprocess.run(
            [*CORRAL, "token", "create", "--role", "worker", "--data-dir", str(tmp_path / "data")],
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        token_file = tmp_path / "worker.token"
        token_file.touch(0o600)
        token_file.write_text(worker_token)
        trusting = clean_env(SSL_CERT_FILE=str(cert))
        argv = [*CORRAL, "worker", "--server", url, "--token-file", str(token_file)]
        argv += ["--work-dir", str(tmp_path / "work"), "--isolation", "none", "--claim-wait", "2"]
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(argv, env=trusting, stdout=log, stderr=log)
        try:
            done = subprocess.run(
                [*CORRAL, "submit", "--follow", "--", "echo", "over-tls"],
                env={**trusting, "CORRAL_URL": url, "CORRAL_TOKEN": admin},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr + (tmp_path / "worker.log").read_text()
            assert done.stdout.strip() == "over-tls"
        finally:
            worker.terminate()
            assert worker.wait(60) == 0


def _refused(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*CORRAL, "server", "--port", str(free_port()), "--data-dir", str(tmp_path / "d")]
    return subprocess.run(
        [*argv, *args], env=clean_env(), capture_output=True, text=True, timeout=60
    )


def test_a_bad_tls_pair_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    _, other_key = self_signed(tmp_path, "other")
    missing = _refused(tmp_path, "--tls-cert", str(cert), "--tls-key", str(tmp_path / "no.key"))
    mismatched = _refused(tmp_path, "--tls-cert", str(cert), "--tls-key", str(other_key))
    for done, said in ((missing, "no.key: No such file"), (mismatched, "KEY_VALUES_MISMATCH")):
        assert done.returncode == 1, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert orjson.loads(line)["action"] == "tls_failed" and said in line, line
    alone = _refused(tmp_path, "--tls-cert", str(cert))
    assert alone.returncode == 2 and "--tls-cert and --tls-key go together" in alone.stderr
    assert not (tmp_path / "d" / "admin-token").exists()  # nothing happened before


def _bad_auth(url: str, client: str) -> int:
    headers = {"Authorization": "Bearer not-a-token", "X-Forwarded-For": client}
    return httpx.get(url + "/api/v1/jobs", headers=headers, timeout=10).status_code


@pytest.mark.slow  # two servers, one after the other
def test_per_ip_limits_count_the_forwarded_client_of_a_trusted_proxy_only(tmp_path: Path) -> None:
    limited = {"CORRAL_AUTH_FAILURE_RATE_LIMIT": "2/minute"}
    # Loopback is the trusted proxy: each forwarded client has its own budget.
    with server(tmp_path, "--forwarded-allow-ips", "127.0.0.1", **limited) as (url, _):
        assert [_bad_auth(url, "10.0.0.1") for _ in range(3)] == [401, 401, 429]
        assert _bad_auth(url, "10.0.0.2") == 401
    # The proxy named is elsewhere: X-Forwarded-For from loopback is a claim, not a fact.
    with server(tmp_path, "--forwarded-allow-ips", "10.9.9.9", **limited) as (url, _):
        assert [_bad_auth(url, "10.0.0.1") for _ in range(3)] == [401, 401, 429]
        assert _bad_auth(url, "10.0.0.2") == 429
