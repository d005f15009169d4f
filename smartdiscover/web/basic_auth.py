"""
HTTP Basic authentication in front of a twisted.cred portal.

Stock C{HTTPAuthSessionWrapper} turns every checker error that is not a
failed login into a 500 and writes the challenge as lower-case C{basic}
without a charset.  This resource answers every failed login with one
identical 401 (C{Basic realm="...", charset="UTF-8"}) after the same
minimum delay, whatever the cause (unknown user, wrong password, throttled,
locked, bad Base64, no colon, overlong password: SECURITY.md 3.3), and a
check that cannot be made now with 503 and Retry-After.
"""

from __future__ import annotations

import random
from typing import Callable

from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from smartdiscover.auth.credentials import decode_basic
from smartdiscover.auth.errors import CheckerBusy, Unavailable
from smartdiscover.config.model import Model

__all__ = ["BasicAuthResource", "CheckerBusy"]

JITTER = 0.1  # up to this fraction of the delay is added at random

UNAUTHORIZED_BODY = b"Unauthorized\n"


class _Client:
    """
    Whether the client of one request has gone away, learnt through the
    public C{notifyFinish} (its errback) rather than the private
    C{Request._disconnected}.  Made in C{render}, while the connection is
    still open, before the first wait.
    """

    gone = False

    def __init__(self, request: Request) -> None:
        request.notifyFinish().addErrback(self._lost)

    def _lost(self, reason: Failure) -> None:
        self.gone = True


class BasicAuthResource(Resource):
    """
    Authenticates every request, then lets the avatar resource answer it.

    @param failure_delay: seconds every failed login takes at least,
        counted from the request's arrival (read per request, so a reload
        changes it); C{None} for no delay.
    @param current_model: the configuration in force.  One snapshot is
        taken when a request arrives and handed along: the guard and the
        checker check against it (in the credentials), and the realm
        answers from it (as the login's mind), so a reload in between
        never mixes two generations in one answer.
    @param on_malformed: called for every request whose C{Authorization}
        header holds no usable Basic credentials (the guard's
        L{smartdiscover.auth.guard.Guard.malformed}, for the metrics).
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, portal: Portal, realm: str,
                 failure_delay: Callable[[], float] | None = None,
                 clock: IReactorTime | None = None,
                 random_fraction: Callable[[], float] = random.random,
                 current_model: Callable[[], Model] | None = None,
                 on_malformed: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._on_malformed = on_malformed
        self._portal = portal
        self._current_model = current_model
        quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
        self._challenge = f'Basic realm="{quoted}", charset="UTF-8"'.encode("utf-8")
        self._failure_delay = failure_delay
        self._clock = clock
        self._random_fraction = random_fraction

    def render(self, request: Request) -> bytes | int:
        address = request.getClientAddress()
        source = getattr(address, "host", "")
        started = self._clock.seconds() if self._clock is not None else 0.0
        header = request.getHeader(b"authorization")
        model = self._current_model() if self._current_model is not None else None
        credentials = decode_basic(header, source, model)
        if credentials is None and not header:
            return self._unauthorized(request)  # the first challenge: at once
        client = _Client(request)  # everything below may wait
        if credentials is None:
            self._log.info("authentication failed: source={source} "
                           "reason=malformed-credentials user=None", source=source)
            if self._on_malformed is not None:
                self._on_malformed()
            self._after_delay(request, client, started)
            return NOT_DONE_YET
        # IBasicCredentials (smartdiscover.auth.credentials) does not extend
        # the marker ICredentials that login's annotation asks for; the
        # portal matches checkers by credentialInterfaces only.
        d = self._portal.login(credentials, model, IResource)  # type: ignore[arg-type]
        d.addCallbacks(self._render_avatar, self._failed, callbackArgs=(request, client),
                       errbackArgs=(request, client, started))
        return NOT_DONE_YET

    def _render_avatar(self, login: tuple[object, object, Callable[[], None]],
                       request: Request, client: _Client) -> None:
        _, avatar, logout = login
        if client.gone:  # the client went away while we checked
            logout()
            return
        request.render(avatar)
        if request.finished:  # answered at once: no need to wait for it
            logout()
        else:
            request.notifyFinish().addBoth(lambda _: logout())

    def _failed(self, failure: Failure, request: Request, client: _Client,
                started: float) -> None:
        if client.gone:
            return
        if failure.check(UnauthorizedLogin, UnhandledCredentials):
            self._after_delay(request, client, started)
            return
        if failure.check(Unavailable):
            request.setResponseCode(http.SERVICE_UNAVAILABLE)
            request.setHeader(b"Retry-After", b"%d" % (failure.value.retry_after,))
            body = b"Service busy, try again later\n"
        else:
            self._log.failure("credential check failed", failure)
            request.setResponseCode(http.INTERNAL_SERVER_ERROR)
            body = b"Internal server error\n"
        self._finish(request, body)

    def _after_delay(self, request: Request, client: _Client, started: float) -> None:
        """
        Send the 401 once the failure delay (plus jitter) has passed since
        the request arrived, without blocking anything meanwhile.
        """
        delay = self._failure_delay() if self._failure_delay is not None else 0.0
        if delay <= 0 or self._clock is None:
            self._finish(request, self._unauthorized(request))
            return
        remaining = started + delay * (1 + JITTER * self._random_fraction()) \
            - self._clock.seconds()
        call = self._clock.callLater(max(0.0, remaining), self._send_unauthorized, request,
                                     client)

        def cancel(reason: Failure) -> None:
            if call.active():
                call.cancel()

        request.notifyFinish().addErrback(cancel)

    def _send_unauthorized(self, request: Request, client: _Client) -> None:
        if not client.gone:
            self._finish(request, self._unauthorized(request))

    def _finish(self, request: Request, body: bytes) -> None:
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        request.write(body)
        request.finish()

    def _unauthorized(self, request: Request) -> bytes:
        request.setResponseCode(http.UNAUTHORIZED)
        request.setHeader(b"WWW-Authenticate", self._challenge)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return UNAUTHORIZED_BODY
