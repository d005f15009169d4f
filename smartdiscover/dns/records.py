"""
The records of each served zone, derived from the model (PROTOCOLS.md
section 9): RFC 6186/8314 mail SRV, RFC 6764 CalDAV/CardDAV, XMPP, SIP
(RFC 3263 NAPTR + SRV), Microsoft's _autodiscover._tcp, A/AAAA, SOA, NS, MX.

A service that is not offered gets the "." target (0 0 0 .), so clients
stop probing for it.
"""

from __future__ import annotations

import ipaddress
from typing import Iterator
from urllib.parse import urlsplit

from twisted.names import dns

from smartdiscover.config.model import Catalogue, DNSSettings, Model, Security, SocketService
from smartdiscover.config.zone import zone_hosts
from smartdiscover.dns.configured import ConfiguredPayload, configured_records

# What the zones hold: every payload has a ttl and encodes itself.
Payload = (dns.Record_A | dns.Record_AAAA | dns.Record_MX | dns.Record_NAPTR | dns.Record_NS
           | dns.Record_SOA | dns.Record_SRV | dns.Record_TXT | ConfiguredPayload)
Record = tuple[str, int, Payload]  # owner, type, twisted.names payload

SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 3600, 600, 14 * 24 * 3600

# (owner label, service, securities it stands for)
_MAIL_SRV = (
    ("_submissions._tcp", "smtp", (Security.SSL,)),
    ("_submission._tcp", "smtp", (Security.STARTTLS, Security.NONE)),
    ("_imaps._tcp", "imap", (Security.SSL,)),
    ("_imap._tcp", "imap", (Security.STARTTLS, Security.NONE)),
    ("_pop3s._tcp", "pop3", (Security.SSL,)),
    ("_pop3._tcp", "pop3", (Security.STARTTLS, Security.NONE)),
    ("_xmpps-client._tcp", "xmpp", (Security.SSL,)),
    ("_xmpp-client._tcp", "xmpp", (Security.STARTTLS, Security.NONE)),
)
# SIP transport -> (SRV owner, NAPTR service, NAPTR order)
_SIP = {
    "tls": ("_sips._tcp", b"SIPS+D2T", 50),
    "tcp": ("_sip._tcp", b"SIP+D2T", 90),
    "udp": ("_sip._udp", b"SIP+D2U", 100),
}
_DAV = (("caldav", "_caldavs._tcp", "_caldav._tcp"),
        ("carddav", "_carddavs._tcp", "_carddav._tcp"))


def _srv(owner: str, target: str, port: int, ttl: int, weight: int = 1,
         priority: int = 0) -> Record:
    return owner, dns.SRV, dns.Record_SRV(priority, weight, port, target, ttl=ttl)


def _not_offered(owner: str, ttl: int) -> Record:
    return owner, dns.SRV, dns.Record_SRV(0, 0, 0, b"", ttl=ttl)


def _rname(domain: str, hostmaster: str | None) -> str:
    local, _, host = (hostmaster or f"hostmaster@{domain}").partition("@")
    return f"{local}.{host}"


def zone_records(domain: str, catalogue: Catalogue, settings: DNSSettings,
                 https_port: int, serial: int) -> Iterator[Record]:
    """
    Every record of the zone C{domain}; C{https_port} is the public one
    (C{[server] public_https_port}), which C{_autodiscover._tcp} names.
    """
    ttl = settings.ttl
    yield domain, dns.SOA, dns.Record_SOA(
        settings.nameservers[0], _rname(domain, settings.hostmaster), serial,
        SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, ttl, ttl=ttl)
    for name in settings.nameservers:
        yield domain, dns.NS, dns.Record_NS(name, ttl=ttl)
    for preference, host in settings.mx:
        yield domain, dns.MX, dns.Record_MX(preference, host, ttl=ttl)

    for label, name, securities in _MAIL_SRV:
        owner = f"{label}.{domain}"
        # Several hosts or ports: priorities 0, 10, 20... in the service's
        # order of preference, across its owners, so that 465 listed before
        # 587 is also preferred in DNS (RFC 6186 3.4 compares priorities across
        # owners; PROTOCOLS.md 9.7).
        offered = [(rank, s) for rank, s in enumerate(catalogue.services_named(name))
                   if s.security in securities]
        for rank, service in offered:
            yield _srv(owner, service.host, service.port, ttl, priority=10 * rank)
        if not offered:
            yield _not_offered(owner, ttl)
    xmpp = catalogue.service("xmpp")
    if xmpp is not None and xmpp.server_port is not None:
        yield _srv(f"_xmpp-server._tcp.{domain}", xmpp.host, xmpp.server_port, ttl)
    else:
        yield _not_offered(f"_xmpp-server._tcp.{domain}", ttl)
    yield from _sip(domain, catalogue.services_named("sip"), ttl)
    for key, secure, plain in _DAV:
        url = catalogue.urls.get(key)
        if url is not None:
            parts = urlsplit(url)
            yield _srv(f"{secure}.{domain}", parts.hostname or "", parts.port or 443, ttl)
            yield (f"{secure}.{domain}", dns.TXT,
                   dns.Record_TXT(f"path={parts.path or '/'}".encode("ascii"), ttl=ttl))
        else:
            yield _not_offered(f"{secure}.{domain}", ttl)
        yield _not_offered(f"{plain}.{domain}", ttl)  # plain-HTTP DAV is never offered
    # 0 5 PORT, as Microsoft and IceWarp publish it.
    yield _srv(f"_autodiscover._tcp.{domain}", catalogue.public_hostname, https_port, ttl, 5)

    # The same addresses the health probes connect to (config/zone.py).
    for name, addresses in zone_hosts(domain, catalogue, settings).items():
        for address in addresses:
            yield name, *_address(address, ttl)


def _sip(domain: str, sip: list[SocketService], ttl: int) -> Iterator[Record]:
    for transport, (label, service, order) in _SIP.items():
        owner = f"{label}.{domain}"
        offered = [s for s in sip if s.transport == transport]
        for rank, endpoint in enumerate(offered):
            yield _srv(owner, endpoint.host, endpoint.port, ttl, priority=10 * rank)
        if offered:
            yield domain, dns.NAPTR, dns.Record_NAPTR(order, 50, b"s", service, b"", owner,
                                                      ttl=ttl)
        else:
            yield _not_offered(owner, ttl)


def _address(address: str, ttl: int) -> tuple[int, dns.Record_A | dns.Record_AAAA]:
    if ipaddress.ip_address(address).version == 4:
        return dns.A, dns.Record_A(address, ttl=ttl)
    return dns.AAAA, dns.Record_AAAA(address, ttl=ttl)


def all_records(model: Model, serial: int) -> dict[str, list[Record]]:
    """
    Every zone of the model: apex -> records.
    """
    assert model.dns is not None
    zones = {domain: list(zone_records(domain, model.catalogue_for(domain), model.dns,
                                       model.https.public_port, serial))
             for domain in model.domains}
    # The zone owner's own records ([records]) beside the derived ones.
    for apex, owner, type_, payload in configured_records(model.dns.records, model.dns.ttl,
                                                          zones):
        zones[apex].append((owner, type_, payload))
    return zones
