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
