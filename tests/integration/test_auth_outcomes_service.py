"""
C{smartdiscover_auth_total{outcome}} through the real service (issue 16,
section 6): a phone retrying a stale password is C{repeated}, not
C{throttled}; the policy's locks are C{throttled}; unreadable credentials
are C{malformed}.  Clients on different loopback addresses (127.0.0.0/8 is
all loopback), over real TLS, /metrics scraped from 127.0.0.1 and parsed
with prometheus_client's parser; the log lines keep their reasons and the
shipped fail2ban filter still matches every failure.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import DEMO_PASSWORD, PROJECT_ROOT
from tests.integration.test_guard_service import FastFailureServiceTestCase
from tests.integration.test_service import basic, post_status

USER = "demo@example.test"
PHONE = "127.0.0.1"
RETRIES = 12  # the stale password, sent this many times
FILTER = PROJECT_ROOT / "etc" / "fail2ban" / "filter.d" / "smartdiscover.conf"


class AuthOutcomeServiceTests(FastFailureServiceTestCase):
    def connection(self, source: str) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                           timeout=10, source_address=(source, 0))

    def status(self, source: str, password: str = DEMO_PASSWORD) -> int:
        return post_status(self.connection(source), basic(USER, password))

    def outcomes(self) -> dict[str, float]:
        """
        C{smartdiscover_auth_total} by outcome, scraped from loopback.
        """
        connection = self.connection(PHONE)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read().decode("utf-8")
        finally:
            connection.close()
        self.assertEqual(response.status, 200, body)
        return {sample.labels["outcome"]: sample.value
                for family in text_string_to_metric_families(body)
                for sample in family.samples if sample.name == "smartdiscover_auth_total"}

    def reasons(self) -> list[str]:
        return re.findall(r"authentication failed: source=\S+ reason=(\S+) ", self.service.log())

    def test_stale_password_is_repeated_not_throttled(self) -> None:
        """
        Every outcome is exposed from the start, at 0.  The phone logs in,
        then retries a stale password RETRIES times: one failure, RETRIES - 1
        repeated, throttled still 0, and the right password still works from
        the phone.  Then a spray from an unfamiliar network fills its
        counter: those guesses are failures and then throttled, and
        repeated does not move.  An unreadable Authorization header is
        malformed.  The log says rejected, repeated-password,
        network-throttled and malformed-credentials, and the fail2ban
        filter matches every one of those lines.
        """
        self.assertEqual(self.outcomes(),
                         dict.fromkeys(("success", "failure", "repeated", "throttled",
                                        "malformed", "busy", "unavailable", "error"), 0.0))
        self.assertEqual(self.status(PHONE), 200)
        for _ in range(RETRIES):
            self.assertEqual(self.status(PHONE, "stale-password"), 401)
        outcomes = self.outcomes()
        self.assertEqual((outcomes["success"], outcomes["failure"], outcomes["repeated"],
                          outcomes["throttled"]), (1, 1, RETRIES - 1, 0))
        self.assertEqual(self.status(PHONE), 200)

        for i in range(8):  # network_failures = 5 per /24
            self.assertEqual(self.status(f"127.5.0.{i + 1}", f"guess-{i}"), 401)
        self.assertEqual(post_status(self.connection("127.5.0.20"), "Basic !!!"), 401)
        outcomes = self.outcomes()
        self.assertEqual({k: v for k, v in outcomes.items() if v},
                         {"success": 2, "failure": 6, "repeated": RETRIES - 1, "throttled": 3,
                          "malformed": 1})

        reasons = self.reasons()
        self.assertEqual(reasons, ["rejected"] + ["repeated-password"] * (RETRIES - 1)
                         + ["rejected"] * 5 + ["network-throttled"] * 3
                         + ["malformed-credentials"])
        if shutil.which("fail2ban-regex") is None:
            self.skipTest("fail2ban-regex is not installed (tests/install-debian-packages)")
        result = subprocess.run(["fail2ban-regex", str(self.service.log_path), str(FILTER)],
                                capture_output=True, text=True, check=True).stdout
        # A stale password sent again bans no one: every line but those.
        self.assertRegex(result, rf"Lines: \d+ lines, 0 ignored, {len(reasons) - (RETRIES - 1)} "
                                 "matched")
