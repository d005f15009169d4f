"""
Tests for the DNS listeners of L{smartdiscover.dns.server} and the rate
limiter of L{smartdiscover.dns.rrl}: UDP answers, metrics and error
logging, response rate limiting with slip (SECURITY.md F1, 6.1), DNS over
TCP with pipelining, an idle timeout and a per-source cap (SECURITY.md F5,
6.3; RFC 7766), and the table swap on reload (issue 5).

In process: a L{Clock}, L{FakeDatagramTransport} and L{StringTransport};
no sockets, no global reactor.
"""

from __future__ import annotations

import dataclasses
import random
import struct
import tempfile
from collections import Counter
from typing import Any

import dns.flags
import dns.message
import dns.rcode
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config.networks import NO_NETWORKS, Networks
from smartdiscover.config import load
from smartdiscover.config.model import DNSSettings
from smartdiscover.dns import server
from smartdiscover.dns.rrl import DROP, SEND, SLIP, RateLimiter, network_key
from smartdiscover.dns.server import (
    TCPResponder,
    TCPResponderFactory,
    UDPResponder,
    Zones,
    build_zones,
)
from smartdiscover.dns.table import Table
from tests.helpers import edit, write_config
from tests.unit.test_dns_wire import mutate, seeds

BIG = [f"2001:db8:b16::{i:x}" for i in range(1, 61)]

SERVER_INI = edit("ttl = 1", "ttl = 1\ndns = 127.0.0.1:8053") + f"""
[hosts]
mail.example.test = 192.0.2.10, 2001:db8::10
big.example.test = {", ".join(BIG)}
"""

CLIENT = ("192.0.2.1", 5353)
NEIGHBOUR = ("192.0.2.77", 5353)  # same /24 as CLIENT
STRANGER = ("198.51.100.1", 5353)
TC = 0x0200


def build(ini: str = SERVER_INI) -> tuple[Table, DNSSettings]:
    with tempfile.TemporaryDirectory() as directory:
        model = load(write_config(directory, ini))
    assert model.dns is not None
    return build_zones(model), model.dns


_BUILT: dict[str, tuple[Table, DNSSettings]] = {}


def built(ini: str = SERVER_INI) -> tuple[Table, DNSSettings]:
    """
    L{build}, once per configuration text for the whole module.
    """
    if ini not in _BUILT:
        _BUILT[ini] = build(ini)
    return _BUILT[ini]


def query(name: str = "_imaps._tcp.example.test", rdtype: str = "SRV", **kwargs: Any) -> bytes:
    return dns.message.make_query(name, rdtype, **kwargs).to_wire()


def frame(packet: bytes) -> bytes:
    return struct.pack("!H", len(packet)) + packet


def unframe(data: bytes) -> list[dns.message.Message]:
    """
    The length-prefixed messages of a TCP stream, which must end on a
    message boundary.
    """
    messages = []
    while data:
        (length,) = struct.unpack_from("!H", data)
        body = data[2:2 + length]
        if len(body) != length:
            raise AssertionError(f"stream cut inside a message: {data!r}")
        messages.append(dns.message.from_wire(body))
        data = data[2 + length:]
    return messages


class _ServerTestCase(SynchronousTestCase):
    """
    A L{Zones} on a L{Clock}, with settings overridable per test.
    """

    def zones(self, ini: str = SERVER_INI, **settings: Any) -> Zones:
        self.clock = Clock()
        table, base = built(ini)
        return Zones(table, dataclasses.replace(base, **settings), self.clock.seconds)

    def udp(self, zones: Zones) -> tuple[UDPResponder, FakeDatagramTransport]:
        protocol = UDPResponder(zones)
        transport = FakeDatagramTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def factory(self, zones: Zones) -> TCPResponderFactory:
        return TCPResponderFactory(zones, self.clock)

    def connect(self, factory: TCPResponderFactory, host: str = "192.0.2.1",
                port: int = 40000) -> tuple[TCPResponder, StringTransport]:
        address = (IPv6Address("TCP", host, port) if ":" in host
                   else IPv4Address("TCP", host, port))
        protocol = factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def disconnect(self, protocol: TCPResponder) -> None:
        """
        What the reactor does after an abort or a close.
        """
        protocol.connectionLost(None)


