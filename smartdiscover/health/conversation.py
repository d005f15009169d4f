"""
What one probe's conversation holds whatever the protocol: the target and
its deadline, what is awaited (for the timeout message), the detail for
the administrator, the TLS options that saw the certificate, the addresses
its connection tried (L{Attempts}), and whatever was opened, so that all
of it is closed before the verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from cryptography import x509
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.endpoints import connectProtocol, wrapClientTLS
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorPluggableNameResolver,
    IReactorUDP,
    IStreamClientEndpoint,
)
from twisted.internet.ssl import optionsForClientTLS, platformTrust

from smartdiscover.config.model import Security
from smartdiscover.health.addresses import (
    AddressesEndpoint,
    Attempts,
    IConnectingReactor,
    ZoneResolver,
)
from smartdiscover.health.session import Parser, Session
from smartdiscover.health.tls import Recorder

if TYPE_CHECKING:  # the interface is not exported by twisted.internet.ssl
    from twisted.internet._sslverify import IOpenSSLTrustRoot

    from smartdiscover.health.probes import Target

USER_AGENT = "SmartDiscover health probe"
_CLOSE_GRACE = 1.0  # seconds a polite close may take before the connection is aborted


class IProbeReactor(IReactorUDP, IConnectingReactor, IReactorPluggableNameResolver):
    """
    What a probe needs of the reactor: names outside the served zones are
    resolved by its C{nameResolver}; L{AddressesEndpoint} connects over TCP
    and times out; SIP over UDP listens itself.

    zope.interface has no intersection type, so this names one, as
    Twisted's own C{IDistTrialReactor} does; a reactor need not declare it.
    """


class Conversation:
    """
    One probe's exchange with one endpoint, under one deadline.
    """

    def __init__(self, target: Target, reactor: IProbeReactor,
                 trust: IOpenSSLTrustRoot | None, deadline: float) -> None:
        self.target = target
        self.reactor = reactor
        self._trust = trust
        self._deadline = deadline
        self.stage = "the start"
        self.detail: str | None = None
        self.tls: Recorder | None = None
        self.peer_host = target.host
        self.session: Session | None = None
        self.udp: IListeningPort | None = None
        self.http: list[Any] = []
        self.attempts: Attempts | None = None  # of the last connection
        # The target's host at the addresses its served zone publishes; any
        # other name by the reactor's resolver (read when a name needs it).
        published = {target.host: target.addresses} if target.addresses is not None else {}
        self.resolver = ZoneResolver(published, lambda: reactor.nameResolver)

    def remaining(self) -> float:
        return max(self._deadline - self.reactor.seconds(), 0.0)

    def trust_root(self) -> IOpenSSLTrustRoot:
        return self._trust if self._trust is not None else platformTrust()

    def tls_options(self, host: str) -> Recorder:
        """
        Client TLS options verifying C{host}, kept to read its certificate.
        """
        self.peer_host = host
        self.tls = Recorder(optionsForClientTLS(host, trustRoot=self.trust_root()))
        return self.tls

    def certificate(self) -> x509.Certificate | None:
        return self.tls.peer_certificate() if self.tls is not None else None

    def endpoint(self, host: str | bytes, port: int) -> IStreamClientEndpoint:
        """
        A TCP endpoint to C{host} at the addresses its served zone publishes,
        else the system resolver's, recording its attempts in L{attempts}.
        The probe's own timer ends it at the deadline: each attempt's
        timeout is a little longer, so that the timer, which knows what was
        awaited, always speaks first.
        """
        name = host.decode("ascii", "backslashreplace") if isinstance(host, bytes) else host
        self.attempts = Attempts(name)
        return AddressesEndpoint(self.reactor, self.resolver, name, port,
                                 self.remaining() + _CLOSE_GRACE, self.attempts)

    async def connect(self, tls: bool = False) -> Session:
        """
        Connect to the target, with TLS from the first byte when asked or
        when the target's security is SSL.
        """
        t = self.target
        implicit = tls or t.security is Security.SSL
        self.stage = "the TCP connection"
        endpoint = self.endpoint(t.host, t.port)
        if implicit:
            endpoint = wrapClientTLS(self.tls_options(t.host), endpoint)
        self.session = session = Session()
        await connectProtocol(endpoint, session)
        if implicit:
            await self.handshake(session, None)
        return session

    async def handshake(self, session: Session, creator: Recorder | None) -> None:
        self.stage = "the TLS handshake"
        await session.secure(creator)

    async def ask(self, session: Session, command: bytes | None, parser: Parser,
                  stage: str) -> bytes:
        if command is not None:
            session.send(command)
        self.stage = stage
        return await session.read(parser)

    async def close(self, expired: bool) -> None:
        """
        Close what the conversation opened: politely after a verdict
        (bounded by the deadline and a grace), at once after the deadline.
        """
        grace = 0.0 if expired else min(_CLOSE_GRACE, self.remaining())
        session = self.session
        if session is not None and session.transport is not None and not session.gone:
            await self._shut(session.transport, session.closed, grace)
        for protocol in self.http:  # HTTP11ClientProtocol.abort waits for the close
            await self._shut(protocol.transport, protocol.abort, grace)
        if self.udp is not None:
            await self._within(maybeDeferred(self.udp.stopListening), _CLOSE_GRACE)

    async def _shut(self, transport: Any, closed: Callable[[], Deferred[None]],
                    grace: float) -> None:
        """
        Close C{transport} within C{grace} seconds, else abort it.
        """
        if grace > 0:
            transport.loseConnection()
            if await self._within(closed(), grace):
                return
        if transport.connected:
            transport.abortConnection()
        await self._within(closed(), _CLOSE_GRACE)

    async def _within(self, d: Deferred[Any], seconds: float) -> bool:
        """
        Whether C{d} fired within C{seconds}.
        """
        if d.called:
            await d
            return True
        if seconds <= 0:
            d.cancel()
            d.addErrback(lambda _: None)
            return False
        try:
            await d.addTimeout(seconds, self.reactor)
        except (DeferredTimeout, CancelledError):
            return False
        return True
