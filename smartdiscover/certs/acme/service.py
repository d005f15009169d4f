"""
ACME in the process that orders: the client and the renewer, rebuilt when
a reload changes what C{[acme]} asks for, and the status /health and
/metrics show.

Who orders (docs/certificates.md, "ACME"): the first process of the one
instance whose C{[acme] order} is on (the default).  Workers and other
instances serve what it stores (L{smartdiscover.certs.acme.served}).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from smartdiscover.certs.acme.client import AcmeClient, AcmeSettings, Responders
from smartdiscover.certs.acme.renewal import ManagedCertificate, Renewer, RenewalStatus
from smartdiscover.certs.acme.served import acme_settings, managed_certificates
from smartdiscover.certs.acme.store import AcmeStore, StoredCertificate
from smartdiscover.config.model import Model
from smartdiscover.config.store import RunInThread

_log = Logger(namespace="smartdiscover.certs.acme")


class AcmeService(Service):
    """
    Keeps the certificates of C{[acme]} ordered and renewed.

    @ivar error: why nothing can be ordered at all (the state directory
        cannot be used), or L{None}.
    """

    def __init__(self, model: Model, responders: Responders, reactor: IReactorTime,
                 run_in_thread: RunInThread,
                 issued: Callable[[StoredCertificate], None]) -> None:
        self._responders = responders
        self._reactor = reactor
        self._run_in_thread = run_in_thread
        self._issued = issued
        self._plan = _plan(model)
        self._renewer: Renewer | None = None
        self.error: str | None = None

    def statuses(self) -> list[RenewalStatus]:
        """
        One status per certificate kept, in configuration order.
        """
        if self._renewer is not None:
            return self._renewer.statuses()
        return [RenewalStatus(c.label, c.names, last_error=self.error)
                for c in (self._plan[2] if self._plan is not None else ())]

    def startService(self) -> None:
        super().startService()
        self._start()

    def stopService(self) -> Deferred[None] | None:
        self._stop()
        return super().stopService()

    def reloaded(self, model: Model) -> None:
        """
        A new configuration is in force: start over if it changes what is
        ordered, from where or how (stored certificates stay in use).
        """
        plan = _plan(model)
        if plan == self._plan:
            return
        self._plan = plan
        if self.running:
            self._stop()
            self._start()

    def _start(self) -> None:
        if self._plan is None:
            return
        settings, state, certificates = self._plan
        store = AcmeStore(state)
        self.error = None

        def opened(_: object) -> None:
            if not self.running or self._plan != (settings, state, certificates):
                return
            client = AcmeClient(settings, store, self._responders, self._reactor,
                                self._run_in_thread)
            self._renewer = Renewer(certificates, client, store, self._reactor,
                                    self._run_in_thread, self._issued)
            self._renewer.startService()

        def unusable(failure: Failure) -> None:
            self.error = str(failure.value)
            _log.error("ACME orders nothing: {reason}", reason=self.error)
        self._run_in_thread(store.open).addCallbacks(opened, unusable)

    def _stop(self) -> None:
        if self._renewer is not None:
            self._renewer.stopService()
            self._renewer = None


Plan = tuple[AcmeSettings, Path, tuple[ManagedCertificate, ...]]


def _plan(model: Model) -> Plan | None:
    if model.acme is None or not model.acme.order:
        return None
    return (acme_settings(model.acme), model.acme.state,
            tuple(managed_certificates(model)))
