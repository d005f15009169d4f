"""
L{smartdiscover.client.steps}: the order of the candidates and the stages
of one https attempt (DNS, TCP, TLS, the challenge, the authenticated POST,
the answer), over an in-memory zone, a stand-in prober and web, on a Clock.
"""

from __future__ import annotations

import base64

from twisted.names import dns, error
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.urls import Ports
from smartdiscover.config.model import Security
from smartdiscover.discovery.outlook import RESPONSE_2006
from smartdiscover.discovery.request import parse_request
from tests.unit.test_client_fakes import (
    ADDRESS,
    EWS,
    PASSWORD,
    STEP1,
    STEP2,
    STEP4,
    World,
    a,
    answer_with,
    document,
    reply,
    service,
    settings,
)

HOSTS = a("autodiscover.example.test", "example.test")
SRV = "_autodiscover._tcp.example.test"


class CandidateTests(SynchronousTestCase):
    """
    The candidates come in MS-OXDISCO's order, and the first useful one
    ends the walk.
    """

    def test_nothing_published(self) -> None:
        """
        With no DNS at all, each step fails at its first stage, in order,
        and nothing is connected to.
        """
        world = World()
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertEqual(world.names(), [
            "1 autodiscover.example.test DNS", "2 example.test DNS", "3 example.test MX",
            "4 autodiscover.example.test DNS", f"5 {SRV} SRV"])
        self.assertFalse(any(check.ok for check in world.report.checks))
        self.assertEqual((world.prober.calls, world.web.calls), ([], []))

    def test_order_of_urls(self) -> None:
        """
        autodiscover.<domain>, <domain>, the MX hosts by preference, the
        plain-HTTP probe, then the SRV targets by priority and weight, on
        their ports.
        """
        records = {**HOSTS, **a("mx1.example.test", "mx2.example.test", "srv1.example.test",
                                 "srv2.example.test"),
                   ("example.test", dns.MX): [dns.Record_MX(20, b"mx2.example.test"),
                                              dns.Record_MX(10, b"mx1.example.test")],
                   (SRV, dns.SRV): [dns.Record_SRV(0, 1, 443, b"srv2.example.test"),
                                    dns.Record_SRV(0, 9, 8443, b"srv1.example.test")]}
        world = World(records)
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertEqual(world.web.urls(), [
            STEP1, STEP2, "https://mx1.example.test/autodiscover/autodiscover.xml",
            "https://mx2.example.test/autodiscover/autodiscover.xml", STEP4,
            "https://srv1.example.test:8443/autodiscover/autodiscover.xml",
            "https://srv2.example.test/autodiscover/autodiscover.xml"])
        self.assertEqual(world.check("3 example.test MX").detail,
                         "10 mx1.example.test, 20 mx2.example.test")
        self.assertIn("exchangelib uses only records with port 443",
                      world.check(f"5 {SRV} SRV").detail)
        self.assertEqual(world.web.urls(authorized=True), [])

    def test_first_success_ends_the_walk(self) -> None:
        """
        Settings from step 2 end the walk: no MX, SRV or HTTP step follows.
        """
        world = World(a("example.test"), {STEP2: service(settings(EWS))})
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual((found.url, found.address, found.answer.kind),
                         (STEP2, ADDRESS, "settings"))
        self.assertEqual(world.names()[-1], "2 example.test answer")
        self.assertEqual(world.web.urls(), [STEP2, STEP2])
        self.assertFalse({dns.MX, dns.SRV} & {kind for _, kind in world.zone.asked})

    def test_walk_all(self) -> None:
        """
        With --all every candidate is tried; the first success is the one
        used.
        """
        world = World(HOSTS, {STEP1: service(settings(EWS)), STEP2: service(settings(EWS))},
                      walk_all=True)
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual(found.url, STEP1)
        self.assertEqual(world.web.urls(authorized=True), [STEP1, STEP2])
        self.assertIn(f"5 {SRV} SRV", world.names())

    def test_null_mx_is_no_candidate(self) -> None:
        """
        A null MX (RFC 7505) is reported as no MX, and no host "" is tried.
        """
        world = World({("example.test", dns.MX): [dns.Record_MX(0, b"")]})
        self.successResultOf(world.start())
        check = world.check("3 example.test MX")
        self.assertFalse(check.ok)
        self.assertIn("null MX", check.detail)
        self.assertFalse([n for n in world.names() if n.startswith("3 ") and "MX" not in n])

    def test_srv_problems(self) -> None:
        """
        An SRV record with target "." is no candidate; a failed lookup is
        not mistaken for a missing record.
        """
        world = World({(SRV, dns.SRV): [dns.Record_SRV(0, 0, 0, b".")]})
        self.successResultOf(world.start())
        self.assertIn("no usable SRV record (target .)", world.check(f"5 {SRV} SRV").detail)
        refused = World(dns_failures={(SRV, dns.SRV): error.DNSQueryRefusedError(SRV)})
        self.successResultOf(refused.start())
        check = refused.check(f"5 {SRV} SRV")
        self.assertEqual(check.detail, f"cannot look up {SRV}: REFUSED")
        self.assertIn("--resolver", check.fix)

    def test_odd_targets_are_no_candidates(self) -> None:
        """
        MX and SRV targets that are not host names (with ":", brackets,
        "/", "@", "?" or octets that are not ASCII) are failed candidates,
        never a URL to another host and never an exception.
        """
        for target in (b"x:y", b"[x]", b"a/b.example.test", b"a@b.example.test",
                       b"a?b.example.test", b"m\xe4il.example.test", b"a b.example.test"):
            world = World({**a("a", "b.example.test"),
                           ("example.test", dns.MX): [dns.Record_MX(1, target)],
                           (SRV, dns.SRV): [dns.Record_SRV(0, 0, 443, target)]})
            self.assertIsNone(self.successResultOf(world.start()), target)
            odd = [c for c in world.report.checks if c.name[0] in "35"
                   and not c.name.endswith((" MX", " SRV"))]
            self.assertEqual([(c.name[0], c.ok) for c in odd], [("3", False), ("5", False)],
                             target)
            for check in odd:
                self.assertIn("is not a host name", check.detail)
            self.assertEqual((world.prober.calls, world.web.calls), ([], []), target)


