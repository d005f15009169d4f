"""
The service catalogue of a domain: the main sections, with the domain's
[domain:NAME] overrides laid on top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from smartdiscover.config import values
from smartdiscover.config.public import https_origin
from smartdiscover.config.model import (
    DEFAULT_PORTS,
    SIP_TRANSPORTS,
    SOCKET_SERVICES,
    URL_SERVICES,
    Catalogue,
    Security,
    SocketService,
)

SERVICE_KEYS = ("host", "port", "security", "ports")
SIP_KEYS = SERVICE_KEYS + ("transport",)
# The keys C{ports} replaces: one port and its security (and SIP's transport).
SINGLE_PORT_KEYS = ("port", "security", "transport")
MAX_PORTS = 8  # entries of one ports list; more is a typo or an attack on the answers
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
    return Catalogue(
        public_hostname=public_hostname,
        autodiscover_url=https_origin(public_hostname, https_port)
        + "/autodiscover/autodiscover.xml",
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
    One endpoint per host of C{host = a, b, ...} and per pair of C{ports =
    465/ssl, 587/starttls} (or the one C{port} and C{security}), in order of
    preference: every host on the first pair, then every host on the next.
    """
    hosts = get(name, "host", _host_list,
                default=(public_hostname,) if public_hostname else ())
    server_port = get(name, "server_port", values.port) if name == "xmpp" else None
    listed = settings.get("ports")
    if listed is not None:
        pairs = _listed_pairs(name, get, settings, listed, report)
        return [SocketService(name, host, port, security, transport, server_port)
                for port, security, transport in pairs for host in hosts]
    if name == "sip":
        security, transport = _sip_security(get, settings, report)
        implied = Security.SSL if transport == "tls" else Security.NONE
        port = get(name, "port", values.port, default=DEFAULT_PORTS["sip"][implied])
    else:
        security, transport = get(name, "security", values.security, default=Security.SSL), None
        port = get(name, "port", values.port, default=DEFAULT_PORTS[name][security])
    return [SocketService(name, host, port, security, transport, server_port) for host in hosts]


Pair = tuple[int, Security, str | None]  # port, security, SIP transport


def _listed_pairs(name: str, get: Callable[..., Any], settings: Mapping[str, Setting],
                  listed: Setting, report: Report) -> list[Pair]:
    """
    The pairs of C{ports}, which replaces C{port} and C{security} (and
    SIP's C{transport}): written beside it, they are refused; a [domain:]
    override of C{ports} replaces the main section's, but a main C{ports}
    cannot be changed by overriding C{port} or C{security}.
    """
    single = [settings[key] for key in SINGLE_PORT_KEYS if key in settings]
    beside = [s.key for s in single if s.section == listed.section]
    if beside:
        report(listed.section, listed.key,
               f"cannot be combined with {' and '.join(beside)}: ports lists every "
               f"PORT/SECURITY pair; remove {' and '.join(beside)}, or ports")
    for setting in single:
        if setting.section not in (listed.section, name) and listed.section == name:
            report(setting.section, setting.key,
                   f"[{name}] lists ports: override {name}.ports instead")
    if not listed.value.strip():
        report(listed.section, listed.key,
               "empty: list PORT/SECURITY pairs (465/ssl, 587/starttls), or remove the key")
        return []
    pairs: list[Pair] = get(name, "ports", lambda value: port_pairs(name, value), default=[])
    return pairs


_PORT_DIGITS = re.compile(r"[0-9]{1,5}")
_SIP_TRANSPORT_WORDS = {"tls": (Security.SSL, "tls"), "ssl": (Security.SSL, "tls"),
                        "tcp": (Security.NONE, "tcp"), "udp": (Security.NONE, "udp")}


def port_pairs(name: str, value: str) -> list[Pair]:
    """
    The C{ports} list of service C{name}: comma-separated C{PORT/SECURITY}
    entries, or C{SECURITY} alone for its standard port, in order of
    preference.  SIP names its transport instead: C{tls} (or C{ssl}),
    C{tcp}, C{udp}.

    @raise ValueError: an empty or too long list, a bad port, an unknown or
        inapplicable security, a pair given twice, or one port with two
        securities.
    """
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    example = "5061/tls, 5060/tcp" if name == "sip" else "465/ssl, 587/starttls"
    if not entries:
        raise ValueError(f"no port given: list PORT/SECURITY pairs ({example})")
    if len(entries) > MAX_PORTS:
        raise ValueError(f"{len(entries)} entries: at most {MAX_PORTS}")
    pairs: list[Pair] = []
    for entry in entries:
        parts = [part.strip() for part in entry.split("/")]
        if len(parts) > 2 or not parts[-1]:
            raise ValueError(f"{entry!r} is not PORT/SECURITY ({example}) or SECURITY alone")
        if len(parts) == 1 and _PORT_DIGITS.fullmatch(parts[0]):
            words = ("tls", "tcp", "udp") if name == "sip" else ("ssl", "starttls", "none")
            raise ValueError(f"{entry!r} has no security: write "
                             + ", ".join(f"{entry}/{w}" for w in words[:2])
                             + f" or {entry}/{words[2]}")
        security, transport = _entry_security(name, parts[-1].lower(), entry)
        if len(parts) == 1:
            port = DEFAULT_PORTS[name][security]
        elif not _PORT_DIGITS.fullmatch(parts[0]):
            raise ValueError(f"{entry!r}: {parts[0]!r} is not a port number (1-65535)"
                             + (f"; write {parts[1]} alone for the standard port"
                                if not parts[0] else ""))
        else:
            port = values.port(parts[0])
        pair = (port, security, transport)
        if pair in pairs:
            raise ValueError(f"{entry!r} is given twice")
        tcp = transport != "udp"
        clash = next((p for p in pairs if p[0] == port and (p[2] != "udp") == tcp), None)
        if clash is not None:
            kind = "transports" if name == "sip" else "securities"
            raise ValueError(f"port {port} is listed with two {kind} "
                             f"({_shown(name, clash)}, {_shown(name, pair)}): "
                             "a port has one, list it once")
        pairs.append(pair)
    return pairs


def _entry_security(name: str, word: str, entry: str) -> tuple[Security, str | None]:
    if name == "sip":
        if word in _SIP_TRANSPORT_WORDS:
            return _SIP_TRANSPORT_WORDS[word]
        if word == "starttls":
            raise ValueError(f"{entry!r}: SIP has no STARTTLS: use tls, tcp or udp")
        if word == "none":
            raise ValueError(f"{entry!r}: say which plain transport, tcp or udp")
        raise ValueError(f"{entry!r}: {word!r} is not one of: tls, tcp, udp")
    try:
        return Security(word), None
    except ValueError:
        pass
    hint = (" (tls, tcp and udp are SIP transports; implicit TLS is ssl)"
            if word in _SIP_TRANSPORT_WORDS else "")
    raise ValueError(f"{entry!r}: {word!r} is not one of: ssl, starttls, none{hint}")


def _shown(name: str, pair: Pair) -> str:
    port, security, transport = pair
    return f"{port}/{transport if name == 'sip' else security.value}"


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
