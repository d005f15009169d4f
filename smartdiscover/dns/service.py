"""
The DNS responder kept in step with the configuration: its zones are built
again off the reactor thread at every reload and whenever health checks
change what is advertised, and swapped in whole.
"""

from __future__ import annotations

from typing import Callable

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool

from smartdiscover.config.model import DNSSettings, Model
from smartdiscover.config.store import ConfigStore
from smartdiscover.dns.server import IDNSReactor, Zones, build_zones, dns_service
from smartdiscover.dns.table import Table

Built = tuple[Table, DNSSettings] | None


class IResponderReactor(IDNSReactor, IReactorThreads):
    """
    What L{responder} needs of a reactor: the listeners', and the thread
    pool the zones are built in.  For type checking only, as L{IDNSReactor}.
    """


def responder(store: ConfigStore, advertise: Callable[[Model], Model],
              on_change: Callable[[Callable[[], None]], None],
              reactor: IResponderReactor) -> tuple[MultiService, Zones]:
    """
    The UDP and TCP listeners of C{[server] dns}, and the zones they answer
    from.

    @param advertise: the model clients are told of (health may leave
        failing endpoints out).
    @param on_change: registers a call for when that changes without a
        reload.
    """
    settings = store.current.dns
    assert settings is not None
    zones = Zones(Table(), settings, reactor.seconds)
    store.subscribe(lambda new: _prepare(advertise(new)), lambda built: _commit(zones, built))

    def rebuild() -> None:
        deferToThreadPool(reactor, reactor.getThreadPool(), _prepare,
                          advertise(store.current)).addCallback(
            lambda built: _commit(zones, built))

    on_change(rebuild)
    return dns_service(zones, reactor), zones


def _prepare(model: Model) -> Built:
    return None if model.dns is None else (build_zones(model), model.dns)


def _commit(zones: Zones, built: Built) -> None:
    if built is not None:  # removed: served as it was until a restart
        zones.replace(*built)
