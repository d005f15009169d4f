"""
TLS as the probes see it: client options that keep the peer's certificate,
and why a handshake failed in words an administrator can act on.
"""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer


@implementer(IOpenSSLClientConnectionCreator)
class Recorder:
    """
    Client TLS options that keep the connection, to read the peer's
    certificate after the handshake (or after it failed).
    """

    def __init__(self, inner: IOpenSSLClientConnectionCreator) -> None:
        self._inner = inner
        self.connection: SSL.Connection | None = None

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        self.connection = self._inner.clientConnectionForTLS(tlsProtocol)
        return self.connection

    def peer_certificate(self) -> x509.Certificate | None:
        if self.connection is None:
            return None
        try:
            certificate = self.connection.get_peer_certificate(as_cryptography=True)
            if certificate is None:  # verification failed: the chain was still received
                chain = self.connection.get_peer_cert_chain(as_cryptography=True)
                certificate = chain[0] if chain else None
        except SSL.Error:
            return None
        return certificate


def tls_error(exc: SSL.Error, handshaking: bool, certificate: x509.Certificate | None,
              now: datetime.datetime) -> str:
    """
    Why TLS failed: the certificate's fault when verification refused it,
    else OpenSSL's reasons.
    """
    reasons = [r[2] for r in (exc.args[0] if exc.args else [])
               if isinstance(r, tuple) and len(r) == 3 and r[2]]
    if "certificate verify failed" in reasons:
        return _untrusted(certificate, now)
    text = f" ({', '.join(reasons)})" if reasons else ""
    if handshaking:
        return "TLS handshake failed" + text
    return "TLS error" + text


def _untrusted(certificate: x509.Certificate | None, now: datetime.datetime) -> str:
    """
    Why the trust root refused the certificate, guessed from what the
    server sent: pyOpenSSL does not expose the verification error.
    """
    if certificate is None:
        return "certificate is not trusted"
    if certificate.not_valid_after_utc < now:
        return f"certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
    if certificate.not_valid_before_utc > now:
        return f"certificate is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
    if certificate.issuer == certificate.subject:
        return "self-signed certificate is not trusted"
    names = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer = names[0].value if names else certificate.issuer.rfc4514_string()
    return f"certificate issued by {issuer!s} is not trusted"
