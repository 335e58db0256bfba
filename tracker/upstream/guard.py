"""The outbound-address guard: every connection mjdash opens is checked after DNS resolution,
at connect time, and goes to the address that was checked.

A check when a form is saved is not enough: a gateway saved earlier is still called after
private gateways are switched off, and a name can resolve to a public address for the form and
to 127.0.0.1 a second later (DNS rebinding). So the check lives in the network backend that
httpx's connection pool dials through: resolve once, refuse any address that is not public,
then connect to exactly that address (TLS still verifies the host name).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

# Prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052 and RFC 8215).
# So do the IPv4-compatible (::/96) and SIIT (::ffff:0:0:0/96) forms.
NAT64 = [
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
]
SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, but still private where used
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(httpcore.ConnectError):
    """The name resolved to an address this site never connects to."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    return None


def is_public(address: str) -> bool:
    """True only for a globally routable unicast address, whatever it wraps: not loopback,
    private, link-local (cloud metadata), CGNAT, multicast, reserved or unspecified."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    inner = embedded_ipv4(ip)
    if inner is not None and not is_public(str(inner)):
        return False
    return ip.is_global and not ip.is_multicast and ip not in SITE_LOCAL


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the IP itself for a literal)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


# The moment the current request must be over by. httpx's timeouts are per read, so a server
# that sends a header line every few seconds would never be cut off; every read and write
# on a guarded connection is held to this deadline instead.
_deadline: ContextVar[float | None] = ContextVar("mjdash_deadline", default=None)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Hold every read and write on a guarded connection in this block to `at` (monotonic)."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None) -> float | None:
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's overall deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the current deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        return DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout))
        )

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's own backend, but it dials only addresses that passed the check."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"could not resolve {host}") from exc
        if not self.allow_private:
            refused = [a for a in addresses if not is_public(a)]
            if refused:
                raise BlockedAddress(f"{host} resolves to a non-public address ({refused[0]})")
        last: Exception | None = None
        for address in addresses:
            try:
                stream = super().connect_tcp(
                    address, port, _bounded(timeout), local_address, socket_options
                )
                return DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the guarded backend; no proxies from the environment, since a
    proxy would make the connection on our behalf, out of the guard's sight."""

    def __init__(self, *, allow_private: bool, **kwargs) -> None:
        super().__init__(trust_env=False, **kwargs)
        self._pool._network_backend = GuardedBackend(allow_private)


def blocked_cause(exc: BaseException) -> BlockedAddress | None:
    """The guard's refusal behind an httpx error, if that is what it was."""
    while exc is not None:
        if isinstance(exc, BlockedAddress):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
