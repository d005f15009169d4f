"""
CMS (PKCS #7) SignedData around a document, so Apple devices show a profile
as verified: signed with the server's TLS certificate and key, chain included.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7


@dataclass(frozen=True)
class Signer:
    """
    A certificate, the key that belongs to it, and the rest of its chain.
    """

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    def sign(self, content: bytes) -> bytes:
        """
        DER SignedData with C{content} attached (not detached: the profile is
        inside the signature) and the certificates to verify it.  Binary:
        without it the content's line ends would be rewritten as CRLF.
        """
        builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(
            self.certificate, self.key, hashes.SHA256())
        for certificate in self.chain:
            builder = builder.add_certificate(certificate)
        return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
