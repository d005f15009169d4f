"""
Tests for L{smartdiscover.web.acme_challenge}: the plain-HTTP listener
with HTTP-01 in use answers the CA's challenge paths from
L{HTTP01Tokens} and every other request exactly as L{RedirectToHTTPS}
does, on good and hostile requests, through a real L{SmartSite} over a
recording transport.
"""

from __future__ import annotations

from typing import Any

from twisted.web.test.requesthelper import DummyRequest

from smartdiscover.certs.acme.responders import HTTP01Tokens
from smartdiscover.web.acme_challenge import ChallengeOrRedirect
from smartdiscover.web.redirect import RedirectToHTTPS
from tests.unit.test_http_endpoints import EndpointTestCase, raw_request
from tests.unit.test_web import Response

TOKEN = b"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
OTHER = b"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
KEY_AUTHORIZATION = TOKEN + b".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
PATH = b"/.well-known/acme-challenge/"
# Prefixes and extensions of the published token, a wrong letter case,
# over-long and empty tokens, dot segments, percent-encoding (of a slash
# too), extra segments, a DEL byte.
HOSTILE = (TOKEN[:-1], TOKEN[:22], TOKEN + b"A", TOKEN.upper(), TOKEN.lower(),
           b"A" * 129, b"A" * 4000, b"", b"/", b"//" + TOKEN,
           TOKEN + b"/", TOKEN + b"/x", b"x/" + TOKEN, TOKEN + b"/" + TOKEN,
           b"..", b"../" + TOKEN, b"./" + TOKEN, TOKEN + b"/..", b"%2e%2e",
           TOKEN[:10] + b"%2F" + TOKEN[10:], TOKEN[:10] + b"%2f" + TOKEN[10:],
           b"%" + TOKEN, b"%65" + TOKEN[1:], TOKEN + b"%00", TOKEN + b"%20",
           TOKEN + b";x", TOKEN + b"\x7f")
# Bytes an HTTP request line may not hold: NUL and other controls,
# non-ASCII (UTF-8 and not).
UNPARSABLE = (TOKEN + b"\x00", b"\x01\x02" + TOKEN, TOKEN + b"\t", b"\xff" * 30,
              b"b\xc3\xbccher" + TOKEN, TOKEN[:20] + b"\xc3\xa9" + TOKEN[22:])


