"""
The C{[certificates]} section: certificates besides C{[server] https}'s,
one a line, C{LABEL = CERTIFICATE_FILE[, KEY_FILE]}.

The names each one serves are not written here: they are read from the
certificate's subjectAltName when it is loaded (smartdiscover/certs/), as
HAProxy's crt-list and nginx do, so the file and the configuration cannot
disagree.  Here only the lines are checked: labels, paths, readable files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Mapping

from smartdiscover.config.model import CertificateFiles
from smartdiscover.config.section import readable_file

CERTIFICATES = "certificates"

# The label that names [server] https's certificate in /health and /metrics.
DEFAULT_LABEL = "default"

# A host with 50 domains has at most a few hundred certificates; every one
# costs a TLS context in every process.
MAX_CERTIFICATES = 1000

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")

Report = Callable[[str | None, str | None, str], None]


def build_certificates(section: Mapping[str, str], base: Path,
                       report: Report) -> tuple[CertificateFiles, ...]:
    """
    The lines of C{[certificates]} in file order, paths relative to C{base};
    every problem reported with its key.
    """
    entries: list[CertificateFiles] = []
    seen: dict[str, str] = {}
    if len(section) > MAX_CERTIFICATES:
        report(CERTIFICATES, None, f"{len(section)} certificates: at most {MAX_CERTIFICATES}")
        return ()
    for label, value in section.items():
        if not _LABEL.match(label):
            report(CERTIFICATES, label, "a label is 1 to 64 ASCII letters, digits, '.', '_' "
                   "or '-', starting with a letter or digit")
            continue
        if label.lower() == DEFAULT_LABEL:
            report(CERTIFICATES, label, f"{DEFAULT_LABEL!r} names the certificate of [server] "
                   "https; choose another label")
            continue
        if label.lower() in seen:
            report(CERTIFICATES, label, f"the same label as {seen[label.lower()]} (labels are "
                   "compared in any letter case)")
            continue
        seen[label.lower()] = label
        parts = [part.strip() for part in value.split(",")]
        if not value.strip():
            report(CERTIFICATES, label, "empty value: CERTIFICATE_FILE[, KEY_FILE]")
            continue
        if len(parts) > 2 or not all(parts):
            report(CERTIFICATES, label, "must be CERTIFICATE_FILE (certificate, chain and key "
                   "in one PEM file) or CERTIFICATE_FILE, KEY_FILE")
            continue
        try:
            certificate = readable_file(base / parts[0])
            key = readable_file(base / parts[-1])
        except ValueError as e:
            report(CERTIFICATES, label, str(e))
            continue
        entries.append(CertificateFiles(label, certificate, key))
    return tuple(entries)
