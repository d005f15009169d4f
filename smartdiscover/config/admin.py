"""
The C{[admin]} section: where the web console listens, who may log in to
it, and how long a session lasts (docs/console.md).

The accounts file holds C{NAME:HASH} lines (bcrypt or argon2id, the hashes
the users' password file takes); C{smartdiscover admin-passwd} writes it.
No message about it ever shows a hash.
"""

from __future__ import annotations

import configparser
import dataclasses
import math
import re
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from smartdiscover.config import values
from smartdiscover.config.model import AdminSettings, Model, TCPListener
from smartdiscover.config.passwd_file import PASSWORD_SCHEMES, check_hash
from smartdiscover.config.section import Section

ADMIN = "admin"
ADMIN_KEYS = ("listen", "accounts", "session_idle", "session_lifetime")
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8444
DEFAULT_LISTEN = f"tcp:{DEFAULT_PORT}:interface={LOOPBACK}"
MAX_ACCOUNTS_BYTES = 1024 * 1024
MAX_CONFIG_BYTES = 1024 * 1024  # as the loader reads it
MAX_NAME = 64
NAME_CHARACTERS = "letters, digits, '.', '_', '@' or '-'"

Report = Callable[[str | None, str | None, str], None]

# ASCII only: no look-alike letters of other scripts, nothing a page or a
# log line could take for markup.
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,%d}\Z" % MAX_NAME)


def build_admin(section: Mapping[str, str], base: Path, report: Report) -> AdminSettings | None:
    """
    The section's settings, its accounts file read; L{None} when there is
    no section (no console).  Every problem is reported with its key.
    """
    if not section:
        return None
    get = Section(ADMIN, section, ADMIN_KEYS, report).get
    listen = get("listen", listener, listener(DEFAULT_LISTEN))
    accounts_file = get("accounts", lambda v: base / v, required=True)
    defaults = AdminSettings(listen, Path())
    idle = get("session_idle", _seconds, defaults.session_idle)
    lifetime = get("session_lifetime", _seconds, defaults.session_lifetime)
    if lifetime < idle:
        report(ADMIN, "session_lifetime",
               f"{lifetime:g} seconds is less than session_idle ({idle:g} seconds)")
    if accounts_file is None:
        return None
    accounts = read_accounts(accounts_file,
                             lambda message: report(ADMIN, "accounts", message))
    return AdminSettings(listen=listen, accounts_file=accounts_file,
                         accounts=MappingProxyType(accounts),
                         session_idle=idle, session_lifetime=lifetime)


def check_admin(model: Model, report: Report) -> None:
    """
    What C{[admin]} asks of the rest of the configuration: a port of its
    own on every address it shares with the other TCP listeners.
    """
    admin = model.admin
    if admin is None:
        return
    others: list[tuple[str, int, str | None]] = [
        ("[server] https", model.https.port, model.https.interface)]
    if model.http is not None:
        others.append(("[server] http", model.http.port, model.http.interface))
    if model.dns is not None:
        others.append(("[server] dns (DNS over TCP)", model.dns.listen.port,
                       model.dns.listen.host))
    for name, port, interface in others:
        if port == admin.listen.port and _overlap(interface, admin.listen.interface):
            report(ADMIN, "listen", f"port {port} is taken by {name} on the same address: "
                   "give the console a port of its own")


def listener(value: str) -> TCPListener:
    """
    C{tcp:PORT[:interface=ADDRESS][:backlog=N]} or a bare port number;
    without an interface, loopback (never every address by omission).
    C{haproxy:} is refused: the console sees its clients directly.
    """
    if value.isascii() and value.isdigit():
        return TCPListener(values.port(value), LOOPBACK, None)
    args, _ = values.split_endpoint(value)
    if args and args[0] == values.PROXY_PREFIX:
        raise ValueError("haproxy: is not for the console: it must see its clients' own "
                         "addresses (write tcp:PORT[:interface=ADDRESS])")
    if len(args) != 2 or args[0] != "tcp":
        raise ValueError(f"must look like tcp:PORT[:interface=ADDRESS] or a port number "
                         f"(default: {DEFAULT_LISTEN})")
    found = values.tcp_endpoint(value)
    if found.interface is None:
        found = dataclasses.replace(found, interface=LOOPBACK)
    return found


def account_name(name: str) -> str:
    """
    C{name} as accounts are keyed: case-folded.

    @raise ValueError: a name the file cannot hold (the message does not
        repeat it).
    """
    if not _NAME.match(name):
        raise ValueError(f"an administrator's name is 1-{MAX_NAME} {NAME_CHARACTERS}")
    return name.casefold()


