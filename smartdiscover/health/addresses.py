"""
Where a probe connects: for a name inside a served zone, the addresses the
zone itself publishes (SmartDiscover is authoritative for it, so that is
what clients get, and a closed network needs no DNS server); for any other
name, the system resolver's (the reactor's C{nameResolver}, off the reactor
thread).  L{HostnameEndpoint} connects to them in order, the next one 0.3 s
after the last started, the first connection wins; it sees the reactor
through L{_Recording}, which notes every attempt, so that when all fail
the error says which address failed and why.

TLS is no business of this module: the probes wrap these connections with
options for the host name (SNI and service_identity), never the address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

import idna
from twisted.internet import error as neterror
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IConnector,
    IHostnameResolver,
    IHostResolution,
    IProtocol,
    IProtocolFactory,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorTime,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import ClientFactory, P
from twisted.python.failure import Failure
from zope.interface import implementer

Address = IPv4Address | IPv6Address


def is_address(host: str) -> bool:
    """
    Whether C{host} is an IP address rather than a name.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _key(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _ascii(host: str) -> str:
    """
    C{host} as a resolver is asked: an IP address as it is, a name in IDNA
    (UnicodeError: not a host name).
    """
    return host if is_address(host) else idna.encode(host, uts46=True).decode("ascii")


def _address(host: str, port: int, transport: str) -> Address:
    semantics: Literal["TCP", "UDP"] = "UDP" if transport == "UDP" else "TCP"
    if ipaddress.ip_address(host).version == 6:
        return IPv6Address(semantics, host, port)
    return IPv4Address(semantics, host, port)


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        pass  # answered before it is returned


@implementer(IResolutionReceiver)
class _Distinct:
    """
    Passes each address on once, in the place it came first.
    """

    def __init__(self, receiver: IResolutionReceiver) -> None:
        self._receiver = receiver
        self._seen: set[str] = set()

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self._receiver.resolutionBegan(resolution)

    def addressResolved(self, address: IAddress) -> None:
        assert isinstance(address, (IPv4Address, IPv6Address))  # what name resolution gives
        if address.host not in self._seen:
            self._seen.add(address.host)
            self._receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        self._receiver.resolutionComplete()


@implementer(IHostnameResolver)
class ZoneResolver:
    """
    Answers an IP address with itself and the names in C{published} with
    their addresses, at once and in that order (an empty tuple: the name
    has none); every other name goes to the resolver C{fallback} returns,
    the system resolver.  Each address is given once.
    """

    def __init__(self, published: Mapping[str, tuple[str, ...]],
                 fallback: Callable[[], IHostnameResolver]) -> None:
        self._published = {_key(name): addresses for name, addresses in published.items()}
        self._fallback = fallback

    def resolveHostName(self, resolutionReceiver: IResolutionReceiver, hostName: str,
                        portNumber: int = 0,
                        addressTypes: Sequence[type[IAddress]] | None = None,
                        transportSemantics: str = "TCP") -> IHostResolution:
        receiver = _Distinct(resolutionReceiver)
        addresses = (hostName,) if is_address(hostName) else self._published.get(_key(hostName))
        if addresses is None:
            return self._fallback().resolveHostName(receiver, hostName, portNumber,
                                                    addressTypes, transportSemantics)
        resolution = _Resolution(hostName)
        receiver.resolutionBegan(resolution)
        for host in addresses:
            found = _address(host, portNumber, transportSemantics)
            if addressTypes is None or any(isinstance(found, t) for t in addressTypes):
                receiver.addressResolved(found)
        receiver.resolutionComplete()
        return resolution

    def publishes(self, name: str) -> bool:
        """
        Whether C{name} is answered here rather than by the system resolver.
        """
        return _key(name) in self._published


class NotPublished(neterror.DNSLookupError):
    """
    The name is inside a served zone, which has no address for it.
    """


@implementer(IResolutionReceiver)
class _Receiver:
    def __init__(self) -> None:
        self.found: list[Address] = []
        self.result: Deferred[list[Address]] = Deferred()

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        assert isinstance(address, (IPv4Address, IPv6Address))  # what name resolution gives
        self.found.append(address)

    def resolutionComplete(self) -> None:
        if not self.result.called:  # else cancelled by the deadline
            self.result.callback(self.found)


def resolve(resolver: ZoneResolver, host: str, port: int,
            transport: str = "TCP") -> Deferred[list[Address]]:
    """
    The addresses of C{host} in order: C{host} itself when it is an IP
    address; fails with L{NotPublished} or L{neterror.DNSLookupError} when
    there is none.
    """
    receiver = _Receiver()
    name = _ascii(host)

    def found(addresses: list[Address]) -> list[Address]:
        if addresses:
            return addresses
        if resolver.publishes(name):
            raise NotPublished(host)
        raise neterror.DNSLookupError(host)

    resolver.resolveHostName(receiver, name, port, transportSemantics=transport)
    return receiver.result.addCallback(found)


def connect_reason(exc: BaseException) -> str:
    """
    Why one connection attempt failed, short and human.
    """
    if isinstance(exc, neterror.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, neterror.NoRouteError):
        return "no route to host"
    if isinstance(exc, neterror.TimeoutError):
        return "timed out"
    if isinstance(exc, neterror.ConnectError):
        said = exc.args[0] if exc.args and exc.args[0] else exc.osError
        return f"cannot connect: {said or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return f"cannot connect: {type(exc).__name__}"


def listed(items: Sequence[str]) -> str:
    """
    "a", "a and b", "a, b and c".
    """
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class Attempts:
    """
    What one connection did: its host, whether the host's addresses are
    known, every address tried in order with why it failed, and the one
    that answered.
    """

    host: str
    resolved: bool = False
    tried: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    connected: str | None = None

    def waiting(self) -> str:
        """
        What the connection waits for, for a timeout message.
        """
        if not self.resolved:
            return f"the address of {self.host}"
        pending = [a for a in self.tried if a not in self.failures]
        if not pending or pending == [self.host]:
            return "the TCP connection"
        return f"the TCP connection to {listed(pending)}"

    def failed(self) -> str:
        """
        Why the addresses failed, grouped by reason in the order tried:
        "connection refused at 127.0.0.1 and ::1"; just the reason when the
        host is the one address.
        """
        grouped: dict[str, list[str]] = {}
        for address in self.tried:
            if address in self.failures:
                grouped.setdefault(self.failures[address], []).append(address)
        if list(grouped.values()) == [[self.host]]:
            return next(iter(grouped))
        return "; ".join(f"{reason} at {listed(addresses)}"
                         for reason, addresses in grouped.items())


class Unreachable(neterror.ConnectError):
    """
    Every address of the host failed; C{attempts} says how.
    """

    def __init__(self, attempts: Attempts) -> None:
        super().__init__(string=attempts.failed())
        self.attempts = attempts

    def __str__(self) -> str:
        return self.attempts.failed()


class IConnectingReactor(IReactorTCP, IReactorTime):
    """
    What L{AddressesEndpoint} needs of the reactor.
    """


class _Attempt(ClientFactory[P]):
    """
    The factory of the connection attempt to C{host}: notes in C{attempts}
    that it connected, or why it failed.
    """

    noisy = False

    def __init__(self, factory: ClientFactory[P], host: str, attempts: Attempts) -> None:
        self._factory = factory
        self._host = host
        self._attempts = attempts

    def doStart(self) -> None:
        self._factory.doStart()

    def doStop(self) -> None:
        self._factory.doStop()

    def startedConnecting(self, connector: IConnector) -> None:
        self._factory.startedConnecting(connector)

    def buildProtocol(self, addr: IAddress | None) -> P | None:
        protocol = self._factory.buildProtocol(addr)
        if protocol is not None and self._attempts.connected is None:
            self._attempts.connected = self._host
        return protocol

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        # UserError itself (not its TimeoutError) is stopConnecting: the
        # attempt was cancelled, another won or the deadline passed.
        if type(reason.value) is not neterror.UserError:
            self._attempts.failures.setdefault(self._host, connect_reason(reason.value))
        self._factory.clientConnectionFailed(connector, reason)

    def clientConnectionLost(self, connector: IConnector, reason: Failure) -> None:
        self._factory.clientConnectionLost(connector, reason)


@implementer(IReactorTCP, IReactorTime, IReactorPluggableNameResolver)
class _Recording:
    """
    C{reactor} as L{HostnameEndpoint} sees it for one connection: names
    resolved by C{resolver}, every TCP connection attempt noted in
    C{attempts}; the rest is C{reactor}'s own.
    """

    def __init__(self, reactor: IConnectingReactor, resolver: ZoneResolver,
                 attempts: Attempts) -> None:
        self._reactor = reactor
        self.nameResolver: IHostnameResolver = resolver
        self._attempts = attempts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def connectTCP(self, host: str, port: int, factory: ClientFactory[P],
                   timeout: float = 30.0,
                   bindAddress: tuple[str, int] | None = None) -> IConnector:
        self._attempts.resolved = True  # HostnameEndpoint connects once it has addresses
        self._attempts.tried.append(host)
        return self._reactor.connectTCP(host, port, _Attempt(factory, host, self._attempts),
                                        timeout, bindAddress)


@implementer(IStreamClientEndpoint)
class AddressesEndpoint:
    """
    Connects to C{host} at the addresses C{resolver} gives, recording each
    attempt in C{attempts}; each attempt may take C{timeout} seconds.
    """

    def __init__(self, reactor: IConnectingReactor, resolver: ZoneResolver, host: str,
                 port: int, timeout: float, attempts: Attempts) -> None:
        self._reactor = reactor
        self._resolver = resolver
        self._host = host
        self._port = port
        self._timeout = timeout
        self._attempts = attempts

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        try:
            name = _ascii(self._host)
        except UnicodeError as e:  # not a host name
            return fail(e)
        reactor = _Recording(self._reactor, self._resolver, self._attempts)
        connected = HostnameEndpoint(reactor, name, self._port, self._timeout).connect(
            protocolFactory)
        return connected.addErrback(self._failed, name)

    def _failed(self, reason: Failure, name: str) -> Failure:
        """
        L{HostnameEndpoint} gives the last failure: say what every address
        did (L{Unreachable}), or that the zone publishes none.
        """
        if reason.check(CancelledError, neterror.ConnectingCancelledError):
            return reason
        if self._attempts.failures:
            raise Unreachable(self._attempts)
        if reason.check(neterror.DNSLookupError) and self._resolver.publishes(name):
            raise NotPublished(self._host)
        return reason
