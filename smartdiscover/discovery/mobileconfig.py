"""
Apple configuration profiles (PROTOCOLS.md section 8): the account payloads
iOS and macOS install, for an authenticated user.

The password is never embedded: the device asks for it at install time.
Payload UUIDs are derived from the domain, the address and the payload, so
installing the profile again replaces it instead of adding a second copy.
"""

from __future__ import annotations

import plistlib
import uuid
from typing import Any
from urllib.parse import urlsplit

from smartdiscover.config.model import Catalogue, Security
from smartdiscover.config.principal import Principal

# A fixed namespace: the UUIDs of one user's payloads never change.
PROFILE_NAMESPACE = uuid.UUID("4e1f0ad6-5b0e-5c55-9c1a-8f3d2d1b7a60")


def _payload_uuid(domain: str, address: str, payload: str) -> str:
    return str(uuid.uuid5(PROFILE_NAMESPACE, f"{domain}\0{address.casefold()}\0{payload}")).upper()


def _reverse(domain: str) -> str:
    return ".".join(reversed(domain.split(".")))


def render_profile(catalogue: Catalogue, principal: Principal) -> bytes:
    """
    An unsigned XML property list with mail (IMAP, or POP when there is no
    IMAP, plus SMTP), Exchange ActiveSync, CalDAV and CardDAV payloads, as
    configured.
    """
    domain = principal.domain
    address = principal.address
    identifier = f"{_reverse(domain)}.smartdiscover.{_payload_uuid(domain, address, 'profile')}"
    name = principal.display_name or address
    payloads: list[dict[str, Any]] = []

    def payload(kind: str, suffix: str, description: str, **keys: Any) -> None:
        payloads.append({
            "PayloadType": kind,
            "PayloadVersion": 1,
            "PayloadIdentifier": f"{identifier}.{suffix}",
            "PayloadUUID": _payload_uuid(domain, address, suffix),
            "PayloadDisplayName": description,
            **keys,
        })

    incoming = catalogue.service("imap") or catalogue.service("pop3")
    smtp = catalogue.service("smtp")
    if incoming is not None and smtp is not None:
        payload("com.apple.mail.managed", "mail", f"Mail ({domain})",
                EmailAccountType="EmailTypeIMAP" if incoming.name == "imap" else "EmailTypePOP",
                EmailAccountDescription=domain,
                EmailAccountName=name,
                EmailAddress=address,
                IncomingMailServerHostName=incoming.host,
                IncomingMailServerPortNumber=incoming.port,
                IncomingMailServerUseSSL=incoming.security is not Security.NONE,
                IncomingMailServerAuthentication="EmailAuthPassword",
                IncomingMailServerUsername=address,
                OutgoingMailServerHostName=smtp.host,
                OutgoingMailServerPortNumber=smtp.port,
                OutgoingMailServerUseSSL=smtp.security is not Security.NONE,
                OutgoingMailServerAuthentication="EmailAuthPassword",
                OutgoingMailServerUsername=address,
                OutgoingPasswordSameAsIncomingPassword=True)
    activesync = catalogue.urls.get("activesync")
    if activesync is not None:
        payload("com.apple.eas.account", "eas", f"Exchange ActiveSync ({domain})",
                EmailAddress=address, Host=urlsplit(activesync).netloc, SSL=True,
                UserName=address)
    for kind, key, prefix, label in (("com.apple.caldav.account", "caldav", "CalDAV", "Calendar"),
                                     ("com.apple.carddav.account", "carddav", "CardDAV",
                                      "Contacts")):
        url = catalogue.urls.get(key)
        if url is not None:
            parts = urlsplit(url)
            payload(kind, key, f"{label} ({domain})", **{
                f"{prefix}AccountDescription": f"{label} ({domain})",
                f"{prefix}HostName": parts.hostname,
                f"{prefix}Port": parts.port or 443,
                f"{prefix}UseSSL": True,
                f"{prefix}Username": address,
                f"{prefix}PrincipalURL": parts.path or "/",
            })
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": _payload_uuid(domain, address, "profile"),
        "PayloadDisplayName": f"{domain} accounts for {address}",
        "PayloadDescription": f"Mail, calendar and contacts settings for {address}.",
        "PayloadOrganization": domain,
        "PayloadContent": payloads,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=False)
