"""
Host names as certificates list them and as TLS clients ask for them, and
the names this deployment serves.

Everything is compared as ASCII (A-labels, RFC 5890), lower case, without
a trailing dot.  A wildcard is a whole left-most label, C{*.example.org},
and covers exactly one label in its place (RFC 6125 section 6.4.3):
C{a.example.org}, never C{example.org} nor C{a.b.example.org}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509

if TYPE_CHECKING:
    from smartdiscover.config.model import Model

MAX_NAME = 253  # RFC 1035 section 2.3.4, without the trailing dot
MAX_LABEL = 63

_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def server_name(raw: bytes | None) -> str | None:
    """
    The name a TLS client asked for (the SNI host_name, RFC 6066 section 3)
    as a lookup key, or L{None} when there is none to look up: no SNI, or a
    value that is no host name (non-ASCII bytes, a U-label, an empty or
    over-long label, a character no host name has).  Upper case and one
    trailing dot are tolerated.

    Runs for every handshake, on bytes a client chose: no IDNA library, no
    cache, bounded work.
    """
    if not raw or len(raw) > MAX_NAME + 1:
        return None
    try:
        name = raw.decode("ascii").lower()
    except UnicodeDecodeError:
        return None
    if name.endswith("."):
        name = name[:-1]
    if not name or not _NAME_CHARACTERS.issuperset(name):
        return None
    if any(not label or len(label) > MAX_LABEL for label in name.split(".")):
        return None
    return name


def certificate_names(certificate: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
    """
    The DNS names of C{certificate}'s subjectAltName: the exact ones, the
    parents of its wildcards (C{example.org} for C{*.example.org}), and a
    note for each entry that can never be chosen by SNI.

    The subject's common name is not read: clients that check names ignore
    it when a subjectAltName is present and Apple's require one.
    """
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [], [], []
    exact: list[str] = []
    wildcards: list[str] = []
    ignored: list[str] = []
    for value in extension.value.get_values_for_type(x509.DNSName):
        pattern = value.lower()
        if pattern.startswith("*."):
            parent = _name(pattern[2:])
            if parent is None:
                ignored.append(f"{value!r} is not a host name")
            elif "." not in parent:
                ignored.append(f"{value!r} is too broad: a wildcard needs two labels after it")
            elif parent not in wildcards:
                wildcards.append(parent)
        elif "*" in pattern:
            ignored.append(f"{value!r}: only a whole left-most label may be a wildcard")
        else:
            name = _name(pattern)
            if name is None:
                ignored.append(f"{value!r} is not a host name")
            elif name not in exact:
                exact.append(name)
    return exact, wildcards, ignored


def _name(text: str) -> str | None:
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        return None
    return server_name(raw)


def covers(exact: tuple[str, ...] | list[str], wildcards: tuple[str, ...] | list[str],
           name: str) -> bool:
    """
    Whether a certificate with these names covers C{name} (a lookup key).
    """
    if name in exact:
        return True
    _, dot, parent = name.partition(".")
    return bool(dot) and parent in wildcards


def served_names(model: Model) -> dict[str, str]:
    """
    Every name clients reach this service by over TLS, each with why: the
    public host name (and each domain's own, from C{[domain:]}), and
    C{autodiscover.<domain>} and C{autoconfig.<domain>} of every served
    domain.  In this order; each name once.

    C{<domain>} itself is not among them: its address is usually the
    organisation's web site, not this service.
    """
    names = {model.public_hostname: "[server] public_hostname"}
    for domain in model.domains:
        own = model.catalogue_for(domain).public_hostname
        names.setdefault(own, f"[domain:{domain}] server.public_hostname")
        names.setdefault(f"autodiscover.{domain}", f"Autodiscover of {domain}")
        names.setdefault(f"autoconfig.{domain}", f"autoconfig of {domain}")
    return names
