"""
Tests for Apple configuration profiles (PROTOCOLS.md section 8; issue 4
sections 2 and 5):

- L{render_profile}, parsed with plistlib;
- L{Signer}: CMS SignedData verified with the openssl command-line tool
  against the certificate (a subprocess; no network);
- C{GET /mobileconfig} over the real site stack (L{SmartSite} over a
  L{StringTransport} and a L{Clock}; no sockets, no global reactor), behind
  Basic authentication (SECURITY.md section 3.3).
"""

from __future__ import annotations

import datetime
import plistlib
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from smartdiscover.config import load
from smartdiscover.config.model import Security, SocketService
from smartdiscover.discovery.mobileconfig import render_profile
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.signing import Signer
from smartdiscover.web.devcert import create_development_certificate
from smartdiscover.web.tls import load_server_tls
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, write_config
from tests.test_autoconfig import (
    DISPLAY_NAME,
    SITE_INI,
    SITE_PASSWD,
    SiteFixture,
    catalogue,
)
from tests.test_http_endpoints import basic
from tests.test_web import CHALLENGE, Response

PROFILE_TYPE = b"application/x-apple-aspen-config"
MAIL = "com.apple.mail.managed"
EAS = "com.apple.eas.account"
CALDAV = "com.apple.caldav.account"
CARDDAV = "com.apple.carddav.account"
# DER of the OID 1.2.840.113549.1.7.2, id-signedData (RFC 5652 section 5.1).
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")

DEMO = Principal("demo@example.test", "Demo User")
IMAP = SocketService("imap", "imap.example.test", 993, Security.SSL)
POP3 = SocketService("pop3", "pop.example.test", 995, Security.SSL)
SMTP = SocketService("smtp", "smtp.example.test", 587, Security.STARTTLS)
URLS = {
    "activesync": "https://eas.example.test/Microsoft-Server-ActiveSync",
    "caldav": "https://dav.example.test/caldav/",
    "carddav": "https://cards.example.test:8843/carddav/",
}
FULL = catalogue((IMAP, POP3, SMTP), **URLS)


def load_profile(document: bytes) -> dict[str, Any]:
    profile = plistlib.loads(document, fmt=plistlib.FMT_XML)
    assert isinstance(profile, dict)
    return profile


