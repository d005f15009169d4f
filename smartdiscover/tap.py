"""
C{twistd smartdiscover}: options, and the service tree that wires every part.

This is the only module that knows every part of SmartDiscover.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

from twisted.application import strports
from twisted.application.service import IService, MultiService, Service
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.ssl import Certificate, platformTrust, trustRootFromCertificates
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import usage

from smartdiscover.auth.guard import Guard
from smartdiscover.auth.imap import IMAPChecker
from smartdiscover.auth.ldap import LDAPChecker
from smartdiscover.auth.passwd import PasswdChecker
from smartdiscover.auth.pool import HashingPool
from smartdiscover.config import ConfigError, ConfigStore, load
from smartdiscover.config.model import DNSSettings, HTTPSListener, Model, TCPListener
from smartdiscover.connections import (
    ConnectionLimits,
    LimitedFactory,
    default_web_connections,
    descriptor_budget,
)
from smartdiscover.dns.server import Zones, build_zones, dns_service
from smartdiscover.dns.table import Table
from smartdiscover.health.endpoints import AdvertisedModel, advertised
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.metrics import (
    Metrics,
    connection_metrics,
    dns_metrics,
    guard_metrics,
    health_metrics,
    store_metrics,
)
from smartdiscover.systemd import SystemdNotifier
from smartdiscover.web.health import HealthResource
from smartdiscover.web.metrics import MetricsResource
from smartdiscover.web.proxy import ProxyV2Factory
from smartdiscover.config.sighup import ReloadOnSignal
from smartdiscover.web.devcert import create_development_certificate, development_names
from smartdiscover.web.redirect import RedirectToHTTPS
from smartdiscover.web.site import SmartSite
from smartdiscover.web.tree import build_resource_tree
from smartdiscover.workers.pool import WorkerPool
from smartdiscover.web.tls import (
    ReloadableServerTLS,
    TLSFilesError,
    load_server_tls,
)

_log = Logger(namespace="smartdiscover")
DEFAULT_BACKLOG = 50  # Twisted's listenTCP default


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = ("Serve autodiscover and autoconfig answers over HTTPS, as "
                "described by one INI file; SIGHUP reloads it.")
    optParameters = [
        ["config", "c", "etc/sd.ini", "The configuration file."],
    ]

    def postOptions(self) -> None:
        if not Path(self["config"]).is_file():
            raise usage.UsageError(f"no configuration file at {self['config']}")


def makeService(options: Options, reactor: Any = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor  # type: ignore[no-redef]
    path = Path(options["config"]).absolute()
    try:
        model = load(path)
    except ConfigError as e:
        raise SystemExit(f"smartdiscover: invalid configuration\n{e}") from None
    _ensure_certificate(model)
    return build_service(path, model, reactor)


def build_service(path: Path, model: Model, reactor: Any,
                  https_socket: int | None = None,
                  on_guard: Callable[[Guard], Any] | None = None) -> MultiService:
    """
    The whole service for the configuration at C{path} (already loaded as
    C{model}).

    The first process (C{https_socket=None}) binds every listener and, with
    C{[server] workers} above 1, starts the workers; a worker answers HTTPS
    on the listening socket it inherited as file descriptor C{https_socket}
    and leaves plain HTTP, DNS and systemd to the first process;
    C{on_guard} links its guard to the first process's.
    """
    worker = https_socket is not None
    top = MultiService()
    store = ConfigStore(model, lambda: load(path),
                        lambda f, *a: deferToThreadPool(reactor, reactor.getThreadPool(), f, *a))
    notifier = SystemdNotifier(
        reactor, status=lambda: f"serving configuration generation {store.generation}")

    pool: WorkerPool | None = None

    def reload() -> Deferred[bool]:
        notifier.reloading()
        if pool is not None:
            pool.reload()
        return store.reload().addCallback(
            lambda ok: notifier.reloaded(ok, store.last_error) or ok)

    # First: SIGHUP must never find the default action (death) once a
    # listener is bound.
    ReloadOnSignal(reload, reactor).setServiceParent(top)

    try:
        tls = ReloadableServerTLS(load_server_tls(model.https.certificate,
                                                  model.https.private_key))
    except TLSFilesError as e:
        raise SystemExit(f"smartdiscover: {e}") from None
    store.subscribe(
        lambda new: load_server_tls(new.https.certificate, new.https.private_key, tls.current),
        tls.replace)

    hashing = HashingPool(reactor)
    hashing.setServiceParent(top)
    current = lambda: store.current  # noqa: E731  (one snapshot per request)
    guard = Guard(_backend(model, current, hashing, reactor), current, reactor,
                  local_store=model.auth.backend == "passwd")
    store.subscribe(lambda new: None, lambda _: guard.reloaded())
    if on_guard is not None:
        on_guard(guard)

    # Health: probes see the configuration; clients see what is advertised.
    monitor = HealthMonitor(current, reactor)
    store.subscribe(lambda new: probe_trust(new.health.ca_file), monitor.reloaded)
    advertised_model = AdvertisedModel(current, lambda: monitor.down)
    metrics = Metrics()
    for source in (store_metrics(store), guard_metrics(guard), health_metrics(monitor)):
        metrics.add_source(source)

    tree = build_resource_tree(guard, advertised_model, lambda: tls.current.signer,
                               model.public_hostname, reactor)
    tree.putChild(b"health", HealthResource(store, monitor, reactor, lambda: top.running))
    tree.putChild(b"metrics", MetricsResource(metrics, current))
    site = SmartSite(tree, reactor=reactor, metrics=metrics)
    proxies = lambda: store.current.proxies  # noqa: E731
    limits = ConnectionLimits(*_connection_caps(model))
    store.subscribe(_connection_caps, lambda caps: limits.configure(*caps))
    _log_connection_caps(limits)
    connection_limits = {"http": limits}
    metrics.add_source(connection_metrics(connection_limits))
    https = _proxied(model.https, TLSMemoryBIOFactory(tls, False, site), proxies, limits,
                     reactor)
    if worker:
        _AdoptedPort(https_socket, https, reactor).setServiceParent(top)
        monitor.setServiceParent(top)
        return top
    if model.workers > 1:
        pool = WorkerPool(model.https.interface or _any_address(), model.https.port,
                          model.https.backlog or DEFAULT_BACKLOG, model.workers, https,
                          path, reactor, guard=guard)
        pool.setServiceParent(top)
    else:
        strports.service(_listen_description(model.https), https,
                         reactor=reactor).setServiceParent(top)
    store.subscribe(lambda new: new, lambda new: _warn_restart_needed(model, new))
    if model.http is not None:
        strports.service(_listen_description(model.http),
                         _proxied(model.http, SmartSite(RedirectToHTTPS(advertised_model),
                                                        reactor=reactor), proxies, limits,
                                  reactor),
                         reactor=reactor).setServiceParent(top)
    if model.dns is not None:
        zones = Zones(Table(), model.dns, reactor.seconds)
        store.subscribe(lambda new: _prepare_zones(advertised(new, monitor.down)),
                        lambda built: _commit_zones(zones, built))

        def rebuild_zones() -> None:  # the endpoints left out changed
            deferToThreadPool(reactor, reactor.getThreadPool(), _prepare_zones,
                              advertised_model()).addCallback(
                lambda built: _commit_zones(zones, built))

        monitor.on_change(rebuild_zones)
        metrics.add_source(dns_metrics(zones))
        connection_limits["dns"] = zones.tcp
        dns_service(zones, reactor).setServiceParent(top)
    monitor.setServiceParent(top)
    # Last: READY=1 once every listener is bound; stopped first, so
    # STOPPING=1 goes out before the listeners close.
    notifier.setServiceParent(top)
    return top


def _backend(model: Model, current: Callable[[], Model], hashing: HashingPool,
             reactor: Any) -> ICredentialsChecker:
    """
    The user store that [auth] backend names (read at start: changing the
    backend needs a restart).
    """
    if model.auth.backend == "ldap":
        return LDAPChecker(current, reactor)
    if model.auth.backend == "imap":
        return IMAPChecker(current, reactor)
    return PasswdChecker(current, hashing.run)


def probe_trust(ca_file: Path | None) -> Any:
    """
    What health probes trust: the [health] CA alone when given, else the
    system's store.  Blocking (reads the file): runs off the reactor.
    """
    if ca_file is None:
        return platformTrust()
    return trustRootFromCertificates([Certificate.loadPEM(ca_file.read_bytes())])


def _prepare_zones(model: Model) -> tuple[Table, DNSSettings] | None:
    return None if model.dns is None else (build_zones(model), model.dns)


def _commit_zones(zones: Zones, built: tuple[Table, DNSSettings] | None) -> None:
    if built is None:
        _log.warn("[server] dns was removed: restart to stop the DNS responder")
        return
    table, settings = built
    if settings.listen != zones.settings.listen:
        _log.warn("[server] dns changed to {host}:{port}: restart to listen there",
                  host=settings.listen.host, port=settings.listen.port)
    zones.replace(table, settings)


def _ensure_certificate(model: Model) -> None:
    https = model.https
    if https.certificate.exists() or https.private_key.exists():
        return
    names = development_names(model.public_hostname, model.domains)
    create_development_certificate(https.certificate, https.private_key, names)
    _log.warn("created a self-signed development certificate for {names} at "
              "{certificate} (key: {key}); configure a real one for production",
              names=", ".join(names), certificate=str(https.certificate),
              key=str(https.private_key))


def _connection_caps(model: Model) -> tuple[int, int]:
    total = model.max_connections or default_web_connections()
    return total, min(model.connections_per_source, total)


def _log_connection_caps(limits: ConnectionLimits) -> None:
    budget = descriptor_budget()
    if limits.total > budget:
        _log.warn("[server] max_connections = {total} is above the {budget} descriptors "
                  "this process may use for connections: raise its limit (LimitNOFILE=)",
                  total=limits.total, budget=budget)
    _log.info("HTTPS and HTTP: at most {total} connections at once, {per_client} per "
              "client", total=limits.total, per_client=limits.per_client)


def _proxied(listener: HTTPSListener | TCPListener, factory: IProtocolFactory,
             proxies: Callable[[], tuple[str, ...]], limits: ConnectionLimits,
             reactor: Any) -> IProtocolFactory:
    """
    The listener's connections within C{limits}; with C{haproxy:}, every
    connection must come from a proxy and first send a PROXY protocol v2
    header, which gives the client's address the limits count.
    """
    limited = LimitedFactory(factory, limits, reactor)
    return ProxyV2Factory(limited, reactor, proxies) if listener.proxy_protocol else limited


def _listen_description(listener: HTTPSListener | TCPListener) -> str:
    """
    A C{tcp:} endpoint description; without an interface, every address.
    """
    interface = listener.interface or _any_address()
    description = f"tcp:{listener.port}:interface={interface.replace(':', chr(92) + ':')}"
    if listener.backlog is not None:
        description += f":backlog={listener.backlog}"
    return description


def _warn_restart_needed(running: Model, new: Model) -> None:
    if new.workers != running.workers:
        _log.warn("[server] workers changed to {workers}: restart to apply",
                  workers=new.workers)


class _AdoptedPort(Service):
    """
    A worker's HTTPS listener: the socket the first process bound.
    """

    def __init__(self, fd: int, factory: IProtocolFactory, reactor: Any) -> None:
        self._fd = fd
        self._factory = factory
        self._reactor = reactor
        self._port: Any = None

    def privilegedStartService(self) -> None:
        inherited = socket.socket(fileno=self._fd)
        try:
            self._port = self._reactor.adoptStreamPort(self._fd, inherited.family,
                                                       self._factory)
        finally:
            inherited.close()  # the reactor holds its own duplicate
        super().privilegedStartService()

    def stopService(self) -> Any:
        super().stopService()
        return self._port.stopListening() if self._port is not None else None


def _any_address() -> str:
    """
    C{::} (IPv6 and IPv4-mapped, one socket) where the host has IPv6, else
    C{0.0.0.0}.
    """
    if not socket.has_ipv6:
        return "0.0.0.0"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
    except OSError:
        return "0.0.0.0"
    return "::"
