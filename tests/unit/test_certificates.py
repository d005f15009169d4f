"""
Tests for L{smartdiscover.certs} and C{[certificates]}: several
certificates, each with its chain, chosen by the TLS server name (SNI);
the default for clients without SNI or with an unknown name; reloads that
swap the set for new connections only; and hostile files and SNI values
(issue 17 section 1; docs/certificates.md).

Certificates come from a test CA made here with C{cryptography} (root,
intermediate, leaves); handshakes run in memory over pyOpenSSL memory
BIOs, as in L{tests.unit.test_tls}: no sockets.  L{TestCA} and
L{CertificateFiles} are also used by L{tests.integration.test_sni_service}.
"""

from __future__ import annotations

import datetime
import io
import json
import random
import ssl
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest
from zope.interface.verify import verifyObject

from smartdiscover import cli
from smartdiscover.certs.certificate import (
    MAX_CHAIN,
    MAX_PEM_BYTES,
    CertificateError,
    Origin,
    ServedCertificate,
    build_certificate,
)
from smartdiscover.certs.files import load_certificates
from smartdiscover.certs.names import certificate_names, served_names, server_name
from smartdiscover.certs.report import coverage, describe, warnings
from smartdiscover.certs.selection import CertificateSet
from smartdiscover.config import ConfigError, ConfigStore, load
from smartdiscover.config.model import Model
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.metrics import Metrics, certificate_metrics
from smartdiscover.web.health import HealthResource
from smartdiscover.web.tls import ReloadableServerTLS, signer_for
from tests.helpers import (
    DEMO_PASSWORD,
    build_ini,
    handshake_in_memory,
    run_synchronously,
    write_config,
)
from tests.unit.test_autoconfig import SiteFixture
from tests.unit.test_http_endpoints import basic

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
PEM = serialization.Encoding.PEM


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def chain_pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(PEM) for c in certificates)


