"""
Tests for L{smartdiscover.certs.acme.service} and what /health and
/metrics say of it: the renewer started over when a reload changes what
is ordered, a CA that cannot be reached shown as failing long before
anything expires, an unusable state directory, and the certificates the
state directory holds served by every process
(L{smartdiscover.certs.acme.served}).

On a L{Clock}, with blocking work run in place; the CA is a closed
loopback port (nothing leaves the machine).  Orders against a real CA
are in L{tests.integration.test_acme} and L{tests.integration.test_acme_service}.
"""

from __future__ import annotations

import io
import json
import socket
import sys
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover import cli
from smartdiscover.certs.acme.client import Responders
from smartdiscover.certs.acme.renewal import RenewalStatus
from smartdiscover.certs.acme.responders import HTTP01Tokens
from smartdiscover.certs.acme.served import (
    load_served_certificates,
    managed_certificates,
    stored_certificates,
)
from smartdiscover.certs.acme.service import AcmeService
from smartdiscover.certs.acme.store import AcmeStore, StoredCertificate
from smartdiscover.certs.report import describe_renewal
from smartdiscover.config import load
from smartdiscover.config.model import Model
from smartdiscover.metrics import Metrics, acme_metrics
from smartdiscover.web.devcert import ensure_development_certificate
from tests.helpers import build_ini, run_synchronously, write_config
from tests.unit.test_acme_store import certificate


