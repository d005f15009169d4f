"""
C{smartdiscover check-config} run as a process, as administrators run it:
exit status and output (the in-memory half is L{tests.unit.test_cli}).
"""

from __future__ import annotations

import subprocess
import sys


from tests.helpers import write_config
from tests.integration import SynchronousTestCase

from tests.unit.test_cli import CHECKOUT, broken_ini


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