def payloads(profile: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in profile["PayloadContent"] if p["PayloadType"] == kind]


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """
    Every (key, value) pair of every dictionary, at any depth.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def all_uuids(profile: dict[str, Any]) -> list[str]:
    return [value for key, value in walk(profile) if key == "PayloadUUID"]


def is_uuid(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


class RenderProfileTests(SynchronousTestCase):
    """
    L{render_profile} (PROTOCOLS.md section 8).
    """

    def test_xml_property_list(self) -> None:
        """
        The profile is an XML property list with the Apple DTD (PROTOCOLS.md
        section 8: C{-//Apple//DTD PLIST 1.0//EN}).
        """
        document = render_profile(FULL, DEMO)
        self.assertTrue(document.startswith(b"<?xml"))
        self.assertIn(b"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\"", document)
        self.assertIsInstance(load_profile(document), dict)

    def test_top_level(self) -> None:
        """
        PayloadType Configuration, PayloadVersion 1, a reverse-DNS
        PayloadIdentifier under the domain, a UUID, and PayloadContent an
        array (PROTOCOLS.md section 8, TopLevel.yaml).
        """
        profile = load_profile(render_profile(FULL, DEMO))
        self.assertEqual(profile["PayloadType"], "Configuration")
        self.assertEqual(profile["PayloadVersion"], 1)
        self.assertIs(type(profile["PayloadVersion"]), int)
        identifier = profile["PayloadIdentifier"]
        self.assertRegex(identifier, r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
        self.assertTrue(identifier.startswith("test.example."), identifier)
        self.assertTrue(is_uuid(profile["PayloadUUID"]), profile["PayloadUUID"])
        self.assertIsInstance(profile["PayloadContent"], list)
        self.assertEqual(len(profile["PayloadContent"]), 4)

    def test_payload_common_keys(self) -> None:
        """
        Every payload has PayloadType, PayloadVersion 1, its own
        PayloadIdentifier under the profile's, and its own valid PayloadUUID
        (PROTOCOLS.md section 8).
        """
        profile = load_profile(render_profile(FULL, DEMO))
        kinds = [p["PayloadType"] for p in profile["PayloadContent"]]
        self.assertEqual(sorted(kinds), sorted([MAIL, EAS, CALDAV, CARDDAV]))
        identifiers = [p["PayloadIdentifier"] for p in profile["PayloadContent"]]
        self.assertEqual(len(set(identifiers)), len(identifiers))
        for payload in profile["PayloadContent"]:
            self.assertEqual(payload["PayloadVersion"], 1, payload["PayloadType"])
            self.assertTrue(payload["PayloadIdentifier"].startswith(
                profile["PayloadIdentifier"] + "."), payload["PayloadIdentifier"])
            self.assertTrue(is_uuid(payload["PayloadUUID"]), payload["PayloadUUID"])

    def test_mail_imap(self) -> None:
        """
        com.apple.mail.managed for IMAP + SMTP: EmailTypeIMAP, the IMAP and
        SMTP hosts and ports, UseSSL, the address as both user names,
        EmailAuthPassword both ways and OutgoingPasswordSameAsIncomingPassword
        (PROTOCOLS.md section 8).
        """
        [mail] = payloads(load_profile(render_profile(FULL, DEMO)), MAIL)
        expected = {
            "EmailAccountType": "EmailTypeIMAP",
            "EmailAddress": "demo@example.test",
            "IncomingMailServerHostName": "imap.example.test",
            "IncomingMailServerPortNumber": 993,
            "IncomingMailServerUseSSL": True,
            "IncomingMailServerAuthentication": "EmailAuthPassword",
            "IncomingMailServerUsername": "demo@example.test",
            "OutgoingMailServerHostName": "smtp.example.test",
            "OutgoingMailServerPortNumber": 587,
            "OutgoingMailServerUseSSL": True,
            "OutgoingMailServerAuthentication": "EmailAuthPassword",
            "OutgoingMailServerUsername": "demo@example.test",
            "OutgoingPasswordSameAsIncomingPassword": True,
        }
        for key, value in expected.items():
            self.assertEqual(mail.get(key), value, key)
            self.assertIs(type(mail[key]), type(value), key)

    def test_mail_pop_without_imap(self) -> None:
        """
        With POP3 but no IMAP the account is EmailTypePOP on the POP3 host
        and port (PROTOCOLS.md section 8; issue 4 section 2).
        """
        [mail] = payloads(load_profile(render_profile(catalogue((POP3, SMTP)), DEMO)), MAIL)
        self.assertEqual(mail["EmailAccountType"], "EmailTypePOP")
        self.assertEqual(mail["IncomingMailServerHostName"], "pop.example.test")
        self.assertEqual(mail["IncomingMailServerPortNumber"], 995)
        self.assertEqual(mail["OutgoingMailServerHostName"], "smtp.example.test")

    def test_use_ssl_per_security(self) -> None:
        """
        UseSSL is true for ssl and starttls (the OS picks STARTTLS or TLS by
        port) and false for none, incoming and outgoing (PROTOCOLS.md
        section 8).
        """
        for security, use_ssl in ((Security.SSL, True), (Security.STARTTLS, True),
                                  (Security.NONE, False)):
            services = (SocketService("imap", "imap.example.test", 143, security),
                        SocketService("smtp", "smtp.example.test", 25, security))
            [mail] = payloads(load_profile(render_profile(catalogue(services), DEMO)), MAIL)
            self.assertIs(mail["IncomingMailServerUseSSL"], use_ssl, security)
            self.assertIs(mail["OutgoingMailServerUseSSL"], use_ssl, security)

    def test_no_mail_payload_without_both_halves(self) -> None:
        """
        No com.apple.mail.managed without SMTP, nor without IMAP and POP3
        (both host names are required keys; PROTOCOLS.md section 8).
        """
        for services in ((IMAP,), (POP3,), (SMTP,), ()):
            profile = load_profile(render_profile(catalogue(services, **URLS), DEMO))
            self.assertEqual(payloads(profile, MAIL), [], services)
            self.assertEqual(len(payloads(profile, CALDAV)), 1, services)

    def test_activesync(self) -> None:
        """
        com.apple.eas.account when activesync is set: Host, SSL, UserName
        and EmailAddress; none otherwise (PROTOCOLS.md section 8).
        """
        [eas] = payloads(load_profile(render_profile(FULL, DEMO)), EAS)
        self.assertEqual(eas["Host"], "eas.example.test")
        self.assertIs(eas["SSL"], True)
        self.assertEqual(eas["UserName"], "demo@example.test")
        self.assertEqual(eas["EmailAddress"], "demo@example.test")
        without = catalogue((IMAP, SMTP), caldav=URLS["caldav"])
        self.assertEqual(payloads(load_profile(render_profile(without, DEMO)), EAS), [])

    def test_caldav_and_carddav(self) -> None:
        """
        com.apple.caldav.account and com.apple.carddav.account carry the
        host name, the port (443 when the URL has none), UseSSL, the
        address as user name and the URL's path as PrincipalURL
        (PROTOCOLS.md section 8).
        """
        profile = load_profile(render_profile(FULL, DEMO))
        [caldav] = payloads(profile, CALDAV)
        [carddav] = payloads(profile, CARDDAV)
        self.assertEqual(caldav["CalDAVHostName"], "dav.example.test")
        self.assertEqual(caldav["CalDAVPort"], 443)
        self.assertIs(caldav["CalDAVUseSSL"], True)
        self.assertEqual(caldav["CalDAVUsername"], "demo@example.test")
        self.assertEqual(caldav["CalDAVPrincipalURL"], "/caldav/")
        self.assertEqual(carddav["CardDAVHostName"], "cards.example.test")
        self.assertEqual(carddav["CardDAVPort"], 8843)
        self.assertIs(carddav["CardDAVUseSSL"], True)
        self.assertEqual(carddav["CardDAVUsername"], "demo@example.test")
        self.assertEqual(carddav["CardDAVPrincipalURL"], "/carddav/")

    def test_dav_only_when_set(self) -> None:
        """
        Without caldav there is no CalDAV payload, without carddav no
        CardDAV payload (PROTOCOLS.md section 8).
        """
        profile = load_profile(render_profile(
            catalogue((IMAP, SMTP), caldav=URLS["caldav"]), DEMO))
        self.assertEqual(len(payloads(profile, CALDAV)), 1)
        self.assertEqual(payloads(profile, CARDDAV), [])
        profile = load_profile(render_profile(
            catalogue((IMAP, SMTP), carddav=URLS["carddav"]), DEMO))
        self.assertEqual(payloads(profile, CALDAV), [])
        self.assertEqual(len(payloads(profile, CARDDAV)), 1)
        profile = load_profile(render_profile(catalogue((IMAP, SMTP)), DEMO))
        self.assertEqual([p["PayloadType"] for p in profile["PayloadContent"]], [MAIL])

    def test_password_never_embedded(self) -> None:
        """
        No key named *Password anywhere holds a string: the device asks for
        the password at install time (PROTOCOLS.md section 8; issue 4
        section 2).  The boolean OutgoingPasswordSameAsIncomingPassword is
        there, so the walk does reach the payload keys.
        """
        profile = load_profile(render_profile(FULL, DEMO))
        password_keys = [(k, v) for k, v in walk(profile) if k.lower().endswith("password")]
        self.assertIn(("OutgoingPasswordSameAsIncomingPassword", True), password_keys)
        for key, value in password_keys:
            self.assertFalse(isinstance(value, (str, bytes)), key)

    def test_uuids_stable_across_calls(self) -> None:
        """
        Rendering twice gives the same bytes, hence the same UUIDs, so a
        re-download replaces the installed profile (PROTOCOLS.md section 8;
        issue 4 section 2).
        """
        self.assertEqual(render_profile(FULL, DEMO), render_profile(FULL, DEMO))
        renamed = Principal(DEMO.address, "Another Display Name")
        self.assertEqual(all_uuids(load_profile(render_profile(FULL, renamed))),
                         all_uuids(load_profile(render_profile(FULL, DEMO))))

    def test_uuids_stable_across_reload(self) -> None:
        """
        After reloading the configuration file (a new model), the same user
        and domain get the same UUIDs (PROTOCOLS.md section 8).
        """
        path = write_config(self.mktemp(), SITE_INI, SITE_PASSWD)
        principal = Principal("demo@example.test", DISPLAY_NAME)
        first = load(path)
        second = load(path)
        self.assertIsNot(first, second)
        before = all_uuids(load_profile(render_profile(
            first.catalogue_for(principal.domain), principal)))
        after = all_uuids(load_profile(render_profile(
            second.catalogue_for(principal.domain), principal)))
        self.assertEqual(len(before), 5)
        self.assertEqual(before, after)

    def test_uuids_differ(self) -> None:
        """
        The UUIDs of one profile are all different, and differ from those of
        another user of the same domain and of the same local part in
        another domain (PROTOCOLS.md section 8: UUIDs from user + payload).
        """
        mine = all_uuids(load_profile(render_profile(FULL, DEMO)))
        self.assertEqual(len(mine), 5)
        self.assertEqual(len(set(mine)), 5)
        for other in (Principal("other@example.test"), Principal("demo@example.org"),
                      Principal("demo2@example.test")):
            theirs = all_uuids(load_profile(render_profile(FULL, other)))
            self.assertEqual(set(mine) & set(theirs), set(), other)

    def test_every_uuid_valid(self) -> None:
        """
        Every PayloadUUID, at any depth, is a valid UUID string
        (PROTOCOLS.md section 8).
        """
        for cat in (FULL, catalogue((POP3, SMTP)), catalogue((), **URLS)):
            uuids = all_uuids(load_profile(render_profile(cat, DEMO)))
            self.assertTrue(uuids)
            for value in uuids:
                self.assertTrue(is_uuid(value), value)


# -- signing ---------------------------------------------------------------


def write_pair(directory: Path, certificates: list[x509.Certificate],
               key: Any) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    certificate_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    certificate_path.write_bytes(b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return certificate_path, key_path


def make_certificate(subject: str, key: Any, issuer: str | None = None,
                     issuer_key: Any = None, ca: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca,
                                     content_commitment=False, key_encipherment=not ca,
                                     data_encipherment=False, key_agreement=False,
                                     crl_sign=ca, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    if issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


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


# -- over the site ---------------------------------------------------------


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
        self.resource = self.tree(self.model, lambda: self.signer)
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


class CanonicalPrincipalTests(SynchronousTestCase, SiteFixture):
    """
    The profile is built from the principal the store returns
    (PROTOCOLS.md section 8).
    """

    def test_login_case_gives_canonical_address(self) -> None:
        """
        Logging in with another letter case of the domain gives the profile
        of the canonical address, with the same UUIDs (PROTOCOLS.md section
        8: UUIDs stable per user and domain).
        """
        model = self.load_model(passwd=f"demo@example.test:{DEMO_HASH}:::Demo\n")
        resource = self.tree(model)
        plain = self.request(resource, b"GET", b"/mobileconfig",
                             headers=(basic(b"demo@example.test",
                                            DEMO_PASSWORD.encode()),))
        upper = self.request(resource, b"GET", b"/mobileconfig",
                             headers=(basic(b"demo@EXAMPLE.TEST",
                                            DEMO_PASSWORD.encode()),))
        self.assertEqual(plain.code, 200)
        self.assertEqual(upper.comparable(), plain.comparable())
        [mail] = payloads(load_profile(upper.body), MAIL)
        self.assertEqual(mail["EmailAddress"], "demo@example.test")
