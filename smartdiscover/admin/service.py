"""
The console's listener: its own site on C{[admin] listen}, over TLS with
the service's certificates unless it is on loopback, within the same
connection limits as the other web listeners.
"""

from __future__ import annotations

from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IProtocolFactory
from twisted.protocols.tls import TLSMemoryBIOFactory

from smartdiscover.admin.checker import AdminChecker
from smartdiscover.admin.resource import Console
from smartdiscover.admin.sessions import Sessions
from smartdiscover.auth.guard import Guard
from smartdiscover.auth.passwd import RunHash
from smartdiscover.config.model import AdminSettings
from smartdiscover.config.store import ConfigStore, RunInThread
from smartdiscover.connections import ConnectionLimits
from smartdiscover.health.conversation import IProbeReactor
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.web.listeners import listener_factory
from smartdiscover.web.site import SmartSite


def _settings(store: ConfigStore) -> AdminSettings:
    settings = store.current.admin
    assert settings is not None  # removed by a reload: served as it was until a restart
    return settings


def console_factory(store: ConfigStore, monitor: HealthMonitor, run_hash: RunHash,
                    run_in_thread: RunInThread, tls: IOpenSSLServerConnectionCreator,
                    limits: ConnectionLimits, reactor: IProbeReactor
                    ) -> tuple[IProtocolFactory, Guard, Sessions]:
    """
    What the console's listener serves, its guard and its sessions.

    @param run_in_thread: for the file's reads and writes.
    """
    current = lambda: store.current  # noqa: E731
    started = _settings(store)
    guard = Guard(AdminChecker(current, run_hash), current, reactor, local_store=False)
    store.subscribe(lambda new: None, lambda _: guard.reloaded())
    last = [started]

    def settings() -> AdminSettings:
        # The settings in force, or the last ones if a reload removed [admin].
        if store.current.admin is not None:
            last[0] = store.current.admin
        return last[0]

    sessions = Sessions(reactor, lambda: settings().session_idle,
                        lambda: settings().session_lifetime)
    secure = started.over_tls
    site = SmartSite(Console(store, monitor, guard, sessions, reactor, lambda: secure,
                             run_in_thread), reactor=reactor)
    factory: IProtocolFactory = TLSMemoryBIOFactory(tls, False, site) if secure else site
    return (listener_factory(started.listen, factory, lambda: store.current.proxies, limits,
                             reactor), guard, sessions)
