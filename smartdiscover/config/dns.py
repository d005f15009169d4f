"""
The [dns] and [hosts] sections: how the responder publishes each domain.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from smartdiscover.config import values
from smartdiscover.config.address import AddressError, normalize_domain, split_address
from smartdiscover.config.catalogue import Layer
from smartdiscover.config.model import Catalogue, DNSSettings, UDPAddress
from smartdiscover.config.section import Section
from smartdiscover.config.networks import NO_NETWORKS

DNS_KEYS = ("ttl", "nameservers", "hostmaster", "mx", "rrl_rate", "rrl_slip",
            "rrl_exempt", "tcp_idle", "tcp_per_source")
MAX_TTL = 7 * 24 * 3600

Report = Callable[[str | None, str | None, str], None]


def in_zone(host: str, domains: Iterable[str]) -> str | None:
    """
    The served domain whose zone holds C{host}, or L{None}.
    """
    for domain in sorted(domains, key=len, reverse=True):
        if host == domain or host.endswith("." + domain):
            return domain
    return None


def _mx(value: str) -> tuple[tuple[int, str], ...]:
    records = []
    for item in value.split(","):
        if not item.strip():
            continue
        preference, _, host = item.strip().partition(" ")
        try:
            number = int(preference)
        except ValueError:
            raise ValueError(f"{item.strip()!r} is not PREFERENCE HOST") from None
        if not 0 <= number <= 65535:
            raise ValueError(f"{number} is not a preference (0-65535)")
        records.append((number, values.host(host.strip())))
    return tuple(records)


def _hostmaster(value: str) -> str:
    try:
        local, domain = split_address(value)
    except AddressError as e:
        raise ValueError(f"{value!r} is not an address: {e}") from None
    if "." in local:
        raise ValueError("the local part of the SOA contact cannot contain a dot")
    return f"{local}@{domain}"


def _positive(convert: Callable[[str], int], most: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        number = convert(value)
        if number > most:
            raise ValueError(f"{number} is more than {most}")
        return number
    return check


def _hosts(section: Mapping[str, str], report: Report) -> dict[str, tuple[str, ...]]:
    hosts: dict[str, tuple[str, ...]] = {}
    for name, raw in section.items():
        try:
            host = normalize_domain(name)
        except AddressError as e:
            report("hosts", name, f"not a host name: {e}")
            continue
        try:
            addresses = tuple(dict.fromkeys(values.ip(a.strip()) for a in raw.split(",")
                                            if a.strip()))
        except ValueError as e:
            report("hosts", name, str(e))
            continue
        if not addresses:
            report("hosts", name, "no address")
        elif host in hosts:
            report("hosts", name, f"{host} given twice")
        else:
            hosts[host] = addresses
    return hosts


def build_dns(listen: UDPAddress, settings: Mapping[str, str], hosts: Mapping[str, str],
              catalogues: Mapping[str, Catalogue], layers: Mapping[str, Layer],
              report: Report) -> DNSSettings | None:
    """
    Read [dns] and [hosts] for the responder at C{listen}; C{catalogues}
    maps each served domain to its catalogue, C{layers} to the settings it
    was built from (to name where a value was written).

    Every name the zones point at inside a served zone (SRV targets, NS,
    MX, and autodiscover.<domain>/autoconfig.<domain>, which default to the
    addresses of the domain's public host) must have an address.
    """
    get = Section("dns", settings, DNS_KEYS, report).get
    addresses = _hosts(hosts, report)
    main = next(iter(catalogues.values()))
    nameservers = get("nameservers", lambda v: tuple(values.host(h.strip())
                                                     for h in v.split(",") if h.strip()),
                      (main.public_hostname,))
    dns = DNSSettings(
        listen=listen,
        ttl=get("ttl", _positive(values.non_negative_int, MAX_TTL), 300),
        nameservers=nameservers,
        hostmaster=get("hostmaster", _hostmaster, None),
        mx=get("mx", _mx, ()),
        hosts=MappingProxyType(addresses),
        rrl_rate=get("rrl_rate", _positive(values.non_negative_int, 1_000_000), 20),
        rrl_slip=get("rrl_slip", _positive(values.non_negative_int, 10), 2),
        rrl_exempt=get("rrl_exempt", values.networks, NO_NETWORKS),
        tcp_idle=float(get("tcp_idle", _positive(_at_least_one, 3600), 10)),
        tcp_per_source=get("tcp_per_source", _positive(_at_least_one, 10_000), 20),
    )
    explicit_nameservers = bool(settings.get("nameservers", "").strip())
    _check_addresses(dns, catalogues, layers, explicit_nameservers, report)
    return dns


def _at_least_one(value: str) -> int:
    number = values.non_negative_int(value)
    if number < 1:
        raise ValueError("must be at least 1 (0 would refuse every TCP query)")
    return number


def _written(layer: Layer, section: str, key: str,
             fallback: tuple[str, str]) -> tuple[str, str]:
    """
    Where C{section} C{key} of a catalogue was written, else C{fallback}.
    """
    setting = layer.get(section, {}).get(key)
    return (setting.section, setting.key) if setting is not None else fallback


def _check_addresses(dns: DNSSettings, catalogues: Mapping[str, Catalogue],
                     layers: Mapping[str, Layer], explicit_nameservers: bool,
                     report: Report) -> None:
    domains = tuple(catalogues)
    needed: dict[str, tuple[str, str]] = {}
    for domain, catalogue in catalogues.items():
        public = _written(layers[domain], "server", "public_hostname",
                          ("server", "public_hostname"))
        needed.setdefault(catalogue.public_hostname, public)
        for service in catalogue.services:
            needed.setdefault(service.host,
                              _written(layers[domain], service.name, "host", public))
        for key in ("caldav", "carddav"):
            if key in catalogue.urls:
                needed.setdefault(urlsplit(catalogue.urls[key]).hostname or "",
                                  _written(layers[domain], "urls", key, ("urls", key)))
        for alias in (f"autodiscover.{domain}", f"autoconfig.{domain}"):
            if alias not in dns.hosts and catalogue.public_hostname not in dns.hosts:
                report("hosts", None, f"no address for {alias}: give it, or "
                       f"{catalogue.public_hostname}, an entry")
    if explicit_nameservers:
        for name in dns.nameservers:
            needed.setdefault(name, ("dns", "nameservers"))
    for _, host in dns.mx:
        needed.setdefault(host, ("dns", "mx"))
    for host, (section, key) in needed.items():
        if in_zone(host, domains) and host not in dns.hosts:
            report(section, key, f"{host} is inside a served zone: [hosts] needs its address")
