"""
Certificates: where they come from (files now; ACME is the next source),
which one a TLS connection gets (SNI), and what is reported about them.

No web code here: web/ turns a certificate into the TLS connection creator
and the profile signer.  Imports of the project: config/ only.

 - L{certificate}: one certificate built from PEM bytes (chain ordered,
   names read from its subjectAltName, its TLS context);
 - L{selection}: the immutable set a process serves and the SNI lookup;
 - L{files}: the C{[server] https} and C{[certificates]} files;
 - L{names}: name rules (SNI values, wildcards, the served names);
 - L{report}: validity, coverage and warnings for /health, /metrics,
   C{check-config} and the log.
"""

from smartdiscover.certs.certificate import (
    CertificateError,
    Origin,
    ServedCertificate,
    build_certificate,
)
from smartdiscover.certs.files import load_certificates
from smartdiscover.certs.selection import CertificateSet

__all__ = [
    "CertificateError",
    "CertificateSet",
    "Origin",
    "ServedCertificate",
    "build_certificate",
    "load_certificates",
]
