"""
From a POSTed body to the document that answers it.
"""

from __future__ import annotations

import re
from datetime import datetime

from smartdiscover.config.address import AddressError, address_key
from smartdiscover.config.model import Model
from smartdiscover.discovery.outlook import render_error, render_settings
from smartdiscover.discovery.principal import Principal
from smartdiscover.discovery.request import (
    DEFAULT_REQUEST,
    OUTLOOK_RESPONSE,
    InvalidRequest,
    parse_request,
)

_LAST_CN = re.compile(r"/cn=([^/]+)$", re.IGNORECASE)


def answer_autodiscover(model: Model, principal: Principal, body: bytes | None,
                        now: datetime) -> bytes:
    """
    Answer an Autodiscover POST (or GET, with C{body=None}) from C{principal}.

    Malformed requests get ErrorCode 600, an unsupported response schema 601,
    and a mailbox other than the principal's 500: never another user's
    settings.
    """
    try:
        request = DEFAULT_REQUEST if body is None else parse_request(body)
    except InvalidRequest:
        return render_error(600, model.public_hostname, now)
    if request.response_schema != OUTLOOK_RESPONSE:
        return render_error(601, model.public_hostname, now)
    identity = request.identity
    if identity is not None and not is_principal(identity, principal,
                                                 model.auth.case_sensitive_local):
        return render_error(500, model.public_hostname, now)
    catalogue = model.catalogue_for(principal.domain)
    return render_settings(catalogue, principal, model.ttl_hours)


def is_principal(identity: str, principal: Principal, case_sensitive_local: bool) -> bool:
    """
    Whether the address or LegacyDN C{identity} names C{principal}'s mailbox.

    SmartDiscover has no Exchange directory: a LegacyDN names a mailbox by
    its last C{/cn=} component, which must be the address (compared like
    EMailAddress) or its local part.
    """
    if identity.startswith("/"):
        match = _LAST_CN.search(identity)
        if match is None:
            return False
        identity = match.group(1)
        if "@" not in identity:
            fold = str if case_sensitive_local else str.casefold
            return fold(identity) == fold(principal.local_part)
    try:
        return (address_key(identity, case_sensitive_local)
                == address_key(principal.address, case_sensitive_local))
    except AddressError:
        return False
