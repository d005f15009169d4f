"""
GET /metrics: Prometheus text format, for loopback and the allow-list.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST
from twisted.web.server import Request

from smartdiscover.config.model import Model
from smartdiscover.metrics import Metrics
from smartdiscover.web.health import may_read_detail
from smartdiscover.web.methods import MethodsResource


class MetricsResource(MethodsResource):
    isLeaf = True

    def __init__(self, metrics: Metrics, current_model: Callable[[], Model]) -> None:
        super().__init__()
        self._metrics = metrics
        self._current_model = current_model

    def render_GET(self, request: Request) -> bytes:
        if not may_read_detail(request, self._current_model()):
            request.setResponseCode(403)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"Forbidden\n"
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return self._metrics.text()
