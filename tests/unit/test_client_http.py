"""
L{smartdiscover.client.http}: one HTTP exchange of the probe over a
L{MemoryReactorClock}, the server's side played through a L{StringTransport}:
what is sent, what is made of the answer, and a short reason for each way
the exchange can fail.
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import error as neterror
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IHostnameResolver, IHostResolution
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from zope.interface import implementer

from smartdiscover.client.http import MAX_BODY, HTTPError, Reply, describe, request

URL = "http://mail.example.test:8080/autodiscover/autodiscover.xml"


@implementer(IHostResolution)
class _Resolution:
    """
    A resolution that is over as soon as it begins.
    """

    name = "nothing"

    def cancel(self) -> None:
        pass


@implementer(IHostnameResolver)
class NoAddresses:
    """
    A name resolver that finds nothing.
    """

    def resolveHostName(self, receiver: Any, hostName: str, portNumber: int = 0,
                        addressTypes: Any = None, transportSemantics: str = "TCP") -> Any:
        receiver.resolutionBegan(_Resolution())
        receiver.resolutionComplete()
        return _Resolution()


class Exchange:
    """
    One request in progress, and the server's end of its connection.
    """

    def __init__(self, url: str = URL, method: bytes = b"POST",
                 headers: dict[bytes, bytes] | None = None, body: bytes | None = None,
                 timeout: float = 5.0, reactor: MemoryReactorClock | None = None) -> None:
        self.reactor = reactor or MemoryReactorClock()
        self.result = Deferred.fromCoroutine(
            request(self.reactor, method, url, None, timeout, headers, body))
        self.transport = StringTransport()

    def connect(self) -> None:
        host, port, factory, _, _ = self.reactor.tcpClients[-1]
        self.protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
        self.protocol.makeConnection(self.transport)
        self.reactor.advance(0)  # the body is written on the reactor's clock

    def answer(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def close(self) -> None:
        self.protocol.connectionLost(Failure(neterror.ConnectionDone()))


class ExchangeTests(SynchronousTestCase):
    """
    A complete exchange: the request as sent, the answer as read.
    """

    def test_request_as_sent(self) -> None:
        """
        Method, path, Host, the probe's User-Agent, the headers given and
        the body go out; the connection is not kept.
        """
        exchange = Exchange(headers={b"Authorization": b"Basic eDp5"}, body=b"<x/>")
        exchange.connect()
        head, _, body = exchange.transport.value().partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"POST /autodiscover/autodiscover.xml HTTP/1.1")
        self.assertEqual(set(lines[1:]), {
            b"Host: mail.example.test:8080", b"User-Agent: SmartDiscover probe",
            b"Authorization: Basic eDp5", b"Content-Length: 4", b"Connection: close"})
        self.assertEqual(body, b"<x/>")

    def test_reply(self) -> None:
        """
        Code, headers and body come back; redirects are not followed.
        """
        exchange = Exchange(method=b"GET")
        exchange.connect()
        exchange.answer(b"HTTP/1.1 302 Found\r\nLocation: https://x.test/\r\n"
                        b"Content-Length: 5\r\n\r\nmoved")
        reply = self.successResultOf(exchange.result)
        self.assertEqual((reply.code, reply.body), (302, b"moved"))
        self.assertEqual(reply.header("location"), "https://x.test/")
        self.assertEqual(len(exchange.reactor.tcpClients), 1)

    def test_body_until_close(self) -> None:
        """
        A body without Content-Length ends when the server closes.
        """
        exchange = Exchange()
        exchange.connect()
        exchange.answer(b"HTTP/1.0 200 OK\r\n\r\n<Autodiscover/>")
        self.assertNoResult(exchange.result)
        exchange.close()
        self.assertEqual(self.successResultOf(exchange.result).body, b"<Autodiscover/>")

    def test_body_at_the_limit(self) -> None:
        """
        A body of exactly the limit is read whole.
        """
        exchange = Exchange()
        exchange.connect()
        exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % MAX_BODY)
        exchange.answer(b"x" * MAX_BODY)
        self.assertEqual(len(self.successResultOf(exchange.result).body), MAX_BODY)


class FailureTests(SynchronousTestCase):
    """
    Every failed exchange is an L{HTTPError} with a short reason.
    """

    def reason(self, exchange: Exchange) -> str:
        return str(self.failureResultOf(exchange.result, HTTPError).value)

    def test_oversized_body(self) -> None:
        """
        A body over the limit stops the transfer with a clear reason.
        """
        exchange = Exchange()
        exchange.connect()
        exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY * 2))
        exchange.answer(b"x" * MAX_BODY)
        self.assertNoResult(exchange.result)
        exchange.answer(b"x")
        self.assertEqual(self.reason(exchange), f"answer longer than {MAX_BODY} bytes")
        self.assertEqual(exchange.transport.producerState, "stopped")

    def test_no_connection_in_time(self) -> None:
        """
        A connection that never completes fails at the limit, not before,
        as an answer that did not come (not as the cancelled attempt).
        """
        exchange = Exchange(timeout=3.0)
        exchange.reactor.advance(2.9)
        self.assertNoResult(exchange.result)
        exchange.reactor.advance(0.2)
        self.assertEqual(self.reason(exchange), "no answer within 3 s")

    def test_silent_server(self) -> None:
        """
        A server that accepts but never answers fails at the limit.
        """
        exchange = Exchange(timeout=3.0)
        exchange.connect()
        exchange.reactor.advance(3.1)
        self.assertEqual(self.reason(exchange), "no answer within 3 s")

    def test_connection_refused(self) -> None:
        """
        A refused connection says so.
        """
        exchange = Exchange()
        _, _, factory, _, _ = exchange.reactor.tcpClients[0]
        factory.clientConnectionFailed(exchange.reactor.connectors[0],
                                       Failure(neterror.ConnectionRefusedError()))
        exchange.reactor.advance(0.3)  # the next round of connection attempts
        self.assertEqual(self.reason(exchange), "connection refused")

    def test_closed_mid_body(self) -> None:
        """
        A body cut short by the server is a closed connection, not a
        short answer.
        """
        exchange = Exchange()
        exchange.connect()
        exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        exchange.close()
        self.assertEqual(self.reason(exchange), "connection closed by the server")

    def test_not_http(self) -> None:
        """
        A greeting of another protocol is a failed exchange.
        """
        exchange = Exchange()
        exchange.connect()
        exchange.answer(b"220 mail.example.test ESMTP\r\n")
        exchange.close()
        self.assertIsInstance(self.failureResultOf(exchange.result, HTTPError).value, HTTPError)

    def test_name_not_resolved(self) -> None:
        """
        A host without addresses cannot be resolved; an IPv6 literal is
        named whole, with or without a port.
        """
        for url, host in (("http://mail.example.test/x", "mail.example.test"),
                          ("http://[2001:db8::1]/x", "2001:db8::1"),
                          ("https://[2001:db8::1]:8443/x", "2001:db8::1")):
            reactor = MemoryReactorClock()
            reactor.installNameResolver(NoAddresses())
            exchange = Exchange(url, reactor=reactor)
            reactor.advance(0)
            self.assertEqual(self.reason(exchange), f"cannot resolve {host}")

    def test_url_not_ascii(self) -> None:
        """
        A URL that is not ASCII fails as an exchange, not with an exception.
        """
        self.failureResultOf(Exchange("https://m\u00e4il.example.test/").result, HTTPError)


class DescribeTests(SynchronousTestCase):
    """
    L{describe} names the cause of a failed exchange.
    """

    def test_reasons(self) -> None:
        """
        Each kind of failure has its short reason; wrapped failures are
        described by their first reason.
        """
        refused = Failure(neterror.ConnectionRefusedError())
        cases: list[tuple[BaseException, str]] = [
            (CancelledError(), "no answer within 2.5 s"),
            (neterror.TimeoutError(), "no answer within 2.5 s"),
            (neterror.ConnectingCancelledError(None), "no answer within 2.5 s"),
            (VerificationError([]), "certificate does not cover mail.example.test"),
            (SSL.Error([("SSL routines", "", "bad record mac")]), "TLS error"),
            (neterror.DNSLookupError(), "cannot resolve mail.example.test"),
            (neterror.ConnectionLost(), "connection closed by the server"),
            (neterror.ConnectError(osError="network unreachable"),
             "cannot connect: network unreachable"),
            (ResponseNeverReceived([refused]), "connection refused"),
            (ResponseFailed([Failure(HTTPError("answer longer than 1 bytes"))]),
             "answer longer than 1 bytes"),
            (ValueError("odd"), "ValueError: odd")]
        for exc, reason in cases:
            self.assertEqual(describe(exc, "mail.example.test", 2.5), reason)


class ReplyTests(SynchronousTestCase):
    """
    L{Reply}'s header accessors.
    """

    def test_headers_and_challenges(self) -> None:
        """
        A header is its first value, any case of name; every
        WWW-Authenticate is a challenge; bytes beyond ASCII survive.
        """
        headers = Headers({b"WWW-Authenticate": [b"Negotiate", b'Basic realm="m\xe4il"'],
                           b"Location": [b"/a", b"/b"]})
        reply = Reply(401, headers, b"")
        self.assertEqual(reply.header("LOCATION"), "/a")
        self.assertIsNone(reply.header("Retry-After"))
        self.assertEqual(reply.challenges(), ["Negotiate", 'Basic realm="m\u00e4il"'])
        self.assertEqual(Reply(200, Headers(), b"").challenges(), [])
