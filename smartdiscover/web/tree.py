"""
The HTTPS resource tree: every route, matched in any letter case.
"""

from __future__ import annotations

from typing import Callable

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm, Portal
from twisted.internet.interfaces import IReactorTime

from smartdiscover.config.model import Model
from smartdiscover.discovery.signing import Signer
from smartdiscover.web.autoconfig import AUTOCONFIG_FILE, AUTOCONFIG_PATHS, AutoconfigResource
from smartdiscover.web.autodiscover import AutodiscoverRealm
from smartdiscover.web.basic_auth import BasicAuthResource
from smartdiscover.web.mobileconfig import MobileconfigRealm
from smartdiscover.web.routing import CaseInsensitiveResource
from smartdiscover.web.v2 import AutodiscoverJSONResource
from smartdiscover.web.wellknown import DAVRedirect


def build_resource_tree(checker: ICredentialsChecker, current_model: Callable[[], Model],
                        signer_for_domain: Callable[[str], Signer | None], realm: str,
                        clock: IReactorTime | None = None) -> CaseInsensitiveResource:
    """
    Behind Basic authentication: C{/autodiscover/autodiscover.xml} (POX and
    mobilesync) and C{/mobileconfig}.  Open: C{/autodiscover/autodiscover.json}
    (v2), the autoconfig paths and the well-known DAV redirects.

    C{signer_for_domain(domain)} signs that domain's profiles (L{None}:
    unsigned).  With a C{clock}, failed logins take the configured failure
    delay.
    """
    def guarded(avatars: IRealm) -> BasicAuthResource:
        return BasicAuthResource(Portal(avatars, [checker]), realm,
                                 lambda: current_model().auth.guard.failure_delay, clock,
                                 current_model=current_model,
                                 # the guard counts unreadable credentials too
                                 on_malformed=getattr(checker, "malformed", None))

    root = CaseInsensitiveResource()
    autodiscover = _branch(root, (b"autodiscover",))
    autodiscover.putChild(b"autodiscover.xml", guarded(AutodiscoverRealm(current_model)))
    autodiscover.putChild(b"autodiscover.json", AutodiscoverJSONResource(current_model))
    root.putChild(b"mobileconfig", guarded(MobileconfigRealm(current_model,
                                                             signer_for_domain)))
    autoconfig = AutoconfigResource(current_model)
    for path in AUTOCONFIG_PATHS:
        _branch(root, path).putChild(AUTOCONFIG_FILE, autoconfig)
    well_known = _branch(root, (b".well-known",))
    for key in ("caldav", "carddav"):
        well_known.putChild(key.encode("ascii"), DAVRedirect(current_model, key))
    return root


def _branch(root: CaseInsensitiveResource, path: tuple[bytes, ...]) -> CaseInsensitiveResource:
    """
    The resource at C{path} under C{root}, created on the way as needed.
    """
    node = root
    for segment in path:
        found = node.children.get(segment)
        if found is None:
            found = CaseInsensitiveResource()
            node.putChild(segment, found)
        node = found
    return node
