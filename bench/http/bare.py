"""
The reference: a bare twisted.web resource returning fixed bytes over TLS,
with TCP_NODELAY and parsePOSTFormSubmission=False (Twisted's best-practice
floor for the same answer).

    python bench/http/bare.py PORT CERT KEY BODY
"""

from __future__ import annotations

import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL.crypto import PKey, X509
from twisted.internet import reactor
from twisted.internet.ssl import CertificateOptions
from twisted.web import http, server
from twisted.web.resource import Resource


class Fixed(Resource):
    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render(self, request: server.Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
        return self.body


class Channel(http.HTTPChannel):
    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)
        super().connectionMade()


def main() -> None:
    port, cert, key, body = sys.argv[1:5]
    site = server.Site(Fixed(open(body, "rb").read()), parsePOSTFormSubmission=False)
    site.protocol = Channel
    site.log = lambda request: None
    certificate = x509.load_pem_x509_certificate(open(cert, "rb").read())
    private = serialization.load_pem_private_key(open(key, "rb").read(), None)
    options = CertificateOptions(privateKey=PKey.from_cryptography_key(private),
                                 certificate=X509.from_cryptography(certificate))
    reactor.listenSSL(int(port), site, options, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