def read_accounts(path: Path, report: Callable[[str], None]) -> dict[str, bytes]:
    """
    The accounts of the file at C{path}, name (case-folded) to hash; every
    bad line is reported with file and line number, never with its hash.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_ACCOUNTS_BYTES + 1)
    except FileNotFoundError:
        report(f"{path} does not exist: create it with a first administrator, "
               "smartdiscover admin-passwd NAME --config PATH (PATH: this configuration file)")
        return {}
    except OSError as e:
        report(f"cannot read {path}: {e.strerror}")
        return {}
    try:
        text = decode_accounts(raw)
    except ValueError as e:
        report(f"{path}: {e}")
        return {}
    accounts, problems = parse_accounts(text)
    for number, message in problems:
        report(f"{path}:{number}: {message}")
    return accounts


def accounts_text(path: Path) -> str:
    """
    The text of the accounts file at C{path}, C{""} when it does not exist.

    @raise ValueError: it cannot be read, is too large or is not UTF-8.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_ACCOUNTS_BYTES + 1)
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    try:
        return decode_accounts(raw)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def decode_accounts(raw: bytes) -> str:
    """
    The text of an accounts file's bytes.

    @raise ValueError: too large, or not UTF-8 (with the line).
    """
    if len(raw) > MAX_ACCOUNTS_BYTES:
        raise ValueError(f"larger than {MAX_ACCOUNTS_BYTES} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"not UTF-8 (line {line})") from None


def parse_accounts(text: str) -> tuple[dict[str, bytes], list[tuple[int, str]]]:
    """
    The accounts of C{text}, and its problems as (line number, message).
    """
    accounts: dict[str, bytes] = {}
    first: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, password_hash = line.partition(":")
        if not sep:
            problems.append((number, "expected NAME:HASH"))
            continue
        try:
            key = account_name(name)
            _check_hash(password_hash)
        except ValueError as e:
            problems.append((number, str(e)))
            continue
        if key in first:
            problems.append((number, f"{key} appears twice (first on line {first[key]})"))
            continue
        first[key] = number
        accounts[key] = password_hash.encode("ascii")
    return accounts, problems


def _check_hash(password_hash: str) -> None:
    if not password_hash.isascii():
        raise ValueError("the hash is not ASCII")
    raw = password_hash.encode("ascii")
    if not raw.startswith(PASSWORD_SCHEMES):
        raise ValueError("unsupported password scheme (bcrypt $2b$/$2y$ or $argon2id$)")
    check_hash(raw)


def set_account(text: str, name: str, password_hash: str) -> tuple[str, bool]:
    """
    The file C{text} with C{name}'s hash replaced (a later line of the same
    name dropped), or a line for it appended; every other line is kept as
    it is.  Returns the new text and whether the name was already there.

    @raise ValueError: a name the file cannot hold.
    """
    key = account_name(name)
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    existed = False
    for line in lines:
        if _line_name(line) == key:
            if not existed:
                ending = line[len(line.rstrip("\r\n")):] or "\n"
                kept.append(f"{line.strip().partition(':')[0]}:{password_hash}{ending}")
            existed = True
        else:
            kept.append(line)
    if not existed:
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        kept.append(f"{name}:{password_hash}\n")
    return "".join(kept), existed


def remove_account(text: str, name: str) -> str:
    """
    The file C{text} without C{name}'s line; every other line is kept.

    @raise ValueError: a bad name, or one the file does not hold.
    """
    key = account_name(name)
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if _line_name(line) != key]
    if len(kept) == len(lines):
        raise ValueError(f"{key} is not an administrator")
    return "".join(kept)


def _line_name(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or ":" not in stripped:
        return None
    return stripped.partition(":")[0].casefold()


def admin_accounts_path(config: Path) -> Path:
    """
    The C{[admin] accounts} file the configuration at C{config} names,
    whether or not it exists yet, the rest of the file unchecked (so that
    C{admin-passwd} can create the first account).

    @raise ValueError: the file cannot be read or has no C{[admin]
        accounts}.
    """
    try:
        with config.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ValueError(f"cannot read {config}: {e.strerror}") from None
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"),
                                       strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError
        parser.read_string(raw.decode("utf-8-sig"), source=str(config))
    except (ValueError, configparser.Error):
        raise ValueError(f"{config} cannot be read as a configuration: run "
                         f"smartdiscover check-config {config}") from None
    if ADMIN not in parser:
        raise ValueError(f"{config} has no [admin] section (docs/console.md)")
    accounts = parser[ADMIN].get("accounts", "").strip()
    if not accounts:
        raise ValueError(f"{config}: [admin] accounts is not set")
    return config.absolute().parent / accounts


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{value!r} must be a number of seconds more than 0")
    return number


def _overlap(a: str | None, b: str | None) -> bool:
    """
    Whether listeners on interfaces C{a} and C{b} (L{None}: every
    address) would take the same port.
    """
    if a is None or b is None or a == b or "::" in (a, b):
        return True  # "::" takes IPv4 too (IPv4-mapped, one socket)
    if a == "0.0.0.0":
        return ":" not in b
    return b == "0.0.0.0" and ":" not in a
