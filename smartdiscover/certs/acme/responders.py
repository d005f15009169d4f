"""
Who answers the CA's challenges: one responder interface per challenge
type, and the in-memory holders the listeners read.

The ACME client publishes what the CA will look for before it tells the
CA to validate, and withdraws it once the authorization is decided:

 - HTTP-01 (RFC 8555 section 8.3): the key authorization served as
   C{text/plain} at C{http://NAME/.well-known/acme-challenge/TOKEN};
 - DNS-01 (section 8.4): a TXT record at C{_acme-challenge.NAME};
 - TLS-ALPN-01 (RFC 8737): a self-signed certificate carrying the
   C{acmeIdentifier} extension, presented to a TLS client that offers
   only the ALPN protocol C{acme-tls/1} with SNI C{NAME}.

No listener lives here.  web/ serves L{HTTP01Tokens.lookup} at
C{/.well-known/acme-challenge/} on the plain-HTTP listener; the HTTPS
listener's certificate set installs L{TLSALPN01Certificates.alpn_select}
as its ALPN callback; dns/ answers TXT queries from
L{DNS01Records.values}.  A listener that must do more than read memory
(another process, another instance) implements the interface itself:
C{publish} returns a L{Deferred} that fires when the value is visible to
the CA.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet.defer import Deferred, succeed
from zope.interface import Interface, implementer

HTTP01 = "http-01"
DNS01 = "dns-01"
TLSALPN01 = "tls-alpn-01"
CHALLENGE_TYPES = (HTTP01, DNS01, TLSALPN01)

ACME_TLS_ALPN = b"acme-tls/1"
# RFC 8737 section 6.1: id-pe-acmeIdentifier.
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
HTTP01_PATH = "/.well-known/acme-challenge/"

# At most this many challenges are published at once: an order has one per
# name, and a host with 50 domains has a few hundred names.
MAX_PUBLISHED = 2000
# RFC 8555 tokens: base64url, at least 128 bits (22 characters); a lookup
# with anything else is answered without touching the table.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,128}\Z")


class TooManyChallenges(Exception):
    """
    More challenges published at once than L{MAX_PUBLISHED}.
    """


class IHTTP01Responder(Interface):
    """
    Serves HTTP-01 key authorizations.
    """

    def publish(token: str, key_authorization: str) -> Deferred[None]:
        """
        Serve C{key_authorization} for C{token} from now on; the
        L{Deferred} fires once it is served.
        """

    def withdraw(token: str) -> None:
        """
        Stop serving C{token} (nothing happens for an unknown one).
        """


class IDNS01Responder(Interface):
    """
    Publishes DNS-01 TXT records.
    """

    def publish(name: str, value: str) -> Deferred[None]:
        """
        Answer TXT queries for C{name} (C{_acme-challenge.<identifier>},
        no trailing dot, lower case) with C{value} besides any other value
        published for it; the L{Deferred} fires once the authoritative
        servers answer with it.
        """

    def withdraw(name: str, value: str) -> None:
        """
        Stop answering C{value} for C{name}.
        """


class ITLSALPN01Responder(Interface):
    """
    Presents TLS-ALPN-01 challenge certificates.
    """

    def publish(name: str, certificate: x509.Certificate,
                key: ec.EllipticCurvePrivateKey) -> Deferred[None]:
        """
        Present C{certificate} (made by L{challenge_certificate}) to TLS
        clients that ask for C{name} with ALPN C{acme-tls/1}.
        """

    def withdraw(name: str) -> None:
        """
        Stop presenting a challenge certificate for C{name}.
        """


@implementer(IHTTP01Responder)
class HTTP01Tokens:
    """
    The HTTP-01 key authorizations in force, in memory.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, bytes] = {}

    def publish(self, token: str, key_authorization: str) -> Deferred[None]:
        if not _TOKEN.match(token):
            raise ValueError(f"not an ACME token: {token[:40]!r}")
        if token not in self._tokens and len(self._tokens) >= MAX_PUBLISHED:
            raise TooManyChallenges(f"{MAX_PUBLISHED} HTTP-01 tokens published already")
        self._tokens[token] = key_authorization.encode("ascii")
        return succeed(None)

    def withdraw(self, token: str) -> None:
        self._tokens.pop(token, None)

    def lookup(self, token: bytes | str) -> bytes | None:
        """
        The body to serve for the last path segment C{token} of a request
        below L{HTTP01_PATH}, or L{None} (a 404).  Safe on any input: a
        value that is no token is not looked up.
        """
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                return None
        if not _TOKEN.match(token):
            return None
        return self._tokens.get(token)

    def __len__(self) -> int:
        return len(self._tokens)


