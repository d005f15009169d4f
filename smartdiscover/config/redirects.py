"""
Per-account redirects, checked so that SmartDiscover never sends a client
(and its credentials) to a foreign or plain-HTTP host, or round in circles.
"""

from __future__ import annotations

from typing import Callable, Mapping
from urllib.parse import urlsplit

from smartdiscover.config import values
from smartdiscover.config.address import AddressError, address_key, split_address
from smartdiscover.config.model import Redirect

REDIRECT_ADDR = "redirectAddr"
REDIRECT_URL = "redirectUrl"
AUTODISCOVER_PATH = "/autodiscover/autodiscover.xml"

Report = Callable[[str, str, str], None]


def _within(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def build_redirects(sections: Mapping[str, Mapping[str, str]], served: tuple[str, ...],
                    allowed: tuple[str, ...], own_hosts: frozenset[str],
                    case_sensitive: bool, report: Report) -> dict[str, Redirect]:
    """
    Read [redirectAddr] and [redirectUrl] (address = target).

    Targets must lie within the served domains or the allow-list; a
    redirectUrl must be https and must not point back at this server; an
    address redirected to an address that is itself redirected (a chain or a
    loop) is refused.
    """
    scope = served + allowed
    redirects: dict[str, Redirect] = {}
    for action in (REDIRECT_ADDR, REDIRECT_URL):
        for source, target in sections.get(action, {}).items():
            def problem(message: str) -> None:
                report(action, source, message)
            try:
                _, domain = split_address(source)
                key = address_key(source, case_sensitive)
            except AddressError as e:
                problem(f"{source!r} is not an address: {e}")
                continue
            if domain not in served:
                problem(f"{domain} is not a served domain")
                continue
            if key in redirects:
                problem(f"already redirected in [{redirects[key].action}]")
                continue
            target = target.strip()
            try:
                if action == REDIRECT_ADDR:
                    target = _address_target(target, scope)
                else:
                    target = _url_target(target, scope, own_hosts)
            except ValueError as e:
                problem(str(e))
                continue
            redirects[key] = Redirect(action, target)
    _refuse_chains(redirects, sections, case_sensitive, report)
    return redirects


def _address_target(target: str, scope: tuple[str, ...]) -> str:
    try:
        local, domain = split_address(target)
    except AddressError as e:
        raise ValueError(f"{target!r} is not an address: {e}") from None
    if domain not in scope:
        raise ValueError(f"{domain} is neither served nor in [server] redirect_domains")
    return f"{local}@{domain}"


def _url_target(target: str, scope: tuple[str, ...], own_hosts: frozenset[str]) -> str:
    if not target.lower().startswith("https://"):
        raise ValueError(f"{target!r} must be an https:// URL")
    url = values.https_url(target, None)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not _within(host, scope):
        raise ValueError(f"{host} is neither within a served domain nor in "
                         "[server] redirect_domains")
    if host in own_hosts:
        raise ValueError(f"{host} is this server: the client would come back here (a loop)")
    if not parts.path.lower().endswith(AUTODISCOVER_PATH):
        raise ValueError(f"{url!r} must end in {AUTODISCOVER_PATH}")
    return url


def _refuse_chains(redirects: dict[str, Redirect], sections: Mapping[str, Mapping[str, str]],
                   case_sensitive: bool, report: Report) -> None:
    for key, redirect in list(redirects.items()):
        if redirect.action != REDIRECT_ADDR:
            continue
        target = address_key(redirect.target, case_sensitive)
        if target == key:
            message = "redirects to itself (a loop)"
        elif target in redirects:
            message = f"{redirect.target} is redirected too (a chain); point at the final address"
        else:
            continue
        source = next(s for s in sections[REDIRECT_ADDR]
                      if _key_or_none(s, case_sensitive) == key)
        report(REDIRECT_ADDR, source, message)


def _key_or_none(address: str, case_sensitive: bool) -> str | None:
    try:
        return address_key(address, case_sensitive)
    except AddressError:
        return None
