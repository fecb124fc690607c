"""A Corral deployment spread over hosts (``tests/netns.py``), for the multi-host test.

One host runs PostgreSQL, three run one ``corral server`` each, one runs HAProxy with
``deploy/haproxy.cfg`` exactly as shipped (its addresses given in the environment),
two run two ``corral worker``s each, and one is the client the test speaks from.
Every process is a real one, started on its host with ``ip netns exec``; each host
keeps its files (data dir, logs, the workers' ledger) in a directory of its own.

``Fleet.close`` kills whatever still runs, by pid, and deletes the namespaces, also
when the test failed half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.netns import SUBNET, Host, Network
from tests.pg_server import USER, PgServer
from tests.processes import CORRAL, clean_env

REPO = Path(__file__).resolve().parents[1]
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"
SERVER_PORT = 3000  # every replica on port 3000 of its own host, as on real machines
LB_PORT = 8080
PG_PORT = 5432
API = "/api/v1"
# Debian puts it in /usr/sbin, which a non-root PATH may lack.
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "multi-host-admin-password"
WORKER_HOSTS = {"w1": ("w1a", "w1b"), "w2": ("w2a", "w2b")}
WORKER_ARGS = ("--isolation", "none", "--concurrency", "6", "--grace", "1")


class HostPg(PgServer):
    """The suite's throwaway PostgreSQL, run on one host and reachable from the others."""

    def __init__(self, on: Host) -> None:
        super().__init__()
        self.on = on
        self.host = on.address

    def _command(self, *args: str) -> list[str]:
        return self.on.command(super()._command(*args))

    def _next_port(self) -> int:
        return PG_PORT

    def launch(self) -> None:
        hba = self.data / "pg_hba.conf"
        line = f"host all {USER} {SUBNET}.0/24 trust\n"
        if line not in hba.read_text():
            hba.write_text(hba.read_text() + line)
        super().launch()

    def restart(self) -> None:
        """A clean restart, as ``systemctl restart postgresql`` does: clients are cut off."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.launch()


@dataclass
class Replica:
    """One ``corral server`` on its own host, restartable in place."""

    name: str
    host: Host
    root: Path
    dsn: str
    lb_address: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{SERVER_PORT}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def start(self) -> None:
        argv = [*CORRAL, "server", "--host", self.host.address, "--port", str(SERVER_PORT)]
        argv += ["--data-dir", str(self.root / "data"), "--database-url", self.dsn]
        env = clean_env(
            FORWARDED_ALLOW_IPS=self.lb_address,  # what a deployment behind HAProxy sets
            CORRAL_ADMIN_EMAIL=ADMIN_EMAIL,  # used by the first start on an empty database
            CORRAL_ADMIN_PASSWORD=ADMIN_PASSWORD,
            CORRAL_LOG_LEVEL="info",
        )
        with self.log.open("ab") as log:
            self.proc = self.host.popen(argv, env=env, stdout=log, stderr=log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def healthy(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"{self.name} exited: {tail(self.log)}"
        try:
            return httpx.get(self.url + API + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took. Fails after ``seconds``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def cpu_seconds(host: Host) -> float:
    """CPU time (user + system) of the processes on ``host``, with their reaped children.

    A process that died unreaped by anything on the host (a SIGKILLed replica) takes
    its share with it, so this undercounts around such a fault.
    """
    ticks = 0
    for pid in host.pids():
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def lb_states(stats_socket: Path) -> dict[str, str]:
    """HAProxy's view of each replica (``replica1`` -> ``UP``, ``DOWN``, ``UP 1/2``...)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    rows = csv.DictReader(data.decode().removeprefix("# ").splitlines())
    return {
        row["svname"]: row["status"]
        for row in rows
        if row.get("pxname") == "replicas" and row["svname"].startswith("replica")
    }


