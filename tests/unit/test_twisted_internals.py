"""
The Twisted behaviour SmartDiscover's web layer leans on beyond the
documented API, checked against the Twisted installed.

One private hook is used, in one place (the "Twisted internals" section
of L{smartdiscover.web.site.SmartChannel}):
C{HTTPChannel._respondToBadRequestAndDisconnect}, overridden so that the
400 for a malformed request carries the security headers.  A Twisted that
renames it, changes its signature or stops calling it fails here, with a
message saying what to look at, instead of silently sending bare 400s.

The rest pins what replaced other private uses: the channel's own
"answering" flag (for C{HTTPChannel._handlingRequest}) follows the public
C{allContentReceived} and C{requestDone} hooks, and L{BasicAuthResource}
learns that a client left from C{notifyFinish}'s errback (for
C{Request._disconnected}).
"""

from __future__ import annotations

import inspect
from typing import Callable

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from smartdiscover.web.site import (
    KEEPALIVE_DEADLINE, REQUEST_DEADLINE, RESPONSE_DEADLINE, SmartChannel, SmartSite,
    raw_response)

PEER = IPv4Address("TCP", "192.0.2.10", 50000)
HOOK = "_respondToBadRequestAndDisconnect"
BARE_400 = b"HTTP/1.1 400 Bad Request\r\n\r\n"  # what Twisted's own hook writes

# Each reaches the hook from a different place in twisted.web.http.
MALFORMED = {
    "request line": b"GET /\r\n\r\n",
    "header without a colon": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i
                                                         for i in range(60)) + b"\r\n",
    "headers too large": b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    "bad Content-Length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",
    "two Content-Lengths": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                            b"Content-Length: 2\r\n\r\nab"),
    "malformed chunk": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"zz\r\n"),
}


class TCPLikeTransport(StringTransport):
    """
    A L{StringTransport} with the TCP methods the channel calls.
    """

    aborted = False

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


