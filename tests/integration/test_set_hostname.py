"""
C{smartdiscover set-hostname} run as a process: exit status, output and
the file rewritten in place (the rewrite alone is
L{tests.unit.test_set_hostname}).
"""

from __future__ import annotations

import subprocess
import sys


from smartdiscover.config import load
from tests.helpers import write_config
from tests.integration import SynchronousTestCase
from tests.unit.test_set_hostname import CHECKOUT, NEW


class SetHostnameProcessTests(SynchronousTestCase):
    """
    C{python -m smartdiscover.cli set-hostname} as a separate process.
    """

    def test_renames(self) -> None:
        """
        Run as a program, the command exits with status 0, prints the diff
        and the written line on stdout and nothing on stderr, and the file
        loads with the new host.
        """
        path = write_config(self.mktemp()).absolute()
        result = subprocess.run(
            [sys.executable, "-m", "smartdiscover.cli", "set-hostname", NEW,
             "--config", str(path)],
            cwd=CHECKOUT, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        self.assertEqual(lines[:2], [f"--- {path}", f"+++ {path}"])
        self.assertIn("-public_hostname = mail.example.test", lines)
        self.assertIn("+public_hostname = mx.example.test", lines)
        self.assertEqual(lines[-1],
                         f"{path}: written; send SIGHUP to the running service to apply it")
        self.assertEqual(load(path).public_hostname, NEW)