@dataclass
class Fleet:
    """The whole deployment; ``start`` brings it up, ``close`` takes everything down."""

    root: Path
    net: Network = field(default_factory=Network)
    replicas: list[Replica] = field(default_factory=list)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None
    pg: HostPg | None = None
    admin: str = ""

    def __post_init__(self) -> None:
        try:
            for name in ("client", "db", "r1", "r2", "r3", "lb", *WORKER_HOSTS):
                self.net.add_host(name)
                (self.root / name).mkdir()
        except BaseException:
            self.net.close()
            raise

    def host(self, name: str) -> Host:
        return self.net.hosts[name]

    @property
    def client(self) -> Host:
        return self.host("client")

    @property
    def lb_url(self) -> str:
        return f"http://{self.host('lb').address}:{LB_PORT}"

    @property
    def stats_socket(self) -> Path:
        return self.root / "lb" / "admin.sock"

    def ledger(self, worker_host: str) -> Path:
        """The file every job run on ``worker_host`` appends its id and attempt to."""
        return self.root / worker_host / "ledger"

    def start(self) -> None:
        """Bring every host up; the caller's thread must be inside the client host."""
        self.pg = HostPg(self.host("db"))
        self.pg.start()
        asyncio.run(_create_database(self.pg.dsn(), "corral"))
        lb = self.host("lb").address
        for name in ("r1", "r2", "r3"):
            root = self.root / name
            self.replicas.append(Replica(name, self.host(name), root, self.pg.dsn("corral"), lb))
        # The first replica migrates the empty database and mints the admin token (the
        # file the test reads it from); then everything else starts at once: workers
        # keep trying to register until HAProxy and a replica behind it answer.
        first = self.replicas[0]
        first.start()
        wait_for(first.healthy, 60, "replica r1 to serve")
        self.admin = (first.root / "data" / "admin-token").read_text().strip()
        for replica in self.replicas[1:]:
            replica.start()
        self._start_haproxy()
        self._start_workers(first.url)
        for replica in self.replicas[1:]:
            wait_for(replica.healthy, 60, f"replica {replica.name} to serve")
        wait_for(self._all_up, 30, "HAProxy to see every replica up")
        wait_for(self._workers_online, 60, "the four workers to register")

    def _start_haproxy(self) -> None:
        env = clean_env(
            CORRAL_LB_BIND=f"{self.host('lb').address}:{LB_PORT}",
            CORRAL_LB_STATS_SOCKET=str(self.stats_socket),
            CORRAL_LB_USER="haproxy",  # Debian's package made it; bound first, then dropped
        )
        for number, replica in enumerate(self.replicas, 1):
            env[f"CORRAL_LB_REPLICA{number}"] = f"{replica.host.address}:{SERVER_PORT}"
        with self.lb_log.open("ab") as out:
            self.haproxy = self.host("lb").popen(
                [str(HAPROXY), "-db", "-f", str(HAPROXY_CFG)], env=env, stdout=out, stderr=out
            )

    @property
    def lb_log(self) -> Path:
        return self.root / "lb" / "haproxy.log"

    def _all_up(self) -> bool:
        assert self.haproxy is not None and self.haproxy.poll() is None, tail(self.lb_log)
        with contextlib.suppress(OSError):
            return set(lb_states(self.stats_socket).values()) == {"UP"}
        return False

    def _start_workers(self, replica_url: str) -> None:
        with self.http(replica_url) as http:
            answer = http.post(API + "/admin/tokens", json={"role": "worker", "name": "fleet"})
            token = answer.raise_for_status().json()["token"]
        token_file = self.root / "worker-token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        for host_name, names in WORKER_HOSTS.items():
            self.ledger(host_name).touch()
            for name in names:
                self.workers[name] = self._start_worker(host_name, name, token_file)

    def _start_worker(self, host_name: str, name: str, token_file: Path) -> subprocess.Popen[bytes]:
        root = self.root / host_name
        argv = [*CORRAL, "worker", "--server", self.lb_url, "--token-file", str(token_file)]
        argv += ["--name", name, "--work-dir", str(root / f"work-{name}"), *WORKER_ARGS]
        with (root / f"{name}.log").open("ab") as log:
            return self.host(host_name).popen(argv, env=clean_env(), stdout=log, stderr=log)

    def _workers_online(self) -> bool:
        for name, proc in self.workers.items():
            assert proc.poll() is None, f"worker {name} exited: {tail(self.worker_log(name))}"
        with self.http() as http:
            answer = http.get(API + "/executors")
        online = {e["executor_id"] for e in answer.json()} if answer.status_code == 200 else set()
        return set(self.workers) <= online

    def worker_log(self, name: str) -> Path:
        host_name = next(h for h, names in WORKER_HOSTS.items() if name in names)
        return self.root / host_name / f"{name}.log"

    def http(self, url: str | None = None, token: str | None = None) -> httpx.Client:
        """A client of ``url`` (the load balancer by default) with a token (the admin's)."""
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return httpx.Client(base_url=url or self.lb_url, headers=headers, timeout=30)

    def close(self) -> None:
        """Stop everything this fleet started, then remove its hosts; never raises."""
        for proc in self.workers.values():
            with contextlib.suppress(OSError):
                proc.kill()
        if self.pg is not None:
            with contextlib.suppress(RuntimeError):
                self.pg.stop()
        self.net.close()  # kills by pid whatever still runs on the hosts (servers, HAProxy)
        started = [*self.workers.values(), *(r.proc for r in self.replicas), self.haproxy]
        for process in started:
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(10)


async def _create_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
