"""
Tests for L{smartdiscover.web.devcert} and L{smartdiscover.web.tls}: the
development certificate, loading and reloading certificate files, and the
TLS settings the server context enforces (TWISTED.md section 3, SECURITY.md
section 4.1).

Handshakes run in memory over pyOpenSSL memory BIOs: no sockets.
"""

from __future__ import annotations

import datetime
import os
import ssl
import stat
import warnings
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import load
from smartdiscover.web.devcert import create_development_certificate, development_names
from smartdiscover.web.tls import (
    ReloadableServerTLS,
    ServerTLS,
    TLSFilesError,
    load_server_tls,
)
from tests.helpers import handshake_in_memory, write_config


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


class Handshake:
    """
    An in-memory TLS handshake between a server connection and a client
    built from C{client_context}; C{errors} maps "client" / "server" to the
    first C{SSL.Error} each side raised.
    """

    def __init__(self, server: SSL.Connection, client_context: SSL.Context) -> None:
        self.server = server
        self.client = SSL.Connection(client_context, None)
        self.client.set_tlsext_host_name(b"mail.example.test")
        self.client.set_connect_state()
        self.server.set_accept_state()
        self.errors: dict[str, SSL.Error] = {}
        self.client_bytes = 0
        self._run()

    def _run(self) -> None:
        sides = (("client", self.client, self.server), ("server", self.server, self.client))
        for _ in range(20):
            moved = False
            for name, this, other in sides:
                if name not in self.errors:
                    try:
                        this.do_handshake()
                    except SSL.WantReadError:
                        pass
                    except SSL.Error as e:
                        self.errors[name] = e
                try:
                    data = this.bio_read(1 << 16)
                except SSL.WantReadError:
                    data = b""
                if data:
                    moved = True
                    if name == "client":
                        self.client_bytes += len(data)
                    other.bio_write(data)
            if not moved:
                return

    @property
    def succeeded(self) -> bool:
        return not self.errors and self.client.get_protocol_version_name() != "Unknown"

    def peer_certificate(self) -> x509.Certificate:
        certificate = self.client.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            raise AssertionError("the server sent no certificate")
        return certificate


def client_context(minimum: int | None = None, maximum: int | None = None,
                   ciphers: bytes | None = None) -> SSL.Context:
    """
    A client context; C{@SECLEVEL=0} lets OpenSSL actually offer the old
    versions and suites the server must refuse, so a failure is the server's.
    """
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_cipher_list(ciphers or b"DEFAULT:@SECLEVEL=0")
    if minimum is not None:
        context.set_min_proto_version(minimum)
    if maximum is not None:
        context.set_max_proto_version(maximum)
    return context


class TLSFilesMixin:
    """
    Certificate and key files in a fresh temporary directory.
    """

    mktemp: Callable[[], str]  # provided by the TestCase

    def files(self, names: list[str] | None = None) -> tuple[Path, Path]:
        directory = Path(self.mktemp())
        certificate, key = directory / "tls" / "server.crt", directory / "tls" / "server.key"
        create_development_certificate(certificate, key, names or ["mail.example.test"])
        return certificate, key


class DevelopmentCertificateTests(TLSFilesMixin, SynchronousTestCase):
    """
    L{create_development_certificate} and L{development_names}.
    """

    def test_names_from_configuration(self) -> None:
        """
        The certificate for the shipped configuration names the public host,
        autodiscover.<domain>, autoconfig.<domain> and <domain> (plus
        loopback), and its subject
        CN is the public host name.
        """
        model = load(write_config(self.mktemp()))
        names = development_names(model.public_hostname, model.domains)
        self.assertEqual(names, ["mail.example.test", "autodiscover.example.test",
                                 "autoconfig.example.test", "example.test"])
        certificate, key = self.files(names)
        cert = _certificate(certificate)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = san.get_values_for_type(x509.DNSName)
        self.assertLessEqual({"mail.example.test", "autodiscover.example.test",
                              "autoconfig.example.test", "example.test"}, set(dns_names))
        self.assertIn("localhost", dns_names)
        self.assertEqual(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         "mail.example.test")

    def test_names_without_duplicates(self) -> None:
        """
        A public host name that is also a served domain is listed once,
        first, and the order of domains is kept.
        """
        self.assertEqual(development_names("example.test", ("example.test", "other.test")),
                         ["example.test", "autodiscover.example.test",
                          "autoconfig.example.test", "autodiscover.other.test",
                          "autoconfig.other.test", "other.test"])

    def test_ecdsa_p256_server_certificate(self) -> None:
        """
        The key is ECDSA on P-256, signed with SHA-256, valid now, for TLS
        server authentication.
        """
        certificate, _ = self.files()
        cert = _certificate(certificate)
        public_key = cert.public_key()
        self.assertIsInstance(public_key, ec.EllipticCurvePublicKey)
        self.assertIsInstance(getattr(public_key, "curve", None), ec.SECP256R1)
        self.assertIsInstance(cert.signature_hash_algorithm, hashes.SHA256)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(cert.not_valid_before_utc, now)
        self.assertGreater(cert.not_valid_after_utc, now)
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, list(usage))

    def test_key_file_owner_only(self) -> None:
        """
        The private key file is mode 0600 and holds the certificate's key
        unencrypted; missing parent directories are created.
        """
        certificate, key = self.files()
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertEqual(private.public_key().public_bytes(*spki),
                         _certificate(certificate).public_key().public_bytes(*spki))

    def test_rewritten_key_file_owner_only(self) -> None:
        """
        Writing over an existing key file that others could read leaves it
        readable by its owner only.
        """
        certificate, key = self.files()
        key.chmod(0o644)
        create_development_certificate(certificate, key, ["mail.example.test"])
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)


