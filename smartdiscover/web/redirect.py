"""
The plain-HTTP listener: every request gets a 302 to the https Autodiscover
URL, the redirect probe of MS-OXDISCO 3.1.5.4.

It never asks for, reads or logs credentials (clients leaked passwords to
plain-HTTP Autodiscover hosts in 2021, SECURITY.md 3.1).
"""

from __future__ import annotations

from typing import Callable

from twisted.web.resource import Resource
from twisted.web.server import Request

from smartdiscover.config.model import Model
from smartdiscover.web.hosts import served_domain


class RedirectToHTTPS(Resource):
    """
    Answers every method and path with 302 to the Autodiscover URL of the
    domain the Host header names (C{<domain>} or C{autodiscover.<domain>}),
    or of the main public host name.  The Host header is never echoed.
    """

    isLeaf = True

    def __init__(self, current_model: Callable[[], Model]) -> None:
        super().__init__()
        self._current_model = current_model

    def render(self, request: Request) -> bytes:
        model = self._current_model()
        domain = served_domain(model, request.getRequestHostname())
        catalogue = model.catalogue if domain is None else model.catalogue_for(domain)
        request.setResponseCode(302)
        request.setHeader(b"Location", catalogue.autodiscover_url.encode("ascii"))
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b""

