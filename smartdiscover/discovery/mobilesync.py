"""
ActiveSync Autodiscover answers, the "mobilesync" schema (MS-ASCMD
2.2.1.1; PROTOCOLS.md section 4).
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from smartdiscover.discovery.document import child, to_bytes
from smartdiscover.discovery.outlook import RESPONSE_2006, add_error
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.request import MOBILESYNC_RESPONSE
from smartdiscover.discovery.splice import UserTemplates

CULTURE = "en:us"  # sic: MS-ASCMD writes a colon


def _response() -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{RESPONSE_2006}}}Autodiscover", nsmap={None: RESPONSE_2006})
    response = etree.SubElement(root, f"{{{MOBILESYNC_RESPONSE}}}Response",
                                nsmap={None: MOBILESYNC_RESPONSE})
    return root, response


def _user(response: etree._Element, principal: Principal) -> None:
    child(response, "Culture", CULTURE)
    user = child(response, "User")
    child(user, "DisplayName", principal.display_name or principal.address)
    child(user, "EMailAddress", principal.address)


def render_settings(activesync_url: str, principal: Principal,
                    templates: UserTemplates | None = None) -> bytes:
    """
    Action/Settings/Server of Type MobileSync: the URL clients sync with.
    With C{templates}, built once per URL and filled in per user.
    """
    if templates is None:
        return _render_settings(activesync_url, principal)
    return templates.render(activesync_url, activesync_url, principal,
                            lambda user: _render_settings(activesync_url, user))


def _render_settings(activesync_url: str, principal: Principal) -> bytes:
    root, response = _response()
    _user(response, principal)
    settings = child(child(response, "Action"), "Settings")
    server = child(settings, "Server")
    child(server, "Type", "MobileSync")
    child(server, "Url", activesync_url)
    child(server, "Name", activesync_url)
    return to_bytes(root)


def render_redirect(principal: Principal, address: str) -> bytes:
    """
    Action/Redirect: the client runs Autodiscover again for C{address}'s domain.
    """
    root, response = _response()
    _user(response, principal)
    child(child(response, "Action"), "Redirect", address)
    return to_bytes(root)


def render_action_error(principal: Principal, message: str) -> bytes:
    """
    Action/Error with Status 2, the protocol error of MS-ASCMD 4.2.2.
    """
    root, response = _response()
    _user(response, principal)
    error = child(child(response, "Action"), "Error")
    child(error, "Status", "2")
    child(error, "Message", message)
    child(error, "DebugData", "MailUser")
    return to_bytes(root)


def render_error(code: int, server_name: str, now: datetime) -> bytes:
    """
    A mobilesync Response around Error with ErrorCode 600 (invalid request)
    or 601 (no provider for the requested schema), as in MS-ASCMD's example.
    """
    root, response = _response()
    add_error(response, code, server_name, now)
    return to_bytes(root)
