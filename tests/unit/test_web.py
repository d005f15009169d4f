"""
Tests for L{smartdiscover.web}: the hardened site, routing, Basic
authentication and the Autodiscover realm.

Everything runs in-process: a L{SmartSite} channel is driven with raw bytes
over a L{StringTransport} and a L{Clock}, without sockets or the global
reactor (SECURITY.md section 9).
"""

from __future__ import annotations

import base64
import gc
import io
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer
from zope.interface.verify import verifyObject

from smartdiscover.auth.credentials import IBasicCredentials
from smartdiscover.auth.passwd import PasswdChecker
from smartdiscover.config import Model, load
from smartdiscover.config.principal import Principal
from smartdiscover.web.tree import build_resource_tree
from smartdiscover.web.autodiscover import AutodiscoverRealm, AutodiscoverResource
from smartdiscover.web.basic_auth import BasicAuthResource, CheckerBusy
from smartdiscover.web.devcert import create_development_certificate
from smartdiscover.web.site import (
    CLOSE_GRACE,
    MAX_BODY,
    RESPONSE_DEADLINE,
    SmartChannel,
    SmartSite,
)
from smartdiscover.web.tls import ReloadableServerTLS, load_server_tls
from tests.helpers import DEMO_PASSWORD, edit, write_config

PEER = IPv4Address("TCP", "127.0.0.1", 12345)
AUTODISCOVER_PATH = b"/autodiscover/autodiscover.xml"
DEMO_USER = b"demo@example.test"
REALM = "mail.example.test"
CHALLENGE = b'Basic realm="mail.example.test", charset="UTF-8"'

SECURITY_HEADERS = {
    b"strict-transport-security": b"max-age=63072000",
    b"cache-control": b"no-store",
    b"x-content-type-options": b"nosniff",
    b"content-security-policy": b"default-src 'none'; frame-ancestors 'none'",
    b"referrer-policy": b"no-referrer",
}

OUTLOOK_REQUEST = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
    b'outlook/requestschema/2006"><Request>'
    b"<EMailAddress>demo@example.test</EMailAddress>"
    b"<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/"
    b"outlook/responseschema/2006a</AcceptableResponseSchema>"
    b"</Request></Autodiscover>"
)


# -- in-memory connections ------------------------------------------------


class RecordingTransport(StringTransport):
    """
    A L{StringTransport} that, like a TCP transport, accepts C{setTcpNoDelay},
    and that tells an abort apart from an orderly close.
    """

    noDelay: bool | None = None
    aborted = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay = enabled

    def getTcpNoDelay(self) -> bool:
        return bool(self.noDelay)

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


@dataclass
class Response:
    """
    One parsed HTTP/1.1 response.
    """

    status_line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status_line.split(b" ")[1])

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def comparable(self) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
        """
        Everything but C{Date}, which legitimately differs between responses.
        """
        return (self.status_line,
                [(k, v) for k, v in self.headers if k.lower() != b"date"],
                self.body)


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            _, _, rest = data.partition(b"\r\n")
            return body, rest
        body += data[:size]
        data = data[size + 2:]


def parse_responses(data: bytes) -> list[Response]:
    """
    Split what the server wrote into responses (Content-Length, chunked, or
    until the connection closes).
    """
    responses = []
    while data:
        head, separator, data = data.partition(b"\r\n\r\n")
        if not separator:
            raise AssertionError(f"incomplete response head: {head!r}")
        status_line, *lines = head.split(b"\r\n")
        headers = []
        for line in lines:
            name, _, value = line.partition(b":")
            headers.append((name, value.strip()))
        response = Response(status_line, headers, b"")
        if response.header(b"content-length"):
            length = int(response.header(b"content-length")[0])
            response.body, data = data[:length], data[length:]
        elif response.header(b"transfer-encoding") == [b"chunked"]:
            response.body, data = _dechunk(data)
        else:
            response.body, data = data, b""
        responses.append(response)
    return responses


class Connection:
    """
    A L{SmartSite} channel connected to a L{RecordingTransport}, on a L{Clock}.
    """

    def __init__(self, resource: IResource, site_class: type[SmartSite] = SmartSite) -> None:
        self.clock = Clock()
        self.site = site_class(resource, reactor=self.clock)
        self.channel = self.site.buildProtocol(PEER)
        self.transport = RecordingTransport()
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def send_bytewise(self, data: bytes) -> None:
        """
        Deliver C{data} one byte per read; like a real transport, stop
        reading once the connection is being closed.
        """
        for i in range(len(data)):
            if self.transport.disconnecting:
                return
            self.channel.dataReceived(data[i:i + 1])

    def lose(self) -> None:
        self.channel.connectionLost(Failure(ConnectionDone()))

    def responses(self) -> list[Response]:
        return parse_responses(self.transport.value())

    def response(self) -> Response:
        responses = self.responses()
        if len(responses) != 1:
            raise AssertionError(f"expected one response, got {self.transport.value()!r}")
        return responses[0]


def http_request(method: bytes = b"GET", path: bytes = b"/",
                 headers: tuple[bytes, ...] = (), body: bytes | None = None,
                 chunked: bool = False) -> bytes:
    """
    A raw HTTP/1.1 request; C{headers} are whole lines without CRLF.
    """
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: mail.example.test", *headers]
    payload = b""
    if body is not None and chunked:
        lines.append(b"Transfer-Encoding: chunked")
        for start in range(0, len(body), 4096):
            piece = body[start:start + 4096]
            payload += b"%x\r\n%s\r\n" % (len(piece), piece)
        payload += b"0\r\n\r\n"
    elif body is not None:
        lines.append(b"Content-Length: %d" % (len(body),))
        payload = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def basic(username: bytes, password: bytes) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(username + b":" + password)


