"""
Tests for L{smartdiscover.certs.acme.renewal}: when certificates are
renewed, the backoff after failures, the CA's renewal information, and
the status /health will show; all on a L{Clock} with fixed randomness.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.certs.acme.client import AcmeError, RateLimited
from smartdiscover.certs.acme.renewal import (
    ManagedCertificate,
    Renewer,
    RenewalPolicy,
    renewal_time,
    retry_delay,
)
from smartdiscover.certs.acme.store import AcmeStore, StoredCertificate
from tests.helpers import run_synchronously
from tests.unit.test_acme_store import certificate

START = datetime(2030, 1, 1, tzinfo=timezone.utc)
DAY = 86400.0
NAMES = ("autodiscover.example.test", "autoconfig.example.test")


class PlanningTests(SynchronousTestCase):
    def test_renewal_time(self) -> None:
        """
        A 90-day certificate is due when 30 days are left, up to 4.5 days
        (5 % of the lifetime) earlier at random.
        """
        end = START + timedelta(days=90)
        policy = RenewalPolicy()
        self.assertEqual(renewal_time(START, end, policy, 0.0), START + timedelta(days=60))
        self.assertEqual(renewal_time(START, end, policy, 1.0),
                         START + timedelta(days=55.5))
        short = START + timedelta(days=6)
        self.assertEqual(renewal_time(START, short, policy, 0.0), START + timedelta(days=4))

    def test_retry_delay(self) -> None:
        """
        10 minutes after the first failure, doubling, at most 6 hours; the
        jitter only shortens a delay, by at most a fifth.
        """
        policy = RenewalPolicy()
        self.assertEqual([retry_delay(n, policy, 0.0) for n in range(1, 8)],
                         [600, 1200, 2400, 4800, 9600, 19200, 21600])
        self.assertEqual(retry_delay(1000, policy, 0.0), 21600)
        self.assertEqual(retry_delay(1, policy, 1.0), 480)


class FakeOrderer:
    """
    Orders and renewal windows answered as the test says.
    """

    def __init__(self, store: AcmeStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.orders: list[tuple[str, tuple[str, ...], float]] = []
        self.windows: list[float] = []
        self.failure: Exception | None = None
        self.window: tuple[datetime | None, datetime] | None = None
        self.pending: Deferred[StoredCertificate] | None = None
        self.days = 90.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), timezone.utc)

    def order(self, label: str, names: Sequence[str]) -> Deferred[StoredCertificate]:
        self.orders.append((label, tuple(names), self.clock.seconds()))
        if self.failure is not None:
            return fail(self.failure)
        leaf, key = certificate(list(names), not_before=self.now(), days=self.days)
        return succeed(self.store.save_certificate(label, key, [leaf]))

    def renewal_window(self, stored: StoredCertificate
                       ) -> Deferred[tuple[datetime | None, datetime]]:
        self.windows.append(self.clock.seconds())
        if self.window is None:
            return succeed((None, self.now() + timedelta(hours=6)))
        return succeed(self.window)


class RenewerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(START.timestamp())
        self.store = AcmeStore(Path(self.mktemp())).open()
        self.orderer = FakeOrderer(self.store, self.clock)
        self.issued: list[StoredCertificate] = []
        self.chance = 0.0

    def renewer(self, names: tuple[str, ...] = NAMES, use_renewal_info: bool = False
                ) -> Renewer:
        renewer = Renewer([ManagedCertificate("main", names)], self.orderer, self.store,
                          self.clock, run_synchronously, self.issued.append,
                          random=lambda: self.chance, use_renewal_info=use_renewal_info)
        renewer.startService()
        self.addCleanup(renewer.stopService)
        return renewer

    def stored(self, days_ago: float, days: float = 90.0,
               names: tuple[str, ...] = NAMES) -> StoredCertificate:
        leaf, key = certificate(list(names), not_before=START - timedelta(days=days_ago),
                                days=days)
        return self.store.save_certificate("main", key, [leaf])

    def at(self, seconds: float) -> datetime:
        return START + timedelta(seconds=seconds)

    def advance_to(self, when: datetime) -> None:
        self.clock.advance(max((when - START).total_seconds() -
                               (self.clock.seconds() - START.timestamp()), 0))

    def test_orders_when_missing(self) -> None:
        """
        No certificate stored: one is ordered at once, put in place, and
        its renewal planned two thirds into its life.
        """
        renewer = self.renewer()
        self.assertEqual(renewer.status("main").state, "missing")
        self.clock.advance(0)
        self.assertEqual(self.orderer.orders, [("main", NAMES, START.timestamp())])
        self.assertEqual(len(self.issued), 1)
        status = renewer.status("main")
        self.assertEqual((status.state, status.failures, status.last_error), ("valid", 0, None))
        self.assertEqual(status.expires, START + timedelta(days=90))
        self.assertEqual(status.renew_at, START + timedelta(days=60))
        self.assertEqual(status.next_attempt, START + timedelta(days=60))
        self.assertEqual(status.last_success, START)

    def test_keeps_valid_certificate(self) -> None:
        """
        A stored certificate with time left is put in place, not ordered
        again until it is due; then it is renewed.
        """
        stored = self.stored(days_ago=10)
        renewer = self.renewer()
        self.assertEqual([c.chain_pem for c in self.issued], [stored.chain_pem])
        self.clock.advance(49 * DAY)
        self.assertEqual(self.orderer.orders, [])
        self.clock.advance(1 * DAY)
        self.assertEqual(len(self.orderer.orders), 1)
        self.assertEqual(len(self.issued), 2)
        self.assertEqual(renewer.status("main").expires, self.at(50 * DAY + 90 * DAY))

    def test_jitter(self) -> None:
        """
        The renewal comes earlier by the random share of the jitter.
        """
        self.stored(days_ago=0)
        self.chance = 1.0
        renewer = self.renewer()
        self.assertEqual(renewer.status("main").renew_at, START + timedelta(days=55.5))

    def test_due_at_start(self) -> None:
        """
        A certificate already past its renewal time is renewed at once.
        """
        self.stored(days_ago=80)
        self.renewer()
        self.clock.advance(0)
        self.assertEqual(len(self.orderer.orders), 1)

    def test_names_changed(self) -> None:
        """
        A stored certificate that lacks a name now configured serves the
        names it has until its successor, ordered at once, replaces it.
        """
        self.stored(days_ago=1, names=NAMES[:1])
        self.renewer()
        self.clock.advance(0)
        self.assertEqual([o[1] for o in self.orderer.orders], [NAMES])
        self.assertEqual([c.names for c in self.issued], [NAMES[:1], NAMES])

    def test_corrupted_file(self) -> None:
        """
        A corrupted stored certificate: the status names the file, and a
        new certificate is ordered at once.
        """
        path = self.store.certificate_path("main")
        path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken")
        renewer = self.renewer()
        status = renewer.status("main")
        self.assertEqual(status.state, "failing")
        self.assertIn(str(path), status.last_error or "")
        self.clock.advance(0)
        self.assertEqual(len(self.issued), 1)
        self.assertEqual(renewer.status("main").state, "valid")

    def test_failure_keeps_current_and_backs_off(self) -> None:
        """
        Renewals failing as expiry approaches: the current certificate
        stays in place (nothing new is issued), the status says why, when
        the next attempt is and when the certificate expires, and the
        attempts come 10, 20, 40 ... minutes apart, then every 6 hours.
        """
        stored = self.stored(days_ago=70)
        self.orderer.failure = AcmeError("the ACME server at https://ca/ cannot be reached")
        renewer = self.renewer()
        self.clock.advance(0)
        status = renewer.status("main")
        self.assertEqual((status.state, status.failures), ("failing", 1))
        self.assertEqual(status.last_error, "the ACME server at https://ca/ cannot be reached")
        self.assertEqual(status.expires, stored.not_after)
        self.assertEqual(status.next_attempt, self.at(600))
        self.assertEqual(status.last_attempt, START)
        self.clock.pump([60] * 72 * 60)  # three days, a minute at a time
        times = [when - START.timestamp() for _, _, when in self.orderer.orders]
        self.assertEqual(times[:6], [0, 600, 1800, 4200, 9000, 18600])
        self.assertEqual({b - a for a, b in zip(times[6:], times[7:])}, {21600})
        current = renewer.current("main")
        assert current is not None
        self.assertEqual(current.chain_pem, stored.chain_pem)
        self.assertEqual([c.chain_pem for c in self.issued], [stored.chain_pem])
        stored_now = self.store.load_certificate("main")
        assert stored_now is not None
        self.assertEqual(stored_now.chain_pem, stored.chain_pem)
        self.assertEqual(renewer.status("main").failures, len(times))

    def test_recovers(self) -> None:
        """
        After failures, a successful order clears the error and resets the
        backoff.
        """
        self.orderer.failure = RateLimited("the CA refused: rate limited")
        renewer = self.renewer()
        self.clock.advance(0)
        self.clock.advance(600)
        self.assertEqual(renewer.status("main").failures, 2)
        self.orderer.failure = None
        self.clock.advance(1200)
        status = renewer.status("main")
        self.assertEqual((status.state, status.failures, status.last_error),
                         ("valid", 0, None))
        self.assertEqual(status.renew_at, self.at(1800 + 60 * DAY))

    def test_unexpected_error(self) -> None:
        """
        A bug in the order path is retried like any failure and logged
        with its traceback; the status names the exception.
        """
        self.orderer.failure = ZeroDivisionError("boom")
        renewer = self.renewer()
        self.clock.advance(0)
        self.assertEqual(renewer.status("main").last_error, "ZeroDivisionError: boom")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(renewer.status("main").next_attempt, self.at(600))

    def test_renewal_information(self) -> None:
        """
        The CA's suggested time (ARI) wins over the lifetime rule; its
        Retry-After is honoured, within an hour to a day.
        """
        self.stored(days_ago=0)
        suggested = START + timedelta(days=40)
        self.orderer.window = (suggested, START + timedelta(minutes=1))
        renewer = self.renewer(use_renewal_info=True)
        self.clock.advance(0)
        self.assertEqual(self.orderer.windows, [START.timestamp()])
        status = renewer.status("main")
        self.assertEqual((status.renew_at, status.due_by), (suggested, "ari"))
        self.assertEqual(status.next_attempt, self.at(3600))  # clamped up to an hour
        self.orderer.window = (suggested, START + timedelta(days=30))
        self.clock.advance(3600)
        self.assertEqual(renewer.status("main").next_attempt, self.at(3600 + DAY))
        self.orderer.window = (suggested, START + timedelta(days=60))
        self.clock.pump([3600] * 24 * 40)
        self.assertEqual(self.orderer.orders[0][2], suggested.timestamp())

    def test_renewal_information_in_the_past(self) -> None:
        """
        A suggested window in the past renews at once; after that, a CA
        that keeps suggesting the past gets an order an hour apart at most.
        """
        self.stored(days_ago=0)
        self.orderer.window = (START - timedelta(days=1), START + timedelta(hours=6))
        self.renewer(use_renewal_info=True)
        self.clock.advance(0)
        self.clock.pump([60] * 3 * 60)
        times = [when - START.timestamp() for _, _, when in self.orderer.orders]
        self.assertEqual(times, [0, 3600, 7200, 10800])

    def test_no_renewal_information(self) -> None:
        """
        A CA without ARI: the lifetime rule, and the CA asked again later.
        """
        self.stored(days_ago=0)
        renewer = self.renewer(use_renewal_info=True)
        self.clock.advance(0)
        status = renewer.status("main")
        self.assertEqual((status.renew_at, status.due_by), (START + timedelta(days=60),
                                                            "lifetime"))
        self.assertEqual(status.next_attempt, self.at(6 * 3600))

    def test_renewal_information_fails(self) -> None:
        """
        The ARI request failing is no reason to renew: the lifetime rule
        holds and the CA is asked again in an hour.
        """
        self.stored(days_ago=0)
        self.orderer.renewal_window = lambda stored: fail(  # type: ignore[method-assign]
            AcmeError("ACME: failed to fetch renewal_info URL"))
        renewer = self.renewer(use_renewal_info=True)
        self.clock.advance(0)
        self.assertEqual(renewer.status("main").next_attempt, self.at(3600))
        self.assertEqual(self.orderer.orders, [])

    def test_stop(self) -> None:
        """
        Stopping cancels what was scheduled; a result arriving later is
        ignored.
        """
        renewer = self.renewer()
        renewer.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(DAY)
        self.assertEqual(self.orderer.orders, [])
