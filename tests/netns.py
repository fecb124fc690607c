"""Hosts for multi-host tests: network namespaces on a private bridge, on this machine.

A ``Network`` is one namespace holding a bridge (the "switch") and any number of
host namespaces, each with one veth leg on that bridge and one address. Nothing is
connected to the machine's own namespace, so traffic between the hosts cannot leave
them: no route, no NAT, no interface of the machine is touched.

The hosts' addresses are loopback addresses (127.18.0.0/24), made routable inside
each host's namespace only (``route_localnet``, and ``lo`` keeps just 127.0.0.1).
Why: a socket that by some mistake is opened from the machine's own namespace to a
host's address then meets the machine's loopback (connection refused) instead of
following the default route off the machine, as any other address would.

Processes are started in a host with ``ip netns exec``; code in this process reaches
a host's network with ``Host.inside()``, which moves the calling thread (and the
threads and sockets it makes meanwhile) into the namespace and back. ``close``
kills every process left in the namespaces, by pid, then deletes them, and runs at
exit as well, so a failed or interrupted test leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBNET = "127.18.0"  # .1 is left unused
PREFIX = "corral-mh"  # every namespace this module makes: corral-mh<pid>-<name>
CLONE_NEWNET = 0x40000000
_NETNS_DIR = Path("/run/netns")


def unavailable() -> str | None:
    """Why namespaces cannot be made here (the test then skips with it), or None."""
    if not Path("/proc/self/ns/net").exists():
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (run `make test` as root)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` is refused here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def checked(argv: Sequence[str]) -> None:
    """Run ``argv``; a failure is an error naming the command and what it said."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _ip(*args: str) -> None:
    checked(["ip", *args])


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@dataclass
class Host:
    """One namespace with one address on the network."""

    name: str
    netns: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside this host."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def pids(self) -> list[int]:
        """The processes running on this host."""
        return _pids_in(self.netns)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(argv), **kwargs)

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(argv), capture_output=True, text=True, **kwargs)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Run the calling thread in this host's network until the block ends.

        Sockets opened meanwhile stay in this network for good, and threads started
        meanwhile are born in it; both are what a client on this host needs.
        """
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(_NETNS_DIR / self.netns, os.O_RDONLY)
        try:
            _setns(target)
            try:
                # Never talk to a host's address from anywhere else.
                assert os.stat("/proc/thread-self/ns/net").st_ino == os.fstat(target).st_ino
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)


class Network:
    """A bridge in a namespace of its own and the hosts plugged into it."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.switch = f"{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self._closed = False
        _remove_stale()
        atexit.register(self.close)
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, name: str) -> Host:
        """A new host on the bridge, with the next free address."""
        host = Host(name, f"{self.tag}-{name}", f"{SUBNET}.{len(self.hosts) + 2}")
        leg = f"h{len(self.hosts)}"
        _ip("netns", "add", host.netns)
        self.hosts[name] = host
        _ip(
            "-n",
            self.switch,
            "link",
            "add",
            leg,
            "type",
            "veth",
            "peer",
            "eth0",
            "netns",
            host.netns,
        )
        _ip("-n", self.switch, "link", "set", leg, "master", "br0", "up")
        # Loopback addresses on eth0: allowed to route, and no longer all local to lo.
        with host.inside():
            for device in ("all", "eth0"):
                Path(f"/proc/sys/net/ipv4/conf/{device}/route_localnet").write_text("1")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        _ip("-n", host.netns, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        return host

    def close(self) -> None:
        """Kill what still runs in the hosts, then delete every namespace; idempotent."""
        if self._closed:
            return
        self._closed = True
        names = [host.netns for host in self.hosts.values()] + [self.switch]
        _kill_and_delete(names)


def _pids_in(netns: str) -> list[int]:
    done = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(pid) for pid in done.stdout.split()] if done.returncode == 0 else []


def _kill_and_delete(names: Sequence[str]) -> None:
    """SIGKILL each process left in ``names`` (by pid), wait for them, delete the names."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [pid for name in names for pid in _pids_in(name)]
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _remove_stale() -> None:
    """Namespaces of an earlier run of this module whose process is gone (killed hard)."""
    if not _NETNS_DIR.is_dir():
        return
    stale: list[str] = []
    for entry in _NETNS_DIR.iterdir():
        owner = entry.name.removeprefix(PREFIX).split("-", 1)[0]
        if entry.name.startswith(PREFIX) and owner.isdigit() and not _alive(int(owner)):
            stale.append(entry.name)
    _kill_and_delete(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
