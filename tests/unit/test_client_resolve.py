"""
L{smartdiscover.client.resolve}: the answers a client would get from DNS,
each lookup bounded in time and asked once, over an in-memory zone and a
L{Clock}; and the reactor name resolution built on them.
"""

from __future__ import annotations

from typing import Any, Coroutine, TypeVar

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHostResolution
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.names import dns, error
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from smartdiscover.client.resolve import DNS, Answer, HostnameResolver, parse_server
from tests.unit.test_client_fakes import Zone, a

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> Deferred[T]:
    return Deferred.fromCoroutine(coroutine)


class ParseServerTests(SynchronousTestCase):
    """
    L{parse_server} reads the --resolver argument.
    """

    def test_accepted_forms(self) -> None:
        """
        IPv4 with or without port, bracketed IPv6 with or without port,
        bare IPv6; port 53 by default.
        """
        self.assertEqual(parse_server(" 192.0.2.53 "), ("192.0.2.53", 53))
        self.assertEqual(parse_server("192.0.2.53:5353"), ("192.0.2.53", 5353))
        self.assertEqual(parse_server("[2001:db8::53]:5353"), ("2001:db8::53", 5353))
        self.assertEqual(parse_server("[2001:db8::53]"), ("2001:db8::53", 53))
        self.assertEqual(parse_server("2001:DB8:0::53"), ("2001:db8::53", 53))

    def test_rejected_forms(self) -> None:
        """
        Names, ports out of range or missing, and junk after the bracket
        are ValueErrors.
        """
        for text in ("dns.example.test", "dns.example.test:53", "192.0.2.53:0",
                     "192.0.2.53:65536", "192.0.2.53:", "[2001:db8::53]x",
                     "[2001:db8::53]:", "", "192.0.2.53:x"):
            self.assertRaises(ValueError, parse_server, text)


