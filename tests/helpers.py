"""
Shared test fixtures: configuration files written to a temporary directory,
and a TLS handshake over memory BIOs.
"""

from __future__ import annotations

import configparser
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable, TypeVar

import bcrypt
from OpenSSL import SSL
from twisted.internet.defer import Deferred, maybeDeferred

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# bcrypt cost 4 keeps tests fast; the scheme and code paths are the real ones.
DEMO_PASSWORD = "demo-password"
DEMO_HASH = bcrypt.hashpw(DEMO_PASSWORD.encode(), bcrypt.gensalt(4)).decode()

MINIMAL_INI = """\
[server]
public_hostname = mail.example.test
domains = example.test
https = ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt
ttl = 1

[auth]
backend = passwd
passwd_file = users.passwd

[imap]
host = mail.example.test
security = ssl

[pop3]
host = mail.example.test
security = starttls

[smtp]
host = mail.example.test
port = 587
security = starttls

[urls]
ews = https://mail.example.test/EWS/Exchange.asmx
webclient = https://mail.example.test/webmail/
"""


# What build_ini changes: a section name maps to None (the section goes), to
# a mapping of keys (a key mapped to None goes, any other is set), or to a
# str written as the section's body as it stands (a template placeholder).
Changes = Mapping[str, Mapping[str, str | None] | str | None]


def ini_sections(ini: str) -> dict[str, dict[str, str]]:
    """
    The sections of C{ini}, in file order, each a dict of its keys in file
    order; read as L{smartdiscover.config.loader} reads a file (key case
    kept, no interpolation, C{;} and C{#} inline comments).
    """
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"),
                                       strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(ini)
    return {name: dict(parser[name]) for name in parser.sections()}


def build_ini(changes: Changes | None = None, *, base: str = MINIMAL_INI,
              only: Iterable[str] | None = None) -> str:
    """
    The INI text of C{base}'s sections (only those named in C{only}, when
    given) with C{changes} applied: a key that is set keeps its place, or
    goes last in its section; a new section goes last, in the order of
    C{changes}.  Written one C{key = value} a line, sections apart by a
    blank line, as L{MINIMAL_INI} is, so C{build_ini() == MINIMAL_INI}.

    Fails loudly when asked to remove what C{base} lacks, so a fixture
    never silently keeps what it meant to drop.
    """
    sections: dict[str, dict[str, str] | str] = dict(ini_sections(base))
    if only is not None:
        keep = list(only)
        missing = [name for name in keep if name not in sections]
        if missing:
            raise AssertionError(f"no section {missing} to keep in the INI text")
        sections = {name: sections[name] for name in keep}
    for name, change in (changes or {}).items():
        if change is None:
            if sections.pop(name, None) is None:
                raise AssertionError(f"no section [{name}] to remove from the INI text")
        elif isinstance(change, str):
            sections[name] = change
        else:
            section = sections.setdefault(name, {})
            if isinstance(section, str):
                raise AssertionError(f"section [{name}] is raw text: replace it whole")
            for key, value in change.items():
                if value is not None:
                    section[key] = value
                elif section.pop(key, None) is None:
                    raise AssertionError(f"no key {key} in [{name}] to remove")
    return "\n".join(f"[{name}]\n" + (body if isinstance(body, str) else
                                       "".join(f"{key} = {value}\n"
                                               for key, value in body.items()))
                     for name, body in sections.items())


# [server] and [auth] of the minimal file (HTTPS on port 8443), no services,
# and the blank line that parts them from the sections a test appends.
CORE_INI = build_ini(only=("server", "auth")) + "\n"


def edit(old: str, new: str, ini: str = MINIMAL_INI) -> str:
    """
    Replace the one occurrence of C{old} in C{ini} by C{new}.

    Fails loudly when C{old} is absent, so a test can never silently run
    against the unchanged file.
    """
    if ini.count(old) != 1:
        raise AssertionError(f"{old!r} occurs {ini.count(old)} times in the INI text")
    return ini.replace(old, new)


def write_config(directory: str | Path, ini: str = MINIMAL_INI,
                 passwd: str | None = None) -> Path:
    """
    Write C{ini} as sd.ini and a password file beside it; return the INI path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if passwd is None:
        passwd = f"demo@example.test:{DEMO_HASH}:::Demo User\n"
    (directory / "users.passwd").write_text(passwd, encoding="utf-8")
    path = directory / "sd.ini"
    path.write_text(ini, encoding="utf-8")
    return path


def run_synchronously(f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
    """
    A C{RunInThread} for L{ConfigStore} in tests: runs C{f} right here, so a
    reload completes before the call returns.
    """
    return maybeDeferred(f, *args, **kwargs)


def handshake_in_memory(client: Any, incoming: Any, outgoing: Any, server: Any) -> None:
    """
    Run a TLS handshake between an C{ssl.SSLObject} C{client} (over the
    C{incoming} and C{outgoing} memory BIOs) and a pyOpenSSL server
    connection in accept state, passing bytes until both are done.
    """
    for _ in range(10):
        try:
            client.do_handshake()
        except ssl.SSLWantReadError:
            pass
        data = outgoing.read()
        if data:
            server.bio_write(data)
        try:
            server.do_handshake()
        except SSL.WantReadError:
            pass
        try:
            incoming.write(server.bio_read(1 << 16))
        except SSL.WantReadError:
            pass
