"""
The health probes (issue 7, sections 1 and 5) against real servers on
loopback, built here with Twisted: greeters for SMTP, IMAP, POP3, XMPP and
SIP, and an HTTPS site; TLS from the first byte and by STARTTLS; a
certificate for the wrong name, an untrusted and an expired one; a closed
port, a silent server and one that answers garbage.  After every probe the
server must have seen its connection close.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.ssl import Certificate, CertificateOptions, trustRootFromCertificates
from twisted.internet.task import Clock
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from smartdiscover.config.model import Security
from smartdiscover.health.probes import ProbeResult, Target, days_left, probe
from smartdiscover.web.devcert import create_development_certificate

SSL, STARTTLS, NONE = Security.SSL, Security.STARTTLS, Security.NONE
NOW = datetime.datetime.now(datetime.timezone.utc)


def _options(certificate: x509.Certificate, key: Any) -> CertificateOptions:
    return CertificateOptions(privateKey=key, certificate=certificate)


def _development() -> tuple[x509.Certificate, Any]:
    """
    A development certificate (a self-signed CA covering localhost) and its key.
    """
    with tempfile.TemporaryDirectory() as directory:
        cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
        create_development_certificate(cert, key, ["mail.example.test"])
        return (x509.load_pem_x509_certificate(cert.read_bytes()),
                serialization.load_pem_private_key(key.read_bytes(), None))


def _leaf(ca: x509.Certificate, ca_key: Any, names: list[str],
          not_after: datetime.datetime) -> tuple[x509.Certificate, Any]:
    """
    A server certificate for C{names} issued by C{ca}.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - datetime.timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


class Certificates:
    """
    The trusted development CA (also the good server certificate), leaves
    it issued for the wrong name and already expired, and a second
    development certificate nobody trusts.
    """

    def __init__(self) -> None:
        ca, ca_key = _development()
        self.expires = ca.not_valid_after_utc
        self.trust = trustRootFromCertificates(
            [Certificate.loadPEM(ca.public_bytes(serialization.Encoding.PEM))])
        self.good = _options(ca, ca_key)
        self.wrong_name = _options(*_leaf(ca, ca_key, ["other.example.test"],
                                          NOW + datetime.timedelta(days=30)))
        expired, key = _leaf(ca, ca_key, ["localhost"], NOW - datetime.timedelta(days=2))
        self.expired_on = expired.not_valid_after_utc
        self.expired = _options(expired, key)
        self.untrusted = _options(*_development())


CERTIFICATES = Certificates()


class Tracking(WrappingFactory):
    """
    Counts a server's connections, so a test can wait for all to close.
    """

    def __init__(self, wrapped: Factory) -> None:
        super().__init__(wrapped)
        self.accepted = 0
        self._idle: list[Deferred[None]] = []

    def registerProtocol(self, p: Any) -> None:
        super().registerProtocol(p)
        self.accepted += 1

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        if not self.protocols:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)

    def idle(self) -> Deferred[None]:
        """
        Fires when no connection is open; fails after 2 s.
        """
        if not self.protocols:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idle.append(d)
        return d.addTimeout(2, reactor)


class Greeter(LineReceiver):
    """
    A line server: C{greeting} on connect, C{answer} per line, and
    server-side STARTTLS with the factory's certificate.
    """

    greeting = b""
    factory: Any

    def connectionMade(self) -> None:
        self.secure = self.factory.implicit
        if self.greeting:
            self.sendLine(self.greeting)

    def upgrade(self) -> None:
        self.transport.startTLS(self.factory.tls)
        self.secure = True
        self.factory.upgraded += 1

    def lineReceived(self, line: bytes) -> None:
        self.factory.lines.append(line)
        self.answer(line)

    def answer(self, line: bytes) -> None:
        raise NotImplementedError


