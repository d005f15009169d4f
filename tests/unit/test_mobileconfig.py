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
import uuid
from pathlib import Path
from typing import Any, Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import load
from smartdiscover.config.model import Security, SocketService
from smartdiscover.discovery.mobileconfig import render_profile
from smartdiscover.config.principal import Principal
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, write_config
from tests.unit.test_autoconfig import (
    DISPLAY_NAME,
    SITE_INI,
    SITE_PASSWD,
    SiteFixture,
    catalogue,
)
from tests.unit.test_http_endpoints import basic

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


# -- over the site ---------------------------------------------------------


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
