"""Outbound connections that cannot be turned against the server's own network (SSRF guard).

Every webhook URL and SMTP host is resolved first; if any address it resolves to is loopback,
link-local, private, shared, reserved, unspecified or multicast, the target is refused unless
that address lies in the allow-list. The connection then goes to the address that was checked
(pinned: no second DNS lookup an attacker could answer differently), with the original name in
the Host header and TLS SNI/certificate check. Redirects are never followed.

Numeric spellings of IPv4 addresses (``2130706433``, ``0x7f000001``, ``127.1``, ``0177.0.0.1``)
are read the way ``inet_aton`` (and so many HTTP stacks) would, and checked as that address.
IPv6 addresses that carry an IPv4 address (IPv4-mapped ``::ffff:127.0.0.1``, IPv4-compatible
``::127.0.0.1``, NAT64 ``64:ff9b::127.0.0.1``, 6to4 ``2002:7f00:1::`` and Teredo) are checked as
the IPv4 address they carry too: a host or gateway may deliver them there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from hostpulse.alerts.exceptions import ResolutionError, UnsafeTargetError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def literal_address(host: str) -> IPAddress | None:
    """The address a host part denotes if it is an IP literal in any spelling, else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
"""RFC 8215 local-use NAT64: where the IPv4 address sits depends on the local prefix length,
so the whole range is refused (it is never globally routed)."""
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo
    server and client); none for a plain address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ()
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in NAT64_WELL_KNOWN:
        return (low,)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1 (themselves refused)
        return (low,)
    return ()


def refused(address: IPAddress) -> bool:
    carried = embedded_ipv4(address)
    if any(refused(v4) for v4 in carried):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL:
            return True
        if carried and address.ipv4_mapped is not None:  # judged as the IPv4 address alone
            return False
    return address.is_multicast or not address.is_global


@dataclass(frozen=True, slots=True)
class Target:
    url: httpx.URL
    host: str
    port: int
    address: IPAddress

    @property
    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    @property
    def host_header(self) -> str:
        default = {"http": 80, "https": 443}.get(self.url.scheme)
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


class TargetGuard:
    def __init__(self, allow: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in allow
        )
        self._resolve = resolver or system_resolver

    def permitted(self, address: IPAddress) -> bool:
        if any(address in net for net in self.allow):
            return True
        carried = embedded_ipv4(address)
        if carried and all(any(v4 in net for net in self.allow) for v4 in carried):
            return True
        return not refused(address)

    async def check_host(self, host: str, port: int) -> IPAddress:
        """Resolve ``host`` and return the address to connect to, or raise UnsafeTargetError."""
        if not host:
            raise UnsafeTargetError("the target has no host name")
        literal = literal_address(host)
        if literal is not None:
            candidates: list[IPAddress] = [literal]
        else:
            try:
                found = await self._resolve(host, port)
            except (OSError, UnicodeError) as exc:  # UnicodeError: not a valid IDNA name
                raise ResolutionError(f"cannot resolve {host!r}: {exc}") from None
            candidates = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
            if not candidates:
                raise ResolutionError(f"{host!r} resolves to no address")
        for address in candidates:
            if not self.permitted(address):
                raise UnsafeTargetError(
                    f"{host!r} resolves to {address}, a private, loopback, link-local or "
                    "reserved address; to permit it add its network to allow_networks in "
                    f"alerts.yml (the alerts allow-list), e.g. allow_networks: "
                    f"[{address}/{address.max_prefixlen}]"
                )
        return candidates[0]

    async def check_url(self, url: str) -> Target:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise UnsafeTargetError(f"invalid URL: {exc}") from None
        if parsed.scheme not in ("http", "https"):
            raise UnsafeTargetError(f"URL scheme must be http or https, not {parsed.scheme!r}")
        if parsed.userinfo:
            raise UnsafeTargetError(
                "credentials in the URL are not allowed; use the channel's auth"
            )
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = await self.check_host(parsed.host, port)
        return Target(parsed, parsed.host, port, address)


class SafeHttp:
    """An HTTP client whose every request passes the guard, goes to the pinned address and
    never follows a redirect."""

    def __init__(
        self,
        guard: TargetGuard,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | str = True,
    ) -> None:
        self.guard = guard
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, transport=transport, verify=verify
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        target = await self.guard.check_url(url)
        merged = {"User-Agent": "hostpulse-alerts", **(headers or {}), "Host": target.host_header}
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        return await self._client.request(
            method,
            target.pinned_url,
            content=content,
            headers=merged,
            auth=auth,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
