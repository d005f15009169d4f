"""
Tests for the health layer (issue 7, sections 2, 3 and 5): the [health]
settings, the endpoints SmartDiscover advertises (L{targets}), the
L{HealthMonitor} and its rounds, advertise_unhealthy = no across POX,
autoconfig and DNS, /health/live, /health/ready, /health and /metrics.

Everything runs in-process on a L{Clock}: probes are a fake that answers
from a table the test controls (the real probes are tested against real
servers in L{tests.unit.test_probes}); the web resources are driven through a
L{SmartSite} over a L{StringTransport} whose peer the test chooses, as in
L{tests.unit.test_web} (SECURITY.md section 9).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from lxml import etree
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from smartdiscover.config.networks import NO_NETWORKS, Networks
from smartdiscover.auth.credentials import BasicCredentials, IBasicCredentials
from smartdiscover.auth.guard import Guard
from smartdiscover.config import ConfigError, Model, load
from smartdiscover.config.model import HealthSettings, Security
from smartdiscover.config.store import ConfigStore
from tests.helpers import run_synchronously
from smartdiscover.connections import ConnectionLimits
from smartdiscover.discovery.autoconfig import render_autoconfig
from smartdiscover.discovery.outlook import render_settings
from smartdiscover.config.principal import Principal
from smartdiscover.dns.server import UDPResponder, Zones, build_zones
from smartdiscover.dns.wire import respond
from smartdiscover.health.endpoints import (
    AdvertisedModel,
    service_key,
    targets,
    url_key,
)
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.health.probes import ProbeResult, Target
from smartdiscover.metrics import (
    LATENCY_BUCKETS,
    Metrics,
    connection_metrics,
    dns_metrics,
    guard_metrics,
    health_metrics,
    store_metrics,
)
from smartdiscover.web.health import HealthResource
from smartdiscover.web.metrics import MetricsResource
from smartdiscover.web.routing import CaseInsensitiveResource
from smartdiscover.web.site import SmartSite
from tests.helpers import build_ini, edit, write_config
from tests.unit.test_web import RecordingTransport, Response, parse_responses

# The minimal file with a second domain, the DNS responder, two IMAP
# hosts, no POP3, EWS and CalDAV; {health} is the [health] section's body.
INI = build_ini({
    "server": {"domains": "example.test, example.org", "dns": "127.0.0.1:5353"},
    "imap": {"host": "a.example.test, b.example.test"},
    "pop3": None,
    "urls": {"webclient": None, "caldav": "https://dav.example.test/caldav/"},
    "domain:example.org": {"server.public_hostname": "mail.example.org",
                           "imap.host": "imap.example.org",
                           "urls.ews": "https://mail.example.org/EWS/Exchange.asmx"},
    "health": "{health}",
    "hosts": {"mail.example.test": "192.0.2.10", "a.example.test": "192.0.2.1",
              "b.example.test": "192.0.2.2", "dav.example.test": "192.0.2.40",
              "mail.example.org": "192.0.2.20", "imap.example.org": "192.0.2.21"},
})

# The endpoints of INI as the monitor, /health and /metrics name them.
IMAP_A = "imap://a.example.test:993"
IMAP_B = "imap://b.example.test:993"
IMAP_ORG = "imap://imap.example.org:993"
SMTP = "smtp://mail.example.test:587"
EWS = "https://mail.example.test/EWS/Exchange.asmx"
EWS_ORG = "https://mail.example.org/EWS/Exchange.asmx"
CALDAV = "https://dav.example.test/caldav/"
ALL_ENDPOINTS = sorted([IMAP_A, IMAP_B, IMAP_ORG, SMTP, EWS, EWS_ORG, CALDAV])

KEY_A = ("imap", "a.example.test", "993", "ssl", "")
KEY_B = ("imap", "b.example.test", "993", "ssl", "")

POLICY = "interval = 60\ngrace = 100\nadvertise_unhealthy = no\n"
LOOPBACK = "127.0.0.1"
OUTSIDE = "203.0.113.9"
ALLOWED = "192.0.2.77"

NOW = datetime.datetime.now(datetime.timezone.utc)
OK = ProbeResult(True, 0.012, None, None, "* OK ready")
REFUSED = ProbeResult(False, 0.001, "connection refused", None)
EXPIRES = NOW + datetime.timedelta(days=30)
OK_TLS = ProbeResult(True, 0.025, None, EXPIRES, "* OK ready")

NS = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}


def name_of(target: Target) -> str:
    return target.url or f"{target.protocol}://{target.host}:{target.port}"


def load_ini(directory: str, health: str = "", ini: str = INI) -> Model:
    return load(write_config(directory, ini.format(health=health)))


class FakeProbe:
    """
    Stands in for L{smartdiscover.health.probes.probe}: answers each
    target with C{results[name]} (L{OK} when absent) as it is when the
    answer comes.

    Like a real probe it answers later: on the next turn of the clock
    (C{clock.advance(0)}), or when the test fires it (L{hold}); with
    C{synchronous}, at once (L{succeed}).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.results: dict[str, ProbeResult] = {}
        self.calls: list[str] = []
        self.arguments: list[tuple[Any, Any, float]] = []
        self.held: list[tuple[Deferred[ProbeResult], str]] | None = None
        self.synchronous = False
        self.in_flight = 0
        self.most_in_flight = 0

    def hold(self) -> None:
        self.held = []

    def release(self, count: int | None = None) -> None:
        """
        Fire the first C{count} held probes (all when L{None}).
        """
        assert self.held is not None
        count = len(self.held) if count is None else count
        for _ in range(count):
            d, name = self.held.pop(0)
            d.callback(self.results.get(name, OK))

    def __call__(self, target: Target, reactor: Any, trust: Any,
                 timeout: float) -> Deferred[ProbeResult]:
        name = name_of(target)
        self.calls.append(name)
        self.arguments.append((reactor, trust, timeout))
        if self.synchronous:
            return succeed(self.results.get(name, OK))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        d: Deferred[ProbeResult] = Deferred()
        d.addBoth(self._done)
        if self.held is not None:
            self.held.append((d, name))
        else:
            self.clock.callLater(0, lambda: d.callback(self.results.get(name, OK)))
        return d

    def _done(self, result: Any) -> Any:
        self.in_flight -= 1
        return result


