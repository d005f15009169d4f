"""
What /health, /metrics, C{check-config} and the log say about the
certificates: each one's names and validity, which served name has none,
and what deserves a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from smartdiscover.certs.acme.renewal import RenewalStatus
from smartdiscover.certs.acme.served import served_label
from smartdiscover.certs.certificate import ServedCertificate, date_text
from smartdiscover.certs.names import served_names
from smartdiscover.certs.selection import CertificateSet
from smartdiscover.config.acme import acme_certificates
from smartdiscover.config.certificates import CERTIFICATES
from smartdiscover.config.loader import ConfigProblem
from smartdiscover.config.model import Model

# Warn this long before a certificate expires (an ACME client renews with
# about 30 days left; a hand-made one needs the reminder).
EXPIRY_WARNING = timedelta(days=14)


@dataclass(frozen=True)
class Coverage:
    """
    A served name, why it is served, and the certificate that serves it
    (L{None}: none covers it; clients asking for it get the default and
    refuse it).
    """

    name: str
    why: str
    certificate: ServedCertificate | None


def coverage(certificates: CertificateSet, model: Model) -> list[Coverage]:
    return [Coverage(name, why, certificates.covering(name))
            for name, why in served_names(model).items()]


def state(certificate: ServedCertificate, now: datetime) -> str:
    """
    C{valid}, C{expired} or C{not yet valid}.
    """
    if now > certificate.not_after:
        return "expired"
    if now < certificate.not_before:
        return "not yet valid"
    return "valid"


def days_left(certificate: ServedCertificate, now: datetime) -> float:
    return (certificate.not_after - now).total_seconds() / 86400


def validity_warning(certificate: ServedCertificate, now: datetime) -> str | None:
    """
    What is wrong with the validity now: expired, not yet valid, or about
    to expire.
    """
    if now > certificate.not_after:
        return f"expired on {date_text(certificate.not_after)}: clients refuse it"
    if now < certificate.not_before:
        return f"not valid before {date_text(certificate.not_before)}: clients refuse it"
    if certificate.not_after - now < EXPIRY_WARNING:
        return (f"expires on {date_text(certificate.not_after)}, in "
                f"{days_left(certificate, now):.1f} days")
    return None


def warnings(certificates: CertificateSet, model: Model,
             now: datetime | None = None) -> list[ConfigProblem]:
    """
    Every warning about the set, as file, section and key: each
    certificate's own and its validity, each served name no certificate
    covers or only an invalid one does, and each name two certificates of
    C{[certificates]} name exactly (the first serves it).
    """
    now = now or datetime.now(timezone.utc)
    source = str(model.source)
    found = []
    for certificate in certificates.in_precedence:
        notes = list(certificate.warnings)
        validity = validity_warning(certificate, now)
        if validity is not None:
            notes.append(validity)
        for note in notes:
            found.append(ConfigProblem(source, certificate.origin.section,
                                       certificate.origin.key, f"warning: {note}"))
    claimed: dict[str, ServedCertificate] = {}
    for certificate in certificates.certificates:
        for name in certificate.names:
            first = claimed.setdefault(name, certificate)
            if first is not certificate and first.origin.section == CERTIFICATES:
                found.append(ConfigProblem(
                    source, certificate.origin.section, certificate.origin.key,
                    f"warning: {name} is named by {first.label} too, which comes first"))
    ordered = {name: label for label, names in acme_certificates(model) for name in names}
    for covered in coverage(certificates, model):
        if covered.certificate is None:
            pending = ordered.get(covered.name)
            later = (f" until ACME has issued {served_label(pending)}" if pending is not None
                     else "")
            found.append(ConfigProblem(
                source, CERTIFICATES, None,
                f"warning: no certificate covers {covered.name} ({covered.why}): clients "
                f"that ask for it get {certificates.default.label} and refuse it{later}"))
        elif state(covered.certificate, now) != "valid":
            found.append(ConfigProblem(
                source, CERTIFICATES, None,
                f"warning: {covered.name} ({covered.why}) is served by "
                f"{covered.certificate.label}, which is {state(covered.certificate, now)}"))
    return found


def describe(certificate: ServedCertificate, now: datetime) -> dict[str, Any]:
    """
    One certificate for /health (JSON).
    """
    warnings = list(certificate.warnings)
    validity = validity_warning(certificate, now)
    if validity is not None:
        warnings.append(validity)
    return {
        "certificate": certificate.label,
        "configured": str(certificate.origin),
        "files": certificate.origin.files,
        "names": certificate.shown_names,
        "subject": certificate.leaf.subject.rfc4514_string(),
        "issuer": certificate.leaf.issuer.rfc4514_string(),
        "self_signed": certificate.self_signed,
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
        "days_left": round(days_left(certificate, now), 1),
        "state": state(certificate, now),
        "signs_profiles": certificate.signing_key is not None,
        "warnings": warnings,
    }


def summary(certificate: ServedCertificate, now: datetime) -> str:
    """
    One line for C{check-config}: label, where, names, validity.
    """
    names = ", ".join(certificate.shown_names) or "no DNS names"
    return (f"certificate {certificate.label} ({certificate.origin}, "
            f"{certificate.origin.files}): {names}; {state(certificate, now)} until "
            f"{date_text(certificate.not_after)} ({days_left(certificate, now):.0f} days)")


def describe_renewal(status: RenewalStatus) -> dict[str, Any]:
    """
    One ACME certificate's renewal for /health (JSON): C{state} is
    C{valid}, C{ordering}, C{failing} (the current certificate, if any,
    stays served) or C{missing}.
    """
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "certificate": served_label(status.label),
        "names": list(status.names),
        "state": status.state,
        "expires": when(status.expires),
        "renew_at": when(status.renew_at),
        "due_by": status.due_by,
        "next_attempt": when(status.next_attempt),
        "failures": status.failures,
        "last_error": status.last_error,
        "last_attempt": when(status.last_attempt),
        "last_success": when(status.last_success),
    }
