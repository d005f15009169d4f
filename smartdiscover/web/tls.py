"""
Server TLS: Mozilla "intermediate" settings and a context that reloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion
from zope.interface import implementer

from smartdiscover.discovery.signing import Signer

# Mozilla "intermediate" (TLS 1.2 + 1.3, AEAD suites only, forward secrecy).
INTERMEDIATE_CIPHERS = AcceptableCiphers.fromOpenSSLCipherString(
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


class TLSFilesError(ValueError):
    """
    Certificate or key files that cannot be served.
    """


@dataclass(frozen=True)
class ServerTLS:
    """
    The files a TLS context was built from, and the context options.
    """

    certificate_pem: bytes
    key_pem: bytes
    options: CertificateOptions
    signer: Signer | None  # None for keys CMS signing cannot use


def load_server_tls(certificate: Path, private_key: Path,
                    current: ServerTLS | None = None) -> ServerTLS:
    """
    Read a PEM certificate chain and its key and build the context options;
    return C{current} itself when it was built from the same bytes.

    Blocking: call it off the reactor thread.

    @raise TLSFilesError: unreadable or unparsable files, or a key that does
        not belong to the certificate.
    """
    try:
        certificate_pem = certificate.read_bytes()
        key_pem = private_key.read_bytes()
    except OSError as e:
        raise TLSFilesError(f"{e.filename}: {e.strerror}") from None
    if current is not None and (certificate_pem, key_pem) == (current.certificate_pem,
                                                               current.key_pem):
        return current
    return build_server_tls(certificate_pem, key_pem, f"{certificate} / {private_key}")


def build_server_tls(certificate_pem: bytes, key_pem: bytes, where: str) -> ServerTLS:
    try:
        chain = x509.load_pem_x509_certificates(certificate_pem)
    except ValueError as e:
        raise TLSFilesError(f"{where}: no usable PEM certificate ({e})") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise TLSFilesError(f"{where}: no usable unencrypted PEM key ({e})") from None
    if not _matches(key, chain[0]):
        raise TLSFilesError(f"{where}: the key does not belong to the certificate")
    # cryptography objects, which pyOpenSSL takes as they are (its own
    # X509 and PKey are deprecated); Twisted only hands them on.
    options = CertificateOptions(
        privateKey=key,  # type: ignore[arg-type]
        certificate=chain[0],  # type: ignore[arg-type]
        extraCertChain=list(chain[1:]),  # type: ignore[arg-type]
        raiseMinimumTo=TLSVersion.TLSv1_2,
        acceptableCiphers=INTERMEDIATE_CIPHERS,
        # Clients that come back resume instead of a full handshake, from
        # a server-side session cache (TLS 1.3: stateful tickets): no
        # ticket key outlives its process unrotated (SECURITY.md 4.1).
        enableSessions=True,
    )
    try:
        options.getContext()  # build it now, off the reactor thread
    except SSL.Error as e:
        raise TLSFilesError(f"{where}: OpenSSL refused the pair ({e})") from None
    signer = Signer(chain[0], key, tuple(chain[1:])) \
        if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)) else None
    return ServerTLS(certificate_pem, key_pem, options, signer)


def _matches(key: PrivateKeyTypes, certificate: x509.Certificate) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    ours = key.public_key().public_bytes(der, spki)
    return ours == certificate.public_key().public_bytes(der, spki)


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTLS:
    """
    Creates each new TLS connection from the options in force; replacing
    them affects only connections accepted afterwards.
    """

    def __init__(self, tls: ServerTLS) -> None:
        self.current = tls

    def replace(self, tls: ServerTLS) -> None:
        self.current = tls  # on the reactor thread

    def serverConnectionForTLS(self, protocol: object) -> SSL.Connection:
        return SSL.Connection(self.current.options.getContext(), None)