class SMTP(Greeter):
    greeting = b"220 mail.example.test ESMTP test"

    def answer(self, line: bytes) -> None:
        verb = line.split(b" ")[0].upper()
        if verb == b"EHLO":
            keywords = [b"mail.example.test", b"PIPELINING"]
            if self.factory.offer_starttls and not self.secure:
                keywords.append(b"STARTTLS")
            keywords.append(b"8BITMIME")
            for keyword in keywords[:-1]:
                self.sendLine(b"250-" + keyword)
            self.sendLine(b"250 " + keywords[-1])
        elif verb == b"STARTTLS":
            self.sendLine(b"220 2.0.0 ready to start TLS")
            self.upgrade()
        elif verb == b"QUIT":
            self.sendLine(b"221 2.0.0 bye")
            self.transport.loseConnection()
        else:
            self.sendLine(b"500 5.5.2 what?")


class IMAP(Greeter):
    greeting = b"* OK [CAPABILITY IMAP4rev1 STARTTLS] test ready"

    def answer(self, line: bytes) -> None:
        tag, _, rest = line.partition(b" ")
        command = rest.split(b" ")[0].upper()
        if command == b"CAPABILITY":
            self.sendLine(b"* CAPABILITY IMAP4rev1" + (b"" if self.secure else b" STARTTLS"))
            self.sendLine(tag + b" OK CAPABILITY completed")
        elif command == b"STARTTLS":
            self.sendLine(tag + b" OK Begin TLS negotiation now")
            self.upgrade()
        elif command == b"LOGOUT":
            self.sendLine(b"* BYE logging out")
            self.sendLine(tag + b" OK LOGOUT completed")
            self.transport.loseConnection()
        else:
            self.sendLine(tag + b" BAD unknown command")


class POP3(Greeter):
    greeting = b"+OK POP3 test ready"

    def answer(self, line: bytes) -> None:
        command = line.split(b" ")[0].upper()
        if command == b"STLS":
            self.sendLine(b"+OK Begin TLS negotiation")
            self.upgrade()
        elif command == b"QUIT":
            self.sendLine(b"+OK bye")
            self.transport.loseConnection()
        else:
            self.sendLine(b"-ERR unknown command")


