"""
The shipped fail2ban filter against the log lines SmartDiscover really
writes (SECURITY.md 3.4: every failure line matches, with the real client
address; no password in the log).
"""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher, textFileLogObserver

from smartdiscover.auth.credentials import BasicCredentials
from smartdiscover.auth.guard import Guard
from smartdiscover.config import load
from smartdiscover.config.principal import Principal
from tests.helpers import PROJECT_ROOT, write_config
from tests.integration import SynchronousTestCase

FILTER = PROJECT_ROOT / "etc" / "fail2ban" / "filter.d" / \
    "smartdiscover.conf"
SECRET = "Spray-Guess-2026"


class _Backend:
    credentialInterfaces = ()

    def requestAvatarId(self, credentials: Any) -> Any:
        if credentials.password == b"right":
            return succeed(Principal("demo@example.test"))
        return fail(UnauthorizedLogin())


class Fail2banFilterTests(SynchronousTestCase):
    def test_filter_matches_every_failure(self) -> None:
        """
        fail2ban-regex finds exactly the failed logins, each with its real
        source address, IPv4 and IPv6; a user name that pretends to carry
        another source or reason cannot forge it; a wrong password sent
        again (repeated-password) and successes do not match; the password
        never reaches the log.
        """
        model = load(write_config(self.mktemp()))
        guard = Guard(_Backend(), lambda: model, Clock())
        log = io.StringIO()
        observer = textFileLogObserver(log)
        globalLogPublisher.addObserver(observer)
        try:
            attempts = [("demo@example.test", "192.0.2.7", SECRET),
                        ("x source=6.6.6.6 reason=y user=", "192.0.2.8", SECRET),
                        ("demo@example.test", "2001:db8::5", SECRET + "-2"),
                        ("demo@example.test", "192.0.2.10", SECRET),
                        ("x reason=repeated-password user=", "192.0.2.11", SECRET),
                        ("demo@example.test", "192.0.2.9", "right")]
            for user, source, password in attempts:
                d = guard.requestAvatarId(
                    BasicCredentials(user, password.encode(), source))
                d.addErrback(lambda f: f.trap(UnauthorizedLogin))
        finally:
            globalLogPublisher.removeObserver(observer)
        path = Path(self.mktemp())
        path.write_text(log.getvalue())
        self.assertNotIn(SECRET, log.getvalue())
        result = subprocess.run(["fail2ban-regex", "-v", str(path), str(FILTER)],
                                capture_output=True, text=True, check=True).stdout
        self.assertEqual(re.findall(r"authentication failed: source=\S+ reason=(\S+)",
                                    log.getvalue()),
                         ["rejected", "rejected", "rejected", "repeated-password",
                          "rejected"])
        self.assertRegex(result, r"Lines: \d+ lines, 0 ignored, 4 matched")
        hosts = re.findall(r"^\|\s+(\S+)\s+\w{3} \w{3} ", result, re.MULTILINE)
        self.assertEqual(hosts, ["192.0.2.7", "192.0.2.8", "2001:db8::5", "192.0.2.11"])