class _MonitorTestCase(SynchronousTestCase):
    """
    A model from L{INI} with a [health] section, and a monitor on a clock
    with a L{FakeProbe}.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        self.clock = Clock()
        self.probe = FakeProbe(self.clock)
        self.changes = 0

    def current(self) -> Model:
        """
        The model in force: what the monitor reads.
        """
        return self.model

    def start(self, health: str = POLICY, ini: str = INI) -> HealthMonitor:
        self.model = load_ini(self.directory, health, ini)
        return self.start_monitor()

    def start_monitor(self) -> HealthMonitor:
        self.monitor = HealthMonitor(self.current, self.clock, run_probe=self.probe)
        self.monitor.on_change(self._changed)
        self.monitor.startService()
        self.addCleanup(self.monitor.stopService)
        return self.monitor

    def _changed(self) -> None:
        self.changes += 1

    def turn(self, seconds: float = 0) -> None:
        """
        Let C{seconds} pass; probes due by then answer.
        """
        self.clock.advance(seconds)

    def status(self, name: str) -> Any:
        found = [s for s in self.monitor.statuses.values() if name_of(s.target) == name]
        self.assertEqual(len(found), 1, name)
        return found[0]


class HealthConfigTests(SynchronousTestCase):
    """
    The [health] section (issue 7 sections 2 and 3; HealthSettings).
    """

    def problems(self, health: str) -> list[tuple[str | None, str | None, str]]:
        path = write_config(self.mktemp(), INI.format(health=health))
        error = self.assertRaises(ConfigError, load, path)
        return [(p.section, p.key, p.message) for p in error.problems]

    def assert_only_problem(self, health: str, key: str, fragment: str) -> None:
        problems = self.problems(health)
        self.assertEqual([(s, k) for s, k, _ in problems], [("health", key)], problems)
        self.assertIn(fragment, problems[0][2])

    def test_defaults(self) -> None:
        """
        Without keys the checks run every 300 s with a 10 s timeout, 8 at a
        time, a grace of 600 s, unhealthy endpoints still advertised, the
        system's trust store and nobody but loopback reading the detail.
        (issue 7 sections 2-3; README [health].)
        """
        model = load_ini(self.mktemp())
        self.assertEqual(model.health, HealthSettings(
            interval=300.0, timeout=10.0, concurrency=8, grace=600.0,
            advertise_unhealthy=True, ca_file=None, allow=NO_NETWORKS))

    def test_every_key(self) -> None:
        """
        Every key is read and converted: seconds as floats, the CA file
        relative to the configuration, networks normalised to CIDR.
        (issue 7 sections 2-3; README [health].)
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "probe-ca.pem").write_text("not checked here\n")
        model = load_ini(str(directory), (
            "interval = 30\ntimeout = 2.5\nconcurrency = 3\ngrace = 90\n"
            "advertise_unhealthy = no\nca = probe-ca.pem\n"
            "allow = 192.0.2.0/24, 2001:db8::1\n"))
        self.assertEqual(model.health, HealthSettings(
            interval=30.0, timeout=2.5, concurrency=3, grace=90.0,
            advertise_unhealthy=False, ca_file=directory.absolute() / "probe-ca.pem",
            allow=Networks(("192.0.2.0/24", "2001:db8::1/128"))))

    def test_interval_zero(self) -> None:
        """
        interval = 0 is valid: checks only after each reload.
        (issue 7 sections 2-3; README [health].)
        """
        self.assertEqual(load_ini(self.mktemp(), "interval = 0\n").health.interval, 0.0)

    def test_bad_seconds(self) -> None:
        """
        interval, timeout and grace must be non-negative numbers, and the
        timeout more than 0; each mistake names its key.
        (issue 7 sections 2-3; README [health].)
        """
        self.assert_only_problem("interval = soon\n", "interval", "not a number of seconds")
        self.assert_only_problem("interval = -1\n", "interval", "negative")
        self.assert_only_problem("grace = -5\n", "grace", "negative")
        self.assert_only_problem("grace = 1 minute\n", "grace", "not a number of seconds")
        self.assert_only_problem("timeout = 0\n", "timeout", "more than 0")
        self.assert_only_problem("timeout = x\n", "timeout", "not a number of seconds")

    def test_bad_concurrency(self) -> None:
        """
        concurrency is a whole number.
        (issue 7 sections 2-3; README [health].)
        """
        self.assert_only_problem("concurrency = many\n", "concurrency", "not a whole number")
        self.assert_only_problem("concurrency = 2.5\n", "concurrency", "not a whole number")

    def test_bad_boolean(self) -> None:
        """
        advertise_unhealthy is yes or no.
        (issue 7 sections 2-3; README [health].)
        """
        self.assert_only_problem("advertise_unhealthy = maybe\n", "advertise_unhealthy",
                                 "not yes or no")

    def test_unreadable_ca(self) -> None:
        """
        ca must name a readable file: a missing file and a directory are
        refused at load time, not at the first probe.
        (issue 7 sections 2-3; README [health].)
        """
        self.assert_only_problem("ca = missing.pem\n", "ca", "cannot read")
        directory = Path(self.mktemp())
        (directory / "ca-dir").mkdir(parents=True)
        path = write_config(directory, INI.format(health="ca = ca-dir\n"))
        error = self.assertRaises(ConfigError, load, path)
        self.assertEqual([(p.section, p.key) for p in error.problems], [("health", "ca")])
        self.assertIn("cannot read", error.problems[0].message)

    def test_bad_network(self) -> None:
        """
        allow takes addresses and networks only.
        (issue 7 sections 2-3; README [health].)
        """
        self.assert_only_problem("allow = 192.0.2.0/33\n", "allow", "not an address or network")
        self.assert_only_problem("allow = 10.0.0.0/8, intranet\n", "allow",
                                 "'intranet' is not an address or network")

    def test_unknown_key(self) -> None:
        """
        A misspelt key is refused and the known keys are listed.
        (issue 7 sections 2-3; README [health].)
        """
        self.assert_only_problem("intervall = 60\n", "intervall", "unknown key")
        problem = self.problems("intervall = 60\n")[0][2]
        for key in ("interval", "timeout", "concurrency", "grace", "advertise_unhealthy",
                    "ca", "allow"):
            self.assertIn(key, problem)