class StageTests(SynchronousTestCase):
    """
    The stages of one https candidate.
    """

    def test_every_stage_passes(self) -> None:
        """
        DNS, TCP, TLS (with the expiry), the challenge, the authenticated
        POST and the answer pass; the first POST has no credentials, the
        second Basic ones, both a request for the address.
        """
        world = World(HOSTS, {STEP1: service(settings(EWS))})
        self.assertIsNotNone(self.successResultOf(world.start()))
        label = "1 autodiscover.example.test"
        self.assertEqual(world.names(), [f"{label} {stage}" for stage in
                                         ("DNS", "TCP", "TLS", "HTTP", "auth", "answer")])
        self.assertTrue(world.report.ok)
        self.assertIn("expires 2031-05-17", world.check(f"{label} TLS").detail)
        self.assertIn('Basic realm="mail"', world.check(f"{label} HTTP").detail)
        first, second = world.web.calls
        self.assertIsNone(first.authorization)
        self.assertEqual(second.authorization, b"Basic " + base64.b64encode(
            f"{ADDRESS}:{PASSWORD}".encode()))
        for call in world.web.calls:
            self.assertEqual(call.method, b"POST")
            self.assertEqual(parse_request(call.body or b"").email_address, ADDRESS)
        self.assertEqual([(t.port, t.security) for t in world.prober.calls],
                         [(443, Security.NONE), (443, Security.SSL)])

    def test_configured_port(self) -> None:
        """
        With another https port, the candidates are reached on it.
        """
        world = World(HOSTS, {"https://autodiscover.example.test:8443/autodiscover/"
                              "autodiscover.xml": service(settings(EWS))},
                      ports=Ports(https=8443))
        self.assertIsNotNone(self.successResultOf(world.start()))
        self.assertEqual({t.port for t in world.prober.calls}, {8443})
        self.assertEqual(world.names()[0], "1 autodiscover.example.test:8443 DNS")

    def test_dns_failures(self) -> None:
        """
        A missing name says to publish it; a failing server says so.
        """
        world = World(dns_failures={("autodiscover.example.test", dns.A):
                                    error.DNSServerError("x")})
        self.successResultOf(world.start())
        self.assertIn("SERVFAIL", world.check("1 autodiscover.example.test DNS").detail)
        check = world.check("2 example.test DNS")
        self.assertIn("no A record", check.detail)
        self.assertIn("publish an A (and AAAA) record for example.test", check.fix)

    def test_silent_dns_server(self) -> None:
        """
        A lookup that is never answered holds the walk until its limit.
        """
        world = World()
        world.zone.silent.add(("autodiscover.example.test", dns.A))
        d = world.start()
        world.clock.advance(5.9)
        self.assertNoResult(d)
        world.clock.advance(0.2)
        self.assertIsNone(self.successResultOf(d))
        self.assertIn("no answer within 5 s",
                      world.check("1 autodiscover.example.test DNS").detail)

    def test_tcp_and_tls_failures(self) -> None:
        """
        A refused port stops the candidate before TLS; a certificate for
        another name stops it before HTTP; each with its explanation.
        """
        world = World(HOSTS, probe_failures={
            ("autodiscover.example.test", 443): "connection refused",
            ("example.test", 443, Security.SSL): "certificate does not match example.test"})
        self.successResultOf(world.start())
        tcp = world.check("1 autodiscover.example.test TCP")
        self.assertEqual(tcp.detail, "autodiscover.example.test:443: connection refused")
        self.assertNotIn("1 autodiscover.example.test TLS", world.names())
        tls = world.check("2 example.test TLS")
        self.assertEqual(tls.detail, "certificate does not cover example.test")
        self.assertNotIn(STEP1, world.web.urls())
        self.assertNotIn(STEP2, world.web.urls())

    def test_http_answers_without_credentials(self) -> None:
        """
        No answer, a 404, a 401 without challenge and one without Basic
        each stop the candidate before credentials are sent.
        """
        world = World(HOSTS, {STEP1: answer_with(reply(404)),
                              STEP2: answer_with(reply(401))}, walk_all=True)
        self.successResultOf(world.start())
        self.assertIn("HTTP 404", world.check("1 autodiscover.example.test HTTP").detail)
        self.assertIn("without WWW-Authenticate", world.check("2 example.test HTTP").detail)
        negotiate = World(HOSTS, {STEP1: service(settings(EWS), challenge="Negotiate")})
        self.successResultOf(negotiate.start())
        self.assertIn("no Basic challenge",
                      negotiate.check("1 autodiscover.example.test auth").detail)
        self.assertEqual(world.web.urls(authorized=True) + negotiate.web.urls(True), [])
        silent = World(HOSTS)
        self.successResultOf(silent.start())
        self.assertEqual(silent.check("1 autodiscover.example.test HTTP").detail,
                         f"POST {STEP1}: connection refused")

    def test_answer_without_credentials(self) -> None:
        """
        A server that answers the unauthenticated POST fails the check for
        it, and its answer is still used.
        """
        world = World(HOSTS, {STEP1: answer_with(reply(200, settings(EWS)))})
        self.assertIsNotNone(self.successResultOf(world.start()))
        self.assertIn("without credentials (200)",
                      world.check("1 autodiscover.example.test HTTP").detail)
        self.assertTrue(world.check("1 autodiscover.example.test answer").ok)

    def test_credentials_refused_or_failing(self) -> None:
        """
        A 401 to the credentials says they were refused; a 500 points at
        the server's logs.
        """
        def refusing(code: int) -> World:
            world = World(HOSTS, {STEP1: lambda call: reply(
                code if call.authorization else 401, WWW_Authenticate="Basic")})
            self.successResultOf(world.start())
            return world
        refused = refusing(401).check("1 autodiscover.example.test auth")
        self.assertIn("(credentials refused)", refused.detail)
        self.assertIn("password", refused.fix)
        failing = refusing(500).check("1 autodiscover.example.test auth")
        self.assertNotIn("refused", failing.detail)
        self.assertIn("logs of the web server on autodiscover.example.test", failing.fix)

    def test_bad_answers(self) -> None:
        """
        An Error answer and a body that is no answer are failed answers;
        an answer's problems are failures beside a passed answer.
        """
        error_answer = document("<Error><ErrorCode>500</ErrorCode></Error>",
                                response_namespace=RESPONSE_2006)
        world = World(HOSTS, {STEP1: service(error_answer), STEP2: service(b"<html/>")},
                      walk_all=True)
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn("Error 500", world.check("1 autodiscover.example.test answer").detail)
        self.assertIn("not Autodiscover", world.check("2 example.test answer").detail)
        bare = World(HOSTS, {STEP1: service(settings(EWS).split(b"\n", 1)[1])})
        self.assertIsNotNone(self.successResultOf(bare.start()))
        self.assertEqual([c.ok for c in bare.report.checks if c.name.endswith("answer")],
                         [False, True])


