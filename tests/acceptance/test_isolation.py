"""Issue 12, isolation: the attacks of the issue, run by real jobs on a real `corral worker`
(as root) at each level, and each one fails where the level says it should.

The workers here work under a directory every uid may traverse (pytest's own are 0700),
and read their token from a file there, so what keeps a job out is the worker's own
modes and namespaces, never the test's directories.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.acceptance.test_worker_e2e import Cluster, cluster
from tests.faultproxy import PASS, FaultProxy
from tests.live import LiveServer
from tests.processes import CORRAL, STARTUP, clean_env, poll, start_worker

__all__ = ["cluster"]  # the module's dispatcher, shared with the other acceptance modules

SECRET = "victim-secret-8d1f"
PY = "/usr/bin/python3"
ISOLATED = ["user", "sandbox"]

TOKEN_ATTACK = r"""
env
cat /proc/$PPID/environ /proc/$PPID/cmdline
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do cat "$f"; echo; done
cat "$TOKEN_FILE"
true
"""


@pytest.fixture
def tool(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Serve a script that prints ``real-binary`` on 127.0.0.1; yields (url, sha256)."""
    script = b"#!/bin/sh\necho real-binary\n"
    (tmp_path / "tool").write_bytes(script)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_address[1]}/tool",
            hashlib.sha256(script).hexdigest(),
        )
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def run_tool(cluster: Cluster, label: str, url: str, sha: str) -> dict[str, object]:
    body = {"binary_url": url, "binary_sha256": sha, "type": "tool", "priority": "high"}
    return cluster.wait_status(cluster.submit(labels=[label], **body), ("completed", "failed"), 30)


@pytest.fixture
def open_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="corral-iso-", dir="/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def start(
    cluster: Cluster, root: Path, name: str, level: str, *args: str
) -> subprocess.Popen[bytes]:
    """A worker at ``level`` with label ``name``, its token both in CORRAL_TOKEN and in a
    0600 token file, its work dir at ``root/work-<name>``."""
    token_file = root / f"{name}.token"
    token_file.write_text(cluster.worker_token)
    token_file.chmod(0o600)
    argv = [*CORRAL, "worker", "--server", cluster.url, "--name", name, "--labels", name]
    argv += ["--claim-wait", "3", "--isolation", level, "--token-file", str(token_file)]
    argv += ["--work-dir", str(root / f"work-{name}"), *args]
    with (cluster.root / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            argv, env=clean_env(CORRAL_TOKEN=cluster.worker_token), stdout=log, stderr=log
        )
    cluster.workers.append(proc)
    return proc


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    worker.wait(20)


def run_job(cluster: Cluster, label: str, command: str, **body: object) -> dict[str, object]:
    job_id = cluster.submit(command=command, labels=[label], **body)
    return cluster.wait_status(job_id, ("completed", "failed"), 30)


@pytest.mark.parametrize("level", ISOLATED)
def test_a_job_cannot_read_the_worker_token(cluster: Cluster, open_root: Path, level: str) -> None:
    """Not in its environment, nor the worker's (/proc/$PPID/environ), nor any argv or
    environ under /proc, nor the token file: the job's output never holds the token."""
    worker = start(cluster, open_root, f"token-{level}", level)
    token_file = open_root / f"token-{level}.token"
    job = run_job(
        cluster,
        f"token-{level}",
        TOKEN_ATTACK + " 2>&1",
        env_variables={"TOKEN_FILE": str(token_file)},
    )
    stop(worker)
    assert job["status"] == "completed", job
    output = f"{job['stdout']}{job['stderr']}"
    assert "CORRAL_JOB_ID=" in output  # the attack ran: it printed its own environment
    assert cluster.worker_token not in output
    assert "CORRAL_TOKEN" not in output


def test_at_isolation_none_the_same_attack_reads_the_token(
    cluster: Cluster, open_root: Path
) -> None:
    """The control: a job at ``none`` runs as the worker, so the attack above succeeds."""
    worker = start(cluster, open_root, "token-none", "none")
    token_file = open_root / "token-none.token"
    job = run_job(
        cluster, "token-none", TOKEN_ATTACK + " 2>&1", env_variables={"TOKEN_FILE": str(token_file)}
    )
    stop(worker)
    assert cluster.worker_token in f"{job['stdout']}"
    assert "isolation none" in (cluster.root / "token-none.log").read_text()


