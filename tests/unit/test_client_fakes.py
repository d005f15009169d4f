"""
In-memory stand-ins for what the discovery client talks to, shared by the
tests of L{smartdiscover.client}: a DNS zone, the health probe and the HTTP
exchange, each answering from a dict and recording what it was asked, and
L{World}, a discovery run over all three on a L{Clock}.

The tests at the end pin the stand-ins' own behaviour, so that a test of
the client fails because of the client and not because of its fakes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.names import dns, error
from twisted.names.common import ResolverBase
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from smartdiscover.client.http import HTTPError, Reply
from smartdiscover.client.report import Check, Report
from smartdiscover.client.resolve import DNS
from smartdiscover.client.steps import Discovery, Found, Options
from smartdiscover.config.model import Security
from smartdiscover.discovery.outlook import RESPONSE_2006
from smartdiscover.discovery.request import OUTLOOK_RESPONSE
from smartdiscover.health.probes import ProbeResult, Target

ADDRESS = "user@example.test"
PASSWORD = "secret"
EXPIRES = datetime.datetime(2031, 5, 17, tzinfo=datetime.timezone.utc)


class Zone(ResolverBase):
    """
    A resolver answering from C{records}, (name, type) -> payloads, the way
    C{twisted.names.client.Resolver} reports to its callers: other types of
    a known name are NODATA, unknown names fail with L{error.DNSNameError}.
    C{failures} maps (name, type) to the exception to fail with, C{silent}
    lists the lookups that are never answered.  Names that cannot be put in
    a query fail at once, as with the real resolver.
    """

    def __init__(self, records: dict[tuple[str, int], list[Any]] | None = None,
                 failures: Mapping[tuple[str, int], Exception] | None = None,
                 silent: Iterable[tuple[str, int]] = ()) -> None:
        super().__init__()
        self.records = {(name.lower(), kind): list(payloads)
                        for (name, kind), payloads in (records or {}).items()}
        self.failures = dict(failures or {})
        self.silent = set(silent)
        self.asked: list[tuple[str, int]] = []
        self.timeouts: list[Any] = []

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> Deferred[Any]:
        text = name.decode("ascii").lower().rstrip(".")
        key = (text, type)
        self.asked.append(key)
        self.timeouts.append(timeout)
        if key in self.silent:
            return Deferred()
        if key in self.failures:
            return fail(self.failures[key])
        if key in self.records:
            answers = [dns.RRHeader(text, payload.TYPE, dns.IN, 60, payload, auth=True)
                       for payload in self.records[key]]
            return succeed((answers, [], []))
        if any(known == text for known, _ in self.records):
            return succeed(([], [], []))
        return fail(error.DNSNameError(text))


def a(*names: str, address: str = "192.0.2.10") -> dict[tuple[str, int], list[Any]]:
    """
    One A record of C{address} for each of C{names}.
    """
    return {(name, dns.A): [dns.Record_A(address)] for name in names}


class Prober:
    """
    The health probe: every target passes unless C{failures} names it by
    (host, port, security) or by (host, port) for every security.
    """

    def __init__(self, failures: dict[tuple[Any, ...], str] | None = None,
                 latency: float = 0.012, expires: datetime.datetime | None = EXPIRES,
                 detail: str = "greeting") -> None:
        self.failures = failures or {}
        self.latency = latency
        self.expires = expires
        self.detail = detail
        self.calls: list[Target] = []

    def __call__(self, target: Target, reactor: Any, trust: Any,
                 timeout: float) -> Deferred[ProbeResult]:
        self.calls.append(target)
        problem = self.failures.get((target.host, target.port, target.security),
                                    self.failures.get((target.host, target.port)))
        if problem is not None:
            return succeed(ProbeResult(False, self.latency, problem, None))
        expires = self.expires if target.security is Security.SSL else None
        return succeed(ProbeResult(True, self.latency, None, expires, self.detail))


@dataclass(frozen=True)
class Call:
    """
    One request the client made.
    """

    method: bytes
    url: str
    headers: dict[bytes, bytes]
    body: bytes | None

    @property
    def authorization(self) -> bytes | None:
        return self.headers.get(b"Authorization")


Handler = Callable[[Call], Reply]


def reply(code: int, body: bytes = b"", **headers: str) -> Reply:
    """
    A reply with C{headers} (C{WWW_Authenticate} for WWW-Authenticate).
    """
    raw = Headers()
    for name, value in headers.items():
        raw.addRawHeader(name.replace("_", "-").encode("ascii"), value.encode("latin-1"))
    return Reply(code, raw, body)


def answer_with(response: Reply) -> Handler:
    return lambda call: response


def redirect(location: str, code: int = 302) -> Handler:
    return answer_with(reply(code, Location=location))


def service(body: bytes, challenge: str = 'Basic realm="mail"') -> Handler:
    """
    An Autodiscover endpoint: 401 with C{challenge} until a POST carries
    credentials, then 200 with C{body}.
    """
    def handle(call: Call) -> Reply:
        if call.authorization is None:
            return reply(401, WWW_Authenticate=challenge)
        return reply(200, body, Content_Type="text/xml")
    return handle


@dataclass
class Web:
    """
    The HTTP exchange: C{routes} maps each URL to its handler; any other
    URL is refused.  Every request is kept in C{calls}.
    """

    routes: dict[str, Handler] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, reactor: Any, method: bytes, url: str, trust: Any,
                       timeout: float, headers: dict[bytes, bytes] | None = None,
                       body: bytes | None = None) -> Reply:
        call = Call(method, url, dict(headers or {}), body)
        self.calls.append(call)
        handler = self.routes.get(url)
        if handler is None:
            raise HTTPError("connection refused")
        return handler(call)

    def urls(self, authorized: bool | None = None) -> list[str]:
        """
        The URLs asked for, in order; only those with (or without)
        credentials when C{authorized} says so.
        """
        return [c.url for c in self.calls
                if authorized is None or (c.authorization is not None) == authorized]


def document(account: str, response_namespace: str = OUTLOOK_RESPONSE,
             declaration: bool = True) -> bytes:
    """
    An Autodiscover answer whose Response holds C{account}.
    """
    head = '<?xml version="1.0" encoding="utf-8"?>\n' if declaration else ""
    return (f'{head}<Autodiscover xmlns="{RESPONSE_2006}">'
            f'<Response xmlns="{response_namespace}">{account}</Response>'
            "</Autodiscover>").encode("utf-8")


def settings(*protocols: str) -> bytes:
    """
    A settings answer with the C{protocols} given as XML.
    """
    return document("<Account><AccountType>email</AccountType><Action>settings</Action>"
                    + "".join(protocols) + "</Account>")


EWS = ("<Protocol><Type>EXPR</Type>"
       "<EwsUrl>https://mail.example.test/EWS/Exchange.asmx</EwsUrl></Protocol>")


def redirect_addr(address: str) -> bytes:
    return document("<Account><Action>redirectAddr</Action>"
                    f"<RedirectAddr>{address}</RedirectAddr></Account>")


STEP1 = "https://autodiscover.example.test/autodiscover/autodiscover.xml"
STEP2 = "https://example.test/autodiscover/autodiscover.xml"
STEP4 = "http://autodiscover.example.test/autodiscover/autodiscover.xml"


class World:
    """
    A L{Discovery} of C{ADDRESS} against a zone, a prober and a web of
    handlers, on a L{Clock}.
    """

    def __init__(self, records: dict[tuple[str, int], list[Any]] | None = None,
                 routes: dict[str, Handler] | None = None,
                 probe_failures: dict[tuple[Any, ...], str] | None = None,
                 dns_failures: Mapping[tuple[str, int], Exception] | None = None,
                 address: str = ADDRESS, **options: Any) -> None:
        self.zone = Zone(records, dns_failures)
        self.prober = Prober(probe_failures)
        self.web = Web(dict(routes or {}))
        self.clock = Clock()
        self.report = Report()
        self.options = Options(address, PASSWORD, **options)

    def start(self) -> Deferred[Found | None]:
        discovery = Discovery(self.options, self.report, DNS(self.zone, self.clock, 5.0),
                              self.clock, None, prober=self.prober, requester=self.web)
        return Deferred.fromCoroutine(discovery.run())

    def names(self) -> list[str]:
        return [check.name for check in self.report.checks]

    def failed(self) -> list[Check]:
        return [check for check in self.report.checks if not check.ok]

    def check(self, name: str) -> Check:
        """
        The one check called C{name}.
        """
        [check] = [c for c in self.report.checks if c.name == name]
        return check


class FakeTests(SynchronousTestCase):
    """
    The stand-ins answer the way the real collaborators do.
    """

    def test_zone_nxdomain_and_nodata(self) -> None:
        """
        An unknown name fails with DNSNameError; a known name without the
        type asked for answers with no records.
        """
        zone = Zone(a("mail.example.test"))
        self.failureResultOf(zone.lookupAddress("other.example.test"), error.DNSNameError)
        answers, _, _ = self.successResultOf(zone.lookupMailExchange("mail.example.test"))
        self.assertEqual(answers, [])

    def test_zone_rejects_unencodable_names_at_once(self) -> None:
        """
        A name with an empty label raises before any query, as
        C{client.Resolver} does.
        """
        self.assertRaises(UnicodeError, Zone().lookupAddress, "a..example.test")

    def test_prober_failures(self) -> None:
        """
        A failure named by (host, port) applies to every security, one
        named with a security only to that one.
        """
        prober = Prober({("h", 1): "connection refused", ("h", 2, Security.SSL): "expired"})
        results = [self.successResultOf(prober(Target("tcp", "h", port, level), None, None, 1))
                   for port, level in ((1, Security.NONE), (2, Security.NONE),
                                       (2, Security.SSL))]
        self.assertEqual([r.error for r in results], ["connection refused", None, "expired"])

    def test_web_refuses_unknown_urls(self) -> None:
        """
        A URL without a route fails as a refused connection, and is kept.
        """
        web = Web()
        d = Deferred.fromCoroutine(web(None, b"GET", "https://x.test/", None, 1.0))
        self.assertEqual(str(self.failureResultOf(d, HTTPError).value), "connection refused")
        self.assertEqual(web.urls(), ["https://x.test/"])
