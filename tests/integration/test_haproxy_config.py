"""``deploy/haproxy.cfg`` as HAProxy itself reads it (``haproxy -c``), for every way the
deployment guide sets it: a missing address is an error naming the variable, and the
optional parts (TLS, more replicas, the stats socket, metrics, a user) all parse.

What it does under load and faults is the multi-host test's job
(tests/acceptance/test_multihost.py); this one is quick and needs no root.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.multihost import HAPROXY, HAPROXY_CFG
from tests.processes import clean_env

MINIMAL = {"CORRAL_LB_BIND": "127.0.0.1:8080", "CORRAL_LB_REPLICA1": "127.0.0.1:3000"}


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    if HAPROXY is None:
        pytest.fail("HAProxy is not installed (apt-get install haproxy; make setup-tests does)")
    # Only these variables: the test must not depend on what the caller exported.
    quiet = {k: v for k, v in clean_env().items() if not k.startswith("CORRAL_LB_")}
    argv = [HAPROXY, "-c", "-f", str(HAPROXY_CFG)]
    return subprocess.run(argv, env={**quiet, **env}, capture_output=True, text=True)


def test_the_two_required_addresses_are_enough() -> None:
    done = _check(**MINIMAL)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", sorted(MINIMAL))
def test_a_missing_address_is_an_error_that_names_its_variable(missing: str) -> None:
    env = {k: v for k, v in MINIMAL.items() if k != missing}
    done = _check(**env)
    assert done.returncode != 0
    assert f"{missing} is not set" in done.stderr


def test_every_option_together_parses(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed (Debian package openssl)")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    names = ["-subj", "/CN=corral.test", "-keyout", str(key), "-out", str(cert)]
    subprocess.run([openssl, *request, *names], check=True, capture_output=True)
    bundle = tmp_path / "corral.pem"
    bundle.write_text(cert.read_text() + key.read_text())
    replicas = {f"CORRAL_LB_REPLICA{n}": f"127.0.0.1:{3000 + n}" for n in range(1, 6)}
    done = _check(
        CORRAL_LB_BIND="127.0.0.1:8443",
        CORRAL_LB_TLS_CERT=str(bundle),
        CORRAL_LB_STATS_SOCKET=str(tmp_path / "admin.sock"),
        CORRAL_LB_METRICS_BIND="127.0.0.1:8405",
        CORRAL_LB_USER="root",
        **replicas,
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr.lower(), done.stderr
