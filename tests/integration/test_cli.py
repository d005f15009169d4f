"""
Tests for the C{smartdiscover} administration command, L{smartdiscover.cli}.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


import smartdiscover
from tests.helpers import write_config
from tests.integration import SynchronousTestCase

# The checkout: the directory that holds the smartdiscover package.
CHECKOUT = Path(smartdiscover.__file__).resolve().parent.parent
from tests.unit.test_cli import broken_ini


class CheckConfigProcessTests(SynchronousTestCase):
    """
    C{python -m smartdiscover.cli} as a separate process.
    """

    def test_broken_file(self) -> None:
        """
        Run as a program on a broken file, the command exits with status 1
        and lists the problems (file, section, key) on stderr, without a
        traceback.
        """
        path = write_config(self.mktemp(), broken_ini()).absolute()
        result = subprocess.run(
            [sys.executable, "-m", "smartdiscover.cli", "check-config", str(path)],
            cwd=CHECKOUT, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(
            [line.split(": ", 2)[:2] for line in result.stderr.splitlines()],
            [[str(path), "[imap] port"], [str(path), "[smtp] security"],
             [str(path), "[urls] ews"]])
