"""
Tests for the HTTP endpoints issue 3 adds, over the real site stack
(L{SmartSite} driven with raw bytes over a L{StringTransport} and a L{Clock},
as in L{tests.unit.test_web}; no sockets, no global reactor):

- Autodiscover v2 JSON, C{/autodiscover/autodiscover.json} (PROTOCOLS.md
  section 5, section 10.2 item 5);
- the plain-HTTP listener, L{RedirectToHTTPS} (PROTOCOLS.md sections 3 and
  10.2 item 2, SECURITY.md section 3.1);
- an authenticated mobilesync POST through the full resource tree that is
  answered with an HTTP redirect (PROTOCOLS.md sections 2.9 and 11.3).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

from twisted.internet.task import Clock
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import LogLevel, eventAsJSON, eventAsText, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource

from smartdiscover.auth.passwd import PasswdChecker
from smartdiscover.config import Model, load
from smartdiscover.web.redirect import RedirectToHTTPS
from smartdiscover.web.site import LimitedRequest, SmartSite
from smartdiscover.web.tree import build_resource_tree
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, build_ini, edit, write_config
from tests.unit.test_web import (
    PEER,
    SECURITY_HEADERS,
    Connection,
    RecordingTransport,
    Response,
    parse_responses,
)

JSON_TYPE = b"application/json; charset=utf-8"
ACTIVESYNC_URL = "https://mail.example.test/Microsoft-Server-ActiveSync"
PARTNER_URL = "https://autodiscover.partner.example/autodiscover/autodiscover.xml"
MAIN_AUTODISCOVER = b"https://mail.example.test:8443/autodiscover/autodiscover.xml"
ORG_AUTODISCOVER = b"https://mail.example.org:8443/autodiscover/autodiscover.xml"

MOBILESYNC_RESPONSE = ("http://schemas.microsoft.com/exchange/autodiscover/mobilesync/"
                       "responseschema/2006")

# The minimal file with a second domain, a plain-HTTP listener, IMAP as
# the only socket service, ActiveSync and a redirectUrl account.
INI = build_ini({
    "server": {"domains": "example.test, example.org", "http": "tcp:8080",
               "redirect_domains": "partner.example"},
    "pop3": None,
    "smtp": None,
    "urls": {"webclient": None, "activesync": ACTIVESYNC_URL},
    "domain:example.org": {"server.public_hostname": "mail.example.org",
                           "imap.host": "imap.example.org"},
    "redirectUrl": {"away@example.test": PARTNER_URL},
})

PASSWD = (f"demo@example.test:{DEMO_HASH}:::Demo User\n"
          f"away@example.test:{DEMO_HASH}:::Away User\n")

SECRET = b"Sekr3t-Passw0rd-xyzzy"
AUTHORIZATION = b"Authorization: Basic " + base64.b64encode(b"demo@example.test:" + SECRET)


def raw_request(method: bytes, path: bytes, host: bytes | None = b"mail.example.test",
                headers: tuple[bytes, ...] = (), body: bytes | None = None) -> bytes:
    """
    A raw HTTP/1.1 request with the given C{Host} (none when L{None});
    C{headers} are whole lines without CRLF.
    """
    lines = [method + b" " + path + b" HTTP/1.1"]
    if host is not None:
        lines.append(b"Host: " + host)
    lines.extend(headers)
    if body is not None:
        lines.append(b"Content-Length: %d" % (len(body),))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def mobile_request(email: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
        'mobilesync/requestschema/2006"><Request>'
        f"<EMailAddress>{email}</EMailAddress>"
        f"<AcceptableResponseSchema>{MOBILESYNC_RESPONSE}</AcceptableResponseSchema>"
        "</Request></Autodiscover>").encode("utf-8")


def outlook_request(email: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
        'outlook/requestschema/2006"><Request>'
        f"<EMailAddress>{email}</EMailAddress>"
        "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/"
        "outlook/responseschema/2006a</AcceptableResponseSchema>"
        "</Request></Autodiscover>").encode("utf-8")


def basic(username: bytes, password: bytes) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(username + b":" + password)


class EndpointTestCase(SynchronousTestCase):
    """
    A model from L{INI} and single-request connections.
    """

    def load_model(self, ini: str = INI) -> Model:
        return load(write_config(self.mktemp(), ini, PASSWD))

    def tree(self, model: Model) -> IResource:
        """
        The real HTTPS resource tree: a Portal with L{AutodiscoverRealm}
        and a L{PasswdChecker} that hashes synchronously.
        """
        def run_hash(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
            return maybeDeferred(f, *args)

        checker = PasswdChecker(lambda: model, run_hash)
        return build_resource_tree(checker, lambda: model, lambda domain: None,
                                   model.public_hostname)

    def send(self, resource: IResource, raw: bytes,
             site_class: type[SmartSite] = SmartSite) -> Response:
        connection = Connection(resource, site_class)
        connection.send(raw)
        return connection.response()

    def assertSecurityHeaders(self, response: Response) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(response.header(name), [value], name)


class AutodiscoverJSONTests(EndpointTestCase):
    """
    C{GET /autodiscover/autodiscover.json} through the real tree
    (PROTOCOLS.md section 5; issue 3 section 3).
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        self.resource = self.tree(self.model)

    def get(self, path: bytes, headers: tuple[bytes, ...] = ()) -> Response:
        return self.send(self.resource, raw_request(b"GET", path, headers=headers))

    def assertJSON(self, response: Response, status: int) -> dict[str, str]:
        """
        C{response} has C{status}, the JSON content type, the security
        headers and no challenge; return its parsed body.
        """
        self.assertEqual(response.code, status, response.body)
        self.assertEqual(response.header(b"content-type"), [JSON_TYPE])
        self.assertEqual(response.header(b"www-authenticate"), [])
        self.assertSecurityHeaders(response)
        document = json.loads(response.body.decode("utf-8"))
        self.assertIsInstance(document, dict)
        return document

    def test_query_form_any_case(self) -> None:
        """
        The query form answers in any letter case of the path and of the
        parameter names, without an Authorization header: 200
        C{application/json; charset=utf-8} with the security headers
        (PROTOCOLS.md sections 1 and 5).
        """
        paths = [
            b"/autodiscover/autodiscover.json?Email=demo@example.test&Protocol=ActiveSync",
            b"/Autodiscover/Autodiscover.json?Email=demo@example.test&Protocol=ActiveSync",
            b"/AUTODISCOVER/AUTODISCOVER.JSON?EMAIL=demo@example.test&PROTOCOL=ActiveSync",
            b"/AutoDiscover/autodiscover.Json?email=demo%40example.test&protocol=activesync",
            b"/autodiscover/autodiscover.json?Protocol=ActiveSync&Email=demo@example.test"
            b"&RedirectCount=1",
        ]
        for path in paths:
            document = self.assertJSON(self.get(path), 200)
            self.assertEqual(document, {"Protocol": "ActiveSync", "Url": ACTIVESYNC_URL}, path)

    def test_path_form(self) -> None:
        """
        C{/autodiscover/autodiscover.json/v1.0/ADDRESS?Protocol=..}, the
        address also %40-encoded, in any letter case (PROTOCOLS.md section 5).
        """
        paths = [
            b"/Autodiscover/Autodiscover.json/v1.0/demo@example.test?Protocol=ActiveSync",
            b"/Autodiscover/Autodiscover.json/v1.0/demo%40example.test?Protocol=ActiveSync",
            b"/autodiscover/autodiscover.json/V1.0/demo%40example.test?protocol=ACTIVESYNC",
            b"/AUTODISCOVER/AUTODISCOVER.JSON/v1.0/demo@example.test?PROTOCOL=ActiveSync",
        ]
        for path in paths:
            document = self.assertJSON(self.get(path), 200)
            self.assertEqual(document, {"Protocol": "ActiveSync", "Url": ACTIVESYNC_URL}, path)

    def test_other_protocols(self) -> None:
        """
        Ews and AutodiscoverV1 (as Outlook spells it, Autodiscoverv1) are
        answered too; AutodiscoverV1 names the domain's POX endpoint
        (PROTOCOLS.md section 5).
        """
        document = self.assertJSON(self.get(
            b"/autodiscover/autodiscover.json/v1.0/demo@example.org?Protocol=Autodiscoverv1"),
            200)
        self.assertEqual(document, {"Protocol": "AutodiscoverV1",
                                    "Url": ORG_AUTODISCOVER.decode()})
        document = self.assertJSON(self.get(
            b"/autodiscover/autodiscover.json?Email=x@example.test&Protocol=EWS"), 200)
        self.assertEqual(document, {"Protocol": "Ews",
                                    "Url": "https://mail.example.test/EWS/Exchange.asmx"})

    def test_authorization_changes_nothing(self) -> None:
        """
        The endpoint is unauthenticated by design: a (wrong) Authorization
        header neither challenges nor changes the answer (PROTOCOLS.md
        sections 1 and 5).
        """
        path = b"/autodiscover/autodiscover.json?Email=demo@example.test&Protocol=Ews"
        plain = self.get(path)
        with_auth = self.get(path, (basic(b"demo@example.test", b"wrong"),))
        self.assertEqual(with_auth.comparable(), plain.comparable())
        self.assertJSON(plain, 200)

    def test_unknown_and_existing_address_identical(self) -> None:
        """
        Over HTTP too, an existing and an unknown address of a served domain
        get byte-identical responses but for Date (PROTOCOLS.md section 10.2
        item 5).
        """
        for protocol in (b"ActiveSync", b"Rest"):
            known = self.get(b"/autodiscover/autodiscover.json?Email=demo@example.test"
                             b"&Protocol=" + protocol)
            unknown = self.get(b"/autodiscover/autodiscover.json?Email=nobody@example.test"
                               b"&Protocol=" + protocol)
            self.assertEqual(known.comparable(), unknown.comparable(), protocol)

    def test_other_methods_not_allowed(self) -> None:
        """
        POST, PUT and DELETE are 405 with C{Allow}, never 500 or 501
        (SECURITY.md section 4; PROTOCOLS.md section 1: GET only).
        """
        path = b"/autodiscover/autodiscover.json?Email=demo@example.test&Protocol=Ews"
        for method in (b"POST", b"PUT", b"DELETE"):
            response = self.send(self.resource, raw_request(method, path, body=b"{}"))
            self.assertEqual(response.code, 405, method)
            [allow] = response.header(b"allow")
            methods = {m.strip() for m in allow.split(b",")}
            self.assertIn(b"GET", methods)
            self.assertNotIn(method, methods)
            self.assertSecurityHeaders(response)

    def test_malformed_queries(self) -> None:
        """
        Non-UTF-8 bytes, a missing or empty Email, and paths with other or
        extra segments get 400 with a JSON error, never 500 (SECURITY.md
        section 4; issue 3 section 5: hostile input on every new endpoint).
        """
        base = b"/autodiscover/autodiscover.json"
        paths = [
            base + b"?Email=%ff%fe@example.test&Protocol=Ews",
            base + b"?Email=demo@example.test&Protocol=%ff",
            base + b"/v1.0/%ff@example.test?Protocol=Ews",
            base + b"?Protocol=Ews",
            base + b"?Email=&Protocol=Ews",
            base,
            base + b"/v1.0/demo@example.test/extra?Protocol=Ews",
            base + b"/v1.0/demo@example.test/extra/more?Protocol=Ews",
            base + b"/v2.0/demo@example.test?Protocol=Ews",
            base + b"/v1.0?Protocol=Ews",
            base + b"/other?Email=demo@example.test&Protocol=Ews",
        ]
        for path in paths:
            document = self.assertJSON(self.get(path), 400)
            self.assertEqual(set(document), {"ErrorCode", "ErrorMessage"}, path)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_duplicate_parameters(self) -> None:
        """
        A parameter given twice -- with the same or another letter case --
        is ambiguous (a proxy may read the other value): 400 with a JSON
        error, never an answer for one of the values (SECURITY.md section 4;
        PROTOCOLS.md section 5; issue 3 section 5).
        """
        base = b"/autodiscover/autodiscover.json"
        paths = [
            base + b"?Email=demo@example.test&Email=demo@example.org&Protocol=Ews",
            base + b"?email=demo@example.test&EMAIL=demo@example.org&Protocol=Ews",
            base + b"?Email=demo@example.test&Protocol=Ews&Protocol=ActiveSync",
            base + b"?Email=demo@example.test&Protocol=Ews&protocol=ActiveSync",
            base + b"/v1.0/demo@example.test?Protocol=Ews&Protocol=ActiveSync",
        ]
        for path in paths:
            document = self.assertJSON(self.get(path), 400)
            self.assertEqual(set(document), {"ErrorCode", "ErrorMessage"}, path)

    def test_hostile_protocol_value_escaped(self) -> None:
        """
        Quotes and (percent-encoded) control characters in Protocol come
        back JSON-escaped; the body parses (PROTOCOLS.md section 10.2 item 8).
        """
        response = self.get(b"/autodiscover/autodiscover.json?Email=demo@example.test"
                            b"&Protocol=a%22b%0d%0a%00%3Cx%3E")
        document = self.assertJSON(response, 400)
        self.assertEqual(document["ErrorCode"], "InvalidProtocol")
        self.assertIn("'a\"b\r\n\x00<x>' is invalid", document["ErrorMessage"])
        self.assertNotIn(b"\r\n\x00", response.body)

    def assertRefusedThenServed(self, size: int) -> None:
        """
        On one site, a GET whose query string has C{size} extra bytes is
        answered 400 or 414 and closed without reaching the resource; a new
        connection to the same site is then served normally.
        """
        site = SmartSite(self.resource, reactor=Clock())
        path = (b"/autodiscover/autodiscover.json?Email=demo@example.test&Protocol="
                + b"A" * size)
        channel = site.buildProtocol(PEER)
        transport = RecordingTransport()
        channel.makeConnection(transport)
        channel.dataReceived(raw_request(b"GET", path))
        written = transport.value()
        self.assertTrue(written, f"{size} bytes: connection closed without a response")
        [response] = parse_responses(written)
        self.assertIn(response.code, (400, 414), size)
        self.assertNotIn(b"A" * 64, written)
        self.assertTrue(transport.disconnecting, size)

        channel = site.buildProtocol(PEER)
        transport = RecordingTransport()
        channel.makeConnection(transport)
        channel.dataReceived(raw_request(
            b"GET", b"/autodiscover/autodiscover.json?Email=demo@example.test"
                    b"&Protocol=ActiveSync"))
        [response] = parse_responses(transport.value())
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(response.body)["Url"], ACTIVESYNC_URL)

    def test_oversized_query_string(self) -> None:
        """
        A query string over 8 KiB (the request-head limit) is refused with
        400 or 414 before any resource runs, and the service keeps answering
        on a new connection (SECURITY.md section 4: 9 KiB request line ->
        414/400).
        """
        for size in (9 * 1024, 15 * 1024):
            self.assertRefusedThenServed(size)

    def test_very_long_query_string(self) -> None:
        """
        A request line longer than the line receiver's own limit (16 KiB) is
        answered 400/414 too, not dropped without a word (RFC 9110 section
        4.1: a server MUST answer an over-long request-target with 414;
        SECURITY.md section 4).
        """
        for size in (16 * 1024, 64 * 1024):
            self.assertRefusedThenServed(size)


