"""
Tests for C{/.well-known/caldav} and C{/.well-known/carddav} (RFC 6764
section 5; PROTOCOLS.md section 9.3; issue 4 section 3), over the real site
stack (L{SmartSite} over a L{StringTransport} and a L{Clock}; no sockets,
no global reactor).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource

from smartdiscover.config import Model
from tests.helpers import DEMO_PASSWORD, build_ini, edit
from tests.unit.test_autoconfig import SITE_INI, SiteFixture
from tests.unit.test_http_endpoints import basic, raw_request
from tests.unit.test_web import SECURITY_HEADERS, Connection, Response

MAIN = {"caldav": b"https://mail.example.test/dav/calendars/",
        "carddav": b"https://mail.example.test/dav/contacts/"}
ORG = {"caldav": b"https://dav.example.org/caldav/",
       "carddav": b"https://dav.example.org:8843/carddav/"}

# Three served domains: example.org overrides both URLs, example.net none.
THREE_DOMAINS_INI = edit("domains = example.test, example.org",
                         "domains = example.test, example.org, example.net", SITE_INI)

# No DAV in the main sections; example.org alone offers CalDAV.
NO_DAV_INI = build_ini({
    "server": {"domains": "example.test, example.org", "ttl": None},
    "imap": {"security": None},
    "pop3": None,
    "smtp": None,
    "urls": None,
    "domain:example.org": {"urls.caldav": "https://dav.example.org/caldav/"},
})

PROPFIND_BODY = (b'<?xml version="1.0" encoding="utf-8"?>'
                 b'<propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>')


def variants(key: str) -> list[bytes]:
    """
    The well-known path of C{key} in several letter cases.
    """
    path = b"/.well-known/" + key.encode("ascii")
    return [path, path.upper(), b"/.Well-Known/" + key.encode("ascii").capitalize(),
            path.replace(b"dav", b"DAV")]


class WellKnownTests(SynchronousTestCase, SiteFixture):
    """
    The DAV redirects through the real resource tree.
    """

    def setUp(self) -> None:
        self.model = self.load_model(THREE_DOMAINS_INI)
        self.resource = self.tree(self.model)

    def send(self, method: bytes, path: bytes, host: bytes | None,
             resource: IResource | None = None,
             headers: tuple[bytes, ...] = ()) -> tuple[Response, bytes]:
        """
        One request on a fresh connection: the parsed response and every
        byte written.
        """
        body = None
        if method == b"PROPFIND":
            headers = headers + (b"Depth: 0", b"Content-Type: application/xml")
            body = PROPFIND_BODY
        connection = Connection(resource if resource is not None else self.resource)
        connection.send(raw_request(method, path, host, headers, body))
        return connection.response(), connection.transport.value()

    def assertRedirect(self, response: Response, location: bytes, label: object) -> None:
        """
        301, exactly one Location, no challenge, the security headers.
        """
        self.assertEqual(response.code, 301, (label, response.body))
        self.assertEqual(response.header(b"location"), [location], label)
        self.assertEqual(response.header(b"www-authenticate"), [], label)
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(response.header(name), [value], (label, name))

    def test_main_domain(self) -> None:
        """
        GET, HEAD and PROPFIND of either well-known URI, in any letter case,
        with the main domain or its public host as Host: 301 to the
        configured context URL (RFC 6764 section 5; PROTOCOLS.md section
        9.3: clients also PROPFIND the well-known URI).
        """
        for key, location in MAIN.items():
            for path in variants(key):
                for method in (b"GET", b"HEAD", b"PROPFIND"):
                    for host in (b"mail.example.test", b"example.test",
                                 b"autodiscover.example.test", b"Example.Test:8443"):
                        response, _ = self.send(method, path, host)
                        self.assertRedirect(response, location, (key, path, method, host))

    def test_domain_override(self) -> None:
        """
        A Host naming a domain with a [domain:] section -- the domain, its
        autodiscover./autoconfig. name, any case, port, trailing dot -- gets
        that domain's URLs (PROTOCOLS.md sections 9.3 and 9.7).
        """
        for key, location in ORG.items():
            for host in (b"example.org", b"EXAMPLE.org", b"example.org:443",
                         b"example.org.", b"autodiscover.example.org",
                         b"autoconfig.Example.Org"):
                for method in (b"GET", b"PROPFIND"):
                    for path in variants(key):
                        response, _ = self.send(method, path, host)
                        self.assertRedirect(response, location, (key, host, method, path))

    def test_domain_without_override(self) -> None:
        """
        A served domain without a DAV override gets the main URLs
        (PROTOCOLS.md section 9.3).
        """
        for key, location in MAIN.items():
            for host in (b"example.net", b"autodiscover.example.net"):
                response, _ = self.send(b"PROPFIND", b"/.well-known/" + key.encode(), host)
                self.assertRedirect(response, location, (key, host))

    def test_unknown_host_never_echoed(self) -> None:
        """
        A foreign, malformed or missing Host gets the main domain's URL, and
        is not found anywhere in what the server writes (SECURITY.md
        section 3.2: redirect only to hosts we control).
        """
        hosts = (b"evil.example", b"autodiscover.evil.example", b"<evil>", b"a\"evil",
                 b"example.org.evil.example", b"evil.example:443", b"evil" * 500 + b".org")
        for key, location in MAIN.items():
            for host in hosts:
                for method in (b"GET", b"PROPFIND"):
                    response, written = self.send(method, b"/.well-known/" + key.encode(),
                                                  host)
                    self.assertRedirect(response, location, (key, host, method))
                    self.assertNotIn(b"evil", written.lower())
            response, _ = self.send(b"GET", b"/.well-known/" + key.encode(), None)
            self.assertRedirect(response, location, (key, None))

    def test_host_not_in_response(self) -> None:
        """
        Even a served Host is not reflected: the response for Host
        example.org holds only the configured URL, which names another host
        (SECURITY.md section 3.2).
        """
        response, written = self.send(b"GET", b"/.well-known/caldav", b"example.org")
        self.assertRedirect(response, ORG["caldav"], "example.org")
        self.assertNotIn(b"example.org\r\n", written)
        self.assertNotIn(b"//example.org", written)

    def test_credentials_change_nothing(self) -> None:
        """
        The redirect is unauthenticated: an Authorization header neither
        challenges nor changes the answer (RFC 6764 section 5: the client
        authenticates at the target).
        """
        plain, _ = self.send(b"PROPFIND", b"/.well-known/caldav", b"example.org")
        for header in (basic(b"demo@example.test", DEMO_PASSWORD.encode()),
                       basic(b"demo@example.test", b"wrong")):
            with_auth, _ = self.send(b"PROPFIND", b"/.well-known/caldav", b"example.org",
                                     headers=(header,))
            self.assertEqual(with_auth.comparable(), plain.comparable(), header)

    def test_not_configured(self) -> None:
        """
        Where a service is not configured the well-known URI is 404 without
        a Location; a domain that configures only CalDAV redirects CalDAV
        alone (RFC 6764 section 5; PROTOCOLS.md section 9.3).
        """
        model: Model = self.load_model(NO_DAV_INI)
        resource = self.tree(model)
        for key in ("caldav", "carddav"):
            for path in variants(key):
                for method in (b"GET", b"PROPFIND"):
                    for host in (b"mail.example.test", b"example.test", b"evil.example"):
                        response, written = self.send(method, path, host, resource)
                        self.assertEqual(response.code, 404, (key, path, method, host))
                        self.assertEqual(response.header(b"location"), [])
                        self.assertNotIn(b"evil", written)
        response, _ = self.send(b"PROPFIND", b"/.well-known/caldav", b"example.org", resource)
        self.assertRedirect(response, ORG["caldav"], "example.org caldav")
        response, _ = self.send(b"PROPFIND", b"/.well-known/carddav", b"example.org",
                                resource)
        self.assertEqual(response.code, 404)
        self.assertEqual(response.header(b"location"), [])

    def test_other_well_known_paths(self) -> None:
        """
        Other names under C{/.well-known/} are 404, not a DAV redirect
        (RFC 6764 section 5 registers exactly these two).
        """
        for path in (b"/.well-known/caldavs", b"/.well-known/webdav", b"/.well-known/",
                     b"/.well-known/dav", b"/well-known/caldav"):
            response, _ = self.send(b"GET", path, b"mail.example.test")
            self.assertEqual(response.code, 404, path)
            self.assertEqual(response.header(b"location"), [], path)
