"""
The [auth] section: which user store checks passwords, and the guard's
policy in front of it.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from smartdiscover.config import values
from smartdiscover.config.section import Section, readable_file
from smartdiscover.config.model import (
    AuthSettings,
    GuardPolicy,
    IMAPSettings,
    LDAPSettings,
    TLSServer,
)

BACKENDS = ("passwd", "ldap", "imap")
GUARD_KEYS = tuple(f.name for f in fields(GuardPolicy))
AUTH_KEYS = ("backend", "passwd_file", "case_sensitive_local",
             "ldap_url", "ldap_ca", "ldap_timeout", "ldap_bind_dn", "ldap_base",
             "ldap_attribute", "ldap_service_dn", "ldap_service_password_file",
             "ldap_display_name",
             "imap_url", "imap_ca", "imap_timeout", "imap_login") + GUARD_KEYS
MAX_SECRET_BYTES = 4096

Report = Callable[[str | None, str | None, str], None]
# (scheme with implicit TLS, scheme upgraded in place, their default ports)
_SCHEMES = {"ldap": ("ldaps", "ldap", 636, 389), "imap": ("imaps", "imap", 993, 143)}


def build_auth(section: Mapping[str, str], base: Path, report: Report) -> AuthSettings:
    """
    Read [auth]; relative paths are taken from C{base}.
    """
    get = Section("auth", section, AUTH_KEYS, report).get
    backend = get("backend", values.choice(BACKENDS), "passwd")
    guard = GuardPolicy(**{
        f.name: get(f.name, _number(f.type), f.default) for f in fields(GuardPolicy)})
    settings = AuthSettings(
        backend=backend,
        passwd_file=get("passwd_file", lambda v: base / v, required=backend == "passwd"),
        case_sensitive_local=get("case_sensitive_local", values.boolean, False),
        guard=guard,
    )
    if backend == "ldap":
        settings = replace(settings, ldap=_ldap(get, base, report))
    elif backend == "imap":
        server = _server("imap", get, base)
        login = get("imap_login", values.choice(("address", "local")), "address")
        if server is not None:  # else _server reported why: the model is refused
            settings = replace(settings, imap=IMAPSettings(server=server, login=login))
    return settings


def _number(kind: Any) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        try:
            number = int(value) if kind in (int, "int") else float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if number < 0:
            raise ValueError(f"{value!r} is negative")
        return number
    return convert


def _server(kind: str, get: Callable[..., Any], base: Path) -> TLSServer | None:
    implicit, upgraded, implicit_port, upgraded_port = _SCHEMES[kind]

    def url(value: str) -> tuple[str, int, bool]:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as e:
            raise ValueError(f"{value!r} is not a URL: {e}") from None
        if parts.scheme not in (implicit, upgraded) or not parts.hostname:
            raise ValueError(f"{value!r} must look like {implicit}://HOST[:PORT] (TLS) or "
                             f"{upgraded}://HOST[:PORT] (upgraded with StartTLS)")
        tls = parts.scheme == implicit
        return values.host(parts.hostname), port or (implicit_port if tls else upgraded_port), tls

    target = get(f"{kind}_url", url, required=True)
    ca_file = get(f"{kind}_ca", lambda v: readable_file(base / v))
    timeout = get(f"{kind}_timeout", _number(float), 5.0)
    if target is None:
        return None
    host, port, tls = target
    return TLSServer(host, port, tls, ca_file, timeout)


def _secret(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SECRET_BYTES + 1)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"{path} is larger than {MAX_SECRET_BYTES} bytes")
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8") from None


def _ldap(get: Callable[..., Any], base: Path, report: Report) -> LDAPSettings | None:
    server = _server("ldap", get, base)
    bind_dn = get("ldap_bind_dn", _template)
    search_base = get("ldap_base", str)
    service_dn = get("ldap_service_dn", str)
    password = get("ldap_service_password_file", lambda v: _secret(base / v))
    if (bind_dn is None) == (search_base is None):
        report("auth", "ldap_bind_dn",
               "give either ldap_bind_dn (a DN template) or ldap_base (search, then bind)")
    if search_base is not None and (service_dn is None) != (password is None):
        report("auth", "ldap_service_dn",
               "ldap_service_dn and ldap_service_password_file go together")
    if server is None:
        return None
    return LDAPSettings(
        server=server,
        bind_dn=bind_dn,
        base=search_base,
        attribute=get("ldap_attribute", _attribute, "mail"),
        service_dn=service_dn,
        service_password=password,
        display_name_attributes=get(
            "ldap_display_name",
            lambda v: tuple(_attribute(a.strip()) for a in v.split(",") if a.strip()),
            ("displayName", "cn")),
    )


def _template(value: str) -> str:
    try:
        value.format(local="x", domain="x", address="x")
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"{value!r}: only {{local}}, {{domain}} and {{address}} "
                         f"may appear ({e})") from None
    return value


def _attribute(value: str) -> str:
    if not value or not all(c.isalnum() or c == "-" for c in value):
        raise ValueError(f"{value!r} is not an attribute name")
    return value
