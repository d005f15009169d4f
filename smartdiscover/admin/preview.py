"""
What a client gets for an address: every answer rendered by the same
functions the HTTPS and DNS listeners use, from the model clients are
told about (health may leave failing endpoints out), without the user's
password.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from twisted.names import dns

from smartdiscover.config.address import AddressError, address_key, split_address
from smartdiscover.config.model import Model
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.answer import answer_autodiscover
from smartdiscover.discovery.autoconfig import render_autoconfig
from smartdiscover.discovery.mobileconfig import render_profile
from smartdiscover.discovery.request import (
    MOBILESYNC_REQUEST,
    MOBILESYNC_RESPONSE,
    OUTLOOK_REQUEST,
    OUTLOOK_RESPONSE,
)
from smartdiscover.discovery.v2 import answer_v2
from smartdiscover.dns.records import all_records

MAX_ADDRESS = 320


@dataclass(frozen=True)
class Shown:
    """
    One answer: what it is, how a client asks for it, and its text.
    """

    title: str
    asked: str
    text: str


def _request(namespace: str, schema: str, address: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{namespace}">'
            f"<Request><EMailAddress>{escape(address)}</EMailAddress>"
            f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema>"
            "</Request></Autodiscover>").encode("utf-8")


def preview(model: Model, address: str) -> list[Shown]:
    """
    Every answer a client of C{address} gets.

    @raise ValueError: C{address} is no address of a served domain.
    """
    if len(address) > MAX_ADDRESS:
        raise ValueError(f"at most {MAX_ADDRESS} characters")
    try:
        local, domain = split_address(address)
    except AddressError as e:
        raise ValueError(f"not an e-mail address ({e})") from None
    if not model.serves(domain):
        raise ValueError(f"{domain} is not a served domain ([server] domains)")
    canonical = f"{local}@{domain}"
    user = model.users.get(address_key(canonical, model.auth.case_sensitive_local))
    principal = Principal(user.address, user.display_name) if user is not None else \
        Principal(canonical)
    catalogue = model.catalogue_for(domain)
    now = datetime.now(timezone.utc)
    shown = []
    for title, namespace, schema in (("Outlook (POX)", OUTLOOK_REQUEST, OUTLOOK_RESPONSE),
                                     ("ActiveSync (mobilesync)", MOBILESYNC_REQUEST,
                                      MOBILESYNC_RESPONSE)):
        reply = answer_autodiscover(model, principal, _request(namespace, schema, canonical),
                                    now)
        text = reply.body.decode("utf-8") if reply.location is None else \
            f"302 Found\nLocation: {reply.location}"
        shown.append(Shown(title, "POST /autodiscover/autodiscover.xml", text))
    shown.append(Shown("Mozilla autoconfig", "GET /mail/config-v1.1.xml",
                       render_autoconfig(catalogue, domain).decode("utf-8")))
    for protocol in ("AutodiscoverV1", "ActiveSync"):
        reply_v2 = answer_v2(model, canonical, protocol)
        shown.append(Shown(f"Autodiscover v2 ({protocol})",
                           f"GET /autodiscover/autodiscover.json?Protocol={protocol}",
                           f"{reply_v2.status}\n{reply_v2.body.decode('ascii')}"))
    profile = plistlib.loads(render_profile(catalogue, principal))
    payloads = [f"{p.get('PayloadType')}: {p.get('PayloadDisplayName', '')}"
                for p in profile.get("PayloadContent", [])]
    shown.append(Shown("Apple profile payloads", "GET /mobileconfig", "\n".join(payloads)))
    if model.dns is not None:
        zone = all_records(model, 0).get(domain, [])
        lines = [f"{owner} {dns.QUERY_TYPES.get(type_, type_)} {str(payload)[1:-1]}"
                 for owner, type_, payload in zone]
        shown.append(Shown(f"DNS zone {domain}", "[server] dns", "\n".join(lines)))
    return shown
