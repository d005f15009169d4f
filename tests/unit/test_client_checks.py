"""
L{smartdiscover.client.checks}: the endpoints an answer advertises, probed
with a stand-in for the health probe, and the domain's SRV records held
against the answer over an in-memory zone.
"""

from __future__ import annotations

from typing import Any, Mapping

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.names import dns, error
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.answer import Protocol
from smartdiscover.client.checks import (
    Endpoint,
    check_endpoints,
    security,
    socket_endpoint,
    srv_endpoints,
    url_endpoints,
)
from smartdiscover.client.report import Report
from smartdiscover.client.resolve import DNS
from smartdiscover.client.urls import Ports
from smartdiscover.config.model import Security
from smartdiscover.health.probes import Target
from tests.unit.test_client_fakes import Prober, Zone

DOMAIN = "example.test"
SSL, STARTTLS, NONE = Security.SSL, Security.STARTTLS, Security.NONE


class SecurityTests(SynchronousTestCase):
    """
    L{security} reads POX SSL and Encryption the way clients do.
    """

    def test_encryption_wins(self) -> None:
        """
        Encryption decides whatever SSL says; an unknown value means TLS.
        """
        for encryption, expected in (("SSL", SSL), ("TLS", STARTTLS), ("Auto", STARTTLS),
                                     ("None", NONE), ("quantum", SSL)):
            self.assertIs(security(Protocol("IMAP", "m", ssl="off", encryption=encryption)),
                          expected, encryption)

    def test_ssl_defaults_on(self) -> None:
        """
        Without Encryption, only SSL "off" (any case) is plain.
        """
        self.assertIs(security(Protocol("IMAP", "m")), SSL)
        self.assertIs(security(Protocol("IMAP", "m", ssl="OFF")), NONE)
        self.assertIs(security(Protocol("IMAP", "m", ssl="on")), SSL)


class SocketEndpointTests(SynchronousTestCase):
    """
    L{socket_endpoint}: what to probe for a socket service.
    """

    def test_default_ports_by_security(self) -> None:
        """
        Without Port, each protocol gets its port for implicit TLS or for
        STARTTLS and plain.
        """
        for kind, encryption, port in (("IMAP", "ssl", 993), ("IMAP", "tls", 143),
                                       ("POP3", "ssl", 995), ("POP3", "none", 110),
                                       ("SMTP", "ssl", 465), ("SMTP", "tls", 587),
                                       ("XMPP", "ssl", 5223), ("XMPP", "tls", 5222)):
            endpoint = socket_endpoint(Protocol(kind, "mail.example.test",
                                                encryption=encryption), DOMAIN)
            assert endpoint is not None
            self.assertEqual((endpoint.target.protocol, endpoint.target.port),
                             (kind.lower(), port))
            self.assertEqual(endpoint.target.domain, DOMAIN)

    def test_named_port_and_name(self) -> None:
        """
        The advertised port is used, and the check names type, host, port
        and security, an IPv6 host bracketed.
        """
        endpoint = socket_endpoint(Protocol("SMTP", "2001:db8::25", 2525, encryption="tls"),
                                   DOMAIN)
        self.assertEqual(endpoint, Endpoint(
            "endpoint SMTP [2001:db8::25]:2525 (STARTTLS)",
            Target("smtp", "2001:db8::25", 2525, STARTTLS, domain=DOMAIN), "POX"))

    def test_sip_security_is_its_transport(self) -> None:
        """
        SIP over TLS is probed over the TLS transport on 5061; anything
        else is plain TCP on 5060 (SIP has no STARTTLS).
        """
        tls = socket_endpoint(Protocol("SIP", "sip.example.test"), DOMAIN)
        plain = socket_endpoint(Protocol("SIP", "sip.example.test", encryption="tls"), DOMAIN)
        assert tls is not None and plain is not None
        self.assertEqual((tls.target.transport, tls.target.security, tls.target.port),
                         ("tls", SSL, 5061))
        self.assertEqual((plain.target.transport, plain.target.security, plain.target.port),
                         ("tcp", NONE, 5060))

    def test_not_socket_services(self) -> None:
        """
        URL-only protocols and types the probe cannot speak are skipped.
        """
        self.assertIsNone(socket_endpoint(Protocol("EXPR", urls=(("EwsUrl", "https://x"),)),
                                          DOMAIN))
        self.assertIsNone(socket_endpoint(Protocol("EXCH", "mail.example.test", 443), DOMAIN))


