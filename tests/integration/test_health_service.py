"""
Integration test of the health layer (issue 7 sections 2, 3 and 5): the
real service under twistd probes an IMAP service with two hosts, one of
which refuses connections, and with advertise_unhealthy = no leaves that
one out of POX and DNS while /health, /health/ready and /metrics report it.

Linux routes all of 127.0.0.0/8 to loopback: the IMAP greeter listens on
127.0.0.2 only, so the same port on 127.0.0.1 refuses connections.  The
greeter is a plain threaded socket server (the trial reactor does not run
in a L{SynchronousTestCase}).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import socketserver
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Callable

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import DEMO_PASSWORD, build_ini, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port, free_udp_port

HEALTHY = "127.0.0.2"  # where the greeter listens
BROKEN = "127.0.0.1"  # the same port here refuses connections
WAIT = 15.0  # seconds all waits of the test may take together

# The minimal file on loopback with IMAP alone, on a broken and a healthy
# host, checked every second; a str.format template of the ports and hosts.
CONFIG = build_ini({
    "server": {"https": "ssl:{https_port}:interface=127.0.0.1:"
                        "privateKey=tls/server.key:certKey=tls/server.crt",
               "dns": "127.0.0.1:{dns_port}"},
    "imap": {"host": "{broken}, {healthy}", "port": "{imap_port}", "security": "none"},
    "pop3": None,
    "smtp": None,
    "urls": None,
    "health": {"interval": "1", "timeout": "1", "grace": "1", "advertise_unhealthy": "no"},
    "dns": {"rrl_rate": "0"},
    "hosts": {"mail.example.test": "127.0.0.1"},
})

POX_NS = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
POX_REQUEST = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
    b'outlook/requestschema/2006"><Request>'
    b"<EMailAddress>demo@example.test</EMailAddress>"
    b"<AcceptableResponseSchema>" + POX_NS["a"].encode() + b"</AcceptableResponseSchema>"
    b"</Request></Autodiscover>")


class IMAPGreeter(socketserver.StreamRequestHandler):
    """
    Just enough IMAP for a probe: the greeting, CAPABILITY and LOGOUT.
    """

    timeout = 5

    def handle(self) -> None:
        try:
            self.wfile.write(b"* OK ready\r\n")
            for line in self.rfile:
                tag, _, command = line.strip().partition(b" ")
                if command.upper() == b"CAPABILITY":
                    self.wfile.write(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
                elif command.upper() == b"LOGOUT":
                    self.wfile.write(b"* BYE\r\n" + tag + b" OK done\r\n")
                    return
                else:
                    self.wfile.write(tag + b" BAD unknown\r\n")
        except OSError:
            return


class GreeterServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def refuses(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


class HealthServiceTests(SynchronousTestCase):
    """
    One twistd process whose IMAP service lists a broken and a healthy host.
    """

    def setUp(self) -> None:
        self.start_greeter()
        self.directory = Path(self.mktemp()).absolute()
        self.https_port = free_port()
        self.dns_port = free_udp_port()
        while self.dns_port == self.https_port:
            self.dns_port = free_udp_port()
        self.config = write_config(self.directory, CONFIG.format(
            https_port=self.https_port, dns_port=self.dns_port, imap_port=self.imap_port,
            broken=BROKEN, healthy=HEALTHY))
        self.service = RunningService(self.config, self.https_port)
        self.addCleanup(self.service.stop)
        self.context = ssl.create_default_context(
            cafile=str(self.directory / "tls" / "server.crt"))
        self.deadline = time.monotonic() + WAIT

    def start_greeter(self) -> None:
        """
        The greeter on 127.0.0.2, on a port that refuses on 127.0.0.1.
        """
        for _ in range(20):
            server = GreeterServer((HEALTHY, 0), IMAPGreeter)
            port = server.server_address[1]
            if refuses(BROKEN, port):
                break
            server.server_close()
        else:
            self.fail("no port free on 127.0.0.1 beside the greeter's")
        self.imap_port = port
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port,
                                                 context=self.context, timeout=5)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def until(self, what: str, check: Callable[[], Any]) -> Any:
        """
        Poll C{check} until it returns something true, within the test's
        overall deadline.
        """
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > self.deadline:
                self.fail(f"not within {WAIT:g} s: {what}\n{self.service.log()}")
            time.sleep(0.2)

    def endpoint(self, name: str) -> str:
        return f"imap://{name}:{self.imap_port}"

    def health(self) -> dict[str, Any] | None:
        """
        The /health endpoints by name once the broken one is left out.
        """
        status, body = self.request("GET", "/health")
        self.assertEqual(status, 200)
        endpoints = {e["endpoint"]: e for e in json.loads(body)["endpoints"]}
        broken = endpoints.get(self.endpoint(BROKEN))
        if broken is None or broken["advertised"]:
            return None
        return endpoints

    def srv(self) -> list[str] | None:
        """
        The targets of _imap._tcp.example.test once it lists one host.
        """
        query = dns.message.make_query("_imap._tcp.example.test", "SRV")
        try:
            response = dns.query.udp(query, "127.0.0.1", port=self.dns_port, timeout=1)
        except dns.exception.Timeout:
            return None
        targets = [r.target.to_text() for rrset in response.answer
                   if rrset.rdtype == dns.rdatatype.SRV for r in rrset]
        return targets if len(targets) == 1 else None

    def test_broken_endpoint_left_out(self) -> None:
        """
        After a few seconds /health shows 127.0.0.1 failing (connection
        refused) and 127.0.0.2 working; POX and the SRV records offer only
        127.0.0.2; /health/ready stays 200 (IMAP has a working endpoint);
        /metrics reports the endpoints as down and up (issue 7 sections 2,
        3 and 5; SECURITY.md: the detail goes to loopback only).
        """
        endpoints = self.until("127.0.0.1 left out in /health", self.health)
        broken, healthy = endpoints[self.endpoint(BROKEN)], endpoints[self.endpoint(HEALTHY)]
        self.assertEqual((broken["state"], broken["error"], broken["advertised"]),
                         ("failing", "connection refused", False))
        self.assertEqual((healthy["state"], healthy["error"], healthy["advertised"]),
                         ("ok", None, True))
        self.assertEqual(healthy["detail"], "* OK ready")

        self.assertEqual(self.until("one SRV target for _imap._tcp", self.srv),
                         [HEALTHY + "."])

        authorization = "Basic " + base64.b64encode(
            f"demo@example.test:{DEMO_PASSWORD}".encode()).decode()
        status, body = self.request("POST", "/autodiscover/autodiscover.xml", POX_REQUEST,
                                    {"Authorization": authorization,
                                     "Content-Type": "text/xml; charset=utf-8"})
        self.assertEqual(status, 200)
        servers = etree.fromstring(body).xpath(
            "//a:Protocol[a:Type='IMAP']/a:Server/text()", namespaces=POX_NS)
        self.assertEqual(servers, [HEALTHY])

        status, body = self.request("GET", "/health/ready")
        self.assertEqual((status, json.loads(body)["ready"]), (200, True))

        status, body = self.request("GET", "/metrics")
        self.assertEqual(status, 200)
        up = {s.labels["endpoint"]: s.value
              for family in text_string_to_metric_families(body.decode("utf-8"))
              for s in family.samples if s.name == "smartdiscover_endpoint_up"}
        self.assertEqual(up, {self.endpoint(BROKEN): 0, self.endpoint(HEALTHY): 1})
        self.assertNotIn("Traceback", self.service.log())
