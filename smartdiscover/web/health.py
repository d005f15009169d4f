"""
/health/live, /health/ready and /health: whether the process answers,
whether what it advertises works, and the detail per endpoint.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.web.pages import notFound
from twisted.web.resource import IResource
from twisted.web.server import Request

from smartdiscover.certs.acme.renewal import RenewalStatus
from smartdiscover.certs.report import coverage, describe, describe_renewal
from smartdiscover.certs.selection import CertificateSet
from smartdiscover.config.networks import is_loopback
from smartdiscover.config.model import Model
from smartdiscover.config.store import ConfigStore
from smartdiscover.health.endpoints import advertised, targets
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.health.probes import days_left
from smartdiscover.web.methods import MethodsResource

JSON = b"application/json; charset=utf-8"


def may_read_detail(request: Request, model: Model) -> bool:
    """
    Loopback and the [health] allow-list only: the detail names internal
    hosts and errors.
    """
    host = getattr(request.getClientAddress(), "host", "")
    return is_loopback(host) or host in model.health.allow


def _json(request: Request, status: int, document: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON)
    return json.dumps(document, indent=1, sort_keys=True).encode("utf-8") + b"\n"


def _time(seconds: float | None, clock_now: float) -> str | None:
    """
    A reactor time as an ISO 8601 UTC timestamp.
    """
    if seconds is None:
        return None
    wall = datetime.now(timezone.utc).timestamp() - (clock_now - seconds)
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="seconds")


class LiveResource(MethodsResource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"ok\n"


class ReadyResource(MethodsResource):
    """
    200 when the model is loaded, the listeners are bound and every
    advertised service has an endpoint within the health policy; else 503.
    """

    isLeaf = True

    def __init__(self, store: ConfigStore, monitor: HealthMonitor,
                 listening: Callable[[], bool]) -> None:
        super().__init__()
        self._store = store
        self._monitor = monitor
        self._listening = listening

    def render_GET(self, request: Request) -> bytes:
        problems = [] if self._listening() else ["listeners are not bound"]
        problems += [f"no working endpoint: {name}"
                     for name in self._monitor.unavailable(self._store.current)]
        document: dict[str, Any] = {"ready": not problems,
                                    "generation": self._store.generation}
        if may_read_detail(request, self._store.current):
            document["problems"] = problems
        return _json(request, 503 if problems else 200, document)


class HealthResource(MethodsResource):
    """
    The detail: every advertised endpoint with its state, since when, the
    last error, latency and certificate expiry, the last reload, and the
    certificates served (each one's names and validity, and the served
    names none covers); with C{live} and C{ready} below it.
    """

    def __init__(self, store: ConfigStore, monitor: HealthMonitor, clock: IReactorTime,
                 listening: Callable[[], bool],
                 certificates: Callable[[], CertificateSet] | None = None,
                 renewals: Callable[[], list[RenewalStatus]] | None = None) -> None:
        super().__init__()
        self._store = store
        self._monitor = monitor
        self._clock = clock
        self._certificates = certificates
        self._renewals = renewals
        self._children = {b"live": LiveResource(),
                          b"ready": ReadyResource(store, monitor, listening)}

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        if path == b"":
            return self
        child = self._children.get(path.lower())
        return child if child is not None else notFound()

    def render_GET(self, request: Request) -> bytes:
        model = self._store.current
        if not may_read_detail(request, model):
            return _json(request, 403, {"error": "forbidden"})
        endpoints = endpoint_states(model, self._monitor, self._clock.seconds())
        document: dict[str, Any] = {}
        if self._certificates is not None:
            document.update(_certificates(self._certificates(), model))
        if self._renewals is not None:
            # In the process that orders: each ACME certificate's renewal.
            document["acme"] = [describe_renewal(s) for s in self._renewals()]
        return _json(request, 200, {
            **document,
            "generation": self._store.generation,
            "last_reload_ok": self._store.last_error is None,
            "last_error": self._store.last_error,
            "advertise_unhealthy": model.health.advertise_unhealthy,
            "probes": model.health.probes,  # false: nothing probed, endpoints empty
            "rounds": self._monitor.rounds,
            "endpoints": endpoints,
        })



def endpoint_states(model: Model, monitor: HealthMonitor, now: float) -> list[dict[str, Any]]:
    """
    Every probed endpoint: its state, since when, the last check, latency,
    error and certificate expiry, and whether answers advertise it.
    """
    shown = advertised(model, monitor.down)
    advertised_keys = set(targets(shown))
    endpoints = []
    for key, status in sorted(monitor.statuses.items()):
        expires = status.certificate_expires
        endpoints.append({
            "endpoint": status.target.url or f"{status.target.protocol}://"
                        f"{status.target.host}:{status.target.port}",
            "security": status.target.security.value,
            "state": {None: "unknown", True: "ok", False: "failing"}[status.ok],
            "since": _time(status.since, now),
            "checked": _time(status.checked, now),
            "latency_ms": None if status.latency is None else round(status.latency * 1000, 1),
            "error": status.error,
            "detail": status.detail,
            "certificate_expires": expires.isoformat() if expires else None,
            "certificate_days_left": None if expires is None else round(
                days_left(expires, datetime.now(timezone.utc)), 1),
            "advertised": key in advertised_keys,
        })
    return endpoints


def _certificates(certificates: CertificateSet, model: Model) -> dict[str, Any]:
    """
    C{certificates}: each one served (the default first, then in order of
    precedence) with its names and validity; C{served_names}: every name
    clients reach this service by, with the certificate that serves it
    (null: none covers it); C{uncovered_names}: those without one.
    """
    now = datetime.now(timezone.utc)
    shown = [certificates.default, *certificates.certificates]
    names = coverage(certificates, model)
    return {
        "certificates": [dict(describe(c, now), default=c is certificates.default)
                         for c in shown],
        "served_names": [{"name": n.name, "why": n.why,
                          "certificate": n.certificate.label if n.certificate else None}
                         for n in names],
        "uncovered_names": [n.name for n in names if n.certificate is None],
    }
