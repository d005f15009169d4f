"""
A twisted.web Site with the limits stock twisted.web lacks.

- a deadline for every state of a connection: receiving each whole request
  (an idle timer that every byte resets does not stop a slow drip,
  SECURITY.md F6), waiting for the answer, waiting for the next request,
  and going away after the last response (TLS would wait for the
  client's close_notify for ever);
- a request-body cap answered with 413 before the body is read (F7);
- tighter header limits, TCP_NODELAY, the same security headers on every
  response, no version in C{Server}, no access-log line per request.

Everything here uses twisted.web's public API but one hook, kept in the
section of L{SmartChannel} marked "Twisted internals" and pinned by
tests/test_twisted_internals.py.
"""

from __future__ import annotations

import io
import time
from functools import lru_cache
from typing import TYPE_CHECKING

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.resource import IResource

if TYPE_CHECKING:
    from smartdiscover.metrics import Metrics

MAX_BODY = 64 * 1024
REQUEST_DEADLINE = 10.0  # seconds to send one request, first byte to last
RESPONSE_DEADLINE = 60.0  # seconds the service may take to answer it
KEEPALIVE_DEADLINE = 30.0  # seconds between two requests on one connection
CLOSE_GRACE = 5.0  # seconds for the last response to drain and the client to close

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Strict-Transport-Security", b"max-age=63072000"),
    (b"Cache-Control", b"no-store"),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Content-Security-Policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"Referrer-Policy", b"no-referrer"),
)


# Encoded once: every response starts its headers with these lines.  A
# resource that sets a Content-Security-Policy of its own (the console,
# with its stylesheet and forms) may set any of the others too, and gets
# ours only for those it did not set.
_SECURITY_LINES = b"".join(name + b": " + value + b"\r\n" for name, value in SECURITY_HEADERS)


def _security_lines(headers: http.Headers) -> bytes:
    if not headers.hasHeader(b"content-security-policy"):
        return _SECURITY_LINES
    return b"".join(name + b": " + value + b"\r\n" for name, value in SECURITY_HEADERS
                    if not headers.hasHeader(name))


def raw_response(status: bytes) -> bytes:
    """
    A complete, empty response that closes the connection, for refusals
    written before a request object can answer (400, 413, 414).
    """
    return (b"HTTP/1.1 " + status + b"\r\n" + _SECURITY_LINES
            + b"Content-Length: 0\r\nConnection: close\r\n\r\n")


