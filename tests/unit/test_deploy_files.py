"""deploy/ holds files people copy: each must say what the code accepts. The systemd units
pass ``systemd-analyze verify`` and the server's scores as well hardened; every ``corral``
command in the units, the compose file and the Containerfile names real options; the
image is built by the project's own scripts; the compose file runs the HAProxy
configuration the multi-host test runs, with the variables that configuration reads."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.acceptance.test_docs_commands import problems_of
from tests.docs_blocks import REPO, commands_in

DEPLOY = REPO / "deploy"
UNITS = ("corral-server.service", "corral-worker.service")


def unit_lines(name: str, key: str) -> list[str]:
    text = (DEPLOY / name).read_text()
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def corral_words(argv: list[str]) -> list[str]:
    """The words after ``corral`` in an argv, or the whole argv of the image's entrypoint."""
    if argv and argv[0].endswith("corral"):
        return argv[1:]
    return argv


def test_every_corral_command_in_deploy_names_real_options() -> None:
    commands: list[tuple[str, list[str]]] = []
    for name in UNITS:
        for line in unit_lines(name, "ExecStart"):
            commands.append((name, corral_words(shlex.split(line))))
    for service, spec in compose()["services"].items():
        command = spec.get("command")
        if not spec.get("image", "").startswith("corral") or not isinstance(command, list):
            continue
        if spec.get("entrypoint", ["corral"])[0] == "sh":  # a script: its corral commands
            commands += [(f"compose {service}", w) for c in command for w in commands_in(c)]
        else:
            commands.append((f"compose {service}", command))
    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Containerfile").read_text(), re.M)
    assert cmd is not None
    commands.append(("Containerfile CMD", yaml.safe_load(cmd.group(1))))
    assert len(commands) >= 7
    wrong = [f"{where}: {p}" for where, words in commands for p in problems_of(words)]
    assert wrong == [], "\n".join(wrong)


def test_the_worker_unit_reads_its_token_from_a_credential_never_argv_or_env() -> None:
    (start,) = unit_lines("corral-worker.service", "ExecStart")
    assert "--token-file %d/worker.token" in start and "--token " not in start
    assert unit_lines("corral-worker.service", "LoadCredential") == [
        "worker.token:/etc/corral/worker.token"
    ]
    assert "CORRAL_TOKEN" not in (DEPLOY / "corral-worker.service").read_text()


def test_the_image_is_built_by_the_scripts_the_tests_run() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert "scripts/dist.sh" in text and "install.sh" in text
    for script in re.findall(r"scripts/[\w.-]+", text):
        assert (REPO / script).is_file(), f"the Containerfile names {script}, which is not there"


def test_compose_runs_the_topology_and_the_shipped_haproxy_configuration() -> None:
    services = compose()["services"]
    assert set(services) == {
        "postgres",
        "server1",
        "server2",
        "haproxy",
        "tokens",
        "worker1",
        "worker2",
    }
    for name in ("server1", "server2"):
        env = services[name]["environment"]
        assert env["CORRAL_DATABASE_URL"].startswith("postgresql://")
    for name in ("worker1", "worker2"):
        command = services[name]["command"]
        assert command[command.index("--server") + 1] == "http://haproxy:3000"
        assert "--token-file" in command and "--token" not in command
        assert services[name]["cap_drop"] == ["ALL"]
    lb = services["haproxy"]
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    cfg = DEPLOY / "haproxy.cfg"
    if not cfg.exists():
        pytest.skip("deploy/haproxy.cfg comes with the multi-host test, not in this tree yet")
    text = cfg.read_text()
    read = set(re.findall(r"\$\{(CORRAL_LB_\w+)\}", text))
    required = set(re.findall(r"\.if !defined\((CORRAL_LB_\w+)\)", text))
    given = {k for k in lb["environment"] if k.startswith("CORRAL_LB_")}
    assert given <= read, f"compose sets variables haproxy.cfg never reads: {given - read}"
    assert required <= given, f"compose leaves out what haproxy.cfg needs: {required - given}"


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)"
)


def scratch_root(tmp_path: Path) -> Path:
    """A root holding the units, an executable /opt/corral/bin/corral and systemd's own
    units, so that verify checks ours without touching the machine's."""
    binary = tmp_path / "opt" / "corral" / "bin" / "corral"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    for name in UNITS:
        shutil.copy(DEPLOY / name, units / name)
    (tmp_path / "usr" / "lib" / "systemd").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "systemd" / "system").symlink_to("/lib/systemd/system")
    return tmp_path


@needs_systemd
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    paths = [str(root / "etc" / "systemd" / "system" / name) for name in UNITS]
    done = subprocess.run(
        [str(SYSTEMD_ANALYZE), f"--root={root}", "verify", *paths],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and bad values too; it only says so.
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


@needs_systemd
def test_the_server_unit_scores_as_well_hardened(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    done = subprocess.run(
        [str(SYSTEMD_ANALYZE), "security", "--offline=true", f"--root={root}", UNITS[0]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for corral-server.service: ([\d.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout
