"""
The HTTPS answering stack that every process runs, the first one and each
worker: the configuration store, the user store behind the guard, health
checks, metrics, the TLS context and the resource tree, down to the factory
a listener serves.  What only the first process runs (SIGHUP, the worker
pool, plain HTTP, DNS, systemd) is composed in L{smartdiscover.tap}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory, IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from smartdiscover.auth.backends import user_store
from smartdiscover.auth.guard import Guard
from smartdiscover.auth.outbound import IConnectingReactor
from smartdiscover.auth.pool import HashingPool
from smartdiscover.certs.acme.client import Responders
from smartdiscover.certs.acme.responders import HTTP01Tokens, TLSALPN01Certificates
from smartdiscover.certs.acme.served import load_served_certificates, served_label
from smartdiscover.certs.acme.service import AcmeService
from smartdiscover.certs.acme.store import StoredCertificate
from smartdiscover.certs.report import warnings as certificate_warnings
from smartdiscover.certs.selection import CertificateSet
from smartdiscover.config import ConfigProblem, ConfigStore, load
from smartdiscover.config.model import Model
from smartdiscover.dns.challenges import ZoneChallenges
from smartdiscover.connections import (
    ConnectionLimits,
    default_web_connections,
    descriptor_budget,
)
from smartdiscover.discovery.signing import Signer
from smartdiscover.health.conversation import IProbeReactor
from smartdiscover.health.endpoints import AdvertisedModel
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.health.trust import probe_trust
from smartdiscover.metrics import (
    Metrics,
    acme_metrics,
    certificate_metrics,
    connection_metrics,
    guard_metrics,
    health_metrics,
    store_metrics,
)
from smartdiscover.web.health import HealthResource
from smartdiscover.web.listeners import listener_factory
from smartdiscover.web.metrics import MetricsResource
from smartdiscover.web.site import SmartSite
from smartdiscover.web.tls import ReloadableServerTLS, signer_for
from smartdiscover.web.tree import build_resource_tree

_log = Logger(namespace="smartdiscover")
T = TypeVar("T")


class IAnsweringReactor(IConnectingReactor, IProbeReactor, IReactorThreads):
    """
    What L{build_answering} needs of the reactor: threads for reloads and
    password hashing, the user stores' and the probes' connections, and a
    clock for everything that times out.

    zope.interface has no intersection type, so this names one, as
    Twisted's own C{IDistTrialReactor} does; a reactor need not declare it.
    """


@dataclass
class Answering:
    """
    The parts of one process's HTTPS service.

    @ivar https: what the HTTPS listener serves: connection limits, any
        PROXY header, TLS, then the site.
    @ivar connections: the connection limits of every listener group, by
        the name /metrics gives them (C{http}; the first process adds
        C{dns}).
    @ivar tls: the certificates in force; C{replace} swaps them for new
        connections (a reload does, and so may a source that renews).
    @ivar acme: in the process that orders, the ACME service, and what
        answers its challenges: C{acme_http01} for the plain-HTTP listener,
        C{acme_dns01} for the DNS responder (TLS-ALPN-01 is in C{tls}).
    @ivar certificates_changed: called after ACME put a new certificate in
        force here (the worker pool passes it on).
    """

    store: ConfigStore
    hashing: HashingPool
    guard: Guard
    monitor: HealthMonitor
    advertised: AdvertisedModel
    metrics: Metrics
    limits: ConnectionLimits
    https: IProtocolFactory
    connections: dict[str, ConnectionLimits] = field(default_factory=dict)
    tls: ReloadableServerTLS[CertificateSet] | None = None
    acme: AcmeService | None = None
    acme_http01: HTTP01Tokens | None = None
    acme_dns01: ZoneChallenges | None = None
    certificates_changed: list[Callable[[], object]] = field(default_factory=list)


def build_answering(path: Path, model: Model, certificates: CertificateSet,
                    reactor: IAnsweringReactor, listening: Callable[[], bool],
                    orders: bool = False) -> Answering:
    """
    Everything that answers HTTPS for the configuration at C{path}, already
    loaded as C{model} with its certificates (L{load_served_certificates}).

    @param listening: whether the process's listeners are bound (for
        /health/ready).
    @param orders: this is the process that orders ACME certificates (the
        first one), if C{[acme]} says this instance orders.
    """
    def run_in_thread(f: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args)

    store = ConfigStore(model, lambda: load(path), run_in_thread)
    current = lambda: store.current  # noqa: E731  (one snapshot per request)
    ordering = orders and model.acme is not None and model.acme.order
    # Every challenge the listeners allow, so a reload may switch a name
    # to another (the listeners themselves are bound at start).
    tls_alpn01 = TLSALPN01Certificates() if ordering and model.workers == 1 else None
    alpn = tls_alpn01.alpn_select if tls_alpn01 is not None else None
    if alpn is not None:
        certificates = CertificateSet(certificates.default, certificates.certificates,
                                      alpn=alpn)
    # A bad certificate file vetoes the reload like a bad key does.
    reloadable = ReloadableServerTLS(certificates)
    logged = _WarningsLog()

    def prepare_certificates(new: Model) -> tuple[CertificateSet, list[ConfigProblem]]:
        # Blocking: off the reactor.
        loaded = load_served_certificates(new, reloadable.current, alpn)
        return loaded, certificate_warnings(loaded, new)

    def commit_certificates(prepared: tuple[CertificateSet, list[ConfigProblem]]) -> None:
        reloadable.replace(prepared[0])
        logged.show(prepared[1])

    store.subscribe(prepare_certificates, commit_certificates)

    acme = None
    http01 = HTTP01Tokens() if ordering and model.http is not None else None
    dns01 = ZoneChallenges() if ordering and model.dns is not None else None
    if ordering:
        def issued(stored: StoredCertificate) -> None:
            served = reloadable.current.labels.get(served_label(stored.label))
            if served is not None and served.certificate_pem == stored.chain_pem:
                return  # in force already (loaded at start or at a reload)
            run_in_thread(prepare_certificates, store.current).addCallback(
                commit_certificates).addCallback(
                lambda _: [changed() for changed in answering.certificates_changed]
            ).addErrback(lambda f: _log.failure("serving the new ACME certificate", f))

        acme = AcmeService(model, Responders(http01, dns01, tls_alpn01), reactor,
                           run_in_thread, issued)
        store.subscribe(lambda new: new, acme.reloaded)
    statuses = acme.statuses if acme is not None else None

    hashing = HashingPool(reactor)
    guard = Guard(user_store(model, current, hashing, reactor), current, reactor,
                  local_store=model.auth.backend == "passwd")
    store.subscribe(lambda new: None, lambda _: guard.reloaded())

    # Health: probes see the configuration; clients see what is advertised.
    monitor = HealthMonitor(current, reactor)
    store.subscribe(lambda new: probe_trust(new.health.ca_file), monitor.reloaded)
    advertised = AdvertisedModel(current, lambda: monitor.down)

    limits = ConnectionLimits(*connection_caps(model))
    store.subscribe(connection_caps, lambda caps: limits.configure(*caps))
    _log_connection_caps(limits)
    connections = {"http": limits}
    metrics = Metrics()
    for source in (store_metrics(store), guard_metrics(guard), health_metrics(monitor, current),
                   connection_metrics(connections),
                   certificate_metrics(lambda: reloadable.current, current),
                   acme_metrics(statuses)):
        metrics.add_source(source)

    def signer_for_domain(domain: str) -> Signer | None:
        hostname = store.current.catalogue_for(domain).public_hostname
        return signer_for(reloadable.current.for_domain(domain, hostname))

    tree = build_resource_tree(guard, advertised, signer_for_domain, model.public_hostname,
                               reactor)
    tree.putChild(b"health", HealthResource(store, monitor, reactor, listening,
                                            lambda: reloadable.current, statuses))
    tree.putChild(b"metrics", MetricsResource(metrics, current))
    site = SmartSite(tree, reactor=reactor, metrics=metrics)
    https = listener_factory(model.https, TLSMemoryBIOFactory(reloadable, False, site),
                             lambda: store.current.proxies, limits, reactor)
    answering = Answering(store, hashing, guard, monitor, advertised, metrics, limits, https,
                          connections, reloadable, acme, http01, dns01)
    return answering


class _WarningsLog:
    """
    Logs the certificates' warnings at start and after a reload that
    changes them (not the same list at every reload).
    """

    def __init__(self) -> None:
        self._shown: list[ConfigProblem] | None = None

    def show(self, problems: list[ConfigProblem]) -> None:
        if problems == self._shown:
            return
        self._shown = problems
        for problem in problems:
            _log.warn("{problem}", problem=str(problem))


def connection_caps(model: Model) -> tuple[int, int]:
    """
    The caps of HTTPS and plain HTTP together: in all, and per client.
    """
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
