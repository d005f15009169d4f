"""
"Set New Hostname For All": rename a host everywhere in the INI text,
keeping the file's comments, order and layout.

configparser cannot write a file back without losing its comments, so this
edits the text line by line and touches nothing but host values.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.model import SOCKET_SERVICES

_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]")
# key, separator, value, an inline comment (";" or "#" after whitespace), EOL
_OPTION = re.compile(r"^(?P<head>\s*[^\s=:;#][^=:]*?\s*[=:]\s*)(?P<value>.*?)"
                     r"(?P<tail>\s+[;#].*)?(?P<eol>\r?\n)?$")


def _same_host(value: str, old: str) -> bool:
    try:
        return normalize_domain(value) == old
    except AddressError:
        return False


def _is_host_key(section: str, key: str) -> bool:
    if section == "server":
        return key == "public_hostname"
    if section in SOCKET_SERVICES:
        return key == "host"
    if section.startswith("domain:"):
        return key == "server.public_hostname" or (
            key.endswith(".host") and key.split(".")[0] in SOCKET_SERVICES)
    return False


def _rename_in_url(value: str, old: str, new: str) -> str:
    try:
        parts = urlsplit(value)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return value
    if parts.scheme.lower() not in ("http", "https") or not hostname \
            or not _same_host(hostname, old):
        return value
    netloc = new if ":" not in new else f"[{new}]"
    if port is not None:
        netloc += f":{port}"
    if "@" in parts.netloc:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def rename_host(text: str, old: str, new: str) -> str:
    """
    Replace host C{old} by C{new} in every host key and in the host part of
    every http(s) URL value; scheme, port, path, comments and everything
    else stay as written.
    """
    old = normalize_domain(old)
    lines = text.splitlines(keepends=True)
    section = ""
    for index, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            section = header.group("name").strip()
            continue
        if not line.strip() or line.lstrip()[0] in ";#" or line[0] in " \t":
            continue  # blank, comment, or a continuation line
        option = _OPTION.match(line)
        if option is None:
            continue
        key = re.split(r"\s*[=:]", option.group("head").strip(), maxsplit=1)[0]
        value = option.group("value")
        if _is_host_key(section, key) and _same_host(value, old):
            renamed = new
        else:
            renamed = _rename_in_url(value, old, new)
        if renamed != value:
            lines[index] = (option.group("head") + renamed + (option.group("tail") or "")
                            + (option.group("eol") or ""))
    return "".join(lines)
