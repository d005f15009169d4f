"""
The service catalogue of a domain: the main sections, with the domain's
[domain:NAME] overrides laid on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from smartdiscover.config import values
from smartdiscover.config.model import (
    DEFAULT_PORTS,
    SIP_TRANSPORTS,
    SOCKET_SERVICES,
    URL_SERVICES,
    Catalogue,
    Security,
    SocketService,
)

SERVICE_KEYS = ("host", "port", "security")
SIP_KEYS = SERVICE_KEYS + ("transport",)
XMPP_KEYS = SERVICE_KEYS + ("server_port",)
OVERRIDABLE_SERVER_KEYS = ("public_hostname", "ttl")
ACTIVESYNC_PATH = "/Microsoft-Server-ActiveSync"


@dataclass(frozen=True)
class Setting:
    """
    A raw value and where it was written, for error messages.
    """

    value: str
    section: str
    key: str


# section -> key -> setting; "server" holds only the overridable keys.
Layer = Mapping[str, Mapping[str, Setting]]
Report = Callable[[str | None, str | None, str], None]


def keys_of(section: str) -> tuple[str, ...]:
    """
    The keys a catalogue section accepts.
    """
    if section == "server":
        return OVERRIDABLE_SERVER_KEYS
    if section == "urls":
        return URL_SERVICES
    return {"sip": SIP_KEYS, "xmpp": XMPP_KEYS}.get(section, SERVICE_KEYS)


def overlay(base: Layer, overrides: Layer) -> Layer:
    merged = {section: dict(settings) for section, settings in base.items()}
    for section, settings in overrides.items():
        merged.setdefault(section, {}).update(settings)
    return merged


def build_catalogue(layer: Layer, https_port: int, report: Report) -> Catalogue | None:
    """
    The catalogue described by C{layer}, or L{None} after reporting why not.
    """
    def get(section: str, key: str, convert: Callable[[str], Any], default: Any = None,
            required: bool = False) -> Any:
        setting = layer.get(section, {}).get(key)
        if setting is None or not setting.value.strip():
            if required:
                report(section, key, "required")
            return default
        try:
            return convert(setting.value.strip())
        except ValueError as e:
            report(setting.section, setting.key, str(e))
            return default

    public_hostname = get("server", "public_hostname", values.host, required=True)
    ttl = get("server", "ttl", values.non_negative_int, default=1)
    services: list[SocketService] = []
    for name in SOCKET_SERVICES:
        if name in layer:
            services += _socket_services(name, get, layer[name], public_hostname, report)
    urls = {}
    for name in URL_SERVICES:
        convert = _activesync_url if name == "activesync" else values.https_url
        url = get("urls", name, _on_host(convert, public_hostname))
        if url is not None:
            urls[name] = url
    if public_hostname is None:
        return None
    suffix = "" if https_port == 443 else f":{https_port}"
    netloc = f"[{public_hostname}]" if ":" in public_hostname else public_hostname
    return Catalogue(
        public_hostname=public_hostname,
        autodiscover_url=f"https://{netloc}{suffix}/autodiscover/autodiscover.xml",
        ttl_hours=ttl,
        services=tuple(services),
        urls=MappingProxyType(urls),
    )


def _host_list(value: str) -> tuple[str, ...]:
    hosts = tuple(dict.fromkeys(values.host(h.strip()) for h in value.split(",") if h.strip()))
    if not hosts:
        raise ValueError("no host given")
    return hosts


def _socket_services(name: str, get: Callable[..., Any], settings: Mapping[str, Setting],
                     public_hostname: str | None, report: Report) -> list[SocketService]:
    """
    One endpoint per host of C{host = a, b, ...} (in order of preference),
    all with the same port and security.
    """
    hosts = get(name, "host", _host_list,
                default=(public_hostname,) if public_hostname else ())
    if name == "sip":
        security, transport = _sip_security(get, settings, report)
        implied = Security.SSL if transport == "tls" else Security.NONE
        port = get(name, "port", values.port, default=DEFAULT_PORTS["sip"][implied])
    else:
        security, transport = get(name, "security", values.security, default=Security.SSL), None
        port = get(name, "port", values.port, default=DEFAULT_PORTS[name][security])
    server_port = get(name, "server_port", values.port) if name == "xmpp" else None
    return [SocketService(name, host, port, security, transport, server_port) for host in hosts]


def _sip_security(get: Callable[..., Any], settings: Mapping[str, Setting],
                  report: Report) -> tuple[Security, str]:
    """
    SIP has no STARTTLS: TLS is a transport.  Either key implies the other.
    """
    security = get("sip", "security", values.security)
    transport = get("sip", "transport", lambda v: values.choice(SIP_TRANSPORTS)(v.lower()))
    if security is Security.STARTTLS:
        where = settings["security"]
        report(where.section, where.key,
               "SIP has no STARTTLS: use security = ssl (transport tls) or none")
        security = None  # reported once; derive it from the transport
    if transport is None:
        transport = "tls" if security in (None, Security.SSL) else "udp"
    if security is None:
        security = Security.SSL if transport == "tls" else Security.NONE
    if (transport == "tls") != (security is Security.SSL):
        # Blame a [domain:] override rather than a main section that is
        # consistent on its own.
        written = (settings["transport"], settings["security"])
        where = next((s for s in written if s.section != "sip"), written[0])
        report(where.section, where.key,
               f"transport {transport} does not match security {security.value} "
               "(tls goes with ssl; udp and tcp with none)")
    return security, transport


def _on_host(convert: Callable[[str, str | None], str],
             public_hostname: str | None) -> Callable[[str], str]:
    """
    C{convert} for one URL setting, bare paths taken on C{public_hostname}.
    """
    return lambda value: convert(value, public_hostname)


def _activesync_url(value: str, public_hostname: str | None) -> str:
    url = values.https_url(value, public_hostname)
    if urlsplit(url).path.rstrip("/").lower() != ACTIVESYNC_PATH.lower():
        raise ValueError(f"{value!r}: ActiveSync's path is fixed, the URL's path "
                         f"must be {ACTIVESYNC_PATH} (clients assume it)")
    return url
