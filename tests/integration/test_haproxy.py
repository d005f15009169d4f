"""
The real service behind HAProxy: the client address from the PROXY v2
header reaching the guard and the log, hostile headers dropped, and two
instances behind Debian's haproxy with the configuration docs/scaling.md
shows (the header parser alone is L{tests.unit.test_haproxy}).
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SkipTest

from tests.helpers import DEMO_PASSWORD, MINIMAL_INI, edit, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port
from tests.integration.test_service import REQUEST, basic, post_status

from tests.unit.test_haproxy import (
    HTTPS,
    documented_haproxy_config,
    ipv6_loopback,
    proxy_header,
    raw_header,
    replace_once,
)

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")


class ProxiedService(RunningService):
    """
    A service whose HTTPS listener is behind HAProxy: start-up waits through
    a PROXY header, as HAProxy's health check does.
    """

    def probe_connection(self) -> http.client.HTTPConnection:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return ProxiedHTTPS(self.port, raw_header(0x20, 0x00, b""), context, timeout=2)


class ProxiedHTTPS(http.client.HTTPConnection):
    """
    HTTPS to 127.0.0.1:C{port} after C{header}, as HAProxy forwards it.
    """

    def __init__(self, port: int, header: bytes, context: ssl.SSLContext,
                 timeout: float = 10) -> None:
        super().__init__("127.0.0.1", port, timeout=timeout)
        self._header = header
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        raw.sendall(self._header)
        self.sock = self._context.wrap_socket(raw, server_hostname="mail.example.test")


class ProxiedServiceTests(SynchronousTestCase):
    """
    The real service (twistd) with C{https = haproxy:ssl:...}, spoken to
    over loopback with hand-made PROXY v2 headers and real TLS.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.port = free_port()
        ini = edit(HTTPS, f"https = haproxy:ssl:{self.port}:interface=127.0.0.1:"
                   "privateKey=tls/server.key:certKey=tls/server.crt", MINIMAL_INI)
        ini = edit("backend = passwd\n", "backend = passwd\nfailure_delay = 0\n"
                   "network_failures = 3\n", ini)
        self.service = ProxiedService(write_config(self.directory, ini), self.port)
        self.addCleanup(self.service.stop)
        self.context = ssl.create_default_context(
            cafile=str(self.directory / "tls" / "server.crt"))

    def post(self, source: str, password: str) -> int:
        return post_status(ProxiedHTTPS(self.port, proxy_header(source), self.context),
                           basic("demo@example.test", password))

    def wait_for_log(self, text: str) -> None:
        deadline = time.monotonic() + 5
        while text not in self.service.log():
            if time.monotonic() > deadline:
                self.fail(f"{text!r} not in the log:\n{self.service.log()}")
            time.sleep(0.02)

    def test_header_source_reaches_the_guard(self) -> None:
        """
        The guard and its log lines see the header's source, not the
        connection's (127.0.0.1): three wrong passwords from 203.0.113.0/24
        lock that network, so even the right password from another address
        in it fails, while the same account logs in from 198.51.100.9;
        IPv6 sources are logged compressed, IPv4-mapped ones as IPv4.
        """
        for number in (1, 2, 3):
            self.assertEqual(self.post(f"203.0.113.{number}", f"wrong-{number}"), 401)
            self.wait_for_log(f"authentication failed: source=203.0.113.{number} "
                              "reason=rejected")
        self.assertEqual(self.post("203.0.113.200", DEMO_PASSWORD), 401)
        self.wait_for_log("authentication failed: source=203.0.113.200 "
                          "reason=network-throttled")
        self.assertEqual(self.post("198.51.100.9", DEMO_PASSWORD), 200)
        self.wait_for_log("authentication succeeded: source=198.51.100.9 ")
        self.assertEqual(self.post("2001:db8:0:0:0:0:0:7", "wrong-6"), 401)
        self.wait_for_log("authentication failed: source=2001:db8::7 reason=rejected")
        self.assertEqual(self.post("::ffff:192.0.2.44", "wrong-mapped"), 401)
        self.wait_for_log("authentication failed: source=192.0.2.44 reason=rejected")
        self.assertNotIn("source=127.0.0.1", self.service.log())

    def test_hostile_headers_and_service_keeps_answering(self) -> None:
        """
        Garbage, a version 1 header, a header cut short by the end of the
        connection and a direct TLS connection (no header) are each closed
        without a byte in answer; the service answers a proxied request
        after every one of them.
        """
        good = proxy_header("192.0.2.1")
        attempts = [(b"GET / HTTP/1.0\r\n\r\n" * 4, "no PROXY v2 signature"),
                    (b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 443\r\n", "a PROXY v1 header"),
                    (good[:20], "ended inside its PROXY header"),
                    (good[:12] + b"\x11" + good[13:], "version and command 0x11")]
        for data, logged in attempts:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
                raw.sendall(data)
                if logged.startswith("ended"):
                    raw.shutdown(socket.SHUT_WR)
                try:
                    self.assertEqual(raw.recv(1024), b"", data)
                except ConnectionResetError:
                    pass
            self.wait_for_log(logged)
            self.assertEqual(self.post("198.51.100.9", DEMO_PASSWORD), 200)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            self.assertRaises((ssl.SSLError, OSError), self.context.wrap_socket, raw,
                              server_hostname="mail.example.test")
        self.wait_for_log("connection from 127.0.0.1 dropped: no PROXY v2 signature")
        self.assertEqual(self.post("198.51.100.9", DEMO_PASSWORD), 200)


class HAProxyTests(SynchronousTestCase):
    """
    Two instances behind Debian's haproxy, run with the configuration of
    docs/scaling.md: clients reach both, over TLS verified against the
    instances' shared certificate, and each instance sees the client's own
    address.
    """

    def setUp(self) -> None:
        if HAPROXY is None:
            raise SkipTest("haproxy is not installed (tests/install-debian-packages)")
        self.directory = Path(self.mktemp()).absolute()
        self.instances: list[ProxiedService] = []
        self.https_ports = []
        self.http_ports = []
        for name in ("sd1", "sd2"):
            https_port, http_port = free_port(), free_port()
            ini = edit(HTTPS, f"https = haproxy:ssl:{https_port}:interface=127.0.0.1:"
                       "privateKey=tls/server.key:certKey=tls/server.crt\n"
                       f"http = haproxy:tcp:{http_port}:interface=127.0.0.1", MINIMAL_INI)
            # Every login verified, so that every one is logged with its source.
            ini = edit("backend = passwd\n", "backend = passwd\ncache_ttl = 0\n", ini)
            config = write_config(self.directory / name, ini)
            if self.instances:  # one certificate for all, as docs/scaling.md says
                shutil.copytree(self.directory / "sd1" / "tls", config.parent / "tls")
            instance = ProxiedService(config, https_port)
            self.addCleanup(instance.stop)
            self.instances.append(instance)
            self.https_ports.append(https_port)
            self.http_ports.append(http_port)
        self.certificate = self.directory / "sd1" / "tls" / "server.crt"
        self.ipv6 = ipv6_loopback()
        self.port, self.http_port = free_port(), free_port()
        runtime = Path(tempfile.mkdtemp(prefix="sd-haproxy-"))  # a socket path is short
        self.addCleanup(shutil.rmtree, runtime, ignore_errors=True)
        self.socket = runtime / "haproxy.sock"
        config = self.directory / "haproxy.cfg"
        config.write_text(self.haproxy_config(), encoding="utf-8")
        check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.log_path = self.directory / "haproxy.log"
        self._log = self.log_path.open("wb")
        self.addCleanup(self._log.close)
        self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)],
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop_haproxy)
        self.wait_listening()

    def haproxy_config(self) -> str:
        """
        docs/scaling.md's block with loopback addresses, free ports and the
        instances' certificate; a global section of our own (no daemon, no
        user switch, a stats socket to read the health checks).
        """
        block = documented_haproxy_config()
        binds = f"bind 127.0.0.1:{self.port}"
        if self.ipv6:
            binds += f"\n    bind [::1]:{self.port}"
        block = replace_once(block, "bind :::443 v4v6", binds)
        block = replace_once(block, "bind :::80 v4v6", f"bind 127.0.0.1:{self.http_port}")
        block = replace_once(block, "/etc/haproxy/smartdiscover.crt", str(self.certificate))
        for number, ports in enumerate(zip(self.https_ports, self.http_ports), 1):
            block = replace_once(block, f"10.0.0.1{number}:443", f"127.0.0.1:{ports[0]}")
            block = replace_once(block, f"10.0.0.1{number}:80", f"127.0.0.1:{ports[1]}")
        return (f"global\n    stats socket {self.socket} mode 600 level user\n\n" + block)

    def stop_haproxy(self) -> None:
        if self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()

    def wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.haproxy.poll() is not None:
                self.fail(f"haproxy exited with {self.haproxy.returncode}:\n"
                          + self.log_path.read_text(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        self.fail("haproxy did not listen:\n" + self.log_path.read_text(errors="replace"))

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """
        HAProxy's "show stat", by (proxy, server).
        """
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        names = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(names, line.split(","))) for line in lines[1:] if line]
        return {(row["pxname"], row["svname"]): row for row in rows}

    def post(self, host: str, source: str) -> int:
        context = ssl.create_default_context(cafile=str(self.certificate))
        connection = http.client.HTTPSConnection(host, self.port, context=context, timeout=10,
                                                 source_address=(source, 0))
        try:
            connection.request("POST", "/autodiscover/autodiscover.xml", body=REQUEST,
                               headers={"Authorization": basic("demo@example.test",
                                                               DEMO_PASSWORD),
                                        "Content-Type": "text/xml"})
            response = connection.getresponse()
            body = response.read()
            self.assertIn(b"<Protocol>", body)
            return response.status
        finally:
            connection.close()

    def wait_for(self, what: str, condition: Any, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"{what}\n--- haproxy:\n" + self.log_path.read_text(errors="replace")
                          + "".join(f"--- {i.config.parent.name}:\n{i.log()}"
                                    for i in self.instances))
            time.sleep(0.05)

    def test_both_instances_see_the_client(self) -> None:
        """
        New connections from 127.0.0.2 (not haproxy's 127.0.0.1) go round
        robin: each instance authenticates the demo user and logs the
        client's address; from ::1 (IPv6 client, IPv4 backend connection)
        the instances log ::1.  The plain-HTTP frontend reaches the
        redirect listener.  HAProxy's TLS health checks of /health/live,
        sent with a LOCAL PROXY header, pass on both.
        """
        for _ in range(4):
            self.assertEqual(self.post("127.0.0.1", "127.0.0.2"), 200)
        for instance in self.instances:
            self.wait_for(f"no success from 127.0.0.2 in {instance.log_path}",
                          lambda: "authentication succeeded: source=127.0.0.2 "
                                  in instance.log())
        if self.ipv6:
            for _ in range(2):
                self.assertEqual(self.post("::1", "::1"), 200)
            for instance in self.instances:
                self.wait_for(f"no success from ::1 in {instance.log_path}",
                              lambda: "authentication succeeded: source=::1 " in instance.log())
        for instance in self.instances:
            self.assertNotIn("source=127.0.0.1", instance.log())
            self.assertNotIn("dropped", instance.log())
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        connection.request("GET", "/autodiscover/autodiscover.xml",
                           headers={"Host": "autodiscover.example.test"})
        response = connection.getresponse()
        response.read()
        connection.close()
        self.assertEqual(response.status, 302)
        self.assertTrue(response.getheader("Location", "").startswith(
            "https://mail.example.test:"))

        def checked() -> bool:
            stats = self.stats()
            return all(stats[("smartdiscover_https", name)]["check_status"] == "L7OK"
                       and stats[("smartdiscover_http", name)]["check_status"] == "L4OK"
                       for name in ("sd1", "sd2"))
        self.wait_for("health checks did not pass", checked)
