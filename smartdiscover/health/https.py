"""
The HTTPS probe: one GET of the advertised URL, its status the verdict,
its body never read.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import wrapClientTLS
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.web.client import URI, Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from smartdiscover.health.conversation import USER_AGENT, Conversation
from smartdiscover.health.session import Unexpected
from smartdiscover.health.tls import Recorder

_URL_MISSING = frozenset({404, 410})
_URL_THERE = frozenset({501})


@implementer(IStreamClientEndpoint)
class _Recording:
    """
    An endpoint that hands each connected protocol to C{record}, so the
    probe can close what the HTTP agent opened.
    """

    def __init__(self, endpoint: IStreamClientEndpoint,
                 record: Callable[[IProtocol], None]) -> None:
        self._endpoint = endpoint
        self._record = record

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        def record(protocol: IProtocol) -> IProtocol:
            self._record(protocol)
            return protocol
        return self._endpoint.connect(factory).addCallback(record)


@implementer(IAgentEndpointFactory)
class _Endpoints:
    """
    The agent's connections, made by the probe.
    """

    def __init__(self, endpoint_for: Callable[[URI], IStreamClientEndpoint]) -> None:
        self.endpointForURI = endpoint_for


async def https(c: Conversation) -> None:
    """
    GET the URL: a service is there when it answers, even 401 or 403
    (it wants credentials) or 405/501 (it wants another method); 404
    and 410 mean the advertised URL is wrong, other 5xx that it fails.
    """
    t = c.target
    host = f"[{t.host}]" if ":" in t.host else t.host
    url = t.url or f"https://{host}:{t.port}/"
    pool = HTTPConnectionPool(c.reactor, persistent=False)

    def endpoint_for(uri: URI) -> IStreamClientEndpoint:
        c.peer_host = uri.host.decode("ascii")
        endpoint = c.endpoint(uri.host, uri.port)
        if uri.scheme == b"https":
            policy = BrowserLikePolicyForHTTPS(trustRoot=c.trust_root())
            c.tls = Recorder(policy.creatorForNetloc(uri.host, uri.port))
            endpoint = wrapClientTLS(c.tls, endpoint)
        return _Recording(endpoint, c.http.append)

    agent = Agent.usingEndpointFactory(c.reactor, _Endpoints(endpoint_for), pool=pool)
    c.stage = "the HTTP response"
    response = await agent.request(b"GET", url.encode("ascii"),
                                   Headers({b"User-Agent": [USER_AGENT.encode("ascii")]}))
    # The body is never read: closing the connection drops it.
    c.detail = f"HTTP {response.code}"
    if response.code in _URL_MISSING or (response.code >= 500
                                         and response.code not in _URL_THERE):
        raise Unexpected(c.detail)