class LookupTests(SynchronousTestCase):
    """
    L{DNS} over a zone: records, problems, timeouts and the cache.
    """

    def lookups(self, zone: Zone, timeout: float = 5.0) -> tuple[DNS, Clock]:
        clock = Clock()
        return DNS(zone, clock, timeout), clock

    def test_addresses_v4_then_v6(self) -> None:
        """
        IPv4 addresses come first, IPv6 ones compressed after them.
        """
        zone = Zone({("mail.example.test", dns.A): [dns.Record_A("192.0.2.1"),
                                                    dns.Record_A("192.0.2.2")],
                     ("mail.example.test", dns.AAAA): [dns.Record_AAAA("2001:db8:0:0::1")]})
        lookups, _ = self.lookups(zone)
        answer = self.successResultOf(run(lookups.addresses("mail.example.test")))
        self.assertEqual(answer, Answer(("192.0.2.1", "192.0.2.2", "2001:db8::1")))

    def test_only_records_of_the_type_asked(self) -> None:
        """
        A CNAME in the answer is not an address; a CNAME alone is "no
        records", which counts as absent.
        """
        zone = Zone({("alias.example.test", dns.A): [dns.Record_CNAME(b"mail.example.test"),
                                                     dns.Record_A("192.0.2.1")],
                     ("dangling.example.test", dns.A): [dns.Record_CNAME(b"gone.test")]})
        lookups, _ = self.lookups(zone)
        self.assertEqual(self.successResultOf(run(lookups.addresses("alias.example.test"))),
                         Answer(("192.0.2.1",)))
        dangling = self.successResultOf(run(lookups.addresses("dangling.example.test")))
        self.assertEqual((dangling.records, dangling.problem), ((), "no records"))
        self.assertTrue(dangling.absent)

    def test_address_literals_are_not_looked_up(self) -> None:
        """
        An IP address, bracketed or not, is its own answer.
        """
        zone = Zone()
        lookups, _ = self.lookups(zone)
        for host, expected in (("192.0.2.7", "192.0.2.7"), ("[2001:DB8::7]", "2001:db8::7")):
            answer = self.successResultOf(run(lookups.addresses(host)))
            self.assertEqual(answer.records, (expected,))
        self.assertEqual(zone.asked, [])

    def test_problems(self) -> None:
        """
        NXDOMAIN and NODATA are absent; REFUSED, SERVFAIL and other errors
        are problems that are not.
        """
        zone = Zone(a("known.example.test"),
                    failures={("refused.test", dns.A): error.DNSQueryRefusedError("x"),
                              ("servfail.test", dns.A): error.DNSServerError("x"),
                              ("format.test", dns.A): error.DNSFormatError("x"),
                              ("odd.test", dns.A): RuntimeError("socket gone")})
        lookups, _ = self.lookups(zone)
        found = {}
        for host in ("nothere.test", "known.example.test", "refused.test", "servfail.test",
                     "format.test", "odd.test"):
            found[host] = self.successResultOf(run(lookups.mx(host)) if host.startswith("known")
                                               else run(lookups.addresses(host)))
        self.assertEqual({h: (x.problem, x.absent) for h, x in found.items()}, {
            "nothere.test": ("NXDOMAIN", True),
            "known.example.test": ("no records", True),
            "refused.test": ("REFUSED", False),
            "servfail.test": ("SERVFAIL", False),
            "format.test": ("DNSFormatError", False),
            "odd.test": ("lookup failed: socket gone", False)})

    def test_silent_server_times_out_once(self) -> None:
        """
        A lookup that is never answered gives "no answer within" the limit
        once the limit (plus a second of grace) has passed, and the AAAA
        lookup is then not waited for as well.
        """
        zone = Zone(silent=[("slow.example.test", dns.A)])
        lookups, clock = self.lookups(zone, timeout=4.0)
        d = run(lookups.addresses("slow.example.test"))
        clock.advance(4.9)
        self.assertNoResult(d)
        clock.advance(0.2)
        answer = self.successResultOf(d)
        self.assertEqual(answer.problem, "no answer within 4 s")
        self.assertFalse(answer.absent)
        self.assertEqual(zone.asked, [("slow.example.test", dns.A)])

    def test_retransmissions_add_up_to_the_limit(self) -> None:
        """
        The resolver is given query timeouts summing to the limit: 1 s,
        3 s and the rest, fewer when the limit is short.
        """
        for total, expected in ((10.0, (1.0, 3.0, 6.0)), (4.0, (1.0, 3.0)), (2.0, (1.0, 1.0)),
                                (1.0, (1.0,))):
            zone = Zone(a("mail.example.test"))
            lookups, _ = self.lookups(zone, timeout=total)
            self.successResultOf(run(lookups.mx("mail.example.test")))
            self.assertEqual(zone.timeouts, [expected])
            self.assertAlmostEqual(sum(expected), total)

    def test_each_lookup_is_asked_once(self) -> None:
        """
        The same name and type, in any case or with a trailing dot, is
        answered from the cache, failures included.
        """
        zone = Zone(a("mail.example.test"))
        lookups, _ = self.lookups(zone)
        for name in ("mail.example.test", "MAIL.example.test.", "nothere.test", "NotHere.Test"):
            self.successResultOf(run(lookups.addresses(name)))
        self.assertEqual(zone.asked, [("mail.example.test", dns.A),
                                      ("mail.example.test", dns.AAAA),
                                      ("nothere.test", dns.A), ("nothere.test", dns.AAAA)])

    def test_unencodable_name_is_a_problem(self) -> None:
        """
        A host name that cannot be put in a query (an empty label, a label
        over 63 octets), as a redirect may name, is a failed lookup, not an
        exception.
        """
        lookups, _ = self.lookups(Zone())
        for host in ("a..example.test", "x" * 64 + ".example.test"):
            answer = self.successResultOf(run(lookups.addresses(host)))
            self.assertEqual(answer.records, ())
            self.assertIn("lookup failed", answer.problem or "")
            self.assertFalse(answer.absent)


class MXTests(SynchronousTestCase):
    """
    L{DNS.mx}: mail exchangers in order of preference.
    """

    def mx(self, *records: Any, name: str = "example.test") -> Answer:
        lookups = DNS(Zone({(name, dns.MX): list(records)}), Clock(), 5.0)
        return self.successResultOf(run(lookups.mx(name)))

    def test_order_of_preference(self) -> None:
        """
        Lower preference first, whatever the order of the answer; names
        without their trailing dot.
        """
        answer = self.mx(dns.Record_MX(20, b"b.example.test."),
                         dns.Record_MX(5, b"c.example.test"), dns.Record_MX(10, b"a.example.test"))
        self.assertEqual(answer, Answer(((5, "c.example.test"), (10, "a.example.test"),
                                         (20, "b.example.test"))))

    def test_null_mx(self) -> None:
        """
        The null MX of RFC 7505 ("0 ."), however it arrives, is the host
        ".": a domain that accepts no mail, not a host named "".
        """
        for name in (b"", b"."):
            self.assertEqual(self.mx(dns.Record_MX(0, name)).records, ((0, "."),))

    def test_undecodable_name(self) -> None:
        """
        A name with octets that are not ASCII is reported, escaped, instead
        of failing the run.
        """
        answer = self.mx(dns.Record_MX(10, b"m\xe4il.example.test"))
        self.assertEqual(answer.records, ((10, "m\\xe4il.example.test"),))