class TargetsTests(SynchronousTestCase):
    """
    L{targets}: every endpoint any served domain is told about, once each
    (issue 7 section 1; several hosts per service, [domain:] overrides).
    """

    def test_every_endpoint_once(self) -> None:
        """
        Each host of a multi-host service is its own endpoint; an override
        adds its own; endpoints shared by both domains (SMTP, CalDAV) and
        URLs appear once.
        (issue 7 section 1: every advertised endpoint.)
        """
        found = targets(load_ini(self.mktemp()))
        self.assertEqual(sorted(name_of(t) for t in found.values()), ALL_ENDPOINTS)

    def test_keys_and_targets(self) -> None:
        """
        Socket endpoints are keyed by service_key and carry protocol,
        port, security and the domain they serve; URLs by url_key with the
        URL, its host and port.
        (issue 7 section 1: every advertised endpoint.)
        """
        model = load_ini(self.mktemp())
        found = targets(model)
        for service in model.catalogue.services:
            self.assertIn(service_key(service), found)
        self.assertEqual(found[KEY_A], Target(
            protocol="imap", host="a.example.test", port=993, security=Security.SSL,
            transport="tcp", domain="example.test"))
        org = found[service_key(model.catalogue_for("example.org").services_named("imap")[0])]
        self.assertEqual((org.host, org.domain), ("imap.example.org", "example.org"))
        self.assertEqual(found[url_key(CALDAV)], Target(
            protocol="https", host="dav.example.test", port=443, security=Security.SSL,
            url=CALDAV))

    def test_port_in_url(self) -> None:
        """
        A URL with a port is probed on that port.
        (issue 7 section 1: every advertised endpoint.)
        """
        ini = edit("caldav = https://dav.example.test/caldav/",
                   "caldav = https://dav.example.test:8443/caldav/", INI)
        found = targets(load_ini(self.mktemp(), ini=ini))
        self.assertEqual(found[url_key("https://dav.example.test:8443/caldav/")].port, 8443)


