"""
Which served domain a request's Host header names.
"""

from __future__ import annotations

from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.model import Model

# Clients reach us as <domain>, autodiscover.<domain> or autoconfig.<domain>.
SERVICE_PREFIXES = ("autodiscover.", "autoconfig.")


def served_domain(model: Model, host: bytes) -> str | None:
    """
    The served domain C{host} names (C{<domain>}, C{autodiscover.<domain>},
    C{autoconfig.<domain>} or a public host name set for that domain
    alone), or L{None}.  Never trust the value further than this lookup: it
    comes from the client.
    """
    try:
        name = normalize_domain(host.decode("ascii"))
    except (UnicodeDecodeError, AddressError):
        return None
    for prefix in SERVICE_PREFIXES:
        if name.startswith(prefix) and model.serves(name[len(prefix):]):
            return name[len(prefix):]
    if model.serves(name):
        return name
    owners = [domain for domain, catalogue in model.domain_catalogues.items()
              if catalogue.public_hostname == name]
    if len(owners) == 1 and name != model.catalogue.public_hostname:
        return owners[0]  # a public host name of that domain alone
    return None


def own_name(model: Model, host: bytes) -> str | None:
    """
    C{host} normalised (lower case, punycode, no trailing dot) if it is a
    name of this server: one L{served_domain} knows, or any public host
    name; else L{None}.  Only such a name may go into a C{Location}.
    """
    try:
        name = normalize_domain(host.decode("ascii"))
    except (UnicodeDecodeError, AddressError):
        return None
    if served_domain(model, host) is not None:
        return name
    publics = {model.catalogue.public_hostname}
    publics.update(c.public_hostname for c in model.domain_catalogues.values())
    return name if name in publics else None
