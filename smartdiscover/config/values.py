"""
Converters from INI text to typed values; each raises L{ValueError} with a
message fit for an administrator.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.model import HTTPSListener, Security, TCPListener, UDPAddress
from smartdiscover.config.networks import Networks

BOOLEANS = {"yes": True, "true": True, "on": True, "1": True,
            "no": False, "false": False, "off": False, "0": False}


def host(value: str) -> str:
    """
    A host name (IDNA-normalised) or an IP address (canonical form).
    """
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return normalize_domain(value)
    except AddressError as e:
        raise ValueError(f"{value!r} is not a host name: {e}") from None


def domain_list(value: str) -> tuple[str, ...]:
    domains = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            domain = normalize_domain(item)
        except AddressError as e:
            raise ValueError(f"{item.strip()!r}: {e}") from None
        if domain not in domains:
            domains.append(domain)
    if not domains:
        raise ValueError("no domain given")
    return tuple(domains)


def port(value: str) -> int:
    """
    A port number, 1-65535, in ASCII digits only (int() alone would take
    "+443", "4_43" and other scripts' digits such as "٤٤٣").
    """
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"{value!r} is not a port number (1-65535)")
    number = int(value, 10)
    if not 1 <= number <= 65535:
        raise ValueError(f"{value!r} is not a port number (1-65535)")
    return number


def non_negative_int(value: str) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number


MAX_CONNECTIONS = 1_000_000  # the kernel's usual ceiling for descriptors


def connections(value: str) -> int:
    """
    A number of connections, from 1 to L{MAX_CONNECTIONS}.
    """
    number = non_negative_int(value)
    if not 1 <= number <= MAX_CONNECTIONS:
        raise ValueError(f"{value!r} is not from 1 to {MAX_CONNECTIONS}")
    return number


def connections_or_auto(value: str) -> int | None:
    """
    A number of connections, or C{auto} (L{None}): the caller's default.
    """
    if value.lower() == "auto":
        return None
    try:
        return connections(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of connections "
                         f"(1-{MAX_CONNECTIONS}) or auto") from None


MAX_WORKERS = 64


def workers(value: str) -> int:
    """
    A number of processes from 1 to 64, or C{auto}: one per CPU.
    """
    if value.lower() == "auto":
        return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1, MAX_WORKERS))
    try:
        number = int(value, 10)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of processes (1-{MAX_WORKERS}) "
                         "or auto") from None
    if not 1 <= number <= MAX_WORKERS:
        raise ValueError(f"{value!r} is not a number of processes (1-{MAX_WORKERS}) or auto")
    return number


def boolean(value: str) -> bool:
    try:
        return BOOLEANS[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not yes or no") from None


def choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value not in options:
            raise ValueError(f"{value!r} is not one of: " + ", ".join(options))
        return value
    return convert


def security(value: str) -> Security:
    try:
        return Security(value.lower())
    except ValueError:
        raise ValueError(f"{value!r} is not one of: ssl, starttls, none") from None


def ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def split_endpoint(description: str) -> tuple[list[str], dict[str, str]]:
    """
    Split a Twisted endpoint description into positional and keyword parts.

    A backslash escapes the next character, as in Twisted
    (C{interface=\\:\\:} is the IPv6 any-address).
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(description)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if eq:
            if key in kwargs:
                raise ValueError(f"{key} given twice")
            kwargs[key] = value
        elif kwargs:
            raise ValueError(f"positional {part!r} after a keyword")
        else:
            args.append(part)
    return args, kwargs


PROXY_PREFIX = "haproxy"  # Twisted's prefix for a listener behind a PROXY protocol sender


def _behind_proxy(value: str) -> tuple[list[str], dict[str, str], bool]:
    """
    Split an endpoint description, and strip a leading C{haproxy:}: whether
    every connection starts with a PROXY protocol header.
    """
    args, kwargs = split_endpoint(value)
    proxied = bool(args) and args[0] == PROXY_PREFIX
    return (args[1:] if proxied else args), kwargs, proxied


def https_endpoint(value: str, base: Path) -> HTTPSListener:
    """
    C{[haproxy:]ssl:PORT:privateKey=KEY[:certKey=CERT][:interface=IP][:backlog=N]},
    paths relative to C{base}.
    """
    args, kwargs, proxied = _behind_proxy(value)
    if len(args) != 2 or args[0] != "ssl":
        raise ValueError("must look like ssl:PORT:privateKey=KEY:certKey=CERT "
                         "(haproxy:ssl:... behind HAProxy)")
    unknown = set(kwargs) - {"privateKey", "certKey", "interface", "backlog"}
    if unknown:
        raise ValueError("unknown parameter " + ", ".join(sorted(unknown))
                         + " (known: privateKey, certKey, interface, backlog)")
    if "privateKey" not in kwargs:
        raise ValueError("privateKey= is required")
    key = base / kwargs["privateKey"]
    cert = base / kwargs.get("certKey", kwargs["privateKey"])
    for path in {key, cert}:
        if path.exists() and not os.access(path, os.R_OK):
            raise ValueError(f"{path} is not readable")
    if key.exists() != cert.exists():
        missing = key if not key.exists() else cert
        raise ValueError(f"{missing} is missing (a development certificate is "
                         "only created when both files are missing)")
    backlog = non_negative_int(kwargs["backlog"]) if "backlog" in kwargs else None
    interface = ip(kwargs["interface"]) if kwargs.get("interface") else None
    return HTTPSListener(port(args[1]), interface, backlog, cert, key, proxied)


def tcp_endpoint(value: str) -> TCPListener:
    """
    C{[haproxy:]tcp:PORT[:interface=IP][:backlog=N]}.
    """
    args, kwargs, proxied = _behind_proxy(value)
    if len(args) != 2 or args[0] != "tcp":
        raise ValueError("must look like tcp:PORT[:interface=ADDRESS] "
                         "(haproxy:tcp:... behind HAProxy)")
    unknown = set(kwargs) - {"interface", "backlog"}
    if unknown:
        raise ValueError("unknown parameter " + ", ".join(sorted(unknown))
                         + " (known: interface, backlog)")
    backlog = non_negative_int(kwargs["backlog"]) if "backlog" in kwargs else None
    interface = ip(kwargs["interface"]) if kwargs.get("interface") else None
    return TCPListener(port(args[1]), interface, backlog, proxied)


def udp_address(value: str) -> UDPAddress:
    address, sep, number = value.rpartition(":")
    if not sep:
        raise ValueError("must look like ADDRESS:PORT ([ADDRESS]:PORT for IPv6)")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    elif ":" in address:
        raise ValueError(f"{value!r}: write an IPv6 address in brackets, [ADDRESS]:PORT")
    return UDPAddress(ip(address), port(number))


def https_url(value: str, public_hostname: str | None) -> str:
    """
    Validate an absolute https URL; a bare path is taken on C{public_hostname}.
    """
    if value.startswith("/") and not value.startswith("//"):
        if public_hostname is None:
            raise ValueError("a bare path needs [server] public_hostname")
        netloc = f"[{public_hostname}]" if ":" in public_hostname else public_hostname
        value = f"https://{netloc}{value}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a URL: {e}") from None
    if parts.scheme.lower() != "https":
        raise ValueError(f"{value!r} must be an https:// URL")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    if any(ord(c) < 0x21 for c in value):
        raise ValueError(f"{value!r} contains spaces or control characters")
    name = host(parts.hostname)
    netloc = f"[{name}]" if ":" in name else name
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(("https", netloc, parts.path or "/", parts.query, ""))


def xml_safe(text: str) -> bool:
    """
    Whether C{text} can appear in every document we serve (XML 1.0
    characters, no C0 or C1 controls).
    """
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
                   or ord(c) in (0xFFFE, 0xFFFF) for c in text)


def networks(value: str) -> Networks:
    """
    Comma-separated addresses or CIDR networks.
    """
    return Networks.parse(value)