@implementer(IDNS01Responder)
class DNS01Records:
    """
    The DNS-01 TXT values in force, in memory, by owner name.
    """

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}
        self._count = 0

    def publish(self, name: str, value: str) -> Deferred[None]:
        name = _owner(name)
        values = self._values.setdefault(name, [])
        if value not in values:
            if self._count >= MAX_PUBLISHED:
                raise TooManyChallenges(f"{MAX_PUBLISHED} DNS-01 values published already")
            values.append(value)
            self._count += 1
        return succeed(None)

    def withdraw(self, name: str, value: str) -> None:
        name = _owner(name)
        values = self._values.get(name, [])
        if value in values:
            values.remove(value)
            self._count -= 1
        if not values:
            self._values.pop(name, None)

    def values(self, name: str) -> tuple[str, ...]:
        """
        The TXT values for C{name} (any letter case, with or without the
        trailing dot); empty when there is none.
        """
        return tuple(self._values.get(_owner(name), ()))

    def published(self) -> list[tuple[str, str]]:
        """
        Every (owner, value) in force, for a responder that compiles its
        answers ahead: owners in the order first published, each owner's
        values in publish order.
        """
        return [(name, value) for name, values in self._values.items() for value in values]


@implementer(ITLSALPN01Responder)
class TLSALPN01Certificates:
    """
    The TLS-ALPN-01 challenge certificates in force, by name, ready for
    OpenSSL.
    """

    def __init__(self) -> None:
        self._certificates: dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}

    def publish(self, name: str, certificate: x509.Certificate,
                key: ec.EllipticCurvePrivateKey) -> Deferred[None]:
        name = _owner(name)
        if name not in self._certificates and len(self._certificates) >= MAX_PUBLISHED:
            raise TooManyChallenges(f"{MAX_PUBLISHED} TLS-ALPN-01 certificates published "
                                    "already")
        self._certificates[name] = (certificate, key)
        return succeed(None)

    def withdraw(self, name: str) -> None:
        self._certificates.pop(_owner(name), None)

    def __len__(self) -> int:
        return len(self._certificates)

    def select(self, connection: SSL.Connection, offered: Sequence[bytes]) -> bool:
        """
        For the ALPN select callback of the HTTPS listener: if the client
        offers C{acme-tls/1} and asks (SNI) for a name with a challenge
        certificate, present that certificate on C{connection} and return
        L{True} (the callback then selects C{acme-tls/1}); otherwise change
        nothing and return L{False} (the callback goes on as usual, see
        L{alpn_select}).

        OpenSSL calls the ALPN callback after the SNI callback chose the
        context and before the certificate is sent, so the certificate set
        here is the one the client sees.
        """
        if ACME_TLS_ALPN not in offered:
            return False
        raw = connection.get_servername()
        if not raw:
            return False
        try:
            name = raw.decode("ascii").lower().rstrip(".")
        except UnicodeDecodeError:
            return False
        pair = self._certificates.get(name)
        if pair is None:
            return False
        connection.use_certificate(pair[0])
        connection.use_privatekey(pair[1])
        return True

    def alpn_select(self, connection: SSL.Connection, offered: list[bytes]) -> bytes | object:
        """
        The HTTPS listener's ALPN select callback (for
        C{SSL.Context.set_alpn_select_callback}): C{acme-tls/1} with the
        challenge certificate when L{select} presents one; else
        C{http/1.1} when offered; else no protocol, and the handshake goes
        on without ALPN, as it did before there was a callback.  Safe on
        any client input, as L{select} is: an exception would abort the
        handshake.
        """
        if self.select(connection, offered):
            return ACME_TLS_ALPN
        return b"http/1.1" if b"http/1.1" in offered else SSL.NO_OVERLAPPING_PROTOCOLS


def challenge_certificate(name: str, key_authorization: str,
                          key: ec.EllipticCurvePrivateKey | None = None,
                          now: datetime | None = None
                          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """
    The TLS-ALPN-01 certificate for C{name} (RFC 8737 section 3): self-signed,
    its subjectAltName exactly C{name}, and a critical C{acmeIdentifier}
    extension holding the SHA-256 digest of C{key_authorization}.

    Built here with C{cryptography}: the C{acme} package dropped its
    TLS-ALPN-01 helpers (C{acme.crypto_util} has none in 5.x).
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.now(timezone.utc)
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    # The extension's value is the DER encoding of an OCTET STRING of the digest.
    value = bytes([0x04, len(digest)]) + digest
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME TLS-ALPN-01 challenge")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, value), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _owner(name: str) -> str:
    return name.lower().rstrip(".")