class SmartChannel(http.HTTPChannel):
    """
    An HTTP/1.1 channel with a deadline per request and small header limits.
    """

    totalHeadersSize = 8192
    maxHeaders = 50
    # Narrower than Protocol's ITransport | None: a channel only runs
    # connected, over TCP or TLS over TCP (a TLS wrapper provides its TCP
    # transport's interfaces), so setTcpNoDelay and abortConnection exist.
    transport: ITCPTransport
    site: SmartSite  # set by Site.buildProtocol
    _deadline: float | None = None  # when the current request or wait must end
    _timer: IDelayedCall | None = None
    _between_requests = False
    # A whole request is in and its response not done: our own copy of
    # HTTPChannel's private _handlingRequest, kept by the same two hooks.
    _answering = False
    _closing = False  # the last response is out, or a refusal: read nothing more

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)  # forwarded through the TLS layer
        super().connectionMade()
        self._arm(REQUEST_DEADLINE)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        if self._between_requests and data and not self._answering:
            # The first byte of the next request: it gets the full request
            # deadline, not what is left of the keep-alive one.
            self._between_requests = False
            self._arm(REQUEST_DEADLINE)
        super().dataReceived(data)

    # Asked for by every request; a system call (getsockname) each time
    # otherwise.  Both are fixed (any PROXY header was read before this
    # channel started).
    _peer: IPv4Address | IPv6Address | None = None
    _host: IPv4Address | IPv6Address | None = None

    def getPeer(self) -> IPv4Address | IPv6Address:
        if self._peer is None:
            self._peer = self.transport.getPeer()
        return self._peer

    def getHost(self) -> IPv4Address | IPv6Address:
        if self._host is None:
            self._host = self.transport.getHost()
        return self._host

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes,
                     headers: http.Headers) -> None:
        """
        Every response gets the security headers, already encoded (those it
        set itself instead of ours, if it set a C{Content-Security-Policy}), and no
        C{Server} header (it would name Twisted's version).
        """
        lines = [version, b" ", code, b" ", reason, b"\r\n", _security_lines(headers)]
        for name, values in headers.getAllRawHeaders():
            if name != b"Server":
                for value in values:
                    lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        self.transport.writeSequence(lines)

    def lineLengthExceeded(self, line: bytes) -> None:
        # LineReceiver would drop the connection without a word.
        self.transport.write(raw_response(b"414 URI Too Long"))
        self.loseConnection()

    def loseConnection(self) -> None:
        """
        Close after what was written, and abort once L{CLOSE_GRACE} has
        passed: a TLS client that never answers our close_notify, or never
        reads, must not keep the connection.
        """
        if not self._closing:
            self._arm(CLOSE_GRACE)
            self._closing = True
        super().loseConnection()

    def allContentReceived(self) -> None:
        self._arm(RESPONSE_DEADLINE)
        self._answering = True
        super().allContentReceived()

    def requestDone(self, request: http.Request) -> None:
        # Armed first: finishing may dispatch an already buffered request,
        # whose allContentReceived then arms its own deadline.  Cleared
        # where HTTPChannel clears _handlingRequest: only when the
        # connection stays open (otherwise it closes and reads no more).
        if self.persistent:
            self._answering = False
            self._between_requests = True
            self._arm(KEEPALIVE_DEADLINE)
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._deadline = None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        super().connectionLost(reason)

    # One timer per connection, moved only when a deadline comes sooner
    # than it fires: a keep-alive request then costs no timer operation.

    def _arm(self, seconds: float) -> None:
        if self._closing:
            return  # the close deadline stands
        self._deadline = self.site.reactor.seconds() + seconds
        timer = self._timer
        if timer is not None and timer.active():
            if timer.getTime() <= self._deadline:
                return  # it fires first and looks again
            timer.cancel()
        self._timer = self.callLater(seconds, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        remaining = self._deadline - self.site.reactor.seconds()
        if remaining > 0:
            self._timer = self.callLater(remaining, self._expired)
        else:
            self.transport.abortConnection()

    # -- Twisted internals -------------------------------------------------
    # The only place SmartDiscover touches a private twisted.web API: no
    # public one customises the 400 that HTTPChannel writes for a malformed
    # request.  tests/test_twisted_internals.py fails if Twisted renames
    # the hook or stops calling it.

    def _respondToBadRequestAndDisconnect(self) -> None:
        """
        Twisted's answer to a malformed request, with the security headers
        every other response carries.
        """
        self.transport.write(raw_response(b"400 Bad Request"))
        self.loseConnection()


@lru_cache(maxsize=256)  # clients ask for the same few paths
def format_of(path: bytes) -> str:
    """
    The metrics label of a request path.
    """
    path = path.split(b"?", 1)[0].lower()
    if path.startswith(b"/autodiscover/autodiscover.xml"):
        return "autodiscover"
    if path.startswith(b"/autodiscover/autodiscover.json"):
        return "autodiscover-json"
    if path.endswith(b"/config-v1.1.xml"):
        return "autoconfig"
    for prefix, name in ((b"/mobileconfig", "mobileconfig"), (b"/.well-known/", "well-known"),
                         (b"/health", "health"), (b"/metrics", "metrics")):
        if path.startswith(prefix):
            return name
    return "other"


class LimitedRequest(server.Request):
    """
    A request whose body may not exceed C{maxBody} bytes.
    """

    maxBody = MAX_BODY
    # http.Request declares it as "content = None", which types it as None;
    # gotLength below always sets a BytesIO before it is read.
    content: io.BytesIO  # type: ignore[assignment]
    channel: SmartChannel  # SmartSite's requestFactory: its channels only
    _tooLarge = False

    def __init__(self, channel: SmartChannel, *args: object, **kwargs: object) -> None:
        super().__init__(channel, *args, **kwargs)
        self._arrived = time.monotonic()

    def finish(self) -> None:
        channel = getattr(self, "channel", None)  # gone once finished
        metrics = getattr(getattr(channel, "site", None), "metrics", None)
        super().finish()
        if metrics is not None:
            metrics.request_finished(format_of(self.uri or b""), self.code,
                                     time.monotonic() - self._arrived)

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.maxBody:
            self.content = io.BytesIO()
            self._reject()
            return
        # The cap keeps every body small: never spool to a temporary file.
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        if self._tooLarge:
            return
        if self.content.tell() + len(data) > self.maxBody:
            self._reject()
            return
        self.content.write(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._tooLarge:  # never dispatch a truncated body
            super().requestReceived(command, path, version)

    def _reject(self) -> None:
        if self._tooLarge:
            return
        self._tooLarge = True
        self.channel.transport.write(raw_response(b"413 Payload Too Large"))
        self.channel.loseConnection()


class SmartSite(server.Site):
    """
    The Site every SmartDiscover HTTP listener uses.
    """

    protocol = SmartChannel  # type: ignore[assignment]
    requestFactory = LimitedRequest
    displayTracebacks = False

    def __init__(self, resource: IResource, reactor: IReactorTime | None = None,
                 metrics: Metrics | None = None) -> None:
        kwargs = {} if reactor is None else {"reactor": reactor}
        # No idle timeout of twisted.web's own (a timer reset per request):
        # the channel's deadlines cover every wait.
        super().__init__(resource, timeout=None, parsePOSTFormSubmission=False, **kwargs)
        self.metrics = metrics

    def log(self, request: http.Request) -> None:
        """
        No access-log line per request: it costs as much as the request.
        """
