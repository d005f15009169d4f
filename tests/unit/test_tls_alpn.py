"""
Tests for TLS-ALPN-01 (RFC 8737) on the HTTPS listener:
L{TLSALPN01Certificates.alpn_select} installed by L{CertificateSet} on
every context a connection can be in, over real in-memory handshakes
(TLS 1.2 and 1.3) of a C{ssl} client that offers ALPN protocols, with and
without SNI, before and after the SNI context switch; and the callback
kept through L{CertificateSet.replacing} and L{load_certificates}.

Without it, every context keeps the ALPN callback Twisted installs: the
protocols the listener's site speaks (C{http/1.1}), the handshake refused
when the client offers none of them.  The server connection gets the
listener's TLS protocol as its app data, as Twisted gives it, since
Twisted's callback reads it.
"""

from __future__ import annotations

import random
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from smartdiscover.certs.acme.responders import (
    ACME_IDENTIFIER_OID,
    ACME_TLS_ALPN,
    TLSALPN01Certificates,
    challenge_certificate,
)
from smartdiscover.certs.certificate import ServedCertificate
from smartdiscover.certs.files import load_certificates
from smartdiscover.certs.selection import CertificateSet
from smartdiscover.config import load
from smartdiscover.config.model import Model
from smartdiscover.web.site import SmartSite
from smartdiscover.web.tls import ReloadableServerTLS
from tests.helpers import build_ini, handshake_in_memory, write_config
from tests.unit.test_certificates import CertificateFiles, TestCA

ACME = ACME_TLS_ALPN.decode()
BROWSER = ["h2", "http/1.1"]
VERSIONS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
# Published names: one no certificate covers (a new name being ordered),
# the default's, one the second certificate names, one a wildcard covers.
NEW = "new.example.com"
PUBLISHED = (NEW, "mail.example.test", "autodiscover.example.org", "x.example.net")
PEER = IPv4Address("TCP", "192.0.2.7", 40000)


