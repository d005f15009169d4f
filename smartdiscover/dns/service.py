"""
The DNS responder kept in step with the configuration: its zones are built
again off the reactor thread at every reload, whenever health checks
change what is advertised, and whenever a DNS-01 challenge is published or
withdrawn, and swapped in whole.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from smartdiscover.config.model import DNSSettings, Model
from smartdiscover.config.store import ConfigStore
from smartdiscover.dns.challenges import ZoneChallenges
from smartdiscover.dns.server import IDNSReactor, Zones, build_zones, dns_service
from smartdiscover.dns.table import Table

T = TypeVar("T")
Built = tuple[Table, DNSSettings] | None
Challenges = list[tuple[str, str]]


class IResponderReactor(IDNSReactor, IReactorThreads):
    """
    What L{responder} needs of a reactor: the listeners', and the thread
    pool the zones are built in.  For type checking only, as L{IDNSReactor}.
    """


class Rebuilds(Generic[T]):
    """
    The zone builds of one responder, one at a time, so that a table built
    from older inputs never replaces one built from newer.

    Requests are numbered.  A build reads its inputs as it starts, so it
    serves every request made before; those made while it runs are served
    by one build after it.  A reload's table, which the configuration store
    builds, comes in through L{offer}.
    """

    _log = Logger()

    def __init__(self, build: Callable[[], Deferred[T]], commit: Callable[[T], None]) -> None:
        """
        @param build: reads the inputs, on the reactor thread, and builds
            from them (off it).
        @param commit: puts what C{build} made in force.
        """
        self.requested = 0  # requests so far; read off the reactor thread too
        self._build = build
        self._commit = commit
        self._settled = 0  # requests served: in force, or their build failed
        self._epoch = 0  # +1 for each offer put in force
        self._running = False
        self._waiters: list[tuple[int, Deferred[None]]] = []

    def request(self) -> Deferred[None]:
        """
        Build again.  The L{Deferred} fires once a table whose inputs were
        read after this call is in force, and fails when its build failed.
        """
        self.requested += 1
        waiter: Deferred[None] = Deferred()
        self._waiters.append((self.requested, waiter))
        self._next()
        return waiter

    def offer(self, mark: int, built: T) -> None:
        """
        Put C{built} in force, made elsewhere from inputs read after request
        C{mark}, unless a request came since: then its inputs are out of
        date, and a build from the current ones replaces it.
        """
        if mark < self.requested:
            self.requested += 1
            self._next()
            return
        self._commit(built)
        self._epoch += 1  # the build running, if any, read older inputs
        self._settle(mark, None)

    def _next(self) -> None:
        if self._running or self.requested <= self._settled:
            return
        self._running = True
        mark, epoch = self.requested, self._epoch
        building = maybeDeferred(self._build)
        building.addCallback(self._built, mark, epoch)
        building.addErrback(self._failed, mark)
        building.addBoth(self._finished)

    def _built(self, built: T, mark: int, epoch: int) -> None:
        if epoch == self._epoch:
            self._commit(built)
            self._settle(mark, None)

    def _failed(self, failure: Failure, mark: int) -> None:
        self._log.failure("building the DNS zones failed; the table in force stays", failure)
        self._settle(mark, failure)

    def _finished(self, _: object) -> None:
        self._running = False
        self._next()

    def _settle(self, mark: int, failure: Failure | None) -> None:
        self._settled = max(self._settled, mark)
        served = [waiter for number, waiter in self._waiters if number <= mark]
        self._waiters = [(number, waiter) for number, waiter in self._waiters if number > mark]
        for waiter in served:
            if failure is None:
                waiter.callback(None)
            else:
                waiter.errback(failure)


def responder(store: ConfigStore, advertise: Callable[[Model], Model],
              on_change: Callable[[Callable[[], None]], None],
              reactor: IResponderReactor,
              challenges: ZoneChallenges | None = None) -> tuple[MultiService, Zones]:
    """
    The UDP and TCP listeners of C{[server] dns}, and the zones they answer
    from.

    @param advertise: the model clients are told of (health may leave
        failing endpoints out).
    @param on_change: registers a call for when that changes without a
        reload.
    @param challenges: DNS-01 values the zones answer besides; connected
        here, so that publishing one builds the zones again.
    """
    settings = store.current.dns
    assert settings is not None
    zones = Zones(Table(), settings, reactor.seconds)
    published: Callable[[], Challenges] = challenges.published if challenges is not None else list

    def build() -> Deferred[Built]:
        return deferToThreadPool(reactor, reactor.getThreadPool(), _prepare,
                                 advertise(store.current), published())

    rebuilds: Rebuilds[Built] = Rebuilds(build, lambda built: _commit(zones, built))

    def prepare(new: Model) -> tuple[int, Built]:
        mark = rebuilds.requested  # first: the inputs read next are at least as new
        return mark, _prepare(advertise(new), published())

    def health_changed() -> None:
        rebuilds.request().addErrback(lambda _: None)  # Rebuilds logged it

    store.subscribe(prepare, lambda prepared: rebuilds.offer(*prepared))
    on_change(health_changed)
    if challenges is not None:
        challenges.connect(rebuilds.request)
    return dns_service(zones, reactor), zones


def _prepare(model: Model, challenges: Challenges) -> Built:
    return None if model.dns is None else (build_zones(model, challenges), model.dns)


def _commit(zones: Zones, built: Built) -> None:
    if built is not None:  # removed: served as it was until a restart
        zones.replace(*built)
