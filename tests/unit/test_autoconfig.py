"""
Tests for Mozilla autoconfig, clientConfig 1.1 (PROTOCOLS.md section 7;
issue 4 sections 1 and 5):

- L{render_autoconfig}, parsed with lxml;
- C{GET .../config-v1.1.xml} over the real site stack (L{SmartSite} driven
  with raw bytes over a L{StringTransport} and a L{Clock}, as in
  L{tests.unit.test_web}; no sockets, no global reactor), including the
  no-enumeration guarantees of SECURITY.md section 3.3 and hostile query
  strings.

L{SiteFixture} is also used by L{tests.unit.test_mobileconfig} and
L{tests.unit.test_wellknown}.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Callable

from lxml import etree
from twisted.internet.task import Clock
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource

from smartdiscover.auth.passwd import PasswdChecker
from smartdiscover.config import Model, load
from smartdiscover.config.model import Catalogue, Security, SocketService
from smartdiscover.discovery.autoconfig import render_autoconfig
from smartdiscover.discovery.signing import Signer
from smartdiscover.web.site import SmartSite
from smartdiscover.web.tree import build_resource_tree
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, build_ini, write_config
from tests.unit.test_http_endpoints import basic, raw_request
from tests.unit.test_web import (
    PEER,
    SECURITY_HEADERS,
    Connection,
    RecordingTransport,
    Response,
    parse_responses,
)

XML_TYPE = b"text/xml; charset=utf-8"
PLACEHOLDER = "%EMAILADDRESS%"
# A display name that occurs nowhere else, so "never appears" can be checked.
DISPLAY_NAME = "Quentin Zyxwvutsrq"
ORG_DISPLAY_NAME = "Oriana Qwertzuiop"

# The minimal file with a second domain, ActiveSync and DAV instead of
# EWS; example.org has its own public host, IMAP host and DAV URLs.
SITE_INI = build_ini({
    "server": {"domains": "example.test, example.org"},
    "urls": {
        "ews": None,
        "activesync": "https://mail.example.test/Microsoft-Server-ActiveSync",
        "caldav": "https://mail.example.test/dav/calendars/",
        "carddav": "https://mail.example.test/dav/contacts/",
    },
    "domain:example.org": {
        "server.public_hostname": "mail.example.org",
        "imap.host": "imap.example.org",
        "urls.caldav": "https://dav.example.org/caldav/",
        "urls.carddav": "https://dav.example.org:8843/carddav/",
    },
})

SITE_PASSWD = (f"demo@example.test:{DEMO_HASH}:::{DISPLAY_NAME}\n"
               f"olga@example.org:{DEMO_HASH}:::{ORG_DISPLAY_NAME}\n")

AUTOCONFIG_PATHS = (
    b"/mail/config-v1.1.xml",
    b"/.well-known/autoconfig/mail/config-v1.1.xml",
    b"/v1.1/mail/config-v1.1.xml",
)


class SiteFixture:
    """
    A model from L{SITE_INI} and the real HTTPS resource tree over it, with
    a L{PasswdChecker} that hashes synchronously; one connection per request.
    """

    mktemp: Callable[[], str]

    def load_model(self, ini: str = SITE_INI, passwd: str = SITE_PASSWD) -> Model:
        return load(write_config(self.mktemp(), ini, passwd))

    def tree(self, model: Model,
             current_signer: Callable[[str], Signer | None] = lambda domain: None
             ) -> IResource:
        def run_hash(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
            return maybeDeferred(f, *args)

        checker = PasswdChecker(lambda: model, run_hash)
        return build_resource_tree(checker, lambda: model, current_signer,
                                   model.public_hostname)

    def request(self, resource: IResource, method: bytes, path: bytes,
                host: bytes | None = b"mail.example.test",
                headers: tuple[bytes, ...] = (), body: bytes | None = None) -> Response:
        connection = Connection(resource)
        connection.send(raw_request(method, path, host, headers, body))
        return connection.response()

    def written(self, resource: IResource, method: bytes, path: bytes,
                host: bytes | None = b"mail.example.test") -> bytes:
        """
        Everything the server wrote for one request, head and body.
        """
        connection = Connection(resource)
        connection.send(raw_request(method, path, host))
        return connection.transport.value()


def catalogue(services: tuple[SocketService, ...] = (),
              **urls: str) -> Catalogue:
    """
    A catalogue built directly, so that every combination can be tried.
    """
    return Catalogue(
        public_hostname="mail.example.test",
        autodiscover_url="https://mail.example.test/autodiscover/autodiscover.xml",
        ttl_hours=1,
        services=services,
        urls=MappingProxyType(dict(urls)),
    )


FULL_SERVICES = (
    SocketService("imap", "imap.example.test", 993, Security.SSL),
    SocketService("pop3", "pop.example.test", 110, Security.STARTTLS),
    SocketService("smtp", "smtp.example.test", 25, Security.NONE),
)


def parse(document: bytes) -> etree._Element:
    """
    Parse with lxml, refusing entities and network access.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(document, parser)


