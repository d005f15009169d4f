"""
Shared test fixtures: configuration files written to a temporary directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import bcrypt
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
