"""
The authenticated Outlook Autodiscover resource and the realm that makes it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import IO, Any, Callable, cast

from twisted.cred.portal import IRealm
from twisted.web.resource import IResource
from twisted.web.server import Request
from zope.interface import implementer

from smartdiscover.config.model import Model
from smartdiscover.discovery.answer import AnswerTemplates, answer_autodiscover
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
                 now: Callable[[], datetime],
                 templates: AnswerTemplates | None = None) -> None:
        super().__init__()
        self._principal = principal
        self._model = model
        self._now = now
        self._templates = templates

    def render_POST(self, request: Request) -> bytes:
        # http.Request's "content = None" types it as None; it is the body
        # file once the request is in.
        return self._answer(request, cast(IO[bytes], request.content).read())

    def render_GET(self, request: Request) -> bytes:
        return self._answer(request, None)

    def _answer(self, request: Request, body: bytes | None) -> bytes:
        reply = answer_autodiscover(self._model, self._principal, body, self._now(),
                                    self._templates)
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
    for it, from the model the request arrived with (the login's mind) or,
    without one, the model in force.
    """

    def __init__(self, current_model: Callable[[], Model],
                 make_resource: Callable[[Principal, Model], IResource]) -> None:
        self._current_model = current_model
        self._make_resource = make_resource

    def requestAvatar(self, avatarId: Any, mind: object,
                      *interfaces: Any) -> tuple[Any, IResource, Callable[[], None]]:
        if IResource not in interfaces:
            raise NotImplementedError("only IResource avatars")
        model = mind if isinstance(mind, Model) else self._current_model()
        return IResource, self._make_resource(avatarId, model), lambda: None


class AutodiscoverRealm(ResourceRealm):
    """
    Autodiscover resources, bound to the model the request arrived with.

    The settings templates belong to one model: a request for another
    model starts new ones, and the old model can be freed.
    """

    def __init__(self, current_model: Callable[[], Model],
                 now: Callable[[], datetime] = utc_now) -> None:
        super().__init__(current_model, self._resource)
        self._now = now
        self._templates: tuple[Model, AnswerTemplates] | None = None

    def _resource(self, principal: Principal, model: Model) -> AutodiscoverResource:
        if self._templates is None or self._templates[0] is not model:
            self._templates = (model, AnswerTemplates())
        return AutodiscoverResource(principal, model, self._now, self._templates[1])
