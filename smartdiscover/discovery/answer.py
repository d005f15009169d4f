"""
From a POSTed body to the reply that answers it, in the format asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from smartdiscover.config.address import AddressError, address_key
from smartdiscover.config.model import Model
from smartdiscover.config.redirects import REDIRECT_ADDR
from smartdiscover.config.principal import Principal
from smartdiscover.discovery import mobilesync, outlook
from smartdiscover.discovery.splice import UserTemplates
from smartdiscover.discovery.request import (
    DEFAULT_REQUEST,
    MOBILESYNC_REQUEST,
    MOBILESYNC_RESPONSE,
    OUTLOOK_RESPONSE,
    InvalidRequest,
    parse_request,
)

_LAST_CN = re.compile(r"/cn=([^/]+)$", re.IGNORECASE)
NOT_FOUND = "The e-mail address cannot be found."


@dataclass(frozen=True)
class Reply:
    """
    An Autodiscover reply: a document, or an HTTP redirect to C{location}.
    """

    body: bytes = b""
    location: str | None = None


@dataclass(frozen=True)
class AnswerTemplates:
    """
    The settings documents of one model, built once and filled in per user:
    the caller keeps one per model in force, so a reload frees the old.
    """

    pox: UserTemplates = field(default_factory=UserTemplates)
    mobilesync: UserTemplates = field(default_factory=UserTemplates)


def answer_autodiscover(model: Model, principal: Principal, body: bytes | None,
                        now: datetime, templates: AnswerTemplates | None = None) -> Reply:
    """
    Answer an Autodiscover POST (or GET, with C{body=None}) from C{principal}.

    The AcceptableResponseSchema picks the format: Outlook POX (2006a) or
    ActiveSync mobilesync.  Malformed requests get ErrorCode 600, other
    schemas 601, a mailbox other than the principal's (or the address it is
    redirected to) an error: never another user's settings.
    """
    server = model.public_hostname
    try:
        request = DEFAULT_REQUEST if body is None else parse_request(body)
    except InvalidRequest as e:
        render = mobilesync.render_error if e.namespace == MOBILESYNC_REQUEST \
            else outlook.render_error
        return Reply(render(600, server, now))
    mobile = request.response_schema == MOBILESYNC_RESPONSE
    if not mobile and request.response_schema != OUTLOOK_RESPONSE:
        render = mobilesync.render_error if request.namespace == MOBILESYNC_REQUEST \
            else outlook.render_error
        return Reply(render(601, server, now))

    case_sensitive = model.auth.case_sensitive_local
    redirect = model.redirect_for(address_key(principal.address, case_sensitive))
    subject = principal
    identity = request.identity
    if identity is not None and not is_principal(identity, principal, case_sensitive):
        target = Principal(redirect.target, principal.display_name) \
            if redirect is not None and redirect.action == REDIRECT_ADDR else None
        if target is None or not model.serves(target.domain) \
                or not is_principal(identity, target, case_sensitive):
            if mobile:
                return Reply(mobilesync.render_action_error(principal, NOT_FOUND))
            return Reply(outlook.render_error(500, server, now))
        # The client follows the redirect we gave it and asks about the
        # new address with the old credentials: answer for that address.
        subject, redirect = target, None

    if redirect is not None:
        if redirect.action == REDIRECT_ADDR:
            if mobile:
                return Reply(mobilesync.render_redirect(principal, redirect.target))
            return Reply(outlook.render_redirect_addr(redirect.target))
        if mobile:  # mobilesync has no URL redirect; EAS clients follow HTTP 302
            return Reply(location=redirect.target)
        return Reply(outlook.render_redirect_url(redirect.target))

    if not model.serves(subject.domain):
        if mobile:
            return Reply(mobilesync.render_action_error(principal, NOT_FOUND))
        return Reply(outlook.render_error(500, server, now))
    catalogue = model.catalogue_for(subject.domain)
    if mobile:
        activesync = catalogue.urls.get("activesync")
        if activesync is None:
            return Reply(mobilesync.render_error(601, server, now))
        return Reply(mobilesync.render_settings(
            activesync, subject, templates.mobilesync if templates is not None else None))
    return Reply(outlook.render_settings(catalogue, subject, model.pox_extensions,
                                         templates.pox if templates is not None else None))


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
