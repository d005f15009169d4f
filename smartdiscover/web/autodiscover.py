"""
The authenticated Outlook Autodiscover resource and the realm that makes it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from twisted.cred.portal import IRealm
from twisted.web.resource import IResource
from twisted.web.server import Request
from zope.interface import implementer

from smartdiscover.config.model import Model
from smartdiscover.discovery.answer import answer_autodiscover
from smartdiscover.config.principal import Principal
from smartdiscover.web.methods import MethodsResource

XML_CONTENT_TYPE = b"text/xml; charset=utf-8"


class AutodiscoverResource(MethodsResource):
    """
    Answers POST (and GET, which some mobile apps send) for one principal.
    """

    isLeaf = True
    allowedMethods = (b"GET", b"HEAD", b"POST")

    def __init__(self, principal: Principal, model: Model,
                 now: Callable[[], datetime]) -> None:
        super().__init__()
        self._principal = principal
        self._model = model
        self._now = now

    def render_POST(self, request: Request) -> bytes:
        return self._answer(request, request.content.read())

    def render_GET(self, request: Request) -> bytes:
        return self._answer(request, None)

    def _answer(self, request: Request, body: bytes | None) -> bytes:
        reply = answer_autodiscover(self._model, self._principal, body, self._now())
        if reply.location is not None:
            request.redirect(reply.location.encode("ascii"))
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b""
        request.setHeader(b"Content-Type", XML_CONTENT_TYPE)
        return reply.body


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@implementer(IRealm)
class ResourceRealm:
    """
    Gives each authenticated principal the resource C{make_resource} builds
    for it.
    """

    def __init__(self, make_resource: Callable[[Principal], IResource]) -> None:
        self._make_resource = make_resource

    def requestAvatar(self, avatarId: Any, mind: object,
                      *interfaces: Any) -> tuple[Any, IResource, Callable[[], None]]:
        if IResource not in interfaces:
            raise NotImplementedError("only IResource avatars")
        return IResource, self._make_resource(avatarId), lambda: None


class AutodiscoverRealm(ResourceRealm):
    """
    Autodiscover resources, bound to the model in force when the request
    was authenticated.
    """

    def __init__(self, current_model: Callable[[], Model],
                 now: Callable[[], datetime] = utc_now) -> None:
        super().__init__(lambda principal: AutodiscoverResource(principal, current_model(), now))
