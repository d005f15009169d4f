"""
The candidate list and the attempts: the order in which a client looks for
its Autodiscover server (PROTOCOLS.md 3 and 9.6), each attempt reported step
by step, redirects followed the way MS-OXDSCLI allows (PROTOCOLS.md 2.9,
SECURITY.md 3.1 and 3.2).

Credentials go only over https, and only to the user's domain unless the
administrator allows otherwise; the plain-HTTP probe never carries them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable

from smartdiscover.client.answer import Answer, parse_answer, request_body
from smartdiscover.client.checks import Prober
from smartdiscover.client.explain import explain
from smartdiscover.client.http import HTTPError, Reply, request
from smartdiscover.client.report import Report
from smartdiscover.client.resolve import DNS, Answer as DNSAnswer
from smartdiscover.client.urls import (
    Ports,
    host_port,
    is_hostname,
    netloc,
    resolve,
    unusable,
    visit_key,
    where,
    within,
)
from smartdiscover.config.address import AddressError, split_address
from smartdiscover.config.model import Security
from smartdiscover.health.probes import Target, probe

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

    from smartdiscover.health.conversation import IProbeReactor

Requester = Callable[..., Awaitable[Reply]]  # the signature of L{request}

MAX_HOPS = 10
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_AUTH_FIX = "check the address and password, and the server's authentication backend"


@dataclass(frozen=True)
class Found:
    """
    A useful answer: settings, or a redirectAddr to restart with.
    """

    url: str
    address: str
    answer: Answer


@dataclass
class Options:
    """
    What the command line asked for.
    """

    address: str
    password: str
    ports: Ports = field(default_factory=Ports)
    timeout: float = 10.0
    walk_all: bool = False
    allow_cross_domain: bool = False


@dataclass
class _Chain:
    """
    One candidate and the redirects followed from it.
    """

    step: str
    address: str
    hops: int = 0
    visited: set[str] = field(default_factory=set)

    def label(self, url: str) -> str:
        hop = f".{self.hops}" if self.hops else ""
        return f"{self.step}{hop} {where(url)}"


class Discovery:
    """
    Walks the candidates for one address (and the addresses it is
    redirected to), adding a check to C{report} for every stage.  Endpoints
    are reached through C{prober} (the health probe) and C{requester}
    (L{request}).
    """

    def __init__(self, options: Options, report: Report, lookups: DNS, reactor: IProbeReactor,
                 trust: IOpenSSLTrustRoot | None, *, prober: Prober = probe,
                 requester: Requester = request) -> None:
        self._options = options
        self._probe = prober
        self._request = requester
        self._report = report
        self._dns = lookups
        self._reactor = reactor
        self._trust = trust
        self._domain = split_address(options.address)[1]
        credentials = f"{options.address}:{options.password}".encode("utf-8")
        self._authorization = b"Basic " + base64.b64encode(credentials)

    async def run(self) -> Found | None:
        """
        The settings a client would use, following redirectAddr answers.
        """
        address = self._options.address
        seen = {address.lower()}
        for _ in range(MAX_HOPS + 1):
            found = await self._walk(address)
            if found is None or found.answer.kind == "settings":
                return found
            address = found.answer.target or ""
            name = f"redirectAddr {address}"
            try:
                domain = split_address(address)[1]
            except AddressError as e:
                self._report.failed(name, f"not an address: {e}",
                                    "redirect to a valid e-mail address")
                return None
            if address.lower() in seen:
                self._report.failed(name, f"redirect loop: {address} was already asked for",
                                    "point redirectAddr at the final address")
                return None
            if not (within(domain, self._domain) or self._options.allow_cross_domain):
                self._report.failed(
                    name, f"leads outside {self._domain}: credentials would go to {domain}",
                    f"redirect within {self._domain}, or rerun with --allow-cross-domain "
                    f"if you trust {domain}")
                return None
            seen.add(address.lower())
        self._report.failed("redirectAddr", f"more than {MAX_HOPS} redirectAddr answers",
                            "point redirectAddr at the final address")
        return None

    async def _walk(self, address: str) -> Found | None:
        """
        The candidates of MS-OXDISCO in the seed's order; the first useful
        answer, after trying them all with --all.
        """
        domain = split_address(address)[1]
        ports = self._options.ports
        first: Found | None = None

        def done(found: Found | None) -> bool:
            nonlocal first
            if first is None:
                first = found
            return first is not None and not self._options.walk_all

        for step, host in (("1", f"autodiscover.{domain}"), ("2", domain)):
            if done(await self._https(_Chain(step, address), ports.autodiscover("https", host))):
                return first
        for host in await self._mx(domain):
            if done(await self._candidate("3", address, host)):
                return first
        if done(await self._redirect_probe(address, domain)):
            return first
        for host, port in await self._srv(domain):
            if done(await self._candidate("5", address, host, port)):
                return first
        return first

    async def _candidate(self, step: str, address: str, host: str,
                         port: int | None = None) -> Found | None:
        """
        The https candidate on C{host} from an MX or SRV record: only a
        host name makes one.
        """
        if not is_hostname(host):
            shown = host.encode("unicode_escape").decode("ascii")
            record = "MX" if step == "3" else "SRV"
            self._report.failed(f"{step} {shown} DNS", f"{shown} is not a host name",
                                f"make the {record} record name a host (letters, digits, "
                                "hyphens)")
            return None
        url = self._options.ports.autodiscover("https", host, port)
        return await self._https(_Chain(step, address), url)

    def _lookup_failed(self, name: str, owner: str, answer: DNSAnswer) -> None:
        self._report.failed(name, f"cannot look up {owner}: {answer.problem}",
                            f"make the DNS servers of {self._domain} answer for {owner} "
                            "(check --resolver, delegation and firewalls)")

    async def _mx(self, domain: str) -> list[str]:
        answer = await self._dns.mx(domain)
        name = f"3 {domain} MX"
        hosts = [host for _, host in answer.records if host != "."]
        if answer.problem is not None and not answer.absent:
            self._lookup_failed(name, domain, answer)
        elif not hosts:
            self._report.failed(name, f"{domain} has no MX record ({answer.problem or 'null MX'})",
                                f"publish MX records for {domain}")
        else:
            self._report.passed(name, ", ".join(f"{p} {h}" for p, h in answer.records))
        return hosts

    async def _srv(self, domain: str) -> list[tuple[str, int]]:
        owner = f"_autodiscover._tcp.{domain}"
        answer = await self._dns.srv(owner)
        name = f"5 {owner} SRV"
        fix = (f"publish {owner} SRV 0 5 443 <host of the Autodiscover service> "
               "(MS-OXDISCO 3.1.5)")
        records = [(target, port) for _, _, port, target in answer.records if target != "."]
        if answer.problem is not None and not answer.absent:
            self._lookup_failed(name, owner, answer)
            return []
        if not records:
            self._report.failed(name, f"no usable SRV record ({answer.problem or 'target .'})",
                                fix)
            return []
        text = ", ".join(f"{p} {w} {port} {t}" for p, w, port, t in answer.records)
        if any(port not in (443, self._options.ports.https) for _, port in records):
            text += " (exchangelib uses only records with port 443)"
        self._report.passed(name, text)
        return records

    async def _dns_check(self, label: str, host: str) -> bool:
        answer = await self._dns.addresses(host)
        if answer.records:
            self._report.passed(f"{label} DNS", f"{host} has address {', '.join(answer.records)}")
            return True
        if not answer.absent:
            self._lookup_failed(f"{label} DNS", host, answer)
        else:
            self._report.failed(f"{label} DNS",
                                f"{host} has no A record ({answer.problem}; no AAAA either)",
                                f"publish an A (and AAAA) record for {host}, or let clients "
                                "skip this step knowingly")
        return False

    async def _connect(self, label: str, host: str, port: int, tls: bool) -> bool:
        """
        The TCP connection, then the TLS handshake with the host name
        verified: the health probes' own checks.
        """
        result = await self._probe(Target("tcp", host, port, Security.NONE), self._reactor,
                                   self._trust, self._options.timeout)
        if not result.ok:
            self._report.failed(f"{label} TCP", *explain(result.error or "", host, port))
            return False
        self._report.passed(f"{label} TCP", f"connected to {netloc(host)}:{port}")
        if not tls:
            return True
        result = await self._probe(Target("tcp", host, port, Security.SSL), self._reactor,
                                   self._trust, self._options.timeout)
        if not result.ok:
            self._report.failed(f"{label} TLS", *explain(result.error or "", host, port))
            return False
        expires = result.certificate_expires
        suffix = f", expires {expires:%Y-%m-%d}" if expires is not None else ""
        self._report.passed(f"{label} TLS", f"certificate valid for {host}{suffix}")
        return True

    async def _post(self, label: str, url: str, address: str,
                    credentials: bool) -> Reply | None:
        headers = {b"Content-Type": b"text/xml; charset=utf-8"}
        if credentials:
            assert url.lower().startswith("https://")  # never over plain HTTP
            headers[b"Authorization"] = self._authorization
        try:
            return await self._request(self._reactor, b"POST", url, self._trust,
                                       self._options.timeout, headers, request_body(address))
        except HTTPError as e:
            stage = "auth" if credentials else "HTTP"
            self._report.failed(f"{label} {stage}", f"POST {url}: {e}",
                                f"check the web server behind {where(url)}")
            return None

    async def _https(self, chain: _Chain, url: str) -> Found | None:
        """
        One https candidate: DNS, TCP, TLS, the unauthenticated POST and its
        challenge, the authenticated POST, the answer.
        """
        chain.visited.add(visit_key(url))
        label = chain.label(url)
        host, port = host_port(url)
        if not (await self._dns_check(label, host)
                and await self._connect(label, host, port, tls=True)):
            return None
        reply = await self._post(label, url, chain.address, credentials=False)
        if reply is None:
            return None
        if reply.code in REDIRECT_CODES:
            return await self._redirect(chain, label, url, reply)
        if reply.code == 200:
            self._report.failed(f"{label} HTTP", "answered a POST without credentials (200)",
                                "require authentication: answer 401 with WWW-Authenticate: "
                                "Basic over TLS")
            return await self._answer(chain, label, url, reply.body)
        challenges = reply.challenges()
        if reply.code != 401:
            self._report.failed(f"{label} HTTP", f"POST without credentials: HTTP {reply.code}",
                                f"serve POST {urlpath(url)} on {where(url)} (401 until "
                                "authenticated), or remove this name from DNS")
            return None
        if not challenges:
            self._report.failed(f"{label} HTTP", "401 without WWW-Authenticate: clients cannot "
                                "tell how to log in", "send WWW-Authenticate: Basic realm=...")
            return None
        self._report.passed(f"{label} HTTP", "401 without credentials, WWW-Authenticate: "
                            + " | ".join(challenges))
        if not any(c.strip().lower().startswith("basic") for c in challenges):
            self._report.failed(f"{label} auth", "no Basic challenge: the probe speaks Basic",
                                "offer Basic over TLS (exchangelib and evolution-ews use it)")
            return None
        if not (within(host, self._domain) or self._options.allow_cross_domain):
            self._report.failed(
                f"{label} auth",
                f"refused to send credentials to {host}: outside {self._domain}",
                f"serve Autodiscover from a host within {self._domain}, or rerun with "
                f"--allow-cross-domain if you trust {host}")
            return None
        reply = await self._post(label, url, chain.address, credentials=True)
        if reply is None:
            return None
        if reply.code in REDIRECT_CODES:
            return await self._redirect(chain, label, url, reply)
        if reply.code != 200:
            fix = _AUTH_FIX if reply.code in (401, 403) else \
                f"look at the logs of the web server on {where(url)}"
            self._report.failed(f"{label} auth", f"POST with credentials: HTTP {reply.code}"
                                + (" (credentials refused)" if reply.code == 401 else ""), fix)
            return None
        self._report.passed(f"{label} auth", "POST with credentials: HTTP 200")
        return await self._answer(chain, label, url, reply.body)

    async def _answer(self, chain: _Chain, label: str, url: str, body: bytes) -> Found | None:
        answer = parse_answer(body)
        for detail, fix in answer.problems:
            self._report.failed(f"{label} answer", detail, fix)
        if answer.kind in ("settings", "redirectAddr"):
            self._report.passed(f"{label} answer", answer.detail)
            return Found(url, chain.address, answer)
        if answer.kind == "redirectUrl":
            return await self._follow(chain, label, url, answer.target or "", "redirectUrl")
        fix = ("check the address, and that the server serves its domain"
               if answer.kind == "error" else "answer with an Autodiscover document "
               "(MS-OXDSCLI 2.2.4)")
        self._report.failed(f"{label} answer", answer.detail, fix)
        return None

    async def _redirect(self, chain: _Chain, label: str, url: str,
                        reply: Reply) -> Found | None:
        location = reply.header("Location")
        if not location:
            self._report.failed(f"{label} redirect", f"HTTP {reply.code} without Location",
                                "send Location with the https Autodiscover URL")
            return None
        return await self._follow(chain, label, url, location, f"HTTP {reply.code}")

    async def _follow(self, chain: _Chain, label: str, url: str, location: str,
                      how: str) -> Found | None:
        """
        Go on at C{location}: https only, at most MAX_HOPS hops, never to a
        URL this chain has seen.
        """
        name = f"{label} redirect"
        try:
            target = resolve(url, location)
        except ValueError:  # a broken IPv6 literal
            target = location.strip()
        if not target.lower().startswith("https://"):
            self._report.failed(name, f"redirect to {target} is not https: not followed",
                                "redirect only to https:// URLs")
            return None
        if (reason := unusable(target)) is not None:
            self._report.failed(name, f"redirect to {target} is not a usable URL ({reason}): "
                                "not followed", "redirect to a valid https:// URL")
            return None
        effective = self._options.ports.effective(target)
        if chain.hops >= MAX_HOPS:
            self._report.failed(name, f"more than {MAX_HOPS} redirects; stopped at {target}",
                                "redirect straight to the final Autodiscover URL")
            return None
        if visit_key(effective) in chain.visited:
            self._report.failed(name, f"redirect loop: {target} was already visited",
                                "point the redirect at the final Autodiscover URL, one that "
                                "answers itself")
            return None
        self._report.passed(name, f"{how} to {target}, followed")
        chain.hops += 1
        return await self._https(chain, effective)

    async def _redirect_probe(self, address: str, domain: str) -> Found | None:
        """
        The unauthenticated GET of http://autodiscover.<domain>/...: only a
        redirect to https is used; credentials are never sent.
        """
        url = self._options.ports.autodiscover("http", f"autodiscover.{domain}")
        chain = _Chain("4", address, visited={visit_key(url)})
        label = chain.label(url)
        host, port = host_port(url)
        if not (await self._dns_check(label, host)
                and await self._connect(label, host, port, tls=False)):
            return None
        try:
            reply = await self._request(self._reactor, b"GET", url, self._trust,
                                        self._options.timeout)
        except HTTPError as e:
            self._report.failed(f"{label} HTTP", f"GET {url}: {e}",
                                f"answer GET on {where(url)} with a 302 to https")
            return None
        https_url = self._options.ports.autodiscover("https", f"autodiscover.{domain}")
        if reply.code == 401 or reply.challenges():
            offered = " | ".join(reply.challenges()) or "no WWW-Authenticate"
            self._report.failed(
                f"{label} HTTP",
                f"asks for credentials over plain HTTP (HTTP {reply.code}, {offered}); "
                "none were sent",
                f"port {port} must never ask for credentials: answer only a 301/302 to "
                f"{https_url} (MS-OXDISCO 3.1.5.4)")
            return None
        if reply.code not in REDIRECT_CODES or not reply.header("Location"):
            self._report.failed(f"{label} HTTP", f"GET {url}: HTTP {reply.code}, no redirect",
                                f"answer with a 302 to {https_url}, or close port {port}")
            return None
        return await self._redirect(chain, label, url, reply)


def urlpath(url: str) -> str:
    rest = url.split("//", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
