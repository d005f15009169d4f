"""
The certificates an administrator brings: C{[server] https}'s pair (the
default) and every line of C{[certificates]}, read from PEM files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from smartdiscover.certs.certificate import (
    MAX_PEM_BYTES,
    CertificateError,
    Origin,
    ServedCertificate,
    build_certificate,
)
from smartdiscover.certs.selection import ALPNSelect, CertificateSet
from smartdiscover.config.certificates import CERTIFICATES, DEFAULT_LABEL
from smartdiscover.config.loader import ConfigError, ConfigProblem
from smartdiscover.config.model import Model


def default_origin(model: Model) -> Origin:
    return Origin("server", "https", model.https.certificate, model.https.private_key)


def load_certificates(model: Model, current: CertificateSet | None = None,
                      others: Sequence[ServedCertificate] = (),
                      clock: Callable[[], float] = time.time,
                      alpn: ALPNSelect | None = None) -> CertificateSet:
    """
    The set C{model} configures; C{current} itself when every file holds
    the bytes it was built from, and each certificate of C{current} whose
    files did not change (so its context too).  Blocking: call it off the
    reactor thread.

    @param others: certificates from other sources (ACME), placed after
        C{[certificates]} and before the default.
    @param alpn: the set's ALPN select callback (L{CertificateSet.alpn});
        C{current} is kept only when it has this one.
    @raise ConfigError: every certificate that cannot be served, each
        named by file, section and key; nothing of C{current} changes.
    """
    problems: list[ConfigProblem] = []
    kept = current.labels if current is not None else {}
    default = _load(model, DEFAULT_LABEL, default_origin(model), kept, problems, False)
    loaded = []
    for files in model.certificates:
        origin = Origin(CERTIFICATES, files.label, files.certificate, files.private_key)
        certificate = _load(model, files.label, origin, kept, problems, True)
        if certificate is not None:
            loaded.append(certificate)
    if problems or default is None:
        raise ConfigError(problems)
    loaded += others
    if current is not None and current.alpn == alpn and current.same_as(default, loaded):
        return current
    return CertificateSet(default, loaded, clock, alpn)


def read_pem(path: Path) -> bytes:
    """
    The bytes of a PEM file, at most L{MAX_PEM_BYTES}.

    @raise CertificateError: unreadable or larger.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PEM_BYTES + 1)
    except OSError as e:
        raise CertificateError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_PEM_BYTES:
        raise CertificateError(f"{path} is larger than {MAX_PEM_BYTES} bytes")
    return data


def _load(model: Model, label: str, origin: Origin, kept: dict[str, ServedCertificate],
          problems: list[ConfigProblem], require_names: bool) -> ServedCertificate | None:
    assert origin.certificate_file is not None and origin.key_file is not None
    try:
        certificate_pem = read_pem(origin.certificate_file)
        key_pem = read_pem(origin.key_file)
        previous = kept.get(label)
        if previous is not None and previous.origin == origin and (
                previous.certificate_pem, previous.key_pem) == (certificate_pem, key_pem):
            return previous
        return build_certificate(label, origin, certificate_pem, key_pem, require_names)
    except CertificateError as e:
        problems.append(ConfigProblem(str(model.source), origin.section, origin.key,
                                      f"{origin.files}: {e}"))
        return None
