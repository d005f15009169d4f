"""
Mozilla autoconfig, clientConfig 1.1 (PROTOCOLS.md section 7), read by
Thunderbird, Thunderbird for Android (K-9), KMail, Evolution and Delta Chat.

Served without authentication, so the document depends on the domain only:
user names are the C{%EMAILADDRESS%} placeholder, which clients fill in, and
nothing tells whether an address exists.
"""

from __future__ import annotations

from lxml import etree

from smartdiscover.config.model import Catalogue, Security
from smartdiscover.discovery.document import child, to_bytes

SOCKET_TYPES = {Security.SSL: "SSL", Security.STARTTLS: "STARTTLS", Security.NONE: "plain"}
USERNAME = "%EMAILADDRESS%"


def render_autoconfig(catalogue: Catalogue, domain: str) -> bytes:
    """
    The clientConfig for every address of C{domain}.
    """
    root = etree.Element("clientConfig", version="1.1")
    provider = child(root, "emailProvider")
    provider.set("id", domain)  # a host name: Android clients reject anything else
    child(provider, "domain", domain)
    child(provider, "displayName", domain)
    child(provider, "displayShortName", domain.split(".")[0])
    for name in ("imap", "pop3"):  # the first incomingServer is the preferred one
        for service in catalogue.services_named(name):
            server = child(provider, "incomingServer")
            server.set("type", name)
            _server(server, service.host, service.port, service.security)
    for smtp in catalogue.services_named("smtp"):
        server = child(provider, "outgoingServer")
        server.set("type", "smtp")
        _server(server, smtp.host, smtp.port, smtp.security)
    for tag, kind, key in (("addressBook", "carddav", "carddav"),
                           ("calendar", "caldav", "caldav")):
        url = catalogue.urls.get(key)
        if url is not None:
            element = child(root, tag)
            element.set("type", kind)
            child(element, "username", USERNAME)
            child(element, "authentication", "http-basic")
            child(element, "serverURL", url)
    webclient = catalogue.urls.get("webclient")
    if webclient is not None:
        child(child(root, "webMail"), "loginPage").set("url", webclient)
    return to_bytes(root)


def _server(server: etree._Element, host: str, port: int, security: Security) -> None:
    child(server, "hostname", host)
    child(server, "port", str(port))
    child(server, "socketType", SOCKET_TYPES[security])
    child(server, "authentication", "password-cleartext")
    child(server, "username", USERNAME)
