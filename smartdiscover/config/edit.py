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
import re
import tempfile
from pathlib import Path
from typing import Mapping

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


_SECTION_LINE = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*(?:[;#].*)?$")
_OPTION_LINE = re.compile(r"^(?P<lead>\s*)(?P<key>[^=:;#\s][^=:]*?)\s*(?P<sep>[=:])"
                          r"(?P<value>.*?)(?P<tail>\s+[;#].*)?(?P<eol>\r?\n)?$")


_NO_OPTION = 1 << 30


def set_values(text: str, changes: Mapping[tuple[str, str], str | None]) -> str:
    """
    C{text} with each (section, key) set to its value, or removed for
    L{None}: a key that is there keeps its line, its place and its inline
    comment (its continuation lines go); a new key goes after the last
    option of its section; a new section goes at the end.  Every other
    line stays as written, line ends included.

    @raise ValueError: a value holding a line break or an inline-comment
        start (it would change the file's shape).
    """
    for (section, key), value in changes.items():
        if value is not None and (any(c in value for c in "\r\n") or
                                  re.search(r"\s[;#]", value) or value.startswith((";", "#"))):
            raise ValueError(f"[{section}] {key}: a value is one line, without ' ;' or ' #'")
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += eol
    pending = dict(changes)
    out: list[str] = []
    section = ""
    last_option: dict[str, int] = {}  # section -> index in out after its last option
    skipping = False
    indent = _NO_OPTION  # the indent of the option a deeper line continues
    for line in lines:
        header = _SECTION_LINE.match(line)
        if header:
            section, skipping, indent = header.group("name").strip(), False, _NO_OPTION
            out.append(line)
            last_option.setdefault(section, len(out))
            continue
        stripped = line.strip()
        level = len(line) - len(line.lstrip())
        if skipping and stripped and level > indent:
            continue  # a continuation line of a value replaced or removed
        skipping = False
        if not stripped or stripped[0] in ";#":
            indent = _NO_OPTION  # a blank or comment line ends a value
        if stripped and level > indent and last_option.get(section) == len(out):
            out.append(line)  # a continuation line of the option before
            last_option[section] = len(out)
            continue
        option = _OPTION_LINE.match(line) if stripped and stripped[0] not in ";#" else None
        if option is not None:
            key = option.group("key").strip()
            indent = level
            if (section, key) in pending:
                value = pending.pop((section, key))
                skipping = True
                if value is None:
                    continue
                line = (f"{option.group('lead')}{key} {option.group('sep')} {value}"
                        f"{option.group('tail') or ''}{option.group('eol') or eol}")
            out.append(line)
            last_option[section] = len(out)
            continue
        out.append(line)
    # New keys, in the order given: after their section's last option.
    for (section, key), value in list(pending.items()):
        if value is None or section not in last_option:
            continue
        at = last_option[section]
        out.insert(at, f"{key} = {value}{eol}")
        for name, index in last_option.items():
            if index >= at:
                last_option[name] = index + 1
        del pending[(section, key)]
    for (section, key), value in pending.items():
        if value is None:
            continue
        if section not in last_option:
            if out and out[-1].strip():
                out.append(eol)
            out.append(f"[{section}]{eol}")
            last_option[section] = len(out)
        out.insert(last_option[section], f"{key} = {value}{eol}")
        last_option[section] += 1
    return "".join(out)
