"""
The C{[acme]} section: which CA, who the account is, where its state
lives, and how each name is proved (docs/certificates.md, "ACME").

The names are not listed: they follow from the served domains (one
certificate per domain: C{autodiscover.<domain>}, C{autoconfig.<domain>},
the domain's own public host name, and C{<domain>} itself when
C{apex_names} says its address points here) and the public host name, so
that a domain added to C{[server] domains} gets its certificate at the
next reload.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit

from smartdiscover.config import values
from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.model import AcmeConfig, Model
from smartdiscover.config.section import Section, readable_file

ACME = "acme"
ACME_KEYS = ("directory", "contact", "agree_terms", "state", "ca_file", "challenge",
             "apex_names", "order")
CHALLENGE_PREFIX = "challenge."
HTTP01, DNS01, TLSALPN01 = "http-01", "dns-01", "tls-alpn-01"
CHALLENGES = (HTTP01, TLSALPN01, DNS01)
DEFAULT_STATE = Path("/var/lib/smartdiscover")  # the unit's StateDirectory; ACME uses acme/ in it
# The label of the certificate for [server] public_hostname (a domain's
# label always has a dot, so the two cannot meet).
HOSTNAME_LABEL = "hostname"
MAX_LABEL = 64

Report = Callable[[str | None, str | None, str], None]

# RFC 5321 is wider; a CA accepts less (Let's Encrypt refuses quoted local
# parts and addresses without a dot in the domain), and so do we.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}\Z")


def build_acme(section: Mapping[str, str], base: Path, report: Report) -> AcmeConfig | None:
    """
    The section's settings, or L{None} when there is no section; the
    names C{challenge.NAME} gives are checked against the model later
    (L{check_acme}).
    """
    if not section:
        return None
    plain = {k: v for k, v in section.items() if not k.startswith(CHALLENGE_PREFIX)}
    get = Section(ACME, plain, ACME_KEYS, report).get
    directory = get("directory", _directory_url, required=True)
    challenges = {}
    for key, value in section.items():
        if not key.startswith(CHALLENGE_PREFIX):
            continue
        if "*" in key:
            report(ACME, key, "no wildcard is ordered: each served name is ordered as itself")
            continue
        try:
            name = normalize_domain(key[len(CHALLENGE_PREFIX):])
        except AddressError as e:
            report(ACME, key, f"{CHALLENGE_PREFIX}NAME: {e}")
            continue
        kind = _challenge(value.strip(), report, key)
        if kind is not None:
            challenges[name] = kind
    challenge = get("challenge", values.choice(CHALLENGES), HTTP01)
    if directory is None:
        return None
    return AcmeConfig(
        directory=directory,
        state=get("state", lambda v: _directory(base / v), DEFAULT_STATE),
        contact=get("contact", _contacts, ()),
        agree_terms=get("agree_terms", values.boolean, False),
        ca_file=get("ca_file", lambda v: readable_file(base / v)),
        challenge=challenge,
        challenges=challenges,
        apex=get("apex_names", _domains_or_all, frozenset()),
        order=get("order", values.boolean, True),
    )


def check_acme(model: Model, report: Report) -> None:
    """
    What C{[acme]} asks of the rest of the configuration: a listener for
    every challenge type it uses, names it orders for every
    C{challenge.NAME} and C{apex_names} entry.
    """
    acme = model.acme
    if acme is None:
        return
    if "*" not in acme.apex:
        for domain in sorted(acme.apex - set(model.domains)):
            report(ACME, "apex_names", f"{domain} is not in [server] domains")
    ordered = {name for _, names in acme_certificates(model) for name in names}
    for name in acme.challenges:
        if name not in ordered:
            report(ACME, CHALLENGE_PREFIX + name,
                   f"{name} is not a name ordered here (those are: "
                   + ", ".join(sorted(ordered)) + ")")
    if not acme.order:
        return
    used = challenges_used(model)
    if HTTP01 in used and model.http is None:
        report(ACME, "challenge", "http-01 is answered on the plain-HTTP listener: set "
               "[server] http (the CA connects to port 80), or choose tls-alpn-01 or dns-01")
    if TLSALPN01 in used and model.workers > 1:
        report(ACME, "challenge", "tls-alpn-01 needs [server] workers = 1 (the CA's "
               "connection may reach any worker); choose http-01 or dns-01")
    if DNS01 in used:
        if model.dns is None:
            report(ACME, "challenge", "dns-01 is answered by the DNS responder: set "
                   "[server] dns and delegate the zones to it, or choose http-01")
        else:
            for name in sorted(ordered):
                if acme.challenges.get(name, acme.challenge) == DNS01 and not any(
                        name == d or name.endswith("." + d) for d in model.domains):
                    report(ACME, CHALLENGE_PREFIX + name,
                           f"{name} is in no served zone, so dns-01 cannot prove it here")


def challenges_used(model: Model) -> set[str]:
    """
    The challenge types C{[acme]} proves its names with.
    """
    acme = model.acme
    if acme is None:
        return set()
    return {acme.challenges.get(name, acme.challenge)
            for _, names in acme_certificates(model) for name in names}


def acme_certificates(model: Model) -> list[tuple[str, tuple[str, ...]]]:
    """
    The certificates ACME keeps, as (label, names): one per served domain
    (label: the domain), then one for the public host name when no
    domain's already names it.
    """
    acme = model.acme
    if acme is None:
        return []
    apex = acme.apex
    certificates: list[tuple[str, tuple[str, ...]]] = []
    named: set[str] = set()
    for domain in model.domains:
        names = [f"autodiscover.{domain}", f"autoconfig.{domain}"]
        if "*" in apex or domain in apex:
            names.insert(0, domain)
        own = model.catalogue_for(domain).public_hostname
        if own != model.public_hostname and _is_name(own) and own not in names:
            names.append(own)
        certificates.append((domain_label(domain), tuple(names)))
        named.update(names)
    if model.public_hostname not in named and _is_name(model.public_hostname):
        certificates.append((HOSTNAME_LABEL, (model.public_hostname,)))
    return certificates


def domain_label(domain: str) -> str:
    """
    The state-directory label of a domain's certificate: the domain, or
    for one longer than a label may be, its start and a digest.
    """
    if len(domain) <= MAX_LABEL:
        return domain
    return domain[:MAX_LABEL - 17] + "-" + hashlib.sha256(domain.encode()).hexdigest()[:16]


def _is_name(host: str) -> bool:
    # A public host name may be an address literal; no CA issues for one
    # by these challenges.
    return any(c.isalpha() for c in host.rsplit(".", 1)[-1])


def _challenge(value: str, report: Report, key: str) -> str | None:
    if value in CHALLENGES:
        return value
    report(ACME, key, f"{value!r} is not one of: " + ", ".join(CHALLENGES))
    return None


def _directory_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} is not an https URL (the CA's directory, e.g. "
                         "https://acme-v02.api.letsencrypt.org/directory)")
    if any(c.isspace() for c in value) or not value.isascii():
        raise ValueError(f"{value!r} is not a URL")
    return value


def _contacts(value: str) -> tuple[str, ...]:
    found = []
    for item in value.split(","):
        address = item.strip().removeprefix("mailto:")
        if not address:
            continue
        if not _ADDRESS.match(address) or "." not in address.rpartition("@")[2]:
            raise ValueError(f"{item.strip()!r} is not an e-mail address")
        if address not in found:
            found.append(address)
    return tuple(found)


def _domains_or_all(value: str) -> frozenset[str]:
    if value.strip().lower() == "all":
        return frozenset({"*"})
    if value.strip().lower() == "none":
        return frozenset()
    return frozenset(values.domain_list(value))


def _directory(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    return path