def closed_port() -> int:
    """
    A loopback port nothing listens on (bound, then closed).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.port = closed_port()
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.issued: list[StoredCertificate] = []

    def model(self, domains: str = "example.test", **acme: str) -> Model:
        model = self._load(domains, **acme)
        ensure_development_certificate(model)
        return model

    def _load(self, domains: str, **acme: str) -> Model:
        return load(write_config(self.directory, build_ini({
            "server": {"http": "tcp:8080", "domains": domains},
            "acme": {"directory": f"https://127.0.0.1:{self.port}/dir", "state": "state",
                     "contact": "hostmaster@example.test", "agree_terms": "yes", **acme}})))

    def service(self, model: Model) -> AcmeService:
        service = AcmeService(model, Responders(HTTP01Tokens()), self.clock,
                              run_synchronously, self.issued.append)
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        return service


class AcmeServiceTests(ServiceTestCase):
    def test_unreachable_ca(self) -> None:
        """
        A CA that refuses the connection: every certificate is failing,
        with the reason and a retry planned; nothing was issued; the
        state directory is made 0700.
        """
        service = self.service(self.model())
        self.clock.advance(0)
        statuses = service.statuses()
        self.assertEqual([s.label for s in statuses], ["example.test", "hostname"])
        for status in statuses:
            self.assertEqual((status.state, status.failures), ("failing", 1))
            assert status.last_error is not None
            self.assertIn(f"127.0.0.1:{self.port}", status.last_error)
            self.assertIn("cannot be reached", status.last_error)
            assert status.next_attempt is not None
            wait = status.next_attempt.timestamp() - self.clock.seconds()
            self.assertTrue(480 <= wait <= 600, wait)
        self.assertEqual(self.issued, [])
        root = self.directory / "state" / "acme"
        self.assertEqual(root.stat().st_mode & 0o777, 0o700)

    def test_reload_same_plan(self) -> None:
        """
        A reload that changes nothing ACME uses keeps the renewer and its
        retry schedule.
        """
        service = self.service(self.model())
        self.clock.advance(0)
        before = service.statuses()
        service.reloaded(self.model())
        self.assertEqual(service.statuses(), before)

    def test_reload_new_domain(self) -> None:
        """
        A domain added: its certificate is ordered at once (and the others
        are tried again).
        """
        service = self.service(self.model())
        self.clock.advance(0)
        service.reloaded(self.model("example.test, example.org"))
        self.clock.advance(0)
        self.assertEqual([s.label for s in service.statuses()],
                         ["example.test", "example.org", "hostname"])
        self.assertEqual({s.failures for s in service.statuses()}, {1})

    def test_not_ordering(self) -> None:
        """
        C{order = no}: this instance orders nothing.
        """
        service = self.service(self.model(order="no"))
        self.clock.advance(0)
        self.assertEqual(service.statuses(), [])

    def test_unusable_state_directory(self) -> None:
        """
        A file where the state directory must be: nothing is ordered and
        every certificate's status says why.
        """
        model = self.model()
        assert model.acme is not None
        model.acme.state.mkdir(parents=True)
        (model.acme.state / "acme").write_text("in the way")
        service = self.service(model)
        self.assertIsNotNone(service.error)
        statuses = service.statuses()
        self.assertEqual(len(statuses), 2)
        for status in statuses:
            self.assertEqual(status.state, "failing")
            self.assertIn("acme", status.last_error or "")

    def test_stored_certificate_put_in_place(self) -> None:
        """
        A certificate stored before the start is handed over at once (the
        process serves it) and not ordered again while it is valid.
        """
        model = self.model()
        store = AcmeStore(model.acme.state if model.acme else Path()).open()
        leaf, key = certificate(["autodiscover.example.test", "autoconfig.example.test"])
        stored = store.save_certificate("example.test", key, [leaf])
        service = self.service(model)
        self.assertEqual([s.chain_pem for s in self.issued], [stored.chain_pem])
        status = next(s for s in service.statuses() if s.label == "example.test")
        self.assertEqual(status.expires, leaf.not_valid_after_utc)


class ServedTests(ServiceTestCase):
    """
    Every process serves what the state directory holds, as "acme:LABEL".
    """

    def test_served(self) -> None:
        model = self.model()
        assert model.acme is not None
        store = AcmeStore(model.acme.state).open()
        names = ["autodiscover.example.test", "autoconfig.example.test"]
        leaf, key = certificate(names)
        store.save_certificate("example.test", key, [leaf])
        served = load_served_certificates(model)
        chosen = served.select(b"autoconfig.example.test")
        self.assertEqual(chosen.label, "acme:example.test")
        self.assertEqual(chosen.leaf, leaf)
        self.assertEqual(chosen.origin.section, "acme")
        # Read again with nothing changed: the same objects, the same set.
        self.assertIs(load_served_certificates(model, served), served)

    def test_missing_and_corrupted(self) -> None:
        """
        Nothing stored yet, or a corrupted file: not served (the default
        serves), and no error stops the process.
        """
        model = self.model()
        self.assertEqual(stored_certificates(model), [])
        assert model.acme is not None
        store = AcmeStore(model.acme.state).open()
        store.certificate_path("example.test").write_bytes(b"-----BEGIN nonsense")
        self.assertEqual(stored_certificates(model), [])
        self.assertEqual(load_served_certificates(model).select(
            b"autodiscover.example.test").label, "default")

    def test_not_configured(self) -> None:
        model = load(write_config(self.directory, build_ini()))
        self.assertEqual(stored_certificates(model), [])
        self.assertEqual(managed_certificates(model), [])


class ReportTests(SynchronousTestCase):
    def statuses(self) -> list[RenewalStatus]:
        from datetime import datetime, timezone
        when = datetime(2027, 1, 1, tzinfo=timezone.utc)
        return [RenewalStatus("example.test", ("autodiscover.example.test",), expires=when,
                              renew_at=when, next_attempt=when, failures=3,
                              last_error="the CA said no"),
                RenewalStatus("hostname", ("mail.example.test",))]

    def test_health(self) -> None:
        described = [describe_renewal(s) for s in self.statuses()]
        json.dumps(described)
        self.assertEqual(described[0]["certificate"], "acme:example.test")
        self.assertEqual((described[0]["state"], described[0]["failures"],
                          described[0]["last_error"]), ("failing", 3, "the CA said no"))
        self.assertEqual(described[0]["expires"], "2027-01-01T00:00:00+00:00")
        self.assertEqual((described[1]["state"], described[1]["expires"]), ("missing", None))

    def test_metrics(self) -> None:
        metrics = Metrics()
        metrics.add_source(acme_metrics(self.statuses))
        text = metrics.text().decode()
        self.assertIn('smartdiscover_acme_renewal_failures{certificate="acme:example.test"} 3.0',
                      text)
        self.assertIn('smartdiscover_acme_certificate_state{certificate="acme:example.test",'
                      'state="failing"} 1.0', text)
        self.assertIn('smartdiscover_acme_certificate_state{certificate="acme:hostname",'
                      'state="missing"} 1.0', text)
        self.assertIn('smartdiscover_acme_renew_at_timestamp_seconds{certificate='
                      '"acme:example.test"} 1.7987616e+09', text)

    def test_metrics_elsewhere(self) -> None:
        """
        A process that does not order shows no ACME series.
        """
        metrics = Metrics()
        metrics.add_source(acme_metrics(None))
        self.assertNotIn("smartdiscover_acme", metrics.text().decode())



class CheckConfigTests(ServiceTestCase):
    """
    C{check-config} with C{[acme]}: what the state directory holds is
    listed with the other certificates; a name ACME has not issued yet is
    a warning that says so.
    """

    def setUp(self) -> None:
        super().setUp()
        self.stdout, self.stderr = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)

    def test_stored_and_pending(self) -> None:
        model = self.model()
        assert model.acme is not None
        store = AcmeStore(model.acme.state).open()
        leaf, key = certificate(["autodiscover.example.test", "autoconfig.example.test"])
        store.save_certificate("example.test", key, [leaf])
        self.assertEqual(cli.main(["check-config", str(model.source)]), 0,
                         self.stderr.getvalue())
        out = self.stdout.getvalue()
        self.assertIn("certificate acme:example.test ([acme] example.test, "
                      f"{store.certificate_path('example.test')}): autodiscover.example.test, "
                      "autoconfig.example.test; valid until", out)
        self.assertNotIn("autodiscover.example.test (", self.stderr.getvalue())

    def test_nothing_issued_yet(self) -> None:
        """
        A domain added after the development certificate was made: its
        names are uncovered, and the warning says ACME will issue them.
        """
        ensure_development_certificate(self.model())
        model = self.model("example.test, example.org")
        self.assertEqual(cli.main(["check-config", str(model.source)]), 0,
                         self.stderr.getvalue())
        self.assertIn("no certificate covers autodiscover.example.org (Autodiscover of "
                      "example.org): clients that ask for it get default and refuse it "
                      "until ACME has issued acme:example.org", self.stderr.getvalue())
