"""
Case-insensitive routing: clients send /Autodiscover/Autodiscover.xml,
/autodiscover/autodiscover.xml and everything in between.
"""

from __future__ import annotations

from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource


class CaseInsensitiveResource(Resource):
    """
    A resource whose children are found whatever the letter case of the path.

    Register children in lower case.
    """

    def getChild(self, path: bytes, request: object) -> IResource:
        child = self.children.get(path.lower())
        return child if child is not None else notFound()

    def getChildWithDefault(self, path: bytes, request: object) -> IResource:
        return self.getChild(path, request)

    def render(self, request: object) -> bytes:
        return notFound().render(request)
