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
import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import error as neterror
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import (
    IAddress,
    IHandshakeListener,
    IHostResolution,
    IOpenSSLClientConnectionCreator,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.ssl import optionsForClientTLS, platformTrust
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import (
    URI,
    Agent,
    BrowserLikePolicyForHTTPS,
    HTTPConnectionPool,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from smartdiscover.config.model import Security

if TYPE_CHECKING:  # the interface is not exported by twisted.internet.ssl
    from twisted.internet._sslverify import IOpenSSLTrustRoot

PROTOCOLS = frozenset({"smtp", "imap", "pop3", "xmpp", "sip", "https", "tcp"})
SIP_TRANSPORTS = frozenset({"udp", "tcp", "tls"})

_LIMIT = 64 * 1024  # the longest reply we buffer: greetings are a few hundred bytes
_CLOSE_GRACE = 1.0  # seconds a polite close may take before the connection is aborted
_SIP_T1 = 0.5  # RFC 3261 timer T1: the first UDP retransmission interval
_EHLO = b"EHLO smartdiscover.invalid\r\n"
_USER_AGENT = b"SmartDiscover health probe"
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


def probe(target: Target, reactor: Any, trust: IOpenSSLTrustRoot | None = None,
          timeout: float = 10.0) -> Deferred[ProbeResult]:
    """
    Probe C{target} within C{timeout} seconds, verifying TLS against
    C{trust} (the platform's roots when C{None}).  Never errbacks, and the
    connection is closed by the time the result arrives.
    """
    return Deferred.fromCoroutine(_Probe(target, reactor, trust, timeout).run())


_URL_MISSING = frozenset({404, 410})
_URL_THERE = frozenset({501})


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


class _Unexpected(Exception):
    """
    The server answered, but not as its protocol says: a verdict, not a bug.
    """


def _excerpt(data: bytes, limit: int = 60) -> str:
    """
    The first line of C{data}, printable and short, for an error message.
    """
    line = data.strip().split(b"\n", 1)[0].rstrip(b"\r")
    text = "".join(c if c.isprintable() else "?" for c in line[:limit].decode("latin-1"))
    return repr(text + ("..." if len(line) > limit else ""))


def _text(line: bytes) -> str:
    """
    A reply line as detail text.
    """
    return line.strip().decode("utf-8", "replace")[:200]


# Parsers: given the received bytes, the length of the first complete reply
# and the reply, or None while it is incomplete; _Unexpected for garbage.
Parser = Callable[[bytes], "tuple[int, bytes] | None"]

_SMTP_LINE = re.compile(rb"\d{3}(?:[ -]|$)")


def _line(buffer: bytes) -> tuple[int, bytes] | None:
    end = buffer.find(b"\n")
    if end < 0:
        return None
    return end + 1, buffer[:end].rstrip(b"\r")


def _smtp_reply(buffer: bytes) -> tuple[int, bytes] | None:
    """
    A complete SMTP reply: "250-..." lines up to a "250 ..." line.
    """
    start = 0
    while True:
        end = buffer.find(b"\n", start)
        line = buffer[start:] if end < 0 else buffer[start:end].rstrip(b"\r")
        if (end >= 0 or len(line) >= 4) and not _SMTP_LINE.match(line[:4]):
            raise _Unexpected(f"unexpected reply {_excerpt(line)}")
        if end < 0:
            return None
        if line[3:4] != b"-":
            return end + 1, buffer[:end + 1]
        start = end + 1


def _tagged(tag: bytes) -> Parser:
    """
    IMAP: untagged lines up to the line tagged C{tag}, which is the reply.
    """
    def parse(buffer: bytes) -> tuple[int, bytes] | None:
        start = 0
        while (found := _line(buffer[start:])) is not None:
            used, line = found
            start += used
            if line.startswith(tag + b" "):
                return start, line
            if not line.startswith((b"* ", b"+ ")):
                raise _Unexpected(f"unexpected reply {_excerpt(line)}")
        return None
    return parse


_FEATURES_END = re.compile(rb"<stream:features\s*/>|</stream:features\s*>")
_STREAM_ERROR = re.compile(rb"<stream:error\s*>\s*<([A-Za-z-]+)")


def _xml(buffer: bytes) -> None:
    """
    Reject a reply that is not XML, or is an XMPP stream error.
    """
    head = buffer.lstrip()[:1]
    if head and head != b"<":
        raise _Unexpected(f"unexpected reply {_excerpt(buffer)}")
    if error := _STREAM_ERROR.search(buffer):
        raise _Unexpected(f"stream error: {error.group(1).decode('ascii')}")


def _features(buffer: bytes) -> tuple[int, bytes] | None:
    """
    XMPP: the stream header and the <stream:features/> element.
    """
    _xml(buffer)
    if end := _FEATURES_END.search(buffer):
        return end.end(), buffer[buffer.find(b"<stream:features"):end.end()]
    if b"</stream:stream>" in buffer:
        raise _Unexpected("server closed the stream")
    return None


def _proceed(buffer: bytes) -> tuple[int, bytes] | None:
    """
    XMPP: <proceed/> after <starttls/>.
    """
    _xml(buffer)
    if found := re.search(rb"<proceed\b[^>]*>", buffer):
        return found.end(), found.group()
    if re.search(rb"<failure\b", buffer):
        raise _Unexpected("server refused STARTTLS")
    return None


_SIP_STATUS = re.compile(rb"SIP/2\.0 \d{3}\b")


def _sip_reply(buffer: bytes) -> tuple[int, bytes] | None:
    """
    A SIP status line: any status means a SIP server is there.
    """
    prefix = b"SIP/2.0 "
    if not prefix.startswith(buffer[:len(prefix)]):
        raise _Unexpected(f"unexpected reply {_excerpt(buffer)}")
    found = _line(buffer)
    if found is not None and not _SIP_STATUS.match(found[1]):
        raise _Unexpected(f"unexpected reply {_excerpt(found[1])}")
    return found


def _expect(reply: bytes, prefix: bytes, what: str) -> None:
    if not reply.upper().startswith(prefix):
        raise _Unexpected(f"unexpected {what} {_excerpt(reply)}")


@implementer(IHandshakeListener)
class _Session(Protocol):
    """
    One client connection read reply by reply: a read waits until the
    buffer holds a complete reply as its parser defines it.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._parser: Parser | None = None
        self._reply: Deferred[bytes] | None = None
        self._handshake: Deferred[None] | None = None
        self._handshaken = False
        self._closed: list[Deferred[None]] = []
        self._error: Failure | None = None
        self.gone = False

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def read(self, parser: Parser) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred(self._cancelled)
        self._parser, self._reply = parser, d
        self._feed()
        if self._reply is d and self._error is not None:
            self._parser = self._reply = None
            d.errback(self._error)
        return d

    def secure(self, creator: IOpenSSLClientConnectionCreator | None) -> Deferred[None]:
        """
        Wait for the TLS handshake, first starting it with C{creator}
        (STARTTLS); without one the connection was wrapped from the start.
        """
        d: Deferred[None] = Deferred(self._cancelled)
        if self._error is not None:
            d.errback(self._error)
            return d
        if creator is not None:
            self._buffer = b""  # never trust plain text sent before the upgrade
            assert self.transport is not None
            self.transport.startTLS(creator)
        if self._handshaken:
            d.callback(None)
        else:
            self._handshake = d
        return d

    def closed(self) -> Deferred[None]:
        """
        A Deferred that fires once the connection is gone.
        """
        if self.gone:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._closed.append(d)
        return d

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > _LIMIT:
            self._stop(Failure(_Unexpected(f"reply longer than {_LIMIT // 1024} KiB")))
            assert self.transport is not None
            self.transport.abortConnection()
        else:
            self._feed()

    def handshakeCompleted(self) -> None:
        self._handshaken = True
        d, self._handshake = self._handshake, None
        if d is not None:
            d.callback(None)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.gone = True
        self._stop(reason)
        waiting, self._closed = self._closed, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    def _feed(self) -> None:
        if self._parser is None or self._reply is None:
            return
        try:
            found = self._parser(self._buffer)
        except _Unexpected:
            self._stop(Failure())
            return
        if found is not None:
            used, message = found
            self._buffer = self._buffer[used:]
            d, self._parser, self._reply = self._reply, None, None
            d.callback(message)

    def _stop(self, reason: Failure) -> None:
        """
        Fail whatever waits, and every later wait, with C{reason}.
        """
        if self._error is None:
            self._error = reason
        reply, handshake = self._reply, self._handshake
        self._parser = self._reply = self._handshake = None
        for d in (reply, handshake):
            if d is not None:
                d.errback(self._error)

    def _cancelled(self, d: Deferred[Any]) -> None:
        if self._reply is d:
            self._parser = self._reply = None
        if self._handshake is d:
            self._handshake = None


class _Datagrams(DatagramProtocol):
    """
    A connected UDP socket waiting for one SIP status line.
    """

    def __init__(self) -> None:
        self.reply: Deferred[bytes] = Deferred()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if self.reply.called:
            return
        try:
            found = _sip_reply(datagram)
            if found is None:
                raise _Unexpected(f"unexpected reply {_excerpt(datagram)}")
        except _Unexpected as e:
            self.reply.errback(e)
        else:
            self.reply.callback(found[1])

    def connectionRefused(self) -> None:
        self.fail(neterror.ConnectionRefusedError())

    def fail(self, exc: BaseException) -> None:
        if not self.reply.called:
            self.reply.errback(exc)


@implementer(IOpenSSLClientConnectionCreator)
class _Recorder:
    """
    Client TLS options that keep the connection, to read the peer's
    certificate after the handshake (or after it failed).
    """

    def __init__(self, inner: IOpenSSLClientConnectionCreator) -> None:
        self._inner = inner
        self.connection: SSL.Connection | None = None

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        self.connection = self._inner.clientConnectionForTLS(tlsProtocol)
        return self.connection

    def peer_certificate(self) -> x509.Certificate | None:
        if self.connection is None:
            return None
        try:
            certificate = self.connection.get_peer_certificate(as_cryptography=True)
            if certificate is None:  # verification failed: the chain was still received
                chain = self.connection.get_peer_cert_chain(as_cryptography=True)
                certificate = chain[0] if chain else None
        except SSL.Error:
            return None
        return certificate


@implementer(IStreamClientEndpoint)
class _Recording:
    """
    An endpoint that hands each connected protocol to C{record}, so the
    probe can close what the HTTP agent opened.
    """

    def __init__(self, endpoint: IStreamClientEndpoint,
                 record: Callable[[Any], None]) -> None:
        self._endpoint = endpoint
        self._record = record

    def connect(self, factory: Factory) -> Deferred[Any]:
        def record(protocol: Any) -> Any:
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


@implementer(IResolutionReceiver)
class _Addresses:
    """
    Receives a host name resolution; C{result} fires with the first address.
    """

    def __init__(self, host: str) -> None:
        self._host = host
        self._found: list[str] = []
        self.result: Deferred[str] = Deferred()

    def resolutionBegan(self, resolution: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        self._found.append(address.host)  # type: ignore[attr-defined]

    def resolutionComplete(self) -> None:
        if self.result.called:  # cancelled by the deadline
            return
        if self._found:
            self.result.callback(self._found[0])
        else:
            self.result.errback(neterror.DNSLookupError(self._host))


class _Probe:
    """
    One probe: the conversation runs under one deadline; whatever it
    opened is closed before the verdict is handed back.
    """

    def __init__(self, target: Target, reactor: Any, trust: IOpenSSLTrustRoot | None,
                 timeout: float) -> None:
        self._target = target
        self._reactor = reactor
        self._trust = trust
        self._timeout = timeout
        self._deadline = 0.0
        self._expired = False
        self._stage = "the start"
        self._detail: str | None = None
        self._tls: _Recorder | None = None
        self._peer_host = target.host
        self._session: _Session | None = None
        self._udp: Any = None
        self._resend: Any = None
        self._http: list[Any] = []

    async def run(self) -> ProbeResult:
        start = self._reactor.seconds()
        problem = self._invalid()
        if problem is not None:
            return ProbeResult(False, 0.0, problem, None)
        self._deadline = start + self._timeout
        error: str | None = None
        work = Deferred.fromCoroutine(self._converse())
        timer = self._reactor.callLater(self._timeout, self._expire, work)
        try:
            await work
        except Exception as e:
            error = self._describe(e)
        finally:
            if timer.active():
                timer.cancel()
        latency = self._reactor.seconds() - start
        expires = self._expiry()
        # The verdict may have arrived inside a connectionLost: let it finish first.
        await deferLater(self._reactor, 0, lambda: None)
        try:
            await self._close()
        except Exception:
            _log.failure("while closing the probe of {host}:{port}",
                         host=self._target.host, port=self._target.port)
        return ProbeResult(error is None, latency, error, expires, self._detail)

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

    def _remaining(self) -> float:
        return max(self._deadline - self._reactor.seconds(), 0.0)

    async def _converse(self) -> None:
        t = self._target
        if t.protocol == "https":
            return await self._https()
        if t.protocol == "sip" and t.transport == "udp":
            return await self._sip_udp()
        implicit = t.security is Security.SSL or (t.protocol == "sip" and t.transport == "tls")
        self._stage = "the TCP connection"
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            self._reactor, t.host, t.port, timeout=max(self._remaining(), 0.01))
        if implicit:
            endpoint = wrapClientTLS(self._creator(t.host), endpoint)
        self._session = session = _Session()
        await connectProtocol(endpoint, session)
        if implicit:
            await self._handshake(session, None)
        await {"smtp": self._smtp, "imap": self._imap, "pop3": self._pop3,
               "xmpp": self._xmpp, "sip": self._sip, "tcp": self._tcp}[t.protocol](session)

    def _creator(self, host: str) -> _Recorder:
        self._peer_host = host
        self._tls = _Recorder(optionsForClientTLS(host, trustRoot=self._trust_root()))
        return self._tls

    def _trust_root(self) -> IOpenSSLTrustRoot:
        return self._trust if self._trust is not None else platformTrust()

    async def _handshake(self, session: _Session, creator: _Recorder | None) -> None:
        self._stage = "the TLS handshake"
        await session.secure(creator)

    async def _ask(self, session: _Session, command: bytes | None, parser: Parser,
                   stage: str) -> bytes:
        if command is not None:
            session.send(command)
        self._stage = stage
        return await session.read(parser)

    async def _smtp(self, s: _Session) -> None:
        greeting = await self._ask(s, None, _smtp_reply, "the greeting")
        self._detail = _text(greeting.split(b"\n", 1)[0])
        _expect(greeting, b"220", "greeting")
        ehlo = await self._ask(s, _EHLO, _smtp_reply, "the EHLO reply")
        _expect(ehlo, b"250", "EHLO reply")
        if self._target.security is Security.STARTTLS:
            keywords = {line[4:].split(b" ", 1)[0].strip().upper()
                        for line in ehlo.split(b"\n")}
            if b"STARTTLS" not in keywords:
                raise _Unexpected("server does not offer STARTTLS")
            reply = await self._ask(s, b"STARTTLS\r\n", _smtp_reply, "the STARTTLS reply")
            _expect(reply, b"220", "STARTTLS reply")
            await self._handshake(s, self._creator(self._target.host))
            ehlo = await self._ask(s, _EHLO, _smtp_reply, "the EHLO reply after STARTTLS")
            _expect(ehlo, b"250", "EHLO reply")
        s.send(b"QUIT\r\n")

    async def _imap(self, s: _Session) -> None:
        greeting = await self._ask(s, None, _line, "the greeting")
        self._detail = _text(greeting)
        _expect(greeting, b"* OK", "greeting")
        if self._target.security is Security.STARTTLS:
            reply = await self._ask(s, b"a1 STARTTLS\r\n", _tagged(b"a1"), "the STARTTLS reply")
            _expect(reply, b"A1 OK", "STARTTLS reply")
            await self._handshake(s, self._creator(self._target.host))
        reply = await self._ask(s, b"a2 CAPABILITY\r\n", _tagged(b"a2"), "the CAPABILITY reply")
        _expect(reply, b"A2 OK", "CAPABILITY reply")
        s.send(b"a3 LOGOUT\r\n")

    async def _pop3(self, s: _Session) -> None:
        greeting = await self._ask(s, None, _line, "the greeting")
        self._detail = _text(greeting)
        _expect(greeting, b"+OK", "greeting")
        if self._target.security is Security.STARTTLS:
            reply = await self._ask(s, b"STLS\r\n", _line, "the STLS reply")
            _expect(reply, b"+OK", "STLS reply")
            await self._handshake(s, self._creator(self._target.host))
        # The QUIT reply proves the (upgraded) channel works end to end.
        reply = await self._ask(s, b"QUIT\r\n", _line, "the QUIT reply")
        _expect(reply, b"+OK", "QUIT reply")

    async def _xmpp(self, s: _Session) -> None:
        domain = escape(self._target.domain or self._target.host, {"'": "&apos;"})
        header = (f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0'"
                  " xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                  ).encode("utf-8")
        features = await self._ask(s, header, _features, "the stream features")
        if self._target.security is Security.STARTTLS:
            if b"<starttls" not in features:
                raise _Unexpected("server does not offer STARTTLS")
            await self._ask(s, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                            _proceed, "the STARTTLS reply")
            await self._handshake(s, self._creator(self._target.host))
            await self._ask(s, header, _features, "the stream features after STARTTLS")
        self._detail = "stream features received"
        s.send(b"</stream:stream>")

    async def _sip(self, s: _Session) -> None:
        assert s.transport is not None
        local = s.transport.getHost()
        request = self._options(self._target.transport.upper(), local.host, local.port)
        reply = await self._ask(s, request, _sip_reply, "the OPTIONS reply")
        self._detail = _text(reply)

    async def _tcp(self, s: _Session) -> None:
        self._detail = "connected"

    def _options(self, transport: str, local_host: str, local_port: int) -> bytes:
        """
        An RFC 3261 OPTIONS request: asks a SIP server what it supports.
        """
        t = self._target
        sent_by = f"[{local_host}]" if ":" in local_host else local_host
        host = f"[{t.host}]" if ":" in t.host else t.host
        domain = t.domain or host
        lines = [f"OPTIONS sip:{host}:{t.port} SIP/2.0",
                 f"Via: SIP/2.0/{transport} {sent_by}:{local_port}"
                 f";branch=z9hG4bK{secrets.token_hex(8)};rport",
                 "Max-Forwards: 70",
                 f"From: <sip:probe@smartdiscover.invalid>;tag={secrets.token_hex(6)}",
                 f"To: <sip:{domain}>",
                 f"Call-ID: {secrets.token_hex(12)}@smartdiscover.invalid",
                 "CSeq: 1 OPTIONS",
                 f"User-Agent: {_USER_AGENT.decode('ascii')}",
                 "Accept: application/sdp",
                 "Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode("utf-8")

    async def _sip_udp(self) -> None:
        t = self._target
        self._stage = f"the address of {t.host}"
        try:
            address = str(ipaddress.ip_address(t.host))
        except ValueError:
            receiver = _Addresses(t.host)
            self._reactor.nameResolver.resolveHostName(receiver, t.host, t.port,
                                                       transportSemantics="UDP")
            address = await receiver.result
        datagrams = _Datagrams()
        self._udp = self._reactor.listenUDP(0, datagrams,
                                            interface="::" if ":" in address else "")
        assert datagrams.transport is not None
        datagrams.transport.connect(address, t.port)
        local = datagrams.transport.getHost()
        request = self._options("UDP", local.host, local.port)
        self._stage = "the OPTIONS reply"
        self._send_datagram(datagrams, request, _SIP_T1)
        try:
            reply = await datagrams.reply
        finally:
            if self._resend is not None and self._resend.active():
                self._resend.cancel()
        self._detail = _text(reply)

    def _send_datagram(self, datagrams: _Datagrams, request: bytes, interval: float) -> None:
        """
        Send C{request}, and again after C{interval} doubled each time (RFC
        3261 timer A), while the deadline allows: UDP may lose it.
        """
        try:
            assert datagrams.transport is not None
            datagrams.transport.write(request)
        except OSError as e:
            datagrams.fail(e)
            return
        if interval < self._remaining():
            self._resend = self._reactor.callLater(interval, self._send_datagram,
                                                   datagrams, request, interval * 2)

    async def _https(self) -> None:
        """
        GET the URL: a service is there when it answers, even 401 or 403
        (it wants credentials) or 405/501 (it wants another method); 404
        and 410 mean the advertised URL is wrong, other 5xx that it fails.
        """
        t = self._target
        host = f"[{t.host}]" if ":" in t.host else t.host
        url = t.url or f"https://{host}:{t.port}/"
        pool = HTTPConnectionPool(self._reactor, persistent=False)
        agent = Agent.usingEndpointFactory(self._reactor, _Endpoints(self._http_endpoint),
                                           pool=pool)
        self._stage = "the HTTP response"
        response = await agent.request(b"GET", url.encode("ascii"),
                                       Headers({b"User-Agent": [_USER_AGENT]}))
        # The body is never read: closing the connection drops it.
        self._detail = f"HTTP {response.code}"
        if response.code in _URL_MISSING or (response.code >= 500
                                             and response.code not in _URL_THERE):
            raise _Unexpected(self._detail)

    def _http_endpoint(self, uri: URI) -> IStreamClientEndpoint:
        self._peer_host = uri.host.decode("ascii")
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            self._reactor, uri.host, uri.port, timeout=max(self._remaining(), 0.01))
        if uri.scheme == b"https":
            policy = BrowserLikePolicyForHTTPS(trustRoot=self._trust_root())
            self._tls = _Recorder(policy.creatorForNetloc(uri.host, uri.port))
            endpoint = wrapClientTLS(self._tls, endpoint)
        return _Recording(endpoint, self._http.append)

    def _expiry(self) -> datetime.datetime | None:
        certificate = self._tls.peer_certificate() if self._tls is not None else None
        return certificate.not_valid_after_utc if certificate is not None else None

    async def _close(self) -> None:
        """
        Close what the probe opened: politely after a verdict (bounded by
        the deadline and a grace), at once after the deadline.
        """
        grace = 0.0 if self._expired else min(_CLOSE_GRACE, self._remaining())
        session = self._session
        if session is not None and session.transport is not None and not session.gone:
            await self._shut(session.transport, session.closed, grace)
        for protocol in self._http:  # HTTP11ClientProtocol.abort waits for the close
            await self._shut(protocol.transport, protocol.abort, grace)
        if self._udp is not None:
            await self._within(maybeDeferred(self._udp.stopListening), _CLOSE_GRACE)

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
            await d.addTimeout(seconds, self._reactor)
        except (DeferredTimeout, CancelledError):
            return False
        return True

    def _describe(self, exc: BaseException) -> str:
        """
        A short, human reason for the failure C{exc}.
        """
        if self._expired or isinstance(exc, (DeferredTimeout, neterror.TimeoutError)):
            return f"timed out after {self._timeout:g} s waiting for {self._stage}"
        if isinstance(exc, (ResponseNeverReceived, ResponseFailed)) and exc.reasons:
            return self._describe(exc.reasons[0].value)
        if isinstance(exc, _Unexpected):
            return str(exc)
        if isinstance(exc, VerificationError):
            return f"certificate does not match {self._peer_host}"
        if isinstance(exc, SSL.Error):
            return self._tls_error(exc)
        if isinstance(exc, neterror.ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, neterror.DNSLookupError):
            return f"cannot resolve {self._peer_host}"
        if isinstance(exc, neterror.NoRouteError):
            return "no route to host"
        if isinstance(exc, neterror.ConnectionClosed):
            return f"connection closed by the server while waiting for {self._stage}"
        if isinstance(exc, neterror.ConnectError):
            return f"cannot connect: {exc.osError or type(exc).__name__}"
        if isinstance(exc, UnicodeError) or (  # refused by idna or by HostnameEndpoint
                isinstance(exc, ValueError) and str(exc).startswith("invalid hostname")):
            return f"invalid host name {self._peer_host!r}"
        if isinstance(exc, OSError):
            return f"network error: {exc.strerror or exc}"
        _log.failure("probing {host}:{port}", Failure(exc),
                     host=self._target.host, port=self._target.port)
        return f"internal error: {type(exc).__name__}"

    def _tls_error(self, exc: SSL.Error) -> str:
        reasons = [r[2] for r in (exc.args[0] if exc.args else [])
                   if isinstance(r, tuple) and len(r) == 3 and r[2]]
        if "certificate verify failed" in reasons:
            return self._untrusted()
        text = f" ({', '.join(reasons)})" if reasons else ""
        if self._stage == "the TLS handshake":
            return "TLS handshake failed" + text
        return "TLS error" + text

    def _untrusted(self) -> str:
        """
        Why the trust root refused the certificate, guessed from what the
        server sent: pyOpenSSL does not expose the verification error.
        """
        certificate = self._tls.peer_certificate() if self._tls is not None else None
        if certificate is None:
            return "certificate is not trusted"
        now = datetime.datetime.fromtimestamp(self._reactor.seconds(), datetime.timezone.utc)
        if certificate.not_valid_after_utc < now:
            return f"certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
        if certificate.not_valid_before_utc > now:
            return f"certificate is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
        if certificate.issuer == certificate.subject:
            return "self-signed certificate is not trusted"
        names = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
        issuer = names[0].value if names else certificate.issuer.rfc4514_string()
        return f"certificate issued by {issuer!s} is not trusted"
