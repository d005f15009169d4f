"""
The HTTPS resource tree: every route, matched in any letter case.
"""

from __future__ import annotations

from typing import Callable

from twisted.cred.portal import Portal

from smartdiscover.config.model import Model
from smartdiscover.web.basic_auth import BasicAuthResource
from smartdiscover.web.routing import CaseInsensitiveResource
from smartdiscover.web.v2 import AutodiscoverJSONResource


def build_resource_tree(portal: Portal, current_model: Callable[[], Model],
                        realm: str) -> CaseInsensitiveResource:
    """
    C{/autodiscover/autodiscover.xml} (POX and mobilesync, behind Basic
    authentication) and C{/autodiscover/autodiscover.json} (v2, open).
    """
    root = CaseInsensitiveResource()
    autodiscover = CaseInsensitiveResource()
    root.putChild(b"autodiscover", autodiscover)
    autodiscover.putChild(b"autodiscover.xml", BasicAuthResource(portal, realm))
    autodiscover.putChild(b"autodiscover.json", AutodiscoverJSONResource(current_model))
    return root
