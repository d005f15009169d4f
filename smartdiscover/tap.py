"""
C{twistd smartdiscover}: options, and the service tree of the first process.

This is the only module that knows every part of SmartDiscover; it builds
nothing itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IProtocolFactory, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import Resource

from smartdiscover.admin.service import console_factory
from smartdiscover.answering import Answering, IAnsweringReactor, build_answering
from smartdiscover.certs.acme.served import load_served_certificates
from smartdiscover.certs.selection import CertificateSet
from smartdiscover.config import ConfigError, load
from smartdiscover.config.model import Model
from smartdiscover.config.restart import unapplied
from smartdiscover.config.sighup import Reload, ReloadOnSignal
from smartdiscover.dns.service import IResponderReactor, responder
from smartdiscover.health.endpoints import advertised
from smartdiscover.metrics import dns_metrics
from smartdiscover.systemd import INotifierReactor, SystemdNotifier
from smartdiscover.web.devcert import ensure_development_certificate
from smartdiscover.web.listeners import any_address, listen_description, listener_factory
from smartdiscover.web.acme_challenge import ChallengeOrRedirect
from smartdiscover.web.redirect import RedirectToHTTPS
from smartdiscover.web.site import SmartSite
from smartdiscover.workers.pool import DEFAULT_BACKLOG, IPoolReactor, WorkerPool

_log = Logger(namespace="smartdiscover")


class IServiceReactor(IAnsweringReactor, IPoolReactor, INotifierReactor, IResponderReactor):
    """
    What the first process's service tree needs of the reactor: the
    answering stack's, the worker pool's, systemd's and DNS's.

    zope.interface has no intersection type, so this names one, as
    Twisted's own C{IDistTrialReactor} does; a reactor need not declare it.
    """


class Options(usage.Options):
    """
    @ivar model: the configuration, loaded and checked by L{postOptions}.
    @ivar certificates: its certificates ([server] https, [certificates]),
        loaded likewise.
    """

    synopsis = "[options]"
    longdesc = ("Serve autodiscover and autoconfig answers over HTTPS, as "
                "described by one INI file; SIGHUP reloads it.")
    optParameters = [
        ["config", "c", "etc/sd.ini", "The configuration file."],
    ]
    path: Path
    model: Model
    certificates: CertificateSet

    def postOptions(self) -> None:
        self.path = Path(self["config"]).absolute()
        if not self.path.is_file():
            raise usage.UsageError(f"no configuration file at {self['config']}")
        try:
            self.model = load(self.path)
        except ConfigError as e:
            raise usage.UsageError(f"invalid configuration\n{e}") from None
        ensure_development_certificate(self.model)
        try:
            self.certificates = load_served_certificates(self.model)
        except ConfigError as e:
            raise usage.UsageError(f"unusable certificate\n{e}") from None


def makeService(options: Options, reactor: IServiceReactor | None = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as installed

        # Typed as a few common interfaces only; the installed (POSIX)
        # reactor provides all of IServiceReactor's.
        reactor = cast(IServiceReactor, installed)
    model = options.model
    top = MultiService()
    answering = build_answering(options.path, model, options.certificates, reactor,
                                lambda: bool(top.running), orders=True)
    store = answering.store
    notifier = SystemdNotifier(
        reactor, status=lambda: f"serving configuration generation {store.generation}")
    pool = None
    if model.workers > 1:
        pool = WorkerPool(model.https.interface or any_address(), model.https.port,
                          model.https.backlog or DEFAULT_BACKLOG, model.workers,
                          answering.https, options.path, reactor, guard=answering.guard)
        # A certificate ACME stored: the workers read it as at a reload.
        answering.certificates_changed.append(pool.reload)
    # First: SIGHUP must never find the default action (death) once a
    # listener is bound.
    ReloadOnSignal(Reload(store, notifier, pool), reactor).setServiceParent(top)
    answering.hashing.setServiceParent(top)
    https = pool or strports.service(listen_description(model.https), answering.https,
                                     reactor=reactor)
    https.setServiceParent(top)
    store.subscribe(lambda new: unapplied(model, new), _warn_each)
    if model.http is not None:
        strports.service(listen_description(model.http), _redirects(answering, reactor),
                         reactor=reactor).setServiceParent(top)
    if model.dns is not None:
        monitor = answering.monitor
        dns, zones = responder(store, lambda new: advertised(new, monitor.down),
                               monitor.on_change, reactor, answering.acme_dns01)
        answering.metrics.add_source(dns_metrics(zones))
        answering.connections["dns"] = zones.tcp
        dns.setServiceParent(top)
    answering.monitor.setServiceParent(top)
    if model.admin is not None:
        assert answering.tls is not None
        console, _, _ = console_factory(
            store, answering.monitor, answering.hashing.run,
            lambda f, *a: deferToThreadPool(reactor, reactor.getThreadPool(), f, *a),
            answering.tls, answering.limits, reactor)
        strports.service(listen_description(model.admin.listen), console,
                         reactor=reactor).setServiceParent(top)
    if answering.acme is not None:
        # After the listeners that answer its challenges.
        answering.acme.setServiceParent(top)
    # Last: READY=1 once every listener is bound; stopped first, so
    # STOPPING=1 goes out before the listeners close.
    notifier.setServiceParent(top)
    return top


def _warn_each(messages: list[str]) -> None:
    """
    One warning per reloaded setting that applies only at a restart.
    """
    for message in messages:
        _log.warn("{message}", message=message)


def _redirects(answering: Answering, reactor: IReactorTime) -> IProtocolFactory:
    """
    The plain-HTTP listener's factory, within the same connection limits.
    """
    model = answering.store.current
    assert model.http is not None
    resource: Resource = RedirectToHTTPS(answering.advertised)
    if answering.acme_http01 is not None:
        resource = ChallengeOrRedirect(answering.acme_http01, resource)
    site = SmartSite(resource, reactor=reactor)
    return listener_factory(model.http, site, lambda: answering.store.current.proxies,
                            answering.limits, reactor)