class UDPResponderTests(_ServerTestCase):
    """
    The UDP listener: answers, metrics, errors (issue 5 sections 2 and 4).
    """

    def test_answer_to_sender(self) -> None:
        """
        The answer goes to the address the query came from, IPv4 or IPv6.
        """
        protocol, transport = self.udp(self.zones())
        for address in (CLIENT, ("2001:db8::1", 5353, 0, 0)):
            protocol.datagramReceived(query(id=4242), address)
            ((data, to),) = transport.written
            transport.written.clear()
            self.assertEqual(to, address)
            response = dns.message.from_wire(data)
            self.assertEqual(response.id, 4242)
            self.assertEqual(response.answer[0][0].to_text(), "0 1 993 mail.example.test.")

    def test_rcodes_counted(self) -> None:
        """
        Every response is counted by rcode; a packet that gets no response
        (QR=1, too short) is neither counted nor answered.
        """
        zones = self.zones(rrl_rate=0)
        protocol, transport = self.udp(zones)
        packets = [query(), query(), query("nope.example.test", "A"),
                   query("www.google.com", "A"), query("example.test", "AXFR"),
                   query(use_edns=1), b"\x12\x34\x01\x00" + b"\x00" * 8]
        for packet in packets:
            protocol.datagramReceived(packet, CLIENT)
        self.assertEqual(zones.rcodes, Counter({0: 2, 3: 1, 5: 2, 16: 1, 1: 1}))
        self.assertEqual(len(transport.written), len(packets))
        response = bytearray(query())
        response[2] |= 0x80
        protocol.datagramReceived(bytes(response), CLIENT)
        protocol.datagramReceived(b"\x12", CLIENT)
        self.assertEqual(len(transport.written), len(packets))
        self.assertEqual(sum(zones.rcodes.values()), len(packets))

    def test_failure_logged_once_a_minute(self) -> None:
        """
        A query that breaks the query path is counted and logged at most
        once a minute (a flood must not flood the log), and the listener
        keeps answering (SECURITY.md 6.3).
        """
        zones = self.zones()
        protocol, transport = self.udp(zones)
        failing = [True]
        real = server.respond

        def respond(packet: bytes, table: Table, udp: bool) -> Any:
            if failing[0]:
                raise RuntimeError("broken query path")
            return real(packet, table, udp)

        self.patch(server, "respond", respond)
        for _ in range(5):
            protocol.datagramReceived(query(), CLIENT)
        self.assertEqual((zones.errors, transport.written), (5, []))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.clock.advance(59)
        protocol.datagramReceived(query(), STRANGER)
        self.assertEqual(zones.errors, 6)
        self.assertEqual(self.flushLoggedErrors(RuntimeError), [])
        self.clock.advance(1)
        protocol.datagramReceived(query(), STRANGER)
        self.assertEqual(zones.errors, 7)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        failing[0] = False
        protocol.datagramReceived(query(id=7), STRANGER)
        ((data, to),) = transport.written
        self.assertEqual((dns.message.from_wire(data).id, to), (7, STRANGER))
        self.assertEqual(zones.errors, 7)

    def test_fuzzed_datagrams(self) -> None:
        """
        Mutated queries through the protocol: nothing logged, no error
        counted, every reply to its sender with the query's ID (SECURITY.md
        6.3: a harness on the real handler).
        """
        zones = self.zones(rrl_rate=0)
        protocol, transport = self.udp(zones)
        rng = random.Random(53)
        pool = seeds()
        for _ in range(3000):
            packet = mutate(rng.choice(pool), rng)
            protocol.datagramReceived(packet, CLIENT)
            for data, to in transport.written:
                self.assertEqual((to, data[:2]), (CLIENT, packet[:2]))
                self.assertLessEqual(len(data), 1232)
            transport.written.clear()
        self.assertEqual(zones.errors, 0)
        self.assertGreater(sum(zones.rcodes.values()), 1000)