@pytest.mark.parametrize("level", ISOLATED)
def test_a_job_runs_as_its_own_uid_in_its_own_private_dir(
    cluster: Cluster, open_root: Path, level: str
) -> None:
    worker = start(cluster, open_root, f"uid-{level}", level)
    job = run_job(cluster, f"uid-{level}", 'id -u; id -g; stat -c "%u %a" .; echo "$HOME"; pwd')
    stop(worker)
    assert job["status"] == "completed", job
    uid, gid, dir_stat, home, cwd = str(job["stdout"]).split("\n")[:5]
    assert 200000 <= int(uid) <= 265535
    assert gid == uid
    assert dir_stat == f"{uid} 700"
    assert home == cwd
    log = (cluster.root / f"uid-{level}.log").read_text()
    assert f'"level":"{level}"' in log, log


@pytest.mark.parametrize("level", ISOLATED)
def test_a_job_cannot_read_another_jobs_environment_or_directory(
    cluster: Cluster, open_root: Path, level: str
) -> None:
    """A victim job holds a secret in its environment and in a file of its directory; a
    neighbour running beside it looks through /proc and at the victim's directory."""
    label = f"neighbours-{level}"
    worker = start(cluster, open_root, label, level, "--concurrency", "2")
    victim = cluster.submit(
        command='echo "$S" > secret.txt; echo ready; sleep 30',
        labels=[label],
        secret_env={"S": SECRET},
    )
    poll(lambda: "ready" in str(cluster.job(victim)["stdout"]), 20, "the victim to start")
    victim_dir = open_root / f"work-{label}" / "jobs" / f"{victim}.1"
    attack = (
        'for f in /proc/[0-9]*/environ; do cat "$f"; echo; done; '
        f"ls {victim_dir}; cat {victim_dir}/secret.txt; ls {victim_dir.parent}; true"
    )
    job = run_job(cluster, label, attack + " 2>&1")
    with cluster.http() as http:
        http.delete(f"/jobs/{victim}").raise_for_status()
    stop(worker)
    assert job["status"] == "completed", job
    assert SECRET not in f"{job['stdout']}{job['stderr']}"


@pytest.mark.parametrize("level", ISOLATED)
def test_a_job_cannot_write_to_the_binary_cache(
    cluster: Cluster, open_root: Path, level: str, tool: tuple[str, str]
) -> None:
    """A job plants a script under the cache name of a binary another user will run; the
    write fails, and the other job runs the real binary, downloaded."""
    url, sha = tool
    label = f"cache-{level}"
    worker = start(cluster, open_root, label, level, "--allow-private-urls")
    cache = open_root / f"work-{label}" / "binaries"
    script = '"#!/bin/sh\\necho PWNED\\n"'
    plant = (  # overwrite the entry, or replace it through the directory (not there at sandbox)
        f"cd {cache} || exit 0; printf {script} > {sha} && echo planted; "
        f"printf {script} > .new && chmod 755 .new && mv -f .new {sha} && echo planted; true"
    )
    first = run_tool(cluster, label, url, sha)  # the cache and its entry now exist
    planted = run_job(cluster, label, plant)
    ran = run_tool(cluster, label, url, sha)
    stop(worker)
    assert first["stdout"] == "real-binary\n"
    assert planted["status"] == "completed", planted
    assert "planted" not in str(planted["stdout"])  # both writes were refused
    assert ran["status"] == "completed", (ran["error_message"], ran["stderr"])
    assert ran["stdout"] == "real-binary\n"


@pytest.mark.parametrize("level", ["none", *ISOLATED])
def test_a_planted_cache_entry_with_a_wrong_sha256_never_runs(
    cluster: Cluster, open_root: Path, level: str, tool: tuple[str, str]
) -> None:
    """Whoever managed to write the cache (here the test, as root), the entry is hashed
    again before the run: it does not match its name, so the real binary is fetched."""
    url, sha = tool
    label = f"planted-{level}"
    cache = open_root / f"work-{label}" / "binaries"
    cache.mkdir(parents=True)
    (cache / sha).write_text("#!/bin/sh\necho PWNED\n")
    (cache / sha).chmod(0o755)
    worker = start(cluster, open_root, label, level, "--allow-private-urls")
    ran = run_tool(cluster, label, url, sha)
    stop(worker)
    assert ran["status"] == "completed", (ran["error_message"], ran["stderr"])
    assert ran["stdout"] == "real-binary\n"
    assert hashlib.sha256((cache / sha).read_bytes()).hexdigest() == sha  # replaced
    assert '"action":"binary_cache_poisoned"' in (cluster.root / f"{label}.log").read_text()


