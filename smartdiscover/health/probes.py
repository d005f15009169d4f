"""
Probes of advertised endpoints: connect, verify TLS against the advertised
name (service_identity), speak the protocol's greeting, all within one
deadline and without blocking the reactor.

Every outcome is a L{ProbeResult}: a broken server is an answer, not an
error, so the health service and the probe command never handle exceptions
and never log tracebacks for refused ports, timeouts or bad certificates.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Coroutine

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import error as neterror
from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed, ResponseNeverReceived

from smartdiscover.config.model import Security
from smartdiscover.health.addresses import NotPublished, Unreachable
from smartdiscover.health.conversation import Conversation, IProbeReactor
from smartdiscover.health.https import https
from smartdiscover.health.mail import imap, pop3, smtp
from smartdiscover.health.session import Unexpected
from smartdiscover.health.sip import sip
from smartdiscover.health.tls import tls_error
from smartdiscover.health.xmpp import xmpp

if TYPE_CHECKING:  # the interface is not exported by twisted.internet.ssl
    from twisted.internet._sslverify import IOpenSSLTrustRoot


async def _tcp(c: Conversation) -> None:
    await c.connect()
    c.detail = "connected"


_CONVERSATIONS: dict[str, Callable[[Conversation], Coroutine[Any, Any, None]]] = {
    "smtp": smtp, "imap": imap, "pop3": pop3, "xmpp": xmpp, "sip": sip, "https": https,
    "tcp": _tcp}
PROTOCOLS = frozenset(_CONVERSATIONS)
SIP_TRANSPORTS = frozenset({"udp", "tcp", "tls"})

_UNSAFE = re.compile(r"[\s<>'\"\\\x00-\x1f\x7f]")  # would corrupt a SIP or XMPP header

_log = Logger()


@dataclass(frozen=True)
class Target:
    """
    What to probe: one advertised endpoint.
    """

    protocol: str  # "smtp" | "imap" | "pop3" | "xmpp" | "sip" | "https" | "tcp"
    host: str
    port: int
    security: Security  # SSL (implicit TLS), STARTTLS, NONE
    transport: str = "tcp"  # sip only: "udp" | "tcp" | "tls"
    url: str | None = None  # https only: the URL to GET (default https://host:port/)
    domain: str | None = None  # xmpp: the 'to' of the stream; sip: the To URI
    # The addresses a served zone publishes for host, in order (probed
    # instead of asking the system resolver; empty: the zone has none);
    # None when no served zone holds host.
    addresses: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ProbeResult:
    """
    The verdict on one endpoint, with what an administrator needs to fix it.
    """

    ok: bool
    latency: float  # seconds from start to verdict
    error: str | None  # short and human: "connection refused", "HTTP 503"
    certificate_expires: datetime.datetime | None  # the peer's notAfter (UTC) if TLS was used
    detail: str | None = None  # "HTTP 401", "220 mail.example.test ESMTP"


def probe(target: Target, reactor: IProbeReactor, trust: IOpenSSLTrustRoot | None = None,
          timeout: float = 10.0) -> Deferred[ProbeResult]:
    """
    Probe C{target} within C{timeout} seconds, verifying TLS against
    C{trust} (the platform's roots when C{None}).  Never errbacks, and the
    connection is closed by the time the result arrives.
    """
    return Deferred.fromCoroutine(_Probe(target, reactor, trust, timeout).run())


def days_left(expires: datetime.datetime, now: datetime.datetime) -> float:
    """
    Days from C{now} until C{expires}, negative once expired: what expiry
    warnings and the metric compare.  Naive datetimes are taken as UTC.
    """
    return (_utc(expires) - _utc(now)).total_seconds() / 86400


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.timezone.utc)
    return moment


class _Probe:
    """
    One probe: the conversation runs under one deadline; whatever it
    opened is closed before the verdict is handed back.
    """

    def __init__(self, target: Target, reactor: IProbeReactor,
                 trust: IOpenSSLTrustRoot | None, timeout: float) -> None:
        self._target = target
        self._reactor = reactor
        self._trust = trust
        self._timeout = timeout
        self._expired = False

    async def run(self) -> ProbeResult:
        start = self._reactor.seconds()
        problem = self._invalid()
        if problem is not None:
            return ProbeResult(False, 0.0, problem, None)
        c = Conversation(self._target, self._reactor, self._trust, start + self._timeout)
        error: str | None = None
        work = Deferred.fromCoroutine(_CONVERSATIONS[self._target.protocol](c))
        timer = self._reactor.callLater(self._timeout, self._expire, work)
        try:
            await work
        except Exception as e:
            error = self._describe(c, e)
        finally:
            if timer.active():
                timer.cancel()
        latency = self._reactor.seconds() - start
        certificate = c.certificate()
        expires = certificate.not_valid_after_utc if certificate is not None else None
        # The verdict may have arrived inside a connectionLost: let it finish first.
        await deferLater(self._reactor, 0, lambda: None)
        try:
            await c.close(self._expired)
        except Exception:
            _log.failure("while closing the probe of {host}:{port}",
                         host=self._target.host, port=self._target.port)
        return ProbeResult(error is None, latency, error, expires, c.detail)

    def _invalid(self) -> str | None:
        """
        Why C{target} cannot be probed, or None.
        """
        t = self._target
        if t.protocol not in PROTOCOLS:
            return f"unknown protocol {t.protocol!r}"
        uses_url = t.protocol == "https" and t.url is not None  # host and port unused
        if not uses_url and (not t.host or _UNSAFE.search(t.host)):
            return "invalid host name"
        if t.domain and _UNSAFE.search(t.domain):
            return "invalid domain"
        if not uses_url and not 0 < t.port < 65536:
            return f"invalid port {t.port}"
        if self._timeout <= 0:
            return "invalid timeout"
        if t.protocol == "sip":
            if t.transport not in SIP_TRANSPORTS:
                return f"unknown SIP transport {t.transport!r}"
            if t.security is Security.STARTTLS:
                return "SIP has no STARTTLS: use the tls transport"
        if t.protocol == "https" and t.url is not None:
            if (not t.url.isascii() or re.search(r"[\s\x00-\x1f\x7f]", t.url)
                    or not t.url.startswith(("https://", "http://"))):
                return "invalid URL"
        return None

    def _expire(self, work: Deferred[None]) -> None:
        self._expired = True
        work.cancel()

    def _describe(self, c: Conversation, exc: BaseException) -> str:
        """
        A short, human reason for the failure C{exc}.
        """
        if self._expired or isinstance(exc, (DeferredTimeout, neterror.TimeoutError)):
            attempts = c.attempts
            if attempts is None or attempts.connected is not None:
                return f"timed out after {self._timeout:g} s waiting for {c.stage}"
            # Still connecting: to which addresses, and why the others failed.
            failed = attempts.failed()
            return (f"timed out after {self._timeout:g} s waiting for {attempts.waiting()}"
                    + (f"; {failed}" if failed else ""))
        if isinstance(exc, Unreachable):
            return str(exc)
        if isinstance(exc, NotPublished):
            return f"cannot resolve {c.peer_host}: its served zone publishes no address for it"
        if isinstance(exc, (ResponseNeverReceived, ResponseFailed)) and exc.reasons:
            return self._describe(c, exc.reasons[0].value)
        if isinstance(exc, Unexpected):
            return str(exc)
        if isinstance(exc, VerificationError):
            return f"certificate does not match {c.peer_host}"
        if isinstance(exc, SSL.Error):
            now = datetime.datetime.fromtimestamp(self._reactor.seconds(), datetime.timezone.utc)
            return tls_error(exc, c.stage == "the TLS handshake", c.certificate(), now)
        if isinstance(exc, neterror.ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, neterror.DNSLookupError):
            return f"cannot resolve {c.peer_host}"
        if isinstance(exc, neterror.NoRouteError):
            return "no route to host"
        if isinstance(exc, neterror.ConnectionClosed):
            return f"connection closed by the server while waiting for {c.stage}"
        if isinstance(exc, neterror.ConnectError):
            return f"cannot connect: {exc.osError or type(exc).__name__}"
        if isinstance(exc, UnicodeError) or (  # refused by idna or by HostnameEndpoint
                isinstance(exc, ValueError) and str(exc).startswith("invalid hostname")):
            return f"invalid host name {c.peer_host!r}"
        if isinstance(exc, OSError):
            return f"network error: {exc.strerror or exc}"
        _log.failure("probing {host}:{port}", Failure(exc),
                     host=self._target.host, port=self._target.port)
        return f"internal error: {type(exc).__name__}"