class RecordingHeaders(Headers):
    """
    Request headers that record which names the server looks up.
    """

    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[bytes] = []

    def getRawHeaders(self, name: Any, default: Any = None) -> Any:
        self.looked_up.append(name.lower() if isinstance(name, bytes)
                              else name.lower().encode("ascii"))
        return super().getRawHeaders(name, default)


class RecordingRequest(LimitedRequest):
    """
    A L{LimitedRequest} whose header look-ups during rendering are recorded.
    """

    lookups: list[list[bytes]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requestHeaders = RecordingHeaders()

    def render(self, resrc: IResource) -> None:
        headers = self.requestHeaders
        assert isinstance(headers, RecordingHeaders)
        del headers.looked_up[:]
        try:
            super().render(resrc)
        finally:
            self.lookups.append(list(headers.looked_up))


class RecordingSite(SmartSite):
    requestFactory = RecordingRequest


class PlainHTTPRedirectTests(EndpointTestCase):
    """
    The plain-HTTP listener: C{SmartSite(RedirectToHTTPS(...))} (PROTOCOLS.md
    sections 3 and 10.2 item 2, SECURITY.md section 3.1; issue 3 section 4).
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        self.resource = RedirectToHTTPS(lambda: self.model)

    def request(self, method: bytes = b"GET", path: bytes = b"/autodiscover/autodiscover.xml",
                host: bytes | None = b"mail.example.test", headers: tuple[bytes, ...] = (),
                body: bytes | None = None) -> tuple[Response, bytes]:
        connection = Connection(self.resource)
        connection.send(raw_request(method, path, host, headers, body))
        return connection.response(), connection.transport.value()

    def assertRedirect(self, response: Response, location: bytes) -> None:
        """
        302 to C{location}, no challenge, no credentials asked for.
        """
        self.assertEqual(response.code, 302)
        self.assertEqual(response.header(b"location"), [location])
        self.assertEqual(response.header(b"www-authenticate"), [])
        self.assertSecurityHeaders(response)

    def test_every_method_and_path(self) -> None:
        """
        GET, POST, PUT and others on any path but autoconfig's (issue 16
        section 7, tests/unit/test_public_ports.py) get 302 to the https
        Autodiscover URL of the public host, with the https port because it
        is not 443 (MS-OXDISCO 3.1.5.4; PROTOCOLS.md section 10.2 item 2).
        """
        paths = (b"/autodiscover/autodiscover.xml", b"/Autodiscover/Autodiscover.xml",
                 b"/", b"/anything/else?x=1",
                 b"/autodiscover/autodiscover.json?Email=demo@example.test&Protocol=Ews",
                 b"/mail/other.xml?emailaddress=demo@example.test")
        for method in (b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PROPFIND"):
            for path in paths:
                body = outlook_request("demo@example.test") if method in (b"POST",
                                                                          b"PUT") else None
                response, _ = self.request(method, path, body=body)
                self.assertRedirect(response, MAIN_AUTODISCOVER)
                self.assertNotIn(b"IMAP", response.body)

    def test_https_port_443_omitted(self) -> None:
        """
        On the standard https port the Location has no port (PROTOCOLS.md
        section 10.2 item 2).
        """
        self.model = self.load_model(edit("ssl:8443:", "ssl:443:", INI))
        response, _ = self.request()
        self.assertRedirect(response,
                            b"https://mail.example.test/autodiscover/autodiscover.xml")
        response, _ = self.request(host=b"autodiscover.example.org")
        self.assertRedirect(response,
                            b"https://mail.example.org/autodiscover/autodiscover.xml")

    def test_served_domain_host(self) -> None:
        """
        A Host naming a served domain, or its autodiscover. name, in any
        case, with a port or a trailing dot, is sent to that domain's public
        host ([domain:] override; PROTOCOLS.md sections 3 and 9.7).
        """
        for host in (b"autodiscover.example.org", b"example.org", b"AutoDiscover.Example.ORG",
                     b"autodiscover.example.org:8080", b"example.org."):
            response, _ = self.request(host=host)
            self.assertRedirect(response, ORG_AUTODISCOVER)
        for host in (b"autodiscover.example.test", b"example.test", b"mail.example.test:80"):
            response, _ = self.request(host=host)
            self.assertRedirect(response, MAIN_AUTODISCOVER)

    def test_foreign_or_malicious_host_never_echoed(self) -> None:
        """
        A foreign, malformed or very long Host gets the main public host,
        and is not found anywhere in the response (SECURITY.md section 3.2:
        redirect only to hosts we control).
        """
        hosts = (b"evil.example", b"autodiscover.evil.example", b"a\"b", b"<evil>",
                 b"mail.example.test.evil.example", b"evil.example:443",
                 b"autodiscover.com.evil", b"x" * 4000, b"evil" * 1000 + b".example.org")
        for host in hosts:
            response, written = self.request(host=host)
            self.assertRedirect(response, MAIN_AUTODISCOVER)
            self.assertNotIn(host.split(b":")[0], written)
            self.assertNotIn(b"evil", written)
        response, _ = self.request(host=None)
        self.assertRedirect(response, MAIN_AUTODISCOVER)

    def test_http_10_without_host(self) -> None:
        """
        An HTTP/1.0 request without Host is redirected to the main host
        (PROTOCOLS.md section 10.2 item 2).
        """
        connection = Connection(self.resource)
        connection.send(b"GET /autodiscover/autodiscover.xml HTTP/1.0\r\n\r\n")
        [response] = connection.responses()
        self.assertRedirect(response, MAIN_AUTODISCOVER)

    def test_authorization_ignored(self) -> None:
        """
        Requests with an Authorization header (Basic, or another scheme) get
        the byte-identical response, but for Date, as without; no
        WWW-Authenticate, and the credentials appear nowhere in it
        (SECURITY.md section 3.1; PROTOCOLS.md section 11.4).
        """
        encoded = AUTHORIZATION.split(b" ")[-1]
        for method, body in ((b"GET", None), (b"POST", outlook_request("demo@example.test")),
                             (b"PUT", b"x")):
            for path, host in ((b"/autodiscover/autodiscover.xml", b"autodiscover.example.org"),
                               (b"/Autodiscover/Autodiscover.xml", b"evil.example")):
                plain, _ = self.request(method, path, host, body=body)
                for header in (AUTHORIZATION, b"Authorization: Bearer " + SECRET,
                               b"Authorization: NTLM " + encoded):
                    with_auth, written = self.request(method, path, host, (header,), body)
                    self.assertEqual(with_auth.comparable(), plain.comparable(),
                                     (method, path, header))
                    self.assertEqual(with_auth.header(b"www-authenticate"), [])
                    self.assertNotIn(SECRET, written)
                    self.assertNotIn(encoded, written)

    def test_authorization_never_read(self) -> None:
        """
        Rendering never looks the Authorization header up (SECURITY.md
        section 3.1: the listener "never reads ... Authorization"), while it
        does read Host -- so the recording works.
        """
        RecordingRequest.lookups = []
        self.addCleanup(setattr, RecordingRequest, "lookups", [])
        for method in (b"GET", b"POST"):
            connection = Connection(self.resource, RecordingSite)
            connection.send(raw_request(method, b"/autodiscover/autodiscover.xml",
                                        b"example.org", (AUTHORIZATION,), b"<x/>"))
            self.assertEqual(connection.response().code, 302)
        self.assertEqual(len(RecordingRequest.lookups), 2)
        for looked_up in RecordingRequest.lookups:
            self.assertIn(b"host", looked_up)
            self.assertNotIn(b"authorization", looked_up)

    def test_authorization_not_logged(self) -> None:
        """
        Requests with credentials that are answered, or refused by the
        channel, log nothing (no access-log line per request,
        docs/operations.md); the one event a request can cause -- the
        failure of one that cannot be rendered -- is logged and names the
        request, but holds its credentials neither in clear nor in Base64,
        in any form an observer writes it (SECURITY.md section 3.1: "log
        line has no Authorization value").
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for method in (b"GET", b"POST", b"PUT"):
            response, _ = self.request(method, headers=(AUTHORIZATION,), body=b"<x/>")
            self.assertEqual(response.code, 302)
        connection = Connection(self.resource)
        connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + AUTHORIZATION
                        + b"\r\nContent-Length: -1\r\n\r\n")
        self.assertTrue(connection.transport.value().startswith(b"HTTP/1.1 400 "))
        self.assertEqual(events, [])

        def no_model() -> Model:
            raise RuntimeError("no model to answer from")

        self.resource = RedirectToHTTPS(no_model)
        response, _ = self.request(b"POST", headers=(AUTHORIZATION,), body=b"<x/>")
        self.assertEqual(response.code, 500)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.critical)
        self.assertIsInstance(event["log_source"], LimitedRequest)
        self.assertEqual(event["log_source"].method, b"POST")
        self.assertIsNotNone(event["log_source"].getHeader(b"authorization"))
        text = eventAsText(event)
        self.assertIn("RuntimeError: no model to answer from", text)
        encoded = AUTHORIZATION.split(b" ")[-1].decode()
        for written in (text, eventAsJSON(event), formatEvent(event), repr(event)):
            self.assertNotIn(SECRET.decode(), written)
            self.assertNotIn(encoded, written)


