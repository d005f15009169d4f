"""
Pebble, the ACME test server of the Let's Encrypt team (Debian's
C{pebble}), run as a child process on free loopback ports, and the small
listeners its validation authority talks to: a DNS server, an HTTP-01
site and a TLS-ALPN-01 listener, all in the test's reactor on 127.0.0.1.

Use::

    dns = ChallengeDNS(["example.test"], records)        # DNS01Records
    dns_port = dns.listen(reactor)
    pebble = PebbleServer(Path(self.mktemp()), dns_port, http_port, tls_port)
    self.addCleanup(pebble.stop)
    pebble.directory_url, pebble.ca_file, pebble.root_pem()

Pebble gets a certificate of a private CA made here for its own HTTPS
(directory and management API), validates for real
(C{PEBBLE_VA_ALWAYS_VALID=0}) without its random sleeps
(C{PEBBLE_VA_NOSLEEP=1}), accepts every good nonce
(C{PEBBLE_WFE_NONCEREJECT=0}) and never reuses an authorization
(C{PEBBLE_AUTHZREUSE=0}), so every order runs every challenge.  It
resolves every name through C{-dnsserver}, the in-process DNS server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import subprocess
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet import defer
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLContextFactory,
    IReactorSSL,
    IReactorTCP,
    IReactorUDP,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.names import dns, error, server
from twisted.names.common import ResolverBase
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from smartdiscover.certs.acme.responders import (
    ACME_TLS_ALPN,
    DNS01Records,
    HTTP01Tokens,
    TLSALPN01Certificates,
)

from .backends import _ChildServer, _find
from .service import free_port

PEBBLE = "/usr/bin/pebble"


def port_of(port: IListeningPort) -> int:
    """
    The port number a listener bound (to port 0).
    """
    number: int = port.getHost().port  # type: ignore[attr-defined]
    return number


def pebble_installed() -> bool:
    try:
        _find(PEBBLE)
    except RuntimeError:
        return False
    return True


def private_ca(directory: Path, names: Iterable[str]) -> tuple[Path, Path, Path]:
    """
    A CA and a certificate it issued for C{names} (and 127.0.0.1): the
    files of the CA certificate, the server's chain and its key.
    """
    now = datetime.now(timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SmartDiscover test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alternatives.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "pebble.pem", directory / "pebble.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class PebbleServer(_ChildServer):
    """
    One pebble on two free loopback ports: the ACME directory
    (L{directory_url}) and the management API (roots and intermediates).
    """

    name = "pebble"

    def __init__(self, directory: Path, dns_port: int, http_port: int, tls_port: int,
                 environment: dict[str, str] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.log_path = directory / "pebble.log"
        self.ca_file, certificate, key = private_ca(directory, ["localhost"])
        self.port = free_port()
        self.management_port = free_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(certificate),
            "privateKey": str(key),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}
        config_path = directory / "pebble-config.json"
        config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_VA_ALWAYS_VALID": "0",
               "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        env.update(environment or {})
        self._argv = [_find(PEBBLE), "-config", str(config_path),
                      "-dnsserver", f"127.0.0.1:{dns_port}"]
        self._env = env
        self.start()

    def start(self) -> None:
        """
        Start pebble (again, after L{stop}: on the same ports, with none of
        its former state: accounts, orders, its CA).
        """
        self._spawn_with(self._argv, self.directory, self._env)
        self._wait_listening([self.port, self.management_port])

    def _spawn_with(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True, env=env)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def root_pem(self) -> bytes:
        """
        The root of the chains pebble issues, from its management API
        (C{/roots/0}); blocking.
        """
        context = ssl.create_default_context(cafile=str(self.ca_file))
        url = f"https://127.0.0.1:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return bytes(response.read())


class _ChallengeResolver(ResolverBase):
    """
    An authority for C{zones} that answers A 127.0.0.1 for every name in
    them, no AAAA, and TXT from the DNS-01 records; anything outside is
    refused (NXDOMAIN here: enough for pebble).
    """

    def __init__(self, zones: Iterable[str], records: DNS01Records) -> None:
        super().__init__()
        self._zones = tuple(zone.lower().rstrip(".") for zone in zones)
        self._records = records
        self.queries: list[tuple[str, int]] = []

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any = None
                ) -> defer.Deferred[Any]:
        text = name.decode("ascii", "replace").lower().rstrip(".")
        self.queries.append((text, type))
        if not any(text == zone or text.endswith("." + zone) for zone in self._zones):
            return defer.fail(error.DomainError(text))
        answers = []
        if type in (dns.A, dns.ALL_RECORDS):
            answers.append(dns.RRHeader(name, dns.A, dns.IN, 0,
                                        dns.Record_A("127.0.0.1", 0), auth=True))
        if type in (dns.TXT, dns.ALL_RECORDS):
            for value in self._records.values(text):
                answers.append(dns.RRHeader(name, dns.TXT, dns.IN, 0,
                                            dns.Record_TXT(value.encode("ascii"), ttl=0),
                                            auth=True))
        return defer.succeed((answers, [], []))


class ChallengeDNS:
    """
    The DNS server pebble resolves through, on 127.0.0.1 (UDP and TCP).
    """

    def __init__(self, zones: Iterable[str], records: DNS01Records) -> None:
        self.resolver = _ChallengeResolver(zones, records)
        self._factory = server.DNSServerFactory(authorities=[self.resolver])
        self._ports: list[IListeningPort] = []

    def listen(self, reactor: Any) -> int:
        udp: IReactorUDP = reactor
        tcp: IReactorTCP = reactor
        port = udp.listenUDP(0, dns.DNSDatagramProtocol(self._factory), interface="127.0.0.1",
                             maxPacketSize=512)
        number = port_of(port)
        self._ports.append(port)
        self._ports.append(tcp.listenTCP(number, self._factory, interface="127.0.0.1"))
        return number

    def stop(self) -> defer.Deferred[Any]:
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in self._ports])


class _Challenge(Resource):
    isLeaf = True

    def __init__(self, tokens: HTTP01Tokens) -> None:
        super().__init__()
        self._tokens = tokens
        self.requests: list[tuple[bytes | None, bytes]] = []

    def render_GET(self, request: Request) -> bytes:
        path = request.postpath or []
        token = path[0] if len(path) == 1 else b""
        self.requests.append((request.getHeader(b"host"), token))
        body = self._tokens.lookup(token)
        if body is None:
            request.setResponseCode(404)
            return b"no such token\n"
        request.setHeader(b"content-type", b"text/plain")
        return body


def http01_site(tokens: HTTP01Tokens) -> tuple[Site, _Challenge]:
    """
    The minimal site web/ will mount: C{/.well-known/acme-challenge/TOKEN}.
    """
    root = Resource()
    well_known = Resource()
    challenge = _Challenge(tokens)
    root.putChild(b".well-known", well_known)
    well_known.putChild(b"acme-challenge", challenge)
    return Site(root), challenge


@implementer(IOpenSSLContextFactory)
class _ALPNContextFactory:
    """
    A server context as the HTTPS listener will have it: a default
    certificate, an SNI callback that switches to another context (as
    L{smartdiscover.certs.selection} does), and on every context an ALPN
    callback that lets the TLS-ALPN-01 responder present its certificate.
    """

    def __init__(self, certificates: TLSALPN01Certificates, default: tuple[Any, Any],
                 served: tuple[Any, Any]) -> None:
        self.handshakes: list[tuple[bytes | None, bytes | None]] = []
        self._certificates = certificates
        self._default = self._context(*default)
        self._served = self._context(*served)
        self._default.set_tlsext_servername_callback(self._switch)

    def _context(self, certificate: x509.Certificate, key: Any) -> SSL.Context:
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.use_certificate(certificate)
        context.use_privatekey(key)
        context.set_alpn_select_callback(self._select)
        return context

    def _switch(self, connection: SSL.Connection) -> None:
        connection.set_context(self._served)

    def _select(self, connection: SSL.Connection, offered: list[bytes]) -> Any:
        chosen = None
        if self._certificates.select(connection, offered):
            chosen = ACME_TLS_ALPN
        elif b"http/1.1" in offered:
            chosen = b"http/1.1"
        self.handshakes.append((connection.get_servername(), chosen))
        return chosen if chosen is not None else SSL.NO_OVERLAPPING_PROTOCOLS

    def getContext(self) -> SSL.Context:
        return self._default


def self_signed(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = datetime.now(timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    return certificate, key


def listen_tls_alpn(reactor: Any, certificates: TLSALPN01Certificates
                    ) -> tuple[IListeningPort, _ALPNContextFactory]:
    ssl_reactor: IReactorSSL = reactor
    factory = _ALPNContextFactory(certificates, self_signed("default.invalid"),
                                  self_signed("served.invalid"))
    port = ssl_reactor.listenSSL(0, Factory.forProtocol(Protocol), factory,
                                 interface="127.0.0.1")
    return port, factory