def texts(element: etree._Element, tag: str) -> list[str | None]:
    return [e.text for e in element.findall(tag)]


class RenderAutoconfigTests(SynchronousTestCase):
    """
    L{render_autoconfig} (PROTOCOLS.md section 7.3).
    """

    def test_declaration_and_no_bom(self) -> None:
        """
        The document starts with C{<?xml}, with no UTF-8 byte order mark
        before it (the ISPDB CI rejects BOMs), and declares UTF-8
        (PROTOCOLS.md section 7.1).
        """
        document = render_autoconfig(catalogue(FULL_SERVICES), "example.test")
        self.assertTrue(document.startswith(b"<?xml"), document[:20])
        self.assertNotIn(b"\xef\xbb\xbf", document)
        first_line = document.split(b"\n", 1)[0]
        self.assertIn(b'encoding="utf-8"', first_line.lower())
        document.decode("utf-8")

    def test_client_config_and_provider(self) -> None:
        """
        C{clientConfig version="1.1"} holds one C{emailProvider} whose id is
        the domain -- a host name, not a placeholder, which K-9/Thunderbird
        for Android require -- with domain, displayName and
        displayShortName (PROTOCOLS.md sections 7.1 and 7.3).
        """
        root = parse(render_autoconfig(catalogue(FULL_SERVICES), "example.org"))
        self.assertEqual(root.tag, "clientConfig")
        self.assertEqual(root.get("version"), "1.1")
        [provider] = root.findall("emailProvider")
        self.assertEqual(provider.get("id"), "example.org")
        self.assertRegex(provider.get("id"), r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
        self.assertEqual(texts(provider, "domain"), ["example.org"])
        [display_name] = texts(provider, "displayName")
        [short_name] = texts(provider, "displayShortName")
        self.assertTrue(display_name)
        self.assertTrue(short_name)
        self.assertNotIn("%", display_name + short_name)

    def test_incoming_servers(self) -> None:
        """
        imap comes before pop3 (the first is preferred); each has hostname,
        port, socketType, authentication password-cleartext and username
        %EMAILADDRESS% (PROTOCOLS.md section 7.3).
        """
        root = parse(render_autoconfig(catalogue(FULL_SERVICES), "example.test"))
        provider = root.find("emailProvider")
        incoming = provider.findall("incomingServer")
        self.assertEqual([s.get("type") for s in incoming], ["imap", "pop3"])
        imap, pop3 = incoming
        self.assertEqual(texts(imap, "hostname"), ["imap.example.test"])
        self.assertEqual(texts(imap, "port"), ["993"])
        self.assertEqual(texts(imap, "socketType"), ["SSL"])
        self.assertEqual(texts(imap, "authentication"), ["password-cleartext"])
        self.assertEqual(texts(imap, "username"), [PLACEHOLDER])
        self.assertEqual(texts(pop3, "hostname"), ["pop.example.test"])
        self.assertEqual(texts(pop3, "port"), ["110"])
        self.assertEqual(texts(pop3, "socketType"), ["STARTTLS"])
        self.assertEqual(texts(pop3, "authentication"), ["password-cleartext"])
        self.assertEqual(texts(pop3, "username"), [PLACEHOLDER])

    def test_outgoing_server(self) -> None:
        """
        One C{outgoingServer type="smtp"} with the same children
        (PROTOCOLS.md section 7.3).
        """
        root = parse(render_autoconfig(catalogue(FULL_SERVICES), "example.test"))
        [smtp] = root.find("emailProvider").findall("outgoingServer")
        self.assertEqual(smtp.get("type"), "smtp")
        self.assertEqual(texts(smtp, "hostname"), ["smtp.example.test"])
        self.assertEqual(texts(smtp, "port"), ["25"])
        self.assertEqual(texts(smtp, "socketType"), ["plain"])
        self.assertEqual(texts(smtp, "authentication"), ["password-cleartext"])
        self.assertEqual(texts(smtp, "username"), [PLACEHOLDER])

    def test_socket_type_per_security(self) -> None:
        """
        ssl, starttls and none become C{SSL}, C{STARTTLS} and C{plain}, for
        incoming and outgoing servers alike (PROTOCOLS.md section 7.3).
        """
        expected = {Security.SSL: "SSL", Security.STARTTLS: "STARTTLS",
                    Security.NONE: "plain"}
        for security, socket_type in expected.items():
            services = tuple(SocketService(name, f"{name}.example.test", 1000 + i, security)
                             for i, name in enumerate(("imap", "pop3", "smtp")))
            provider = parse(render_autoconfig(catalogue(services), "example.test")).find(
                "emailProvider")
            servers = provider.findall("incomingServer") + provider.findall("outgoingServer")
            self.assertEqual(len(servers), 3, security)
            for server in servers:
                self.assertEqual(texts(server, "socketType"), [socket_type],
                                 (security, server.get("type")))

    def test_only_configured_servers(self) -> None:
        """
        Servers that are not configured are not announced: no pop3 without
        pop3, no outgoingServer without smtp (PROTOCOLS.md section 7.3).
        """
        imap_only = (FULL_SERVICES[0],)
        provider = parse(render_autoconfig(catalogue(imap_only), "example.test")).find(
            "emailProvider")
        self.assertEqual([s.get("type") for s in provider.findall("incomingServer")],
                         ["imap"])
        self.assertEqual(provider.findall("outgoingServer"), [])
        pop_only = (FULL_SERVICES[1], FULL_SERVICES[2])
        provider = parse(render_autoconfig(catalogue(pop_only), "example.test")).find(
            "emailProvider")
        self.assertEqual([s.get("type") for s in provider.findall("incomingServer")],
                         ["pop3"])

    def test_dav_blocks(self) -> None:
        """
        C{addressBook type="carddav"} and C{calendar type="caldav"} are
        children of clientConfig (as in the draft), with username
        %EMAILADDRESS%, authentication http-basic and the configured
        serverURL (PROTOCOLS.md section 7.3).
        """
        root = parse(render_autoconfig(catalogue(
            FULL_SERVICES, caldav="https://dav.example.test/cal/",
            carddav="https://dav.example.test:8843/card/"), "example.test"))
        [book] = root.findall("addressBook")
        [calendar] = root.findall("calendar")
        self.assertIs(book.getparent(), root)
        self.assertIs(calendar.getparent(), root)
        self.assertEqual(root.find("emailProvider").findall(".//addressBook"), [])
        self.assertEqual(root.find("emailProvider").findall(".//calendar"), [])
        self.assertEqual(book.get("type"), "carddav")
        self.assertEqual(calendar.get("type"), "caldav")
        for element in (book, calendar):
            self.assertEqual(texts(element, "username"), [PLACEHOLDER])
            self.assertEqual(texts(element, "authentication"), ["http-basic"])
        self.assertEqual(texts(book, "serverURL"), ["https://dav.example.test:8843/card/"])
        self.assertEqual(texts(calendar, "serverURL"), ["https://dav.example.test/cal/"])

    def test_dav_blocks_only_when_configured(self) -> None:
        """
        Without carddav there is no addressBook, without caldav no calendar,
        and no serverURL anywhere without either (PROTOCOLS.md section 7.3).
        """
        root = parse(render_autoconfig(catalogue(
            FULL_SERVICES, caldav="https://dav.example.test/cal/"), "example.test"))
        self.assertEqual(root.findall("addressBook"), [])
        self.assertEqual(len(root.findall("calendar")), 1)
        root = parse(render_autoconfig(catalogue(
            FULL_SERVICES, carddav="https://dav.example.test/card/"), "example.test"))
        self.assertEqual(root.findall("calendar"), [])
        self.assertEqual(len(root.findall("addressBook")), 1)
        root = parse(render_autoconfig(catalogue(FULL_SERVICES), "example.test"))
        self.assertEqual(root.findall(".//addressBook") + root.findall(".//calendar")
                         + root.findall(".//serverURL"), [])

    def test_webmail_only_with_webclient(self) -> None:
        """
        C{webMail/loginPage url=...} is there exactly when webclient is
        configured (PROTOCOLS.md section 7.3).
        """
        root = parse(render_autoconfig(catalogue(
            FULL_SERVICES, webclient="https://mail.example.test/webmail/"), "example.test"))
        [webmail] = root.findall("webMail")
        self.assertIs(webmail.getparent(), root)
        [login] = webmail.findall("loginPage")
        self.assertEqual(login.get("url"), "https://mail.example.test/webmail/")
        root = parse(render_autoconfig(catalogue(
            FULL_SERVICES, ews="https://mail.example.test/EWS/Exchange.asmx"), "example.test"))
        self.assertEqual(root.findall(".//webMail"), [])
        self.assertEqual(root.findall(".//loginPage"), [])


class AutoconfigSiteTests(SynchronousTestCase, SiteFixture):
    """
    C{GET .../config-v1.1.xml} through the real resource tree (PROTOCOLS.md
    sections 7.1 and 7.2; SECURITY.md section 3.3; issue 4 section 1).
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        self.resource = self.tree(self.model)
        self.test_document = render_autoconfig(self.model.catalogue_for("example.test"),
                                               "example.test")
        self.org_document = render_autoconfig(self.model.catalogue_for("example.org"),
                                              "example.org")
        # The fixture itself must tell the two domains apart.
        self.assertNotEqual(self.test_document, self.org_document)

    def get(self, path: bytes, host: bytes | None = b"mail.example.test",
            headers: tuple[bytes, ...] = ()) -> Response:
        return self.request(self.resource, b"GET", path, host, headers)

    def assertDocument(self, response: Response, document: bytes, label: object = None) -> None:
        """
        200, C{text/xml; charset=utf-8}, the security headers, no challenge,
        and exactly C{document} as the body.
        """
        self.assertEqual(response.code, 200, (label, response.body))
        self.assertEqual(response.header(b"content-type"), [XML_TYPE], label)
        self.assertEqual(response.header(b"www-authenticate"), [], label)
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(response.header(name), [value], (label, name))
        self.assertEqual(response.body, document, label)

    def assertBadRequest(self, path: bytes, hostile: bytes | None = None) -> None:
        response = self.get(path)
        self.assertEqual(response.code, 400, (path, response.body))
        self.assertNotIn(b"<clientConfig", response.body, path)
        if hostile is not None:
            self.assertNotIn(hostile, response.body, path)

    def test_every_path_any_case(self) -> None:
        """
        The three paths -- Thunderbird's two and Android Nine's
        C{/v1.1/...} -- answer in any letter case, with or without
        C{emailaddress}, without authentication: 200 C{text/xml;
        charset=utf-8} (PROTOCOLS.md sections 7.1, 7.2 and 7.3).
        """
        for path in AUTOCONFIG_PATHS:
            for variant in (path, path.upper(), path.title(),
                            path.replace(b"config", b"Config")):
                for query in (b"", b"?emailaddress=demo@example.test",
                              b"?emailaddress=demo%40example.test"):
                    self.assertDocument(self.get(variant + query), self.test_document,
                                        variant + query)

    def test_parameter_name_any_case(self) -> None:
        """
        C{emailaddress} is read in any letter case, and selects the domain
        of the address over the Host header (PROTOCOLS.md section 7.1).
        """
        for name in (b"emailaddress", b"EmailAddress", b"EMAILADDRESS", b"emailAddress"):
            response = self.get(b"/mail/config-v1.1.xml?" + name + b"=olga@example.org",
                                host=b"autoconfig.example.test")
            self.assertDocument(response, self.org_document, name)
            response = self.get(b"/mail/config-v1.1.xml?" + name + b"=x@EXAMPLE.test",
                                host=b"autoconfig.example.org")
            self.assertDocument(response, self.test_document, name)

    def test_host_selects_domain_without_address(self) -> None:
        """
        Without an address, the Host header (C{<domain>} or
        C{autoconfig.<domain>}, any case, with port or trailing dot) picks
        the [domain:] catalogue; an unknown or malformed Host gets the first
        served domain and is never echoed (PROTOCOLS.md section 7.1;
        SECURITY.md section 3.2).
        """
        for host in (b"autoconfig.example.org", b"example.org", b"AutoConfig.Example.ORG",
                     b"autoconfig.example.org:443", b"example.org."):
            for path in AUTOCONFIG_PATHS:
                self.assertDocument(self.get(path, host=host), self.org_document, host)
        for host in (b"autoconfig.example.test", b"example.test", b"mail.example.test"):
            self.assertDocument(self.get(b"/mail/config-v1.1.xml", host=host),
                                self.test_document, host)
        for host in (b"evil.example", b"autoconfig.evil.example", b"<evil>",
                     b"autoconfig.example.org.evil.example"):
            written = self.written(self.resource, b"GET", b"/mail/config-v1.1.xml", host)
            [response] = parse_responses(written)
            self.assertDocument(response, self.test_document, host)
            self.assertNotIn(b"evil", written)
        self.assertDocument(self.get(b"/mail/config-v1.1.xml", host=None),
                            self.test_document)

    def test_placeholders_without_address(self) -> None:
        """
        Without C{emailaddress} the answer is a full document with
        %EMAILADDRESS% user names, not a 400 (PROTOCOLS.md section 7.1:
        K-9, KMail and Delta Chat send none).
        """
        response = self.get(b"/.well-known/autoconfig/mail/config-v1.1.xml",
                            host=b"autoconfig.example.org")
        root = parse(response.body)
        usernames = [e.text for e in root.iter("username")]
        self.assertEqual(len(usernames), 5)  # imap, pop3, smtp, carddav, caldav
        self.assertEqual(set(usernames), {PLACEHOLDER})
        self.assertEqual(texts(root.find("emailProvider"), "domain"), ["example.org"])
        self.assertEqual(root.find("emailProvider/incomingServer/hostname").text,
                         "imap.example.org")
        self.assertEqual(root.find("calendar/serverURL").text,
                         "https://dav.example.org/caldav/")

    def test_existing_and_unknown_address_identical(self) -> None:
        """
        An existing and an unknown address of a served domain get
        byte-identical responses (status, headers but Date, body), with or
        without an Authorization header, and neither holds the address nor
        the user's display name (PROTOCOLS.md section 7.2; SECURITY.md
        section 3.3).
        """
        for path in AUTOCONFIG_PATHS:
            known = self.get(path + b"?emailaddress=demo@example.test")
            self.assertDocument(known, self.test_document, path)
            for other in (b"nobody@example.test", b"Demo@Example.Test",
                          b"someone.else%2Btag%40example.test"):
                unknown = self.get(path + b"?emailaddress=" + other)
                self.assertEqual(unknown.comparable(), known.comparable(), (path, other))
            with_auth = self.get(path + b"?emailaddress=demo@example.test",
                                 headers=(basic(b"demo@example.test",
                                                DEMO_PASSWORD.encode()),))
            self.assertEqual(with_auth.comparable(), known.comparable(), path)
            self.assertNotIn(b"demo@example.test", known.body)
            self.assertNotIn(DISPLAY_NAME.encode(), known.body)
            self.assertNotIn(b"Zyxwvutsrq", known.body)
        org = self.get(b"/mail/config-v1.1.xml?emailaddress=olga@example.org")
        self.assertEqual(org.comparable(),
                         self.get(b"/mail/config-v1.1.xml?emailaddress=x@example.org")
                         .comparable())
        self.assertNotIn(ORG_DISPLAY_NAME.encode(), org.body)

    def test_unencoded_plus_in_address(self) -> None:
        """
        Plus-addressed users whose client sends the address without
        percent-encoding (C{?emailaddress=a+tag@example.test}; form decoding
        turns the C{+} into a space) get the same document as everyone
        else: the address only selects the domain, and a served domain's
        addresses all get a valid config (PROTOCOLS.md section 7.2;
        SECURITY.md section 3.3).
        """
        known = self.get(b"/mail/config-v1.1.xml?emailaddress=demo@example.test")
        for value in (b"demo+tag@example.test", b"someone.else+a+b@example.test"):
            response = self.get(b"/mail/config-v1.1.xml?emailaddress=" + value)
            self.assertEqual(response.comparable(), known.comparable(), value)

    def test_unserved_domains_identical_404(self) -> None:
        """
        Addresses of unserved domains get 404, byte-identical whatever the
        domain or user, without a document or the domain in it (issue 4
        section 1; SECURITY.md section 3.3).
        """
        first = self.get(b"/mail/config-v1.1.xml?emailaddress=demo@unserved.example")
        self.assertEqual(first.code, 404)
        self.assertNotIn(b"<clientConfig", first.body)
        self.assertNotIn(b"unserved", first.body)
        for path in AUTOCONFIG_PATHS:
            for address in (b"someone@other.example", b"demo@example.test.evil.example",
                            b"x@autoconfig.example.test"):
                response = self.get(path + b"?emailaddress=" + address,
                                    host=b"autoconfig.example.test")
                self.assertEqual(response.comparable(), first.comparable(), (path, address))

    def test_invalid_address(self) -> None:
        """
        A value that is not an address -- no C{@}, an empty part, a space
        or control character, an invalid or over-long domain -- is 400,
        never 500, and is not echoed (SECURITY.md section 4; issue 4
        section 5).
        """
        for value, hostile in ((b"not-an-address", b"not-an-address"),
                               (b"@example.test", None),
                               (b"demo@", None),
                               (b"de%0d%0amo@example.test", b"de\r\nmo"),
                               (b"demo@exa%20mple.test", b"exa mple"),
                               (b"demo@-bad-.example..test", b"-bad-"),
                               (b"a" * 400 + b"@example.test", b"a" * 400),
                               (b"demo@" + b"b" * 70 + b".example.test", b"b" * 70)):
            self.assertBadRequest(b"/mail/config-v1.1.xml?emailaddress=" + value, hostile)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_duplicate_parameter(self) -> None:
        """
        C{emailaddress} given twice -- same or other letter case, same or
        other value -- is ambiguous (a proxy may read the other one): 400
        (SECURITY.md section 4; issue 4 section 5).
        """
        for query in (b"emailaddress=demo@example.test&emailaddress=olga@example.org",
                      b"emailaddress=demo@example.test&emailaddress=demo@example.test",
                      b"emailaddress=demo@example.test&EmailAddress=demo@example.test",
                      b"EMAILADDRESS=x@example.org&emailaddress=",
                      b"emailaddress=&emailaddress="):
            for path in AUTOCONFIG_PATHS:
                self.assertBadRequest(path + b"?" + query)

    def test_non_utf8(self) -> None:
        """
        Percent-encoded bytes that are not UTF-8 are 400, never 500
        (SECURITY.md section 4; issue 4 section 5).
        """
        for value in (b"%ff@example.test", b"demo@%ff%fe.test", b"%c3@example.test",
                      b"%ed%a0%80@example.test"):
            self.assertBadRequest(b"/mail/config-v1.1.xml?emailaddress=" + value)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_other_parameters_ignored(self) -> None:
        """
        Evolution's C{emailmd5=} and other parameters change nothing
        (PROTOCOLS.md section 7.1).
        """
        plain = self.get(b"/mail/config-v1.1.xml?emailaddress=demo@example.test")
        for extra in (b"&emailmd5=0123456789abcdef", b"&x=%ff", b"&foo&bar=1"):
            response = self.get(b"/mail/config-v1.1.xml?emailaddress=demo@example.test"
                                + extra)
            self.assertEqual(response.comparable(), plain.comparable(), extra)

    def assertRefusedThenServed(self, size: int) -> None:
        """
        On one site, a request whose query string is C{size} bytes long is
        refused (400/414, connection closed, nothing echoed) before the
        resource runs; a new connection is then answered normally.
        """
        site = SmartSite(self.resource, reactor=Clock())
        channel = site.buildProtocol(PEER)
        transport = RecordingTransport()
        channel.makeConnection(transport)
        channel.dataReceived(raw_request(
            b"GET", b"/mail/config-v1.1.xml?emailaddress=" + b"A" * size + b"@example.test"))
        written = transport.value()
        self.assertTrue(written, f"{size} bytes: closed without a response")
        [response] = parse_responses(written)
        self.assertIn(response.code, (400, 414), size)
        self.assertNotIn(b"A" * 64, written)
        self.assertNotIn(b"<clientConfig", written)
        self.assertTrue(transport.disconnecting, size)

        channel = site.buildProtocol(PEER)
        transport = RecordingTransport()
        channel.makeConnection(transport)
        channel.dataReceived(raw_request(b"GET",
                                         b"/mail/config-v1.1.xml?emailaddress=x@example.org"))
        [response] = parse_responses(transport.value())
        self.assertDocument(response, self.org_document, size)

    def test_oversized_query(self) -> None:
        """
        Query strings over the 8 KiB request-head limit and over the line
        receiver's 16 KiB are refused, and the site keeps answering
        (SECURITY.md section 4; issue 4 section 5).
        """
        for size in (9 * 1024, 20 * 1024, 64 * 1024):
            self.assertRefusedThenServed(size)

    def test_other_methods_not_allowed(self) -> None:
        """
        POST, PUT, DELETE and PROPFIND are 405 with C{Allow} naming GET, not
        a document, 500 or 501 (PROTOCOLS.md section 7.2: the file is
        fetched with GET; SECURITY.md section 4).
        """
        for method in (b"POST", b"PUT", b"DELETE", b"PROPFIND"):
            for path in AUTOCONFIG_PATHS:
                response = self.request(self.resource, method,
                                        path + b"?emailaddress=demo@example.test",
                                        body=b"<x/>")
                self.assertEqual(response.code, 405, (method, path))
                [allow] = response.header(b"allow")
                methods = {m.strip() for m in allow.split(b",")}
                self.assertIn(b"GET", methods)
                self.assertNotIn(method, methods)
                self.assertNotIn(b"<clientConfig", response.body)

    def test_other_paths_not_found(self) -> None:
        """
        Near misses of the autoconfig paths are 404, not the document
        (PROTOCOLS.md section 7.1).
        """
        for path in (b"/mail/config-v1.0.xml", b"/config-v1.1.xml", b"/mail/",
                     b"/.well-known/autoconfig/config-v1.1.xml",
                     b"/v1.2/mail/config-v1.1.xml", b"/v1.1/config-v1.1.xml"):
            response = self.get(path)
            self.assertEqual(response.code, 404, path)
            self.assertNotIn(b"<clientConfig", response.body)


def _email_provider_id_is_hostname(document: bytes) -> bool:
    provider = parse(document).find("emailProvider")
    return bool(re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", provider.get("id") or ""))


class ServedDomainDocumentsTests(SynchronousTestCase, SiteFixture):
    """
    Every served domain's document over the site is well formed for Android
    clients (PROTOCOLS.md section 7.1).
    """

    def test_every_served_domain(self) -> None:
        """
        For each served domain the emailProvider id is that domain, a host
        name, and every username is the placeholder (PROTOCOLS.md sections
        7.1 and 7.2).
        """
        model = self.load_model()
        resource = self.tree(model)
        for domain in model.domains:
            response = self.request(resource, b"GET",
                                    b"/mail/config-v1.1.xml?emailaddress=a@"
                                    + domain.encode())
            self.assertEqual(response.code, 200, domain)
            self.assertTrue(_email_provider_id_is_hostname(response.body), domain)
            root = parse(response.body)
            self.assertEqual(root.find("emailProvider").get("id"), domain)
            self.assertEqual({e.text for e in root.iter("username")}, {PLACEHOLDER})
