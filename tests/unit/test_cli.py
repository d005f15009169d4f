"""
Tests for the C{smartdiscover} administration command, L{smartdiscover.cli}.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import smartdiscover
from smartdiscover import cli
from smartdiscover.config import ConfigError, load
from tests.helpers import MINIMAL_INI, write_config

# The checkout: the directory that holds the smartdiscover package.
CHECKOUT = Path(smartdiscover.__file__).resolve().parent.parent


def broken_ini() -> str:
    """
    The minimal configuration with three problems in three places.
    """
    ini = MINIMAL_INI.replace("[imap]\n", "[imap]\nport = 0\n", 1)
    ini = ini.replace("port = 587\nsecurity = starttls", "port = 587\nsecurity = tls", 1)
    ini = ini.replace("ews = https://", "ews = http://", 1)
    assert ini.count("port = 0") == ini.count("security = tls") == ini.count("http://") == 1
    return ini


class CheckConfigTests(SynchronousTestCase):
    """
    C{smartdiscover check-config PATH}.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)

    def test_valid(self) -> None:
        """
        A valid file: exit status 0, one OK line on stdout naming the file,
        the domain and user counts, and nothing on stderr.
        """
        path = write_config(self.mktemp())
        self.assertEqual(cli.main(["check-config", str(path)]), 0)
        self.assertEqual(self.stdout.getvalue(),
                         f"{path.absolute()}: OK (1 domain(s), 1 user(s))\n")
        self.assertEqual(self.stderr.getvalue(), "")

    def test_invalid_prints_every_problem(self) -> None:
        """
        An invalid file: exit status 1, every problem on its own stderr
        line with file, section and key, and nothing on stdout.
        """
        path = write_config(self.mktemp(), broken_ini())
        self.assertEqual(cli.main(["check-config", str(path)]), 1)
        lines = self.stderr.getvalue().splitlines()
        file = str(path.absolute())
        self.assertEqual(len(lines), 3, lines)
        self.assertTrue(lines[0].startswith(f"{file}: [imap] port: "), lines[0])
        self.assertTrue(lines[1].startswith(f"{file}: [smtp] security: "), lines[1])
        self.assertTrue(lines[2].startswith(f"{file}: [urls] ews: "), lines[2])
        error = self.assertRaises(ConfigError, load, path)
        self.assertEqual(lines, [str(p) for p in error.problems])
        self.assertEqual(self.stdout.getvalue(), "")

    def test_missing_file(self) -> None:
        """
        A file that does not exist: exit status 1 and a line naming it.
        """
        path = Path(self.mktemp())
        self.assertEqual(cli.main(["check-config", str(path)]), 1)
        self.assertTrue(self.stderr.getvalue().startswith(f"{path.absolute()}: cannot read"),
                        self.stderr.getvalue())
        self.assertEqual(self.stdout.getvalue(), "")

    def test_usage_error(self) -> None:
        """
        No command at all is a usage error (status 2), not a crash.
        """
        error = self.assertRaises(SystemExit, cli.main, [])
        self.assertEqual(error.code, 2)
        self.assertIn("usage: smartdiscover", self.stderr.getvalue())

    def test_shipped_config_is_valid(self) -> None:
        """
        The embedded default C{etc/sd.ini} passes the check.
        """
        path = CHECKOUT / "etc" / "sd.ini"
        self.assertEqual(cli.main(["check-config", str(path)]), 0, self.stderr.getvalue())
        self.assertIn(": OK (1 domain(s), 1 user(s))", self.stdout.getvalue())
