"""
One HTTP exchange of the probe: no automatic redirects, TLS verified against
the host name of the URL, the body capped, the whole bounded in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import error as neterror
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import Cooperator
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

    from smartdiscover.health.conversation import IProbeReactor

MAX_BODY = 1024 * 1024
USER_AGENT = b"SmartDiscover probe"


class HTTPError(Exception):
    """
    No answer: the reason is short and human ("connection refused").
    """


@dataclass(frozen=True)
class Reply:
    code: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name.encode("ascii"))
        return values[0].decode("latin-1") if values else None

    def challenges(self) -> list[str]:
        return [v.decode("latin-1") for v in
                self.headers.getRawHeaders(b"WWW-Authenticate") or []]


class _Body(Protocol):
    def __init__(self, done: Deferred[bytes]) -> None:
        self._done = done
        self._parts: list[bytes] = []
        self._size = 0

    def dataReceived(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > MAX_BODY:
            assert self.transport is not None
            self.stop()
            if not self._done.called:
                self._done.errback(HTTPError(f"answer longer than {MAX_BODY} bytes"))
            return
        self._parts.append(data)

    def stop(self) -> None:
        """
        Read no more of the body.  Its transport is the response's
        IPushProducer (IResponse.deliverBody), which ITransport does not name.
        """
        if self.transport is not None:
            cast(IPushProducer, self.transport).stopProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._done.callback(b"".join(self._parts))
        else:
            self._done.errback(reason)


def _read(response: IResponse) -> Deferred[bytes]:
    def cancel(d: Deferred[bytes]) -> None:
        body.stop()
    done: Deferred[bytes] = Deferred(cancel)
    body = _Body(done)
    response.deliverBody(body)
    return done


async def request(reactor: IProbeReactor, method: bytes, url: str,
                  trust: IOpenSSLTrustRoot | None, timeout: float,
                  headers: dict[bytes, bytes] | None = None,
                  body: bytes | None = None) -> Reply:
    """
    Send one request; the connection is closed afterwards.

    @raise HTTPError: when no complete answer arrived within C{timeout}.
    """
    agent = Agent(reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=trust),
                  connectTimeout=timeout, pool=HTTPConnectionPool(reactor, persistent=False))
    all_headers = Headers({b"User-Agent": [USER_AGENT]})
    for name, value in (headers or {}).items():
        all_headers.setRawHeaders(name, [value])
    producer = _producer(reactor, body) if body is not None else None
    host = _host(url)
    try:
        d = agent.request(method, url.encode("ascii"), all_headers, producer)
        response = await d.addTimeout(timeout, reactor)
        data = await _read(response).addTimeout(timeout, reactor)
    except Exception as e:
        raise HTTPError(describe(e, host, timeout)) from None
    return Reply(response.code, response.headers, data)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:  # a port out of range, an unclosed [
        return url


def _producer(reactor: IReactorTime, body: bytes) -> FileBodyProducer:
    """
    C{body} written out on C{reactor}'s clock, not the global reactor's.
    """
    cooperator = Cooperator(scheduler=lambda work: reactor.callLater(0, work))
    return FileBodyProducer(BytesIO(body), cooperator=cooperator)


def describe(exc: BaseException, host: str, timeout: float) -> str:
    """
    A short, human reason for the failed exchange C{exc} with C{host}.
    """
    if isinstance(exc, (ResponseNeverReceived, ResponseFailed)) and exc.reasons:
        return describe(exc.reasons[0].value, host, timeout)
    if isinstance(exc, (DeferredTimeout, CancelledError, neterror.TimeoutError,
                        neterror.ConnectingCancelledError)):  # cancelled at the limit
        return f"no answer within {timeout:g} s"
    if isinstance(exc, HTTPError):
        return str(exc)
    if isinstance(exc, VerificationError):
        return f"certificate does not cover {host}"
    if isinstance(exc, SSL.Error):
        return "TLS error"
    if isinstance(exc, neterror.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, neterror.DNSLookupError):
        return f"cannot resolve {host}"
    if isinstance(exc, neterror.ConnectionDone | neterror.ConnectionLost):
        return "connection closed by the server"
    if isinstance(exc, neterror.ConnectError):
        return f"cannot connect: {exc.osError or type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}"