class MonitorTests(_MonitorTestCase):
    """
    L{HealthMonitor}: rounds, statuses, reloads (issue 7 sections 1 and 2).
    """

    def test_round_probes_every_target_once(self) -> None:
        """
        A round probes every target once, with the configured timeout and
        the trust the last reload gave; then counts itself.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.start(POLICY + "timeout = 3\n")
        self.turn()
        self.assertEqual(sorted(self.probe.calls), ALL_ENDPOINTS)
        self.assertEqual(set(self.probe.arguments), {(self.clock, None, 3.0)})
        self.assertEqual(self.monitor.rounds, 1)
        self.assertEqual(sorted(name_of(s.target) for s in self.monitor.statuses.values()),
                         ALL_ENDPOINTS)

    def test_bounded_concurrency(self) -> None:
        """
        At most C{concurrency} probes are in flight; each answer lets the
        next one start; the round ends after the last answer.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.probe.hold()
        self.start(POLICY + "concurrency = 2\n")
        assert self.probe.held is not None
        self.assertEqual(len(self.probe.held), 2)
        self.probe.release(1)
        self.assertEqual(len(self.probe.calls), 3)
        self.assertEqual(len(self.probe.held), 2)
        while self.probe.held:
            self.assertEqual(self.monitor.rounds, 0)
            self.probe.release(1)
        self.assertEqual(self.probe.most_in_flight, 2)
        self.assertEqual(sorted(self.probe.calls), ALL_ENDPOINTS)
        self.assertEqual(self.monitor.rounds, 1)

    def test_status_fields(self) -> None:
        """
        A status records the verdict, when it began and was checked, the
        latency, the error or the detail, and the certificate expiry.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.turn(1000)
        self.probe.results = {IMAP_A: REFUSED, IMAP_B: OK_TLS}
        self.start()
        self.assertIsNone(self.status(IMAP_A).ok)  # not probed yet
        self.turn()
        a, b = self.status(IMAP_A), self.status(IMAP_B)
        self.assertEqual((a.ok, a.since, a.checked, a.latency, a.error, a.certificate_expires),
                         (False, 1000.0, 1000.0, 0.001, "connection refused", None))
        self.assertEqual((b.ok, b.since, b.checked, b.latency, b.error, b.detail,
                          b.certificate_expires),
                         (True, 1000.0, 1000.0, 0.025, None, "* OK ready", EXPIRES))

    def test_since_changes_on_transitions_only(self) -> None:
        """
        C{since} is when the current state began: later rounds in the same
        state move C{checked} only.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.start()
        self.turn()
        self.turn(60)
        self.assertEqual((self.status(IMAP_A).since, self.status(IMAP_A).checked), (0, 60))
        self.probe.results[IMAP_A] = REFUSED
        self.turn(60)
        self.turn(60)
        a = self.status(IMAP_A)
        self.assertEqual((a.ok, a.since, a.checked, a.error),
                         (False, 120, 180, "connection refused"))
        self.probe.results[IMAP_A] = OK
        self.turn(60)
        a = self.status(IMAP_A)
        self.assertEqual((a.ok, a.since, a.checked, a.error), (True, 240, 240, None))
        self.assertEqual(self.status(IMAP_B).since, 0)

    def test_round_while_running_is_skipped(self) -> None:
        """
        A round asked for while one runs probes nothing; once the round
        ended, the next one runs.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.probe.hold()
        self.start()
        calls = len(self.probe.calls)
        d = self.monitor.check_all()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(len(self.probe.calls), calls)
        self.probe.release()
        while self.probe.held:
            self.probe.release()
        self.assertEqual(self.monitor.rounds, 1)
        self.monitor.check_all()
        self.assertEqual(len(self.probe.calls), 2 * len(ALL_ENDPOINTS))

    def test_every_interval(self) -> None:
        """
        A round at start, then one per interval.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.start()
        self.turn()
        self.assertEqual(self.monitor.rounds, 1)
        self.turn(59)
        self.assertEqual(self.monitor.rounds, 1)
        self.turn(1)
        self.assertEqual(self.monitor.rounds, 2)
        self.turn(60)
        self.assertEqual(self.monitor.rounds, 3)
        self.assertEqual(len(self.probe.calls), 3 * len(ALL_ENDPOINTS))

    def test_answers_at_once(self) -> None:
        """
        Probes that answer at once (a target found invalid answers before
        any I/O) end the round, and the next interval starts a new one.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.probe.synchronous = True
        self.start()
        self.assertEqual(self.monitor.rounds, 1)
        self.turn(60)
        self.assertEqual(self.monitor.rounds, 2)
        self.assertEqual(len(self.probe.calls), 2 * len(ALL_ENDPOINTS))

    def test_no_endpoints_then_reload(self) -> None:
        """
        A configuration that advertises nothing gives an empty round; a
        reload that adds endpoints has them probed at once.
        (issue 7 section 1: on an interval and after every reload.)
        """
        empty = INI
        for advertised in ("[imap]\nhost = a.example.test, b.example.test\nsecurity = ssl\n",
                           "[smtp]\nhost = mail.example.test\nport = 587\n"
                           "security = starttls\n",
                           "ews = https://mail.example.test/EWS/Exchange.asmx\n"
                           "caldav = https://dav.example.test/caldav/\n",
                           "imap.host = imap.example.org\n"
                           "urls.ews = https://mail.example.org/EWS/Exchange.asmx\n"):
            empty = edit(advertised, "", empty)
        self.start(ini=empty)
        self.turn()
        self.assertEqual((self.monitor.rounds, self.probe.calls), (1, []))
        self.model = load_ini(self.mktemp(), POLICY)
        self.monitor.reloaded(None)
        self.turn()
        self.assertEqual(sorted(self.probe.calls), ALL_ENDPOINTS)

    def test_reload_runs_a_round_with_new_targets(self) -> None:
        """
        reloaded() runs a round at once (no interval waited) with the new
        trust; endpoints the new model lacks are dropped, new ones added.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.start()
        self.turn()
        self.model = load_ini(self.mktemp(), POLICY, edit(
            "b.example.test = 192.0.2.2", "c.example.test = 192.0.2.3",
            edit("host = a.example.test, b.example.test", "host = c.example.test", INI)))
        trust = object()
        self.probe.calls.clear()
        self.monitor.reloaded(trust)
        self.turn()
        self.assertEqual(self.monitor.rounds, 2)
        self.assertEqual(self.clock.seconds(), 0)
        names = sorted(name_of(s.target) for s in self.monitor.statuses.values())
        expected = sorted(set(ALL_ENDPOINTS) - {IMAP_A, IMAP_B} | {"imap://c.example.test:993"})
        self.assertEqual(names, expected)
        self.assertEqual(sorted(self.probe.calls), expected)
        self.assertEqual({trust}, {t for _, t, _ in self.probe.arguments[-len(expected):]})
        self.assertIs(self.monitor.trust, trust)
        # The interval goes on as before.
        self.turn(60)
        self.assertEqual(self.monitor.rounds, 3)

    def test_reload_drops_left_out_endpoint(self) -> None:
        """
        An endpoint left out because it failed, then removed from the
        configuration, is no longer counted as down after the reload's
        round; the change is announced.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.probe.results[IMAP_A] = REFUSED
        self.start()
        self.turn()
        self.turn(120)
        self.assertEqual(self.monitor.down, frozenset({KEY_A}))
        self.model = load_ini(self.mktemp(), POLICY, edit(
            "host = a.example.test, b.example.test", "host = b.example.test", INI))
        self.monitor.reloaded(None)
        self.turn()
        self.assertEqual(self.monitor.down, frozenset())
        self.assertEqual(self.changes, 2)

    def test_interval_zero(self) -> None:
        """
        interval = 0: one round at start and one per reload, none between.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.start("interval = 0\n")
        self.turn()
        self.turn(100000)
        self.assertEqual(self.monitor.rounds, 1)
        self.monitor.reloaded(None)
        self.turn()
        self.turn(100000)
        self.assertEqual(self.monitor.rounds, 2)
        self.assertEqual(len(self.probe.calls), 2 * len(ALL_ENDPOINTS))

    def test_reload_during_a_round(self) -> None:
        """
        A reload while a round runs still gets the new endpoints probed
        once that round ended ("after every reload"), even when no interval
        would ever run another round.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.probe.hold()
        self.start("interval = 0\n")
        self.model = load_ini(self.mktemp(), "interval = 0\n", edit(
            "b.example.test = 192.0.2.2", "c.example.test = 192.0.2.3",
            edit("host = a.example.test, b.example.test",
                 "host = a.example.test, c.example.test", INI)))
        self.monitor.reloaded(None)
        while self.probe.held:
            self.probe.release()
        self.assertIn("imap://c.example.test:993", self.probe.calls)
        self.assertTrue(self.status("imap://c.example.test:993").ok)

    def test_stop(self) -> None:
        """
        A stopped monitor runs no more rounds.
        (issue 7 section 1: on an interval and after every reload.)
        """
        self.start()
        self.turn()
        self.monitor.stopService()
        self.turn(600)
        self.assertEqual(self.monitor.rounds, 1)


class AdvertiseUnhealthyTests(_MonitorTestCase):
    """
    advertise_unhealthy = no leaves an endpoint that failed longer than the
    grace period out of POX, autoconfig and DNS while a healthy alternative
    exists, and brings it back when it recovers (issue 7 sections 2 and 5).
    """

    def setUp(self) -> None:
        super().setUp()
        self.start()
        self.advertised = AdvertisedModel(lambda: self.model, lambda: self.monitor.down)

    def pox(self, domain: str = "example.test") -> list[str]:
        catalogue = self.advertised().catalogue_for(domain)
        root = etree.fromstring(render_settings(
            catalogue, Principal(f"demo@{domain}", "Demo User")))
        return root.xpath("//a:Protocol[a:Type='IMAP']/a:Server/text()", namespaces=NS)

    def autoconfig(self, domain: str = "example.test") -> list[str]:
        root = etree.fromstring(render_autoconfig(self.advertised().catalogue_for(domain),
                                                  domain))
        return root.xpath("//incomingServer[@type='imap']/hostname/text()")

    def srv(self, owner: str = "_imaps._tcp.example.test.") -> list[tuple[int, str]]:
        """
        (priority, target) of the SRV records at C{owner} in the zones
        built from the advertised model, as a resolver reads them.
        """
        table = build_zones(self.advertised())
        query = dns.message.make_query(owner, "SRV")
        response = respond(query.to_wire(), table, False)
        assert response is not None
        message = dns.message.from_wire(response.data)
        self.assertEqual(message.rcode(), dns.rcode.NOERROR)
        records = message.find_rrset(message.answer, dns.name.from_text(owner),
                                     dns.rdataclass.IN, dns.rdatatype.SRV)
        return sorted((r.priority, r.target.to_text()) for r in records)

    def assert_advertised(self, *hosts: str) -> None:
        """
        POX, autoconfig and the SRV records all offer exactly C{hosts} for
        IMAP at example.test, in this order of preference.
        """
        self.assertEqual(self.pox(), list(hosts))
        self.assertEqual(self.autoconfig(), list(hosts))
        self.assertEqual(self.srv(), [(10 * i, h + ".") for i, h in enumerate(hosts)])

    def test_left_out_after_grace_and_back(self) -> None:
        """
        a fails: still advertised within the grace period; left out of
        every answer after it while b works; back when it recovers.  The
        other domain's endpoint is untouched; listeners hear each change.
        (issue 7 sections 2 and 5.)
        """
        self.turn()
        self.assert_advertised("a.example.test", "b.example.test")
        self.probe.results[IMAP_A] = REFUSED
        self.turn(60)  # failing since 60
        self.turn(60)  # failing for 60 s, within the 100 s grace
        self.assert_advertised("a.example.test", "b.example.test")
        self.assertEqual(self.changes, 0)
        self.turn(60)  # failing for 120 s, beyond the grace
        self.assertEqual(self.monitor.down, frozenset({KEY_A}))
        self.assert_advertised("b.example.test")
        self.assertEqual(self.changes, 1)
        self.assertEqual(self.pox("example.org"), ["imap.example.org"])
        self.assertEqual(self.srv("_imaps._tcp.example.org."), [(0, "imap.example.org.")])
        self.turn(60)  # still failing: no new change
        self.assertEqual(self.changes, 1)
        self.probe.results[IMAP_A] = OK
        self.turn(60)
        self.assertEqual(self.monitor.down, frozenset())
        self.assert_advertised("a.example.test", "b.example.test")
        self.assertEqual(self.changes, 2)

    def test_no_healthy_alternative(self) -> None:
        """
        When b fails too, both are advertised again (telling clients
        nothing would be worse); when a recovers, b is left out.
        (issue 7 sections 2 and 5.)
        """
        self.probe.results[IMAP_A] = REFUSED
        self.turn()
        self.turn(120)
        self.assert_advertised("b.example.test")
        self.probe.results[IMAP_B] = REFUSED
        self.turn(60)
        self.assert_advertised("b.example.test")  # b within its grace
        self.turn(120)
        self.assertEqual(self.monitor.down, frozenset({KEY_A, KEY_B}))
        self.assert_advertised("a.example.test", "b.example.test")
        self.assertEqual(self.changes, 2)
        self.probe.results[IMAP_A] = OK
        self.turn(60)
        self.assert_advertised("a.example.test")
        self.assertEqual(self.changes, 3)

    def test_unavailable(self) -> None:
        """
        unavailable() names the services and URLs none of whose endpoints
        works beyond the grace period, per domain.
        (issue 7 sections 2 and 5.)
        """
        self.probe.results.update({IMAP_A: REFUSED, CALDAV: REFUSED})
        self.turn()
        self.assertEqual(self.monitor.unavailable(self.model), [])
        self.turn(120)
        self.assertEqual(self.monitor.unavailable(self.model),
                         ["example.test caldav", "example.org caldav"])
        self.probe.results[IMAP_B] = REFUSED
        self.turn(60)
        self.turn(120)
        self.assertEqual(self.monitor.unavailable(self.model),
                         ["example.test imap", "example.test caldav", "example.org caldav"])


class AdvertiseUnhealthyYesTests(_MonitorTestCase):
    """
    advertise_unhealthy = yes (the default) never changes an answer.
    """

    def test_never_left_out(self) -> None:
        """
        An endpoint failing far beyond the grace period stays in POX,
        autoconfig and DNS: the advertised model is the model itself.
        (issue 7 section 2.)
        """
        self.probe.results[IMAP_A] = REFUSED
        self.start("interval = 60\ngrace = 120\nadvertise_unhealthy = yes\n")
        advertised = AdvertisedModel(lambda: self.model, lambda: self.monitor.down)
        for _ in range(10):
            self.turn(60)
        self.assertEqual(self.monitor.down, frozenset({KEY_A}))
        self.assertIs(advertised(), self.model)
        catalogue = advertised().catalogue_for("example.test")
        self.assertEqual([s.host for s in catalogue.services_named("imap")],
                         ["a.example.test", "b.example.test"])


# -- web ------------------------------------------------------------------


def address(host: str) -> IPv4Address | IPv6Address:
    if ":" in host:
        return IPv6Address("TCP", host, 40000)
    return IPv4Address("TCP", host, 40000)


class _WebTestCase(_MonitorTestCase):
    """
    The /health and /metrics resources of tap.py in a small tree, a
    configuration store, the monitor, and a site that counts requests.
    """

    health = POLICY + "allow = 192.0.2.0/24\n"

    def current(self) -> Model:
        return self.store.current  # as in tap.py

    def setUp(self) -> None:
        super().setUp()
        self.model = load_ini(self.directory, self.health)
        self.path = self.model.source
        self.store = ConfigStore(self.model, lambda: load(self.path), run_synchronously)
        self.start_monitor()
        self.listening = True
        self.metrics = Metrics()
        root = CaseInsensitiveResource()
        root.putChild(b"health", HealthResource(self.store, self.monitor, self.clock,
                                                lambda: self.listening))
        root.putChild(b"metrics", MetricsResource(self.metrics, lambda: self.store.current))
        self.site = SmartSite(root, reactor=self.clock, metrics=self.metrics)

    def get(self, path: bytes, peer: str = LOOPBACK) -> Response:
        transport = RecordingTransport(peerAddress=address(peer))
        channel = self.site.buildProtocol(address(peer))
        channel.makeConnection(transport)
        channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: mail.example.test\r\n"
                             b"Connection: close\r\n\r\n")
        responses = parse_responses(transport.value())
        self.assertEqual(len(responses), 1, transport.value())
        return responses[0]

    def get_json(self, path: bytes, peer: str = LOOPBACK) -> tuple[int, Any]:
        response = self.get(path, peer)
        self.assertEqual(response.header(b"content-type"), [b"application/json; charset=utf-8"])
        return response.code, json.loads(response.body)

    def endpoint(self, document: Any, name: str) -> Any:
        found = [e for e in document["endpoints"] if e["endpoint"] == name]
        self.assertEqual(len(found), 1, name)
        return found[0]


class HealthEndpointTests(_WebTestCase):
    """
    GET /health/live, /health/ready and /health (issue 7 section 2; the
    detail for loopback and the allow-list only, SECURITY.md).
    """

    def test_live(self) -> None:
        """
        /health/live answers 200 from anywhere: it only says the process
        answers.
        (issue 7 section 2; README "Health, and fail-over".)
        """
        for peer in (LOOPBACK, OUTSIDE):
            response = self.get(b"/health/live", peer)
            self.assertEqual((response.code, response.body), (200, b"ok\n"))
        self.assertEqual(self.get(b"/Health/Live").code, 200)

    def test_ready(self) -> None:
        """
        /health/ready is 200 while every service has a working endpoint,
        with the generation and, for loopback, an empty list of problems.
        (issue 7 section 2; README "Health, and fail-over".)
        """
        self.turn()
        self.assertEqual(self.get_json(b"/health/ready"),
                         (200, {"ready": True, "generation": 1, "problems": []}))

    def test_ready_flips(self) -> None:
        """
        When neither IMAP endpoint of example.test works beyond the grace
        period, /health/ready is 503 and names the service (to loopback
        only); it is 200 again once one recovers.
        (issue 7 section 2; README "Health, and fail-over".)
        """
        self.probe.results.update({IMAP_A: REFUSED, IMAP_B: REFUSED})
        self.turn()
        self.assertEqual(self.get_json(b"/health/ready")[0], 200)  # within the grace
        self.turn(120)
        self.assertEqual(self.get_json(b"/health/ready"), (503, {
            "ready": False, "generation": 1,
            "problems": ["no working endpoint: example.test imap"]}))
        code, document = self.get_json(b"/health/ready", OUTSIDE)
        self.assertEqual((code, document), (503, {"ready": False, "generation": 1}))
        self.probe.results[IMAP_B] = OK
        self.turn(60)
        self.assertEqual(self.get_json(b"/health/ready")[0], 200)

    def test_ready_needs_listeners(self) -> None:
        """
        Not ready while the listeners are not bound.
        (issue 7 section 2; README "Health, and fail-over".)
        """
        self.listening = False
        self.turn()
        self.assertEqual(self.get_json(b"/health/ready"), (503, {
            "ready": False, "generation": 1, "problems": ["listeners are not bound"]}))

    def test_detail(self) -> None:
        """
        /health shows per endpoint its state, since when, the last error,
        latency, certificate expiry and whether it is advertised; and the
        generation and the last reload.
        (issue 7 section 2; README "Health, and fail-over".)
        """
        self.probe.results.update({IMAP_A: REFUSED, IMAP_B: OK_TLS})
        self.turn()
        self.turn(60)
        self.turn(60)
        code, document = self.get_json(b"/health")
        self.assertEqual(code, 200)
        self.assertEqual({k: document[k] for k in (
            "generation", "last_reload_ok", "last_error", "advertise_unhealthy", "rounds")},
            {"generation": 1, "last_reload_ok": True, "last_error": None,
             "advertise_unhealthy": False, "rounds": 3})
        self.assertEqual(sorted(e["endpoint"] for e in document["endpoints"]), ALL_ENDPOINTS)
        a, b = self.endpoint(document, IMAP_A), self.endpoint(document, IMAP_B)
        wall = datetime.datetime.now(datetime.timezone.utc)
        since = datetime.datetime.fromisoformat(a["since"])
        self.assertLess(abs((wall - since).total_seconds() - 120), 5)
        self.assertLess(abs((wall - datetime.datetime.fromisoformat(a["checked"]))
                            .total_seconds()), 5)
        self.assertEqual({k: a[k] for k in ("state", "error", "latency_ms", "security",
                                            "certificate_expires", "certificate_days_left",
                                            "advertised")},
                         {"state": "failing", "error": "connection refused", "latency_ms": 1.0,
                          "security": "ssl", "certificate_expires": None,
                          "certificate_days_left": None, "advertised": False})
        self.assertEqual({k: b[k] for k in ("state", "error", "latency_ms", "detail",
                                            "certificate_expires", "advertised")},
                         {"state": "ok", "error": None, "latency_ms": 25.0,
                          "detail": "* OK ready", "certificate_expires": EXPIRES.isoformat(),
                          "advertised": True})
        self.assertTrue(29.9 <= b["certificate_days_left"] <= 30.0, b)
        self.assertTrue(self.endpoint(document, CALDAV)["advertised"])

    def test_detail_before_first_answer(self) -> None:
        """
        Before the first probe answered an endpoint is "unknown".
        (issue 7 section 2; README "Health, and fail-over".)
        """
        code, document = self.get_json(b"/health")  # the first round has not answered
        self.assertEqual(code, 200)
        self.assertEqual({e["state"] for e in document["endpoints"]}, {"unknown"})
        self.assertEqual(self.endpoint(document, IMAP_A)["since"], None)

    def test_last_reload(self) -> None:
        """
        A refused reload shows as last_reload_ok false with the reason and
        the generation unchanged; a good one as the next generation.
        (issue 7 section 2; README "Health, and fail-over".)
        """
        good = self.path.read_text()
        self.path.write_text(good.replace("grace = 100", "grace = never"))
        self.assertFalse(self.successResultOf(self.store.reload()))
        code, document = self.get_json(b"/health")
        self.assertEqual((document["generation"], document["last_reload_ok"]), (1, False))
        self.assertIn("[health] grace", document["last_error"])
        self.path.write_text(good)
        self.assertTrue(self.successResultOf(self.store.reload()))
        code, document = self.get_json(b"/health")
        self.assertEqual((document["generation"], document["last_reload_ok"],
                          document["last_error"]), (2, True, None))

    def test_detail_forbidden_outside(self) -> None:
        """
        An address outside loopback and the allow-list gets 403 and no
        host name or error (the detail names internal hosts).
        (issue 7 section 2; README "Health, and fail-over".)
        """
        self.probe.results[IMAP_A] = REFUSED
        self.turn()
        for peer in (OUTSIDE, "::ffff:203.0.113.9", "2001:db8::5", "192.0.3.1"):
            response = self.get(b"/health", peer)
            self.assertEqual(response.code, 403, peer)
            self.assertEqual(json.loads(response.body), {"error": "forbidden"})
            self.assertNotIn(b"example.test", response.body)
            self.assertNotIn(b"refused", response.body)

    def test_detail_for_loopback_and_allow_list(self) -> None:
        """
        Loopback (IPv4, IPv6, IPv4-mapped as a dual-stack listener sees it)
        and the allow-list read the detail.
        (issue 7 section 2; README "Health, and fail-over".)
        """
        self.turn()
        for peer in (LOOPBACK, "127.1.2.3", "::1", "::ffff:127.0.0.1", ALLOWED,
                     "::ffff:192.0.2.77"):
            code, document = self.get_json(b"/health", peer)
            self.assertEqual(code, 200, peer)
            self.assertEqual(len(document["endpoints"]), len(ALL_ENDPOINTS))


class MetricsTests(_WebTestCase):
    """
    GET /metrics in the Prometheus text format (issue 7 section 3), parsed
    with prometheus_client's parser.
    """

    def scrape(self, peer: str = LOOPBACK) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = self.get(b"/metrics", peer)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header(b"content-type"), [CONTENT_TYPE_LATEST.encode()])
        self.families = {f.name: f for f in
                         text_string_to_metric_families(response.body.decode("utf-8"))}
        return {(s.name, frozenset(s.labels.items())): s.value
                for f in self.families.values() for s in f.samples}

    def test_loopback_and_allow_list_only(self) -> None:
        """
        /metrics is 403 outside loopback and the allow-list, without any
        metric in the body.
        (issue 7 section 3; README "Health, and fail-over".)
        """
        response = self.get(b"/metrics", OUTSIDE)
        self.assertEqual(response.code, 403)
        self.assertNotIn(b"smartdiscover", response.body)
        self.scrape(LOOPBACK)
        self.scrape(ALLOWED)

    def test_requests_by_format_and_code(self) -> None:
        """
        Every request is counted by format and status code, and its
        duration observed in a histogram by format.
        (issue 7 section 3; README "Health, and fail-over".)
        """
        self.get(b"/health/live")
        self.get(b"/health/live", OUTSIDE)
        self.get(b"/health", OUTSIDE)
        self.get(b"/metrics", OUTSIDE)
        self.get(b"/nowhere")
        samples = self.scrape()
        requests = {dict(labels)["format"] + " " + dict(labels)["code"]: value
                    for (name, labels), value in samples.items()
                    if name == "smartdiscover_requests_total"}
        self.assertEqual(requests, {"health 200": 2, "health 403": 1, "metrics 403": 1,
                                    "other 404": 1})
        self.assertEqual(self.families["smartdiscover_request_duration_seconds"].type,
                         "histogram")
        health = frozenset({("format", "health")})
        self.assertEqual(samples[("smartdiscover_request_duration_seconds_count", health)], 3)
        self.assertEqual(samples[("smartdiscover_request_duration_seconds_bucket",
                                  health | {("le", "+Inf")})], 3)
        self.assertIn(("smartdiscover_request_duration_seconds_bucket",
                       health | {("le", "0.001")}), samples)
        self.assertEqual(self.scrape()[("smartdiscover_requests_total", frozenset(
            {("format", "metrics"), ("code", "200")}))], 1)  # the first scrape

    def test_latency_histogram_as_prometheus_client_writes_it(self) -> None:
        """
        The latency histogram, counted in plain lists per request, is
        exposed exactly as prometheus_client's own Histogram would expose
        the same observations: bounds are inclusive (a value on a bound
        counts in it), buckets are cumulative, the sum is kept.
        (issue 7 section 3; README "Health, and fail-over".)
        """
        observations = [0.0, 0.001, 0.0010001, 0.003, 0.05, 0.05, 4.9, 5.0, 5.1, 3600.0]
        metrics = Metrics()
        registry = CollectorRegistry()
        reference = Histogram("smartdiscover_request_duration_seconds",
                              "Time from request to response, by format.", ["format"],
                              buckets=LATENCY_BUCKETS, registry=registry)
        for index, seconds in enumerate(observations):
            format_ = ("autodiscover", "autoconfig")[index % 2]
            metrics.request_finished(format_, 200, seconds)
            reference.labels(format_).observe(seconds)

        def histogram(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            families = text_string_to_metric_families(text.decode("utf-8"))
            return {(s.name, frozenset(s.labels.items())): s.value for f in families
                    if f.name == "smartdiscover_request_duration_seconds"
                    for s in f.samples if not s.name.endswith("_created")}

        ours, theirs = histogram(metrics.text()), histogram(generate_latest(registry))
        self.assertEqual(len(ours), 2 * (len(LATENCY_BUCKETS) + 3))
        self.assertEqual(ours, theirs)

    def test_config_generation_and_reload(self) -> None:
        """
        The generation in force and whether the last reload succeeded.
        (issue 7 section 3; README "Health, and fail-over".)
        """
        self.metrics.add_source(store_metrics(self.store))
        samples = self.scrape()
        self.assertEqual(samples[("smartdiscover_config_generation", frozenset())], 1)
        self.assertEqual(samples[("smartdiscover_config_last_reload_ok", frozenset())], 1)
        good = self.path.read_text()
        self.path.write_text(good.replace("interval = 60", "interval = often"))
        self.store.reload()
        samples = self.scrape()
        self.assertEqual(samples[("smartdiscover_config_generation", frozenset())], 1)
        self.assertEqual(samples[("smartdiscover_config_last_reload_ok", frozenset())], 0)
        self.assertEqual(samples[("smartdiscover_config_reload_failures_total", frozenset())], 1)
        self.path.write_text(good)
        self.store.reload()
        samples = self.scrape()
        self.assertEqual(samples[("smartdiscover_config_generation", frozenset())], 2)
        self.assertEqual(samples[("smartdiscover_config_last_reload_ok", frozenset())], 1)
        self.assertEqual(samples[("smartdiscover_config_reloads_total", frozenset())], 1)

    def test_authentication_outcomes(self) -> None:
        """
        Authentication outcomes of the guard: a success, rejected
        passwords, and the guess the guard throttled without a check.
        (issue 7 section 3; README "Health, and fail-over".)
        """
        backend = FakeBackend()
        guard = Guard(backend, lambda: self.store.current, self.clock)
        self.metrics.add_source(guard_metrics(guard))
        self.successResultOf(guard.requestAvatarId(
            BasicCredentials(USER, PASSWORD, "192.0.2.10")))
        for i in range(6):  # the sixth from the same network is throttled
            self.failureResultOf(guard.requestAvatarId(
                BasicCredentials(USER, b"guess %d" % (i,), "198.51.100.7")),
                UnauthorizedLogin)
        samples = self.scrape()
        outcomes = {dict(labels)["outcome"]: value for (name, labels), value in samples.items()
                    if name == "smartdiscover_auth_total"}
        self.assertEqual(outcomes, {"success": 1, "failure": 5, "throttled": 1, "repeated": 0,
                                    "malformed": 0, "busy": 0, "unavailable": 0, "error": 0})
        self.assertEqual(samples[("smartdiscover_auth_verifications_total", frozenset())],
                         len(backend.calls))
        self.assertEqual(len(backend.calls), 6)

    def test_connections(self) -> None:
        """
        Open and refused connections, and the caps, per group of listeners
        (issue 14, section 1).
        """
        http, dns_tcp = ConnectionLimits(3, 1), ConnectionLimits(10, 2)
        self.metrics.add_source(connection_metrics({"http": http, "dns": dns_tcp}))
        http.admit("192.0.2.1")
        http.admit("192.0.2.1")
        http.admit("192.0.2.2")
        dns_tcp.admit("192.0.2.1")
        samples = self.scrape()
        for name, expected in [("smartdiscover_connections_open", {"http": 2, "dns": 1}),
                               ("smartdiscover_connections_max", {"http": 3, "dns": 10}),
                               ("smartdiscover_connections_refused_total",
                                {"http": 1, "dns": 0})]:
            self.assertEqual({dict(labels)["listener"]: value
                              for (key, labels), value in samples.items() if key == name},
                             expected, name)

    def test_dns_rcodes_and_rate_limiting(self) -> None:
        """
        DNS responses by rcode, and the UDP responses rate limiting
        dropped or slipped.
        (issue 7 section 3; README "Health, and fail-over".)
        """
        model = self.store.current
        assert model.dns is not None
        zones = Zones(build_zones(model), replace(model.dns, rrl_rate=1, rrl_slip=2),
                      self.clock.seconds)
        self.metrics.add_source(dns_metrics(zones))
        responder = UDPResponder(zones)
        sent: list[bytes] = []
        responder.transport = SentDatagrams(sent)  # type: ignore[assignment]
        client = ("198.51.100.1", 5300)
        responder.datagramReceived(
            dns.message.make_query("example.test", "SOA").to_wire(), client)  # sent
        responder.datagramReceived(
            dns.message.make_query("nothere.example.test", "A").to_wire(), client)  # dropped
        responder.datagramReceived(b"\x12\x34" + b"\x00" * 10, client)  # FORMERR, slipped
        responder.datagramReceived(
            dns.message.make_query("gone.example.test", "A").to_wire(), client)  # dropped
        responder.datagramReceived(
            dns.message.make_query("example.com", "A").to_wire(), ("203.0.113.1", 5300))
        self.assertEqual(len(sent), 3)
        samples = self.scrape()
        rcodes = {dict(labels)["rcode"]: value for (name, labels), value in samples.items()
                  if name == "smartdiscover_dns_responses_total"}
        self.assertEqual(rcodes, {"NOERROR": 1, "NXDOMAIN": 2, "FORMERR": 1, "REFUSED": 1})
        rrl = {dict(labels)["action"]: value for (name, labels), value in samples.items()
               if name == "smartdiscover_dns_rrl_total"}
        self.assertEqual(rrl, {"dropped": 2, "slipped": 1})

    def test_endpoints(self) -> None:
        """
        Per endpoint: up (1 or 0) and seconds to certificate expiry; and
        how many endpoints are left out.
        (issue 7 section 3; README "Health, and fail-over".)
        """
        self.metrics.add_source(health_metrics(self.monitor, self.current))
        samples = self.scrape()
        self.assertNotIn(("smartdiscover_endpoint_up", frozenset({("endpoint", IMAP_A)})),
                         samples)  # not probed yet: no verdict
        self.probe.results.update({IMAP_A: REFUSED, IMAP_B: OK_TLS})
        self.turn()
        self.turn(120)
        samples = self.scrape()
        up = {dict(labels)["endpoint"]: value for (name, labels), value in samples.items()
              if name == "smartdiscover_endpoint_up"}
        self.assertEqual(up, {name: 0 if name == IMAP_A else 1 for name in ALL_ENDPOINTS})
        expiry = {dict(labels)["endpoint"]: value for (name, labels), value in samples.items()
                  if name == "smartdiscover_endpoint_certificate_expiry_seconds"}
        self.assertEqual(list(expiry), [IMAP_B])
        left = (EXPIRES - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        self.assertLess(abs(expiry[IMAP_B] - left), 60)
        self.assertEqual(samples[("smartdiscover_endpoints_left_out", frozenset())], 1)
        self.assertEqual(samples[("smartdiscover_endpoint_probe_seconds",
                                  frozenset({("endpoint", IMAP_A)}))], 0.001)

    def test_left_out_counts_only_what_answers_drop(self) -> None:
        """
        smartdiscover_endpoints_left_out counts the endpoints no answer
        names, not every failing one: with both IMAP hosts, the other
        domain's IMAP host and EWS failing past the grace period, every one
        of them is still advertised (no working alternative; URLs are never
        left out), so 0; once one IMAP host works again, the other is left
        out: 1 (issue 16, section 6).
        """
        self.metrics.add_source(health_metrics(self.monitor, self.current))
        self.probe.results.update({IMAP_A: REFUSED, IMAP_B: REFUSED, IMAP_ORG: REFUSED,
                                   EWS: REFUSED})
        self.turn()
        self.turn(120)
        self.assertEqual(len(self.monitor.down), 4)
        samples = self.scrape()
        self.assertEqual(samples[("smartdiscover_endpoints_left_out", frozenset())], 0)
        self.probe.results[IMAP_B] = OK
        self.turn(60)
        samples = self.scrape()
        self.assertEqual(samples[("smartdiscover_endpoints_left_out", frozenset())], 1)


USER = "demo@example.test"
PASSWORD = b"correct horse battery staple"


@implementer(ICredentialsChecker)
class FakeBackend:
    """
    A user store that knows one password and records every check.
    """

    credentialInterfaces = (IBasicCredentials,)

    def __init__(self) -> None:
        self.calls: list[str] = []

    def requestAvatarId(self, credentials: Any) -> Deferred[Principal]:
        self.calls.append(credentials.username)
        if credentials.username == USER and credentials.password == PASSWORD:
            return succeed(Principal(USER, "Demo User"))
        return fail(UnauthorizedLogin())


class SentDatagrams:
    """
    A UDP transport that keeps what is written.
    """

    def __init__(self, sent: list[bytes]) -> None:
        self._sent = sent

    def write(self, data: bytes, address: Any) -> None:
        self._sent.append(data)

