"""
Listening behind HAProxy (C{haproxy:} in front of a listener): the PROXY
protocol v2 header parsed before TLS (L{smartdiscover.web.proxy}), the
client address it names reaching the guard and the log in the real
service, hostile headers dropped, and two instances behind Debian's real
haproxy with the configuration docs/scaling.md shows.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config.networks import NO_NETWORKS, Networks
from smartdiscover import tap
from smartdiscover.connections import LimitedFactory
from smartdiscover.web.proxy import (
    HEADER_DEADLINE,
    SIGNATURE,
    InvalidHeader,
    ProxyV2Factory,
    is_proxy,
    header_size,
    parse_header,
)
from smartdiscover.web.site import REQUEST_DEADLINE, SmartChannel
from tests.helpers import PROJECT_ROOT, edit, write_config
from tests.unit.test_web import RecordingTransport

HTTPS = "https = ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt"


def proxy_header(source: str, source_port: int = 40000, destination: str | None = None,
                 destination_port: int = 443, command: int = 0x21,
                 extra: bytes = b"") -> bytes:
    """
    A PROXY v2 header for a TCP connection from C{source}; C{extra} (TLVs)
    follows the addresses.
    """
    client = ipaddress.ip_address(source)
    server = ipaddress.ip_address(destination or ("127.0.0.1" if client.version == 4
                                                  else "::1"))
    block = (client.packed + server.packed + struct.pack("!HH", source_port, destination_port)
             + extra)
    return raw_header(command, 0x11 if client.version == 4 else 0x21, block)


def raw_header(command: int, family: int, block: bytes) -> bytes:
    return SIGNATURE + bytes([command, family]) + struct.pack("!H", len(block)) + block


class HeaderTests(SynchronousTestCase):
    """
    L{header_size} and L{parse_header}: version 2 only, addresses as a
    direct TCP connection gives them.
    """

    def test_is_proxy(self) -> None:
        """
        Loopback in any spelling, and listed networks, may send headers;
        nothing else, and nothing that is not an address.
        """
        for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
            self.assertTrue(is_proxy(host, NO_NETWORKS), host)
        for host in ("10.0.0.5", "::ffff:10.0.0.5", "2001:db8::1", "", "proxy.example"):
            self.assertFalse(is_proxy(host, NO_NETWORKS), host)
        self.assertTrue(is_proxy("::ffff:10.0.0.5", Networks.parse("10.0.0.0/24")))
        self.assertFalse(is_proxy("10.0.1.5", Networks.parse("10.0.0.0/24")))

    def test_ipv4(self) -> None:
        """
        Client and proxy addresses and ports of a TCP over IPv4 header.
        """
        self.assertEqual(parse_header(proxy_header("192.0.2.1", 5555, "198.51.100.2", 443)),
                         (IPv4Address("TCP", "192.0.2.1", 5555),
                          IPv4Address("TCP", "198.51.100.2", 443)))

    def test_ipv6_compressed(self) -> None:
        """
        IPv6 addresses come out compressed, as a socket gives them.
        """
        self.assertEqual(parse_header(proxy_header("2001:db8::7", 6000, "2001:db8:0:1::1")),
                         (IPv6Address("TCP", "2001:db8::7", 6000),
                          IPv6Address("TCP", "2001:db8:0:1::1", 443)))

    def test_ipv4_mapped(self) -> None:
        """
        An IPv4-mapped IPv6 address (HAProxy on a dual-stack socket) is the
        IPv4 address, so the guard counts it in its /24.
        """
        source, destination = parse_header(proxy_header("::ffff:192.0.2.1", 7000,
                                                        "::ffff:10.0.0.1"))
        self.assertEqual(source, IPv4Address("TCP", "192.0.2.1", 7000))
        self.assertEqual(destination, IPv4Address("TCP", "10.0.0.1", 443))

    def test_tlvs_after_the_addresses(self) -> None:
        """
        Type-length-value extensions after the addresses (HAProxy may send
        the authority, a unique id, a CRC) are skipped.
        """
        authority = b"\x02" + struct.pack("!H", 17) + b"mail.example.test"
        header = proxy_header("192.0.2.1", extra=authority + b"\x04\x00\x04abcd")
        self.assertEqual(header_size(header + b"\x16\x03\x01"), len(header))
        self.assertEqual(parse_header(header)[0], IPv4Address("TCP", "192.0.2.1", 40000))

    def test_without_client_address(self) -> None:
        """
        LOCAL (HAProxy's health checks), UNSPEC and UNIX headers name no
        client: the connection keeps its own addresses.
        """
        for header in [proxy_header("192.0.2.1", command=0x20),
                       raw_header(0x20, 0x00, b""),
                       raw_header(0x21, 0x00, b""),
                       raw_header(0x21, 0x31, b"/run/a".ljust(108, b"\0") * 2),
                       raw_header(0x21, 0x32, b"\0" * 216)]:
            self.assertEqual(parse_header(header), (None, None), header)

    def test_prefixes_wait(self) -> None:
        """
        Every prefix of a valid header asks for more (C{None} under the 16
        fixed bytes, the full size after), never refuses: a header split
        across reads is read whole.
        """
        header = proxy_header("2001:db8::7")
        for end in range(16):
            self.assertIsNone(header_size(header[:end]))
        for end in range(16, len(header) + 1):
            self.assertEqual(header_size(header[:end]), len(header))

    def test_invalid(self) -> None:
        """
        Garbage, a version 1 header, another version or command, an unknown
        family, a short address block, or a header whose length runs past
        the bytes given are refused.
        """
        good = proxy_header("192.0.2.1")
        for data in [b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                     b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 443\r\n", SIGNATURE[:5] + b"X",
                     good[:12] + b"\x11" + good[13:], good[:12] + b"\x22" + good[13:],
                     good[:12] + b"\x31" + good[13:]]:
            self.assertRaises(InvalidHeader, header_size, data)
            self.assertRaises(InvalidHeader, parse_header, data)
        for family in (0x13, 0x41, 0x10, 0x01):
            self.assertRaises(InvalidHeader, parse_header, raw_header(0x21, family, good[16:]))
        self.assertRaises(InvalidHeader, parse_header, raw_header(0x21, 0x11, good[16:20]))
        self.assertRaises(InvalidHeader, parse_header, raw_header(0x21, 0x21, good[16:]))
        self.assertRaises(InvalidHeader, parse_header, good[:-1])


class ServiceTreeTests(SynchronousTestCase):
    """
    The listeners C{makeService} builds from C{haproxy:}, driven in memory:
    the header's address through TLS to the HTTP channel, and what becomes
    of a connection that sends anything else.
    """

    def make(self, https: str, http: str | None = None, extra: str = "") -> MemoryReactorClock:
        ini = edit(HTTPS, f"https = {https}{extra}")
        if http is not None:
            ini = edit("ttl = 1", f"ttl = 1\nhttp = {http}", ini)
        path = write_config(Path(self.mktemp()).absolute(), ini)
        options = tap.Options()
        options.parseOptions(["--config", str(path)])
        reactor = MemoryReactorClock()
        service = tap.makeService(options, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        return reactor

    def connect(self, reactor: MemoryReactorClock, port: int) -> tuple[Any, RecordingTransport]:
        [factory] = [f for p, f, _, _ in reactor.tcpServers if p == port]
        peer = IPv4Address("TCP", "127.0.0.1", 50000)
        protocol = factory.buildProtocol(peer)
        transport = RecordingTransport(peerAddress=peer,
                                       hostAddress=IPv4Address("TCP", "127.0.0.1", port))
        protocol.makeConnection(transport)
        return protocol, transport

    def test_plain_listener_unchanged(self) -> None:
        """
        Without C{haproxy:}, the HTTPS listener is the TLS factory inside
        the connection limits.
        """
        reactor = self.make("ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt")
        factory = reactor.tcpServers[0][1]
        self.assertIsInstance(factory, LimitedFactory)
        self.assertIsInstance(factory.wrappedFactory, TLSMemoryBIOFactory)

    def test_address_reaches_the_http_channel(self) -> None:
        """
        With C{haproxy:ssl:}, the listener reads the header first (here one
        byte at a time) and TLS, then HTTP, see its addresses; port and
        interface are the configured ones.
        """
        reactor = self.make("haproxy:ssl:8443:interface=127.0.0.1:"
                            "privateKey=tls/server.key:certKey=tls/server.crt")
        [(port, factory, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (8443, "127.0.0.1"))
        self.assertIsInstance(factory, ProxyV2Factory)
        self.assertIsInstance(factory.wrappedFactory, LimitedFactory)
        self.assertIsInstance(factory.wrappedFactory.wrappedFactory, TLSMemoryBIOFactory)
        protocol, transport = self.connect(reactor, 8443)
        for byte in proxy_header("203.0.113.7", 40001, "198.51.100.1", 443):
            protocol.dataReceived(bytes([byte]))
        channel = protocol.wrappedProtocol.wrappedProtocol.wrappedProtocol
        self.assertIsInstance(channel, SmartChannel)
        self.assertEqual(channel.getPeer(), IPv4Address("TCP", "203.0.113.7", 40001))
        self.assertEqual(channel.getHost(), IPv4Address("TCP", "198.51.100.1", 443))
        self.assertFalse(transport.disconnecting)

    def test_redirect_listener(self) -> None:
        """
        C{http = haproxy:tcp:...}: a request after the header gets the
        redirect; without the header, the connection is dropped unanswered.
        """
        reactor = self.make("ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt",
                            "haproxy:tcp:8080")
        protocol, transport = self.connect(reactor, 8080)
        protocol.dataReceived(proxy_header("2001:db8::7")
                              + b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 302 "), transport.value())
        self.assertEqual(protocol.wrappedProtocol.wrappedProtocol.getPeer(),
                         IPv6Address("TCP", "2001:db8::7", 40000))
        protocol, transport = self.connect(reactor, 8080)
        with capturedLogs() as events:
            protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.aborted)
        self.assertIn("dropped: no PROXY v2 signature",
                      " ".join(e["log_format"].format(**e) for e in events))

    def test_only_proxies_may_connect(self) -> None:
        """
        A haproxy: listener takes connections from loopback and from
        C{[server] proxies} only: anyone else could name any client address.
        The refusal happens before a protocol exists, and is logged.
        """
        https = "haproxy:ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt"
        [(_, factory, _, _)] = self.make(https).tcpServers
        with capturedLogs() as events:
            refused = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 50000))
        self.assertIsNone(refused)
        self.assertIn("connection from 192.0.2.9 refused: not a proxy",
                      " ".join(e["log_format"].format(**e) for e in events))
        for peer in (IPv4Address("TCP", "127.0.0.1", 50000), IPv6Address("TCP", "::1", 50000)):
            self.assertIsNotNone(factory.buildProtocol(peer))

        [(_, factory, _, _)] = self.make(https, extra="\nproxies = 192.0.2.0/28, 2001:db8::5"
                                         ).tcpServers
        for host in ("192.0.2.9", "2001:db8::5"):
            self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", host, 50000)))
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.17", 50000)))

    def test_hostile_headers_dropped_at_once(self) -> None:
        """
        Garbage, a TLS ClientHello without a header, a version 1 header and
        a header with an unknown family are dropped on arrival; the wrapped
        protocol never sees a byte, and the log says why.
        """
        reactor = self.make(
            "haproxy:ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt")
        good = proxy_header("192.0.2.1")
        for data, why in [(b"\x00" * 64, "no PROXY v2 signature"),
                          (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "no PROXY v2"),
                          (b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 443\r\n", "a PROXY v1 header"),
                          (good[:13] + b"\x41" + good[14:], "address family 0x41"),
                          (good[:12] + b"\x22", "version and command 0x22")]:
            protocol, transport = self.connect(reactor, 8443)
            wrapped = protocol.wrappedProtocol
            with capturedLogs() as events:
                protocol.dataReceived(data)
                protocol.dataReceived(good)  # too late: ignored
            self.assertTrue(transport.aborted, data)
            self.assertEqual(transport.value(), b"")
            self.assertIsNone(wrapped.transport)  # never started
            logged = " ".join(e["log_format"].format(**e) for e in events)
            self.assertIn(f"connection from 127.0.0.1 dropped: {why}", logged)

    def test_stalled_header_meets_its_deadline(self) -> None:
        """
        A header that stops half-way, or never starts, is held for
        C{HEADER_DEADLINE} seconds from the accept (as long as a request),
        then dropped; the wrapped protocols never start.
        """
        self.assertEqual(HEADER_DEADLINE, REQUEST_DEADLINE)
        reactor = self.make(
            "haproxy:ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt")
        for sent in (proxy_header("192.0.2.1")[:20], b""):
            protocol, transport = self.connect(reactor, 8443)
            protocol.dataReceived(sent)
            reactor.advance(HEADER_DEADLINE - 0.1)
            self.assertFalse(transport.disconnecting)
            with capturedLogs() as events:
                reactor.advance(0.2)
            self.assertTrue(transport.aborted)
            self.assertIsNone(protocol.wrappedProtocol.transport)
            self.assertIn("no complete header within 10 s",
                          " ".join(e["log_format"].format(**e) for e in events))


def documented_haproxy_config() -> str:
    """
    The haproxy block of docs/scaling.md.
    """
    text = (PROJECT_ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```haproxy\n(.*?)```", text, re.S)
    return block


def replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise AssertionError(f"{old!r} occurs {text.count(old)} times in docs/scaling.md's "
                             "haproxy block")
    return text.replace(old, new)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True
