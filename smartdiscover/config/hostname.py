"""
"Set New Hostname For All": rename a host everywhere in the INI text,
keeping the file's comments, order and layout.

configparser cannot write a file back without losing its comments, so this
edits the text line by line and touches nothing but host values.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.model import SOCKET_SERVICES

_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]")
# key, separator, value, an inline comment (";" or "#" after whitespace), EOL
_OPTION = re.compile(r"^(?P<head>\s*[^\s=:;#][^=:]*?\s*[=:]\s*)(?P<value>.*?)"
                     r"(?P<tail>\s+[;#].*|[ \t]+)?(?P<eol>\r?\n)?$")


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
    """
    Replace the host of an http(s) URL, and nothing else of its spelling.
    """
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return value
    if parts.scheme.lower() not in ("http", "https") or not hostname \
            or not _same_host(hostname, old):
        return value
    start = value.find("//") + 2
    end = start + len(parts.netloc)
    if value[start:end] != parts.netloc:
        return value
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        port = hostport[hostport.index("]") + 1:]
    else:
        port = hostport[hostport.index(":"):] if ":" in hostport else ""
    host = f"[{new}]" if ":" in new else new
    return value[:start] + userinfo + at + host + port + value[end:]


def rename_host(text: str, old: str, new: str) -> str:
    """
    Replace host C{old} by C{new} in every host key and in the host part of
    every http(s) URL value; scheme, port, path, comments and everything
    else stay as written.
    """
    old = normalize_domain(old)
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = text[len(bom):].splitlines(keepends=True)
    section = ""
    indent: int | None = None  # of the option a deeper line would continue
    for index, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            section, indent = header.group("name").strip(), None
            continue
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            indent = None
            continue
        level = len(line) - len(line.lstrip())
        if indent is not None and level > indent:
            continue  # a continuation line of the previous value
        option = _OPTION.match(line)
        if option is None:
            continue
        indent = level
        key = re.split(r"\s*[=:]", option.group("head").strip(), maxsplit=1)[0]
        value = option.group("value")
        if _is_host_key(section, key) and _same_host(value, old):
            renamed = new
        else:
            renamed = _rename_in_url(value, old, new)
        if renamed != value:
            lines[index] = (option.group("head") + renamed + (option.group("tail") or "")
                            + (option.group("eol") or ""))
    return bom + "".join(lines)
