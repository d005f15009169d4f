"""
The DNS listeners: UDP (rate limited) and TCP (idle timeout, connections
capped per source), both answering from the zone table in force.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Hashable
from typing import Callable, Iterable, Iterator

from twisted.application import internet
from twisted.application.service import MultiService
from twisted.internet.interfaces import (
    IDelayedCall, IReactorTCP, IReactorTime, IReactorUDP, ITCPTransport, IUDPTransport)
from twisted.internet.protocol import DatagramProtocol, Factory, connectionDone
from twisted.logger import Logger
from twisted.names import dns
from twisted.protocols.basic import Int16StringReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from smartdiscover.config.dns import in_zone
from smartdiscover.config.model import DNSSettings, Model
from smartdiscover.connections import ConnectionLimits, default_dns_connections
from smartdiscover.dns.challenges import challenge_owner
from smartdiscover.dns.records import Record, all_records
from smartdiscover.dns.rrl import DROP, SLIP, RateLimiter
from smartdiscover.dns.table import Table, build_table
from smartdiscover.dns.wire import respond

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
ERROR_LOG_INTERVAL = 60.0
CHALLENGE_TTL = 60  # seconds a DNS-01 TXT record may be cached

_log = Logger()


class IDNSReactor(IReactorUDP, IReactorTCP, IReactorTime):
    """
    What the DNS listeners need of a reactor: UDP and TCP ports, and a clock
    for the TCP idle timeout.  For type checking only (like treq's
    C{_ITreqReactor}): every real reactor provides all three, and Python
    has no intersection type to say so.
    """


def build_zones(model: Model, challenges: Iterable[tuple[str, str]] = ()) -> Table:
    """
    The table of every zone of C{model}; blocking, run it off the reactor.

    @param challenges: (owner, value) of DNS-01 TXT records to answer
        besides; those outside every zone, or not a valid name and value
        (L{challenge_owner}), are left out, so none can break the build.
    """
    zones = all_records(model, serial=int(time.time()))
    for apex, record in _challenge_records(zones, challenges):
        zones[apex].append(record)
    return build_table(zones)


def _challenge_records(zones: dict[str, list[Record]],
                       challenges: Iterable[tuple[str, str]]) -> Iterator[tuple[str, Record]]:
    """
    (apex, TXT record) of each challenge in a zone: a short TTL, so that a
    resolver soon sees the next value, unless the owner has TXT records
    already, whose TTL the RRset keeps (RFC 2181 5.2).  None at an alias:
    a CNAME stands alone (RFC 1034 3.6.2).
    """
    pairs = list(dict.fromkeys(challenges))
    if not pairs:
        return
    ttls: dict[tuple[str, int], int] = {}
    for records in zones.values():
        for owner, type_, payload in records:
            ttls.setdefault((owner, type_), payload.ttl)
    for name, value in pairs:
        try:
            owner = challenge_owner(name, value)
        except ValueError as e:
            _log.warn("DNS-01 challenge left out: {error}", error=str(e))
            continue
        apex = in_zone(owner, zones)
        if apex is None:
            continue
        if (owner, dns.CNAME) in ttls:
            _log.warn("DNS-01 challenge at {owner} left out: a CNAME is there", owner=owner)
            continue
        ttl = ttls.get((owner, dns.TXT), CHALLENGE_TTL)
        yield apex, (owner, dns.TXT, dns.Record_TXT(value.encode("ascii"), ttl=ttl))


class Zones:
    """
    The table in force, the rate limiter, and what the responder counted.
    """

    _log = Logger()

    def __init__(self, table: Table, settings: DNSSettings, clock: Callable[[], float]) -> None:
        self.table = table
        self.settings = settings
        self.limiter = RateLimiter(settings.rrl_rate, settings.rrl_slip, settings.rrl_exempt,
                                   clock)
        self.tcp = ConnectionLimits(default_dns_connections(), settings.tcp_per_source)
        self.rcodes: Counter[int] = Counter()
        self.errors = 0
        self._clock = clock
        self._last_error_log = float("-inf")

    def replace(self, table: Table, settings: DNSSettings) -> None:
        self.table = table
        self.settings = settings
        self.limiter.configure(settings.rrl_rate, settings.rrl_slip, settings.rrl_exempt)
        self.tcp.configure(self.tcp.total, settings.tcp_per_source)

    def failed(self) -> None:
        """
        A query broke the query path: count it, log it at most once a minute.
        """
        self.errors += 1
        now = self._clock()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL:
            self._last_error_log = now
            self._log.failure("DNS query failed ({count} so far)", count=self.errors)


class UDPResponder(DatagramProtocol):
    # Narrower than DatagramProtocol's optional transport: it only runs on
    # the UDP port it listens on.
    transport: IUDPTransport

    def __init__(self, zones: Zones) -> None:
        self._zones = zones

    def startProtocol(self) -> None:
        # The default receive buffer (about 200 KiB) overflows under bursts
        # long before the CPU is busy: ask for more, as NSD does.
        sock = getattr(self.transport, "socket", None)
        if sock is None:
            return
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, UDP_RECEIVE_BUFFER)
                return
            except OSError:
                continue

    def datagramReceived(self, data: bytes, address: tuple[str, int]) -> None:
        zones = self._zones
        try:
            response = respond(data, zones.table, True)
            if response is None:
                return
            zones.rcodes[response.rcode] += 1
            action = zones.limiter.check(address[0])
            if action == DROP:
                return
            self.transport.write(response.slipped() if action == SLIP else response.data,
                                 address)
        except Exception:
            zones.failed()


class TCPResponder(Int16StringReceiver, TimeoutMixin):
    """
    DNS over TCP (RFC 7766): pipelined queries, never rate limited, closed
    after C{tcp_idle} seconds without a query.
    """

    MAX_LENGTH = 65535
    factory: TCPResponderFactory
    # Narrower than Protocol's ITransport | None: it only runs connected,
    # over TCP.
    transport: ITCPTransport
    _slot: Hashable | None = None  # the key our connection is counted under

    def connectionMade(self) -> None:
        self._slot = self.factory.zones.tcp.admit(self.transport.getPeer().host)
        if self._slot is None:
            self.transport.abortConnection()
            return
        self.setTimeout(self.factory.zones.settings.tcp_idle)

    def stringReceived(self, data: bytes) -> None:
        self.resetTimeout()
        zones = self.factory.zones
        try:
            response = respond(data, zones.table, False)
        except Exception:
            zones.failed()
            self.transport.loseConnection()
            return
        if response is None:
            return
        zones.rcodes[response.rcode] += 1
        self.sendString(response.data)

    def timeoutConnection(self) -> None:
        self.transport.abortConnection()

    def lengthLimitExceeded(self, length: int) -> None:
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        if self._slot is not None:
            self.factory.zones.tcp.release(self._slot)
            self._slot = None

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """
        TimeoutMixin's clock: the factory's reactor, not the global one.
        """
        return self.factory.clock.callLater(period, func)


class TCPResponderFactory(Factory[TCPResponder]):
    protocol = TCPResponder

    def __init__(self, zones: Zones, clock: IReactorTime) -> None:
        self.zones = zones
        self.clock = clock


def dns_service(zones: Zones, reactor: IDNSReactor) -> MultiService:
    """
    UDP and TCP listeners on the configured address and port.
    """
    listen = zones.settings.listen
    service = MultiService()
    internet.UDPServer(listen.port, UDPResponder(zones), interface=listen.host,
                       reactor=reactor).setServiceParent(service)
    internet.TCPServer(listen.port, TCPResponderFactory(zones, reactor), interface=listen.host,
                       reactor=reactor).setServiceParent(service)
    return service
