"""
HTTP Basic authentication in front of a twisted.cred portal.

Stock C{HTTPAuthSessionWrapper} turns every checker error that is not a
failed login into a 500 and writes the challenge as lower-case C{basic}
without a charset; this resource answers every failure with one identical
401 (C{Basic realm="...", charset="UTF-8"}) and a busy checker with 503.
"""

from __future__ import annotations

from typing import Any

from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from smartdiscover.auth.credentials import decode_basic


class CheckerBusy(Exception):
    """
    The credential checker cannot take more work now: answer 503.
    """

    retry_after = 5


class BasicAuthResource(Resource):
    """
    Authenticates every request, then lets the avatar resource answer it.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, portal: Portal, realm: str) -> None:
        super().__init__()
        self._portal = portal
        quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
        self._challenge = f'Basic realm="{quoted}", charset="UTF-8"'.encode("utf-8")

    def render(self, request: Request) -> Any:
        address = request.getClientAddress()
        credentials = decode_basic(request.getHeader(b"authorization"),
                                   getattr(address, "host", ""))
        if credentials is None:
            return self._unauthorized(request)
        d = self._portal.login(credentials, None, IResource)
        d.addCallbacks(self._render_avatar, self._failed, callbackArgs=(request,),
                       errbackArgs=(request,))
        return NOT_DONE_YET

    def _render_avatar(self, login: tuple[Any, IResource, Any], request: Request) -> None:
        _, avatar, logout = login
        if request._disconnected:  # the client went away while we checked
            logout()
            return
        request.notifyFinish().addBoth(lambda _: logout())
        request.render(avatar)

    def _failed(self, failure: Failure, request: Request) -> None:
        if request._disconnected:
            return
        if failure.check(UnauthorizedLogin, UnhandledCredentials):
            body = self._unauthorized(request)
        elif failure.check(CheckerBusy):
            request.setResponseCode(http.SERVICE_UNAVAILABLE)
            request.setHeader(b"Retry-After", b"%d" % (failure.value.retry_after,))
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            body = b"Service busy, try again later\n"
        else:
            self._log.failure("credential check failed", failure)
            request.setResponseCode(http.INTERNAL_SERVER_ERROR)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            body = b"Internal server error\n"
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        request.write(body)
        request.finish()

    def _unauthorized(self, request: Request) -> bytes:
        request.setResponseCode(http.UNAUTHORIZED)
        request.setHeader(b"WWW-Authenticate", self._challenge)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"Unauthorized\n"
