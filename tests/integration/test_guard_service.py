"""
The guard's familiar places through the real service: clients on
different loopback addresses (127.0.0.0/8 is all loopback), over real TLS
(issue 14, sections 2 and 3).
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path


from tests.helpers import DEMO_PASSWORD, MINIMAL_INI, edit, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port
from tests.integration.test_service import basic, post_status

USER = "demo@example.test"


class FastFailureServiceTestCase(SynchronousTestCase):
    """
    One service; failed logins answered at once (C{failure_delay = 0}) so
    that the test counts, not waits.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp()).absolute()
        self.port = free_port()
        ini = edit("https = ssl:8443:", f"https = ssl:{self.port}:interface=127.0.0.1:",
                   edit("passwd_file = users.passwd\n",
                        "passwd_file = users.passwd\nfailure_delay = 0\n", MINIMAL_INI))
        self.service = RunningService(write_config(directory, ini), self.port)
        self.addCleanup(self.service.stop)
        self.context = ssl.create_default_context(cafile=str(directory / "tls" / "server.crt"))
        self.context.check_hostname = False


class FamiliarPlaceServiceTests(FastFailureServiceTestCase):
    def status(self, source: str, password: str = DEMO_PASSWORD) -> int:
        """
        The status of one authenticated POST from C{source}.
        """
        return post_status(http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=10,
            source_address=(source, 0)), basic(USER, password))

    def test_neighbour_cannot_lock_the_owner_out(self) -> None:
        """
        The owner logs in from 127.0.0.1; someone at 127.0.0.2, in the same
        /24, guesses twenty times.  The neighbour ends up locked (the right
        password fails there too), the owner at 127.0.0.1 does not.
        """
        self.assertEqual(self.status("127.0.0.1"), 200)
        for i in range(20):
            self.assertEqual(self.status("127.0.0.2", f"guess-{i}"), 401)
        self.assertEqual(self.status("127.0.0.2"), 401)
        self.assertEqual(self.status("127.0.0.1"), 200)

    def test_cached_login_makes_its_network_familiar(self) -> None:
        """
        The owner logs in from 127.0.0.1, then (answered from the cache)
        from 127.1.0.1.  A spray from other networks locks the account's
        unfamiliar counter: a new network is refused, 127.1.0.1 is not.
        """
        self.assertEqual(self.status("127.0.0.1"), 200)
        self.assertEqual(self.status("127.1.0.1"), 200)
        for i in range(10):
            self.assertEqual(self.status(f"127.{i + 2}.0.1", f"guess-{i}"), 401)
        self.assertEqual(self.status("127.99.0.1"), 401)
        self.assertEqual(self.status("127.1.0.1"), 200)
