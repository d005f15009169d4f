"""
Honest health on a closed network (issue 16 section 5): where the probes
connect and whether they run at all.

- A name inside a served zone is probed at the addresses the zone itself
  publishes ([hosts], the autodiscover./autoconfig. names that take the
  public host's addresses, [records] A/AAAA and CNAMEs), never asking the
  system resolver; any other name goes to the system resolver.  Several
  addresses are tried in order, as HostnameEndpoint does, and the error
  names the address that failed.  TLS is verified against the host name
  (SNI and service_identity), not the address.
- [health] probes = no: no round at start, on the interval or after a
  reload, so no connection and no DNS query; nothing is left out of
  answers and /health/ready depends on the listeners alone.

Addresses are checked on a L{MemoryReactorClock} with a recording fake
resolver; TLS against real servers on loopback, through a reactor whose
resolver fails the test if asked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from twisted.internet import reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import (
    ConnectError,
    ConnectionRefusedError,
    DNSLookupError,
    NoRouteError,
    UserError,
)
from twisted.internet.interfaces import IAddress, IHostResolution, IResolutionReceiver
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, trustRootFromCertificates
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from cryptography.hazmat.primitives import serialization

from smartdiscover.config import ConfigError, Model, load
from smartdiscover.config.model import Security, ZoneRecord
from smartdiscover.config.zone import published_addresses
from smartdiscover.health.addresses import (
    AddressesEndpoint,
    Attempts,
    NotPublished,
    Unreachable,
    ZoneResolver,
)
from smartdiscover.health.endpoints import service_key
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.health.probes import ProbeResult, Target, probe
from tests.helpers import PROJECT_ROOT, build_ini, write_config
from tests.unit.test_health import FakeProbe
from tests.unit.test_probes import (
    IMAP,
    SIPDatagrams,
    DatagramClock,
    Tracking,
    _development,
    _options,
    _site,
)

SSL_, STARTTLS, NONE = Security.SSL, Security.STARTTLS, Security.NONE
SHIPPED = (PROJECT_ROOT / "etc" / "sd.ini").read_text(encoding="utf-8")

# Two domains, the DNS responder, hosts with one, two and IPv6-only
# addresses, a service host outside the zones and one inside without an
# address of its own (an EWS URL host, which [hosts] need not list).
INI = build_ini({
    "server": {"domains": "example.test, example.org", "dns": "127.0.0.1:5353"},
    "imap": {"host": "mail.example.test, v6.example.test"},
    "pop3": {"host": "pop.outside.invalid"},
    "urls": {"ews": "https://ews.example.test/EWS/Exchange.asmx", "webclient": None},
    "domain:example.org": {"server.public_hostname": "mail.example.org"},
    "health": "{health}",
    "hosts": {"mail.example.test": "192.0.2.10, 2001:db8::10",
              "v6.example.test": "2001:db8::6",
              "mail.example.org": "198.51.100.20"},
})


def load_ini(directory: str, health: str = "", ini: str = INI) -> Model:
    return load(write_config(directory, ini.format(health=health)))


def shipped(directory: str) -> Model:
    """
    etc/sd.ini exactly as shipped, beside a password file.
    """
    return load(write_config(directory, SHIPPED))


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        pass


class FakeResolver:
    """
    The system resolver as a test sees it: records every question and
    answers from C{answers} (no answer: the name does not resolve); with
    C{hold}, answers only when the test calls L{complete}.
    """

    def __init__(self, answers: dict[str, list[str]] | None = None,
                 hold: bool = False) -> None:
        self.answers = answers or {}
        self.asked: list[tuple[str, int, str]] = []
        self.hold = hold
        self.waiting: list[tuple[IResolutionReceiver, str, int]] = []

    def resolveHostName(self, resolutionReceiver: IResolutionReceiver, hostName: str,
                        portNumber: int = 0,
                        addressTypes: Sequence[type[IAddress]] | None = None,
                        transportSemantics: str = "TCP") -> IHostResolution:
        self.asked.append((hostName, portNumber, transportSemantics))
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        if self.hold:
            self.waiting.append((resolutionReceiver, hostName, portNumber))
        else:
            self._answer(resolutionReceiver, hostName, portNumber)
        return resolution

    def complete(self) -> None:
        for receiver, name, port in self.waiting:
            self._answer(receiver, name, port)
        self.waiting.clear()

    def _answer(self, receiver: IResolutionReceiver, name: str, port: int) -> None:
        for host in self.answers.get(name, []):
            kind = IPv6Address if ":" in host else IPv4Address
            receiver.addressResolved(kind("TCP", host, port))
        receiver.resolutionComplete()


class Receiver:
    """
    Collects one resolution.
    """

    def __init__(self) -> None:
        self.addresses: list[IAddress] = []
        self.complete = False

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        self.complete = True


class ResolvingReactor:
    """
    The real reactor with another name resolver.
    """

    def __init__(self, resolver: Any) -> None:
        self.nameResolver = resolver

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


def memory_reactor(resolver: FakeResolver) -> MemoryReactorClock:
    memory = MemoryReactorClock()
    memory.nameResolver = resolver
    return memory


def refuse(memory: MemoryReactorClock, index: int, exc: Exception | None = None) -> None:
    """
    Fail the C{index}th connection attempt (refused unless C{exc}).
    """
    factory = memory.tcpClients[index][2]
    factory.clientConnectionFailed(memory.connectors[index],
                                   Failure(exc or ConnectionRefusedError()))


def accept(memory: MemoryReactorClock, index: int) -> None:
    """
    Let the C{index}th connection attempt succeed.
    """
    factory = memory.tcpClients[index][2]
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(StringTransport())


class PublishedAddressesTests(SynchronousTestCase):
    """
    L{published_addresses}: what a served zone publishes for a name, from
    the model alone (no DNS query, not even to ourselves).
    """

    def test_shipped(self) -> None:
        """
        On etc/sd.ini as shipped, mail.example.test is at 127.0.0.1 and
        ::1, and so are autodiscover./autoconfig.example.test, which take
        the public host's addresses; names are matched in any case and
        with a final dot.
        """
        model = shipped(self.mktemp())
        for name in ("mail.example.test", "MAIL.Example.Test.", "autodiscover.example.test",
                     "autoconfig.example.test"):
            self.assertEqual(published_addresses(model, name), ("127.0.0.1", "::1"), name)

    def test_in_and_out_of_the_zones(self) -> None:
        """
        In order as [hosts] gives them; IPv6 alone; the second domain's
        aliases take its own public host's; an in-zone name without an
        address has none (clients get none either); a name outside every
        zone, or an IP address, is the system resolver's (None).
        """
        model = load_ini(self.mktemp())
        self.assertEqual(published_addresses(model, "mail.example.test"),
                         ("192.0.2.10", "2001:db8::10"))
        self.assertEqual(published_addresses(model, "v6.example.test"), ("2001:db8::6",))
        self.assertEqual(published_addresses(model, "autodiscover.example.org"),
                         ("198.51.100.20",))
        self.assertEqual(published_addresses(model, "ews.example.test"), ())
        self.assertEqual(published_addresses(model, "example.test"), ())
        for name in ("pop.outside.invalid", "example.test.evil", "notexample.test",
                     "192.0.2.10", "2001:db8::10", ""):
            self.assertIsNone(published_addresses(model, name), name)

    def test_without_dns(self) -> None:
        """
        Without [server] dns no zone is published: every name goes to the
        system resolver.
        """
        ini = INI.replace("dns = 127.0.0.1:5353\n", "")
        model = load_ini(self.mktemp(), ini=ini)
        self.assertIsNone(model.dns)
        self.assertIsNone(published_addresses(model, "mail.example.test"))

    def test_records(self) -> None:
        """
        [records] A/AAAA of a name without [hosts] entry, in file order; a
        CNAME is followed inside the zones, and out of them is the system
        resolver's; a loop has no address.
        """
        model = load_ini(self.mktemp())
        assert model.dns is not None
        records = (
            ZoneRecord("www.example.test", "AAAA", "2001:db8::80"),
            ZoneRecord("www.example.test", "A", "192.0.2.80"),
            ZoneRecord("ews.example.test", "CNAME", "mail.example.test"),
            ZoneRecord("owa.example.test", "CNAME", "www.example.test"),
            ZoneRecord("cdn.example.test", "CNAME", "edge.provider.invalid"),
            ZoneRecord("a.example.test", "CNAME", "b.example.test"),
            ZoneRecord("b.example.test", "CNAME", "a.example.test"),
        )
        model = replace(model, dns=replace(model.dns, records=records))
        self.assertEqual(published_addresses(model, "www.example.test"),
                         ("2001:db8::80", "192.0.2.80"))
        self.assertEqual(published_addresses(model, "ews.example.test"),
                         ("192.0.2.10", "2001:db8::10"))
        self.assertEqual(published_addresses(model, "owa.example.test"),
                         ("2001:db8::80", "192.0.2.80"))
        self.assertIsNone(published_addresses(model, "cdn.example.test"))
        self.assertEqual(published_addresses(model, "a.example.test"), ())

    def test_monitor_targets(self) -> None:
        """
        The monitor hands each probe its host's published addresses, or
        None for a host outside the zones.
        """
        clock = Clock()
        fake = FakeProbe(clock)
        model = load_ini(self.mktemp(), "interval = 60\n")
        monitor = HealthMonitor(lambda: model, clock, run_probe=fake)
        monitor.startService()
        self.addCleanup(monitor.stopService)
        clock.advance(0)
        found = {status.target.host: status.target.addresses
                 for status in monitor.statuses.values()}
        self.assertEqual(found["mail.example.test"], ("192.0.2.10", "2001:db8::10"))
        self.assertEqual(found["v6.example.test"], ("2001:db8::6",))
        self.assertEqual(found["ews.example.test"], ())
        self.assertIsNone(found["pop.outside.invalid"])
        imap = model.catalogue.services_named("imap")[0]
        self.assertEqual(monitor.statuses[service_key(imap)].target.addresses,
                         ("192.0.2.10", "2001:db8::10"))


class ZoneResolverTests(SynchronousTestCase):
    """
    L{ZoneResolver}: published names at once, every other name to the
    system resolver.
    """

    def test_published(self) -> None:
        """
        A published name is answered in order, with the port and transport
        asked for, and the system resolver is never asked.
        """
        system = FakeResolver()
        resolver = ZoneResolver({"Mail.Example.Test": ("192.0.2.1", "2001:db8::1")},
                                lambda: system)
        receiver = Receiver()
        resolver.resolveHostName(receiver, "mail.example.test.", 993)
        self.assertTrue(receiver.complete)
        self.assertEqual(receiver.addresses, [IPv4Address("TCP", "192.0.2.1", 993),
                                              IPv6Address("TCP", "2001:db8::1", 993)])
        receiver = Receiver()
        resolver.resolveHostName(receiver, "mail.example.test", 5060,
                                 addressTypes=[IPv6Address], transportSemantics="UDP")
        self.assertEqual(receiver.addresses, [IPv6Address("UDP", "2001:db8::1", 5060)])
        self.assertEqual(system.asked, [])

    def test_other_names(self) -> None:
        """
        Any other name goes to the system resolver, with the same question.
        """
        system = FakeResolver({"imap.provider.invalid": ["203.0.113.5"]})
        resolver = ZoneResolver({"mail.example.test": ("192.0.2.1",)}, lambda: system)
        receiver = Receiver()
        resolver.resolveHostName(receiver, "imap.provider.invalid", 143,
                                 transportSemantics="UDP")
        self.assertEqual(system.asked, [("imap.provider.invalid", 143, "UDP")])
        self.assertEqual(receiver.addresses, [IPv4Address("TCP", "203.0.113.5", 143)])


class AddressesEndpointTests(SynchronousTestCase):
    """
    L{AddressesEndpoint} on a memory reactor: which addresses it connects
    to, in which order, and what it says when they fail.
    """

    def connect(self, published: dict[str, tuple[str, ...]], host: str,
                system: FakeResolver | None = None) -> tuple[
                    MemoryReactorClock, Deferred[Any], Attempts, FakeResolver]:
        system = system or FakeResolver()
        memory = memory_reactor(system)
        attempts = Attempts(host)
        endpoint = AddressesEndpoint(memory, ZoneResolver(published, lambda: system), host,
                                     993, 10.0, attempts)
        d = endpoint.connect(Factory.forProtocol(Protocol))
        return memory, d, attempts, system

    def hosts(self, memory: MemoryReactorClock) -> list[tuple[str, int]]:
        return [(host, port) for host, port, *_ in memory.tcpClients]

    def test_in_zone(self) -> None:
        """
        An in-zone name connects to its published address, without a DNS
        question; the connection is handed over.
        """
        memory, d, attempts, system = self.connect({"mail.example.test": ("127.0.0.1",)},
                                                   "mail.example.test")
        self.assertEqual(self.hosts(memory), [("127.0.0.1", 993)])
        self.assertEqual(system.asked, [])
        accept(memory, 0)
        self.assertIsInstance(self.successResultOf(d), Protocol)
        self.assertEqual(attempts.connected, "127.0.0.1")

    def test_ipv6_only(self) -> None:
        """
        A name with only an IPv6 address connects over IPv6.
        """
        memory, d, attempts, _ = self.connect({"v6.example.test": ("::1",)}, "v6.example.test")
        self.assertEqual(self.hosts(memory), [("::1", 993)])
        refuse(memory, 0)
        memory.advance(0.3)
        failure = self.failureResultOf(d, Unreachable)
        self.assertEqual(str(failure.value), "connection refused at ::1")

    def test_several_in_order(self) -> None:
        """
        Several addresses: the first at once, each next one 0.3 s after
        the one before started, whether that one is still connecting or
        failed; the first to connect wins and the other attempts are
        cancelled.
        """
        published = {"mail.example.test": ("192.0.2.1", "2001:db8::1", "192.0.2.3")}
        memory, d, attempts, _ = self.connect(published, "mail.example.test")
        self.assertEqual(self.hosts(memory), [("192.0.2.1", 993)])
        memory.advance(0.29)
        self.assertEqual(len(memory.tcpClients), 1)
        memory.advance(0.01)
        self.assertEqual(self.hosts(memory)[1], ("2001:db8::1", 993))
        refuse(memory, 1)  # the second fails: the third still waits its turn
        self.assertEqual(len(memory.tcpClients), 2)
        memory.advance(0.3)
        self.assertEqual(self.hosts(memory)[2], ("192.0.2.3", 993))
        accept(memory, 2)
        self.successResultOf(d)
        self.assertTrue(memory.connectors[0].stoppedConnecting)  # the first, cancelled
        self.assertEqual((attempts.tried, attempts.failures, attempts.connected),
                         (["192.0.2.1", "2001:db8::1", "192.0.2.3"],
                          {"2001:db8::1": "connection refused"}, "192.0.2.3"))
        memory.advance(10)
        self.assertEqual(len(memory.tcpClients), 3)

    def test_all_fail(self) -> None:
        """
        When every address fails, the error names each, grouped by reason
        in the order tried, whatever order they failed in (it is given
        when the next address would have started).
        """
        published = {"mail.example.test": ("127.0.0.1", "::1")}
        memory, d, _, _ = self.connect(published, "mail.example.test")
        memory.advance(0.3)
        refuse(memory, 1)
        self.assertNoResult(d)
        refuse(memory, 0)
        memory.advance(0.3)
        self.assertEqual(str(self.failureResultOf(d, Unreachable).value),
                         "connection refused at 127.0.0.1 and ::1")

        published = {"mail.example.test": ("192.0.2.1", "2001:db8::1", "192.0.2.3")}
        memory, d, _, _ = self.connect(published, "mail.example.test")
        refuse(memory, 0)
        memory.advance(0.3)
        refuse(memory, 1, NoRouteError())
        memory.advance(0.3)
        refuse(memory, 2, ConnectError(string="Cannot assign requested address"))
        memory.advance(0.3)
        self.assertEqual(str(self.failureResultOf(d, Unreachable).value),
                         "connection refused at 192.0.2.1; no route to host at 2001:db8::1; "
                         "cannot connect: Cannot assign requested address at 192.0.2.3")

    def test_outside(self) -> None:
        """
        A name outside the zones is the system resolver's, whose addresses
        are tried in its order, each once.
        """
        system = FakeResolver({"imap.provider.invalid": ["2001:db8::5", "203.0.113.5",
                                                         "2001:db8::5"]})
        memory, d, attempts, _ = self.connect({"mail.example.test": ("127.0.0.1",)},
                                              "imap.provider.invalid", system)
        self.assertEqual(system.asked, [("imap.provider.invalid", 993, "TCP")])
        self.assertEqual(self.hosts(memory), [("2001:db8::5", 993)])
        refuse(memory, 0)
        memory.advance(0.3)
        refuse(memory, 1)
        memory.advance(0.3)
        self.assertEqual(str(self.failureResultOf(d, Unreachable).value),
                         "connection refused at 2001:db8::5 and 203.0.113.5")
        self.assertEqual((len(memory.tcpClients), attempts.tried),
                         (2, ["2001:db8::5", "203.0.113.5"]))

    def test_no_address(self) -> None:
        """
        No address: the zone publishes none (L{NotPublished}), or the
        system resolver found none; nothing is connected.
        """
        memory, d, _, _ = self.connect({"ews.example.test": ()}, "ews.example.test")
        self.failureResultOf(d, NotPublished)
        memory, d, _, _ = self.connect({}, "nowhere.invalid")
        failure = self.failureResultOf(d, DNSLookupError)
        self.assertNotIsInstance(failure.value, NotPublished)
        self.assertEqual(memory.tcpClients, [])

    def test_ip_address(self) -> None:
        """
        An IP address is connected to as it is, without a resolver; alone,
        its failure is the bare reason.
        """
        memory, d, _, system = self.connect({}, "192.0.2.9")
        self.assertEqual((self.hosts(memory), system.asked), ([("192.0.2.9", 993)], []))
        refuse(memory, 0)
        memory.advance(0.3)
        self.assertEqual(str(self.failureResultOf(d, Unreachable).value), "connection refused")

    def test_cancel(self) -> None:
        """
        Cancelling (the probe's deadline) stops every attempt and starts no
        more, and the stopped attempts are no failure (a real reactor's
        stopConnecting fails them with a bare UserError); while resolving,
        a late answer is ignored.
        """
        memory, d, attempts, _ = self.connect(
            {"mail.example.test": ("192.0.2.1", "192.0.2.2", "192.0.2.3")},
            "mail.example.test")
        memory.advance(0.3)
        d.cancel()
        self.failureResultOf(d)
        self.assertTrue(all(c.stoppedConnecting for c in memory.connectors))
        refuse(memory, 0, UserError())
        refuse(memory, 1, UserError())
        memory.advance(5)
        self.assertEqual(len(memory.tcpClients), 2)
        self.assertEqual(attempts.failures, {})

        system = FakeResolver({"slow.invalid": ["203.0.113.1"]}, hold=True)
        memory, d, attempts, _ = self.connect({}, "slow.invalid", system)
        self.assertEqual(attempts.waiting(), "the address of slow.invalid")
        d.cancel()
        self.failureResultOf(d)
        system.complete()
        self.assertEqual(memory.tcpClients, [])

    def test_not_a_host_name(self) -> None:
        """
        A name IDNA refuses fails before any question or connection.
        """
        memory, d, _, system = self.connect({}, "-x-.example")
        self.failureResultOf(d, UnicodeError)
        self.assertEqual((memory.tcpClients, system.asked), ([], []))


class ProbeAddressTests(SynchronousTestCase):
    """
    Whole probes on a memory reactor: the verdict names the addresses.
    """

    def run_probe(self, target: Target, system: FakeResolver | None = None,
                  timeout: float = 2.0) -> tuple[MemoryReactorClock, Deferred[ProbeResult]]:
        memory = memory_reactor(system or FakeResolver())
        return memory, probe(target, memory, None, timeout)

    def test_shipped_addresses_refused(self) -> None:
        """
        mail.example.test at 127.0.0.1 and ::1 as the shipped zone says:
        "connection refused at 127.0.0.1 and ::1", not "cannot resolve",
        with no DNS question.
        """
        system = FakeResolver()
        target = Target("imap", "mail.example.test", 993, SSL_,
                        addresses=("127.0.0.1", "::1"))
        memory, d = self.run_probe(target, system)
        refuse(memory, 0)
        memory.advance(0.3)
        refuse(memory, 1)
        memory.advance(0.3)
        result = self.successResultOf(d)
        self.assertEqual((result.ok, result.error),
                         (False, "connection refused at 127.0.0.1 and ::1"))
        self.assertEqual(system.asked, [])

    def test_timeout_names_addresses(self) -> None:
        """
        A deadline while connecting names the addresses still awaited and
        why the others failed; while resolving, the name.
        """
        target = Target("smtp", "mail.example.test", 465, SSL_,
                        addresses=("192.0.2.7", "2001:db8::7"))
        memory, d = self.run_probe(target)
        memory.advance(0.3)
        refuse(memory, 1)
        memory.advance(1.7)
        memory.advance(0)
        self.assertEqual(self.successResultOf(d).error,
                         "timed out after 2 s waiting for the TCP connection to 192.0.2.7; "
                         "connection refused at 2001:db8::7")

        memory, d = self.run_probe(replace(target, host="mail.example.org", addresses=None),
                                   FakeResolver(hold=True))
        memory.advance(2)
        memory.advance(0)
        self.assertEqual(self.successResultOf(d).error,
                         "timed out after 2 s waiting for the address of mail.example.org")

        memory, d = self.run_probe(replace(target, host="192.0.2.7", addresses=None))
        memory.advance(2)
        memory.advance(0)
        self.assertEqual(self.successResultOf(d).error,
                         "timed out after 2 s waiting for the TCP connection")

    def test_no_published_address(self) -> None:
        """
        An in-zone name without an address: its zone publishes none.
        """
        memory, d = self.run_probe(Target("https", "ews.example.test", 443, SSL_,
                                          url="https://ews.example.test/EWS/Exchange.asmx",
                                          addresses=()))
        memory.advance(0)
        self.assertEqual(self.successResultOf(d).error,
                         "cannot resolve ews.example.test: its served zone publishes no "
                         "address for it")
        self.assertEqual(memory.tcpClients, [])

    def test_outside_resolved_by_system(self) -> None:
        """
        A host outside the zones: the system resolver is asked; an unknown
        name cannot be resolved.
        """
        system = FakeResolver()
        memory, d = self.run_probe(Target("pop3", "pop.outside.invalid", 995, SSL_), system)
        memory.advance(0)
        self.assertEqual(self.successResultOf(d).error, "cannot resolve pop.outside.invalid")
        self.assertEqual(system.asked, [("pop.outside.invalid", 995, "TCP")])

    def test_sip_udp_in_zone(self) -> None:
        """
        SIP over UDP sends to the zone's first address, without a resolver
        (the L{DatagramClock} has none), and a timeout says where it sent.
        """
        silent = SIPDatagrams(answer=False)
        clock = DatagramClock(silent)
        connected: list[tuple[str, int]] = []
        original = clock.listenUDP

        def listen(*args: Any, **kwargs: Any) -> Any:
            wire = original(*args, **kwargs)
            wire.connect = lambda host, port: connected.append((host, port))
            return wire
        clock.listenUDP = listen  # type: ignore[method-assign]
        d = probe(Target("sip", "mail.example.test", 5060, NONE, transport="udp",
                         addresses=("::1", "127.0.0.1")), clock, None, 1)
        clock.pump([0.5, 0.5, 0])
        self.assertEqual(connected, [("::1", 5060)])
        self.assertEqual(self.successResultOf(d).error,
                         "timed out after 1 s waiting for the OPTIONS reply from ::1")


def _recording_sni(options: Any) -> list[bytes | None]:
    """
    Make the server C{options} record the SNI name of every handshake.
    """
    names: list[bytes | None] = []
    options.getContext().set_tlsext_servername_callback(
        lambda connection: names.append(connection.get_servername()))
    return names


class TLSNameTests(TestCase):
    """
    Real probes on loopback of names the zone publishes at 127.0.0.1: TLS
    is verified against the name, never the address, and the system
    resolver is never asked.
    """

    def setUp(self) -> None:
        certificate, key = _development()  # covers mail.example.test
        self.trust = trustRootFromCertificates(
            [Certificate.loadPEM(certificate.public_bytes(serialization.Encoding.PEM))])
        self.options = _options(certificate, key)
        self.sni = _recording_sni(self.options)
        self.system = FakeResolver()
        self.reactor = ResolvingReactor(self.system)

    def serve(self, factory: Factory, implicit: bool) -> int:
        factory.tls = self.options
        factory.implicit = implicit
        factory.offer_starttls = True
        factory.upgraded = 0
        factory.lines = []
        inner = TLSMemoryBIOFactory(self.options, False, factory) if implicit else factory
        port = reactor.listenTCP(0, Tracking(inner), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @inlineCallbacks
    def test_name_verified(self) -> Any:
        """
        Implicit TLS, STARTTLS and HTTPS to mail.example.test at 127.0.0.1:
        the probe works, sent SNI mail.example.test, asked no resolver.
        """
        for security in (SSL_, STARTTLS):
            port = self.serve(Factory.forProtocol(IMAP), security is SSL_)
            result = yield probe(Target("imap", "mail.example.test", port, security,
                                        addresses=("127.0.0.1",)), self.reactor, self.trust, 5)
            self.assertTrue(result.ok, result.error)
        port = self.serve(_site(), True)
        result = yield probe(Target("https", "mail.example.test", port, SSL_,
                                    url=f"https://mail.example.test:{port}/ok",
                                    addresses=("127.0.0.1",)), self.reactor, self.trust, 5)
        self.assertTrue(result.ok, result.error)
        self.assertEqual(self.sni, [b"mail.example.test"] * 3)
        self.assertEqual(self.system.asked, [])

    @inlineCallbacks
    def test_wrong_name(self) -> Any:
        """
        The same server and address under a name its certificate does not
        cover fails verification for that name: the address proves nothing.
        """
        port = self.serve(Factory.forProtocol(IMAP), True)
        result = yield probe(Target("imap", "other.example.test", port, SSL_,
                                    addresses=("127.0.0.1",)), self.reactor, self.trust, 5)
        self.assertEqual((result.ok, result.error),
                         (False, "certificate does not match other.example.test"))
        self.assertEqual(self.sni, [b"other.example.test"])

    @inlineCallbacks
    def test_refused_at_published_address(self) -> Any:
        """
        A closed port at the published addresses: refused at each, in order.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        result = yield probe(Target("smtp", "mail.example.test", number, SSL_,
                                    addresses=("127.0.0.1", "127.0.0.2")),
                             self.reactor, self.trust, 5)
        self.assertEqual(result.error, "connection refused at 127.0.0.1 and 127.0.0.2")
        self.assertLess(result.latency, 1)


class ProbesOffConfigTests(SynchronousTestCase):
    """
    [health] probes: yes by default, a boolean in the config's style,
    hostile values refused with file, section and key.
    """

    def problems(self, health: str) -> list[tuple[str | None, str | None, str]]:
        error = self.assertRaises(ConfigError, load_ini, self.mktemp(), health)
        return [(p.section, p.key, p.message) for p in error.problems]

    def test_values(self) -> None:
        """
        yes/no and their synonyms in any case; an empty value is the
        default; interval = 0 keeps its meaning (probes on).
        """
        self.assertTrue(load_ini(self.mktemp()).health.probes)
        self.assertTrue(shipped(self.mktemp()).health.probes)
        for value, expected in (("no", False), ("off", False), ("False", False), ("0", False),
                                ("NO", False), ("yes", True), ("on", True), ("1", True),
                                ("", True)):
            self.assertEqual(load_ini(self.mktemp(), f"probes = {value}\n").health.probes,
                             expected, value)
        model = load_ini(self.mktemp(), "interval = 0\n")
        self.assertEqual((model.health.interval, model.health.probes), (0.0, True))

    def test_hostile(self) -> None:
        """
        Anything else is a problem of [health] probes, alone.
        """
        for value in ("maybe", "no please", "2", "-1", "nein", "y", "off;", "n\u00f8",
                      "yes\\nno", "x" * 5000):
            problems = self.problems(f"probes = {value}\n")
            self.assertEqual([(s, k) for s, k, _ in problems], [("health", "probes")],
                             (value, problems))
            self.assertIn("is not yes or no", problems[0][2])

    def test_other_keys_still_checked(self) -> None:
        """
        probes = no does not excuse the other keys.
        """
        problems = self.problems("probes = no\ninterval = -1\n")
        self.assertEqual([(s, k) for s, k, _ in problems], [("health", "interval")])


class ProbesOffMonitorTests(SynchronousTestCase):
    """
    The monitor with probes = no: no round, no question, no connection.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        self.changes = 0

    def monitor(self, health: str, clock: Any, **kwargs: Any) -> HealthMonitor:
        self.model = load_ini(self.directory, health)
        monitor = HealthMonitor(lambda: self.model, clock, **kwargs)
        monitor.on_change(self.changed)
        monitor.startService()
        self.addCleanup(monitor.stopService)
        return monitor

    def changed(self) -> None:
        self.changes += 1

    def test_real_probes_never_start(self) -> None:
        """
        With the real probe on a memory reactor: nothing is resolved,
        connected or listened on, at start or for days, whatever the
        interval (0 included); a direct round does nothing either.
        """
        for interval in ("60", "0"):
            system = FakeResolver({"pop.outside.invalid": ["203.0.113.5"]})
            memory = memory_reactor(system)
            monitor = self.monitor(f"probes = no\ninterval = {interval}\n", memory)
            memory.advance(0)
            for _ in range(100):
                memory.advance(3600)
            self.successResultOf(monitor.check_all())
            monitor.reloaded(None)
            memory.advance(60)
            self.assertEqual((system.asked, memory.tcpClients), ([], []))
            self.assertEqual((monitor.rounds, monitor.statuses, monitor.down),
                             (0, {}, frozenset()))
            self.assertEqual(memory.getDelayedCalls(), [])

    def test_log(self) -> None:
        """
        The log says probing is off, once.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        monitor = self.monitor("probes = no\n", Clock(), run_probe=FakeProbe(Clock()))
        monitor.reloaded(None)
        texts = [e.get("log_format", "") for e in events]
        self.assertEqual(len([t for t in texts if "health probes are off" in t]), 1, texts)

    def test_switched_by_reload(self) -> None:
        """
        A reload to probes = no forgets what was found, so an endpoint
        left out comes back and nothing is unavailable; probes stop. A
        reload to yes probes at once.
        """
        clock = Clock()
        fake = FakeProbe(clock)
        monitor = self.monitor("interval = 60\ngrace = 0\nadvertise_unhealthy = no\n", clock,
                               run_probe=fake)
        refused = ProbeResult(False, 0.001, "connection refused at 192.0.2.10", None)
        fake.results.update({"imap://mail.example.test:993": refused,
                             "imap://v6.example.test:993": refused})
        clock.advance(0)
        clock.advance(60)
        clock.advance(0)
        self.assertTrue(monitor.down)
        self.assertEqual(monitor.unavailable(self.model),
                         ["example.test imap", "example.org imap"])
        calls = len(fake.calls)

        self.model = replace(self.model, health=replace(self.model.health, probes=False))
        monitor.reloaded(None)
        self.assertEqual((monitor.down, monitor.statuses), (frozenset(), {}))
        self.assertEqual(monitor.unavailable(self.model), [])
        self.assertEqual(self.changes, 2)
        rounds = monitor.rounds
        clock.advance(600)
        self.assertEqual((len(fake.calls), monitor.rounds), (calls, rounds))

        self.model = replace(self.model, health=replace(self.model.health, probes=True))
        monitor.reloaded(None)
        self.assertGreater(len(fake.calls), calls)

    def test_switched_off_during_a_round(self) -> None:
        """
        A round still running when probing is switched off records nothing
        and starts no other round.
        """
        clock = Clock()
        fake = FakeProbe(clock)
        fake.hold()
        monitor = self.monitor("interval = 60\n", clock, run_probe=fake)
        self.assertTrue(fake.held)
        self.model = replace(self.model, health=replace(self.model.health, probes=False))
        monitor.reloaded(None)
        fake.release()
        clock.advance(600)
        self.assertEqual((monitor.statuses, monitor.rounds), ({}, 0))
        self.assertEqual(fake.held, [])
