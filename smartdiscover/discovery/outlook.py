"""
Outlook POX Autodiscover answers (MS-OXDSCLI; PROTOCOLS.md sections 2.4-2.10).
"""

from __future__ import annotations

import zlib
from datetime import datetime

from lxml import etree

from smartdiscover.config.model import Catalogue, Security, SocketService
from smartdiscover.discovery.document import child, to_bytes
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.request import OUTLOOK_RESPONSE
from smartdiscover.discovery.splice import UserTemplates

RESPONSE_2006 = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"

# Standard POX Types, in the order Outlook should consider them.
STANDARD_TYPES = (("imap", "IMAP"), ("pop3", "POP3"), ("smtp", "SMTP"))

# SmartDiscover's extension Protocols (docs/pox-extensions.md), after the
# standard ones: Type = service tag, Server = host or absolute URL.
EXTENSION_SOCKET_TYPES = (("xmpp", "XMPP"), ("sip", "SIP"))
EXTENSION_URL_TYPES = (
    ("activesync", "ACTIVESYNC"),
    ("syncml", "SYNCML"),
    ("webdav", "WEBDAV"),
    ("caldav", "CALDAV"),
    ("carddav", "CARDDAV"),
    ("freebusy", "FREEBUSY"),
    ("ical", "ICAL"),
    ("webadmin", "WEBADMIN"),
    ("install", "INSTALL"),
    ("antispam", "ANTISPAM"),
    ("sms", "SMS"),
    ("teamchat", "TEAMCHAT"),
    ("collaboration", "COLLABORATION"),
)

ERROR_MESSAGES = {
    500: "The e-mail address cannot be found.",
    600: "Invalid Request",
    601: "Provider is not available",
    603: "Internal Server Error",
}

# SSL/Encryption per security (SPA and SSL default to "on" when omitted,
# so both are always written).
_ENCRYPTION = {
    Security.SSL: ("on", "SSL"),
    Security.STARTTLS: ("on", "TLS"),
    Security.NONE: ("off", "None"),
}


def _response() -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{RESPONSE_2006}}}Autodiscover", nsmap={None: RESPONSE_2006})
    response = etree.SubElement(root, f"{{{OUTLOOK_RESPONSE}}}Response",
                                nsmap={None: OUTLOOK_RESPONSE})
    return root, response


def render_settings(catalogue: Catalogue, principal: Principal,
                    extensions: bool = True, templates: UserTemplates | None = None) -> bytes:
    """
    The settings document: User, then an Account with one Protocol per
    offered service, standard Types first, then (with C{extensions}) every
    other service.  With C{templates} (which the caller keeps as long as
    the catalogue is in force), built once per catalogue and filled in per
    user.
    """
    if templates is None:
        return _render_settings(catalogue, principal, extensions)
    return templates.render((id(catalogue), extensions), catalogue, principal,
                            lambda user: _render_settings(catalogue, user, extensions))


def _render_settings(catalogue: Catalogue, principal: Principal, extensions: bool) -> bytes:
    ttl_hours = catalogue.ttl_hours
    root, response = _response()
    user = child(response, "User")
    child(user, "DisplayName", principal.display_name or principal.address)
    child(user, "AutoDiscoverSMTPAddress", principal.address)
    account = child(response, "Account")
    child(account, "AccountType", "email")
    child(account, "Action", "settings")
    for name, pox_type in STANDARD_TYPES:
        for service in catalogue.services_named(name):  # in order of preference
            _socket_protocol(account, pox_type, service, principal, ttl_hours)
    ews = catalogue.urls.get("ews")
    if ews is not None:
        protocol = child(account, "Protocol")
        child(protocol, "Type", "EXPR")
        child(protocol, "EwsUrl", ews)  # exchangelib reads this one
        child(protocol, "ASUrl", ews)  # evolution-ews reads this one
        child(protocol, "AuthPackage", "basic")
        child(protocol, "TTL", str(ttl_hours))
    webclient = catalogue.urls.get("webclient")
    if webclient is not None:
        protocol = child(account, "Protocol")
        child(protocol, "Type", "WEB")
        external = child(protocol, "External")
        owa = child(external, "OWAUrl", webclient)
        owa.set("AuthenticationMethod", "Basic, Fba")
    if extensions:
        for name, pox_type in EXTENSION_SOCKET_TYPES:
            for service in catalogue.services_named(name):
                _socket_protocol(account, pox_type, service, principal, ttl_hours)
        for name, pox_type in EXTENSION_URL_TYPES:
            url = catalogue.urls.get(name)
            if url is not None:
                protocol = child(account, "Protocol")
                child(protocol, "Type", pox_type)
                child(protocol, "Server", url)
                child(protocol, "LoginName", principal.address)
                child(protocol, "AuthRequired", "on")
                child(protocol, "TTL", str(ttl_hours))
    return to_bytes(root)


def render_redirect_addr(address: str) -> bytes:
    """
    Action redirectAddr: the client restarts discovery with C{address}.
    """
    root, response = _response()
    account = child(response, "Account")
    child(account, "AccountType", "email")
    child(account, "Action", "redirectAddr")
    child(account, "RedirectAddr", address)
    return to_bytes(root)


def render_redirect_url(url: str) -> bytes:
    """
    Action redirectUrl: the client POSTs to C{url} next.

    Clients disagree on the element's spelling (PROTOCOLS.md 2.6):
    MS-OXDSCLI and evolution-ews read C{RedirectUrl}, exchangelib only
    C{RedirectURL}; both are written, with the same URL.
    """
    root, response = _response()
    account = child(response, "Account")
    child(account, "AccountType", "email")
    child(account, "Action", "redirectUrl")
    child(account, "RedirectUrl", url)
    child(account, "RedirectURL", url)
    return to_bytes(root)


def _socket_protocol(account: etree._Element, pox_type: str, service: SocketService,
                     principal: Principal, ttl_hours: int) -> None:
    ssl, encryption = _ENCRYPTION[service.security]
    protocol = child(account, "Protocol")
    child(protocol, "Type", pox_type)
    child(protocol, "Server", service.host)
    child(protocol, "Port", str(service.port))
    child(protocol, "LoginName", principal.address)
    child(protocol, "DomainRequired", "off")
    child(protocol, "SPA", "off")
    child(protocol, "SSL", ssl)
    child(protocol, "Encryption", encryption)
    child(protocol, "AuthRequired", "on")
    if pox_type == "SMTP":
        child(protocol, "UsePOPAuth", "on")
        child(protocol, "SMTPLast", "off")
    child(protocol, "TTL", str(ttl_hours))


def render_error(code: int, server_name: str, now: datetime) -> bytes:
    """
    An Error document the way Exchange sends it: a 2006-namespace Response
    directly around Error (exchangelib crashes on an Error in a 2006a
    Response).
    """
    root = etree.Element(f"{{{RESPONSE_2006}}}Autodiscover", nsmap={None: RESPONSE_2006})
    add_error(child(root, "Response"), code, server_name, now)
    return to_bytes(root)


def add_error(response: etree._Element, code: int, server_name: str, now: datetime) -> None:
    """
    Append an Error with Exchange's Time and Id attributes to C{response}.
    """
    error = child(response, "Error")
    error.set("Time", now.strftime("%H:%M:%S.%f") + "0")
    error.set("Id", str(zlib.crc32(server_name.encode("utf-8"))))
    child(error, "ErrorCode", str(code))
    child(error, "Message", ERROR_MESSAGES.get(code, "Invalid Request"))
    child(error, "DebugData")