def connect(certificates: CertificateSet, name: str | None, protocols: list[str],
            version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
            ) -> tuple[x509.Certificate, str | None]:
    """
    The certificate a client that sends SNI C{name} (none for L{None}) and
    offers C{protocols} gets from a new connection of C{certificates}, and
    the protocol negotiated.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_alpn_protocols(protocols)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=name)
    creator = ReloadableServerTLS(certificates)
    protocol = TLSMemoryBIOFactory(creator, False, SmartSite(Resource())).buildProtocol(PEER)
    server = creator.serverConnectionForTLS(protocol)
    server.set_app_data(protocol)
    server.set_accept_state()
    handshake_in_memory(client, incoming, outgoing, server)
    der = client.getpeercert(True)
    assert der is not None, "the handshake did not complete"
    return x509.load_der_x509_certificate(der), client.selected_alpn_protocol()


class FakeConnection:
    """
    What L{TLSALPN01Certificates.select} reads of a server connection.
    """

    def __init__(self, servername: bytes | None) -> None:
        self.servername = servername

    def get_servername(self) -> bytes | None:
        return self.servername

    def use_certificate(self, certificate: Any) -> None:
        pass

    def use_privatekey(self, key: Any) -> None:
        pass


class ALPNTests(SynchronousTestCase):
    """
    A L{CertificateSet} of three certificates with a
    L{TLSALPN01Certificates} that holds a challenge certificate for each
    name of L{PUBLISHED}.
    """

    def setUp(self) -> None:
        self.ca = TestCA()
        self.default = self.ca.served("default", ["mail.example.test"], section="server")
        self.org = self.ca.served("org", ["autodiscover.example.org", "mail.example.org"])
        self.wild = self.ca.served("wild", ["*.example.net"])
        self.challenges = TLSALPN01Certificates()
        self.published: dict[str, x509.Certificate] = {}
        for name in PUBLISHED:
            certificate, key = challenge_certificate(name, f"token-{name}.thumbprint")
            self.successResultOf(self.challenges.publish(name, certificate, key))
            self.published[name] = certificate
        self.set = self.with_alpn(self.default, [self.org, self.wild])

    def with_alpn(self, default: ServedCertificate,
                  certificates: list[ServedCertificate]) -> CertificateSet:
        return CertificateSet(default, certificates, alpn=self.challenges.alpn_select)

    def assertServed(self, certificates: CertificateSet, name: str | None,
                     protocols: list[str], protocol: str | None) -> None:
        """
        Over TLS 1.2 and 1.3, the client gets the certificate that serves
        C{name} and negotiates C{protocol}.
        """
        expected = certificates.select(name.encode() if name is not None else None).leaf
        for version in VERSIONS:
            self.assertEqual(connect(certificates, name, protocols, version),
                             (expected, protocol), (name, protocols, version))

    def test_challenge_certificate(self) -> None:
        """
        A client that offers only C{acme-tls/1} with SNI of a published
        name gets its challenge certificate and C{acme-tls/1}: in the
        starting context (a name no certificate covers, the default's) and
        after the SNI switch to another certificate's context (exact name,
        wildcard).
        """
        for name in PUBLISHED:
            for version in VERSIONS:
                leaf, protocol = connect(self.set, name, [ACME], version)
                self.assertEqual(leaf, self.published[name], (name, version))
                self.assertEqual(protocol, ACME, (name, version))
                self.assertTrue(leaf.extensions.get_extension_for_oid(
                    ACME_IDENTIFIER_OID).critical)

    def test_other_clients(self) -> None:
        """
        A client that offers C{h2, http/1.1} gets the served certificate and
        C{http/1.1}, for a published name too; one that offers neither
        gets no protocol.
        """
        for name in (*PUBLISHED, "unknown.example", None):
            self.assertServed(self.set, name, BROWSER, "http/1.1")
            self.assertServed(self.set, name, ["spdy/3", "h2"], None)

    def test_unpublished_name(self) -> None:
        """
        C{acme-tls/1} for a name without a challenge certificate (one a
        certificate serves, one none does): the normal certificate, no
        protocol (the handshake goes on without ALPN).
        """
        for name in ("mail.example.org", "y.example.net", "unknown.example", "example.net"):
            self.assertServed(self.set, name, [ACME], None)
            self.assertServed(self.set, name, [ACME, "http/1.1"], "http/1.1")

    def test_withdrawn(self) -> None:
        """
        Once withdrawn, a name gets its normal certificate again.
        """
        for name in PUBLISHED:
            self.challenges.withdraw(name)
            self.assertServed(self.set, name, [ACME], None)
        self.assertEqual(len(self.challenges), 0)

    def test_no_sni(self) -> None:
        """
        C{acme-tls/1} without SNI: the default certificate, no protocol.
        """
        self.assertServed(self.set, None, [ACME], None)
        self.assertEqual(connect(self.set, None, [ACME])[0], self.default.leaf)

    def assertAsBefore(self, certificates: CertificateSet) -> None:
        """
        What every set answered before TLS-ALPN-01: C{http/1.1} when
        offered, the normal certificate for every name, a handshake
        refused when only C{acme-tls/1} is offered.
        """
        for name in (*PUBLISHED, "unknown.example", None):
            self.assertServed(certificates, name, BROWSER, "http/1.1")
            self.assertServed(certificates, name, [ACME, "http/1.1"], "http/1.1")
            self.assertServed(certificates, name, [], None)
            self.assertRaises(SSL.Error, connect, certificates, name, [ACME])

    def test_without_alpn(self) -> None:
        """
        A set built without C{alpn} answers as before and never presents a
        challenge certificate.
        """
        fresh = [self.ca.served("org", ["autodiscover.example.org"]),
                 self.ca.served("wild", ["*.example.net"])]
        plain = CertificateSet(self.default, fresh)
        self.assertIsNone(plain.alpn)
        self.assertEqual(plain.certificates, tuple(fresh))
        self.assertIs(plain.certificates[0], fresh[0])
        self.assertAsBefore(plain)

    def test_replacing_keeps_alpn(self) -> None:
        """
        L{CertificateSet.replacing} keeps the callback, on the new
        certificate's context and on the kept ones, whose contexts served
        connections already.
        """
        self.test_challenge_certificate()
        renewed = self.ca.served("org", ["autodiscover.example.org"])
        new_default = self.ca.served("default", ["mail.example.test"], section="server")
        for certificates in (self.set.replacing(renewed), self.set.replacing(new_default)):
            self.assertEqual(certificates.alpn, self.challenges.alpn_select)
            for name in PUBLISHED:
                self.assertEqual(connect(certificates, name, [ACME]),
                                 (self.published[name], ACME), name)
            self.assertServed(certificates, "autodiscover.example.org", BROWSER, "http/1.1")
        self.assertIs(self.set.replacing(renewed).certificates[1], self.wild)
        self.assertIs(self.set.replacing(new_default).certificates[0], self.org)

    def test_alpn_after_connections_without(self) -> None:
        """
        A certificate whose context served connections without the
        callback (a set built before TLS-ALPN-01 was wanted) is served from
        a fresh copy of its bytes in a set with it (pyOpenSSL changes no
        used context); an unused one is kept as it is.
        """
        org = self.ca.served("org", ["autodiscover.example.org"])
        wild = self.ca.served("wild", ["*.example.net"])
        plain = CertificateSet(self.default, [org, wild])
        self.assertServed(plain, "autodiscover.example.org", BROWSER, "http/1.1")
        certificates = self.with_alpn(self.default, [org, wild])
        self.assertIsNot(certificates.certificates[0], org)
        self.assertEqual(certificates.certificates[0].chain, org.chain)
        self.assertEqual(certificates.certificates[0].label, "org")
        self.assertIs(certificates.certificates[1], wild)
        for name in PUBLISHED:
            self.assertEqual(connect(certificates, name, [ACME]),
                             (self.published[name], ACME), name)
        self.assertServed(certificates, "autodiscover.example.org", BROWSER, "http/1.1")

    def test_alpn_dropped(self) -> None:
        """
        A set built without C{alpn} from certificates that have the
        callback answers as before, through copies; the set with it is
        unchanged.
        """
        self.test_challenge_certificate()
        plain = CertificateSet(self.default, [self.org, self.wild])
        self.assertIsNot(plain.certificates[0], self.org)
        self.assertAsBefore(plain)
        self.test_challenge_certificate()

    def test_sets_do_not_meddle(self) -> None:
        """
        Two sets with different callbacks over the same certificates each
        answer with their own.
        """
        others = TLSALPN01Certificates()
        certificate, key = challenge_certificate("autodiscover.example.org", "other.thumb")
        self.successResultOf(others.publish("autodiscover.example.org", certificate, key))
        second = CertificateSet(self.default, [self.org, self.wild], alpn=others.alpn_select)
        self.assertEqual(connect(second, "autodiscover.example.org", [ACME]),
                         (certificate, ACME))
        self.assertEqual(connect(second, "x.example.net", [ACME]),
                         (self.wild.leaf, None))
        self.test_challenge_certificate()

    def test_callback_never_raises(self) -> None:
        """
        L{TLSALPN01Certificates.alpn_select} answers thousands of random
        server names and protocol lists without raising.
        """
        chance = random.Random(8737)
        answers = {ACME_TLS_ALPN, b"http/1.1", SSL.NO_OVERLAPPING_PROTOCOLS}
        names: list[bytes | None] = [None, b"", *(n.encode() for n in PUBLISHED),
                                     b"NEW.EXAMPLE.COM.", b"\xff\xfe", b"a" * 300]
        for _ in range(2000):
            raw = chance.choice(names) if chance.random() < 0.5 else bytes(
                chance.randrange(256) for _ in range(chance.randrange(80)))
            offered = [bytes(chance.randrange(256) for _ in range(chance.randrange(1, 12)))
                       for _ in range(chance.randrange(4))]
            if chance.random() < 0.5:
                offered.insert(chance.randrange(len(offered) + 1), ACME_TLS_ALPN)
            connection: Any = FakeConnection(raw)
            self.assertIn(self.challenges.alpn_select(connection, offered), answers)


class LoadWithALPNTests(SynchronousTestCase):
    """
    L{load_certificates} with C{alpn}: a reload keeps the set only when it
    has the same callback.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.files = CertificateFiles(TestCA(), self.directory / "tls")
        self.files.write("server", ["mail.example.test"])
        self.files.write("org", ["autodiscover.example.org"])
        self.challenges = TLSALPN01Certificates()
        certificate, key = challenge_certificate("autodiscover.example.org", "token.thumb")
        self.successResultOf(self.challenges.publish("autodiscover.example.org",
                                                     certificate, key))
        self.challenge = certificate

    def model(self) -> Model:
        return load(write_config(self.directory, build_ini(
            {"certificates": {"org": "tls/org.crt, tls/org.key"}})))

    def test_same_alpn_keeps_the_set(self) -> None:
        """
        Unchanged files and the same callback (a bound method, got anew):
        the very same set, still answering C{acme-tls/1}.
        """
        model = self.model()
        current = load_certificates(model, alpn=self.challenges.alpn_select)
        self.assertIs(load_certificates(model, current, alpn=self.challenges.alpn_select),
                      current)
        self.assertEqual(connect(current, "autodiscover.example.org", [ACME]),
                         (self.challenge, ACME))

    def test_other_alpn_builds_a_new_set(self) -> None:
        """
        Unchanged files with the callback added or dropped: a new set that
        has it or not, after connections of the old set too.
        """
        model = self.model()
        plain = load_certificates(model)
        self.assertEqual(connect(plain, "autodiscover.example.org", BROWSER),
                         (self.files.leaves["org"], "http/1.1"))
        with_alpn = load_certificates(model, plain, alpn=self.challenges.alpn_select)
        self.assertIsNot(with_alpn, plain)
        self.assertEqual(with_alpn.alpn, self.challenges.alpn_select)
        self.assertEqual(connect(with_alpn, "autodiscover.example.org", [ACME]),
                         (self.challenge, ACME))
        again = load_certificates(model, with_alpn)
        self.assertIsNot(again, with_alpn)
        self.assertIsNone(again.alpn)
        self.assertEqual(connect(again, "autodiscover.example.org", BROWSER),
                         (self.files.leaves["org"], "http/1.1"))
        self.assertRaises(SSL.Error, connect, again, "autodiscover.example.org", [ACME])