class CredentialTests(SynchronousTestCase):
    """
    Credentials go only to hosts within the user's domain, unless allowed.
    """

    def foreign_mx(self, allow_cross_domain: bool = False) -> World:
        records = {**a("mx.provider.test"),
                   ("example.test", dns.MX): [dns.Record_MX(10, b"mx.provider.test")]}
        url = "https://mx.provider.test/autodiscover/autodiscover.xml"
        world = World(records, {url: service(settings(EWS))},
                      allow_cross_domain=allow_cross_domain)
        self.successResultOf(world.start())
        return world

    def test_not_sent_outside_the_domain(self) -> None:
        """
        An MX host of another domain is challenged but gets no credentials.
        """
        world = self.foreign_mx()
        check = world.check("3 mx.provider.test auth")
        self.assertIn("refused to send credentials to mx.provider.test", check.detail)
        self.assertIn("--allow-cross-domain", check.fix)
        self.assertEqual(world.web.urls(authorized=True), [])

    def test_sent_when_allowed(self) -> None:
        """
        With --allow-cross-domain the same host gets them and answers.
        """
        world = self.foreign_mx(allow_cross_domain=True)
        self.assertTrue(world.check("3 mx.provider.test answer").ok)
        self.assertEqual(len(world.web.urls(authorized=True)), 1)
