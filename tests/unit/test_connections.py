"""
Tests for L{smartdiscover.connections}: connection caps in all and per
client, the listener wrapper that applies them, and their defaults from the
descriptor limit (issue 14, section 1).
"""

from __future__ import annotations

import resource
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionDone
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import ConfigError, load
from smartdiscover.connections import (
    RESERVED_DESCRIPTORS,
    ConnectionLimits,
    LimitedFactory,
    default_dns_connections,
    default_web_connections,
    descriptor_budget,
)
from tests.helpers import MINIMAL_INI, edit, write_config
from tests.unit.test_web import RecordingTransport


class Recorder(Protocol):
    started = 0
    lost = 0

    def connectionMade(self) -> None:
        Recorder.started += 1

    def connectionLost(self, reason: Any = None) -> None:
        Recorder.lost += 1


class LimitsTests(SynchronousTestCase):
    """
    L{ConnectionLimits}: the count in all and per client.
    """

    def test_per_client_and_total(self) -> None:
        """
        A client gets C{per_client} slots; others get theirs until the total
        is reached; a released slot can be taken again.  Refusals are
        counted.
        """
        limits = ConnectionLimits(total=5, per_client=2)
        first = [limits.admit("192.0.2.1") for _ in range(3)]
        self.assertIsNone(first[2])
        self.assertIsNotNone(limits.admit("192.0.2.2"))
        self.assertIsNotNone(limits.admit("192.0.2.3"))
        self.assertIsNotNone(limits.admit("192.0.2.4"))
        self.assertEqual(len(limits), 5)
        self.assertIsNone(limits.admit("192.0.2.5"))
        limits.release(first[0])
        self.assertIsNotNone(limits.admit("192.0.2.1"))
        self.assertEqual((len(limits), limits.refused), (5, 2))

    def test_ipv6_per_64_and_mapped_ipv4(self) -> None:
        """
        IPv6 hosts count per /64 (one host has 2^64 addresses); an
        IPv4-mapped address counts as the IPv4 address.
        """
        limits = ConnectionLimits(total=100, per_client=2)
        self.assertIsNotNone(limits.admit("2001:db8:1:2::1"))
        self.assertIsNotNone(limits.admit("2001:db8:1:2:ffff::9"))
        self.assertIsNone(limits.admit("2001:DB8:1:2::77"))
        self.assertIsNotNone(limits.admit("2001:db8:1:3::1"))
        self.assertIsNotNone(limits.admit("192.0.2.1"))
        self.assertIsNotNone(limits.admit("::ffff:192.0.2.1"))
        self.assertIsNone(limits.admit("192.0.2.1"))

    def test_configure(self) -> None:
        """
        New caps apply to connections from then on; open ones stay.
        """
        limits = ConnectionLimits(total=10, per_client=3)
        keys = [limits.admit("192.0.2.1") for _ in range(3)]
        limits.configure(total=10, per_client=1)
        self.assertIsNone(limits.admit("192.0.2.1"))
        self.assertEqual(len(limits), 3)
        for key in keys:
            limits.release(key)
        self.assertIsNotNone(limits.admit("192.0.2.1"))


class LimitedFactoryTests(SynchronousTestCase):
    """
    L{LimitedFactory} in front of a listener's factory.
    """

    def setUp(self) -> None:
        Recorder.started = Recorder.lost = 0
        self.clock = Clock()
        self.limits = ConnectionLimits(total=3, per_client=2)
        self.factory = LimitedFactory(Factory.forProtocol(Recorder), self.limits, self.clock)

    def connect(self, host: str = "192.0.2.1") -> tuple[Any, RecordingTransport]:
        peer = (IPv6Address if ":" in host else IPv4Address)("TCP", host, 40000)
        protocol = self.factory.buildProtocol(peer)
        transport = RecordingTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_refused_before_the_wrapped_protocol_starts(self) -> None:
        """
        Over the cap, the connection is aborted and the wrapped protocol
        never starts, nor hears of the loss; its slot is not counted.
        """
        self.connect()
        self.connect()
        refused, transport = self.connect()
        self.assertTrue(transport.aborted)
        self.assertEqual(Recorder.started, 2)
        refused.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((Recorder.lost, len(self.limits)), (0, 2))

    def test_closing_frees_the_slot(self) -> None:
        """
        An admitted connection that ends gives its slot back once, however
        often it is told.
        """
        protocol, _ = self.connect()
        self.connect()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((Recorder.lost, len(self.limits)), (1, 1))
        self.assertFalse(self.connect()[1].aborted)
        self.assertEqual(len(self.limits), 2)

    def test_total_across_clients(self) -> None:
        """
        The total holds whatever the clients' addresses.
        """
        results = [self.connect(f"192.0.2.{n}")[1].aborted for n in range(1, 6)]
        self.assertEqual(results, [False, False, False, True, True])

    def test_refusals_logged_at_most_once_a_minute(self) -> None:
        """
        A flood of refusals logs one warning per minute, with the caps and
        the count so far; never per connection.
        """
        self.connect()
        self.connect()
        with capturedLogs() as events:
            for _ in range(50):
                self.connect()
            self.clock.advance(60)
            self.connect()
        texts = [e["log_format"].format(**e) for e in events]
        self.assertEqual(len(texts), 2, texts)
        self.assertIn("connection from 192.0.2.1 refused: 2 connections open (at most 3, "
                      "2 per client); 1 refused since start", texts[0])
        self.assertIn("51 refused since start", texts[1])


class DefaultsTests(SynchronousTestCase):
    """
    Defaults stay below the process's descriptor limit.
    """

    def test_budget_follows_the_soft_limit(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        self.assertEqual(descriptor_budget(), 1024 - RESERVED_DESCRIPTORS)
        self.assertEqual((default_web_connections(), default_dns_connections()), (720, 120))
        self.assertLess(default_web_connections() + default_dns_connections(), 1024)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        self.assertEqual((default_web_connections(), default_dns_connections()), (144, 24))


class ConfigTests(SynchronousTestCase):
    """
    C{[server] max_connections} and C{connections_per_source}.
    """

    def load(self, lines: str) -> Any:
        ini = edit("ttl = 1\n", "ttl = 1\n" + lines, MINIMAL_INI)
        return load(write_config(self.mktemp(), ini))

    def test_defaults(self) -> None:
        model = self.load("")
        self.assertEqual((model.max_connections, model.connections_per_source), (None, 100))
        self.assertIsNone(self.load("max_connections = auto\n").max_connections)

    def test_values(self) -> None:
        model = self.load("max_connections = 5000\nconnections_per_source = 20\n")
        self.assertEqual((model.max_connections, model.connections_per_source), (5000, 20))

    def test_bad_values(self) -> None:
        """
        Zero, negative, fractional and other values are refused with the
        section and key.
        """
        for key, value in [("max_connections", "0"), ("max_connections", "-5"),
                           ("max_connections", "1.5"), ("max_connections", "lots"),
                           ("connections_per_source", "0"),
                           ("connections_per_source", "auto"),
                           ("connections_per_source", "9" * 40)]:
            with self.assertRaises(ConfigError) as raised:
                self.load(f"{key} = {value}\n")
            self.assertIn(f"[server] {key}", str(raised.exception), (key, value))
