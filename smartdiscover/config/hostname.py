"""
"Set New Hostname For All": rename a host everywhere in the INI text,
keeping the file's comments, order and layout.

configparser cannot write a file back without losing its comments, so this
edits the text line by line and touches nothing but host values and the
names of the host's own [hosts] entry and [records] keys.
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
    """
    Whether C{key} of C{section} holds one host name.
    """
    if section == "server":
        return key == "public_hostname"
    if section.startswith("domain:"):
        return key == "server.public_hostname"
    return False


def _host_list_kind(section: str, key: str) -> str | None:
    """
    C{"hosts"} when C{key} of C{section} is a comma-separated list of host
    names (a service's C{host}, C{[dns] nameservers}), C{"mx"} for the
    C{PREFERENCE HOST} items of C{[dns] mx}, else L{None}.
    """
    if section in SOCKET_SERVICES:
        return "hosts" if key == "host" else None
    if section.startswith("domain:"):
        service, dot, option = key.partition(".")
        return "hosts" if dot and option == "host" and service in SOCKET_SERVICES else None
    if section == "dns":
        return {"nameservers": "hosts", "mx": "mx"}.get(key)
    if section == "records":
        parts = key.split()
        if len(parts) == 2 and parts[1].upper() in _RECORD_TARGET:
            return "record " + parts[1].upper()
    return None


# The field of a [records] line that names a host, by type (CNAME: the
# target; MX: PREFERENCE HOST; SRV: PRIORITY WEIGHT PORT TARGET), and how
# many fields the line has.
_RECORD_TARGET = {"CNAME": (0, 1), "MX": (1, 2), "SRV": (3, 4)}


_ITEM = re.compile(r"^(?P<lead>\s*)(?P<item>.*?)(?P<trail>\s*)$", re.DOTALL)
_MX_ITEM = re.compile(r"^(?P<lead>\s*\S+\s+)(?P<item>\S+)(?P<trail>\s*)$", re.DOTALL)


def _rename_in_list(value: str, kind: str, old: str, new: str) -> str:
    """
    Rename C{old} in the items of a comma-separated list (C{kind} C{"hosts"}
    or C{"mx"}), or in the target of one C{[records]} line (C{"record
    TYPE"}), keeping every separator and space as written.
    """
    if kind.startswith("record "):
        # One record a line, its fields apart by whitespace.
        index, count = _RECORD_TARGET[kind.split()[1]]
        body = value.strip()
        lead = value[:len(value) - len(value.lstrip())]
        parts = re.split(r"(\s+)", body)
        if len(parts[::2]) == count and _same_host(parts[2 * index], old):
            parts[2 * index] = new
        return lead + "".join(parts) + value[len(lead) + len(body):]
    pattern = _MX_ITEM if kind == "mx" else _ITEM
    items = value.split(",")
    for index, item in enumerate(items):
        match = pattern.match(item)
        if match is not None and _same_host(match.group("item"), old):
            items[index] = match.group("lead") + new + match.group("trail")
    return ",".join(items)


def hosts_entries(text: str) -> list[str]:
    """
    The host names of the C{[hosts]} entries of INI text C{text}, normalised
    (ASCII, lower case), in file order; keys that are no host name are left
    out (the loader reports them).
    """
    names = []
    for section, key, _ in _options(text):
        if section == "hosts":
            try:
                names.append(normalize_domain(key))
            except AddressError:
                pass
    return names


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


def _options(text: str) -> list[tuple[str, str, int]]:
    """
    (section, key, line index) of every option line of C{text}, as
    L{rename_host} reads them (continuation lines are not options).
    """
    found = []
    section = ""
    indent: int | None = None
    for index, line in enumerate(text.lstrip("\ufeff").splitlines(keepends=True)):
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
            continue
        option = _OPTION.match(line)
        if option is None:
            continue
        indent = level
        found.append((section, _key(option.group("head")), index))
    return found


_NAME_TOKEN = re.compile(r"[^\s,;:/@=\"'?#&\[\]()<>\\]+")


def mentions(text: str, host: str,
             skip: tuple[str, ...] = ("hosts",)) -> list[tuple[int, str]]:
    """
    (line number, line) of every line of C{text} that names C{host} in
    its value or key, outside comments and the sections in C{skip}: after
    L{rename_host}, what still names the old host because it is no host
    field (an address, a TXT string, a URL's query).  [hosts] is skipped
    by default: an entry left there is left on purpose (the new host has
    one of its own).
    """
    host = normalize_domain(host)
    found = []
    section = ""
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        stripped = line.strip()
        header = _SECTION.match(line)
        if header:
            section = header.group("name").strip()
            continue
        if not stripped or stripped[0] in ";#" or section in skip:
            continue
        content = re.split(r"\s[;#]", line, maxsplit=1)[0]  # without an inline comment
        if any(_same_host(token, host) for token in _NAME_TOKEN.findall(content)):
            found.append((number, stripped))
    return found


def _key(head: str) -> str:
    return re.split(r"\s*[=:]", head.strip(), maxsplit=1)[0]


_CONTINUATION = re.compile(r"^(?P<head>\s*)(?P<value>.*?)"
                           r"(?P<tail>\s+[;#].*|[ \t]+)?(?P<eol>\r?\n)?$")


def rename_host(text: str, old: str, new: str) -> str:
    """
    Replace host C{old} by C{new} in every host key, in every item of the
    host lists (a service's C{host}, C{[dns] nameservers}, the hosts of
    C{[dns] mx}), in the host part of every http(s) URL value, and in the
    targets of C{[records]} CNAME, MX and SRV records; scheme, port, path,
    comments and everything else stay as written.

    The C{[hosts]} entry of C{old} becomes the entry of C{new}, keeping its
    addresses (the machine is the same), unless C{[hosts]} already has an
    entry for C{new}: then C{[hosts]} stays as it is, both entries.  So do
    the C{[records]} keys whose name is C{old} (C{OLD TXT} becomes C{NEW
    TXT}), except a type that C{NEW} has a key for already.
    """
    old = normalize_domain(old)
    rename_entry = normalize_domain(new) not in hosts_entries(text)
    # The types of the [records] keys whose owner is already the new name.
    new_owner_types = {key.split()[1].upper() for section, key, _ in _options(text)
                       if section == "records" and len(key.split()) == 2
                       and _same_host(key.split()[0], new)}
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = text[len(bom):].splitlines(keepends=True)
    section = ""
    indent: int | None = None  # of the option a deeper line would continue
    continued: str | None = None  # the list kind a continuation line belongs to
    for index, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            section, indent, continued = header.group("name").strip(), None, None
            continue
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            indent, continued = None, None
            continue
        level = len(line) - len(line.lstrip())
        if indent is not None and level > indent:
            # A continuation line of the previous value: only a host list
            # goes on there.
            part = _CONTINUATION.match(line)
            if continued is not None and part is not None:
                renamed = _rename_in_list(part.group("value"), continued, old, new)
                if renamed != part.group("value"):
                    lines[index] = (part.group("head") + renamed + (part.group("tail") or "")
                                    + (part.group("eol") or ""))
            continue
        option = _OPTION.match(line)
        if option is None:
            continue
        indent = level
        head = option.group("head")
        key = _key(head)
        value = option.group("value")
        continued = _host_list_kind(section, key)
        lead = head[:len(head) - len(head.lstrip())]
        owner = key.split()[0] if key.split() else key
        if section == "records" and len(key.split()) == 2 and _same_host(owner, old) \
                and key.split()[1].upper() not in new_owner_types:
            head = lead + new + head[len(lead) + len(owner):]  # NAME TYPE: the name
        if section == "hosts" and rename_entry and _same_host(key, old):
            head = lead + new + head[len(lead) + len(key):]
            renamed = value
        elif _is_host_key(section, key) and _same_host(value, old):
            renamed = new
        elif continued is not None:
            renamed = _rename_in_list(value, continued, old, new)
        else:
            renamed = _rename_in_url(value, old, new)
        if renamed != value or head != option.group("head"):
            lines[index] = (head + renamed + (option.group("tail") or "")
                            + (option.group("eol") or ""))
    return bom + "".join(lines)
