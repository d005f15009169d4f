"""
Server TLS: the connection creator that reloads, and the profile signer of
a certificate.  Loading, checking and choosing certificates (SNI) is
smartdiscover/certs/; L{load_server_tls} loads one pair the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions
from zope.interface import implementer

from smartdiscover.certs.certificate import (
    INTERMEDIATE_CIPHERS,
    CertificateError,
    Origin,
    ServedCertificate,
    build_certificate,
)
from smartdiscover.config.certificates import DEFAULT_LABEL
from smartdiscover.discovery.signing import Signer

__all__ = ["INTERMEDIATE_CIPHERS", "ReloadableServerTLS", "ServerTLS", "TLSFilesError",
           "build_server_tls", "load_server_tls", "signer_for"]

# Certificate or key files that cannot be served (the name predates certs/).
TLSFilesError = CertificateError


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
    """
    One pair, checked and built as every certificate is
    (L{smartdiscover.certs.certificate.build_certificate}).

    @raise TLSFilesError: naming C{where}.
    """
    try:
        certificate = build_certificate(DEFAULT_LABEL, Origin("server", "https"),
                                        certificate_pem, key_pem)
    except CertificateError as e:
        raise TLSFilesError(f"{where}: {e}") from None
    return ServerTLS(certificate_pem, key_pem, certificate.options, signer_for(certificate))


def signer_for(certificate: ServedCertificate) -> Signer | None:
    """
    The CMS signer of C{certificate}'s key and chain; L{None} for keys CMS
    signing cannot use (neither RSA nor ECDSA).
    """
    key = certificate.signing_key
    if key is None:
        return None
    return Signer(certificate.leaf, key, certificate.chain[1:])


class HasOptions(Protocol):
    """
    What a connection starts from: a L{ServerTLS} (one certificate) or a
    L{smartdiscover.certs.CertificateSet} (several, chosen by SNI).
    """

    @property
    def options(self) -> CertificateOptions: ...


Source = TypeVar("Source", bound=HasOptions)


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTLS(Generic[Source]):
    """
    Creates each new TLS connection from the options in force; replacing
    them affects only connections accepted afterwards (a connection keeps
    the context it started with, or the one SNI switched it to).
    """

    def __init__(self, tls: Source) -> None:
        self.current = tls

    def replace(self, tls: Source) -> None:
        self.current = tls  # on the reactor thread

    def serverConnectionForTLS(self, protocol: object) -> SSL.Connection:
        return SSL.Connection(self.current.options.getContext(), None)