class LoadServerTLSTests(TLSFilesMixin, SynchronousTestCase):
    """
    L{load_server_tls} accepts a matching pair and refuses anything else with
    L{TLSFilesError} (TWISTED.md section 3; SECURITY.md section 7).
    """

    def test_accepts_development_certificate(self) -> None:
        """
        The development pair loads, and its context serves that certificate.
        """
        certificate, key = self.files()
        tls = load_server_tls(certificate, key)
        self.assertIsInstance(tls, ServerTLS)
        self.assertEqual(tls.certificate_pem, certificate.read_bytes())
        self.assertEqual(tls.key_pem, key.read_bytes())
        handshake = Handshake(SSL.Connection(tls.options.getContext(), None), client_context())
        self.assertTrue(handshake.succeeded, handshake.errors)
        self.assertEqual(handshake.peer_certificate(), _certificate(certificate))

    def test_serves_whole_chain(self) -> None:
        """
        Every certificate of the PEM file is sent, not only the first
        (TWISTED.md section 3: load_pem_x509_certificates, plural).
        """
        certificate, key = self.files()
        other, _ = self.files(["intermediate.example.test"])
        certificate.write_bytes(certificate.read_bytes() + other.read_bytes())
        tls = load_server_tls(certificate, key)
        handshake = Handshake(SSL.Connection(tls.options.getContext(), None), client_context())
        self.assertTrue(handshake.succeeded, handshake.errors)
        chain = handshake.client.get_peer_cert_chain(as_cryptography=True)
        self.assertEqual(chain, [_certificate(certificate), _certificate(other)])

    def test_no_deprecated_pyopenssl_objects(self) -> None:
        """
        Building and using the context passes pyOpenSSL no X509 or PKey
        object (deprecated there): the key and chain stay cryptography
        objects, so operators see no warning at start or reload.
        """
        certificate, key = self.files()
        other, _ = self.files(["intermediate.example.test"])
        certificate.write_bytes(certificate.read_bytes() + other.read_bytes())
        passed: list[tuple[str, object]] = []

        def recording(name: str) -> Callable[..., None]:
            original = getattr(SSL.Context, name)

            def record(context: SSL.Context, argument: object) -> None:
                passed.append((name, argument))
                original(context, argument)
            return record

        for name in ("use_certificate", "use_privatekey", "add_extra_chain_cert"):
            self.patch(SSL.Context, name, recording(name))
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            tls = load_server_tls(certificate, key)
            tls.options.getContext()
        self.assertEqual([name for name, _ in passed],
                         ["use_certificate", "use_privatekey", "add_extra_chain_cert"])
        (_, leaf), (_, private), (_, extra) = passed
        self.assertNotIsInstance(leaf, crypto.X509)
        self.assertNotIsInstance(extra, crypto.X509)
        self.assertNotIsInstance(private, crypto.PKey)
        self.assertEqual([leaf, extra], [_certificate(certificate), _certificate(other)])
        self.assertIsInstance(private, ec.EllipticCurvePrivateKey)
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertEqual(private.public_key().public_bytes(*spki),  # type: ignore[attr-defined]
                         leaf.public_key().public_bytes(*spki))  # type: ignore[attr-defined]

    def test_key_of_another_certificate(self) -> None:
        """
        A key that does not belong to the certificate is refused, and the
        error says so and names the files.
        """
        certificate, _ = self.files()
        _, other_key = self.files()
        e = self.assertRaises(TLSFilesError, load_server_tls, certificate, other_key)
        self.assertIn("key does not belong to the certificate", str(e))
        self.assertIn(str(certificate), str(e))
        self.assertIn(str(other_key), str(e))

    def test_garbage_certificate(self) -> None:
        """
        A certificate file that holds no PEM certificate is refused.
        """
        certificate, key = self.files()
        certificate.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n"
                                b"-----END CERTIFICATE-----\n")
        e = self.assertRaises(TLSFilesError, load_server_tls, certificate, key)
        self.assertIn("certificate", str(e))
        certificate.write_bytes(b"not PEM at all\n")
        self.assertRaises(TLSFilesError, load_server_tls, certificate, key)

    def test_garbage_key(self) -> None:
        """
        A key file that holds no PEM key is refused.
        """
        certificate, key = self.files()
        key.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
        e = self.assertRaises(TLSFilesError, load_server_tls, certificate, key)
        self.assertIn("key", str(e))

    def test_encrypted_key(self) -> None:
        """
        A passphrase-protected key cannot be served unattended: refused.
        """
        certificate, key = self.files()
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        key.write_bytes(private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase")))
        e = self.assertRaises(TLSFilesError, load_server_tls, certificate, key)
        self.assertIn("unencrypted", str(e))

    def test_missing_files(self) -> None:
        """
        A missing certificate or key file is a TLSFilesError naming the file.
        """
        certificate, key = self.files()
        missing = certificate.parent / "missing.pem"
        for args in ((missing, key), (certificate, missing)):
            e = self.assertRaises(TLSFilesError, load_server_tls, *args)
            self.assertIn(str(missing), str(e))


class ReloadServerTLSTests(TLSFilesMixin, SynchronousTestCase):
    """
    L{load_server_tls} with the current value: reload only what changed (TWISTED.md section 3,
    SECURITY.md section 7).
    """

    def test_unchanged_files_keep_object(self) -> None:
        """
        Unchanged files give back the very same ServerTLS (and so the same
        context): no needless rebuild on SIGHUP.
        """
        certificate, key = self.files()
        current = load_server_tls(certificate, key)
        self.assertIs(load_server_tls(certificate, key, current), current)

    def test_changed_files_give_new_object(self) -> None:
        """
        Rewritten files give a new ServerTLS serving the new certificate.
        """
        certificate, key = self.files()
        current = load_server_tls(certificate, key)
        create_development_certificate(certificate, key, ["new.example.test"])
        new = load_server_tls(certificate, key, current)
        self.assertIsNot(new, current)
        self.assertEqual(new.certificate_pem, certificate.read_bytes())
        self.assertNotEqual(new.certificate_pem, current.certificate_pem)

    def test_broken_files_raise(self) -> None:
        """
        Garbage or missing files raise TLSFilesError, so the caller keeps
        the current context.
        """
        certificate, key = self.files()
        current = load_server_tls(certificate, key)
        _, other_key = self.files()
        self.assertRaises(TLSFilesError, load_server_tls, certificate, other_key, current)
        self.assertRaises(TLSFilesError, load_server_tls, certificate,
                          key.parent / "missing.key", current)
        certificate.write_bytes(b"garbage")
        self.assertRaises(TLSFilesError, load_server_tls, certificate, key, current)


class TLSSettingsTests(TLSFilesMixin, SynchronousTestCase):
    """
    The server context follows Mozilla "intermediate" (SECURITY.md section
    4.1; TWISTED.md section 3).
    """

    def setUp(self) -> None:
        certificate, key = self.files()
        self.tls = load_server_tls(certificate, key)

    def handshake(self, context: SSL.Context) -> Handshake:
        return Handshake(SSL.Connection(self.tls.options.getContext(), None), context)

    def test_refuses_tls_1_1(self) -> None:
        """
        A client limited to TLS 1.1 sends its hello and the server refuses
        the version itself (not merely the suites): alert protocol_version.
        """
        handshake = self.handshake(client_context(maximum=SSL.TLS1_1_VERSION))
        self.assertGreater(handshake.client_bytes, 0)
        self.assertIn("unsupported protocol", str(handshake.errors.get("server")))
        self.assertIn("protocol version", str(handshake.errors.get("client")))
        self.assertFalse(handshake.succeeded)

    def test_refuses_tls_1_0(self) -> None:
        """
        A client limited to TLS 1.0 is refused for its version.
        """
        handshake = self.handshake(client_context(maximum=SSL.TLS1_VERSION))
        self.assertGreater(handshake.client_bytes, 0)
        self.assertIn("unsupported protocol", str(handshake.errors.get("server")))

    def test_tls_1_2_with_aead_suite(self) -> None:
        """
        A TLS 1.2 client succeeds with an ECDHE-ECDSA AEAD suite.
        """
        handshake = self.handshake(client_context(maximum=SSL.TLS1_2_VERSION))
        self.assertTrue(handshake.succeeded, handshake.errors)
        self.assertEqual(handshake.client.get_protocol_version_name(), "TLSv1.2")
        cipher = handshake.client.get_cipher_name()
        self.assertTrue(cipher.startswith("ECDHE-ECDSA-"), cipher)
        self.assertTrue(cipher.endswith(("GCM-SHA256", "GCM-SHA384", "CHACHA20-POLY1305")),
                        cipher)

    def test_tls_1_3(self) -> None:
        """
        A TLS 1.3 client succeeds.
        """
        handshake = self.handshake(client_context(minimum=SSL.TLS1_3_VERSION))
        self.assertTrue(handshake.succeeded, handshake.errors)
        self.assertEqual(handshake.client.get_protocol_version_name(), "TLSv1.3")

    def test_refuses_cbc_suites(self) -> None:
        """
        A TLS 1.2 client offering only CBC suites finds no shared cipher.
        """
        handshake = self.handshake(client_context(
            maximum=SSL.TLS1_2_VERSION,
            ciphers=b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0"))
        self.assertIn("server", handshake.errors)
        self.assertFalse(handshake.succeeded)

    def resumed(self, version: ssl.TLSVersion) -> bool:
        """
        Whether a second connection (Python's ssl, in memory) with the first
        one's session resumes it.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.minimum_version = context.maximum_version = version
        session = None
        for _ in range(2):
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            client = context.wrap_bio(incoming, outgoing, session=session)
            server = SSL.Connection(self.tls.options.getContext(), None)
            server.set_accept_state()
            handshake_in_memory(client, incoming, outgoing, server)
            # TLS 1.3 sends its ticket after the handshake, with the first data.
            server.send(b"x")
            incoming.write(server.bio_read(1 << 16))
            self.assertEqual(client.read(1), b"x")
            session = client.session
            server.shutdown()  # OpenSSL forgets sessions of connections cut short
        return client.session_reused

    def test_sessions_resume(self) -> None:
        """
        A client that comes back resumes its session (no signature, no
        certificate), in TLS 1.2 and 1.3, from the server's session cache.
        """
        self.assertTrue(self.resumed(ssl.TLSVersion.TLSv1_2))
        self.assertTrue(self.resumed(ssl.TLSVersion.TLSv1_3))

    def test_context_options(self) -> None:
        """
        The context disables TLS 1.0/1.1, compression and stateless session
        tickets (their key would live as long as the process, unrotated).
        """
        options = self.tls.options.getContext().set_options(0)
        for name in ("OP_NO_TLSv1", "OP_NO_TLSv1_1", "OP_NO_COMPRESSION", "OP_NO_TICKET"):
            self.assertTrue(options & getattr(SSL, name), name)


class ReloadableServerTLSTests(TLSFilesMixin, SynchronousTestCase):
    """
    L{ReloadableServerTLS} swaps certificates for new connections only
    (TWISTED.md section 3).
    """

    def test_replace_affects_new_connections(self) -> None:
        """
        After C{replace}, new connections present the new certificate while
        a connection created before keeps the old one; the old context is
        not touched.
        """
        first_cert, first_key = self.files(["first.example.test"])
        second_cert, second_key = self.files(["second.example.test"])
        first = load_server_tls(first_cert, first_key)
        creator = ReloadableServerTLS(first)
        old_context = first.options.getContext()
        before = creator.serverConnectionForTLS(None)
        creator.replace(load_server_tls(second_cert, second_key))
        after = creator.serverConnectionForTLS(None)

        old = Handshake(before, client_context())
        new = Handshake(after, client_context())
        self.assertTrue(old.succeeded, old.errors)
        self.assertTrue(new.succeeded, new.errors)
        self.assertEqual(old.peer_certificate(), _certificate(first_cert))
        self.assertEqual(new.peer_certificate(), _certificate(second_cert))
        self.assertIs(first.options.getContext(), old_context)
        self.assertIs(before.get_context(), old_context)

    def test_connections_use_current_options(self) -> None:
        """
        Without a replacement every connection comes from the one context.
        """
        certificate, key = self.files()
        tls = load_server_tls(certificate, key)
        creator = ReloadableServerTLS(tls)
        self.assertIs(creator.serverConnectionForTLS(None).get_context(),
                      tls.options.getContext())
