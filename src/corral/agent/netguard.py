"""Keep downloads named by a job (``binary_url``) off the worker's own networks.

A job's submitter chooses the URL, but the worker makes the request, from
inside whatever network the worker sits in: without a guard, a job could make
it fetch from the cloud metadata service (169.254.169.254), a database admin
page on 10.x or a service on the worker's loopback. So every address a host
name resolves to is checked, and a URL is refused if *any* of them is
loopback, link-local, private (RFC 1918, ULA, special-purpose), unspecified,
multicast, reserved or otherwise not globally routable. Operators whose
binaries live on an internal server start the worker with
``--allow-private-urls`` and get the plain client.

DNS rebinding (a name that answers with a public address when checked and a
private one when connected) is defeated by resolving once and connecting to
the very address that was checked: the guard is an httpcore network backend,
the layer that opens the TCP connection, so httpx still sends the original
``Host`` header and uses the original name for TLS SNI and certificate checks.
Every redirect hop opens its connection through the same backend. A custom
transport also turns off httpx's environment proxies, which is what we want:
through a proxy the worker could not see the real destination.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # DNS64 spells every IPv4 host like this
ALLOW_HINT = "start the worker with --allow-private-urls to allow it"


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address the worker may not fetch from."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def refusal(ip: IPAddress) -> str | None:
    """Why the worker may not connect to ``ip`` (a short kind of address), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:  # judged by the IPv4 host it really reaches
            ip = embedded
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),  # e.g. 100.64.0.0/10, carrier-grade NAT
    )
    return next((kind for kind, hit in checks if hit), None)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]))] = None
    return list(found)


def check(host: str, addresses: Iterable[IPAddress]) -> None:
    """Refuse the host if any one of its addresses is refused, naming which and why."""
    for ip in addresses:
        kind = refusal(ip)
        if kind is not None:
            named = host if host == str(ip) else f"{host} ({ip})"
            raise AddressRefused(f"binary_url refused: {named} is a {kind} address; {ALLOW_HINT}")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to one of those checked addresses."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        async with asyncio.timeout(timeout):
            addresses = await resolve(host, port)
        check(host, addresses)
        failure: Exception = httpcore.ConnectError(f"no address for {host}")
        for ip in addresses:  # as the resolver ordered them, like a plain connect
            try:
                return await self.inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("binary_url refused: unix sockets are never fetched from")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_client(backend: httpcore.AsyncNetworkBackend | None = None) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection goes through ``GuardedBackend``.

    httpx takes no network backend, so its transport's connection pool is swapped
    for one built the same way plus the guard; a unit test proves the guard is
    still consulted, so an httpx upgrade that changes this fails loudly.
    """
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=GuardedBackend(backend),
    )
    return httpx.AsyncClient(transport=transport)
