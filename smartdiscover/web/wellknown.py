"""
C{/.well-known/caldav} and C{/.well-known/carddav} (RFC 6764 section 5).
"""

from __future__ import annotations

from typing import Callable

from twisted.web.resource import Resource
from twisted.web.server import Request

from smartdiscover.config.model import Model
from smartdiscover.web.hosts import served_domain


class DAVRedirect(Resource):
    """
    A 301 to the configured context URL, for any method (clients also
    PROPFIND the well-known URI); 404 when the service is not offered.
    """

    isLeaf = True

    def __init__(self, current_model: Callable[[], Model], key: str) -> None:
        super().__init__()
        self._current_model = current_model
        self._key = key

    def render(self, request: Request) -> bytes:
        model = self._current_model()
        domain = served_domain(model, request.getRequestHostname())
        catalogue = model.catalogue if domain is None else model.catalogue_for(domain)
        url = catalogue.urls.get(self._key)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        if url is None:
            request.setResponseCode(404)
            return b"Not found\n"
        request.setResponseCode(301)
        request.setHeader(b"Location", url.encode("ascii"))
        return b""
