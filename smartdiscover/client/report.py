"""
The probe's report: one check per line, PASS or FAIL, what is wrong and how
to fix it; or the same as one JSON document.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Callable, TextIO


@dataclass(frozen=True)
class Check:
    """
    One verdict: C{detail} says what was found, C{fix} what to do about a
    failure (empty when there is nothing to say).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""


def line(check: Check) -> str:
    """
    C{check} as one readable line.
    """
    text = f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}"
    if not check.ok and check.fix:
        text += f" -- fix: {check.fix}"
    return text


class Report:
    """
    The checks of one run, in the order they were made.  C{show} sees each
    check as it is added (to print progress).
    """

    def __init__(self, show: Callable[[Check], None] | None = None) -> None:
        self.checks: list[Check] = []
        self._show = show

    def add(self, name: str, ok: bool, detail: str, fix: str = "") -> Check:
        check = Check(name, ok, detail, "" if ok else fix)
        self.checks.append(check)
        if self._show is not None:
            self._show(check)
        return check

    def passed(self, name: str, detail: str) -> Check:
        return self.add(name, True, detail)

    def failed(self, name: str, detail: str, fix: str = "") -> Check:
        return self.add(name, False, detail, fix)

    @property
    def ok(self) -> bool:
        """
        Whether every check passed (and there was at least one).
        """
        return bool(self.checks) and all(check.ok for check in self.checks)

    def summary(self) -> str:
        failed = sum(not check.ok for check in self.checks)
        if failed:
            return f"{failed} of {len(self.checks)} checks failed"
        return f"all {len(self.checks)} checks passed"

    def write_json(self, out: TextIO, **extra: object) -> None:
        document = {**extra, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}
        json.dump(document, out, indent=2)
        out.write("\n")

    def exit_status(self) -> int:
        return 0 if self.ok else 1
