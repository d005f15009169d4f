"""
Apple profiles signed for real: the CMS SignedData checked with the
openssl command-line tool against the certificate, and C{GET /mobileconfig}
over the site stack (rendering alone is L{tests.unit.test_mobileconfig}).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from twisted.trial.unittest import SkipTest

from smartdiscover.discovery.mobileconfig import render_profile
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.signing import Signer
from smartdiscover.web.devcert import create_development_certificate
from smartdiscover.web.tls import load_server_tls
from tests.integration import SynchronousTestCase
from tests.helpers import DEMO_PASSWORD
from tests.unit.test_autoconfig import (
    DISPLAY_NAME,
    SiteFixture,
)
from tests.unit.test_http_endpoints import basic
from tests.unit.test_web import CHALLENGE, Response


from tests.unit.test_mobileconfig import (
    CALDAV,
    CARDDAV,
    DEMO,
    FULL,
    MAIL,
    PROFILE_TYPE,
    SIGNED_DATA_OID,
    all_uuids,
    load_profile,
    make_certificate,
    payloads,
    walk,
    write_pair,
)


class OpenSSLMixin:
    """
    CMS verification with the openssl command-line tool.
    """

    mktemp: Any

    def require_openssl(self) -> None:
        if shutil.which("openssl") is None:
            raise SkipTest("the openssl command-line tool is not installed")

    def development_signer(self, name: str = "mail.example.test") -> tuple[Signer, Path]:
        """
        A signer from a fresh development certificate, loaded the way the
        server loads its TLS files, and the certificate's path.
        """
        directory = Path(self.mktemp())
        certificate, key = directory / "server.crt", directory / "server.key"
        create_development_certificate(certificate, key, [name])
        signer = load_server_tls(certificate, key).signer
        assert signer is not None
        return signer, certificate

    def verify(self, signed: bytes, ca_file: Path) -> tuple[int, bytes, bytes]:
        """
        C{openssl cms -verify} of DER C{signed} against C{ca_file}: the exit
        status, the extracted content and the error output.
        """
        directory = Path(self.mktemp())
        directory.mkdir(parents=True)
        signed_path = directory / "signed.der"
        payload_path = directory / "payload"
        signed_path.write_bytes(signed)
        result = subprocess.run(
            ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed_path),
             "-CAfile", str(ca_file), "-purpose", "any", "-out", str(payload_path)],
            capture_output=True, timeout=60, check=False)
        payload = payload_path.read_bytes() if payload_path.exists() else b""
        return result.returncode, payload, result.stderr


class SignerTests(SynchronousTestCase, OpenSSLMixin):
    """
    L{Signer} and the signer L{load_server_tls} builds (PROTOCOLS.md
    section 8, "Signing"; issue 4 section 2).
    """

    def setUp(self) -> None:
        self.require_openssl()
        self.signer, self.certificate = self.development_signer()
        self.unsigned = render_profile(FULL, DEMO)
        self.signed = self.signer.sign(self.unsigned)

    def test_der_signed_data(self) -> None:
        """
        The output is DER (a SEQUENCE) whose content type is id-signedData,
        and it carries the signing certificate (PROTOCOLS.md section 8: CMS
        SignedData in DER).
        """
        self.assertEqual(self.signed[0], 0x30)
        self.assertIn(SIGNED_DATA_OID, self.signed[:24])
        certificates = pkcs7.load_der_pkcs7_certificates(self.signed)
        self.assertIn(self.signer.certificate, certificates)

    def test_verifies_against_certificate(self) -> None:
        """
        C{openssl cms -verify} accepts the signature against the development
        certificate, and the attached content is the profile, which
        plistlib reads (PROTOCOLS.md section 8; issue 4 section 5).
        """
        status, payload, error = self.verify(self.signed, self.certificate)
        self.assertEqual(status, 0, error)
        self.assertEqual(load_profile(payload), load_profile(self.unsigned))

    def test_signed_content_is_the_profile(self) -> None:
        """
        The content inside the signature is byte for byte the profile that
        was signed -- no line-ending canonicalisation (PROTOCOLS.md section
        8: the plist is attached as it is, like C{openssl smime -sign
        -binary}).
        """
        status, payload, error = self.verify(self.signed, self.certificate)
        self.assertEqual(status, 0, error)
        self.assertEqual(payload, self.unsigned)
        self.assertIn(self.unsigned, self.signed)
        binary = b"\x00\x01\r\n\n\xff line\nend"
        status, payload, error = self.verify(self.signer.sign(binary), self.certificate)
        self.assertEqual(status, 0, error)
        self.assertEqual(payload, binary)

    def test_tampered_content_fails(self) -> None:
        """
        Flipping one byte of the signed content makes verification fail
        (PROTOCOLS.md section 8).
        """
        marker = b"com.apple.mail.managed"
        index = self.signed.find(marker)
        self.assertGreater(index, 0)
        tampered = bytearray(self.signed)
        tampered[index + 4] ^= 0x01  # 'a' -> '`'
        status, _, _ = self.verify(bytes(tampered), self.certificate)
        self.assertNotEqual(status, 0)
        # The untouched signature still verifies: the flip is what failed.
        status, _, error = self.verify(self.signed, self.certificate)
        self.assertEqual(status, 0, error)

    def test_other_certificate_fails(self) -> None:
        """
        Verification against another certificate (same subject, other key)
        fails (PROTOCOLS.md section 8).
        """
        _, other = self.development_signer()
        status, _, _ = self.verify(self.signed, other)
        self.assertNotEqual(status, 0)

    def test_rsa_certificate(self) -> None:
        """
        An RSA-2048 self-signed certificate and key also give a working
        signer (PROTOCOLS.md section 8: the server's TLS certificate and
        key sign).
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certificate = make_certificate("mail.example.test", key, ca=True)
        certificate_path, key_path = write_pair(Path(self.mktemp()), [certificate], key)
        signer = load_server_tls(certificate_path, key_path).signer
        self.assertIsNotNone(signer)
        assert signer is not None
        self.assertIsInstance(signer.key, rsa.RSAPrivateKey)
        status, payload, error = self.verify(signer.sign(self.unsigned), certificate_path)
        self.assertEqual(status, 0, error)
        self.assertEqual(load_profile(payload), load_profile(self.unsigned))

    def test_chain_included(self) -> None:
        """
        When the certificate file holds a chain (leaf, intermediate), the
        intermediate goes into the SignedData, so a verifier that trusts
        only the root accepts it (PROTOCOLS.md section 8; issue 4 section
        2: "and chain").
        """
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = make_certificate("Test Root CA", root_key, ca=True)
        intermediate_key = ec.generate_private_key(ec.SECP256R1())
        intermediate = make_certificate("Test Intermediate CA", intermediate_key,
                                        "Test Root CA", root_key, ca=True)
        leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        leaf = make_certificate("mail.example.test", leaf_key, "Test Intermediate CA",
                                intermediate_key)
        directory = Path(self.mktemp())
        certificate_path, key_path = write_pair(directory, [leaf, intermediate], leaf_key)
        root_path = directory / "root.pem"
        root_path.write_bytes(root.public_bytes(serialization.Encoding.PEM))

        signer = load_server_tls(certificate_path, key_path).signer
        assert signer is not None
        self.assertEqual(signer.chain, (intermediate,))
        signed = signer.sign(self.unsigned)
        self.assertEqual(set(pkcs7.load_der_pkcs7_certificates(signed)),
                         {leaf, intermediate})
        status, payload, error = self.verify(signed, root_path)
        self.assertEqual(status, 0, error)
        self.assertEqual(load_profile(payload), load_profile(self.unsigned))
        # Without the intermediate the same root cannot verify it.
        bare = Signer(leaf, leaf_key).sign(self.unsigned)
        status, _, _ = self.verify(bare, root_path)
        self.assertNotEqual(status, 0)


