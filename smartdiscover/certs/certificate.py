"""
One certificate as the server presents it: the chain in order, its key,
the names it serves and the TLS context built from them.

Built from PEM bytes, whatever source they came from (files today; an ACME
state directory later), off the reactor thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import SSL
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion

from smartdiscover.certs.names import certificate_names, covers

# Mozilla "intermediate" (TLS 1.2 + 1.3, AEAD suites only, forward secrecy).
INTERMEDIATE_CIPHERS = AcceptableCiphers.fromOpenSSLCipherString(
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)

# A chain is a leaf and a few intermediates; a file is a few kilobytes.
MAX_CHAIN = 10
MAX_PEM_BYTES = 1024 * 1024

ContextForServerName = Callable[[bytes | None], SSL.Context | None]


class CertificateError(ValueError):
    """
    Certificate or key bytes that cannot be served; the message says why.
    """


@dataclass(frozen=True)
class Origin:
    """
    Where a certificate was configured, for messages: the section and key
    (C{[server] https}, C{[certificates] LABEL}) and its files.
    """

    section: str
    key: str
    certificate_file: Path | None = None
    key_file: Path | None = None

    def __str__(self) -> str:
        return f"[{self.section}] {self.key}"

    @property
    def files(self) -> str:
        """
        C{CERT / KEY}, or C{CERT} alone when both are one file.
        """
        if self.certificate_file is None:
            return ""
        if self.key_file is None or self.key_file == self.certificate_file:
            return str(self.certificate_file)
        return f"{self.certificate_file} / {self.key_file}"


class Chained:
    """
    The leaf of a held C{chain} and its validity: for served certificates
    and for the ones ACME stored alike.
    """

    chain: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def not_before(self) -> datetime:
        return self.leaf.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.leaf.not_valid_after_utc


@dataclass(frozen=True, eq=False)
class ServedCertificate(Chained):
    """
    A certificate ready to serve.  Compared by identity: a reload that finds
    the same bytes keeps the same object, and with it the same context.

    @ivar chain: the leaf, then each certificate's issuer as the file had
        them, then any certificate of the file that is on no path from the
        leaf (kept, as today's single certificate kept them: see
        C{warnings}).
    @ivar names: the exact DNS names of the leaf's subjectAltName (lookup
        keys: ASCII, lower case).
    @ivar wildcards: the parents of its wildcard names.
    @ivar warnings: what loads but deserves a look (names that can never
        be chosen, a chain out of order); time-dependent ones (expiry) are
        computed when reported, see L{smartdiscover.certs.report}.
    """

    label: str
    origin: Origin
    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes = field(repr=False)
    names: tuple[str, ...]
    wildcards: tuple[str, ...]
    certificate_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    options: CertificateOptions = field(repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def context(self) -> SSL.Context:
        """
        The context connections switch to when SNI chooses this
        certificate; built once.  Only a certificate set may add an ALPN
        callback to it, before it serves a connection (TLS-ALPN-01,
        L{smartdiscover.certs.selection}); nothing else changes it.
        """
        return self.options.getContext()

    def valid_at(self, when: float) -> bool:
        """
        Whether C{when} (a POSIX time) lies within the leaf's validity.
        """
        return self.not_before.timestamp() <= when <= self.not_after.timestamp()

    def covers(self, name: str) -> bool:
        """
        Whether the leaf names C{name} (a lookup key), exactly or by wildcard.
        """
        return covers(self.names, self.wildcards, name)

    @property
    def shown_names(self) -> list[str]:
        """
        The names as a person reads them: exact ones, then C{*.parent}.
        """
        return [*self.names, *(f"*.{parent}" for parent in self.wildcards)]

    @property
    def self_signed(self) -> bool:
        return self.leaf.issuer == self.leaf.subject

    @property
    def signing_key(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None:
        """
        The key when CMS (profile signing) can use it: RSA or ECDSA.
        """
        if isinstance(self.key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            return self.key
        return None


def build_certificate(label: str, origin: Origin, certificate_pem: bytes, key_pem: bytes,
                      require_names: bool = False) -> ServedCertificate:
    """
    Parse, check and build the context of one certificate.  Blocking (it
    builds an OpenSSL context): call it off the reactor thread.

    @param require_names: refuse a certificate whose subjectAltName has no
        DNS name SNI could choose it by (every one but the default).
    @raise CertificateError: unparsable bytes, an encrypted key, a key that
        belongs to no certificate of the file, too long a chain, a pair
        OpenSSL refuses, or (with C{require_names}) no names.
    """
    if len(certificate_pem) > MAX_PEM_BYTES or len(key_pem) > MAX_PEM_BYTES:
        raise CertificateError(f"larger than {MAX_PEM_BYTES} bytes")
    try:
        certificates = x509.load_pem_x509_certificates(certificate_pem)
    except ValueError as e:
        raise CertificateError(f"no usable PEM certificate ({e})") from None
    if len(certificates) > MAX_CHAIN:
        raise CertificateError(f"{len(certificates)} certificates in the file: a chain "
                               f"has at most {MAX_CHAIN}")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise CertificateError(f"no usable unencrypted PEM key ({e})") from None
    chain, out_of_order, strays = order_chain(key, certificates)
    names, wildcards, ignored = certificate_names(chain[0])
    warnings = [f"subjectAltName {note}; no client can ask for it" for note in ignored]
    if not names and not wildcards:
        if require_names:
            raise CertificateError("the certificate's subjectAltName has no DNS name: SNI "
                                   "could never choose it")
        warnings.append("the certificate's subjectAltName has no DNS name: clients that "
                        "check names refuse it")
    if out_of_order:
        warnings.append("the certificates of the file are out of order: served leaf first, "
                        "each followed by its issuer")
    for stray in strays:
        warnings.append(f"{_subject(stray)} in the file issued none of the chain from "
                        f"{_subject(chain[0])}; sent after it as given")
    chain += strays
    options = server_options(key, chain)
    try:
        options.getContext()  # build it now, off the reactor thread
    except SSL.Error as e:
        raise CertificateError(f"OpenSSL refused the pair ({e})") from None
    return ServedCertificate(label, origin, tuple(chain), key, tuple(names), tuple(wildcards),
                             certificate_pem, key_pem, options, tuple(warnings))


def server_options(key: PrivateKeyTypes,
                   chain: list[x509.Certificate] | tuple[x509.Certificate, ...],
                   context_for: ContextForServerName | None = None) -> CertificateOptions:
    """
    The server settings every certificate is served with (TWISTED.md
    section 3, SECURITY.md section 4.1), and, for the context every
    connection starts in, the SNI callback that switches to another.
    """
    # cryptography objects, which pyOpenSSL takes as they are (its own
    # X509 and PKey are deprecated); Twisted only hands them on.
    return CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]
        certificate=chain[0],  # type: ignore[arg-type]
        extraCertChain=list(chain[1:]),  # type: ignore[arg-type]
        raiseMinimumTo=TLSVersion.TLSv1_2,
        acceptableCiphers=INTERMEDIATE_CIPHERS,
        # Clients that come back resume instead of a full handshake, from
        # a server-side session cache (TLS 1.3: stateful tickets): no
        # ticket key outlives its process unrotated (SECURITY.md 4.1).
        enableSessions=True,
        contextForServerName=context_for,
    )


def order_chain(key: PrivateKeyTypes, certificates: list[x509.Certificate]
                ) -> tuple[list[x509.Certificate], bool, list[x509.Certificate]]:
    """
    The chain from the certificate C{key} belongs to, wherever it is in the
    file, through each issuer found in the file (by name and signature);
    whether that differs from the file's order; and the certificates left.

    @raise CertificateError: C{key} belongs to none of C{certificates}.
    """
    leaf = next((c for c in certificates if _public(c) == _public_of_key(key)), None)
    if leaf is None:
        raise CertificateError("the key does not belong to the certificate"
                               + (" (nor to any other in the file)" if len(certificates) > 1
                                  else ""))
    chain = [leaf]
    rest = [c for c in certificates if c is not leaf]
    while rest and chain[-1].issuer != chain[-1].subject:
        issuer = next((c for c in rest if _issued(chain[-1], c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        rest.remove(issuer)
    out_of_order = certificates[:len(chain)] != chain
    return chain, out_of_order, rest


def _issued(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _public(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_of_key(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "a certificate without a subject"


def date_text(when: datetime) -> str:
    """
    C{2026-05-01 12:00 UTC}.
    """
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
