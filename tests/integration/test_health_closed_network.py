"""
Integration test of honest health on a closed network (issue 16 section
5), through the real service under twistd on etc/sd.ini as shipped (only
its listening ports changed to free ones).

- The shipped zone publishes mail.example.test at 127.0.0.1 and ::1, and
  the probes connect there, without DNS: /health reports the mail, XMPP
  and SIP endpoints as "connection refused at 127.0.0.1 ..." where nothing
  listens, never "cannot resolve".
- With [health] probes = no, no probe runs at start or on the interval
  (the log says so, /health shows no round and nothing reaches a listener
  the configuration points at), and /health/ready is 200; a reload with
  probes = yes reaches that listener at once, so the listener would have
  seen a probe.
"""

from __future__ import annotations

import http.client
import json
import select
import shutil
import socket
import ssl
import time
from pathlib import Path
from typing import Any, Callable

from tests.helpers import PROJECT_ROOT, edit
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port, free_udp_port

WAIT = 20.0  # seconds all waits of one test may take together
SOCKET_PROTOCOLS = ("imap", "pop3", "smtp", "xmpp", "sip")


def _state(family: socket.AddressFamily, host: str, port: int) -> str:
    """
    What a connection to C{host}:C{port} meets right now: "refused",
    "open", or "unreachable" (no IPv6 on this machine, say).
    """
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return "unreachable"
    with s:
        s.settimeout(1)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return "refused"
        except OSError:
            return "unreachable"
        return "open"


class ClosedNetworkTests(SynchronousTestCase):
    """
    One twistd process on a copy of etc/sd.ini and etc/users.passwd.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.directory.mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "etc" / "users.passwd", self.directory / "users.passwd")
        self.https_port = free_port()
        self.http_port = free_port()
        self.dns_port = free_udp_port()
        while len({self.https_port, self.http_port, self.dns_port}) < 3:
            self.http_port, self.dns_port = free_port(), free_udp_port()
        self.deadline = time.monotonic() + WAIT

    def start(self, extra: str = "", changes: Callable[[str], str] = lambda ini: ini) -> None:
        """
        Start the service on the shipped file with free listening ports,
        C{changes} applied and C{extra} appended.
        """
        ini = (PROJECT_ROOT / "etc" / "sd.ini").read_text(encoding="utf-8")
        ini = edit("https = ssl:8443:", f"https = ssl:{self.https_port}:", ini)
        ini = edit("http = tcp:8080\n", f"http = tcp:{self.http_port}\n", ini)
        ini = edit("dns = 127.0.0.1:8053\n", f"dns = 127.0.0.1:{self.dns_port}\n", ini)
        self.config = self.directory / "sd.ini"
        self.config.write_text(changes(ini) + extra, encoding="utf-8")
        self.service = RunningService(self.config, self.https_port)
        self.addCleanup(self.service.stop)

    def request(self, path: str) -> tuple[int, Any]:
        """
        GET C{path} from loopback; the status and the JSON document.
        """
        context = ssl.create_default_context(cafile=str(self.directory / "tls" / "server.crt"))
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port,
                                                 context=context, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def until(self, what: str, check: Callable[[], Any]) -> Any:
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > self.deadline:
                self.fail(f"not within {WAIT:g} s: {what}\n{self.service.log()}")
            time.sleep(0.2)

    def first_round(self) -> dict[str, Any] | None:
        status, document = self.request("/health")
        self.assertEqual(status, 200)
        if document["rounds"] < 1:
            return None
        return document

    def test_shipped_config_refused_not_unresolved(self) -> None:
        """
        Every endpoint of the shipped file was probed, none "cannot
        resolve"; each mail, XMPP and SIP endpoint whose port refuses on
        127.0.0.1 says "connection refused at 127.0.0.1", followed by
        "and ::1" when that refuses too (the zone's order).
        """
        self.start()
        document = self.until("a first round in /health", self.first_round)
        self.assertTrue(document["probes"])
        endpoints = {e["endpoint"]: e for e in document["endpoints"]}
        self.assertTrue(endpoints)
        for name, endpoint in endpoints.items():
            self.assertEqual(endpoint["state"], "failing" if endpoint["error"] else "ok", name)
            self.assertNotIn("cannot resolve", endpoint["error"] or "", name)
        checked = 0
        for name, endpoint in endpoints.items():
            protocol, _, rest = name.partition("://")
            if protocol not in SOCKET_PROTOCOLS:
                continue
            host, _, port = rest.rpartition(":")
            self.assertEqual(host, "mail.example.test", name)
            v4 = _state(socket.AF_INET, "127.0.0.1", int(port))
            v6 = _state(socket.AF_INET6, "::1", int(port))
            if v4 != "refused" or v6 == "open":
                continue  # something of this machine listens there
            checked += 1
            if v6 == "refused":
                self.assertEqual(endpoint["error"], "connection refused at 127.0.0.1 and ::1",
                                 name)
            else:  # ::1 fails otherwise, and is named with its own reason
                self.assertTrue(endpoint["error"].startswith("connection refused at 127.0.0.1; "),
                                (name, endpoint["error"]))
                self.assertTrue(endpoint["error"].endswith(" at ::1"), (name, endpoint["error"]))
        self.assertGreater(checked, 0, endpoints)

    def test_probes_off(self) -> None:
        """
        probes = no (with a 1 s interval that would probe every second): no
        probe runs; the log says so; /health has no round and no endpoint;
        /health/ready is 200; the IMAP port the file names sees no
        connection, until a reload with probes = yes probes it at once.
        """
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        imap_port = listener.getsockname()[1]

        def imap_here(ini: str) -> str:
            return edit("[imap]\nhost = mail.example.test\nport = 993\n",
                        f"[imap]\nhost = mail.example.test\nport = {imap_port}\n", ini)

        self.start("\n[health]\nprobes = no\ninterval = 1\ntimeout = 1\n", imap_here)
        time.sleep(3)  # three intervals
        self.assertIn("health probes are off ([health] probes = no)", self.service.log())
        status, document = self.request("/health")
        self.assertEqual(status, 200)
        self.assertEqual((document["probes"], document["rounds"], document["endpoints"]),
                         (False, 0, []))
        status, ready = self.request("/health/ready")
        self.assertEqual((status, ready["ready"], ready["problems"]), (200, True, []))
        readable, _, _ = select.select([listener], [], [], 0)
        self.assertEqual(readable, [], "a probe connected with probes = no")

        self.config.write_text(self.config.read_text(encoding="utf-8").replace(
            "probes = no", "probes = yes"), encoding="utf-8")
        self.service.reload("reloaded")
        readable, _, _ = select.select([listener], [], [], 10)
        self.assertEqual(readable, [listener], "probes = yes did not reach the listener")