class ChallengeOrRedirectTests(EndpointTestCase):
    """
    L{ChallengeOrRedirect} over L{RedirectToHTTPS}, as the plain-HTTP
    listener has it when HTTP-01 is in use.
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        self.redirect = RedirectToHTTPS(lambda: self.model)
        self.tokens = HTTP01Tokens()
        self.successResultOf(self.tokens.publish(TOKEN.decode(), KEY_AUTHORIZATION.decode()))
        self.resource = ChallengeOrRedirect(self.tokens, self.redirect)

    def request(self, method: bytes = b"GET", path: bytes = PATH + TOKEN,
                host: bytes | None = b"mail.example.test",
                body: bytes | None = None) -> Response:
        return self.send(self.resource, raw_request(method, path, host, body=body))

    def assertChallengeHeaders(self, response: Response) -> None:
        self.assertEqual(response.header(b"content-type"), [b"text/plain"])
        self.assertEqual(response.header(b"cache-control"), [b"no-store"])
        self.assertEqual(response.header(b"location"), [])

    def assertNotFound(self, response: Response, path: bytes, method: bytes = b"GET") -> None:
        self.assertEqual(response.code, 404, path)
        self.assertChallengeHeaders(response)
        self.assertEqual(response.body, b"" if method == b"HEAD" else b"No such challenge.\n",
                         path)

    def test_published_token(self) -> None:
        """
        GET answers 200 with the key authorization byte for byte, as
        C{text/plain} that nothing caches, whatever the Host; HEAD the same
        head without the body; a query string (the CA sends none) changes
        nothing.
        """
        for path in (PATH + TOKEN, PATH + TOKEN + b"?x=1", PATH + TOKEN + b"?"):
            for host in (b"mail.example.test", b"autodiscover.example.org", None):
                response = self.request(path=path, host=host)
                self.assertEqual(response.code, 200, (path, host))
                self.assertEqual(response.body, KEY_AUTHORIZATION)
                self.assertChallengeHeaders(response)
                self.assertEqual(response.header(b"content-length"),
                                 [b"%d" % len(KEY_AUTHORIZATION)])
        head = self.request(b"HEAD")
        self.assertEqual(head.code, 200)
        self.assertEqual(head.body, b"")
        self.assertChallengeHeaders(head)
        self.assertEqual(head.header(b"content-length"), [b"%d" % len(KEY_AUTHORIZATION)])

    def test_several_tokens(self) -> None:
        """
        Each token gets its own key authorization.
        """
        self.successResultOf(self.tokens.publish(OTHER.decode(), OTHER.decode() + ".thumb"))
        self.assertEqual(self.request(path=PATH + OTHER).body, OTHER + b".thumb")
        self.assertEqual(self.request().body, KEY_AUTHORIZATION)

    def test_withdrawn_and_unknown(self) -> None:
        """
        A withdrawn token and one never published get 404 with a short
        body that names neither.
        """
        self.assertNotFound(self.request(path=PATH + OTHER), OTHER)
        self.tokens.withdraw(TOKEN.decode())
        response = self.request()
        self.assertNotFound(response, TOKEN)
        self.assertNotIn(TOKEN, response.body)

    def test_hostile_paths(self) -> None:
        """
        Below the challenge prefix, anything but a published token's exact
        path is a plain 404 (no exception, no redirect, nothing echoed);
        a request line with bytes HTTP forbids (controls, non-ASCII) gets
        the listener's 400 before any resource sees it.
        """
        for token in HOSTILE:
            for method in (b"GET", b"HEAD"):
                self.assertNotFound(self.request(method, PATH + token), token, method)
        for token in UNPARSABLE:
            self.assertEqual(self.request(path=PATH + token).code, 400, token)

    def test_hostile_paths_rendered(self) -> None:
        """
        The resource itself, handed any of those paths (the ones the
        listener refuses too), answers 404.
        """
        for token in HOSTILE + UNPARSABLE:
            request: Any = DummyRequest([])
            request.path = PATH + token
            self.assertEqual(self.resource.render(request), b"No such challenge.\n", token)
            self.assertEqual(request.responseCode, 404, token)

    def test_other_methods(self) -> None:
        """
        POST, PUT and others below the prefix get 405 with C{Allow: GET,
        HEAD}, for a published token too (its key authorization unsent).
        """
        for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"PROPFIND",
                       b"TRACE"):
            for path in (PATH + TOKEN, PATH + OTHER, PATH + b"..", PATH + TOKEN + b"/x"):
                body = b"x" * 10 if method in (b"POST", b"PUT") else None
                response = self.request(method, path, body=body)
                self.assertEqual(response.code, 405, (method, path))
                self.assertEqual(response.header(b"allow"), [b"GET, HEAD"])
                self.assertChallengeHeaders(response)
                self.assertNotIn(KEY_AUTHORIZATION, response.body)
                self.assertNotIn(TOKEN, response.body)

    def test_nothing_echoed(self) -> None:
        """
        Neither the Host header nor the path reaches a body.
        """
        marker = b"Evil-Marker-0123456789abcdef"
        for path in (PATH + marker, PATH + marker + b"/x", PATH + TOKEN + b"?" + marker):
            for method in (b"GET", b"POST"):
                response = self.request(method, path, host=marker + b".example")
                self.assertNotIn(marker, response.body)
                self.assertNotIn(marker.lower(), response.body.lower())

    def test_other_paths_redirect(self) -> None:
        """
        Every path not below the prefix, exactly as the client wrote it
        (letter case, percent-encoding), gets what L{RedirectToHTTPS}
        alone answers for the same request, head and body.
        """
        paths = (b"/", b"/autodiscover/autodiscover.xml", b"/.well-known/acme-challenge",
                 b"/.well-known/acme-challenge?" + TOKEN, b"/.well-known/", b"/" + TOKEN,
                 *(prefix + TOKEN for prefix in (
                     b"/.WELL-KNOWN/ACME-CHALLENGE/", b"/.well-known/Acme-Challenge/",
                     b"/.well-known/acme-challenge%2F", b"/.well-known%2Facme-challenge/",
                     b"/.well-known/acme%2Dchallenge/", b"/x/.well-known/acme-challenge/",
                     b"//.well-known/acme-challenge/", b"/../.well-known/acme-challenge/",
                     b"/.well-known/acme-challenges/")),
                 b"/mail/config-v1.1.xml?emailaddress=demo@example.test",
                 b"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40b")
        for method in (b"GET", b"HEAD", b"POST"):
            for path in paths:
                for host in (b"mail.example.test", b"autodiscover.example.org", None):
                    raw = raw_request(method, path, host)
                    response = self.send(self.resource, raw)
                    self.assertEqual(response.code, 302, (method, path, host))
                    self.assertEqual(response.comparable(),
                                     self.send(self.redirect, raw).comparable(),
                                     (method, path, host))
