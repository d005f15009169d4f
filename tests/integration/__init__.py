"""
Integration tests: the real service under C{twistd}, and the real servers
and tools it works with (slapd, Dovecot, HAProxy, fail2ban, openssl), all
on loopback.  C{python -m twisted.trial tests.unit} runs the rest alone.

Every test case here derives from L{SynchronousTestCase} or L{TestCase} of
this package: under CI (C{CI=true}) a test that would be skipped fails
instead, because there a missing server means the suite did not test what
it claims to.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.python.failure import Failure
from twisted.trial import unittest


class _SkipsFail:
    """
    A test result that records a skip as a failure and passes the rest on.
    """

    def __init__(self, result: Any) -> None:
        self._result = result

    def addSkip(self, test: Any, reason: object) -> None:
        failure = Failure(AssertionError(f"skipped under CI=true: {reason}"))
        self._result.addFailure(test, failure)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)


def skips_fail() -> bool:
    """
    Whether skips count as failures here: under CI.
    """
    return os.environ.get("CI", "").lower() == "true"


class _NoSkipsUnderCI:
    def run(self, result: Any) -> None:
        super().run(_SkipsFail(result) if skips_fail() else result)  # type: ignore[misc]


class SynchronousTestCase(_NoSkipsUnderCI, unittest.SynchronousTestCase):
    """
    L{twisted.trial.unittest.SynchronousTestCase}, whose skips fail under CI.
    """


class TestCase(_NoSkipsUnderCI, unittest.TestCase):
    """
    L{twisted.trial.unittest.TestCase}, whose skips fail under CI.
    """
