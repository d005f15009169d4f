"""
Probes every advertised endpoint on an interval and after every reload, and
keeps what it found: the status behind /health, /health/ready, the metrics
and advertise_unhealthy = no.  A name inside a served zone is probed at the
addresses the zone publishes; with [health] probes = no nothing is probed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from smartdiscover.config.model import HealthSettings, Model
from smartdiscover.config.zone import published_addresses
from smartdiscover.health.conversation import IProbeReactor
from smartdiscover.health.endpoints import EndpointKey, service_key, targets, url_key
from smartdiscover.health.probes import ProbeResult, Target, probe

if TYPE_CHECKING:  # the interface is not exported by twisted.internet.ssl
    from twisted.internet._sslverify import IOpenSSLTrustRoot

Probe = Callable[..., "Deferred[ProbeResult]"]


@dataclass
class EndpointStatus:
    """
    What is known about one endpoint.  C{ok} is L{None} until it was probed;
    C{since} is when the current state (ok or failing) began.
    """

    target: Target
    ok: bool | None = None
    since: float | None = None
    checked: float | None = None
    latency: float | None = None
    error: str | None = None
    detail: str | None = None
    certificate_expires: datetime | None = None

    def down_for(self, now: float) -> float:
        """
        Seconds this endpoint has been failing (0 when it is not).
        """
        return now - self.since if self.ok is False and self.since is not None else 0.0


class HealthMonitor(Service):
    """
    @ivar down: the endpoints failing for longer than the grace period, as
        of the last round (what advertise_unhealthy = no leaves out).
    """

    _log = Logger()

    def __init__(self, current_model: Callable[[], Model], reactor: IProbeReactor,
                 run_probe: Probe = probe) -> None:
        self._current_model = current_model
        self._reactor = reactor
        self._probe = run_probe
        self.statuses: dict[EndpointKey, EndpointStatus] = {}
        self.down: frozenset[EndpointKey] = frozenset()
        self.trust: IOpenSSLTrustRoot | None = None
        self.rounds = 0
        self._listeners: list[Callable[[], None]] = []
        self._loop: LoopingCall | None = None
        self._running: Deferred[list[tuple[bool, None]]] | None = None
        self._again = False  # a reload came during a round: another round after it
        self._probing: bool | None = None  # [health] probes, as last applied

    def on_change(self, listener: Callable[[], None]) -> None:
        """
        Call C{listener} whenever the set of endpoints left out changes.
        """
        self._listeners.append(listener)

    def startService(self) -> None:
        super().startService()
        self._schedule(self._current_model().health)

    def stopService(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return super().stopService()

    def _schedule(self, settings: HealthSettings) -> None:
        interval = settings.interval
        if not self._switched(settings.probes):
            return
        if self._loop is not None and self._loop.running:
            if self._loop.interval == interval:
                return
            self._loop.stop()
        if interval > 0:
            self._loop = LoopingCall(self.check_all)
            self._loop.clock = self._reactor
            self._loop.start(interval, now=True).addErrback(
                lambda f: self._log.failure("health checks stopped", f))
        else:
            self.check_all()

    def _switched(self, probes: bool) -> bool:
        """
        Apply [health] probes: with no, no round now or later, and nothing
        known, so nothing is left out of answers.  Whether to probe.
        """
        if probes:
            if self._probing is False:
                self._log.info("health probes are on again")
            self._probing = True
            return True
        if self._probing is not False:
            self._log.info("health probes are off ([health] probes = no): no endpoint "
                           "is probed and every endpoint is advertised")
        self._probing = False
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._again = False
        self.statuses.clear()  # a round still running records nothing more
        if self.down:
            self.down = frozenset()
            for listener in self._listeners:
                listener()
        return False

    def reloaded(self, trust: IOpenSSLTrustRoot | None) -> None:
        """
        The configuration changed: new trust, new interval, and a round now
        (the endpoints may be new).
        """
        self.trust = trust
        if self.running and self._running is not None:
            self._again = True
        if self.running:
            self._schedule(self._current_model().health)
            if self._loop is not None and self._loop.running:
                self.check_all()

    def check_all(self) -> Deferred[None]:
        """
        One round: probe every endpoint, at most C{concurrency} at a time.
        A round asked for while one runs is skipped, and so is every round
        with [health] probes = no.
        """
        if self._running is not None:
            return succeed(None)
        model = self._current_model()
        if not model.health.probes:
            return succeed(None)
        found = {key: replace(target, addresses=published_addresses(model, target.host))
                 for key, target in targets(model).items()}
        for key in list(self.statuses):
            if key not in found:
                del self.statuses[key]
        for key, target in found.items():
            if key not in self.statuses or self.statuses[key].target != target:
                self.statuses[key] = EndpointStatus(target)
        semaphore = DeferredSemaphore(model.health.concurrency)
        probes = [semaphore.run(self._probe, target, self._reactor, self.trust,
                                model.health.timeout).addCallback(self._record, key)
                  for key, target in found.items()]
        # Assigned before the callback is added: a round whose probes all
        # answer at once finishes (and clears _running) inside addCallback.
        self._running = d = DeferredList(probes, consumeErrors=True)
        return d.addCallback(self._finished, model)

    def _record(self, result: ProbeResult, key: EndpointKey) -> None:
        status = self.statuses.get(key)
        if status is None:
            return
        now = self._reactor.seconds()
        if status.ok is not result.ok:
            status.since = now
            if result.ok:
                if status.ok is False:
                    self._log.info("endpoint {endpoint} works again", endpoint=_shown(key))
            else:
                self._log.warn("endpoint {endpoint} fails: {error}", endpoint=_shown(key),
                               error=result.error)
        status.ok = result.ok
        status.checked = now
        status.latency = result.latency
        status.error = result.error
        status.detail = result.detail
        status.certificate_expires = result.certificate_expires

    def _finished(self, _: object, model: Model) -> None:
        self._running = None
        if self._probing is False:
            return  # switched off during the round: its results are dropped
        self.rounds += 1
        now = self._reactor.seconds()
        down = frozenset(key for key, status in self.statuses.items()
                         if status.down_for(now) > model.health.grace and status.ok is False)
        if down != self.down:
            self.down = down
            for listener in self._listeners:
                listener()
        if self._again:
            self._again = False
            self.check_all()

    def advertise_unhealthy(self) -> bool:
        return self._current_model().health.advertise_unhealthy

    def unavailable(self, model: Model) -> list[str]:
        """
        Services and URLs none of whose endpoints works beyond the grace
        period: what makes the service not ready.
        """
        missing = []
        for domain in model.domains:
            catalogue = model.catalogue_for(domain)
            for name in dict.fromkeys(s.name for s in catalogue.services):
                keys = [service_key(s) for s in catalogue.services_named(name)]
                if keys and all(k in self.down for k in keys):
                    missing.append(f"{domain} {name}")
            for key, url in catalogue.urls.items():
                if url_key(url) in self.down:
                    missing.append(f"{domain} {key}")
        return missing


def _shown(key: EndpointKey) -> str:
    return key[1] if key[0] == "url" else f"{key[0]} {key[1]}:{key[2]}"
