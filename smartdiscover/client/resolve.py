"""
DNS for the probe: the answers a client would get (A/AAAA, MX, SRV), from
the resolver the administrator names, with every query bounded in time.

The same answers serve the connections the probe makes: L{HostnameResolver}
is installed as the reactor's name resolver, so the endpoints are reached at
the addresses the report shows.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Sequence

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, TimeoutError as DeferredTimeout
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IReactorTime,
    IResolutionReceiver,
)
from twisted.names import client, dns, error
from twisted.names.common import ResolverBase
from zope.interface import implementer

if TYPE_CHECKING:
    from smartdiscover.health.conversation import IProbeReactor


@dataclass(frozen=True)
class Answer:
    """
    The records of one lookup, or C{problem}: "NXDOMAIN", "no records",
    "REFUSED", "SERVFAIL", "timed out"...
    """

    records: tuple[Any, ...]
    problem: str | None = None

    @property
    def absent(self) -> bool:
        """
        Whether the DNS said there is no such record (rather than not
        answering properly).
        """
        return self.problem in ("NXDOMAIN", "no records")


def parse_server(text: str) -> tuple[str, int]:
    """
    C{IP}, C{IP:PORT}, C{[IPv6]:PORT} or a bare IPv6 address.

    @raise ValueError: for anything else.
    """
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not IP[:PORT]")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number)
    address = ipaddress.ip_address(host)  # ValueError for names
    if not 0 < port < 65536:
        raise ValueError(f"{port} is not a port")
    return str(address), port


def make_resolver(server: tuple[str, int] | None, reactor: IProbeReactor) -> ResolverBase:
    """
    Ask only C{server} (the hosts file must not hide what it publishes), or
    the system's resolvers and hosts file.
    """
    if server is not None:
        return client.Resolver(servers=[server], reactor=reactor)
    return client.createResolver()


def _retries(total: float) -> tuple[float, ...]:
    """
    Query timeouts adding up to C{total}: retransmissions at 1 s and 3 s.
    """
    intervals: list[float] = []
    for step in (1.0, 3.0):
        if sum(intervals) + step >= total:
            break
        intervals.append(step)
    return (*intervals, max(total - sum(intervals), 0.1))


def _problem(failure_value: BaseException, total: float) -> str:
    if isinstance(failure_value, error.DNSNameError):
        return "NXDOMAIN"
    if isinstance(failure_value, error.DNSQueryRefusedError):
        return "REFUSED"
    if isinstance(failure_value, error.DNSServerError):
        return "SERVFAIL"
    if isinstance(failure_value, (error.DNSQueryTimeoutError, DeferredTimeout)):
        return f"no answer within {total:g} s"
    if isinstance(failure_value, error.DomainError):
        return type(failure_value).__name__
    return f"lookup failed: {failure_value}"


class DNS:
    """
    Lookups through C{resolver}, each within C{timeout} seconds, each asked
    once per run.
    """

    def __init__(self, resolver: ResolverBase, reactor: IReactorTime, timeout: float) -> None:
        self._resolver = resolver
        self._reactor = reactor
        self._timeout = timeout
        self._cache: dict[tuple[str, int], Answer] = {}

    async def _lookup(self, name: str, kind: int) -> Answer:
        key = (name.lower().rstrip("."), kind)
        if key in self._cache:
            return self._cache[key]
        lookup = {dns.A: self._resolver.lookupAddress,
                  dns.AAAA: self._resolver.lookupIPV6Address,
                  dns.MX: self._resolver.lookupMailExchange,
                  dns.SRV: self._resolver.lookupService}[kind]
        try:  # a name that cannot be put in a query raises at once
            d = lookup(key[0], timeout=_retries(self._timeout))
            d.addTimeout(self._timeout + 1, self._reactor)
            answers, _, _ = await d
        except Exception as e:
            result = Answer((), _problem(e, self._timeout))
        else:
            payloads = tuple(r.payload for r in answers if r.type == kind)
            result = Answer(payloads, None if payloads else "no records")
        self._cache[key] = result
        return result

    async def addresses(self, host: str) -> Answer:
        """
        The IPv4 then IPv6 addresses of C{host}; the problem of the A
        lookup when there are none.
        """
        try:
            return Answer((str(ipaddress.ip_address(host.strip("[]"))),))
        except ValueError:
            pass
        v4 = await self._lookup(host, dns.A)
        if v4.problem is not None and v4.problem.startswith("no answer"):
            return v4  # the server is silent: do not wait twice
        v6 = await self._lookup(host, dns.AAAA)
        found = tuple(r.dottedQuad() for r in v4.records)
        found += tuple(ipaddress.ip_address(r.address).compressed for r in v6.records)
        return Answer(found, None if found else v4.problem)

    async def mx(self, domain: str) -> Answer:
        """
        (preference, host) of every MX record, in order of preference; host
        "." is the null MX (RFC 7505).
        """
        answer = await self._lookup(domain, dns.MX)
        records = sorted((r.preference, _host(r.name)) for r in answer.records)
        return Answer(tuple(records), answer.problem)

    async def srv(self, name: str) -> Answer:
        """
        (priority, weight, port, target) of every SRV record, lowest
        priority and highest weight first; target "." means "not offered".
        """
        answer = await self._lookup(name, dns.SRV)
        records = sorted(((r.priority, r.weight, r.port, _host(r.target))
                          for r in answer.records), key=lambda r: (r[0], -r[1]))
        return Answer(tuple(records), answer.problem)


def _host(name: dns.Name) -> str:
    """
    C{name} without its trailing dot, "." for the root; octets that are
    not ASCII escaped.
    """
    return name.name.decode("ascii", "backslashreplace").rstrip(".") or "."


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        pass  # the lookup is bounded by its own timeout


@implementer(IHostnameResolver)
class HostnameResolver:
    """
    The reactor's name resolution answered by L{DNS}, so that connections
    go where the report's DNS lines say.
    """

    def __init__(self, lookups: DNS) -> None:
        self._dns = lookups

    def resolveHostName(self, resolutionReceiver: IResolutionReceiver, hostName: str,
                        portNumber: int = 0,
                        addressTypes: Sequence[type[IAddress]] | None = None,
                        transportSemantics: str = "TCP") -> IHostResolution:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        kind: Literal["TCP", "UDP"] = "UDP" if transportSemantics == "UDP" else "TCP"

        def deliver(answer: Answer) -> None:
            for address in answer.records:
                family = IPv6Address if ":" in address else IPv4Address
                if addressTypes is None or family in addressTypes:
                    resolutionReceiver.addressResolved(family(kind, address, portNumber))

        def complete(_: object) -> None:
            resolutionReceiver.resolutionComplete()

        d = Deferred.fromCoroutine(self._dns.addresses(hostName))
        d.addCallback(deliver).addErrback(lambda _: None).addBoth(complete)
        return resolution
