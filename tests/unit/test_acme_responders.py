"""
Tests for L{smartdiscover.certs.acme.responders} and the pure parts of
L{smartdiscover.certs.acme.client}: what the challenge listeners answer,
on good and hostile input, the RFC 8737 certificate, the names an order
lists and the errors an operator reads.
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from acme import errors, messages
from cryptography import x509
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from smartdiscover.certs.acme.client import (
    AcmeError,
    AcmeSettings,
    RateLimited,
    Unreachable,
    explain_errors,
    order_names,
)
from smartdiscover.certs.acme.responders import (
    ACME_IDENTIFIER_OID,
    ACME_TLS_ALPN,
    DNS01,
    HTTP01,
    MAX_PUBLISHED,
    TLSALPN01,
    DNS01Records,
    HTTP01Tokens,
    IDNS01Responder,
    IHTTP01Responder,
    ITLSALPN01Responder,
    TLSALPN01Certificates,
    TooManyChallenges,
    challenge_certificate,
)

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


class HTTP01Tests(SynchronousTestCase):
    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IHTTP01Responder, HTTP01Tokens()))

    def test_publish_lookup_withdraw(self) -> None:
        """
        A published token is served (as str or bytes path segment) until
        it is withdrawn.
        """
        tokens = HTTP01Tokens()
        self.successResultOf(tokens.publish(TOKEN, f"{TOKEN}.thumb"))
        self.assertEqual(tokens.lookup(TOKEN), f"{TOKEN}.thumb".encode())
        self.assertEqual(tokens.lookup(TOKEN.encode()), f"{TOKEN}.thumb".encode())
        tokens.withdraw(TOKEN)
        tokens.withdraw(TOKEN)
        self.assertIsNone(tokens.lookup(TOKEN))

    def test_hostile_lookups(self) -> None:
        """
        Whatever follows /.well-known/acme-challenge/ is answered with
        nothing unless it is a published token.
        """
        tokens = HTTP01Tokens()
        self.successResultOf(tokens.publish(TOKEN, "x"))
        for path in [b"", b"..", b"../../etc/passwd", TOKEN.encode() + b"/", b"\xff" * 30,
                     TOKEN.upper().encode(), b"A" * 10_000, TOKEN.encode() + b"\x00",
                     "é".encode() * 20]:
            self.assertIsNone(tokens.lookup(path), path)

    def test_refuses_bad_tokens(self) -> None:
        """
        A token that is no RFC 8555 token is never published.
        """
        tokens = HTTP01Tokens()
        for token in ["short", "a/b" * 10, "x" * 200, TOKEN + "="]:
            self.assertRaises(ValueError, tokens.publish, token, "x")

    def test_bounded(self) -> None:
        tokens = HTTP01Tokens()
        for n in range(MAX_PUBLISHED):
            tokens.publish(f"{n:022d}", "x")
        self.assertRaises(TooManyChallenges, tokens.publish, "y" * 22, "x")
        tokens.publish(f"{0:022d}", "again")  # replacing one is fine


class DNS01Tests(SynchronousTestCase):
    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IDNS01Responder, DNS01Records()))

    def test_several_values(self) -> None:
        """
        A name and its wildcard share one owner name: both values are
        answered, and withdrawing one leaves the other; case and the
        trailing dot do not matter.
        """
        records = DNS01Records()
        records.publish("_acme-challenge.Example.test.", "one")
        records.publish("_acme-challenge.example.test", "two")
        records.publish("_acme-challenge.example.test", "two")
        self.assertEqual(records.values("_ACME-challenge.example.test."), ("one", "two"))
        records.withdraw("_acme-challenge.example.test", "one")
        self.assertEqual(records.values("_acme-challenge.example.test"), ("two",))
        records.withdraw("_acme-challenge.example.test", "two")
        records.withdraw("_acme-challenge.example.test", "two")
        self.assertEqual(records.values("_acme-challenge.example.test"), ())


class _Connection:
    def __init__(self, servername: bytes | None) -> None:
        self.servername = servername
        self.used: list[Any] = []

    def get_servername(self) -> bytes | None:
        return self.servername

    def use_certificate(self, certificate: Any) -> None:
        self.used.append(certificate)

    def use_privatekey(self, key: Any) -> None:
        self.used.append(key)


class TLSALPN01Tests(SynchronousTestCase):
    def test_interface(self) -> None:
        self.assertTrue(verifyObject(ITLSALPN01Responder, TLSALPN01Certificates()))

    def test_certificate(self) -> None:
        """
        RFC 8737 section 3: the one name in the subjectAltName, and a
        critical acmeIdentifier extension holding the DER OCTET STRING of
        the SHA-256 of the key authorization.
        """
        certificate, key = challenge_certificate("mail.example.test", f"{TOKEN}.thumb")
        self.assertEqual(certificate.public_key(), key.public_key())
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(names.value.get_values_for_type(x509.DNSName), ["mail.example.test"])
        extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
        self.assertTrue(extension.critical)
        digest = hashlib.sha256(f"{TOKEN}.thumb".encode()).digest()
        self.assertEqual(extension.value.value, b"\x04\x20" + digest)  # type: ignore[attr-defined]

    def test_select(self) -> None:
        """
        Only a client that offers acme-tls/1 and names a published name gets
        the challenge certificate; every other handshake is left alone.
        """
        certificates = TLSALPN01Certificates()
        certificate, key = challenge_certificate("mail.example.test", "ka")
        self.successResultOf(certificates.publish("Mail.Example.Test", certificate, key))
        cases = [
            (b"mail.example.test", [ACME_TLS_ALPN], True),
            (b"MAIL.example.test.", [b"h2", ACME_TLS_ALPN], True),
            (b"mail.example.test", [b"http/1.1"], False),
            (b"other.example.test", [ACME_TLS_ALPN], False),
            (None, [ACME_TLS_ALPN], False),
            (b"\xff\xfe", [ACME_TLS_ALPN], False),
        ]
        for servername, offered, chosen in cases:
            connection = _Connection(servername)
            self.assertEqual(certificates.select(connection, offered), chosen,  # type: ignore[arg-type]
                             servername)
            self.assertEqual(connection.used, [certificate, key] if chosen else [])
        certificates.withdraw("mail.example.test")
        self.assertFalse(certificates.select(_Connection(b"mail.example.test"),  # type: ignore[arg-type]
                                             [ACME_TLS_ALPN]))


class NamesTests(SynchronousTestCase):
    def test_normalised(self) -> None:
        """
        A-labels, lower case, no trailing dot, each once, in order.
        """
        self.assertEqual(order_names(["Autodiscover.Example.Test.", "autodiscover.example.test",
                                      "bücher.example.test", "*.Example.test"]),
                         ("autodiscover.example.test", "xn--bcher-kva.example.test",
                          "*.example.test"))

    def test_refused(self) -> None:
        """
        Garbage, a bare label, an over-long name, nothing, too many.
        """
        for names in ([], ["localhost"], ["a..b.test"], ["a b.test"], ["x" * 64 + ".test"],
                      ["a.test/x"], ["*.*.test"], ["a.test\x00"], ["-a-.test" * 40],
                      [f"n{i}.example.test" for i in range(101)]):
            self.assertRaises(ValueError, order_names, names)


class SettingsTests(SynchronousTestCase):
    def test_challenge_for(self) -> None:
        """
        Per name as configured, the default otherwise, DNS-01 for a wildcard.
        """
        settings = AcmeSettings("https://ca/dir", challenge=HTTP01,
                                challenges={"b.example.test": TLSALPN01})
        self.assertEqual([settings.challenge_for(n) for n in
                          ("a.example.test", "b.example.test", "*.example.test")],
                         [HTTP01, TLSALPN01, DNS01])

    def test_unknown_challenge(self) -> None:
        self.assertRaises(ValueError, AcmeSettings, "https://ca/dir", challenge="dns-02")
        self.assertRaises(ValueError, AcmeSettings, "https://ca/dir",
                          challenges={"a.example.test": "http"})


class ErrorTests(SynchronousTestCase):
    def explain(self, error: Exception) -> AcmeError:
        def raises() -> None:
            raise error
        return self.assertRaises(AcmeError, explain_errors, "https://ca/dir", raises)

    def test_rate_limited(self) -> None:
        """
        The CA's rateLimited problem is a L{RateLimited} with its detail.
        """
        error = self.explain(messages.Error.with_code(
            "rateLimited", detail="too many certificates already issued"))
        self.assertIsInstance(error, RateLimited)
        self.assertIn("too many certificates already issued", str(error))

    def test_refused(self) -> None:
        error = self.explain(messages.Error.with_code("rejectedIdentifier",
                                                      detail="policy forbids"))
        self.assertIn("the CA refused: policy forbids", str(error))

    def test_unreachable(self) -> None:
        for error in (requests.exceptions.ConnectionError("refused"),
                      requests.exceptions.ConnectTimeout("slow"),
                      requests.exceptions.SSLError("bad certificate")):
            explained = self.explain(error)
            self.assertIsInstance(explained, Unreachable)
            self.assertIn("https://ca/dir", str(explained))

    def test_timeout(self) -> None:
        self.assertIn("in time", str(self.explain(errors.TimeoutError())))