class URLEndpointTests(SynchronousTestCase):
    """
    L{url_endpoints}: the https URLs to probe; others are failures.
    """

    def test_https_urls_on_the_configured_port(self) -> None:
        """
        An https URL without port is probed on the https port given.
        """
        report = Report()
        protocol = Protocol("EXPR", urls=(("EwsUrl", "https://mail.example.test/EWS"),))
        [endpoint] = url_endpoints(protocol, Ports(https=8443), report)
        self.assertEqual(endpoint.target, Target("https", "mail.example.test", 8443, SSL,
                                                 url="https://mail.example.test:8443/EWS"))
        self.assertEqual(endpoint.name, "endpoint EXPR EwsUrl https://mail.example.test/EWS")
        self.assertEqual(report.checks, [])

    def test_plain_http_is_a_failure(self) -> None:
        """
        An http:// URL is a failed check and not probed.
        """
        report = Report()
        protocol = Protocol("WEB", urls=(("OWAUrl", "http://mail.example.test/owa"),))
        self.assertEqual(url_endpoints(protocol, Ports(), report), [])
        [check] = report.checks
        self.assertFalse(check.ok)
        self.assertIn("plain HTTP", check.detail)

    def test_unusable_urls_are_failures(self) -> None:
        """
        A URL with a port out of range or not a number, a broken IPv6
        literal or no host is a failed check, not an exception; the good
        URLs beside it are still probed.
        """
        report = Report()
        bad = ("https://mail.example.test:99999/EWS", "https://mail.example.test:x/EWS",
               "https://[2001:db8::1/EWS", "https:///EWS")
        protocol = Protocol("EXPR", urls=(*(("EwsUrl", url) for url in bad),
                                          ("OABUrl", "https://mail.example.test/OAB")))
        endpoints = url_endpoints(protocol, Ports(), report)
        self.assertEqual([e.target.url for e in endpoints], ["https://mail.example.test/OAB"])
        self.assertEqual([(c.ok, c.name.split()[-1]) for c in report.checks],
                         [(False, url) for url in bad])
        for check in report.checks:
            self.assertIn("not a usable URL", check.detail)


class CheckEndpointsTests(SynchronousTestCase):
    """
    L{check_endpoints} probes each endpoint once and reports it.
    """

    def test_passed_failed_and_seen(self) -> None:
        """
        A passing probe reports its detail and latency, a failing one the
        explained error; targets already seen are not probed again; an
        endpoint from SRV says so.
        """
        imap = Target("imap", "mail.example.test", 993, SSL)
        smtp = Target("smtp", "mail.example.test", 587, STARTTLS)
        endpoints = [Endpoint("endpoint IMAP", imap, "POX"),
                     Endpoint("endpoint SMTP", smtp, "SRV _submission._tcp"),
                     Endpoint("endpoint IMAP again", imap, "SRV _imaps._tcp")]
        prober = Prober({("mail.example.test", 587): "connection refused"}, latency=0.0234)
        report = Report()
        seen: set[Target] = set()
        d = Deferred.fromCoroutine(check_endpoints(endpoints, report, None, None, 5.0, seen,
                                                   prober=prober))
        self.successResultOf(d)
        self.assertEqual(prober.calls, [imap, smtp])
        self.assertEqual(seen, {imap, smtp})
        first, second = report.checks
        self.assertEqual((first.name, first.ok, first.detail),
                         ("endpoint IMAP", True, "greeting in 23 ms"))
        self.assertEqual((second.name, second.ok),
                         ("endpoint SMTP (from SRV _submission._tcp)", False))
        self.assertIn("mail.example.test:587: connection refused", second.detail)
        self.assertIn("start the service", second.fix)


def imap(host: str = "mail.example.test", port: int | None = None) -> Protocol:
    return Protocol("IMAP", host, port, encryption="ssl")


