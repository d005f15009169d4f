"""
What C{[acme]} configures, read by every process: the certificates to
keep (labels and names), the client settings, and the certificates the
state directory holds, ready to serve.

Every process (the first, each worker, an instance that does not order)
serves ACME certificates the same way: at start and at every reload it
reads them from the state directory, as it reads C{[certificates]} files.
Only the ordering process writes there (L{smartdiscover.certs.acme.service}).
"""

from __future__ import annotations

from twisted.logger import Logger

from smartdiscover.certs.acme.client import AcmeSettings, order_names
from smartdiscover.certs.acme.renewal import ManagedCertificate
from smartdiscover.certs.acme.store import AcmeStore, StateError, StoredCertificate
from smartdiscover.certs.certificate import (
    CertificateError,
    Origin,
    ServedCertificate,
    build_certificate,
)
from smartdiscover.certs.files import load_certificates
from smartdiscover.certs.selection import ALPNSelect, CertificateSet
from smartdiscover.config.acme import ACME, acme_certificates
from smartdiscover.config.model import AcmeConfig, Model

# ACME's certificates in /health, /metrics and the set: "acme:<label>"
# (a [certificates] label cannot hold a colon, so the two never meet).
SERVED_PREFIX = "acme:"

_log = Logger(namespace="smartdiscover.certs.acme")


def managed_certificates(model: Model) -> list[ManagedCertificate]:
    """
    The certificates ACME keeps for C{model}, names as orders list them.
    """
    return [ManagedCertificate(label, order_names(names))
            for label, names in acme_certificates(model)]


def acme_settings(config: AcmeConfig) -> AcmeSettings:
    return AcmeSettings(directory=config.directory, contact=config.contact,
                        agree_terms=config.agree_terms, challenge=config.challenge,
                        challenges=dict(config.challenges), ca_file=config.ca_file)


def served_label(label: str) -> str:
    return SERVED_PREFIX + label


def to_served(stored: StoredCertificate, current: CertificateSet | None = None
              ) -> ServedCertificate:
    """
    C{stored} ready to serve; the object C{current} serves already when it
    was built from the same bytes (so its TLS context too).

    @raise CertificateError: OpenSSL refuses it.
    """
    label = served_label(stored.label)
    previous = current.labels.get(label) if current is not None else None
    if previous is not None and (previous.certificate_pem, previous.key_pem) == (
            stored.chain_pem, stored.key_pem):
        return previous
    return build_certificate(label, Origin(ACME, stored.label, stored.path, stored.path),
                             stored.chain_pem, stored.key_pem, True)


def stored_certificates(model: Model, current: CertificateSet | None = None
                        ) -> list[ServedCertificate]:
    """
    The certificates of the state directory that C{model} keeps, in its
    order; one that is missing (not ordered yet) or unusable (logged: the
    ordering process orders it again) is left out.  Blocking.
    """
    if model.acme is None:
        return []
    store = AcmeStore(model.acme.state)
    served = []
    for label, _ in acme_certificates(model):
        try:
            stored = store.load_certificate(label)
            if stored is not None:
                served.append(to_served(stored, current))
        except (StateError, CertificateError) as e:
            _log.error("ACME certificate {label} is not served: {reason}", label=label,
                       reason=str(e))
    return served


def load_served_certificates(model: Model, current: CertificateSet | None = None,
                             alpn: ALPNSelect | None = None) -> CertificateSet:
    """
    Every certificate C{model} serves: C{[server] https}'s, C{[certificates]}
    and what ACME stored, as L{load_certificates} builds the set.
    Blocking.

    @raise ConfigError: as L{load_certificates}.
    """
    return load_certificates(model, current, stored_certificates(model, current), alpn=alpn)
