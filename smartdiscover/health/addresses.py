"""
Where a probe connects: for a name inside a served zone, the addresses the
zone itself publishes (SmartDiscover is authoritative for it, so that is
what clients get, and a closed network needs no DNS server); for any other
name, the system resolver's (the reactor's C{nameResolver}, off the reactor
thread).  Then each address in the order given, as L{HostnameEndpoint}
does: the next one after L{ATTEMPT_DELAY} or as soon as one fails, the
first connection wins, and when all fail the error says which address
failed and why.

TLS is no business of this module: the probes wrap these connections with
options for the host name (SNI and service_identity), never the address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Mapping, Sequence

import idna
from twisted.internet import error as neterror
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHostnameResolver,
    IHostResolution,
    IProtocol,
    IProtocolFactory,
    IReactorTCP,
    IReactorTime,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.python.failure import Failure
from zope.interface import implementer

ATTEMPT_DELAY = 0.3  # HostnameEndpoint's default: the next address after this long

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


@implementer(IHostnameResolver)
class ZoneResolver:
    """
    Answers the names in C{published} with their addresses, at once and in
    that order (an empty tuple: the name has none); every other name goes
    to the resolver C{fallback} returns, the system resolver.
    """

    def __init__(self, published: Mapping[str, tuple[str, ...]],
                 fallback: Callable[[], IHostnameResolver]) -> None:
        self._published = {_key(name): addresses for name, addresses in published.items()}
        self._fallback = fallback

    def resolveHostName(self, resolutionReceiver: IResolutionReceiver, hostName: str,
                        portNumber: int = 0,
                        addressTypes: Sequence[type[IAddress]] | None = None,
                        transportSemantics: str = "TCP") -> IHostResolution:
        addresses = self._published.get(_key(hostName))
        if addresses is None:
            return self._fallback().resolveHostName(resolutionReceiver, hostName, portNumber,
                                                    addressTypes, transportSemantics)
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        for host in addresses:
            found = _address(host, portNumber, transportSemantics)
            if addressTypes is None or any(isinstance(found, t) for t in addressTypes):
                resolutionReceiver.addressResolved(found)
        resolutionReceiver.resolutionComplete()
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
    if is_address(host):
        return succeed([_address(host, port, transport)])
    receiver = _Receiver()
    name = idna.encode(host, uts46=True).decode("ascii")  # UnicodeError: not a host name

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


@implementer(IStreamClientEndpoint)
class AddressesEndpoint:
    """
    Connects to C{host} at the addresses C{resolver} gives, recording each
    attempt in C{attempts}; each attempt may take C{timeout} seconds.
    """

    def __init__(self, reactor: IConnectingReactor, resolver: ZoneResolver, host: str,
                 port: int, timeout: float, attempts: Attempts,
                 delay: float = ATTEMPT_DELAY) -> None:
        self._reactor = reactor
        self._resolver = resolver
        self._host = host
        self._port = port
        self._timeout = timeout
        self._attempts = attempts
        self._delay = delay

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        try:
            resolved = resolve(self._resolver, self._host, self._port)
        except UnicodeError as e:  # not a host name
            return fail(e)

        def known(addresses: list[Address]) -> list[Address]:
            self._attempts.resolved = True
            return addresses

        def failed(reason: Failure) -> Failure:
            if not reason.check(CancelledError):
                self._attempts.resolved = True
            return reason

        resolved.addCallbacks(known, failed)
        return resolved.addCallback(self._race, protocolFactory)

    def _race(self, addresses: list[Address],
              factory: IProtocolFactory) -> Deferred[IProtocol]:
        return _Race(self._reactor, addresses, factory, self._timeout, self._delay,
                     self._attempts).winner


class _Race:
    """
    One attempt per address, started in order, L{ATTEMPT_DELAY} apart or
    as soon as the one before failed; C{winner} fires with the first
    connected protocol (the others are cancelled) or fails with
    L{Unreachable} once all failed.  Cancelling it cancels every attempt.
    """

    def __init__(self, reactor: IConnectingReactor, addresses: Iterable[Address],
                 factory: IProtocolFactory, timeout: float, delay: float,
                 attempts: Attempts) -> None:
        self._reactor = reactor
        unique: dict[str, Address] = {}
        for address in addresses:  # once each, in the place it came first
            unique.setdefault(address.host, address)
        self._queue = list(unique.values())
        self._factory = factory
        self._timeout = timeout
        self._delay = delay
        self._attempts = attempts
        self._pending: list[Deferred[IProtocol]] = []
        self._timer: IDelayedCall | None = None
        self._over = False
        self.winner: Deferred[IProtocol] = Deferred(canceller=lambda _: self._stop())
        self._next()

    def _next(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._over or not self._queue:
            return
        address = self._queue.pop(0)
        endpoint: IStreamClientEndpoint
        if isinstance(address, IPv6Address):
            endpoint = TCP6ClientEndpoint(self._reactor, address.host, address.port,
                                          self._timeout)
        else:
            endpoint = TCP4ClientEndpoint(self._reactor, address.host, address.port,
                                          self._timeout)
        self._attempts.tried.append(address.host)
        attempt = endpoint.connect(self._factory)
        self._pending.append(attempt)
        if self._queue:
            self._timer = self._reactor.callLater(self._delay, self._next)
        attempt.addCallbacks(self._connected, self._failed,
                             callbackArgs=(attempt, address.host),
                             errbackArgs=(attempt, address.host))

    def _connected(self, protocol: IProtocol, attempt: Deferred[IProtocol],
                   address: str) -> None:
        self._pending.remove(attempt)
        if self._over:  # connected as the race ended: not wanted
            if protocol.transport is not None:  # type: ignore[attr-defined]
                protocol.transport.abortConnection()  # type: ignore[attr-defined]
            return
        self._attempts.connected = address
        self._stop()
        self.winner.callback(protocol)

    def _failed(self, reason: Failure, attempt: Deferred[IProtocol], address: str) -> None:
        self._pending.remove(attempt)
        if self._over:
            return  # cancelled: another won, or the deadline passed
        self._attempts.failures.setdefault(address, connect_reason(reason.value))
        if self._queue:
            self._next()
        elif not self._pending:
            self._over = True
            self.winner.errback(Unreachable(self._attempts))

    def _stop(self) -> None:
        """
        No more attempts; those still connecting are cancelled.
        """
        self._over = True
        self._queue.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        for attempt in list(self._pending):
            attempt.cancel()
