"""Where task instances may live: ``--allow-instance-hosts`` (docs/api.md, "Guarded registration").

``/ti/register`` makes the scheduler connect to a host of the caller's choosing.
The allowlist is comma-separated CIDRs and host names, each optionally followed
by ``:PORT`` or ``:LOW-HIGH`` (an IPv6 network with ports is written in
brackets: ``[fd00::/64]:8100-8199``); the default admits loopback only.

:meth:`Allowlist.pin` checks a registration before any connection is made: the
``host`` must be a host name or an IP literal; a host name is resolved once
and *every* address it resolves to must be allowed; the answer is the checked
address, which the scheduler then connects to (no re-resolution; the instance
client follows no redirects).  A refusal is :class:`HostRefused`, naming the option.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..core import SpecError

OPTION = "--allow-instance-hosts"
DEFAULT = "127.0.0.0/8,::1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: resolves a host name to its addresses (as strings); injected in tests
Resolver = Callable[[str], Awaitable[list[str]]]

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")


class HostRefused(Exception):
    """A registration the allowlist does not admit (or a ``host`` that is no host)."""


@dataclass(frozen=True)
class Rule:
    network: IPNetwork | None  # an address range, or
    hostname: str | None  # a host name, matched by the addresses it resolves to
    ports: tuple[int, int] | None  # inclusive range; None: any port

    def admits_port(self, port: int) -> bool:
        return self.ports is None or self.ports[0] <= port <= self.ports[1]


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP literal (brackets allowed around IPv6; IPv4-mapped IPv6 as IPv4), else None."""
    t = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        addr = ipaddress.ip_address(t)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def check_host(host: str) -> str:
    """``host`` if it is a host name or an IP literal, else :class:`HostRefused` naming the field."""
    if parse_ip(host) is not None or _HOSTNAME.match(host):
        return host
    raise HostRefused(
        f"invalid host {host[:100]!r}: expected a host name (letters, digits, '-', '.') or an IP "
        "literal, with no scheme, path, query, user or port"
    )


def _ports(entry: str, text: str) -> tuple[int, int]:
    lo_s, _, hi_s = text.partition("-")
    try:
        lo, hi = int(lo_s), int(hi_s or lo_s)
    except ValueError:
        lo, hi = 0, -1
    if not (1 <= lo <= hi <= 65535):
        raise SpecError("allow_instance_hosts", entry, "a port or port range LOW-HIGH within 1..65535")
    return lo, hi


def _rule(entry: str) -> Rule:
    host, ports = entry, None
    if entry.startswith("["):  # [v6 or v6/len]:ports
        inner, _, rest = entry[1:].partition("]")
        host = inner
        if rest:
            if not rest.startswith(":"):
                raise SpecError("allow_instance_hosts", entry, "[IPV6]:PORT or [IPV6/LEN]:LOW-HIGH")
            ports = _ports(entry, rest[1:])
    elif entry.count(":") == 1:  # v4, v4 CIDR or host name with a port
        host, _, p = entry.partition(":")
        ports = _ports(entry, p)
    try:
        return Rule(ipaddress.ip_network(host, strict=False), None, ports)
    except ValueError:
        pass
    if _HOSTNAME.match(host):
        return Rule(None, host.lower().rstrip("."), ports)
    raise SpecError(
        "allow_instance_hosts",
        entry,
        "comma-separated CIDRs or host names, each optionally with :PORT or :LOW-HIGH, "
        "e.g. 10.0.0.0/16:8100-8199,gpu-1.internal,::1",
    )


def parse_allowlist(text: str) -> tuple[Rule, ...]:
    """The rules of an allowlist; :class:`SpecError` naming the option for a bad entry."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    return tuple(_rule(e) for e in entries)


async def system_resolver(host: str) -> list[str]:
    """Every address the system resolves ``host`` to (TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class Allowlist:
    """The admitted hosts and ports; :meth:`pin` checks one registration."""

    def __init__(self, text: str = DEFAULT, resolver: Resolver | None = None):
        self.text = text
        self.rules = parse_allowlist(text)
        self.resolver = resolver or system_resolver

    async def _addresses(self, host: str) -> list[IPAddress]:
        literal = parse_ip(host)
        if literal is not None:
            return [literal]
        try:
            found = await self.resolver(host)
        except (OSError, UnicodeError) as e:
            raise HostRefused(f"cannot register host {host!r}: it does not resolve ({e})") from None
        addrs = [a for a in (parse_ip(x.split("%")[0]) for x in found) if a is not None]
        if not addrs:
            raise HostRefused(f"cannot register host {host!r}: it resolves to no address")
        return addrs

    async def _admits(self, addr: IPAddress, port: int) -> bool:
        for rule in self.rules:
            if not rule.admits_port(port):
                continue
            if rule.network is not None and addr in rule.network:
                return True
            if rule.hostname is not None and addr in await self._addresses(rule.hostname):
                return True
        return False

    async def pin(self, host: str, port: int) -> str:
        """The address to connect to for ``host:port``, checked; :class:`HostRefused` if not allowed."""
        check_host(host)
        addrs = await self._addresses(host)
        refused = [str(a) for a in addrs if not await self._admits(a, port)]
        if refused:
            what = host if parse_ip(host) is not None else f"{host} ({', '.join(str(a) for a in addrs)})"
            raise HostRefused(
                f"cannot register {what} port {port}: address {', '.join(refused)} is not admitted by "
                f"{OPTION} (SCHEDULER_ALLOW_INSTANCE_HOSTS = {self.text!r}); nothing was contacted"
            )
        return str(addrs[0])