class Answers(Resource):
    """
    Answers at once, except C{/slow}, which it keeps (NOT_DONE_YET).
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Request] = []

    def render(self, request: Request) -> bytes | int:
        if request.path == b"/slow":
            self.pending.append(request)
            return NOT_DONE_YET
        return b"ok"


def connect(resource: Resource) -> tuple[Clock, SmartChannel, TCPLikeTransport]:
    clock = Clock()
    channel = SmartSite(resource, reactor=clock).buildProtocol(PEER)
    assert isinstance(channel, SmartChannel)
    transport = TCPLikeTransport()
    channel.makeConnection(transport)
    return clock, channel, transport


def get(path: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"


class BadRequestHookTests(SynchronousTestCase):
    """
    C{HTTPChannel._respondToBadRequestAndDisconnect}, the one private hook.
    """

    def test_hook_exists(self) -> None:
        """
        HTTPChannel still has the hook, callable without arguments.
        """
        self.assertTrue(
            hasattr(http.HTTPChannel, HOOK),
            f"twisted.web.http.HTTPChannel.{HOOK} is gone: SmartChannel's override in "
            "smartdiscover/web/site.py no longer runs and malformed requests get "
            "Twisted's bare 400; find its replacement and move the override there")
        parameters = list(inspect.signature(getattr(http.HTTPChannel, HOOK)).parameters)
        self.assertEqual(
            parameters, ["self"],
            f"HTTPChannel.{HOOK} now takes {parameters}: update SmartChannel's override "
            "in smartdiscover/web/site.py to match")

    def test_twisted_calls_it(self) -> None:
        """
        Twisted answers every kind of malformed request through the hook:
        a channel whose hook records calls sees one call per request.
        """
        for name, data in MALFORMED.items():
            calls: list[str] = []
            _, channel, _ = connect(Answers())
            original = getattr(channel, HOOK)

            def recording(original: Callable[[], None] = original,
                          name: str = name) -> None:
                calls.append(name)
                original()

            setattr(channel, HOOK, recording)
            channel.dataReceived(data)
            self.assertEqual(
                calls, [name],
                f"{name}: Twisted no longer answers it through HTTPChannel.{HOOK}; the "
                "override in smartdiscover/web/site.py is bypassed")

    def test_override_answers(self) -> None:
        """
        What goes out for a malformed request is SmartChannel's 400 (with
        the security headers), not Twisted's bare one, and the connection
        closes.
        """
        for name, data in MALFORMED.items():
            _, channel, transport = connect(Answers())
            channel.dataReceived(data)
            written = transport.value()
            self.assertNotEqual(written, BARE_400,
                                f"{name}: Twisted's own 400 went out, not SmartChannel's")
            self.assertEqual(written, raw_response(b"400 Bad Request"), name)
            self.assertTrue(transport.disconnecting, name)


class AnsweringFlagTests(SynchronousTestCase):
    """
    SmartChannel's own flag for "a whole request is in, its answer is not
    done" (instead of HTTPChannel._handlingRequest), kept by the
    C{allContentReceived} and C{requestDone} hooks.
    """

    def test_pipelined_bytes_keep_the_response_deadline(self) -> None:
        """
        A quick request and a slow one arrive in one read; bytes of a
        third that arrive while the slow one is answered do not cut its
        C{RESPONSE_DEADLINE} to a request deadline.
        """
        resource = Answers()
        clock, channel, transport = connect(resource)
        channel.dataReceived(get(b"/quick") + get(b"/slow"))
        self.assertEqual(len(resource.pending), 1, "the slow request was not dispatched")
        clock.advance(1)
        channel.dataReceived(get(b"/third")[:5])
        clock.advance(RESPONSE_DEADLINE - 2)
        self.assertFalse(transport.aborted,
                         "bytes pipelined behind a request being answered shortened its "
                         "response deadline: allContentReceived/requestDone no longer "
                         "track the request being handled")
        clock.advance(1.5)
        self.assertTrue(transport.aborted, "the response deadline no longer holds")

    def test_next_request_gets_a_request_deadline(self) -> None:
        """
        Once the answer is out on a kept-alive connection, the first byte
        of the next request starts a full C{REQUEST_DEADLINE}.
        """
        resource = Answers()
        clock, channel, transport = connect(resource)
        channel.dataReceived(get(b"/slow"))
        [request] = resource.pending
        request.finish()
        clock.advance(KEEPALIVE_DEADLINE - 1)
        channel.dataReceived(get(b"/next")[:5])
        clock.advance(REQUEST_DEADLINE - 0.1)
        self.assertFalse(transport.aborted,
                         "the next request did not get its own request deadline")
        clock.advance(0.2)
        self.assertTrue(transport.aborted)


class NotifyFinishTests(SynchronousTestCase):
    """
    C{Request.notifyFinish}, which BasicAuthResource uses instead of
    C{Request._disconnected} to learn that the client went away.
    """

    def test_errback_when_the_client_leaves(self) -> None:
        """
        A request still being answered when its connection is lost fails
        its C{notifyFinish} Deferred.
        """
        resource = Answers()
        _, channel, _ = connect(resource)
        channel.dataReceived(get(b"/slow"))
        [request] = resource.pending
        failures: list[Failure] = []
        request.notifyFinish().addErrback(failures.append)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(failures), 1,
                         "notifyFinish no longer fails when the client leaves: "
                         "smartdiscover/web/basic_auth.py cannot tell it went away")

    def test_callback_when_answered(self) -> None:
        """
        A request answered normally fires C{notifyFinish} with C{None}.
        """
        resource = Answers()
        _, channel, _ = connect(resource)
        channel.dataReceived(get(b"/slow"))
        [request] = resource.pending
        results: list[object] = []
        request.notifyFinish().addBoth(results.append)
        request.finish()
        self.assertEqual(results, [None])