class RateLimiterTests(SynchronousTestCase):
    """
    L{RateLimiter} with an injected clock (SECURITY.md 6.1: "1000 identical
    queries in 1 s from one source: rate answered, half the rest TC, rest
    dropped"; NSD/Knot aggregation; a bounded table).
    """

    def setUp(self) -> None:
        self.clock = Clock()

    def limiter(self, rate: int = 20, slip: int = 2, exempt: tuple[str, ...] = (),
                size: int = 1000) -> RateLimiter:
        return RateLimiter(rate, slip, Networks.parse(", ".join(exempt)), self.clock.seconds,
                           size=size)

    def burst(self, limiter: RateLimiter, host: str, count: int) -> Counter[int]:
        return Counter(limiter.check(host) for _ in range(count))

    def assertAbout(self, actual: int, expected: int) -> None:
        self.assertTrue(abs(actual - expected) <= 1, f"{actual} is not {expected} (+-1)")

    def test_burst(self) -> None:
        """
        1000 queries at once from one /24: the rate is sent, every second
        limited response slipped, the others dropped; the counters agree.
        """
        limiter = self.limiter(rate=20, slip=2)
        actions = Counter(limiter.check(f"192.0.2.{i % 250 + 1}") for i in range(1000))
        self.assertAbout(actions[SEND], 20)
        self.assertAbout(actions[SLIP], 490)
        self.assertAbout(actions[DROP], 490)
        self.assertEqual(sum(actions.values()), 1000)
        self.assertEqual((limiter.slipped, limiter.dropped), (actions[SLIP], actions[DROP]))

    def test_others_answered_meanwhile(self) -> None:
        """
        While one /24 is limited, another /24 and an exempt network are
        answered.
        """
        limiter = self.limiter(rate=20, exempt=("203.0.113.0/24", "2001:db8:e::/48"))
        self.burst(limiter, "192.0.2.1", 1000)
        self.assertNotEqual(limiter.check("192.0.2.1"), SEND)
        self.assertEqual(self.burst(limiter, "192.0.3.1", 20), Counter({SEND: 20}))
        self.assertEqual(self.burst(limiter, "203.0.113.9", 1000), Counter({SEND: 1000}))
        self.assertEqual(self.burst(limiter, "2001:db8:e:1::1", 1000), Counter({SEND: 1000}))
        self.assertNotEqual(limiter.check("192.0.2.200"), SEND)

    def test_refill(self) -> None:
        """
        Tokens come back at the rate, and never more than one second's
        worth accumulates.
        """
        limiter = self.limiter(rate=20, slip=0)
        self.burst(limiter, "192.0.2.1", 100)
        self.clock.advance(0.5)
        self.assertAbout(self.burst(limiter, "192.0.2.1", 100)[SEND], 10)
        self.clock.advance(1000)
        self.assertAbout(self.burst(limiter, "192.0.2.1", 100)[SEND], 20)

    def test_ipv6_per_56(self) -> None:
        """
        IPv6 sources are counted per /56: two addresses of one /56 share a
        bucket, an address of the next /56 has its own.
        """
        limiter = self.limiter(rate=10, slip=0)
        self.assertEqual(self.burst(limiter, "2001:db8:1:12::1", 10), Counter({SEND: 10}))
        self.assertEqual(limiter.check("2001:db8:1:ff:ffff::9"), DROP)
        self.assertEqual(limiter.check("2001:db8:1:0::1%eth0"), DROP)
        self.assertEqual(self.burst(limiter, "2001:db8:1:100::1", 10), Counter({SEND: 10}))
        self.assertEqual(network_key("2001:db8:1:12::1"), network_key("2001:db8:1:ff::2"))
        self.assertNotEqual(network_key("2001:db8:1:12::1"), network_key("2001:db8:1:112::1"))

    def test_ipv4_per_24(self) -> None:
        """
        IPv4 sources are counted per /24.
        """
        self.assertEqual(network_key("192.0.2.1"), network_key("192.0.2.254"))
        self.assertNotEqual(network_key("192.0.2.1"), network_key("192.0.3.1"))
        self.assertNotEqual(network_key("10.1.2.3"), network_key("101.2.3.4"))

    def test_ipv4_mapped(self) -> None:
        """
        On a dual-stack socket ([server] dns = [::]:53) IPv4 clients arrive
        as ::ffff:a.b.c.d; they are still counted per /24, not all together
        in the /56 ::/56, where one flooding client would silence every
        IPv4 client; an exempt IPv4 network stays exempt.
        """
        self.assertEqual(network_key("::ffff:192.0.2.1"), network_key("::ffff:192.0.2.200"))
        self.assertNotEqual(network_key("::ffff:192.0.2.1"), network_key("::ffff:198.51.100.1"))
        limiter = self.limiter(rate=5, slip=0, exempt=("203.0.113.0/24",))
        self.burst(limiter, "::ffff:192.0.2.1", 100)
        self.assertEqual(limiter.check("::ffff:198.51.100.1"), SEND)
        self.assertEqual(self.burst(limiter, "::ffff:203.0.113.5", 100), Counter({SEND: 100}))

    def test_rate_zero_is_off(self) -> None:
        """
        Rate 0 turns rate limiting off, and nothing is remembered.
        """
        limiter = self.limiter(rate=0)
        self.assertEqual(self.burst(limiter, "192.0.2.1", 5000), Counter({SEND: 5000}))
        self.assertEqual((len(limiter), limiter.dropped, limiter.slipped), (0, 0, 0))

    def test_slip(self) -> None:
        """
        Slip 0 drops every limited response; slip 1 slips every one; slip 3
        every third.
        """
        for slip, slipped in ((0, 0), (1, 90), (3, 30)):
            limiter = self.limiter(rate=10, slip=slip)
            actions = self.burst(limiter, f"192.0.{slip}.1", 100)
            self.assertEqual((actions[SEND], actions[SLIP], actions[DROP]),
                             (10, slipped, 90 - slipped))

    def test_table_bounded(self) -> None:
        """
        A million distinct source networks never grow the table past its
        size (SECURITY.md 6.1: "RRL table <= its cap with 1 M sources"),
        and a new source is always answered.
        """
        limiter = self.limiter(rate=20, size=1000)
        check = limiter.check
        for a in range(16):
            for b in range(256):
                for c in range(256):
                    if check(f"{a}.{b}.{c}.1") != SEND:
                        self.fail(f"new network {a}.{b}.{c}.0/24 limited")
            self.assertLessEqual(len(limiter), 1000)
        self.assertEqual(len(limiter), 1000)

    def test_configure(self) -> None:
        """
        New limits take effect at once; counts and buckets are kept.
        """
        limiter = self.limiter(rate=20, slip=2)
        self.burst(limiter, "192.0.2.1", 100)
        counts = (limiter.slipped, limiter.dropped)
        limiter.configure(5, 1, Networks.parse("198.51.100.0/24"))
        self.assertEqual((limiter.slipped, limiter.dropped), counts)
        self.assertEqual(limiter.check("192.0.2.1"), SLIP)  # still limited, now slip 1
        self.clock.advance(10)
        self.assertEqual(self.burst(limiter, "192.0.2.1", 10), Counter({SEND: 5, SLIP: 5}))
        self.assertEqual(self.burst(limiter, "198.51.100.1", 100), Counter({SEND: 100}))
        limiter.configure(0, 2, NO_NETWORKS)
        self.assertEqual(self.burst(limiter, "192.0.2.1", 100), Counter({SEND: 100}))


