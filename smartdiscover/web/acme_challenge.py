"""
HTTP-01 challenges (RFC 8555 section 8.3) on the plain-HTTP listener: the
CA fetches C{http://NAME/.well-known/acme-challenge/TOKEN} on port 80,
where every other request gets the redirect it gets without ACME.

The path is matched as the client sent it, before any percent-decoding
and in its letter case (tokens are case-sensitive base64url, which a CA
never percent-encodes); the query, which the CA does not send, is ignored.
Nothing of the request (token, Host) is echoed.  No answer may outlive
its challenge (a cached 404 neither):
L{smartdiscover.web.site.SmartSite} sends every response with
C{Cache-Control: no-store}.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from smartdiscover.certs.acme.responders import HTTP01_PATH, HTTP01Tokens

CHALLENGE_PREFIX = HTTP01_PATH.encode("ascii")
ALLOWED_METHODS = (b"GET", b"HEAD")


class ChallengeOrRedirect(Resource):
    """
    The plain-HTTP listener's leaf when HTTP-01 is in use: below
    L{CHALLENGE_PREFIX}, the key authorization of a published token (GET,
    HEAD), 404 for any other path there, 405 for other methods; every
    other path is C{redirect}'s.
    """

    isLeaf = True

    def __init__(self, tokens: HTTP01Tokens, redirect: Resource) -> None:
        super().__init__()
        self._tokens = tokens
        self._redirect = redirect

    def render(self, request: Request) -> bytes:
        path = request.path or b""
        if not path.startswith(CHALLENGE_PREFIX):
            return self._redirect.render(request)
        request.setHeader(b"Content-Type", b"text/plain")
        if request.method not in ALLOWED_METHODS:
            request.setResponseCode(405)
            request.setHeader(b"Allow", b", ".join(ALLOWED_METHODS))
            return b"Method not allowed.\n"
        token = path[len(CHALLENGE_PREFIX):]
        body = self._tokens.lookup(token) if b"/" not in token else None
        if body is None:
            request.setResponseCode(404)
            return b"No such challenge.\n"
        return body
