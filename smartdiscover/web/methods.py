"""
A resource base that answers 405 to every method it does not render.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request


class MethodsResource(Resource):
    """
    twisted.web answers 405 only for GET, HEAD and POST and 501 for any
    other method; this answers 405 with C{Allow} for every method outside
    C{allowedMethods}.
    """

    allowedMethods: tuple[bytes, ...] = (b"GET", b"HEAD")

    def render(self, request: Request) -> bytes:
        if request.method not in self.allowedMethods:
            request.setResponseCode(405)
            request.setHeader(b"Allow", b", ".join(self.allowedMethods))
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"Method not allowed\n"
        return super().render(request)
