"""
The addresses the served zones publish for their own names: the [hosts]
entries inside each zone, and autodiscover.<domain> / autoconfig.<domain>,
which default to the addresses of the domain's public host; then the A,
AAAA and CNAME records of [records].

The DNS responder publishes them (dns/records.py); the health probes
connect to them instead of asking the system resolver, since SmartDiscover
is authoritative for these names and they are what clients get.
"""

from __future__ import annotations

import ipaddress

from smartdiscover.config.dns import in_zone
from smartdiscover.config.model import Catalogue, DNSSettings, Model

MAX_CNAMES = 8  # aliases followed one after the other before giving up


def zone_hosts(domain: str, catalogue: Catalogue,
               settings: DNSSettings) -> dict[str, tuple[str, ...]]:
    """
    Every name of the zone C{domain} that has addresses (A/AAAA), with
    them in the order given; C{catalogue} is the domain's.
    """
    public = settings.hosts.get(catalogue.public_hostname, ())
    hosts = {name: addresses for name, addresses in settings.hosts.items()
             if in_zone(name, (domain,))}
    for alias in (f"autodiscover.{domain}", f"autoconfig.{domain}"):
        hosts.setdefault(alias, public)
    return hosts


def published_addresses(model: Model, host: str) -> tuple[str, ...] | None:
    """
    The addresses the served zones publish for C{host}, in order: empty
    when C{host} is inside a served zone that has no address for it (its
    clients get no answer either); L{None} when no served zone answers for
    it (the DNS responder is off, C{host} is outside every zone, is an IP
    address, or is a CNAME to a name outside them), so the system resolver
    is to be asked.

    [hosts] (and the aliases that take the public host's addresses) come
    first; else the A and AAAA records of [records] for the name, in file
    order; else its CNAME, followed while it stays inside the served zones.
    """
    settings = model.dns
    if settings is None:
        return None
    name = host.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None
    seen: set[str] = set()
    while len(seen) <= MAX_CNAMES and name not in seen:
        seen.add(name)
        domain = in_zone(name, model.domains)
        if domain is None:
            return None  # an alias out of the zones: a resolver follows it
        hosts = zone_hosts(domain, model.catalogue_for(domain), settings)
        if name in hosts:
            return hosts[name]
        own = settings.records
        addresses = tuple(r.target for r in own if r.owner == name and r.rtype in ("A", "AAAA"))
        if addresses:
            return addresses
        alias = next((r.target for r in own if r.owner == name and r.rtype == "CNAME"), None)
        if alias is None:
            return ()
        name = alias
    return ()  # a loop, or too long a chain: resolvers give up too