DEMO_AUTH = basic(DEMO_USER, DEMO_PASSWORD.encode())


class RecordingResource(Resource):
    """
    A leaf that records every request it renders and answers C{ok}.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.rendered: list[tuple[bytes, bytes]] = []
        self.args: list[dict[bytes, list[bytes]]] = []

    def render(self, request: Request) -> bytes:
        self.rendered.append((request.method, request.content.read()))
        self.args.append(request.args)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"ok"


class FailingResource(Resource):
    """
    A leaf whose rendering raises.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        raise RuntimeError("internal detail /srv/secret.conf")


class SlowResource(Resource):
    """
    A leaf that answers only when the test finishes its requests.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Request] = []

    def render(self, request: Request) -> object:
        self.pending.append(request)
        return NOT_DONE_YET


# -- authentication fixtures ----------------------------------------------


@implementer(ICredentialsChecker)
class StubChecker:
    """
    A checker whose answer the test chooses: C{answer(credentials)} is
    returned (or raises) as C{requestAvatarId} would.
    """

    credentialInterfaces = (IBasicCredentials,)

    def __init__(self, answer: Callable[[Any], Any]) -> None:
        self._answer = answer
        self.seen: list[Any] = []

    def requestAvatarId(self, credentials: Any) -> Any:
        self.seen.append(credentials)
        return self._answer(credentials)


class RoomyChannel(SmartChannel):
    """
    A channel that lets a 10 kB header through.
    """

    totalHeadersSize = 64 * 1024


class RoomySite(SmartSite):
    """
    A site whose channel lets a 10 kB header through, so that the
    authentication resource itself can be tested with one.
    """

    protocol = RoomyChannel


class AuthFixture:
    """
    The real resource tree from L{smartdiscover.tap}, with a password-file
    checker that hashes synchronously.
    """

    mktemp: Callable[[], str]

    def load_model(self) -> Model:
        return load(write_config(self.mktemp()))

    def passwd_checker(self, model: Model) -> tuple[PasswdChecker, list[Any]]:
        hashed: list[Any] = []

        def run_hash(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
            hashed.append(args)
            return maybeDeferred(f, *args)

        return PasswdChecker(lambda: model, run_hash), hashed

    def tree(self, checker: Any = None, model: Model | None = None) -> IResource:
        if model is None:
            model = self.load_model()
        if checker is None:
            checker, _ = self.passwd_checker(model)
        return build_resource_tree(checker, lambda: model, lambda domain: None,
                                   model.public_hostname)

    def dispatching_checker(self) -> StubChecker:
        """
        The password-file checker, except that user C{busy@...} finds the
        checker busy and C{broken@...} makes it fail unexpectedly.
        """
        model = self.load_model()
        real, _ = self.passwd_checker(model)

        def answer(credentials: Any) -> Any:
            if credentials.username.startswith("busy@"):
                raise CheckerBusy()
            if credentials.username.startswith("broken@"):
                raise RuntimeError("password backend unreachable")
            return real.requestAvatarId(credentials)

        return StubChecker(answer)


# -- tests ----------------------------------------------------------------


class BodyLimitTests(SynchronousTestCase):
    """
    The request-body cap (SECURITY.md section 4, F7; TWISTED.md section 4).
    """

    def setUp(self) -> None:
        self.resource = RecordingResource()
        self.connection = Connection(self.resource)

    def assertRejected(self) -> None:
        response = self.connection.response()
        self.assertEqual(response.code, 413)
        self.assertTrue(self.connection.transport.disconnecting)
        self.assertEqual(self.resource.rendered, [])

    def test_declared_length_over_cap_without_body(self) -> None:
        """
        A POST declaring 10 MiB is answered 413 and closed as soon as its
        headers arrive, before any body byte; the resource never runs and
        nothing is spooled to a temporary file.
        """
        self.connection.send(b"POST / HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 10485760\r\n\r\n")
        self.assertRejected()
        self.assertEqual(self.connection.responses()[0].header(b"connection"), [b"close"])
        self.assertIsInstance(self.connection.channel.requests[0].content, io.BytesIO)

    def test_declared_length_one_over_cap_with_body(self) -> None:
        """
        A body of MAX_BODY + 1 bytes sent in full with the headers is refused,
        not dispatched truncated (TWISTED.md section 4: guard requestReceived).
        """
        self.connection.send(http_request(b"POST", body=b"x" * (MAX_BODY + 1)))
        self.assertRejected()

    def test_declared_length_at_cap_accepted(self) -> None:
        """
        A body of exactly MAX_BODY bytes is accepted and reaches the resource whole.
        """
        body = b"x" * MAX_BODY
        self.connection.send(http_request(b"POST", body=body))
        self.assertEqual(self.connection.response().code, 200)
        self.assertEqual(self.resource.rendered, [(b"POST", body)])

    def test_chunked_over_cap(self) -> None:
        """
        A chunked body that grows past the cap is answered 413 and closed,
        even though its terminating chunk arrives in the same segment.
        """
        self.connection.send(http_request(b"POST", body=b"y" * (64 * 1024 + 1024),
                                          chunked=True))
        self.assertRejected()

    def test_chunked_one_over_cap(self) -> None:
        """
        The chunked limit counts decoded bytes: MAX_BODY + 1 is too many.
        """
        self.connection.send(http_request(b"POST", body=b"y" * (MAX_BODY + 1), chunked=True))
        self.assertRejected()

    def test_small_plain_body(self) -> None:
        """
        A small Content-Length body is delivered to the resource: 200.
        """
        self.connection.send(http_request(b"POST", body=b"hello"))
        self.assertEqual(self.connection.response().code, 200)
        self.assertEqual(self.resource.rendered, [(b"POST", b"hello")])
        self.assertFalse(self.connection.transport.disconnecting)

    def test_small_chunked_body(self) -> None:
        """
        A small chunked body (several chunks) is reassembled for the resource: 200.
        """
        body = b"z" * 10000
        self.connection.send(http_request(b"POST", body=body, chunked=True))
        self.assertEqual(self.connection.response().code, 200)
        self.assertEqual(self.resource.rendered, [(b"POST", body)])


P = b"POST / HTTP/1.1\r\nHost: x\r\n"

MALFORMED_REQUESTS: list[tuple[str, bytes]] = [
    ("Content-Length + Transfer-Encoding",
     P + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("Transfer-Encoding + Content-Length",
     P + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("duplicate Content-Length", P + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    ("conflicting Content-Length",
     P + b"Content-Length: 5\r\nX-A: b\r\nContent-Length: 2\r\n\r\nhello"),
    ("Content-Length: +5", P + b"Content-Length: +5\r\n\r\nhello"),
    ("Content-Length: -1", P + b"Content-Length: -1\r\n\r\nhello"),
    ("Content-Length: +5, not the last header",
     P + b"Content-Length: +5\r\nX-A: b\r\n\r\nhello"),
    ("Transfer-Encoding: xchunked",
     P + b"Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked, identity",
     P + b"Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size 0x5", P + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
    ("bare LF in a chunk extension",
     P + b"Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n"),
    ("51 headers",
     b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(51)) + b"\r\n"),
    ("one 9 KiB header", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9216 + b"\r\n\r\n"),
    ("9 KiB request line", b"GET /" + b"a" * 9216 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("space before the colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("bare CR in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
    ("bare LF in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n"),
]


class MalformedRequestTests(SynchronousTestCase):
    """
    Smuggling vectors and header limits (SECURITY.md section 4, TWISTED.md section 4).
    """

    def test_rejected_before_the_resource(self) -> None:
        """
        Every malformed or oversized request is answered 400, with the
        security headers every answer carries, and closed; it never reaches
        the resource, whether sent whole or byte by byte.
        """
        for label, raw in MALFORMED_REQUESTS:
            for send in ("send", "send_bytewise"):
                resource = RecordingResource()
                connection = Connection(resource)
                getattr(connection, send)(raw)
                responses = connection.responses()
                where = f"{label} ({send})"
                self.assertEqual([r.code for r in responses], [400], where)
                for name, value in SECURITY_HEADERS.items():
                    self.assertEqual(responses[0].header(name), [value], where)
                self.assertTrue(connection.transport.disconnecting, where)
                self.assertEqual(resource.rendered, [], where)

    def test_fifty_headers_accepted(self) -> None:
        """
        maxHeaders is 50: a request with exactly 50 headers is served.
        """
        resource = RecordingResource()
        connection = Connection(resource)
        connection.send(b"GET / HTTP/1.1\r\n"
                        + b"".join(b"X-H%d: v\r\n" % i for i in range(50)) + b"\r\n")
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(len(resource.rendered), 1)

    def test_seven_kib_header_accepted(self) -> None:
        """
        totalHeadersSize is 8192: a 7 KiB header block is still served.
        """
        resource = RecordingResource()
        connection = Connection(resource)
        connection.send(http_request(headers=(b"X-Big: " + b"a" * 7168,)))
        self.assertEqual(connection.response().code, 200)


class DeadlineTests(SynchronousTestCase):
    """
    The per-request deadline that stops slow drips (SECURITY.md section 4 and
    F6; TWISTED.md section 4, "Timeouts").
    """

    def test_slow_header_drip_aborted_at_ten_seconds(self) -> None:
        """
        One header byte every 2 s keeps resetting the idle timer, but the
        connection is aborted 10 s after it was opened, unanswered.
        """
        resource = RecordingResource()
        connection = Connection(resource)
        raw = http_request()
        for i in range(5):  # bytes at t = 0, 2, 4, 6, 8
            connection.send(raw[i:i + 1])
            connection.clock.advance(2 if i < 4 else 1.99)
        self.assertFalse(connection.transport.disconnecting)
        connection.clock.advance(0.01)
        self.assertEqual(connection.clock.seconds(), 10)
        self.assertTrue(connection.transport.aborted)
        self.assertEqual(connection.transport.value(), b"")
        self.assertEqual(resource.rendered, [])

    def test_slow_body_drip_aborted_at_ten_seconds(self) -> None:
        """
        The deadline also covers the body: complete headers followed by one
        body byte every 2 s are aborted at 10 s, unanswered.
        """
        resource = RecordingResource()
        connection = Connection(resource)
        connection.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        for _ in range(5):
            connection.send(b"x")
            connection.clock.advance(2)
        self.assertTrue(connection.transport.aborted)
        self.assertEqual(connection.transport.value(), b"")
        self.assertEqual(resource.rendered, [])

    def test_request_on_time_then_idle_keepalive_aborted(self) -> None:
        """
        A request completed within 10 s is answered; the kept-alive
        connection is then aborted once idle for 30 s, not earlier.
        """
        resource = RecordingResource()
        connection = Connection(resource)
        raw = http_request()
        connection.send(raw[:1])
        connection.clock.advance(9.5)
        connection.send(raw[1:])
        self.assertEqual(connection.response().code, 200)
        connection.clock.advance(29.9)
        self.assertFalse(connection.transport.disconnecting)
        connection.clock.advance(0.2)
        self.assertTrue(connection.transport.aborted)

    def test_next_request_on_kept_alive_connection_has_ten_seconds(self) -> None:
        """
        The 10 s deadline is armed per request (SECURITY.md section 4): a
        second request dripped onto a kept-alive connection is aborted 10 s
        after its first byte, not left to drip until the 30 s keep-alive
        deadline.
        """
        connection = Connection(RecordingResource())
        connection.send(http_request())
        self.assertEqual(connection.response().code, 200)
        connection.clock.advance(5)
        raw = http_request(b"GET", b"/second")
        for i in range(5):  # bytes at t = 5, 7, 9, 11, 13
            connection.send(raw[i:i + 1])
            connection.clock.advance(2 if i < 4 else 1.99)
        self.assertFalse(connection.transport.disconnecting)
        connection.clock.advance(0.01)
        self.assertTrue(connection.transport.aborted)

    def test_keepalive_requests_schedule_no_timer_each(self) -> None:
        """
        Requests on a kept-alive connection share one deadline timer: a
        hundred quick requests schedule at most two calls, and exactly one
        is pending afterwards (the keep-alive deadline still holds).
        """
        connection = Connection(RecordingResource())
        scheduled = []
        call_later = connection.clock.callLater
        connection.channel.callLater = lambda *a, **k: scheduled.append(a) or call_later(*a, **k)
        for _ in range(100):
            connection.send(http_request())
            connection.clock.advance(0.001)
        self.assertEqual(len(connection.responses()), 100)
        self.assertLessEqual(len(scheduled), 2)
        self.assertEqual(len(connection.clock.getDelayedCalls()), 1)
        connection.clock.advance(30)
        self.assertTrue(connection.transport.aborted)

    def test_no_deadline_while_resource_works(self) -> None:
        """
        Neither the request deadline nor the keep-alive one fires while a
        resource (NOT_DONE_YET) is still working within
        C{RESPONSE_DEADLINE}; the answer goes out whenever it is ready and
        the keep-alive deadline starts only then.
        """
        resource = SlowResource()
        connection = Connection(resource)
        connection.send(http_request())
        connection.clock.advance(RESPONSE_DEADLINE - 1)
        self.assertFalse(connection.transport.disconnecting)
        [request] = resource.pending
        request.write(b"late")
        request.finish()
        self.assertEqual(connection.response().code, 200)
        connection.clock.advance(29.9)
        self.assertFalse(connection.transport.disconnecting)
        connection.clock.advance(0.2)
        self.assertTrue(connection.transport.aborted)

    def test_response_deadline(self) -> None:
        """
        A resource that never answers does not hold the connection for
        ever: it is aborted C{RESPONSE_DEADLINE} seconds after the request
        arrived, and the late answer then goes nowhere without an error.
        """
        resource = SlowResource()
        connection = Connection(resource)
        connection.send(http_request())
        connection.clock.advance(RESPONSE_DEADLINE - 0.1)
        self.assertFalse(connection.transport.disconnecting)
        [request] = resource.pending
        finished = request.notifyFinish()
        connection.clock.advance(0.2)
        self.assertTrue(connection.transport.aborted)
        connection.lose()
        self.failureResultOf(finished)

    # Every way a connection's last response goes out (issue 14, section 1).
    FINAL = {
        "Connection: close": http_request(headers=(b"Connection: close",)),
        "HTTP/1.0": b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        "400": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        "414": b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n",
        "413 declared": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n",
        "413 after the body": http_request(b"POST", body=b"x" * (MAX_BODY + 1), chunked=True),
    }

    def test_closed_within_grace_after_last_response(self) -> None:
        """
        After the last response of a connection (asked to close, HTTP/1.0,
        400, 414, 413 before or after the body), the connection is closing
        at once and aborted C{CLOSE_GRACE} seconds later if the client never
        closes its side (a TLS client that never sends close_notify); a
        client that then sends more gets nothing more.
        """
        for name, data in self.FINAL.items():
            connection = Connection(RecordingResource())
            connection.send(data)
            [response] = connection.responses()
            self.assertEqual(response.code, {"Connection: close": 200, "HTTP/1.0": 200,
                                             "400": 400, "414": 414}.get(name, 413), name)
            self.assertTrue(connection.transport.disconnecting, name)
            connection.send(http_request() * 3 + b"x" * 50000)
            connection.clock.advance(CLOSE_GRACE - 0.1)
            self.assertFalse(connection.transport.aborted, name)
            connection.clock.advance(0.2)
            self.assertTrue(connection.transport.aborted, name)
            self.assertEqual(len(connection.responses()), 1, name)

    def test_one_414_for_a_long_header(self) -> None:
        """
        A 100 KB header line arriving in 4 KB reads gets one 414, not one per
        16 KB that follows.
        """
        connection = Connection(RecordingResource())
        data = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n"
        for offset in range(0, len(data), 4096):
            connection.send(data[offset:offset + 4096])
        self.assertEqual([r.code for r in connection.responses()], [414])

    def test_bytewise_request_answered(self) -> None:
        """
        A request split into one-byte segments (SECURITY.md section 9) is
        parsed exactly like one sent whole.
        """
        resource = RecordingResource()
        connection = Connection(resource)
        connection.send_bytewise(http_request(b"POST", body=b"byte by byte"))
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(resource.rendered, [(b"POST", b"byte by byte")])

    def test_bytewise_chunked_request_answered(self) -> None:
        """
        A chunked request split into one-byte segments is reassembled correctly.
        """
        resource = RecordingResource()
        connection = Connection(resource)
        connection.send_bytewise(http_request(b"POST", body=b"chunk" * 20, chunked=True))
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(resource.rendered, [(b"POST", b"chunk" * 20)])


class ChannelTests(SynchronousTestCase):
    """
    Connection-level settings of L{SmartChannel} (TWISTED.md section 4).
    """

    def test_tcp_nodelay_on_connection(self) -> None:
        """
        TCP_NODELAY is requested as soon as the connection is made, before
        any byte is received.
        """
        connection = Connection(RecordingResource())
        self.assertIs(connection.transport.noDelay, True)

    def test_form_body_not_parsed(self) -> None:
        """
        A form-encoded POST body is left in the content and never parsed
        into request.args (TWISTED.md section 4, parsePOSTFormSubmission).
        """
        resource = RecordingResource()
        connection = Connection(resource)
        connection.send(http_request(b"POST", b"/", (
            b"Content-Type: application/x-www-form-urlencoded",), b"a=1&b=2"))
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(resource.rendered, [(b"POST", b"a=1&b=2")])
        self.assertEqual(resource.args, [{}])

    def test_pipelined_requests_answered_in_order(self) -> None:
        """
        Three pipelined requests in one segment get three answers in order,
        and the second is not dispatched before the first has finished
        (SECURITY.md section 4, CVE-2023-46137 regressions).
        """
        resource = SlowResource()
        connection = Connection(resource)
        connection.send(b"".join(http_request(b"GET", b"/%d" % i) for i in range(3)))
        for i in range(3):
            self.assertEqual([r.uri for r in resource.pending], [b"/%d" % i])
            request = resource.pending.pop()
            request.write(b"answer %d" % i)
            request.finish()
        self.assertEqual([r.body for r in connection.responses()],
                         [b"answer 0", b"answer 1", b"answer 2"])


class SecurityHeaderTests(SynchronousTestCase, AuthFixture):
    """
    The response header set (SECURITY.md section 4.1).
    """

    def test_every_response_carries_security_headers(self) -> None:
        """
        Every response, errors included -- 200, 401, 404, 405, 413, 500, 503 --
        carries HSTS, Cache-Control no-store, nosniff, the CSP and
        Referrer-Policy, no Server header, and a charset with any body.
        (Each status is pinned by the tests of its own case; this table
        checks the headers whatever the status.)
        """
        tree = self.tree(self.dispatching_checker())
        wrong = basic(DEMO_USER, b"wrong")
        busy = basic(b"busy@example.test", b"x")
        broken = basic(b"broken@example.test", b"x")
        cases = [
            ("200 GET", http_request(b"GET", AUTODISCOVER_PATH, (DEMO_AUTH,))),
            ("200 POST", http_request(b"POST", AUTODISCOVER_PATH, (DEMO_AUTH,),
                                      OUTLOOK_REQUEST)),
            ("401 no credentials", http_request(b"POST", AUTODISCOVER_PATH)),
            ("401 wrong password", http_request(b"POST", AUTODISCOVER_PATH, (wrong,))),
            ("404 unknown path", http_request(b"GET", b"/other")),
            ("404 root", http_request(b"GET", b"/")),
            ("405 PUT", http_request(b"PUT", AUTODISCOVER_PATH, (DEMO_AUTH,))),
            ("413", http_request(b"POST", AUTODISCOVER_PATH, (DEMO_AUTH,),
                                 b"x" * (MAX_BODY + 1))),
            ("500", http_request(b"POST", AUTODISCOVER_PATH, (broken,))),
            ("503", http_request(b"POST", AUTODISCOVER_PATH, (busy,))),
        ]
        for label, raw in cases:
            connection = Connection(tree)
            connection.send(raw)
            response = connection.response()
            self.assertEqual(response.status_line[:9], b"HTTP/1.1 ", label)
            for name, value in SECURITY_HEADERS.items():
                self.assertEqual(response.header(name), [value], f"{label}: {name!r}")
            self.assertEqual(response.header(b"server"), [], label)
            if response.body:
                [content_type] = response.header(b"content-type")
                self.assertIn(b"charset=", content_type, label)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


    def test_resource_exception(self) -> None:
        """
        A resource that raises gives a logged 500 with the security headers
        and no traceback or detail in the body (displayTracebacks off).
        """
        connection = Connection(FailingResource())
        connection.send(http_request())
        response = connection.response()
        self.assertEqual(response.code, 500)
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(response.header(name), [value], name)
        self.assertEqual(response.header(b"server"), [])
        self.assertNotIn(b"secret", response.body)
        self.assertNotIn(b"Traceback", response.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class RoutingTests(SynchronousTestCase, AuthFixture):
    """
    Case-insensitive routing through the tree of L{smartdiscover.tap}
    (TWISTED.md section 4).
    """

    def get(self, path: bytes) -> Response:
        connection = Connection(self.tree())
        connection.send(http_request(b"GET", path))
        return connection.response()

    def test_any_case_reaches_authentication(self) -> None:
        """
        /autodiscover/autodiscover.xml in any letter case reaches the Basic
        authentication resource, which challenges with 401.
        """
        for path in (b"/autodiscover/autodiscover.xml", b"/Autodiscover/Autodiscover.xml",
                     b"/AUTODISCOVER/AUTODISCOVER.XML", b"/AutoDiscover/autodiscover.XML"):
            response = self.get(path)
            self.assertEqual(response.code, 401, path)
            self.assertEqual(response.header(b"www-authenticate"), [CHALLENGE], path)

    def test_other_paths_not_found(self) -> None:
        """
        Anything else is 404, never a challenge.
        """
        for path in (b"/other", b"/", b"/autodiscover", b"/autodiscover/other.xml",
                     b"/other/autodiscover.xml"):
            response = self.get(path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(response.header(b"www-authenticate"), [], path)


class BasicAuthTests(SynchronousTestCase, AuthFixture):
    """
    L{smartdiscover.web.basic_auth.BasicAuthResource} in front of a real
    portal, realm and password-file checker (TWISTED.md section 5,
    SECURITY.md section 3.3).
    """

    def send(self, raw: bytes, tree: IResource | None = None,
             site_class: type[SmartSite] = SmartSite) -> Response:
        connection = Connection(tree if tree is not None else self.tree(), site_class)
        connection.send(raw)
        return connection.response()

    def test_challenge_without_credentials(self) -> None:
        """
        No Authorization header: 401 with exactly one challenge line,
        C{Basic realm="<public hostname>", charset="UTF-8"}.
        """
        connection = Connection(self.tree())
        connection.send(http_request(b"POST", AUTODISCOVER_PATH, body=OUTLOOK_REQUEST))
        self.assertEqual(connection.response().code, 401)
        self.assertIn(b"\r\nWWW-Authenticate: " + CHALLENGE + b"\r\n",
                      connection.transport.value())
        self.assertEqual(connection.response().header(b"www-authenticate"), [CHALLENGE])

    def test_every_failure_identical(self) -> None:
        """
        Every failed login -- unknown or foreign user, wrong, 73-byte, 10 kB,
        NUL-bearing, non-UTF-8 or empty password, bad Base64, no colon, a
        Bearer token -- gets a byte-identical status line, headers (but
        Date) and body (SECURITY.md section 3.3).  The roomy channel lets the
        10 kB header reach the resource.
        """
        model = self.load_model()
        checker, _ = self.passwd_checker(model)
        tree = self.tree(checker, model)
        password = DEMO_PASSWORD.encode()
        failures = [
            ("unknown user", basic(b"nobody@example.test", password)),
            ("foreign-domain user", basic(b"demo@elsewhere.test", password)),
            ("unparsable user", basic(b"no-at-sign", password)),
            ("wrong password", basic(DEMO_USER, b"wrong-password")),
            ("73-byte password", basic(DEMO_USER, b"p" * 73)),
            ("10 kB password", basic(DEMO_USER, b"p" * 10240)),
            ("password + NUL", basic(DEMO_USER, password + b"\x00tail")),
            ("non-UTF-8 password", basic(DEMO_USER, b"\xff\xfe\xfd")),
            ("empty password", basic(DEMO_USER, b"")),
            ("malformed Base64", b"Authorization: Basic !!!not-base64!!!"),
            ("Base64 without colon", b"Authorization: Basic " + base64.b64encode(DEMO_USER)),
            ("empty Basic", b"Authorization: Basic"),
            ("Bearer scheme", b"Authorization: Bearer "
             + base64.b64encode(DEMO_USER + b":" + password)),
        ]
        baseline = self.send(http_request(b"POST", AUTODISCOVER_PATH, body=OUTLOOK_REQUEST),
                             tree, RoomySite)
        self.assertEqual(baseline.code, 401)
        for label, header in failures:
            response = self.send(
                http_request(b"POST", AUTODISCOVER_PATH, (header,), OUTLOOK_REQUEST),
                tree, RoomySite)
            self.assertEqual(response.comparable(), baseline.comparable(), label)

    def test_unknown_user_costs_one_hash(self) -> None:
        """
        An unknown user is verified against a hash just like a wrong password
        (SECURITY.md section 3.3, item 2), so both take the same time.
        """
        model = self.load_model()
        checker, hashed = self.passwd_checker(model)
        tree = self.tree(checker, model)
        for header in (basic(b"nobody@example.test", b"x"), basic(DEMO_USER, b"x")):
            del hashed[:]
            self.send(http_request(b"POST", AUTODISCOVER_PATH, (header,)), tree)
            self.assertEqual(len(hashed), 1, header)

    def test_ten_kb_header_refused_by_channel(self) -> None:
        """
        Through the production channel a 10 kB Authorization header exceeds
        totalHeadersSize: 400 before any password check.
        """
        checker = StubChecker(lambda credentials: Principal("demo@example.test"))
        response = self.send(http_request(b"POST", AUTODISCOVER_PATH,
                                          (basic(DEMO_USER, b"p" * 10240),)),
                             self.tree(checker))
        self.assertEqual(response.code, 400)
        self.assertEqual(checker.seen, [])

    def test_right_password_post(self) -> None:
        """
        The right password: 200, C{text/xml; charset=utf-8}, an XML document
        listing the IMAP server.
        """
        response = self.send(http_request(b"POST", AUTODISCOVER_PATH, (DEMO_AUTH,),
                                          OUTLOOK_REQUEST))
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header(b"content-type"), [b"text/xml; charset=utf-8"])
        self.assertTrue(response.body.startswith(b"<?xml"), response.body[:40])
        self.assertIn(b"<Type>IMAP</Type>", response.body)
        self.assertIn(b"<Server>mail.example.test</Server>", response.body)
        self.assertEqual(response.header(b"www-authenticate"), [])

    def test_right_password_get(self) -> None:
        """
        GET (sent by some mobile apps) is answered like an empty POST.
        """
        response = self.send(http_request(b"GET", AUTODISCOVER_PATH, (DEMO_AUTH,)))
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header(b"content-type"), [b"text/xml; charset=utf-8"])
        self.assertTrue(response.body.startswith(b"<?xml"))
        self.assertIn(b"<Type>IMAP</Type>", response.body)

    def test_put_authenticated_not_allowed(self) -> None:
        """
        An authenticated PUT is 405 with C{Allow} naming POST and GET
        (SECURITY.md section 4: "POST and GET, else 405").
        """
        response = self.send(http_request(b"PUT", AUTODISCOVER_PATH, (DEMO_AUTH,),
                                          OUTLOOK_REQUEST))
        self.assertEqual(response.code, 405)
        [allow] = response.header(b"allow")
        methods = {method.strip() for method in allow.split(b",")}
        self.assertLessEqual({b"GET", b"POST"}, methods)
        self.assertNotIn(b"PUT", methods)

    def test_put_unauthenticated_challenged(self) -> None:
        """
        Authentication comes first: an unauthenticated PUT is 401, so the
        method set is not revealed to anonymous clients.
        """
        response = self.send(http_request(b"PUT", AUTODISCOVER_PATH))
        self.assertEqual(response.code, 401)

    def test_checker_busy(self) -> None:
        """
        A checker raising L{CheckerBusy} gives 503 with Retry-After
        (SECURITY.md section 9, "a fast 503 + Retry-After").
        """
        def busy(credentials: Any) -> Any:
            raise CheckerBusy()

        response = self.send(http_request(b"POST", AUTODISCOVER_PATH, (DEMO_AUTH,)),
                             self.tree(StubChecker(busy)))
        self.assertEqual(response.code, 503)
        self.assertEqual(response.header(b"retry-after"), [b"%d" % CheckerBusy.retry_after])
        self.assertEqual(response.header(b"www-authenticate"), [])

    def test_checker_error_logged_without_password(self) -> None:
        """
        An unexpected checker exception is a logged 500; no logged event
        contains the password, in clear or Base64 (SECURITY.md section 8).
        """
        secret = b"Sekr3t-Passw0rd-xyzzy"

        def broken(credentials: Any) -> Any:
            raise RuntimeError("password backend unreachable")

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        response = self.send(
            http_request(b"POST", AUTODISCOVER_PATH, (basic(DEMO_USER, secret),)),
            self.tree(StubChecker(broken)))
        self.assertEqual(response.code, 500)
        self.assertEqual(response.header(b"www-authenticate"), [])
        self.assertNotIn(b"backend", response.body)
        [logged] = self.flushLoggedErrors(RuntimeError)
        self.assertIn("password backend unreachable", logged.getTraceback())
        self.assertTrue(events)
        encoded = base64.b64encode(DEMO_USER + b":" + secret).decode()
        for event in events:
            text = formatEvent(event) + repr(event)
            if event.get("log_failure") is not None:
                text += event["log_failure"].getTraceback()
            self.assertNotIn(secret.decode(), text)
            self.assertNotIn(encoded, text)

    def test_client_gone_before_check_finishes(self) -> None:
        """
        A client that disconnects while its password is being checked gets
        nothing written, whether the check then succeeds or fails, and
        nothing is logged.
        """
        for outcome in ("success", "failure"):
            pending: list[Deferred[Any]] = []

            def later(credentials: Any) -> Deferred[Any]:
                pending.append(Deferred())
                return pending[-1]

            connection = Connection(self.tree(StubChecker(later)))
            connection.send(http_request(b"POST", AUTODISCOVER_PATH, (DEMO_AUTH,)))
            self.assertEqual(len(pending), 1)
            connection.lose()
            if outcome == "success":
                pending[0].callback(Principal("demo@example.test", "Demo User"))
            else:
                pending[0].errback(UnauthorizedLogin())
            self.assertEqual(connection.transport.value(), b"", outcome)
            # The login chain ends cleanly: no error left in the Deferred.
            self.assertIsNone(self.successResultOf(pending[0]), outcome)
        self.assertEqual(self.flushLoggedErrors(), [])


class SnapshotTests(SynchronousTestCase, AuthFixture):
    """
    One model per request: the one in force when it arrived, for the check
    and for the answer (issue 15, section 2).
    """

    def test_reload_during_the_check(self) -> None:
        """
        A reload while the password is being checked changes neither what
        the check sees nor what the answer says: the checker gets the
        arrival model in the credentials, and the answer gives its IMAP
        port, not the new one.
        """
        models = [self.load_model()]
        newer = load(write_config(self.mktemp(), edit("[imap]\n", "[imap]\nport = 1993\n")))
        real, _ = self.passwd_checker(models[0])
        pending: list[tuple[Any, Deferred[Any]]] = []

        def later(credentials: Any) -> Deferred[Any]:
            pending.append((credentials, Deferred()))
            return pending[-1][1]

        tree = build_resource_tree(StubChecker(later), lambda: models[-1],
                                   lambda domain: None,
                                   models[0].public_hostname)
        connection = Connection(tree)
        connection.send(http_request(b"POST", AUTODISCOVER_PATH, (DEMO_AUTH,),
                                     body=OUTLOOK_REQUEST))
        [(credentials, d)] = pending
        self.assertIs(credentials.model, models[0])
        models.append(newer)
        real.requestAvatarId(credentials).chainDeferred(d)
        response = connection.response()
        self.assertEqual(response.code, 200)
        self.assertIn(b"<Port>993</Port>", response.body)
        self.assertNotIn(b"1993", response.body)


class LogoutTests(SynchronousTestCase, AuthFixture):
    """
    The realm's logout runs once the avatar's answer is complete, whether
    the avatar answers at once or later.
    """

    def connect(self, avatar: IResource) -> tuple[Connection, list[str]]:
        logouts: list[str] = []

        @implementer(IRealm)
        class Realm:
            def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
                return IResource, avatar, lambda: logouts.append(avatarId.address)

        model = self.load_model()
        checker, _ = self.passwd_checker(model)
        resource = BasicAuthResource(Portal(Realm(), [checker]), "mail.example.test")
        connection = Connection(resource)
        connection.send(http_request(headers=(DEMO_AUTH,)))
        return connection, logouts

    def test_answered_at_once(self) -> None:
        """
        An avatar that answers while rendering is logged out right away.
        """
        connection, logouts = self.connect(RecordingResource())
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(logouts, [DEMO_USER.decode()])

    def test_answered_later(self) -> None:
        """
        An avatar still working is logged out only once it has answered.
        """
        slow = SlowResource()
        connection, logouts = self.connect(slow)
        self.assertEqual(logouts, [])
        [request] = slow.pending
        request.write(b"late")
        request.finish()
        self.assertEqual(connection.response().code, 200)
        self.assertEqual(logouts, [DEMO_USER.decode()])

    def test_client_gone_before_the_answer(self) -> None:
        """
        A client that leaves while the avatar works still ends in a logout.
        """
        slow = SlowResource()
        connection, logouts = self.connect(slow)
        connection.lose()
        self.assertEqual(logouts, [DEMO_USER.decode()])


class RealmTests(SynchronousTestCase, AuthFixture):
    """
    L{AutodiscoverRealm} (TWISTED.md section 5).
    """

    def test_provides_irealm(self) -> None:
        """
        The realm provides L{IRealm} as the portal requires.
        """
        model = self.load_model()
        self.assertTrue(verifyObject(IRealm, AutodiscoverRealm(lambda: model)))

    def test_resource_avatar_for_current_model(self) -> None:
        """
        An IResource avatar is the Autodiscover resource for the principal,
        bound to the model in force at login; logout is callable.
        """
        models = [self.load_model()]
        realm = AutodiscoverRealm(lambda: models[-1])
        interface, avatar, logout = realm.requestAvatar(
            Principal("demo@example.test"), None, IResource)
        self.assertIs(interface, IResource)
        self.assertIsInstance(avatar, AutodiscoverResource)
        self.assertIs(avatar._model, models[0])
        self.assertIsNone(logout())

    def test_avatar_from_the_model_the_request_arrived_with(self) -> None:
        """
        A model passed as the login's mind (the snapshot taken when the
        request arrived) is the one the avatar answers from, even after a
        reload made another current.
        """
        arrived, current = self.load_model(), self.load_model()
        realm = AutodiscoverRealm(lambda: current)
        _, avatar, _ = realm.requestAvatar(Principal("demo@example.test"), arrived, IResource)
        self.assertIs(avatar._model, arrived)

    def test_templates_belong_to_one_model(self) -> None:
        """
        Avatars of one model share its settings templates; the first request
        for another model starts new ones, and nothing of the realm keeps
        the old model alive any more.
        """
        first, second = self.load_model(), self.load_model()
        realm = AutodiscoverRealm(lambda: second)
        _, a, _ = realm.requestAvatar(Principal("demo@example.test"), first, IResource)
        _, b, _ = realm.requestAvatar(Principal("demo@example.test"), first, IResource)
        self.assertIs(a._templates, b._templates)
        _, c, _ = realm.requestAvatar(Principal("demo@example.test"), second, IResource)
        self.assertIsNot(c._templates, a._templates)
        gone = weakref.ref(first)
        del first, a, b
        gc.collect()
        self.assertIsNone(gone())

    def test_other_interfaces_refused(self) -> None:
        """
        Any avatar interface but IResource is refused.
        """
        model = self.load_model()
        self.assertRaises(NotImplementedError, AutodiscoverRealm(lambda: model).requestAvatar,
                          Principal("demo@example.test"), None, IRealm)


class ReloadableTLSInterfaceTests(SynchronousTestCase):
    """
    L{ReloadableServerTLS} plugs into TLSMemoryBIOFactory (TWISTED.md section 3).
    """

    def test_provides_connection_creator(self) -> None:
        """
        It provides IOpenSSLServerConnectionCreator.
        """
        directory = Path(self.mktemp())
        certificate, key = directory / "server.crt", directory / "server.key"
        create_development_certificate(certificate, key, ["mail.example.test"])
        creator = ReloadableServerTLS(load_server_tls(certificate, key))
        self.assertTrue(verifyObject(IOpenSSLServerConnectionCreator, creator))
