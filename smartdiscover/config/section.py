"""
Typed reading of one INI section, reporting every problem with its key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

Report = Callable[[str | None, str | None, str], None]


class Section:
    """
    The keys of section C{name}; unknown keys are reported once, at once.
    """

    def __init__(self, name: str, values: Mapping[str, str], keys: tuple[str, ...],
                 report: Report) -> None:
        self.name = name
        self.values = values
        self.report = report
        for key in values:
            if key not in keys:
                report(name, key, "unknown key (known: " + ", ".join(keys) + ")")

    def get(self, key: str, convert: Callable[[str], Any], default: Any = None,
            required: bool = False) -> Any:
        """
        C{convert} of the stripped value, or C{default} when the key is
        absent or empty (reported when C{required}) or the value is bad
        (reported).
        """
        raw = self.values.get(key)
        if raw is None or not raw.strip():
            if required:
                self.report(self.name, key, "required")
            return default
        try:
            return convert(raw.strip())
        except ValueError as e:
            self.report(self.name, key, str(e))
            return default


def readable_file(path: Path) -> Path:
    """
    C{path}, if it can be opened for reading.
    """
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    return path
