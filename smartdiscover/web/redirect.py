"""
The plain-HTTP listener: every request gets a 302 to the https Autodiscover
URL, the redirect probe of MS-OXDISCO 3.1.5.4; the autoconfig paths, which
Thunderbird falls back to over plain HTTP (PROTOCOLS.md 7.1), get a 302 to
the same path over https.

It never asks for, reads or logs credentials (clients leaked passwords to
plain-HTTP Autodiscover hosts in 2021, SECURITY.md 3.1).
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import quote_from_bytes

from twisted.web.resource import Resource
from twisted.web.server import Request

from smartdiscover.config.model import Model
from smartdiscover.config.public import https_origin
from smartdiscover.web.autoconfig import AUTOCONFIG_FILE, AUTOCONFIG_PATHS
from smartdiscover.web.hosts import own_name, served_domain

AUTOCONFIG_ROUTES = frozenset(path + (AUTOCONFIG_FILE,) for path in AUTOCONFIG_PATHS)
# Query bytes kept as they are in a Location; any other (controls, spaces,
# quotes, non-ASCII) is percent-encoded.
QUERY_SAFE = "!$%&'()*+,-./:;=?@_~"


class RedirectToHTTPS(Resource):
    """
    Answers every method and path with 302 to the Autodiscover URL of the
    domain the Host header names (C{<domain>} or C{autodiscover.<domain>}),
    or of the main public host name.  The Host header is never echoed.

    The autoconfig paths (any letter case) go to the same path and query
    over https, on the host the Host header names if it is one of ours
    (L{own_name}), else on the main public host name; always on the public
    HTTPS port.
    """

    isLeaf = True

    def __init__(self, current_model: Callable[[], Model]) -> None:
        super().__init__()
        self._current_model = current_model

    def render(self, request: Request) -> bytes:
        model = self._current_model()
        route = tuple(segment.lower() for segment in request.postpath or ())
        if route in AUTOCONFIG_ROUTES:
            location = _autoconfig_url(model, request, route)
        else:
            domain = served_domain(model, request.getRequestHostname())
            catalogue = model.catalogue if domain is None else model.catalogue_for(domain)
            location = catalogue.autodiscover_url
        request.setResponseCode(302)
        request.setHeader(b"Location", location.encode("ascii"))
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b""


def _autoconfig_url(model: Model, request: Request, route: tuple[bytes, ...]) -> str:
    """
    The https URL of autoconfig C{route}, the client's query kept (it
    carries C{emailaddress}).
    """
    host = own_name(model, request.getRequestHostname()) or model.catalogue.public_hostname
    path = b"/" + b"/".join(route)
    query = (request.uri or b"").partition(b"?")[2]
    url = https_origin(host, model.https.public_port) + path.decode("ascii")
    return f"{url}?{quote_from_bytes(query, safe=QUERY_SAFE)}" if query else url