class MobileconfigSiteTests(SynchronousTestCase, SiteFixture, OpenSSLMixin):
    """
    C{GET /mobileconfig} through the real resource tree: Basic
    authentication, then the principal's profile, signed when a signer is
    available (PROTOCOLS.md section 8; SECURITY.md section 3.3; issue 4
    section 2).
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        self.signer: Signer | None = None
        self.resource = self.tree(self.model, lambda domain: self.signer)
        self.right = basic(b"demo@example.test", DEMO_PASSWORD.encode())

    def get(self, path: bytes = b"/mobileconfig", headers: tuple[bytes, ...] = (),
            method: bytes = b"GET") -> Response:
        body = b"x" if method in (b"POST", b"PUT") else None
        return self.request(self.resource, method, path, headers=headers, body=body)

    def assertChallenge(self, response: Response, label: object = None) -> None:
        self.assertEqual(response.code, 401, label)
        self.assertEqual(response.header(b"www-authenticate"), [CHALLENGE], label)
        self.assertNotEqual(response.header(b"content-type"), [PROFILE_TYPE], label)
        self.assertNotIn(b"PayloadType", response.body, label)

    def assertProfileHeaders(self, response: Response, filename: bytes) -> None:
        self.assertEqual(response.code, 200, response.body[:200])
        self.assertEqual(response.header(b"content-type"), [PROFILE_TYPE])
        self.assertEqual(response.header(b"content-disposition"),
                         [b'attachment; filename="' + filename + b'"'])
        self.assertEqual(response.header(b"www-authenticate"), [])

    def test_challenge_without_credentials(self) -> None:
        """
        C{/mobileconfig} in any letter case, without credentials: 401 with
        the Basic challenge, no profile (issue 4 section 2: authenticated
        with Basic like POX).
        """
        for path in (b"/mobileconfig", b"/MobileConfig", b"/MOBILECONFIG", b"/mobileConfig"):
            self.assertChallenge(self.get(path), path)

    def test_failures_identical(self) -> None:
        """
        A wrong password, an unknown user and malformed credentials get the
        same 401 as no credentials, and as the POX endpoint's 401, but for
        Date (SECURITY.md section 3.3).
        """
        baseline = self.get()
        self.assertChallenge(baseline)
        pox = self.request(self.resource, b"GET", b"/autodiscover/autodiscover.xml",
                           headers=(basic(b"demo@example.test", b"wrong"),))
        self.assertEqual(pox.comparable(), baseline.comparable())
        for header in (basic(b"demo@example.test", b"wrong"),
                       basic(b"nobody@example.test", DEMO_PASSWORD.encode()),
                       basic(b"demo@elsewhere.example", DEMO_PASSWORD.encode()),
                       basic(b"demo@example.test", b""),
                       b"Authorization: Basic !!!",
                       b"Authorization: Bearer abc"):
            for path in (b"/mobileconfig", b"/MobileConfig"):
                response = self.get(path, (header,))
                self.assertEqual(response.comparable(), baseline.comparable(), (path, header))

    def test_signed_profile(self) -> None:
        """
        With the right credentials and a signer: 200
        C{application/x-apple-aspen-config}, an attachment named after the
        domain, whose body verifies against the certificate and holds the
        user's profile; the password is nowhere in it (PROTOCOLS.md section
        8; issue 4 section 2).
        """
        self.require_openssl()
        self.signer, certificate = self.development_signer()
        for path in (b"/mobileconfig", b"/MobileConfig"):
            response = self.get(path, (self.right,))
            self.assertProfileHeaders(response, b"example.test.mobileconfig")
            self.assertEqual(response.body[0], 0x30)
            self.assertNotIn(DEMO_PASSWORD.encode(), response.body)
            status, payload, error = self.verify(response.body, certificate)
            self.assertEqual(status, 0, error)
            profile = load_profile(payload)
            expected = load_profile(render_profile(
                self.model.catalogue_for("example.test"),
                Principal("demo@example.test", DISPLAY_NAME)))
            self.assertEqual(profile, expected)
            [mail] = payloads(profile, MAIL)
            self.assertEqual(mail["EmailAddress"], "demo@example.test")
            self.assertNotIn(DEMO_PASSWORD.encode(), payload)

    def test_unsigned_without_signer(self) -> None:
        """
        When the current signer is L{None} (a key CMS cannot use) the body
        is the plain property list; the signer is asked for on every
        request, so a new certificate takes effect at once (PROTOCOLS.md
        section 8).
        """
        response = self.get(headers=(self.right,))
        self.assertProfileHeaders(response, b"example.test.mobileconfig")
        expected = render_profile(self.model.catalogue_for("example.test"),
                                  Principal("demo@example.test", DISPLAY_NAME))
        self.assertEqual(response.body, expected)
        self.assertNotIn(DEMO_PASSWORD.encode(), response.body)
        password_values = [v for k, v in walk(load_profile(response.body))
                           if k.lower().endswith("password") and isinstance(v, str)]
        self.assertEqual(password_values, [])

        self.signer, _ = self.development_signer()
        signed = self.get(headers=(self.right,))
        self.assertProfileHeaders(signed, b"example.test.mobileconfig")
        self.assertFalse(signed.body.startswith(b"<?xml"))
        self.assertEqual(signed.body[0], 0x30)

    def test_profile_of_the_users_domain(self) -> None:
        """
        A user of a domain with a [domain:] section gets that domain's
        settings and file name (PROTOCOLS.md section 8; issue 4 section 2).
        """
        response = self.get(headers=(basic(b"olga@example.org", DEMO_PASSWORD.encode()),))
        self.assertProfileHeaders(response, b"example.org.mobileconfig")
        profile = load_profile(response.body)
        [mail] = payloads(profile, MAIL)
        self.assertEqual(mail["EmailAddress"], "olga@example.org")
        self.assertEqual(mail["IncomingMailServerHostName"], "imap.example.org")
        [caldav] = payloads(profile, CALDAV)
        self.assertEqual(caldav["CalDAVHostName"], "dav.example.org")
        [carddav] = payloads(profile, CARDDAV)
        self.assertEqual(carddav["CardDAVPort"], 8843)
        self.assertTrue(profile["PayloadIdentifier"].startswith("org.example."))

    def test_uuids_stable_over_the_site(self) -> None:
        """
        Two downloads by the same user carry the same UUIDs; another user's
        differ (PROTOCOLS.md section 8).
        """
        first = all_uuids(load_profile(self.get(headers=(self.right,)).body))
        second = all_uuids(load_profile(self.get(headers=(self.right,)).body))
        self.assertEqual(first, second)
        other = all_uuids(load_profile(self.get(
            headers=(basic(b"olga@example.org", DEMO_PASSWORD.encode()),)).body))
        self.assertEqual(set(first) & set(other), set())

    def test_other_methods_not_allowed(self) -> None:
        """
        POST, PUT and DELETE with the right credentials are 405 with
        C{Allow}, without a profile; without credentials they are
        challenged first (PROTOCOLS.md section 8: a profile is downloaded
        with GET; SECURITY.md section 4).
        """
        for method in (b"POST", b"PUT", b"DELETE"):
            response = self.get(headers=(self.right,), method=method)
            self.assertEqual(response.code, 405, method)
            [allow] = response.header(b"allow")
            methods = {m.strip() for m in allow.split(b",")}
            self.assertIn(b"GET", methods)
            self.assertNotIn(method, methods)
            self.assertNotEqual(response.header(b"content-type"), [PROFILE_TYPE])
            self.assertNotIn(b"PayloadType", response.body)
            self.assertChallenge(self.get(method=method), method)