class XMPP(Protocol):
    """
    Answers a stream header with stream features (offering STARTTLS until
    the stream is secure) and <starttls/> with <proceed/>.
    """

    factory: Any

    def connectionMade(self) -> None:
        self.secure = self.factory.implicit
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"<starttls" in self.buffer:
            self.buffer = b""
            self.transport.write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self.transport.startTLS(self.factory.tls)
            self.secure = True
            self.factory.upgraded += 1
        elif b"<stream:stream" in self.buffer and self.buffer.endswith(b">"):
            self.factory.lines.append(self.buffer)
            self.buffer = b""
            starttls = (b"" if self.secure else b"<starttls"
                        b" xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
            self.transport.write(
                b"<?xml version='1.0'?><stream:stream from='example.test' id='s1'"
                b" version='1.0' xmlns='jabber:client'"
                b" xmlns:stream='http://etherx.jabber.org/streams'><stream:features>"
                + starttls + b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                b"<mechanism>PLAIN</mechanism></mechanisms></stream:features>")
        elif b"</stream:stream>" in self.buffer:
            self.transport.write(b"</stream:stream>")
            self.transport.loseConnection()


SIP_OK = (b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nAllow: INVITE, OPTIONS\r\n"
          b"Content-Length: 0\r\n\r\n")


class SIPStream(Protocol):
    """
    Answers a SIP request over TCP or TLS with 200 OK.
    """

    factory: Any

    def connectionMade(self) -> None:
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:
            self.factory.lines.append(self.buffer)
            self.transport.write(SIP_OK)


class SIPDatagrams(DatagramProtocol):
    """
    Answers SIP requests over UDP with 200 OK, or records them silently.
    """

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.requests: list[bytes] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.requests.append(datagram)
        if self.answer:
            self.transport.write(SIP_OK, addr)


class Wire:
    """
    The probe's connected UDP socket on a L{DatagramClock}: what it writes
    reaches C{peer} at once.
    """

    def __init__(self, peer: DatagramProtocol) -> None:
        self.peer = peer
        self.address = IPv4Address("UDP", "127.0.0.1", 40000)

    def connect(self, host: str, port: int) -> None:
        pass

    def getHost(self) -> IPv4Address:
        return self.address

    def write(self, datagram: bytes, addr: Any = None) -> None:
        self.peer.datagramReceived(datagram, (self.address.host, self.address.port))

    def stopListening(self) -> None:
        pass


class DatagramClock(Clock):
    """
    A reactor of time and UDP alone: time moves only when the test says,
    so what a probe sends within its timeout does not depend on the load.
    """

    def __init__(self, peer: DatagramProtocol) -> None:
        super().__init__()
        self.peer = peer

    def listenUDP(self, port: int, protocol: DatagramProtocol, interface: str = "",
                  maxPacketSize: int = 8192) -> Wire:
        wire = Wire(self.peer)
        protocol.makeConnection(wire)
        return wire


class Garbage(Protocol):
    """
    Answers every connection with something that is not the protocol.
    """

    reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"

    def connectionMade(self) -> None:
        self.transport.write(self.reply)


class Endless(Protocol):
    """
    Sends 100 KiB without a line end.
    """

    def connectionMade(self) -> None:
        self.transport.write(b"x" * 100 * 1024)


class Status(Resource):
    isLeaf = True

    def __init__(self, code: int, size: int = 2) -> None:
        super().__init__()
        self.code, self.size = code, size

    def render_GET(self, request: Any) -> bytes:
        request.setResponseCode(self.code)
        return b"x" * self.size


def _site() -> Site:
    root = Resource()
    for name, code in ((b"ok", 200), (b"auth", 401), (b"forbidden", 403), (b"down", 503),
                       (b"missing", 404), (b"method", 501)):
        root.putChild(name, Status(code))
    root.putChild(b"big", Status(200, 8 * 1024 * 1024))
    return Site(root)


class ProbeTests(TestCase):
    """
    Real probes against real servers on loopback.
    """

    def serve(self, factory: Factory, tls: CertificateOptions | None = None,
              starttls: CertificateOptions | None = None,
              offer_starttls: bool = True) -> tuple[Tracking, int]:
        """
        Listen on loopback with C{factory}, implicit TLS with C{tls}; the
        factory's protocols use C{starttls} (default: the good certificate).
        """
        factory.tls = starttls or CERTIFICATES.good
        factory.implicit = tls is not None
        factory.offer_starttls = offer_starttls
        factory.upgraded = 0
        factory.lines = []
        inner = factory if tls is None else TLSMemoryBIOFactory(tls, False, factory)
        tracking = Tracking(inner)
        port = reactor.listenTCP(0, tracking, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return tracking, port.getHost().port

    @inlineCallbacks
    def check(self, protocol: str, server: Factory, security: Security,
              tls: CertificateOptions | None = None, timeout: float = 5.0,
              trust: Any = CERTIFICATES.trust, **target: Any) -> Any:
        """
        Probe C{server}, wait until it has seen the connection close, and
        return the result.
        """
        tracking, port = self.serve(server, tls, **target.pop("serve", {}))
        result = yield probe(Target(protocol, target.pop("host", "localhost"), port, security,
                                    **target), reactor, trust, timeout)
        self.assertIsInstance(result, ProbeResult)
        yield tracking.idle()
        self.assertEqual(tracking.accepted, 1)
        return result

    def assertOK(self, result: ProbeResult, tls: bool = True) -> None:
        self.assertTrue(result.ok, result.error)
        self.assertIsNone(result.error)
        self.assertGreater(result.latency, 0)
        self.assertLess(result.latency, 2)
        if tls:
            self.assertEqual(result.certificate_expires, CERTIFICATES.expires)
        else:
            self.assertIsNone(result.certificate_expires)

    # The protocols, over implicit TLS, STARTTLS and none.

    @inlineCallbacks
    def test_smtp(self) -> Any:
        """
        SMTP: 220, EHLO, and STARTTLS then EHLO again when asked; the
        certificate's notAfter is recorded whenever TLS was used.
        """
        for security in (SSL, STARTTLS, NONE):
            server = Factory.forProtocol(SMTP)
            tls = CERTIFICATES.good if security is SSL else None
            result = yield self.check("smtp", server, security, tls)
            self.assertOK(result, tls=security is not NONE)
            self.assertEqual(result.detail, "220 mail.example.test ESMTP test")
            self.assertEqual(server.upgraded, 1 if security is STARTTLS else 0)
            ehlo = [b"EHLO smartdiscover.invalid"] * (2 if security is STARTTLS else 1)
            self.assertEqual([line for line in server.lines if line.startswith(b"EHLO")], ehlo)
            self.assertEqual(server.lines[-1], b"QUIT")

    @inlineCallbacks
    def test_imap(self) -> Any:
        """
        IMAP: * OK, a1 STARTTLS when asked, a2 CAPABILITY, a3 LOGOUT.
        """
        for security in (SSL, STARTTLS, NONE):
            server = Factory.forProtocol(IMAP)
            tls = CERTIFICATES.good if security is SSL else None
            result = yield self.check("imap", server, security, tls)
            self.assertOK(result, tls=security is not NONE)
            self.assertEqual(result.detail, "* OK [CAPABILITY IMAP4rev1 STARTTLS] test ready")
            commands = [b"a2 CAPABILITY", b"a3 LOGOUT"]
            if security is STARTTLS:
                commands.insert(0, b"a1 STARTTLS")
            self.assertEqual(server.lines, commands)

    @inlineCallbacks
    def test_pop3(self) -> Any:
        """
        POP3: +OK, STLS when asked, QUIT.
        """
        for security in (SSL, STARTTLS, NONE):
            server = Factory.forProtocol(POP3)
            tls = CERTIFICATES.good if security is SSL else None
            result = yield self.check("pop3", server, security, tls)
            self.assertOK(result, tls=security is not NONE)
            self.assertEqual(server.lines, [b"STLS", b"QUIT"] if security is STARTTLS
                             else [b"QUIT"])

    @inlineCallbacks
    def test_xmpp(self) -> Any:
        """
        XMPP: stream features to the given domain; <starttls/>, <proceed/>
        and a restarted stream when asked; implicit TLS (XEP-0368).
        """
        for security in (SSL, STARTTLS, NONE):
            server = Factory.forProtocol(XMPP)
            tls = CERTIFICATES.good if security is SSL else None
            result = yield self.check("xmpp", server, security, tls, domain="example.test")
            self.assertOK(result, tls=security is not NONE)
            self.assertEqual(server.upgraded, 1 if security is STARTTLS else 0)
            self.assertEqual(len(server.lines), 2 if security is STARTTLS else 1)
            for header in server.lines:
                self.assertIn(b"<stream:stream to='example.test' version='1.0'", header)

    @inlineCallbacks
    def test_sip_stream(self) -> Any:
        """
        SIP OPTIONS over TCP and over TLS: any status line is a SIP server.
        """
        for transport in ("tcp", "tls"):
            server = Factory.forProtocol(SIPStream)
            tls = CERTIFICATES.good if transport == "tls" else None
            result = yield self.check("sip", server, NONE, tls, transport=transport)
            self.assertOK(result, tls=transport == "tls")
            self.assertEqual(result.detail, "SIP/2.0 200 OK")
            request = server.lines[0]
            self.assertTrue(request.startswith(b"OPTIONS sip:localhost:"), request)
            for header in (b"Via: SIP/2.0/" + transport.upper().encode(), b"From: ",
                           b"To: ", b"Call-ID: ", b"CSeq: 1 OPTIONS", b"Max-Forwards: 70",
                           b"Content-Length: 0"):
                self.assertIn(b"\r\n" + header, request)

    @inlineCallbacks
    def test_sip_udp(self) -> Any:
        """
        SIP OPTIONS over UDP from a connected socket, which is closed after.
        """
        responder = SIPDatagrams(answer=True)
        port = reactor.listenUDP(0, responder, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        result = yield probe(Target("sip", "127.0.0.1", port.getHost().port, NONE,
                                    transport="udp"), reactor, CERTIFICATES.trust, 5)
        self.assertOK(result, tls=False)
        self.assertEqual(result.detail, "SIP/2.0 200 OK")
        self.assertEqual(len(responder.requests), 1)
        self.assertIn(b"\r\nVia: SIP/2.0/UDP 127.0.0.1:", responder.requests[0])

    def test_sip_udp_silent(self) -> None:
        """
        A UDP port that never answers: the request is resent within the
        timeout, then the probe fails with a timeout.
        """
        silent = SIPDatagrams(answer=False)
        clock = DatagramClock(silent)
        d = probe(Target("sip", "127.0.0.1", 5060, NONE, transport="udp"), clock,
                  CERTIFICATES.trust, 1)
        clock.pump([0.49])
        self.assertEqual(len(silent.requests), 1)
        clock.pump([0.01])
        self.assertEqual(len(silent.requests), 2)  # resent at 0.5 s
        clock.pump([0.49])
        self.assertNoResult(d)
        clock.pump([0.01])
        result = self.successResultOf(d)
        self.assertFalse(result.ok)
        self.assertEqual(result.error, "timed out after 1 s waiting for the OPTIONS reply")
        self.assertAlmostEqual(result.latency, 1.0)
        self.assertEqual(len(silent.requests), 2)

    @inlineCallbacks
    def test_https(self) -> Any:
        """
        HTTPS: a service is there when it answers, 401 and 403 included
        (authenticated services) and 501 (another method wanted); 404 means
        the advertised URL is wrong and 5xx that the service fails; the body
        is never read.
        """
        for path, ok in (("ok", True), ("auth", True), ("forbidden", True), ("down", False),
                         ("big", True), ("missing", False), ("method", True)):
            tracking, port = self.serve(_site(), CERTIFICATES.good)
            url = f"https://localhost:{port}/{path}"
            result = yield probe(Target("https", "localhost", port, SSL, url=url), reactor,
                                 CERTIFICATES.trust, 5)
            code = {"ok": 200, "auth": 401, "forbidden": 403, "down": 503, "big": 200,
                    "missing": 404, "method": 501}[path]
            self.assertEqual(result.ok, ok, result.error)
            self.assertEqual(result.detail, f"HTTP {code}")
            self.assertEqual(result.error, None if ok else f"HTTP {code}")
            self.assertEqual(result.certificate_expires, CERTIFICATES.expires)
            self.assertLess(result.latency, 2)
            yield tracking.idle()

    @inlineCallbacks
    def test_tcp(self) -> Any:
        """
        tcp: a connection, and the TLS handshake with security ssl.
        """
        result = yield self.check("tcp", Factory.forProtocol(Protocol), NONE)
        self.assertOK(result, tls=False)
        result = yield self.check("tcp", Factory.forProtocol(Protocol), SSL, CERTIFICATES.good)
        self.assertOK(result)

    # TLS verification.

    @inlineCallbacks
    def test_wrong_name(self) -> Any:
        """
        A trusted certificate for another name fails verification, over
        implicit TLS, STARTTLS and HTTPS; its expiry is still reported.
        """
        wrong = CERTIFICATES.wrong_name
        results = [(yield self.check("smtp", Factory.forProtocol(SMTP), SSL, wrong)),
                   (yield self.check("imap", Factory.forProtocol(IMAP), STARTTLS,
                                     serve={"starttls": wrong})),
                   (yield self.check("https", _site(), SSL, wrong, url=None))]
        for result in results:
            self.assertFalse(result.ok)
            self.assertEqual(result.error, "certificate does not match localhost")
            self.assertIsNotNone(result.certificate_expires)

    @inlineCallbacks
    def test_untrusted(self) -> Any:
        """
        A self-signed certificate outside the trust root fails, with the
        given trust and with the platform's.
        """
        for trust in (CERTIFICATES.trust, None):
            result = yield self.check("pop3", Factory.forProtocol(POP3), SSL,
                                      CERTIFICATES.untrusted, trust=trust)
            self.assertFalse(result.ok)
            self.assertEqual(result.error, "self-signed certificate is not trusted")
        result = yield self.check("smtp", Factory.forProtocol(SMTP), STARTTLS,
                                  serve={"starttls": CERTIFICATES.untrusted})
        self.assertEqual(result.error, "self-signed certificate is not trusted")

    @inlineCallbacks
    def test_expired(self) -> Any:
        """
        An expired certificate fails, saying when it expired.
        """
        result = yield self.check("imap", Factory.forProtocol(IMAP), SSL, CERTIFICATES.expired)
        self.assertFalse(result.ok)
        self.assertEqual(result.error,
                         f"certificate expired on {CERTIFICATES.expired_on:%Y-%m-%d}")
        self.assertEqual(result.certificate_expires, CERTIFICATES.expired_on)

    # Broken servers.

    @inlineCallbacks
    def test_refused(self) -> Any:
        """
        A closed port fails at once.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        for protocol in ("smtp", "https"):
            result = yield probe(Target(protocol, "localhost", number, SSL), reactor,
                                 CERTIFICATES.trust, 5)
            self.assertFalse(result.ok)
            # Each address localhost has, in order (issue 16 section 5).
            self.assertRegex(result.error,
                             r"^connection refused at (127\.0\.0\.1|::1)( and (::1|127\.0\.0\.1))?$")
            self.assertLess(result.latency, 1)

    @inlineCallbacks
    def test_silent(self) -> Any:
        """
        A server that accepts and never speaks: a timeout after the
        configured timeout, naming what was awaited; the connection is closed.
        """
        for security, awaited in ((NONE, "the greeting"), (SSL, "the TLS handshake")):
            result = yield self.check("smtp", Factory.forProtocol(Protocol), security,
                                      timeout=1)
            self.assertFalse(result.ok)
            self.assertEqual(result.error, f"timed out after 1 s waiting for {awaited}")
            self.assertTrue(0.95 <= result.latency < 1.5, result.latency)

    @inlineCallbacks
    def test_garbage(self) -> Any:
        """
        A server that answers garbage fails fast with an excerpt of it;
        plain text where TLS was expected fails the handshake.
        """
        result = yield self.check("smtp", Factory.forProtocol(Garbage), NONE)
        self.assertEqual(result.error, "unexpected reply 'HTTP/1.1 400 Bad Request'")
        result = yield self.check("imap", Factory.forProtocol(Garbage), NONE)
        self.assertEqual(result.error, "unexpected greeting 'HTTP/1.1 400 Bad Request'")
        result = yield self.check("xmpp", Factory.forProtocol(Garbage), NONE)
        self.assertEqual(result.error, "unexpected reply 'HTTP/1.1 400 Bad Request'")
        result = yield self.check("sip", Factory.forProtocol(Garbage), NONE)
        self.assertEqual(result.error, "unexpected reply 'HTTP/1.1 400 Bad Request'")
        result = yield self.check("pop3", Factory.forProtocol(Endless), NONE)
        self.assertEqual(result.error, "reply longer than 64 KiB")
        result = yield self.check("imap", Factory.forProtocol(IMAP), SSL)
        self.assertFalse(result.ok)
        self.assertTrue(result.error.startswith("TLS handshake failed"), result.error)

    @inlineCallbacks
    def test_smtp_without_starttls(self) -> Any:
        """
        Security starttls against a server that does not offer it fails
        before anything else is sent.
        """
        server = Factory.forProtocol(SMTP)
        result = yield self.check("smtp", server, STARTTLS, serve={"offer_starttls": False})
        self.assertFalse(result.ok)
        self.assertEqual(result.error, "server does not offer STARTTLS")
        self.assertEqual(result.detail, "220 mail.example.test ESMTP test")
        self.assertEqual(server.lines, [b"EHLO smartdiscover.invalid"])

    @inlineCallbacks
    def test_invalid_targets(self) -> Any:
        """
        Targets that cannot be probed are failed results, not errors.
        """
        for target, error in (
                (Target("gopher", "localhost", 70, NONE), "unknown protocol 'gopher'"),
                (Target("sip", "localhost", 5060, STARTTLS),
                 "SIP has no STARTTLS: use the tls transport"),
                (Target("smtp", "localhost", 0, NONE), "invalid port 0"),
                (Target("smtp", "-x-.example", 25, NONE), "invalid host name '-x-.example'"),
                (Target("xmpp", "localhost", 5222, NONE, domain="a'b"), "invalid domain"),
                (Target("smtp", "mail\r\nexample", 25, NONE), "invalid host name")):
            result = yield probe(target, reactor, CERTIFICATES.trust, 1)
            self.assertEqual((result.ok, result.error), (False, error))

    def test_days_left(self) -> None:
        """
        Days to expiry, fractional, negative once expired.
        """
        now = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
        self.assertEqual(days_left(now + datetime.timedelta(days=10, hours=12), now), 10.5)
        self.assertEqual(days_left(now - datetime.timedelta(days=2), now), -2)
        self.assertEqual(days_left(datetime.datetime(2030, 1, 2), now), 1)