class SRVEndpointTests(SynchronousTestCase):
    """
    L{srv_endpoints} holds every mail and XMPP SRV owner against the answer.
    """

    def compare(self, protocols: tuple[Protocol, ...],
                records: dict[tuple[str, int], list[Any]] | None = None,
                failures: Mapping[tuple[str, int], Exception] | None = None,
                ) -> tuple[Report, list[Endpoint], Zone]:
        zone = Zone(records or {}, failures)
        report = Report()
        d = Deferred.fromCoroutine(srv_endpoints(protocols, DOMAIN, DNS(zone, Clock(), 5.0),
                                                 report))
        return report, self.successResultOf(d), zone

    def test_every_owner_is_asked(self) -> None:
        """
        Both labels of IMAP, POP3, SMTP and XMPP are looked up; where
        neither side offers a service there is no check.
        """
        report, extra, zone = self.compare(())
        self.assertEqual(len(zone.asked), 8)
        self.assertIn(("_submissions._tcp.example.test", dns.SRV), zone.asked)
        self.assertEqual((report.checks, extra), ([], []))

    def test_matching_record(self) -> None:
        """
        An SRV record naming the advertised host and port passes, in any
        case and with the trailing dot; it adds nothing to probe.
        """
        records = {("_imaps._tcp.example.test", dns.SRV):
                   [dns.Record_SRV(0, 1, 993, b"MAIL.example.test.")]}
        report, extra, _ = self.compare((imap("mail.example.test."),), records)
        [check] = report.checks
        self.assertEqual((check.name, check.ok), ("SRV _imaps._tcp.example.test", True))
        self.assertEqual(extra, [])

    def test_missing_record(self) -> None:
        """
        An advertised service without SRV record fails with the record to
        publish.
        """
        report, _, _ = self.compare((imap(),))
        [check] = report.checks
        self.assertFalse(check.ok)
        self.assertIn("NXDOMAIN", check.detail)
        self.assertIn("publish _imaps._tcp.example.test SRV 0 1 993 mail.example.test.",
                      check.fix)

    def test_record_says_not_offered(self) -> None:
        """
        Target "." against an advertised service says it is not offered.
        """
        records = {("_imaps._tcp.example.test", dns.SRV): [dns.Record_SRV(0, 0, 0, b".")]}
        report, extra, _ = self.compare((imap(),), records)
        [check] = report.checks
        self.assertIn("says IMAP is not offered", check.detail)
        self.assertEqual(extra, [])

    def test_disagreements(self) -> None:
        """
        Another port on the same host, another host, and an extra host
        are each named; the records that differ are probed as well.
        """
        records = {("_imaps._tcp.example.test", dns.SRV):
                   [dns.Record_SRV(0, 1, 9993, b"mail.example.test"),
                    dns.Record_SRV(1, 1, 993, b"other.example.test")]}
        report, extra, _ = self.compare((imap(), imap("imap2.example.test")), records)
        [check] = report.checks
        self.assertFalse(check.ok)
        self.assertIn("says port 9993 but the autodiscover answer says 993", check.detail)
        self.assertIn("points at mail.example.test:9993 but the autodiscover answer says "
                      "imap2.example.test:993", check.detail)
        self.assertIn("also offers other.example.test:993", check.detail)
        self.assertEqual([(e.target.host, e.target.port, e.target.security, e.source)
                          for e in extra],
                         [("mail.example.test", 9993, SSL, "SRV _imaps._tcp"),
                          ("other.example.test", 993, SSL, "SRV _imaps._tcp")])

    def test_record_without_advertised_service(self) -> None:
        """
        A service only DNS offers fails, and is probed with the security
        of its label.
        """
        records = {("_submission._tcp.example.test", dns.SRV):
                   [dns.Record_SRV(0, 1, 587, b"smtp.example.test")]}
        report, extra, _ = self.compare((), records)
        [check] = report.checks
        self.assertIn("offers smtp.example.test:587 but the autodiscover answer has no such "
                      "SMTP", check.detail)
        self.assertEqual([(e.name, e.target) for e in extra], [
            ("endpoint SMTP smtp.example.test:587 (STARTTLS)",
             Target("smtp", "smtp.example.test", 587, STARTTLS, domain=DOMAIN))])

    def test_lookup_failure(self) -> None:
        """
        An owner whose lookup fails is reported as such, not compared.
        """
        failures = {("_imaps._tcp.example.test", dns.SRV): error.DNSServerError("x")}
        report, extra, _ = self.compare((imap(),), failures=failures)
        [check] = report.checks
        self.assertEqual(check.detail, "cannot look up _imaps._tcp.example.test: SERVFAIL")
        self.assertEqual(extra, [])

    def test_starttls_service_uses_the_plain_label(self) -> None:
        """
        An IMAP service with STARTTLS is held against _imap._tcp, not
        _imaps._tcp.
        """
        records = {("_imap._tcp.example.test", dns.SRV):
                   [dns.Record_SRV(0, 1, 143, b"mail.example.test")]}
        report, _, _ = self.compare((Protocol("IMAP", "mail.example.test",
                                              encryption="tls"),), records)
        self.assertEqual([(c.name, c.ok) for c in report.checks],
                         [("SRV _imap._tcp.example.test", True)])
