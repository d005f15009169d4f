"""
The authenticated Apple configuration profile resource.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger
from twisted.web.server import Request

from smartdiscover.config.model import Model
from smartdiscover.discovery.mobileconfig import render_profile
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.signing import Signer
from smartdiscover.web.autodiscover import ResourceRealm
from smartdiscover.web.methods import MethodsResource

PROFILE_CONTENT_TYPE = b"application/x-apple-aspen-config"


class MobileconfigResource(MethodsResource):
    """
    The principal's profile, signed with the certificate that serves the
    principal's domain when its key can sign (RSA or ECDSA), so devices
    show it as verified.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, principal: Principal, model: Model, signer: Signer | None) -> None:
        super().__init__()
        self._principal = principal
        self._model = model
        self._signer = signer

    def render_GET(self, request: Request) -> bytes:
        profile = render_profile(self._model.catalogue_for(self._principal.domain),
                                 self._principal)
        if self._signer is not None:
            profile = self._signer.sign(profile)
        request.setHeader(b"Content-Type", PROFILE_CONTENT_TYPE)
        name = self._principal.domain.encode("ascii")
        request.setHeader(b"Content-Disposition",
                          b'attachment; filename="' + name + b'.mobileconfig"')
        return profile


class MobileconfigRealm(ResourceRealm):
    """
    @param signer_for_domain: the signer in force for a domain's profiles
        (that of the certificate serving the domain's names), asked for on
        every request, so a reload takes effect at once.
    """

    def __init__(self, current_model: Callable[[], Model],
                 signer_for_domain: Callable[[str], Signer | None]) -> None:
        super().__init__(current_model, lambda principal, model: MobileconfigResource(
            principal, model, signer_for_domain(principal.domain)))