class SRVTests(SynchronousTestCase):
    """
    L{DNS.srv}: the records of one owner name in the order to use them.
    """

    def srv(self, *records: Any) -> Answer:
        owner = "_autodiscover._tcp.example.test"
        lookups = DNS(Zone({(owner, dns.SRV): list(records)}), Clock(), 5.0)
        return self.successResultOf(run(lookups.srv(owner)))

    def test_priority_then_weight(self) -> None:
        """
        Lowest priority first; within a priority, highest weight first.
        """
        answer = self.srv(dns.Record_SRV(10, 0, 443, b"late.test"),
                          dns.Record_SRV(0, 5, 443, b"light.test"),
                          dns.Record_SRV(0, 50, 8443, b"heavy.test."))
        self.assertEqual(answer.records, ((0, 50, 8443, "heavy.test"), (0, 5, 443, "light.test"),
                                          (10, 0, 443, "late.test")))

    def test_not_offered(self) -> None:
        """
        The target "." (empty on the wire) stays "." : the service is
        explicitly not offered.
        """
        for target in (b"", b"."):
            self.assertEqual(self.srv(dns.Record_SRV(0, 0, 0, target)).records,
                             ((0, 0, 0, "."),))

    def test_undecodable_target(self) -> None:
        """
        A target with octets that are not ASCII is reported, escaped.
        """
        answer = self.srv(dns.Record_SRV(0, 0, 443, b"\xff.example.test"))
        self.assertEqual(answer.records, ((0, 0, 443, "\\xff.example.test"),))


class Receiver:
    """
    An IResolutionReceiver that keeps what it is told.
    """

    def __init__(self) -> None:
        self.began: list[IHostResolution] = []
        self.addresses: list[Any] = []
        self.complete = 0

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        self.began.append(resolution)

    def addressResolved(self, address: Any) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        self.complete += 1


class HostnameResolverTests(SynchronousTestCase):
    """
    L{HostnameResolver} gives the reactor the addresses L{DNS} found.
    """

    def setUp(self) -> None:
        self.zone = Zone({("mail.example.test", dns.A): [dns.Record_A("192.0.2.1")],
                          ("mail.example.test", dns.AAAA): [dns.Record_AAAA("2001:db8::1")]})
        self.clock = Clock()
        self.resolver = HostnameResolver(DNS(self.zone, self.clock, 3.0))

    def test_addresses_with_the_port(self) -> None:
        """
        Every address is delivered with the port and transport asked for,
        then the resolution completes once.
        """
        receiver = Receiver()
        resolution = self.resolver.resolveHostName(receiver, "mail.example.test", 993)
        verifyObject(IHostResolution, resolution)
        self.assertEqual(receiver.began, [resolution])
        self.assertEqual(receiver.addresses, [IPv4Address("TCP", "192.0.2.1", 993),
                                              IPv6Address("TCP", "2001:db8::1", 993)])
        self.assertEqual(receiver.complete, 1)
        udp = Receiver()
        self.resolver.resolveHostName(udp, "mail.example.test", 5060, [IPv6Address], "UDP")
        self.assertEqual(udp.addresses, [IPv6Address("UDP", "2001:db8::1", 5060)])

    def test_failures_complete_empty(self) -> None:
        """
        A name without addresses, or a silent server, completes the
        resolution with no address (once the lookup's limit has passed).
        """
        missing = Receiver()
        self.resolver.resolveHostName(missing, "nothere.example.test", 443)
        self.assertEqual((missing.addresses, missing.complete), ([], 1))
        self.zone.silent.add(("slow.example.test", dns.A))
        slow = Receiver()
        self.resolver.resolveHostName(slow, "slow.example.test", 443)
        self.assertEqual(slow.complete, 0)
        self.clock.advance(4.0)
        self.assertEqual((slow.addresses, slow.complete), ([], 1))

    def test_connections_go_to_the_dns_answer(self) -> None:
        """
        Installed as a reactor's name resolver, it decides where a
        connection to a host name goes.
        """
        from twisted.internet.endpoints import HostnameEndpoint
        from twisted.internet.protocol import Factory, Protocol

        reactor = MemoryReactorClock()
        reactor.installNameResolver(HostnameResolver(DNS(self.zone, reactor, 3.0)))
        HostnameEndpoint(reactor, b"mail.example.test", 8443).connect(
            Factory.forProtocol(Protocol))
        reactor.advance(0)
        self.assertEqual(reactor.tcpClients[0][:2], ("192.0.2.1", 8443))
