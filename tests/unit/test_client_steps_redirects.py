"""
L{smartdiscover.client.steps}: redirects the way MS-OXDSCLI allows them
(HTTP 30x, redirectUrl, redirectAddr), the plain-HTTP probe of step 4, and
the guards against loops, endless chains, plain HTTP and hostile Locations.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.http import Reply
from smartdiscover.client.steps import MAX_HOPS
from smartdiscover.client.urls import Ports
from smartdiscover.config.model import Security
from smartdiscover.discovery.request import parse_request
from tests.unit.test_client_fakes import (
    ADDRESS,
    EWS,
    STEP1,
    STEP4,
    Call,
    Handler,
    World,
    a,
    answer_with,
    document,
    redirect,
    redirect_addr,
    reply,
    service,
    settings,
)

MAIL = "https://mail.example.test/autodiscover/autodiscover.xml"
HOSTS = a("autodiscover.example.test", "mail.example.test")
LABEL = "1 autodiscover.example.test"


def redirect_url(target: str) -> bytes:
    return document("<Account><Action>redirectUrl</Action>"
                    f"<RedirectURL>{target}</RedirectURL></Account>")


class HTTPRedirectTests(SynchronousTestCase):
    """
    30x answers to the POSTs.
    """

    def test_followed_to_https(self) -> None:
        """
        A 302 to an https URL is followed, its stages numbered as a hop,
        and the settings come from where it led.
        """
        world = World(HOSTS, {STEP1: redirect(MAIL), MAIL: service(settings(EWS))})
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual(found.url, MAIL)
        self.assertEqual(world.check(f"{LABEL} redirect").detail,
                         f"HTTP 302 to {MAIL}, followed")
        self.assertIn("1.1 mail.example.test auth", world.names())
        self.assertTrue(world.report.ok)

    def test_relative_location_and_configured_port(self) -> None:
        """
        A relative Location is taken against the URL that sent it, and
        reached on the configured https port.
        """
        base = "https://autodiscover.example.test:8443"
        target = f"{base}/other/autodiscover.xml"
        world = World(HOSTS, {f"{base}/autodiscover/autodiscover.xml":
                              redirect("/other/autodiscover.xml", 301),
                              target: service(settings(EWS))}, ports=Ports(https=8443))
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual(found.url, target)

    def test_redirect_after_authentication(self) -> None:
        """
        A redirect answering the authenticated POST is followed too.
        """
        def handle(call: Call) -> Reply:
            if call.authorization is None:
                return reply(401, WWW_Authenticate="Basic")
            return reply(307, Location=MAIL)
        world = World(HOSTS, {STEP1: handle, MAIL: service(settings(EWS))})
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual(found.url, MAIL)

    def test_not_to_plain_http(self) -> None:
        """
        A redirect to http:// is not followed, and nothing is sent there.
        """
        target = "http://mail.example.test/autodiscover/autodiscover.xml"
        world = World(HOSTS, {STEP1: redirect(target), target: service(settings(EWS))})
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn("is not https: not followed", world.check(f"{LABEL} redirect").detail)
        self.assertNotIn(target, world.web.urls())

    def test_without_location(self) -> None:
        """
        A 302 without Location is a failed redirect.
        """
        world = World(HOSTS, {STEP1: answer_with(reply(302))})
        self.successResultOf(world.start())
        self.assertEqual(world.check(f"{LABEL} redirect").detail, "HTTP 302 without Location")

    def test_loop(self) -> None:
        """
        A chain that comes back to a URL it has visited, however spelled,
        stops there.
        """
        back = "https://AUTODISCOVER.example.test.:443/Autodiscover/Autodiscover.xml"
        world = World(HOSTS, {STEP1: redirect(MAIL), MAIL: redirect(back)})
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn(f"redirect loop: {back} was already visited",
                      world.check("1.1 mail.example.test redirect").detail)
        self.assertEqual(world.web.urls()[:2], [STEP1, MAIL])
        self.assertEqual(world.web.urls().count(MAIL), 1)

    def test_endless_chain(self) -> None:
        """
        After MAX_HOPS redirects the chain is stopped.
        """
        def hop(n: int) -> str:
            return f"https://mail.example.test/hop/{n}"
        routes = {hop(n): redirect(hop(n + 1)) for n in range(1, 20)}
        world = World(HOSTS, {STEP1: redirect(hop(1)), **routes})
        self.assertIsNone(self.successResultOf(world.start()))
        last = world.check(f"1.{MAX_HOPS} mail.example.test redirect")
        self.assertIn(f"more than {MAX_HOPS} redirects; stopped at {hop(MAX_HOPS + 1)}",
                      last.detail)
        self.assertNotIn(hop(MAX_HOPS + 1), world.web.urls())

    def test_unusable_locations(self) -> None:
        """
        A Location with a port that is no port, a broken IPv6 literal or
        no host is a failed redirect, not an exception.
        """
        for location in ("https://mail.example.test:99999/a", "https://mail.example.test:x/a",
                         "https://[2001:db8::1/a", "https://:443/autodiscover/autodiscover.xml"):
            world = World(HOSTS, {STEP1: redirect(location)})
            self.assertIsNone(self.successResultOf(world.start()), location)
            check = world.check(f"{LABEL} redirect")
            self.assertFalse(check.ok)
            self.assertIn("not a usable URL", check.detail)

    def test_host_that_cannot_be_looked_up(self) -> None:
        """
        A Location naming a host DNS cannot even be asked about fails the
        next hop's DNS check.
        """
        world = World(HOSTS, {STEP1: redirect("https://a..example.test/x")})
        self.assertIsNone(self.successResultOf(world.start()))
        check = world.check("1.1 a..example.test DNS")
        self.assertIn("cannot look up a..example.test: lookup failed", check.detail)

    def test_credentials_not_sent_to_a_foreign_target(self) -> None:
        """
        A redirect to another domain is followed, but the host there gets
        no credentials.
        """
        foreign = "https://autodiscover.provider.test/autodiscover/autodiscover.xml"
        world = World({**HOSTS, **a("autodiscover.provider.test")},
                      {STEP1: redirect(foreign), foreign: service(settings(EWS))})
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn("refused to send credentials",
                      world.check("1.1 autodiscover.provider.test auth").detail)
        self.assertEqual(world.web.urls(authorized=True), [])


class RedirectURLTests(SynchronousTestCase):
    """
    redirectUrl answers lead on like HTTP redirects.
    """

    def test_followed(self) -> None:
        """
        A redirectUrl to https is followed to its settings.
        """
        world = World(HOSTS, {STEP1: service(redirect_url(MAIL)),
                              MAIL: service(settings(EWS))})
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual(found.url, MAIL)
        self.assertEqual(world.check(f"{LABEL} redirect").detail,
                         f"redirectUrl to {MAIL}, followed")

    def test_guards_apply(self) -> None:
        """
        A redirectUrl to http:// or back to itself is not followed.
        """
        for target, reason in (("http://mail.example.test/a", "is not https"),
                               (STEP1, "redirect loop")):
            world = World(HOSTS, {STEP1: service(redirect_url(target))})
            self.assertIsNone(self.successResultOf(world.start()))
            self.assertIn(reason, world.check(f"{LABEL} redirect").detail)


def mailbox(answers: dict[str, bytes]) -> Handler:
    """
    An Autodiscover endpoint answering each address asked about with its
    document.
    """
    def handle(call: Call) -> Reply:
        if call.authorization is None:
            return reply(401, WWW_Authenticate="Basic")
        address = parse_request(call.body or b"").email_address or ""
        return reply(200, answers[address])
    return handle


class RedirectAddrTests(SynchronousTestCase):
    """
    redirectAddr answers start the walk again for the new address.
    """

    def test_new_address(self) -> None:
        """
        The walk starts again for the new address, whose settings are the
        result.
        """
        world = World(HOSTS, {STEP1: mailbox({ADDRESS: redirect_addr("real@example.test"),
                                              "real@example.test": settings(EWS)})})
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual((found.address, found.answer.kind), ("real@example.test", "settings"))
        asked = [parse_request(c.body or b"").email_address for c in world.web.calls]
        self.assertEqual(asked, [ADDRESS, ADDRESS, "real@example.test", "real@example.test"])

    def test_loop(self) -> None:
        """
        An address that leads back to one already asked for stops there.
        """
        world = World(HOSTS, {STEP1: mailbox({ADDRESS: redirect_addr("b@example.test"),
                                              "b@example.test": redirect_addr(ADDRESS.upper())})})
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn("redirect loop", world.check(f"redirectAddr {ADDRESS.upper()}").detail)

    def test_endless_chain(self) -> None:
        """
        More than MAX_HOPS redirectAddr answers stop the walk.
        """
        answers = {ADDRESS: redirect_addr("u1@example.test")}
        answers.update({f"u{n}@example.test": redirect_addr(f"u{n + 1}@example.test")
                        for n in range(1, MAX_HOPS + 5)})
        world = World(HOSTS, {STEP1: mailbox(answers)})
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn(f"more than {MAX_HOPS} redirectAddr answers",
                      world.check("redirectAddr").detail)

    def test_other_domain(self) -> None:
        """
        A redirectAddr to another domain is refused unless allowed; when
        allowed, that domain's candidates are walked.
        """
        routes = {STEP1: mailbox({ADDRESS: redirect_addr("user@provider.test")})}
        world = World(HOSTS, routes)
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn("leads outside example.test",
                      world.check("redirectAddr user@provider.test").detail)
        allowed = World(HOSTS, routes, allow_cross_domain=True)
        self.successResultOf(allowed.start())
        self.assertIn("1 autodiscover.provider.test DNS", allowed.names())

    def test_not_an_address(self) -> None:
        """
        A redirectAddr that is no address is a failure, not an exception.
        """
        world = World(HOSTS, {STEP1: mailbox({ADDRESS: redirect_addr("nobody")})})
        self.assertIsNone(self.successResultOf(world.start()))
        self.assertIn("not an address", world.check("redirectAddr nobody").detail)


class PlainHTTPTests(SynchronousTestCase):
    """
    Step 4: an unauthenticated GET over plain HTTP, used only for a
    redirect to https.
    """

    def world(self, step4: Handler) -> World:
        world = World(HOSTS, {STEP4: step4, MAIL: service(settings(EWS))},
                      probe_failures={("autodiscover.example.test", 443): "connection refused"})
        self.successResultOf(world.start())
        return world

    def test_redirect_to_https(self) -> None:
        """
        The GET carries no credentials and its redirect to https is
        followed; port 80 is probed without TLS.
        """
        world = self.world(redirect(MAIL))
        [get] = [c for c in world.web.calls if c.url == STEP4]
        self.assertEqual((get.method, get.authorization, get.body), (b"GET", None, None))
        self.assertTrue(world.check("4.1 mail.example.test answer").ok)
        self.assertEqual({t.security for t in world.prober.calls if t.port == 80},
                         {Security.NONE})
        self.assertFalse([u for u in world.web.urls(authorized=True) if u.startswith("http:")])

    def test_asks_for_credentials(self) -> None:
        """
        A challenge over plain HTTP is a failure, and none are sent.
        """
        world = self.world(answer_with(reply(401, WWW_Authenticate="Basic")))
        check = world.check("4 autodiscover.example.test HTTP")
        self.assertIn("asks for credentials over plain HTTP", check.detail)
        self.assertIn("Basic", check.detail)
        self.assertEqual([c.url for c in world.web.calls if c.url == STEP4], [STEP4])
        self.assertEqual(world.web.urls(authorized=True), [])

    def test_no_redirect(self) -> None:
        """
        A 200, or a 302 without Location, is no redirect.
        """
        for handler in (answer_with(reply(200, b"It works")), answer_with(reply(302))):
            world = self.world(handler)
            self.assertIn("no redirect", world.check("4 autodiscover.example.test HTTP").detail)

    def test_redirect_to_plain_http(self) -> None:
        """
        A redirect from port 80 to another http:// URL is not followed.
        """
        world = self.world(redirect("http://mail.example.test/autodiscover/autodiscover.xml"))
        self.assertIn("is not https", world.check("4 autodiscover.example.test redirect")
                      .detail)
