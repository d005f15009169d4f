"""
The unauthenticated Autodiscover v2 resource:
C{/autodiscover/autodiscover.json?Email=..&Protocol=..} and
C{/autodiscover/autodiscover.json/v1.0/ADDRESS?Protocol=..}.
"""

from __future__ import annotations

from typing import Callable

from twisted.web.server import Request

from smartdiscover.config.model import Model
from smartdiscover.discovery.v2 import JSONReply, answer_v2
from smartdiscover.web.methods import MethodsResource
from smartdiscover.web.query import parameter, text

JSON_CONTENT_TYPE = b"application/json; charset=utf-8"
_BAD_REQUEST = JSONReply(400, b'{"ErrorCode": "InvalidRequest", '
                              b'"ErrorMessage": "The request is not valid."}')



class AutodiscoverJSONResource(MethodsResource):
    isLeaf = True

    def __init__(self, current_model: Callable[[], Model]) -> None:
        super().__init__()
        self._current_model = current_model

    def render_GET(self, request: Request) -> bytes:
        reply = self._reply(request)
        request.setResponseCode(reply.status)
        request.setHeader(b"Content-Type", JSON_CONTENT_TYPE)
        return reply.body

    def _reply(self, request: Request) -> JSONReply:
        # Site.getResourceFor sets postpath before any resource renders.
        path = [segment for segment in request.postpath or () if segment]
        try:
            if not path:
                email = text(parameter(request, b"email"))
            elif len(path) == 2 and path[0].lower() == b"v1.0":
                email = text(path[1])
            else:
                return _BAD_REQUEST
            protocol = text(parameter(request, b"protocol"))
        except ValueError:  # also UnicodeDecodeError
            return _BAD_REQUEST
        return answer_v2(self._current_model(), email, protocol)
