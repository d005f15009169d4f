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
from tests.unit.test_set_hostname import (CHECKOUT, NEW, OLD, assert_shipped_renamed,
                                          copy_shipped)


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

    def test_shipped_configuration(self) -> None:
        """
        The shipped C{etc/sd.ini} and C{etc/users.passwd}, copied byte for
        byte: C{set-hostname mx.example.test --config PATH} as a program
        exits with 0 and nothing on stderr, its diff shows the [hosts]
        entry renamed with every host field, the written file loads and
        C{check-config} (a program too) says OK; renaming back restores
        the shipped bytes.
        """
        path = copy_shipped(self.mktemp()).absolute()
        result = self.run_cli("set-hostname", NEW, "--config", str(path))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        self.assertIn(f"-{OLD} = 127.0.0.1, ::1\n", result.stdout)
        self.assertIn(f"+{NEW} = 127.0.0.1, ::1\n", result.stdout)
        assert_shipped_renamed(self, path, result.stdout)
        checked = self.run_cli("check-config", str(path))
        self.assertEqual((checked.returncode, checked.stderr), (0, ""))
        self.assertEqual(checked.stdout, f"{path}: OK (1 domain(s), 1 user(s))\n")
        back = self.run_cli("set-hostname", OLD, "--config", str(path))
        self.assertEqual(back.returncode, 0, back.stderr)
        self.assertEqual(path.read_bytes(), (CHECKOUT / "etc" / "sd.ini").read_bytes())

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "smartdiscover.cli", *args],
                              cwd=CHECKOUT, capture_output=True, text=True, timeout=60)
