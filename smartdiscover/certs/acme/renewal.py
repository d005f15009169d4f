"""
When each ACME certificate is ordered again, and what is said about it.

A certificate is renewed when less than a third of its lifetime remains
(30 days of a 90-day certificate), a little earlier by a random share of
up to L{RenewalPolicy.jitter} of the lifetime so that hosts set up on the
same day do not all renew in the same minute.  When the CA publishes
renewal information (ARI, RFC 9773: a C{renewalInfo} URL in its
directory), the time it suggests wins, and it is asked again when it says
(C{Retry-After}, clamped to an hour to a day).  A failed order is retried
after a delay that doubles from L{RenewalPolicy.first_retry} up to
L{RenewalPolicy.max_retry}, less a random share; the certificate in use
stays in use, and L{RenewalStatus} says what went wrong, when the next
attempt is and when the certificate expires, for /health and /metrics.

Everything runs on the reactor's clock: tests drive it with
L{twisted.internet.task.Clock} and a fixed C{random}.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol, Sequence

from twisted.application.service import Service
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smartdiscover.certs.acme.client import AcmeError
from smartdiscover.certs.acme.store import AcmeStore, StateError, StoredCertificate
from smartdiscover.config.store import RunInThread


@dataclass(frozen=True)
class RenewalPolicy:
    """
    @ivar remaining: renew once less than this share of the lifetime is left.
    @ivar jitter: renew up to this share of the lifetime earlier, at random.
    @ivar first_retry: seconds before the first retry of a failed order.
    @ivar max_retry: the longest wait between two retries.
    @ivar retry_jitter: each retry comes up to this share of its delay
        earlier, at random.
    @ivar ari_min_recheck: the shortest wait before asking the CA's renewal
        information again, whatever C{Retry-After} says.
    @ivar ari_max_recheck: the longest.
    """

    remaining: float = 1 / 3
    jitter: float = 0.05
    first_retry: float = 600.0
    max_retry: float = 6 * 3600.0
    retry_jitter: float = 0.2
    ari_min_recheck: float = 3600.0
    ari_max_recheck: float = 86400.0


def renewal_time(not_before: datetime, not_after: datetime, policy: RenewalPolicy,
                 chance: float) -> datetime:
    """
    When a certificate valid from C{not_before} to C{not_after} is due:
    C{remaining} of its lifetime before the end, and C{chance} (0 to 1) of
    C{jitter} of it earlier still.
    """
    lifetime = max(not_after - not_before, timedelta(0))
    return not_after - lifetime * policy.remaining - lifetime * policy.jitter * chance


def retry_delay(failures: int, policy: RenewalPolicy, chance: float) -> float:
    """
    Seconds to wait after the C{failures}-th failure in a row (1, 2, ...).
    """
    exponent = min(max(failures, 1) - 1, 40)
    delay = min(policy.first_retry * 2 ** exponent, policy.max_retry)
    return delay * (1 - policy.retry_jitter * chance)


@dataclass(frozen=True)
class ManagedCertificate:
    """
    A certificate ACME keeps: its label in the state directory and the
    names it must cover (as L{smartdiscover.certs.acme.client.order_names}
    gives them).
    """

    label: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class RenewalStatus:
    """
    What /health and /metrics say about one ACME certificate.

    @ivar expires: the current certificate's end (L{None}: none yet).
    @ivar renew_at: when it is due (L{None}: now, there is none).
    @ivar due_by: C{"ari"} when C{renew_at} is the CA's suggestion, else
        C{"lifetime"}.
    @ivar next_attempt: when the next order (or renewal-information check)
        happens.
    @ivar failures: orders failed in a row.
    @ivar last_error: why the last order failed (L{None}: it did not).
    """

    label: str
    names: tuple[str, ...]
    expires: datetime | None = None
    renew_at: datetime | None = None
    due_by: str = "lifetime"
    next_attempt: datetime | None = None
    ordering: bool = False
    failures: int = 0
    last_error: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None

    @property
    def state(self) -> str:
        """
        C{ordering}, C{failing} (the last order failed; the current
        certificate, if any, is still served), C{missing} (none yet) or
        C{valid}.
        """
        if self.ordering:
            return "ordering"
        if self.last_error is not None:
            return "failing"
        if self.expires is None:
            return "missing"
        return "valid"


class Orderer(Protocol):
    """
    What the renewer needs of the ACME client.
    """

    def order(self, label: str, names: Sequence[str]) -> Deferred[StoredCertificate]: ...

    def renewal_window(self, certificate: StoredCertificate
                       ) -> Deferred[tuple[datetime | None, datetime]]: ...


class _Managed:
    def __init__(self, wanted: ManagedCertificate) -> None:
        self.wanted = wanted
        self.current: StoredCertificate | None = None
        self.status = RenewalStatus(wanted.label, wanted.names)
        self.call: IDelayedCall | None = None
        self.action = "order"


class Renewer(Service):
    """
    Keeps every managed certificate ordered and renewed; runs in the one
    process that orders (see L{smartdiscover.certs.acme}).

    @ivar issued: called on the reactor thread with the stored certificate
        at start and with each new one once it is stored: the service
        swaps it in (and tells the other processes to re-read the state
        directory).
    """

    _log = Logger(namespace="smartdiscover.certs.acme")

    def __init__(self, certificates: Sequence[ManagedCertificate], orderer: Orderer,
                 store: AcmeStore, reactor: IReactorTime, run_in_thread: RunInThread,
                 issued: Callable[[StoredCertificate], None],
                 policy: RenewalPolicy = RenewalPolicy(),
                 random: Callable[[], float] = _random.random,
                 use_renewal_info: bool = True) -> None:
        self._orderer = orderer
        self._store = store
        self._reactor = reactor
        self._run_in_thread = run_in_thread
        self._issued = issued
        self.policy = policy
        self._random = random
        self._use_renewal_info = use_renewal_info
        self._managed = {c.label: _Managed(c) for c in certificates}

    def statuses(self) -> list[RenewalStatus]:
        return [managed.status for managed in self._managed.values()]

    def status(self, label: str) -> RenewalStatus:
        return self._managed[label].status

    def current(self, label: str) -> StoredCertificate | None:
        return self._managed[label].current

    def startService(self) -> None:
        super().startService()
        for managed in self._managed.values():
            self._load(managed)

    def stopService(self) -> Deferred[None] | None:
        for managed in self._managed.values():
            if managed.call is not None and managed.call.active():
                managed.call.cancel()
            managed.call = None
        return super().stopService()

    # Start: what is stored.

    def _load(self, managed: _Managed) -> None:
        def loaded(stored: StoredCertificate | None) -> None:
            if not self.running:
                return
            managed.current = stored
            if stored is None:
                self._schedule(managed, 0.0, "order")
                return
            managed.status = replace(managed.status, expires=stored.not_after)
            # In place at once, even when it lacks a name now wanted: it
            # still serves the names it has until its successor comes.
            self._put_in_place(stored)
            if not set(managed.wanted.names) <= set(stored.names):
                self._log.info("ACME certificate {label}: the names changed; ordering anew",
                               label=managed.wanted.label)
                self._schedule(managed, 0.0, "order")
                return
            self._plan(managed)

        def unreadable(failure: Failure) -> None:
            if not self.running:
                return
            reason = _reason(failure)
            self._log.error("ACME certificate {label}: {reason}; ordering anew",
                            label=managed.wanted.label, reason=reason)
            managed.status = replace(managed.status, last_error=reason)
            self._schedule(managed, 0.0, "order")
        self._run_in_thread(self._store.load_certificate, managed.wanted.label).addCallbacks(
            loaded, unreadable)

    # Planning.

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), timezone.utc)

    def _plan(self, managed: _Managed, ari_again: datetime | None = None) -> None:
        """
        Schedule the next step for a certificate that is in place: its
        renewal, or first a look at the CA's renewal information.
        """
        stored = managed.current
        assert stored is not None
        status = managed.status
        if status.renew_at is None:
            renew_at = renewal_time(stored.not_before, stored.not_after, self.policy,
                                    self._random())
            managed.status = status = replace(status, renew_at=renew_at, due_by="lifetime")
        assert status.renew_at is not None
        now = self._now()
        if self._use_renewal_info and ari_again is None:
            # Ask the CA first (at start and after each issuance).
            self._schedule(managed, 0.0, "ari")
            return
        if ari_again is not None and ari_again < status.renew_at:
            self._schedule(managed, (ari_again - now).total_seconds(), "ari")
            return
        self._schedule(managed, (status.renew_at - now).total_seconds(), "order")

    def _schedule(self, managed: _Managed, delay: float, action: str) -> None:
        if managed.call is not None and managed.call.active():
            managed.call.cancel()
        delay = max(delay, 0.0)
        managed.action = action
        managed.call = self._reactor.callLater(delay, self._fire, managed)
        when = self._now() + timedelta(seconds=delay)
        managed.status = replace(managed.status, next_attempt=when)

    def _fire(self, managed: _Managed) -> None:
        managed.call = None
        if managed.action == "ari":
            self._ask(managed)
        else:
            self._order(managed)

    # Renewal information.

    def _ask(self, managed: _Managed) -> None:
        stored = managed.current
        assert stored is not None
        policy = self.policy

        def answered(window: tuple[datetime | None, datetime]) -> None:
            if not self.running:
                return
            when, again = window
            now = self._now()
            wait = min(max((again - now).total_seconds(), policy.ari_min_recheck),
                       policy.ari_max_recheck)
            if when is not None:
                # A window in the past means "now" (RFC 9773 section 4.2),
                # but never again right after an issuance: a CA that keeps
                # suggesting the past must not be asked for a certificate
                # in a loop.
                last = managed.status.last_success
                if last is not None:
                    when = max(when, last + timedelta(seconds=policy.ari_min_recheck))
                managed.status = replace(managed.status, renew_at=when, due_by="ari")
            self._plan(managed, now + timedelta(seconds=wait))

        def failed(failure: Failure) -> None:
            if not self.running:
                return
            self._log.warn("ACME certificate {label}: no renewal information ({reason})",
                           label=managed.wanted.label, reason=_reason(failure))
            self._plan(managed, self._now() + timedelta(seconds=policy.ari_min_recheck))
        maybeDeferred(self._orderer.renewal_window, stored).addCallbacks(answered, failed)

    # Ordering.

    @inlineCallbacks
    def _order(self, managed: _Managed) -> Any:
        label = managed.wanted.label
        managed.status = replace(managed.status, ordering=True, last_attempt=self._now(),
                                 next_attempt=None)
        try:
            stored = yield self._orderer.order(label, managed.wanted.names)
        except Exception:
            failure = Failure()
            if not self.running:
                return
            failures = managed.status.failures + 1
            reason = _reason(failure)
            delay = retry_delay(failures, self.policy, self._random())
            managed.status = replace(managed.status, ordering=False, failures=failures,
                                     last_error=reason)
            if isinstance(failure.value, (AcmeError, StateError)):
                self._log.error("ACME certificate {label}: order failed ({reason}); "
                                "the current certificate stays; retry in {delay:.0f} s",
                                label=label, reason=reason, delay=delay)
            else:
                self._log.failure("ACME certificate {label}: order failed; retry in "
                                  "{delay:.0f} s", failure, label=label, delay=delay)
            self._schedule(managed, delay, "order")
            return
        if not self.running:
            return
        managed.current = stored
        managed.status = replace(managed.status, ordering=False, failures=0, last_error=None,
                                 last_success=self._now(), expires=stored.not_after,
                                 renew_at=None, due_by="lifetime")
        self._put_in_place(stored)
        self._plan(managed)

    def _put_in_place(self, stored: StoredCertificate) -> None:
        try:
            self._issued(stored)
        except Exception:
            self._log.failure("ACME certificate {label}: putting it in place",
                              label=stored.label)


def _reason(failure: Failure) -> str:
    value = failure.value
    if isinstance(value, (AcmeError, StateError)):
        return str(value)
    return f"{type(value).__name__}: {value}"[:300]
