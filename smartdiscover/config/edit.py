"""
Changing the INI file as a whole: validate a new text as if it were the
file, and replace the file in one step, only if nobody changed it since
it was read.  For every editor of the file (C{set-hostname}, the console).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import tempfile
from pathlib import Path

from smartdiscover.config.loader import ConfigError, load
from smartdiscover.config.model import Model


class FileChanged(Exception):
    """
    The file is no longer what the editor read: someone else saved it.
    """


def digest(text: str) -> str:
    """
    What an editor remembers of the text it read, to tell a concurrent
    change (SHA-256, hex).
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text(config: Path) -> str:
    """
    The file as text, line ends as they are.  Blocking.
    """
    return config.read_bytes().decode("utf-8")


def validate_text(config: Path, text: str) -> Model:
    """
    Load C{text} as if it were the file at C{config} (same directory, so
    relative paths resolve the same way); problems name C{config}.
    Blocking.

    @raise ConfigError: what is wrong with it.
    """
    fd, name = tempfile.mkstemp(prefix=".sd-", suffix=".ini", dir=config.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return load(name)
    except ConfigError as e:
        scratch = str(Path(name).absolute())
        raise ConfigError([dataclasses.replace(p, file=str(config.absolute()))
                           if p.file == scratch else p for p in e.problems]) from None
    finally:
        os.unlink(name)


def write_text(config: Path, text: str, expected: str | None = None,
               mode: int = 0o644) -> None:
    """
    Replace the file in one step, keeping its permissions (C{mode} for a
    new file).  Blocking.

    @param expected: the L{digest} of the text the editor read; the file
        is written only if it still holds that text.
    @raise FileChanged: it does not.
    """
    if expected is not None and digest(read_text(config)) != expected:
        raise FileChanged(f"{config} changed since it was read")
    fd, name = tempfile.mkstemp(prefix=".sd-", dir=config.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, config.stat().st_mode & 0o7777 if config.exists() else mode)
        os.replace(name, config)
    except BaseException:
        os.unlink(name)
        raise


def unified_diff(config: Path, old: str, new: str) -> str:
    """
    The change as a unified diff, as C{set-hostname} prints it.
    """
    lines = []
    for line in difflib.unified_diff(old.splitlines(keepends=True),
                                     new.splitlines(keepends=True),
                                     fromfile=str(config), tofile=str(config)):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)