class TestCA:
    """
    A root and an intermediate CA; L{issue} makes server certificates
    signed by the intermediate, so a client that trusts only the root
    verifies a leaf only when the server sends the intermediate too.
    """

    def __init__(self, name: str = "SmartDiscover Test") -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca(f"{name} Root", self.root_key, _name(f"{name} Root"),
                             self.root_key)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._ca(f"{name} Intermediate", self.intermediate_key,
                                     self.root.subject, self.root_key)

    @staticmethod
    def _ca(common_name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
            issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY)
            .not_valid_after(NOW + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )

    def issue(self, names: Sequence[str], key: PrivateKeyTypes | None = None,
              not_before: datetime.datetime | None = None,
              not_after: datetime.datetime | None = None,
              common_name: str | None = None) -> tuple[x509.Certificate, PrivateKeyTypes]:
        """
        A leaf for the DNS names C{names} (an empty list: no
        subjectAltName), valid from yesterday for 90 days unless told.
        """
        key = key or ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name or (names[0] if names else "no names")))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - DAY)
            .not_valid_after(not_after or NOW + 90 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.intermediate_key.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        return builder.sign(self.intermediate_key, hashes.SHA256()), key

    def served(self, label: str, names: Sequence[str], section: str = "certificates",
               **kwargs: Any) -> ServedCertificate:
        """
        A L{ServedCertificate} with the chain leaf, intermediate.
        """
        leaf, key = self.issue(names, **kwargs)
        return build_certificate(label, Origin(section, label), chain_pem([leaf,
                                                                          self.intermediate]),
                                 key_pem(key))

    def write_root(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.root.public_bytes(PEM))
        return path


class CertificateFiles:
    """
    Certificate files of a L{TestCA} in a directory, written as an
    administrator would: the chain (leaf, intermediate) in one file, the key
    in another.
    """

    def __init__(self, ca: TestCA, directory: Path) -> None:
        self.ca = ca
        self.directory = directory
        self.leaves: dict[str, x509.Certificate] = {}

    def write(self, stem: str, names: Sequence[str],
              order: Callable[[x509.Certificate, x509.Certificate], list[x509.Certificate]]
              = lambda leaf, intermediate: [leaf, intermediate],
              **kwargs: Any) -> tuple[Path, Path]:
        leaf, key = self.ca.issue(names, **kwargs)
        self.leaves[stem] = leaf
        certificate, private = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        self.directory.mkdir(parents=True, exist_ok=True)
        certificate.write_bytes(chain_pem(order(leaf, self.ca.intermediate)))
        private.write_bytes(key_pem(key))
        return certificate, private


def handshake(creator_context: SSL.Context, sni: bytes | None,
              maximum: int | None = None) -> SSL.Connection:
    """
    An in-memory handshake of a pyOpenSSL client that sends C{sni} with a
    server connection in C{creator_context}; the client connection.
    """
    server = SSL.Connection(creator_context, None)
    return handshake_with(server, sni, maximum)


def handshake_with(server: SSL.Connection, sni: bytes | None,
                   maximum: int | None = None) -> SSL.Connection:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if maximum is not None:
        context.set_max_proto_version(maximum)
    client = SSL.Connection(context, None)
    if sni is not None:
        client.set_tlsext_host_name(sni)
    client.set_connect_state()
    server.set_accept_state()
    for _ in range(20):
        moved = False
        for this, other in ((client, server), (server, client)):
            try:
                this.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                data = this.bio_read(1 << 16)
            except SSL.WantReadError:
                data = b""
            if data:
                moved = True
                other.bio_write(data)
        if not moved:
            break
    return client


def peer(client: SSL.Connection) -> x509.Certificate:
    certificate = client.get_peer_certificate(as_cryptography=True)
    assert certificate is not None, "the server sent no certificate"
    return certificate


# -- [certificates] ---------------------------------------------------------


class CertificatesSectionTests(SynchronousTestCase):
    """
    The C{[certificates]} lines: C{LABEL = CERTIFICATE_FILE[, KEY_FILE]},
    paths relative to the configuration's directory (docs/certificates.md).
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.files = CertificateFiles(TestCA(), self.directory / "tls")

    def load(self, lines: dict[str, str | None]) -> Model:
        return load(write_config(self.directory, build_ini({"certificates": lines})))

    def problems(self, lines: dict[str, str | None]) -> list[tuple[str | None, str | None, str]]:
        error = self.assertRaises(ConfigError, self.load, lines)
        return [(p.section, p.key, p.message) for p in error.problems]

    def test_lines_in_file_order(self) -> None:
        """
        Every line becomes one entry, in file order, with its label; a
        single path holds certificate and key together.
        """
        self.files.write("org", ["autodiscover.example.org"])
        certificate, key = self.files.write("net", ["*.example.net"])
        combined = self.directory / "tls" / "both.pem"
        combined.write_bytes(certificate.read_bytes() + key.read_bytes())
        model = self.load({"org": "tls/org.crt, tls/org.key", "Net-2.x_y": "tls/both.pem"})
        self.assertEqual([(c.label, c.certificate, c.private_key) for c in model.certificates],
                         [("org", self.directory / "tls" / "org.crt",
                           self.directory / "tls" / "org.key"),
                          ("Net-2.x_y", combined, combined)])
        self.assertEqual(load(write_config(self.directory)).certificates, ())

    def test_refused_lines(self) -> None:
        """
        Every bad line is refused with section and key, and all of them at
        once: a bad label, the reserved label C{default}, an empty value,
        three paths, a missing or unreadable file, a directory, a label
        given twice in another letter case.
        """
        self.files.write("org", ["autodiscover.example.org"])
        found = self.problems({
            "-bad": "tls/org.crt, tls/org.key",
            "Default": "tls/org.crt, tls/org.key",
            "empty": " ",
            "three": "tls/org.crt, tls/org.key, tls/org.key",
            "hole": "tls/org.crt, ",
            "missing": "tls/missing.crt, tls/org.key",
            "folder": "tls, tls/org.key",
            "org": "tls/org.crt, tls/org.key",
            "ORG": "tls/org.crt, tls/org.key",
        })
        self.assertEqual([(section, key) for section, key, _ in found],
                         [("certificates", k) for k in ("-bad", "Default", "empty", "three",
                                                         "hole", "missing", "folder", "ORG")])
        messages = dict((key, message) for _, key, message in found)
        self.assertIn("label", messages["-bad"])
        self.assertIn("[server] https", messages["Default"])
        self.assertIn("missing.crt", messages["missing"])
        self.assertIn("org", messages["ORG"])

    def test_too_many_lines(self) -> None:
        """
        More than 1000 lines are refused at once, before any file is read.
        """
        found = self.problems({f"c{n}": "nowhere.pem" for n in range(1001)})
        self.assertEqual(found[0][:2], ("certificates", None))
        self.assertIn("at most 1000", found[0][2])


# -- names ------------------------------------------------------------------


class ServerNameTests(SynchronousTestCase):
    """
    L{server_name}: what a client's SNI value is looked up as.
    """

    def test_case_and_trailing_dot(self) -> None:
        """
        Upper case and one trailing dot are tolerated.
        """
        self.assertEqual(server_name(b"AutoDiscover.Example.ORG."), "autodiscover.example.org")
        self.assertEqual(server_name(b"mail.example.test"), "mail.example.test")
        self.assertEqual(server_name(b"XN--BCHER-KVA.example"), "xn--bcher-kva.example")

    def test_nothing_to_look_up(self) -> None:
        """
        No SNI, an empty value, non-ASCII bytes (a U-label, not the A-label
        RFC 6066 requires), control characters, spaces, empty labels, a
        label over 63 bytes, a name over 253 bytes, two trailing dots and
        a wildcard all give L{None}: the default certificate.
        """
        for raw in (None, b"", b".", b"b\xc3\xbccher.example", b"\xff\xfe\x00",
                    b"mail.example.test\x00.evil", b"mail example.test", b"a..example.test",
                    b".example.test", b"a" * 64 + b".example", b"a." * 127 + b"example",
                    b"example.test..", b"*.example.org", b"mail.example.test/", b"\r\n"):
            self.assertIsNone(server_name(raw), raw)
        self.assertEqual(server_name(b"a" * 63 + b".example"), "a" * 63 + ".example")

    def test_fuzz(self) -> None:
        """
        Random bytes of every length up to 300 never raise.
        """
        chance = random.Random(17)
        for length in range(300):
            server_name(bytes(chance.randrange(256) for _ in range(length)))
            server_name(bytes(chance.choice(b"aZ.-*_\x00\xff") for _ in range(length)))


class CertificateNamesTests(SynchronousTestCase):
    """
    L{certificate_names}: what a certificate serves, from its
    subjectAltName only.
    """

    def setUp(self) -> None:
        self.ca = TestCA()

    def test_exact_and_wildcards(self) -> None:
        """
        DNS names in any case, with a trailing dot, are lookup keys; a
        whole left-most C{*} label is a wildcard, kept as its parent; each
        once.
        """
        leaf, _ = self.ca.issue(["Mail.Example.ORG.", "*.Example.NET", "mail.example.org",
                                 "xn--bcher-kva.example"])
        self.assertEqual(certificate_names(leaf),
                         (["mail.example.org", "xn--bcher-kva.example"], ["example.net"], []))

    def test_ignored_entries(self) -> None:
        """
        Partial wildcards, wildcards of one label, a lone C{*} and names
        no client can send are ignored, each with a note.
        """
        leaf, _ = self.ca.issue(["f*.example.org", "*.org", "*", "*.*.example.org",
                                 "under score.example", "ok.example.org"])
        exact, wildcards, ignored = certificate_names(leaf)
        self.assertEqual((exact, wildcards), (["ok.example.org"], []))
        self.assertEqual(len(ignored), 5, ignored)

    def test_common_name_is_not_read(self) -> None:
        """
        Without a subjectAltName there are no names, whatever the CN says.
        """
        leaf, _ = self.ca.issue([], common_name="mail.example.org")
        self.assertEqual(certificate_names(leaf), ([], [], []))


# -- one certificate -----------------------------------------------------------


class BuildCertificateTests(SynchronousTestCase):
    """
    L{build_certificate}: a certificate from PEM bytes, hostile ones
    included.
    """

    def setUp(self) -> None:
        self.ca = TestCA()
        self.leaf, self.key = self.ca.issue(["autodiscover.example.org"])

    def build(self, certificates: Sequence[x509.Certificate], key: PrivateKeyTypes | None = None,
              require_names: bool = True) -> ServedCertificate:
        return build_certificate("org", Origin("certificates", "org"), chain_pem(certificates),
                                 key_pem(key or self.key), require_names)

    def served_chain(self, certificate: ServedCertificate) -> list[x509.Certificate]:
        client = handshake(certificate.context, b"autodiscover.example.org")
        return client.get_peer_cert_chain(as_cryptography=True) or []

    def test_chain_in_order(self) -> None:
        """
        Leaf then intermediate, as a CA delivers them: served as they are,
        no warning; its names and validity are the leaf's.
        """
        certificate = self.build([self.leaf, self.ca.intermediate])
        self.assertEqual(certificate.chain, (self.leaf, self.ca.intermediate))
        self.assertEqual(certificate.warnings, ())
        self.assertEqual(certificate.names, ("autodiscover.example.org",))
        self.assertEqual(certificate.not_after, self.leaf.not_valid_after_utc)
        self.assertEqual(self.served_chain(certificate), [self.leaf, self.ca.intermediate])

    def test_chain_out_of_order(self) -> None:
        """
        A file with the root, the intermediate and the leaf last (and any
        other order) is served leaf first, each followed by its issuer,
        with a warning; the leaf is the certificate the key belongs to.
        """
        for order in ([self.ca.root, self.ca.intermediate, self.leaf],
                      [self.ca.intermediate, self.leaf, self.ca.root],
                      [self.ca.intermediate, self.leaf]):
            certificate = self.build(order)
            expected = [self.leaf, self.ca.intermediate, self.ca.root][:len(order)]
            self.assertEqual(list(certificate.chain), expected)
            self.assertEqual(self.served_chain(certificate), expected)
            self.assertEqual(len(certificate.warnings), 1, certificate.warnings)
            self.assertIn("out of order", certificate.warnings[0])

    def test_stray_certificate(self) -> None:
        """
        A certificate of the file that issued nothing in the chain (another
        CA's intermediate) is sent after the chain, as before, with a
        warning naming it.
        """
        other = TestCA("Other")
        certificate = self.build([self.leaf, other.intermediate, self.ca.intermediate])
        self.assertEqual(certificate.chain, (self.leaf, self.ca.intermediate, other.intermediate))
        self.assertTrue(any("Other Intermediate" in w for w in certificate.warnings),
                        certificate.warnings)

    def test_key_of_another_certificate(self) -> None:
        """
        A key that belongs to no certificate of the file is refused.
        """
        _, other_key = self.ca.issue(["autodiscover.example.org"])
        e = self.assertRaises(CertificateError, self.build, [self.leaf, self.ca.intermediate],
                              other_key)
        self.assertIn("the key does not belong to the certificate", str(e))

    def test_garbage(self) -> None:
        """
        No PEM certificate, no PEM key, an encrypted key, too many
        certificates or too many bytes: refused, saying which.
        """
        origin = Origin("certificates", "org")
        cases = [
            (b"not PEM", key_pem(self.key), "PEM certificate"),
            (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
             key_pem(self.key), "PEM certificate"),
            (chain_pem([self.leaf]),
             b"-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----\n", "key"),
            (chain_pem([self.leaf]), self.key.private_bytes(
                PEM, serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret")), "unencrypted"),
            (chain_pem([self.leaf] + [self.ca.intermediate] * MAX_CHAIN), key_pem(self.key),
             f"at most {MAX_CHAIN}"),
            (b"#" * (MAX_PEM_BYTES + 1), key_pem(self.key), "bytes"),
        ]
        for certificate_pem, private_pem, fragment in cases:
            e = self.assertRaises(CertificateError, build_certificate, "org", origin,
                                  certificate_pem, private_pem)
            self.assertIn(fragment, str(e))

    def test_no_names(self) -> None:
        """
        A certificate without DNS names in its subjectAltName can never be
        chosen by SNI: refused in C{[certificates]}; as the default (which
        needs no name) it loads with a warning.
        """
        leaf, key = self.ca.issue([], common_name="autodiscover.example.org")
        e = self.assertRaises(CertificateError, self.build, [leaf], key)
        self.assertIn("subjectAltName", str(e))
        default = self.build([leaf], key, require_names=False)
        self.assertEqual(default.names, ())
        self.assertTrue(any("no DNS name" in w for w in default.warnings))

    def test_expired_loads(self) -> None:
        """
        An expired certificate loads (refusing it would stop the start, or
        keep an equally expired one on reload); the reports warn.
        """
        leaf, key = self.ca.issue(["autodiscover.example.org"], not_before=NOW - 100 * DAY,
                                  not_after=NOW - DAY)
        certificate = self.build([leaf, self.ca.intermediate], key)
        self.assertFalse(certificate.valid_at(NOW.timestamp()))
        self.assertEqual(describe(certificate, NOW)["state"], "expired")

    def test_signing_keys(self) -> None:
        """
        RSA and ECDSA keys sign profiles; an Ed25519 key serves TLS but
        signs none (CMS here takes RSA and ECDSA only).
        """
        self.assertIsNotNone(signer_for(self.build([self.leaf])))
        key = ed25519.Ed25519PrivateKey.generate()
        leaf, _ = self.ca.issue(["autodiscover.example.org"], key=key)
        certificate = self.build([leaf, self.ca.intermediate], key)
        self.assertIsNone(certificate.signing_key)
        self.assertIsNone(signer_for(certificate))
        self.assertFalse(describe(certificate, NOW)["signs_profiles"])


# -- the set and SNI ---------------------------------------------------------


class SelectionTests(SynchronousTestCase):
    """
    L{CertificateSet}: which certificate a name gets, and the handshake
    that switches to it.
    """

    def setUp(self) -> None:
        self.ca = TestCA()
        self.default = self.ca.served("default", ["mail.example.test"], section="server")
        self.org = self.ca.served("org", ["autodiscover.example.org", "autoconfig.example.org",
                                          "mail.example.org"])
        self.wild = self.ca.served("wild", ["*.example.net", "example.net"])
        self.set = CertificateSet(self.default, [self.org, self.wild])

    def chosen(self, raw: bytes | None, certificates: CertificateSet | None = None) -> str:
        return (certificates or self.set).select(raw).label

    def test_by_name(self) -> None:
        """
        Each name gets the certificate that names it, in any letter case
        and with a trailing dot; a wildcard covers one label in its place.
        """
        for raw, label in ((b"autodiscover.example.org", "org"),
                           (b"AUTOCONFIG.EXAMPLE.ORG.", "org"),
                           (b"autodiscover.example.net", "wild"),
                           (b"example.net", "wild"),
                           (b"mail.example.test", "default")):
            self.assertEqual(self.chosen(raw), label, raw)

    def test_default(self) -> None:
        """
        No SNI, an unknown name, a name two labels below a wildcard, the
        wildcard's own parent when not named, garbage and over-long values
        all get the default.
        """
        bare = CertificateSet(self.default, [self.ca.served("w", ["*.example.org"])])
        self.assertEqual(self.chosen(b"example.org", bare), "default")
        for raw in (None, b"", b"unknown.example", b"a.b.example.net", b"example.org",
                    b"\xff" * 40, b"b\xc3\xbccher.example", b"a" * 300, b"*.example.net",
                    b"autodiscover.example.org\x00"):
            self.assertEqual(self.chosen(raw), "default", raw)

    def test_exact_before_wildcard(self) -> None:
        """
        An exact name wins over a wildcard that comes earlier.
        """
        wild = self.ca.served("wild", ["*.example.org"])
        exact = self.ca.served("exact", ["autodiscover.example.org"])
        certificates = CertificateSet(self.default, [wild, exact])
        self.assertEqual(self.chosen(b"autodiscover.example.org", certificates), "exact")
        self.assertEqual(self.chosen(b"autoconfig.example.org", certificates), "wild")

    def test_order_among_equals(self) -> None:
        """
        Two certificates that name a name alike: the first in order serves
        it; the default, which comes last, only when no other names it.
        """
        first = self.ca.served("first", ["autodiscover.example.org"])
        second = self.ca.served("second", ["autodiscover.example.org", "mail.example.test"])
        certificates = CertificateSet(self.default, [first, second])
        self.assertEqual(self.chosen(b"autodiscover.example.org", certificates), "first")
        self.assertEqual(self.chosen(b"mail.example.test", certificates), "second")
        self.assertEqual(CertificateSet(self.default, [second, first]).select(
            b"autodiscover.example.org").label, "second")

    def test_valid_now_first(self) -> None:
        """
        Among certificates for one name, the first valid now serves it (an
        expired one that comes first, or one not valid yet, waits); when
        none is valid, the first.  Time is read at each lookup.
        """
        clock = Clock()
        clock.advance(NOW.timestamp())
        old = self.ca.served("old", ["autodiscover.example.org"], not_after=NOW + DAY)
        new = self.ca.served("new", ["autodiscover.example.org"], not_before=NOW + 0.5 * DAY,
                             not_after=NOW + 90 * DAY)
        certificates = CertificateSet(self.default, [old, new], clock.seconds)
        self.assertEqual(self.chosen(b"autodiscover.example.org", certificates), "old")
        clock.advance(2 * 86400)  # old expired, new valid
        self.assertEqual(self.chosen(b"autodiscover.example.org", certificates), "new")
        clock.advance(100 * 86400)  # both expired
        self.assertEqual(self.chosen(b"autodiscover.example.org", certificates), "old")

    def test_handshake_switches_context(self) -> None:
        """
        Over a real (in-memory) TLS 1.3 and TLS 1.2 handshake, a client
        that asks for a name gets that certificate and its chain; one that
        sends no SNI, or an unknown name, gets the default's.
        """
        context = self.set.options.getContext()
        for maximum in (None, SSL.TLS1_2_VERSION):
            for raw, certificate in ((b"autodiscover.example.org", self.org),
                                     (b"X.Example.Net", self.wild),
                                     (None, self.default),
                                     (b"unknown.example", self.default)):
                client = handshake(context, raw, maximum)
                self.assertEqual(peer(client), certificate.leaf, (raw, maximum))
                self.assertEqual(client.get_peer_cert_chain(as_cryptography=True),
                                 list(certificate.chain), (raw, maximum))

    def test_sessions_resume_after_the_switch(self) -> None:
        """
        A client that comes back to a name SNI switched to resumes its
        session (TLS 1.2 and 1.3), as one on the default does: the session
        cache stays the starting context's.
        """
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            for name in ("autodiscover.example.org", "mail.example.test"):
                self.assertTrue(self.resumed(version, name), (version, name))

    def resumed(self, version: ssl.TLSVersion, name: str) -> bool:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.minimum_version = context.maximum_version = version
        session = None
        for _ in range(2):
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            client = context.wrap_bio(incoming, outgoing, server_hostname=name,
                                      session=session)
            server = SSL.Connection(self.set.options.getContext(), None)
            server.set_accept_state()
            handshake_in_memory(client, incoming, outgoing, server)
            server.send(b"x")  # TLS 1.3: the ticket comes with the first data
            incoming.write(server.bio_read(1 << 16))
            self.assertEqual(client.read(1), b"x")
            self.assertEqual(x509.load_der_x509_certificate(client.getpeercert(True)),
                             self.set.select(name.encode()).leaf)
            session = client.session
            server.shutdown()  # OpenSSL forgets sessions of connections cut short
        return client.session_reused

    def test_callback_never_raises(self) -> None:
        """
        The servername callback survives thousands of random values (an
        exception would abort the connection in Twisted).
        """
        chance = random.Random(1)
        for length in range(0, 400, 3):
            for _ in range(5):
                self.set.context_for(bytes(chance.randrange(256) for _ in range(length)))
        self.assertIsNone(self.set.context_for(None))
        self.assertIs(self.set.context_for(b"autodiscover.example.org"), self.org.context)

    def test_for_domain(self) -> None:
        """
        A domain's profiles are signed with the certificate serving
        C{autodiscover.<domain>}, else C{<domain>}, C{autoconfig.<domain>},
        the domain's public host name, else the default.
        """
        self.assertIs(self.set.for_domain("example.org", "mail.example.test"), self.org)
        self.assertIs(self.set.for_domain("example.net", "mail.example.test"), self.wild)
        self.assertIs(self.set.for_domain("example.test", "mail.example.test"), self.default)
        host_only = self.ca.served("host", ["mail.example.com"])
        certificates = CertificateSet(self.default, [host_only])
        self.assertIs(certificates.for_domain("example.com", "mail.example.com"), host_only)
        self.assertIs(certificates.for_domain("example.com", "mail.example.test"), self.default)

    def test_replacing(self) -> None:
        """
        L{CertificateSet.replacing} (how a renewing source swaps one
        certificate): same label replaced in place, a new label appended,
        the default replaced by its label; the original set unchanged.
        """
        renewed = self.ca.served("org", ["autodiscover.example.org"])
        added = self.ca.served("added", ["autodiscover.example.com"])
        certificates = self.set.replacing(renewed)
        self.assertEqual(certificates.certificates, (renewed, self.wild))
        self.assertIs(self.set.certificates[0], self.org)
        self.assertEqual(certificates.replacing(added).certificates, (renewed, self.wild, added))
        new_default = self.ca.served("default", ["mail.example.test"], section="server")
        self.assertIs(self.set.replacing(new_default).default, new_default)


class ReloadableSetTests(SynchronousTestCase):
    """
    L{ReloadableServerTLS} over a L{CertificateSet}: a new set serves new
    connections; a connection created before keeps its certificate.
    """

    def test_swap(self) -> None:
        """
        Connections created before C{replace} finish their handshake on the
        old set (by SNI too); connections after it get the new one.
        """
        ca = TestCA()
        default = ca.served("default", ["mail.example.test"], section="server")
        first = ca.served("org", ["autodiscover.example.org"])
        second = ca.served("org", ["autodiscover.example.org"])
        creator = ReloadableServerTLS(CertificateSet(default, [first]))
        self.assertTrue(verifyObject(IOpenSSLServerConnectionCreator, creator))
        before = creator.serverConnectionForTLS(None)
        creator.replace(CertificateSet(default, [second]))
        after = creator.serverConnectionForTLS(None)
        self.assertEqual(peer(handshake_with(before, b"autodiscover.example.org")), first.leaf)
        self.assertEqual(peer(handshake_with(after, b"autodiscover.example.org")), second.leaf)


# -- files and reloads ------------------------------------------------------


class LoadCertificatesTests(SynchronousTestCase):
    """
    L{load_certificates}: the default and C{[certificates]} from their
    files; a reload keeps what did not change and refuses what is broken.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.ca = TestCA()
        self.files = CertificateFiles(self.ca, self.directory / "tls")
        self.files.write("server", ["mail.example.test"])
        self.files.write("org", ["autodiscover.example.org"])
        self.files.write("net", ["*.example.net"])

    def model(self, lines: dict[str, str] | None = None) -> Model:
        lines = {"org": "tls/org.crt, tls/org.key", "net": "tls/net.crt, tls/net.key"} \
            if lines is None else lines
        return load(write_config(self.directory, build_ini({"certificates": lines})))

    def test_loads_every_certificate(self) -> None:
        """
        The default from C{[server] https}, the others in file order, each
        with its origin for messages.
        """
        certificates = load_certificates(self.model())
        self.assertEqual(certificates.default.leaf, self.files.leaves["server"])
        self.assertEqual(str(certificates.default.origin), "[server] https")
        self.assertEqual([(c.label, str(c.origin)) for c in certificates.certificates],
                         [("org", "[certificates] org"), ("net", "[certificates] net")])
        self.assertEqual(certificates.certificates[1].leaf, self.files.leaves["net"])

    def test_unchanged_files_keep_the_set(self) -> None:
        """
        A reload that finds the same bytes keeps the very same set (and so
        the same contexts and session cache).
        """
        model = self.model()
        current = load_certificates(model)
        self.assertIs(load_certificates(model, current), current)

    def test_changed_file_rebuilds_only_it(self) -> None:
        """
        A rewritten certificate gives a new set in which the others are
        the same objects, with their contexts; the old set is untouched.
        """
        model = self.model()
        current = load_certificates(model)
        old_org = current.certificates[0]
        self.files.write("net", ["*.example.net"])
        new = load_certificates(model, current)
        self.assertIsNot(new, current)
        self.assertIs(new.default, current.default)
        self.assertIs(new.certificates[0], old_org)
        self.assertIs(new.certificates[0].context, old_org.context)
        self.assertEqual(new.certificates[1].leaf, self.files.leaves["net"])
        self.assertIsNot(current.certificates[1].leaf, self.files.leaves["net"])

    def test_broken_files_named(self) -> None:
        """
        Every unusable certificate is a problem naming the configuration
        file, the section and key, and the certificate's files; a key of
        another certificate, garbage and a missing file alike.
        """
        model = self.model()
        (self.directory / "tls" / "org.key").write_bytes(
            (self.directory / "tls" / "net.key").read_bytes())
        (self.directory / "tls" / "net.crt").write_bytes(b"garbage")
        (self.directory / "tls" / "server.key").unlink()
        error = self.assertRaises(ConfigError, load_certificates, model)
        where = [(p.file, p.section, p.key) for p in error.problems]
        self.assertEqual(where, [(str(model.source), "server", "https"),
                                 (str(model.source), "certificates", "org"),
                                 (str(model.source), "certificates", "net")])
        text = str(error)
        self.assertIn(f"[certificates] org: {self.directory / 'tls' / 'org.crt'} / "
                      f"{self.directory / 'tls' / 'org.key'}: the key does not belong", text)
        self.assertIn("net.crt", text)
        self.assertIn("server.key", text)

    def test_other_sources_between(self) -> None:
        """
        Certificates of another source (ACME, later) come after
        C{[certificates]} and before the default.
        """
        acme = self.ca.served("acme:autodiscover.example.org", ["autodiscover.example.org",
                                                                 "autodiscover.example.com"],
                              section="acme")
        certificates = load_certificates(self.model(), others=[acme])
        self.assertEqual([c.label for c in certificates.in_precedence],
                         ["org", "net", "acme:autodiscover.example.org", "default"])
        self.assertEqual(certificates.select(b"autodiscover.example.org").label, "org")
        self.assertEqual(certificates.select(b"autodiscover.example.com").label,
                         "acme:autodiscover.example.org")

    def test_reload_through_the_store(self) -> None:
        """
        Subscribed to the store as answering.py does: a good reload swaps
        the set; a reload with a broken certificate is refused, the old set
        stays in force and the error names file, section and key.
        """
        model = self.model()
        store = ConfigStore(model, lambda: load(model.source), run_synchronously)
        creator = ReloadableServerTLS(load_certificates(model))
        store.subscribe(lambda new: load_certificates(new, creator.current), creator.replace)
        first = creator.current
        self.files.write("org", ["autodiscover.example.org"])
        self.assertTrue(self.successResultOf(store.reload()))
        second = creator.current
        self.assertIsNot(second, first)
        self.assertEqual(second.certificates[0].leaf, self.files.leaves["org"])
        (self.directory / "tls" / "org.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
        self.assertFalse(self.successResultOf(store.reload()))
        self.assertIs(creator.current, second)
        self.assertIn(f"{model.source}: [certificates] org: ", store.last_error or "")


# -- reports -------------------------------------------------------------------


class ReportTests(SynchronousTestCase):
    """
    Coverage of the served names, and the warnings the log and
    C{check-config} print.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.ca = TestCA()
        self.files = CertificateFiles(self.ca, self.directory / "tls")
        self.files.write("server", ["mail.example.test", "autodiscover.example.test",
                                    "autoconfig.example.test"])
        self.files.write("org", ["*.example.org"])
        self.model = load(write_config(self.directory, build_ini({
            "server": {"domains": "example.test, example.org"},
            "domain:example.org": {"server.public_hostname": "mail.example.org"},
            "certificates": {"org": "tls/org.crt, tls/org.key"},
        })))

    def test_served_names(self) -> None:
        """
        The public host names, and autodiscover. and autoconfig. of every
        domain, each once with why it is served; not the bare domains.
        """
        self.assertEqual(list(served_names(self.model)),
                         ["mail.example.test", "autodiscover.example.test",
                          "autoconfig.example.test", "mail.example.org",
                          "autodiscover.example.org", "autoconfig.example.org"])

    def test_everything_covered(self) -> None:
        """
        With the wildcard for example.org every served name has a
        certificate, and nothing is warned about.
        """
        certificates = load_certificates(self.model)
        self.assertEqual([(c.name, c.certificate.label if c.certificate else None)
                          for c in coverage(certificates, self.model)],
                         [("mail.example.test", "default"),
                          ("autodiscover.example.test", "default"),
                          ("autoconfig.example.test", "default"),
                          ("mail.example.org", "org"), ("autodiscover.example.org", "org"),
                          ("autoconfig.example.org", "org")])
        self.assertEqual(warnings(certificates, self.model, NOW), [])

    def test_uncovered_and_expiring(self) -> None:
        """
        A served name without a certificate, an expired certificate, one
        about to expire and one not valid yet are each warned about with
        file, section and key; so is a name two lines of [certificates]
        name exactly.
        """
        self.files.write("org", ["autodiscover.example.org", "mail.example.org"],
                         not_before=NOW - 80 * DAY, not_after=NOW + 3 * DAY)
        self.files.write("server", ["mail.example.test", "autodiscover.example.test"],
                         not_before=NOW - 100 * DAY, not_after=NOW - DAY)
        self.files.write("later", ["autodiscover.example.org"], not_before=NOW + DAY)
        model = load(write_config(self.directory, build_ini({
            "server": {"domains": "example.test, example.org"},
            "domain:example.org": {"server.public_hostname": "mail.example.org"},
            "certificates": {"org": "tls/org.crt, tls/org.key",
                             "later": "tls/later.crt, tls/later.key"},
        })))
        found = [str(p) for p in warnings(load_certificates(model), model, NOW)]
        source = str(model.source)

        def has(prefix: str, *fragments: str) -> None:
            matching = [line for line in found if line.startswith(f"{source}: {prefix}: "
                                                                  "warning: ")
                        and all(f in line for f in fragments)]
            self.assertEqual(len(matching), 1, (prefix, fragments, found))

        has("[server] https", "expired on")
        has("[certificates] org", "expires on", "in 3.0 days")
        has("[certificates] later", "not valid before")
        has("[certificates] later", "autodiscover.example.org is named by org too")
        has("[certificates]", "no certificate covers autoconfig.example.test",
            "autoconfig of example.test")
        has("[certificates]", "no certificate covers autoconfig.example.org")
        has("[certificates]", "mail.example.test ([server] public_hostname) is served by "
            "default, which is expired")
        self.assertEqual(len(found), 8, found)

    def test_describe(self) -> None:
        """
        What /health shows of one certificate.
        """
        certificate = load_certificates(self.model).certificates[0]
        shown = describe(certificate, NOW)
        self.assertEqual(shown["certificate"], "org")
        self.assertEqual(shown["configured"], "[certificates] org")
        self.assertEqual(shown["names"], ["*.example.org"])
        self.assertEqual(shown["state"], "valid")
        self.assertFalse(shown["self_signed"])
        self.assertTrue(shown["signs_profiles"])
        self.assertLess(abs(shown["days_left"] - 90), 0.2, shown["days_left"])
        self.assertIn("Test Intermediate", shown["issuer"])
        json.dumps(shown)


class HealthAndMetricsTests(SynchronousTestCase):
    """
    /health lists every certificate with its names and expiry and the
    served names none covers; /metrics gives the same as numbers.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.files = CertificateFiles(TestCA(), self.directory / "tls")
        self.files.write("server", ["mail.example.test", "autodiscover.example.test"])
        self.files.write("org", ["autodiscover.example.org", "mail.example.org"])
        self.model = load(write_config(self.directory, build_ini({
            "server": {"domains": "example.test, example.org"},
            "certificates": {"org": "tls/org.crt, tls/org.key"},
        })))
        self.certificates = load_certificates(self.model)

    def test_health_document(self) -> None:
        """
        C{certificates} (the default first, then in order),
        C{served_names} with the label serving each (null for none) and
        C{uncovered_names}.
        """
        store = ConfigStore(self.model, lambda: self.model, run_synchronously)
        clock = Clock()
        resource = HealthResource(store, HealthMonitor(lambda: store.current, clock), clock,
                                  lambda: True, lambda: self.certificates)
        request = DummyRequest([b""])
        request.client = IPv4Address("TCP", "127.0.0.1", 40000)
        document = json.loads(resource.render_GET(request))  # type: ignore[arg-type]
        self.assertEqual([(c["certificate"], c["default"], c["names"])
                          for c in document["certificates"]],
                         [("default", True, ["mail.example.test", "autodiscover.example.test"]),
                          ("org", False, ["autodiscover.example.org", "mail.example.org"])])
        self.assertEqual(document["certificates"][1]["state"], "valid")
        self.assertIn("not_after", document["certificates"][1])
        self.assertEqual({n["name"]: n["certificate"] for n in document["served_names"]},
                         {"mail.example.test": "default", "autodiscover.example.test": "default",
                          "autoconfig.example.test": None, "autodiscover.example.org": "org",
                          "autoconfig.example.org": None})
        self.assertEqual(document["uncovered_names"],
                         ["autoconfig.example.test", "autoconfig.example.org"])
        self.assertIn("endpoints", document)

    def test_metrics(self) -> None:
        """
        Expiry seconds and name counts per certificate label, coverage per
        served name, and the count of uncovered names.
        """
        metrics = Metrics()
        metrics.add_source(certificate_metrics(lambda: self.certificates, lambda: self.model))
        text = metrics.text().decode()
        lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                 for line in text.splitlines() if line and not line.startswith("#")}
        expiry = lines['smartdiscover_certificate_expiry_seconds{certificate="org"}']
        self.assertLess(abs(expiry - 90 * 86400), 3600, expiry)
        self.assertIn('smartdiscover_certificate_expiry_seconds{certificate="default"}', lines)
        self.assertEqual(lines['smartdiscover_certificate_names{certificate="org"}'], 2)
        self.assertEqual(lines['smartdiscover_served_name_covered{certificate="org",'
                               'name="autodiscover.example.org"}'], 1)
        self.assertEqual(lines['smartdiscover_served_name_covered{certificate="",'
                               'name="autoconfig.example.org"}'], 0)
        self.assertEqual(lines["smartdiscover_served_names_uncovered"], 2)


class CheckConfigTests(SynchronousTestCase):
    """
    C{smartdiscover check-config} with certificates: one line per
    certificate, warnings on stderr, unusable files as errors.
    """

    def setUp(self) -> None:
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)
        self.directory = Path(self.mktemp()).absolute()
        self.files = CertificateFiles(TestCA(), self.directory / "tls")

    def config(self) -> Path:
        return write_config(self.directory, build_ini({
            "server": {"domains": "example.test, example.org"},
            "certificates": {"org": "tls/org.crt, tls/org.key"},
        }))

    def test_each_certificate_listed(self) -> None:
        """
        Names and expiry of every certificate on stdout before the OK line;
        the uncovered served names as warnings; status 0.
        """
        self.files.write("server", ["mail.example.test", "autodiscover.example.test",
                                    "autoconfig.example.test"])
        self.files.write("org", ["autodiscover.example.org"])
        path = self.config()
        self.assertEqual(cli.main(["check-config", str(path)]), 0, self.stderr.getvalue())
        out = self.stdout.getvalue().splitlines()
        self.assertEqual(len(out), 3, out)
        self.assertTrue(out[0].startswith(
            f"certificate default ([server] https, {self.directory / 'tls' / 'server.crt'} / "
            f"{self.directory / 'tls' / 'server.key'}): mail.example.test, "
            "autodiscover.example.test, autoconfig.example.test; valid until "), out[0])
        self.assertTrue(out[1].startswith("certificate org ([certificates] org, "), out[1])
        self.assertIn("autodiscover.example.org; valid until", out[1])
        self.assertIn("(90 days)", out[1])
        self.assertTrue(out[2].endswith(": OK (2 domain(s), 1 user(s))"), out[2])
        self.assertEqual(self.stderr.getvalue(),
                         f"{path}: [certificates]: warning: no certificate covers "
                         "autoconfig.example.org (autoconfig of example.org): clients that ask "
                         "for it get default and refuse it\n")

    def test_unusable_certificate(self) -> None:
        """
        A certificate whose key does not match fails the check with file,
        section and key, and nothing on stdout.
        """
        self.files.write("server", ["mail.example.test"])
        self.files.write("org", ["autodiscover.example.org"])
        (self.directory / "tls" / "org.key").write_bytes(
            (self.directory / "tls" / "server.key").read_bytes())
        path = self.config()
        self.assertEqual(cli.main(["check-config", str(path)]), 1)
        [line] = self.stderr.getvalue().splitlines()
        self.assertTrue(line.startswith(f"{path}: [certificates] org: "), line)
        self.assertIn("the key does not belong to the certificate", line)
        self.assertEqual(self.stdout.getvalue(), "")

    def test_development_certificate_pending(self) -> None:
        """
        Before the first start there is no default yet: nothing is said of
        it, and the names it will cover count as covered (every served
        name here), as they will be.
        """
        self.files.write("org", ["autodiscover.example.org"])
        path = self.config()
        self.assertEqual(cli.main(["check-config", str(path)]), 0)
        self.assertEqual(self.stderr.getvalue(), "")
        out = self.stdout.getvalue().splitlines()
        self.assertEqual(len(out), 2, out)
        self.assertTrue(out[0].startswith("certificate org "), out[0])
        self.assertFalse((self.directory / "tls" / "server.crt").exists())


class MobileconfigPerDomainTests(SynchronousTestCase, SiteFixture):
    """
    C{/mobileconfig} of a user of domain B is signed with B's certificate;
    of domain A with A's (the default here); the signer is asked for per
    request, so a swapped set signs the next profile.
    """

    def test_signed_with_the_domains_certificate(self) -> None:
        ca = TestCA()
        default = ca.served("default", ["mail.example.test", "autodiscover.example.test"],
                            section="server")
        org = ca.served("org", ["autodiscover.example.org"])
        creator = ReloadableServerTLS(CertificateSet(default, [org]))
        model = self.load_model()
        resource = self.tree(model, lambda domain: signer_for(creator.current.for_domain(
            domain, model.catalogue_for(domain).public_hostname)))

        def signers(user: bytes) -> set[x509.Certificate]:
            response = self.request(resource, b"GET", b"/mobileconfig",
                                    headers=(basic(user, DEMO_PASSWORD.encode()),))
            self.assertEqual(response.code, 200, response.body[:200])
            return set(pkcs7.load_der_pkcs7_certificates(response.body))

        self.assertEqual(signers(b"olga@example.org"), {org.leaf, ca.intermediate})
        self.assertEqual(signers(b"demo@example.test"), {default.leaf, ca.intermediate})
        renewed = ca.served("org", ["autodiscover.example.org"])
        creator.replace(creator.current.replacing(renewed))
        self.assertEqual(signers(b"olga@example.org"), {renewed.leaf, ca.intermediate})
