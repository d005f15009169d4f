"""
The PROXY protocol, version 2, in front of a listener: what HAProxy sends
with C{send-proxy-v2} (tcp mode), so that the guard, the /health and
/metrics allow-list and the logs see the client's address, not the proxy's.

Every connection must begin with a complete, valid version 2 header before
the wrapped protocol (the connection limits, TLS, then HTTP) starts: it
sees the client's address from its first moment.  Anything else is dropped
at once: garbage, a version 1 text header, an unknown version, command or
address family, an address block shorter than its family needs, or a header
cut short by the end of the connection.  A header not complete within
L{HEADER_DEADLINE} seconds of the accept is dropped too.

Addresses come out the way a direct TCP connection gives them: IPv6
compressed, IPv4-mapped IPv6 as IPv4.  A header without client addresses
(the LOCAL command of HAProxy's health checks, the UNSPEC and UNIX
families) leaves the connection's own addresses.

Twisted's C{haproxy:} endpoint (twisted.protocols.haproxy) also accepts
version 1, drops a header whose first read is under 16 bytes, and gives
IPv6 sources uncompressed and IPv4-mapped ones mapped
(C{0:0:0:0:0:ffff:c000:201}), which would put every IPv4 client behind a
dual-stack HAProxy into one network of the guard.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Callable, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress, IDelayedCall, IProtocolFactory, IReactorTime, ITCPTransport, ITransport)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols import policies
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from smartdiscover.config.networks import NO_NETWORKS, Networks, is_loopback

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
FIXED = 16  # signature, version and command, family, length
LOCAL, PROXY = 0x20, 0x21  # version 2 and its two commands
ADDRESS_SIZES = {0x11: 4, 0x12: 4, 0x21: 16, 0x22: 16}  # INET/INET6 x STREAM/DGRAM
NO_ADDRESSES = frozenset({0x00, 0x31, 0x32})  # UNSPEC, UNIX STREAM/DGRAM
HEADER_DEADLINE = 10.0  # seconds from the accept to the header's last byte


class InvalidHeader(ValueError):
    """
    The bytes are not a PROXY protocol version 2 header.
    """


def header_size(data: bytes) -> int | None:
    """
    The size of the header C{data} starts with; C{None} while too little
    has arrived to tell.

    @raise InvalidHeader: as soon as the bytes so far cannot start one.
    """
    if not SIGNATURE.startswith(data[:len(SIGNATURE)]):
        raise InvalidHeader("a PROXY v1 header" if data.startswith(b"PROXY ")
                            else "no PROXY v2 signature")
    if len(data) > 12 and data[12] not in (LOCAL, PROXY):
        raise InvalidHeader(f"version and command 0x{data[12]:02x}")
    if len(data) < FIXED:
        return None
    return FIXED + struct.unpack("!H", data[14:16])[0]


def parse_header(header: bytes) -> tuple[IAddress | None, IAddress | None]:
    """
    The client (source) and the proxy's listening (destination) addresses
    of one complete header; C{(None, None)} when it names none.

    @raise InvalidHeader: when it is not a valid version 2 header.
    """
    if header_size(header) != len(header):
        raise InvalidHeader("incomplete")
    if header[12] == LOCAL:
        return None, None
    family = header[13]
    if family in NO_ADDRESSES:
        return None, None
    if family not in ADDRESS_SIZES:
        raise InvalidHeader(f"address family 0x{family:02x}")
    size = ADDRESS_SIZES[family]
    block = header[FIXED:]
    if len(block) < 2 * size + 4:
        raise InvalidHeader("address block too short")
    source_port, destination_port = struct.unpack("!HH", block[2 * size:2 * size + 4])
    return (_address(block[:size], source_port),
            _address(block[size:2 * size], destination_port))


def _address(packed: bytes, port: int) -> IPv4Address | IPv6Address:
    address = ipaddress.ip_address(packed)
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return IPv4Address("TCP", str(mapped), port)
    if address.version == 4:
        return IPv4Address("TCP", str(address), port)
    return IPv6Address("TCP", str(address), port)


class ProxyV2Protocol(policies.ProtocolWrapper):
    """
    Reads the header, then passes everything through, with the header's
    addresses as C{getPeer} and C{getHost}.
    """

    _log = Logger()
    factory: ProxyV2Factory
    # Narrower than Protocol's ITransport | None: it runs connected, on the
    # listener's TCP transport (abortConnection is ITCPTransport's).
    transport: ITCPTransport
    _buffer = b""
    _passing = False
    _dropped = False
    _source: IAddress | None = None
    _destination: IAddress | None = None
    _timer: IDelayedCall | None = None

    def makeConnection(self, transport: ITransport) -> None:
        # The wrapped protocol starts once the header has named the client.
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self._timer = self.factory.clock.callLater(HEADER_DEADLINE, self._stalled)

    def _stalled(self) -> None:
        self._timer = None
        self._drop(f"no complete header within {HEADER_DEADLINE:g} s")

    def dataReceived(self, data: bytes) -> None:
        if self._passing:
            self.wrappedProtocol.dataReceived(data)
            return
        if self._dropped:
            return
        data = self._buffer + data
        try:
            size = header_size(data)
            if size is None or len(data) < size:
                self._buffer = data
                return
            self._source, self._destination = parse_header(data[:size])
        except InvalidHeader as e:
            self._drop(str(e))
            return
        self._buffer = b""
        self._passing = True
        self._cancel_timer()
        # A ProtocolWrapper is its wrapped protocol's transport: it provides
        # its transport's interfaces from makeConnection on (directlyProvides,
        # which mypy cannot see; Twisted's class declares no ITransport).
        self.wrappedProtocol.makeConnection(cast(ITransport, self))
        if len(data) > size and self.connected and not self.disconnecting:
            self.wrappedProtocol.dataReceived(data[size:])

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_timer()
        if not self._passing:  # the wrapped protocol never started
            if not self._dropped and self._buffer:
                self._log.info("connection from {peer} ended inside its PROXY header",
                               peer=_shown(self.transport.getPeer()))
            # As ProtocolWrapper.connectionLost does, though its annotation
            # (IProtocol) leaves None out.
            self.wrappedProtocol = None  # type: ignore[assignment]
            return
        super().connectionLost(reason)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _drop(self, why: str) -> None:
        self._dropped = True
        self._cancel_timer()
        self._buffer = b""
        self._log.info("connection from {peer} dropped: {why} (a PROXY protocol v2 "
                       "header must come first)", peer=_shown(self.transport.getPeer()),
                       why=why)
        self.transport.abortConnection()

    def getPeer(self) -> IAddress:
        return self._source or self.transport.getPeer()

    def getHost(self) -> IAddress:
        return self._destination or self.transport.getHost()


class ProxyV2Factory(policies.WrappingFactory[ProxyV2Protocol]):
    """
    Wraps a listener's factory: every connection must come from a proxy
    (loopback or an address in C{proxies()}, read per connection so that a
    reload applies) and start with a PROXY protocol v2 header.
    """

    protocol = ProxyV2Protocol
    _log = Logger()

    def __init__(self, wrappedFactory: IProtocolFactory, clock: IReactorTime,
                 proxies: Callable[[], Networks] = lambda: NO_NETWORKS) -> None:
        super().__init__(wrappedFactory)
        self.clock = clock
        self._proxies = proxies

    def registerProtocol(self, p: policies.ProtocolWrapper) -> None:
        """
        No registry of open connections (WrappingFactory's dict).
        """

    def unregisterProtocol(self, p: policies.ProtocolWrapper) -> None:
        pass

    # None refuses the connection, as IProtocolFactory.buildProtocol allows;
    # WrappingFactory's annotation leaves None out.
    def buildProtocol(  # type: ignore[override]
            self, addr: IAddress | None) -> ProxyV2Protocol | None:
        host = getattr(addr, "host", "")
        if not is_proxy(host, self._proxies()):
            self._log.info("connection from {peer} refused: not a proxy (loopback or "
                           "[server] proxies)", peer=host)
            return None
        return super().buildProtocol(addr)

    def logPrefix(self) -> str:
        wrapped = self.wrappedFactory
        name = wrapped.logPrefix() if hasattr(wrapped, "logPrefix") else type(wrapped).__name__
        return f"{name} (PROXY v2)"


def is_proxy(host: str, proxies: Networks) -> bool:
    """
    Whether a connection from C{host} may name its client: loopback always,
    otherwise only an address in one of the C{proxies} networks.
    """
    return is_loopback(host) or host in proxies


def _shown(address: IAddress) -> str:
    return getattr(address, "host", str(address))
