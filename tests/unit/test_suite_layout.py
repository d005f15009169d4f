"""
The suite's two halves: tests.unit runs alone, and an integration test
that is skipped under CI fails instead.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re

from twisted.trial import unittest
from twisted.trial.reporter import TestResult
from twisted.trial.unittest import SkipTest, SynchronousTestCase

import tests.integration
from tests.helpers import PROJECT_ROOT


def _skipping_cases() -> list[unittest.SynchronousTestCase]:
    """
    Integration cases that skip, one by exception and one by attribute;
    built here, not at module level, so that trial does not collect them.
    """
    class Skipping(tests.integration.SynchronousTestCase):
        def test_needs_a_server(self) -> None:
            raise SkipTest("no such server")

    class SkippingByAttribute(tests.integration.TestCase):
        skip = "not on this host"

        def test_needs_a_host(self) -> None:
            """
            Never runs: the class is skipped.
            """

    return [Skipping("test_needs_a_server"), SkippingByAttribute("test_needs_a_host")]


class SkipsUnderCITests(SynchronousTestCase):
    def run_with_ci(self, value: str | None, case: unittest.SynchronousTestCase) -> TestResult:
        previous = os.environ.pop("CI", None)
        if value is not None:
            os.environ["CI"] = value
        try:
            result = TestResult()
            case.run(result)
            return result
        finally:
            os.environ.pop("CI", None)
            if previous is not None:
                os.environ["CI"] = previous

    def test_skip_fails_under_ci(self) -> None:
        """
        Under C{CI=true} a skip is a failure that gives the reason.
        """
        for case in _skipping_cases():
            result = self.run_with_ci("true", case)
            self.assertEqual((len(result.skips), len(result.failures)), (0, 1), case)
            self.assertIn("skipped under CI=true", str(result.failures[0][1].value))

    def test_skip_is_a_skip_elsewhere(self) -> None:
        """
        On a developer's machine without the server, the test is skipped.
        """
        for value in (None, "", "false"):
            for case in _skipping_cases():
                result = self.run_with_ci(value, case)
                self.assertEqual((len(result.skips), len(result.failures)), (1, 0), value)


def _integration_modules() -> list[object]:
    return [importlib.import_module(f"tests.integration.{info.name}")
            for info in pkgutil.iter_modules(tests.integration.__path__)
            if info.name.startswith("test_")]


class LayoutTests(SynchronousTestCase):
    def test_integration_cases_fail_skips_under_ci(self) -> None:
        """
        Every test case in tests.integration derives from that package's
        bases, so no skip there passes CI unnoticed.
        """
        modules = _integration_modules()
        self.assertGreater(len(modules), 10)
        strays = [f"{module.__name__}.{name}"  # type: ignore[attr-defined]
                  for module in modules
                  for name, value in inspect.getmembers(module, inspect.isclass)
                  if issubclass(value, unittest.SynchronousTestCase)
                  and value.__module__ == module.__name__  # type: ignore[attr-defined]
                  and not issubclass(value, tests.integration._NoSkipsUnderCI)]
        self.assertEqual(strays, [])

    def test_unit_half_stands_alone(self) -> None:
        """
        No unit test module imports the integration half, so
        C{trial tests.unit} needs no server and no C{twistd}.
        """
        importing = [path.name for path in sorted((PROJECT_ROOT / "tests" / "unit").glob("*.py"))
                     if re.search(r"^\s*(from|import) tests\.integration",
                                  path.read_text(encoding="utf-8"), re.M)
                     and path.name != "test_suite_layout.py"]
        self.assertEqual(importing, [])
