"""
After discovery: every endpoint the answer advertises, probed with the
health probes, and the domain's SRV records (RFC 6186, XMPP) held against
the answer, so that clients that look in DNS are told the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from smartdiscover.client.answer import Protocol
from smartdiscover.client.explain import explain
from smartdiscover.client.report import Report
from smartdiscover.client.resolve import DNS
from smartdiscover.client.urls import Ports, host_port, netloc, unusable
from smartdiscover.config.model import Security
from smartdiscover.health.conversation import IProbeReactor
from smartdiscover.health.probes import ProbeResult, Target, probe

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

# What probes an endpoint: L{probe}, or a stand-in for it.
Prober = Callable[[Target, IProbeReactor, "IOpenSSLTrustRoot | None", float],
                  Awaitable[ProbeResult]]

# POX Type -> (SRV label for implicit TLS, SRV label for STARTTLS or plain)
SRV_LABELS = {
    "IMAP": ("_imaps._tcp", "_imap._tcp"),
    "POP3": ("_pop3s._tcp", "_pop3._tcp"),
    "SMTP": ("_submissions._tcp", "_submission._tcp"),
    "XMPP": ("_xmpps-client._tcp", "_xmpp-client._tcp"),
}
DEFAULT_PORTS = {  # (Type, implicit TLS) -> port, when the answer names none
    ("IMAP", True): 993, ("IMAP", False): 143, ("POP3", True): 995, ("POP3", False): 110,
    ("SMTP", True): 465, ("SMTP", False): 587, ("XMPP", True): 5223, ("XMPP", False): 5222,
    ("SIP", True): 5061, ("SIP", False): 5060,
}
_ENCRYPTION = {"ssl": Security.SSL, "tls": Security.STARTTLS, "auto": Security.STARTTLS,
               "none": Security.NONE}
_SECURITY_NAMES = {Security.SSL: "SSL", Security.STARTTLS: "STARTTLS", Security.NONE: "plain"}


@dataclass(frozen=True)
class Endpoint:
    """
    A check name and what to probe.
    """

    name: str
    target: Target
    source: str  # "POX" or "SRV <label>"


def security(protocol: Protocol) -> Security:
    """
    Encryption wins; else SSL on (the default) or off.
    """
    if protocol.encryption is not None:
        return _ENCRYPTION.get(protocol.encryption.lower(), Security.SSL)
    return Security.NONE if (protocol.ssl or "on").lower() == "off" else Security.SSL


def socket_endpoint(protocol: Protocol, domain: str) -> Endpoint | None:
    """
    The socket service a Protocol advertises, or None for a URL-only one.
    """
    kind = protocol.type
    if protocol.server is None or (kind not in SRV_LABELS and kind != "SIP"):
        return None
    level = security(protocol)
    port = protocol.port or DEFAULT_PORTS[(kind, level is Security.SSL)]
    transport = "tcp"
    if kind == "SIP":  # SIP has no STARTTLS: TLS is the transport
        transport = "tls" if level is Security.SSL else "tcp"
        level = Security.SSL if level is Security.SSL else Security.NONE
    target = Target(kind.lower(), protocol.server, port, level, transport=transport,
                    domain=domain)
    name = f"endpoint {kind} {netloc(protocol.server)}:{port} ({_SECURITY_NAMES[level]})"
    return Endpoint(name, target, "POX")


def url_endpoints(protocol: Protocol, ports: Ports, report: Report) -> list[Endpoint]:
    """
    The https URLs a Protocol advertises; a plain-HTTP URL is a failed check.
    """
    found = []
    for element, url in protocol.urls:
        name = f"endpoint {protocol.type} {element} {url}"
        if not url.lower().startswith("https://"):
            report.failed(name, "advertised over plain HTTP",
                          "advertise the https:// URL: clients send credentials there")
            continue
        if (reason := unusable(url)) is not None:
            report.failed(name, f"not a usable URL: {reason}",
                          "advertise a valid https:// URL")
            continue
        effective = ports.effective(url)
        host, port = host_port(effective)
        found.append(Endpoint(name, Target("https", host, port, Security.SSL, url=effective),
                              "POX"))
    return found


async def check_endpoints(endpoints: list[Endpoint], report: Report, reactor: IProbeReactor,
                          trust: IOpenSSLTrustRoot | None, timeout: float,
                          seen: set[Target], *, prober: Prober = probe) -> None:
    """
    Probe each endpoint not in C{seen} (and add it there) with C{prober}.
    """
    for endpoint in endpoints:
        if endpoint.target in seen:
            continue
        seen.add(endpoint.target)
        t = endpoint.target
        result = await prober(t, reactor, trust, timeout)
        origin = "" if endpoint.source == "POX" else f" (from {endpoint.source})"
        if result.ok:
            report.passed(endpoint.name + origin, (result.detail or "OK")
                          + f" in {result.latency * 1000:.0f} ms")
        else:
            report.failed(endpoint.name + origin, *explain(result.error or "", t.host, t.port))


@dataclass(frozen=True)
class _Offer:
    host: str
    port: int


async def srv_endpoints(protocols: tuple[Protocol, ...], domain: str, lookups: DNS,
                        report: Report) -> list[Endpoint]:
    """
    Hold every mail and XMPP SRV record of C{domain} against the answer,
    one check per owner name where either side offers something; return
    the endpoints only SRV names, to be probed as well.
    """
    pox: dict[str, list[_Offer]] = {}
    for protocol in protocols:
        endpoint = socket_endpoint(protocol, domain)
        if endpoint is None or protocol.type not in SRV_LABELS:
            continue
        implicit = endpoint.target.security is Security.SSL
        label = SRV_LABELS[protocol.type][0 if implicit else 1]
        pox.setdefault(label, []).append(_Offer(endpoint.target.host.lower().rstrip("."),
                                                endpoint.target.port))
    extra: list[Endpoint] = []
    for kind, labels in SRV_LABELS.items():
        for index, label in enumerate(labels):
            owner = f"{label}.{domain}"
            answer = await lookups.srv(owner)
            records = [_Offer(target.lower(), port) for _, _, port, target in answer.records
                       if target != "."]
            not_offered = bool(answer.records) and not records
            expected = pox.get(label, [])
            if answer.problem is not None and not answer.absent:
                report.failed(f"SRV {owner}", f"cannot look up {owner}: {answer.problem}",
                              f"make the DNS servers of {domain} answer for {owner}")
                continue
            _compare(report, f"SRV {owner}", owner, kind, expected, records, not_offered,
                     answer.problem)
            for offer in records:
                if offer not in expected:
                    level = Security.SSL if index == 0 else Security.STARTTLS
                    name = (f"endpoint {kind} {netloc(offer.host)}:{offer.port} "
                            f"({_SECURITY_NAMES[level]})")
                    extra.append(Endpoint(name, Target(kind.lower(), offer.host, offer.port,
                                                       level, domain=domain), f"SRV {label}"))
    return extra


def _compare(report: Report, name: str, owner: str, kind: str, expected: list[_Offer],
             records: list[_Offer], not_offered: bool, problem: str | None) -> None:
    def show(offer: _Offer) -> str:
        return f"{netloc(offer.host)}:{offer.port}"

    if not expected:
        if records:
            report.failed(name, f"SRV {owner} offers {', '.join(map(show, records))} but the "
                          f"autodiscover answer has no such {kind}",
                          f"advertise it in the configuration, or publish {owner} SRV 0 0 0 .")
        return  # neither side offers it
    wanted = expected[0]
    publish = f"publish {owner} SRV 0 1 {wanted.port} {wanted.host}. (RFC 6186)"
    if not records:
        detail = (f"SRV {owner} says {kind} is not offered" if not_offered
                  else f"no SRV record {owner} ({problem})")
        report.failed(name, f"{detail}, but the autodiscover answer offers {show(wanted)}",
                      publish)
        return
    problems = []
    for offer in expected:
        if offer in records:
            continue
        same_host = [r for r in records if r.host == offer.host]
        if same_host:
            problems.append(f"SRV {owner} says port {same_host[0].port} but the autodiscover "
                            f"answer says {offer.port}")
        else:
            problems.append(f"SRV {owner} points at {show(records[0])} but the autodiscover "
                            f"answer says {show(offer)}")
    for record in records:
        if record not in expected and not any(r.host == record.host for r in expected):
            problems.append(f"SRV {owner} also offers {show(record)}, which the autodiscover "
                            "answer does not")
    if problems:
        report.failed(name, "; ".join(problems),
                      f"make DNS and the configuration agree: {publish}")
    else:
        report.passed(name, f"{', '.join(map(show, records))} matches the autodiscover answer")
