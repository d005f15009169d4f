"""
The unauthenticated Mozilla autoconfig resource.
"""

from __future__ import annotations

from typing import Callable

from twisted.web.server import Request

from smartdiscover.config.address import AddressError, split_address
from smartdiscover.config.model import Model
from smartdiscover.discovery.autoconfig import render_autoconfig
from smartdiscover.web.hosts import served_domain
from smartdiscover.web.methods import MethodsResource
from smartdiscover.web.query import parameter, text

XML_CONTENT_TYPE = b"text/xml; charset=utf-8"
# The file, and the directories clients fetch it from (PROTOCOLS.md 7.1;
# /v1.1/ for Android Nine).
AUTOCONFIG_FILE = b"config-v1.1.xml"
AUTOCONFIG_PATHS = ((b"mail",), (b".well-known", b"autoconfig", b"mail"), (b"v1.1", b"mail"))


class AutoconfigResource(MethodsResource):
    """
    C{GET .../config-v1.1.xml[?emailaddress=ADDRESS]}.

    The address only selects the domain; without one (K-9, KMail, Evolution
    and Delta Chat send none) the Host header does, else the first served
    domain.  Unserved domains get one fixed 404.
    """

    isLeaf = True

    def __init__(self, current_model: Callable[[], Model]) -> None:
        super().__init__()
        self._current_model = current_model

    def render_GET(self, request: Request) -> bytes:
        model = self._current_model()
        try:
            address = text(parameter(request, b"emailaddress"))
        except ValueError:
            return self._plain(request, 400, b"Bad request\n")
        if address:
            address = address.replace(" ", "+")  # an unencoded '+', form-decoded
            try:
                _, domain = split_address(address)
            except AddressError:
                return self._plain(request, 400, b"Bad request\n")
            if not model.serves(domain):
                return self._plain(request, 404, b"Not found\n")
        else:
            domain = served_domain(model, request.getRequestHostname()) or model.domains[0]
        request.setHeader(b"Content-Type", XML_CONTENT_TYPE)
        return render_autoconfig(model.catalogue_for(domain), domain)

    def _plain(self, request: Request, status: int, body: bytes) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return body