class AuthenticatedMobileSyncTests(EndpointTestCase):
    """
    An authenticated mobilesync POST through the full tree (Portal,
    AutodiscoverRealm, PasswdChecker; PROTOCOLS.md sections 2.9, 4 and 11.3).
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        self.resource = self.tree(self.model)

    def post(self, username: bytes, body: bytes,
             path: bytes = b"/Autodiscover/Autodiscover.xml") -> Response:
        return self.send(self.resource, raw_request(
            b"POST", path, headers=(basic(username, DEMO_PASSWORD.encode()),
                                    b"Content-Type: text/xml"), body=body))

    def test_redirect_url_user_gets_http_302(self) -> None:
        """
        A redirectUrl account asking in the mobilesync schema gets HTTP 302
        with exactly the configured Location and no document: EAS clients
        follow HTTP redirects but not the mobilesync Redirect element
        (PROTOCOLS.md sections 2.9 and 11.3; SECURITY.md section 3.2).
        """
        for path in (b"/Autodiscover/Autodiscover.xml", b"/autodiscover/autodiscover.xml"):
            response = self.post(b"away@example.test", mobile_request("away@example.test"),
                                 path)
            self.assertEqual(response.code, 302, path)
            self.assertEqual(response.header(b"location"), [PARTNER_URL.encode()])
            self.assertEqual(response.header(b"www-authenticate"), [])
            self.assertNotIn(b"<Autodiscover", response.body)
            self.assertSecurityHeaders(response)

    def test_redirect_url_user_outlook_schema(self) -> None:
        """
        The same account asking in the outlook schema gets a 200 document
        with Action redirectUrl (PROTOCOLS.md section 2.6).
        """
        response = self.post(b"away@example.test", outlook_request("away@example.test"))
        self.assertEqual(response.code, 200)
        self.assertIn(b"<Action>redirectUrl</Action>", response.body)
        self.assertIn(b"<RedirectURL>" + PARTNER_URL.encode() + b"</RedirectURL>",
                      response.body)
        self.assertEqual(response.header(b"location"), [])

    def test_unredirected_user_gets_mobilesync_settings(self) -> None:
        """
        A user without a redirect gets 200 with the MobileSync URL, so the
        302 above is the redirect's doing (PROTOCOLS.md section 4).
        """
        response = self.post(b"demo@example.test", mobile_request("demo@example.test"))
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header(b"content-type"), [b"text/xml; charset=utf-8"])
        self.assertEqual(response.header(b"location"), [])
        self.assertIn(b"<Url>" + ACTIVESYNC_URL.encode() + b"</Url>", response.body)

    def test_redirect_needs_authentication(self) -> None:
        """
        Without valid credentials the redirect is not revealed: 401
        (SECURITY.md section 3.3; PROTOCOLS.md section 12).
        """
        response = self.send(self.resource, raw_request(
            b"POST", b"/autodiscover/autodiscover.xml",
            headers=(basic(b"away@example.test", b"wrong"),),
            body=mobile_request("away@example.test")))
        self.assertEqual(response.code, 401)
        self.assertEqual(response.header(b"location"), [])
