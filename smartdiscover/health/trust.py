"""
What health probes trust when they check an endpoint's certificate.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet.ssl import Certificate, platformTrust, trustRootFromCertificates

if TYPE_CHECKING:  # the interface is not exported by twisted.internet.ssl
    from twisted.internet._sslverify import IOpenSSLTrustRoot


def probe_trust(ca_file: Path | None) -> IOpenSSLTrustRoot:
    """
    The [health] CA alone when given, else the system's store.  Blocking
    (reads the file): run it off the reactor.
    """
    if ca_file is None:
        return platformTrust()
    return trustRootFromCertificates([Certificate.loadPEM(ca_file.read_bytes())])