class UDPRateLimitTests(_ServerTestCase):
    """
    Rate limiting through the UDP listener (SECURITY.md 6.1; issue 5
    section 4: "RRL dropping and slipping under a burst from one address
    while another address is answered").
    """

    def test_slip_and_drop(self) -> None:
        """
        Over the limit, slipped responses are TC=1 with only the question
        (no larger than the query); dropped ones write nothing; another
        network is answered meanwhile.
        """
        zones = self.zones(rrl_rate=5, rrl_slip=2)
        protocol, transport = self.udp(zones)
        for packet in (query(id=1), query(id=1, use_edns=0)):
            transport.written.clear()
            for _ in range(21):
                protocol.datagramReceived(packet, CLIENT)
            responses = [dns.message.from_wire(data) for data, _ in transport.written]
            full = [r for r in responses if not r.flags & dns.flags.TC]
            slipped = [r for r in responses if r.flags & dns.flags.TC]
            self.assertLessEqual(len(full), 5)
            self.assertEqual(len(full) + len(slipped), len(responses))
            for data, to in transport.written:
                self.assertEqual(to, CLIENT)
                if struct.unpack_from("!H", data, 2)[0] & TC:
                    self.assertLessEqual(len(data), len(packet))
            for response in slipped:
                self.assertEqual((response.id, response.rcode()), (1, dns.rcode.NOERROR))
                self.assertEqual(len(response.question), 1)
                self.assertEqual((response.answer, response.authority, response.additional),
                                 ([], [], []))
            if packet == query(id=1):
                self.assertEqual((len(full), len(slipped)), (5, 8))
        self.assertEqual((zones.limiter.slipped, zones.limiter.dropped), (8 + 10, 8 + 11))
        transport.written.clear()
        protocol.datagramReceived(query(id=2), STRANGER)
        ((data, to),) = transport.written
        self.assertEqual(to, STRANGER)
        self.assertEqual(len(dns.message.from_wire(data).answer), 1)

    def test_aggregated_per_24(self) -> None:
        """
        Two addresses of one /24 share the limit.
        """
        protocol, transport = self.udp(self.zones(rrl_rate=4, rrl_slip=0))
        for address in (CLIENT, NEIGHBOUR) * 10:
            protocol.datagramReceived(query(), address)
        self.assertEqual(len(transport.written), 4)

    def test_exempt(self) -> None:
        """
        A client of rrl_exempt is never limited (issue 5 section 3: the
        benchmark client).
        """
        protocol, transport = self.udp(self.zones(rrl_rate=1, rrl_exempt=Networks.parse("192.0.2.0/24")))
        for _ in range(100):
            protocol.datagramReceived(query(), CLIENT)
        self.assertEqual(len(transport.written), 100)