def test_a_sandboxed_job_sees_only_its_own_processes_and_a_read_only_host(
    cluster: Cluster, open_root: Path
) -> None:
    worker = start(cluster, open_root, "pidns", "sandbox")
    job = run_job(
        cluster,
        "pidns",
        "ls /proc | grep -c '^[0-9]'; touch /etc/corral-x 2>&1; touch /tmp/x && echo tmp-ok",
    )
    stop(worker)
    lines = str(job["stdout"]).splitlines()
    assert int(lines[0]) <= 4, job  # bwrap's init, the shell, ls, grep: never the worker
    assert "Read-only file system" in lines[1]
    assert lines[2] == "tmp-ok"


def tools_only(tmp: Path, *names: str) -> str:
    """A PATH holding only ``names`` (from /usr/bin): a machine without the others."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name in names:
        (bin_dir / name).symlink_to(f"/usr/bin/{name}")
    return str(bin_dir)


def test_sandbox_refuses_to_start_where_bwrap_cannot_run(cluster: Cluster, tmp_path: Path) -> None:
    env = clean_env(CORRAL_TOKEN=cluster.worker_token, PATH=tools_only(tmp_path, "setpriv"))
    argv = [*CORRAL, "worker", "--server", cluster.url, "--isolation", "sandbox"]
    argv += ["--work-dir", str(tmp_path / "work")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "--isolation sandbox cannot work here: bwrap is not installed" in done.stderr


def test_auto_takes_user_where_bwrap_cannot_run_and_says_why(
    cluster: Cluster, open_root: Path, tmp_path: Path
) -> None:
    env = clean_env(CORRAL_TOKEN=cluster.worker_token, PATH=tools_only(tmp_path, "setpriv"))
    argv = [*CORRAL, "worker", "--server", cluster.url, "--name", "auto-user"]
    argv += ["--work-dir", str(open_root / "work"), "--labels", "auto-user"]
    with (cluster.root / "auto-user.log").open("ab") as log:
        worker = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    cluster.workers.append(worker)
    job = run_job(cluster, "auto-user", "/usr/bin/id -u")  # PATH has only setpriv
    stop(worker)
    assert int(str(job["stdout"])) >= 200000
    log_text = (cluster.root / "auto-user.log").read_text()
    assert "isolation user: auto: no sandbox (bwrap is not installed" in log_text


def test_a_worker_refuses_a_token_file_others_can_read(cluster: Cluster, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(cluster.worker_token)
    token_file.chmod(0o644)
    argv = [*CORRAL, "worker", "--server", cluster.url, "--isolation", "user"]
    argv += ["--token-file", str(token_file), "--work-dir", str(tmp_path / "work")]
    done = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "is readable by other users: chmod 600 it" in done.stderr
    assert os.stat(token_file).st_mode & 0o777 == 0o644  # the worker changed nothing


@pytest.mark.parametrize(("level", "network_control"), [("sandbox", True), ("none", False)])
def test_the_worker_registers_its_isolation_and_network_control(
    live_server: LiveServer, tmp_path: Path, level: str, network_control: bool
) -> None:
    with FaultProxy(live_server.url, lambda call: PASS) as proxy:
        token = live_server.token("worker")
        worker = start_worker(
            proxy.url, token, tmp_path, "reg", "reg.log", "--isolation", level, "--claim-wait", "1"
        )
        try:
            poll(lambda: proxy.seen("/executors"), STARTUP, "the registration")
        finally:
            stop(worker)
    body = json.loads(proxy.seen("/executors")[0].body)
    assert (body["isolation"], body["network_control"]) == (level, network_control)


def test_a_network_false_job_cannot_reach_the_dispatcher(cluster: Cluster, open_root: Path) -> None:
    """Submitted with ``"network": false``: a user-level worker (which cannot enforce it)
    never takes it; a sandbox worker runs it with no network: the dispatcher's port,
    which the same job reaches with network, does not answer."""
    port = cluster.url.rsplit(":", 1)[1]
    connect = (
        f"{PY} -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)' "
        "2>&1 | tail -1; echo done"
    )
    user = start(cluster, open_root, "nonet-user", "user", "--labels", "nonet")
    body = {"command": connect, "labels": ["nonet"]}
    offline = cluster.submit(network=False, **body)
    time.sleep(4)  # a claim or two by the user-level worker, which must not take it
    assert cluster.job(offline)["status"] == "pending"
    stop(user)
    sandbox = start(cluster, open_root, "nonet-sandbox", "sandbox", "--labels", "nonet")
    cut_off = cluster.wait_status(offline, ("completed", "failed"), 30)
    online = cluster.wait_status(cluster.submit(**body), ("completed", "failed"), 30)
    stop(sandbox)
    assert "Connection refused" in str(cut_off["stdout"]), cut_off  # its own empty loopback
    assert online["stdout"] == "done\n", online
