"""
The password file: C{address:hash[:uid:gid:gecos:...]} lines, the layout of
Dovecot's passwd-file, so one file can serve both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

from smartdiscover.config.address import AddressError, address_key, split_address
from smartdiscover.config.model import User
from smartdiscover.config.values import xml_safe

MAX_PASSWD_BYTES = 64 * 1024 * 1024
PASSWORD_SCHEMES = (b"$2a$", b"$2b$", b"$2y$", b"$argon2id$")
# Dovecot scheme prefixes we accept, and the hashes each must introduce.
DOVECOT_PREFIXES = {b"{BLF-CRYPT}": (b"$2a$", b"$2b$", b"$2y$"),
                    b"{ARGON2ID}": (b"$argon2id$",)}

# The whole of each hash, not only its prefix: a file cut off inside a
# hash (a half-written copy) must be refused, not load a user no password
# can match.  bcrypt: cost 04-31, 22 characters of salt and 31 of hash in
# bcrypt's alphabet.  argon2id: the PHC string argon2-cffi and Dovecot
# write, salt and tag in unpadded Base64 of sensible lengths.
_BCRYPT = re.compile(rb"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_ARGON2ID = re.compile(rb"\$argon2id\$(v=19\$)?m=[1-9][0-9]{0,9},t=[1-9][0-9]{0,9},"
                       rb"p=[1-9][0-9]{0,5}\$(?P<salt>[A-Za-z0-9+/]{11,})"
                       rb"\$(?P<tag>[A-Za-z0-9+/]{22,})")

Report = Callable[[str], None]


def read_passwd(path: Path, case_sensitive: bool, report: Report) -> dict[str, User]:
    """
    Read the users of the file at C{path}, keyed by address key; every bad
    line is reported with file and line number.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_PASSWD_BYTES + 1)
    except OSError as e:
        report(f"cannot read {path}: {e.strerror}")
        return {}
    if len(raw) > MAX_PASSWD_BYTES:
        report(f"{path} is larger than {MAX_PASSWD_BYTES} bytes")
        return {}
    users: dict[str, User] = {}
    for number, line in _lines(raw):
        where = f"{path}:{number}: "
        try:
            user = parse_passwd_line(line)
        except ValueError as e:
            report(where + str(e))
            continue
        key = address_key(user.address, case_sensitive)
        if key in users:
            report(where + f"{user.address} appears twice")
            continue
        users[key] = user
    return users


def _lines(raw: bytes) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith(b"#"):
            yield number, line


def parse_passwd_line(line: bytes) -> User:
    """
    Parse one line; the gecos field (the fifth), when present, is the
    user's display name.
    """
    fields = line.split(b":")
    if len(fields) < 2:
        raise ValueError("expected address:hash")
    try:
        address = fields[0].decode("utf-8")
        display_name = fields[4].decode("utf-8") if len(fields) > 4 else ""
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    if not xml_safe(display_name):
        raise ValueError("control characters in the display name")
    try:
        split_address(address)
    except AddressError as e:
        raise ValueError(f"{address!r}: {e}") from None
    password_hash = fields[1]
    schemes: tuple[bytes, ...] = PASSWORD_SCHEMES
    for prefix, introduced in DOVECOT_PREFIXES.items():
        if password_hash.startswith(prefix):
            password_hash, schemes = password_hash[len(prefix):], introduced
    if not password_hash.startswith(schemes):
        raise ValueError("unsupported password scheme (bcrypt $2b$/$2y$ or $argon2id$)")
    check_hash(password_hash)
    return User(address, password_hash, display_name)


def check_hash(password_hash: bytes) -> None:
    """
    Refuse a hash of a supported scheme that is incomplete or malformed
    (the message never shows the hash).

    @raise ValueError: when it is not whole.
    """
    if password_hash.startswith(b"$argon2id$"):
        match = _ARGON2ID.fullmatch(password_hash)
        # Unpadded Base64 is never 1 more than a multiple of 4 long.
        if match is None or any(len(match[part]) % 4 == 1 for part in ("salt", "tag")):
            raise ValueError("incomplete or malformed argon2id hash "
                             "($argon2id$v=19$m=...,t=...,p=...$salt$hash)")
    elif _BCRYPT.fullmatch(password_hash) is None:
        raise ValueError("incomplete or malformed bcrypt hash (60 characters: $2b$, "
                         "a cost of 04-31, $, then 53 of ./A-Za-z0-9)")


def set_password(text: str, address: str, password_hash: str, display_name: str | None,
                 case_sensitive: bool = False) -> tuple[str, bool]:
    """
    The file C{text} with C{address}'s hash (and display name, if given)
    replaced, or a new line for it appended; every other line is kept as it
    is.  Returns the new text and whether the address was already there.

    @raise ValueError: an address or display name the file cannot hold.
    """
    if ":" in address or "\n" in address:
        raise ValueError("an address cannot contain ':' or a line break")
    split_address(address)
    if display_name is not None and (":" in display_name or not xml_safe(display_name)):
        raise ValueError("a display name cannot contain ':' or control characters")
    lines = text.splitlines(keepends=True)
    index = _line_of(lines, address, case_sensitive)
    if index is not None:
        line = lines[index]
        fields = line.strip().split(":")
        fields[1] = password_hash
        if display_name is not None:
            fields += [""] * (5 - len(fields))
            fields[4] = display_name
        ending = line[len(line.rstrip("\r\n")):] or "\n"
        lines[index] = ":".join(fields) + ending
        return "".join(lines), True
    fields = [address, password_hash]
    if display_name:
        fields += ["", "", display_name]
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines) + ":".join(fields) + "\n", False


def remove_user(text: str, address: str, case_sensitive: bool = False) -> tuple[str, bool]:
    """
    The file C{text} without C{address}'s line; every other line kept.
    Returns the new text and whether the address was there.
    """
    lines = text.splitlines(keepends=True)
    index = _line_of(lines, address, case_sensitive)
    if index is None:
        return text, False
    del lines[index]
    return "".join(lines), True


def _line_of(lines: list[str], address: str, case_sensitive: bool) -> int | None:
    """
    The index of C{address}'s line among C{lines}, or L{None}.
    """
    key = address_key(address, case_sensitive)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            if address_key(stripped.split(":")[0], case_sensitive) == key:
                return index
        except AddressError:
            continue
    return None