class TCPResponderTests(_ServerTestCase):
    """
    DNS over TCP (RFC 7766; SECURITY.md F5 and 6.3): framing, pipelining,
    the idle timeout, the per-source cap, no rate limiting.
    """

    def test_length_prefixed(self) -> None:
        """
        An answer is one length-prefixed message, the full answer even
        when it would not fit UDP (the TC retry).
        """
        zones = self.zones()
        protocol, transport = self.connect(self.factory(zones))
        protocol.dataReceived(frame(query(id=9)))
        ((response,),) = [unframe(transport.value())]
        self.assertEqual((response.id, response.answer[0][0].to_text()),
                         (9, "0 1 993 mail.example.test."))
        self.assertEqual(zones.rcodes, Counter({0: 1}))

        udp, sent = self.udp(zones)
        udp.datagramReceived(query("big.example.test", "AAAA"), CLIENT)
        ((data, _),) = sent.written
        self.assertTrue(dns.message.from_wire(data).flags & dns.flags.TC)
        transport.clear()
        protocol.dataReceived(frame(query("big.example.test", "AAAA")))
        (response,) = unframe(transport.value())
        self.assertFalse(response.flags & dns.flags.TC)
        self.assertEqual(sorted(r.to_text() for r in response.answer[0]), sorted(BIG))

    def test_pipelined(self) -> None:
        """
        Two queries in one segment get two answers, in order.
        """
        protocol, transport = self.connect(self.factory(self.zones()))
        protocol.dataReceived(frame(query(id=1)) + frame(query("nope.example.test", "A", id=2)))
        first, second = unframe(transport.value())
        self.assertEqual((first.id, first.rcode()), (1, dns.rcode.NOERROR))
        self.assertEqual((second.id, second.rcode()), (2, dns.rcode.NXDOMAIN))

    def test_byte_at_a_time(self) -> None:
        """
        A query split into single bytes, its length prefix too, is answered
        once it is complete.
        """
        protocol, transport = self.connect(self.factory(self.zones()))
        data = frame(query(id=77))
        for index in range(len(data)):
            self.assertEqual(transport.value(), b"")
            protocol.dataReceived(data[index:index + 1])
        (response,) = unframe(transport.value())
        self.assertEqual(response.id, 77)

    def test_idle_timeout(self) -> None:
        """
        A connection without a query is aborted after tcp_idle (10 s by
        default); nothing is left scheduled once it is gone.
        """
        zones = self.zones()
        self.assertEqual(zones.settings.tcp_idle, 10)
        protocol, transport = self.connect(self.factory(zones))
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.disconnected)
        self.disconnect(protocol)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout_reset_by_query(self) -> None:
        """
        Each query restarts the idle timeout.
        """
        protocol, transport = self.connect(self.factory(self.zones(tcp_idle=3.0)))
        for _ in range(5):
            self.clock.advance(2.5)
            protocol.dataReceived(frame(query()))
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(unframe(transport.value())), 5)
        self.clock.advance(3)
        self.assertTrue(transport.disconnected)

    def test_partial_message_times_out(self) -> None:
        """
        A length prefix of 65535, 10 bytes, then silence: closed by the idle
        timeout (SECURITY.md 6.3).
        """
        protocol, transport = self.connect(self.factory(self.zones()))
        protocol.dataReceived(b"\xff\xff" + b"\x00" * 10)
        self.clock.advance(10)
        self.assertTrue(transport.disconnected)
        self.assertEqual(transport.value(), b"")

    def test_dribble_does_not_extend(self) -> None:
        """
        Bytes that never complete a query do not keep the connection open
        (the timeout counts queries, not bytes; cf. SECURITY.md F6).
        """
        protocol, transport = self.connect(self.factory(self.zones()))
        protocol.dataReceived(b"\xff\xff")
        for _ in range(9):
            self.clock.advance(1)
            protocol.dataReceived(b"\x00")
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnected)

    def test_per_source_cap(self) -> None:
        """
        tcp_per_source (20) connections from one address are admitted, the
        next is aborted while another address is admitted; closing an
        admitted connection frees its slot, closing a refused one does not.
        """
        factory = self.factory(self.zones())
        admitted = [self.connect(factory, port=1000 + n) for n in range(20)]
        self.assertFalse(any(t.disconnecting for _, t in admitted))
        refused, transport = self.connect(factory, port=2000)
        self.assertTrue(transport.disconnected)
        self.assertFalse(self.connect(factory, host="192.0.2.2")[1].disconnecting)
        self.assertFalse(self.connect(factory, host="2001:db8::1")[1].disconnecting)

        self.disconnect(refused)
        self.assertTrue(self.connect(factory, port=2001)[1].disconnected)
        self.disconnect(admitted[0][0])
        again, again_transport = self.connect(factory, port=2002)
        self.assertFalse(again_transport.disconnecting)
        again.dataReceived(frame(query(id=5)))
        self.assertEqual(unframe(again_transport.value())[0].id, 5)
        self.assertTrue(self.connect(factory, port=2003)[1].disconnected)

    def test_per_source_cap_configured(self) -> None:
        """
        The cap follows [dns] tcp_per_source.
        """
        factory = self.factory(self.zones(tcp_per_source=2))
        self.assertEqual([self.connect(factory)[1].disconnected for _ in range(3)],
                         [False, False, True])

    def test_not_rate_limited(self) -> None:
        """
        TCP is never rate limited (SECURITY.md 6.1: "same over TCP: no
        limiting").
        """
        zones = self.zones(rrl_rate=1, rrl_slip=0)
        protocol, transport = self.connect(self.factory(zones))
        protocol.dataReceived(b"".join(frame(query(id=n)) for n in range(100)))
        self.assertEqual([r.id for r in unframe(transport.value())], list(range(100)))
        self.assertEqual((len(zones.limiter), zones.limiter.dropped), (0, 0))

    def test_response_ignored(self) -> None:
        """
        A message with QR=1 gets nothing, and the connection stays open.
        """
        protocol, transport = self.connect(self.factory(self.zones()))
        packet = bytearray(query())
        packet[2] |= 0x80
        protocol.dataReceived(frame(bytes(packet)) + frame(query(id=3)))
        self.assertEqual([r.id for r in unframe(transport.value())], [3])
        self.assertFalse(transport.disconnecting)

    def test_failure_closes(self) -> None:
        """
        A query that breaks the query path closes that connection, is
        counted and logged once a minute at most.
        """
        zones = self.zones()
        factory = self.factory(zones)

        def respond(packet: bytes, table: Table, udp: bool) -> Any:
            raise RuntimeError("broken query path")

        self.patch(server, "respond", respond)
        for port in (1, 2):
            protocol, transport = self.connect(factory, port=port)
            protocol.dataReceived(frame(query()))
            self.assertTrue(transport.disconnecting)
            self.assertEqual(transport.value(), b"")
        self.assertEqual(zones.errors, 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_fuzzed_stream(self) -> None:
        """
        Mutated queries, correctly framed: each gets at most one answer with
        its ID, nothing is logged, the connection stays open.
        """
        zones = self.zones()
        protocol, transport = self.connect(self.factory(zones))
        rng = random.Random(7766)
        pool = seeds()
        for _ in range(1000):
            packet = mutate(rng.choice(pool), rng)
            protocol.dataReceived(frame(packet))
            data = transport.value()
            transport.clear()
            if data:
                (length,) = struct.unpack_from("!H", data)
                self.assertEqual(len(data), 2 + length)
                self.assertEqual(data[2:4], packet[:2])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(zones.errors, 0)


class ReplaceTests(_ServerTestCase):
    """
    A reload swaps the table and the settings in one step (issue 5: "a
    reload test that changes a port and sees the SRV record change").
    """

    def test_replace(self) -> None:
        """
        After L{Zones.replace} UDP and TCP answer from the new table, the
        limiter has the new limits, and the counters are kept.
        """
        zones = self.zones(rrl_rate=20)
        protocol, transport = self.udp(zones)
        tcp, stream = self.connect(self.factory(zones))
        for _ in range(30):
            protocol.datagramReceived(query(), CLIENT)
        self.assertEqual(dns.message.from_wire(transport.written[0][0]).answer[0][0].port, 993)
        limited = (zones.limiter.slipped, zones.limiter.dropped)
        self.assertNotEqual(limited, (0, 0))

        table, settings = built(edit("host = mail.example.test\nsecurity = ssl",
                                     "host = mail.example.test\nport = 1993\nsecurity = ssl",
                                     SERVER_INI))
        zones.replace(table, dataclasses.replace(settings, rrl_rate=3, rrl_slip=0,
                                                 tcp_per_source=1))
        self.assertIs(zones.table, table)
        self.assertEqual((zones.limiter.rate, zones.limiter.slip), (3, 0))
        self.assertEqual((zones.limiter.slipped, zones.limiter.dropped), limited)
        self.assertEqual(zones.rcodes, Counter({0: 30}))

        transport.written.clear()
        for _ in range(10):
            protocol.datagramReceived(query(), STRANGER)
        self.assertEqual(len(transport.written), 3)
        self.assertEqual(dns.message.from_wire(transport.written[0][0]).answer[0][0].port,
                         1993)
        tcp.dataReceived(frame(query()))
        self.assertEqual(unframe(stream.value())[0].answer[0][0].port, 1993)
        self.assertTrue(self.connect(tcp.factory, port=2)[1].disconnected)
