"""
Issue 16 sections 1 and 7 through the real service: twistd listening on free
loopback ports behind a (pretend) forward that publishes 443 and 80.  Real
TLS, the real DNS responder queried with dnspython, the plain-HTTP listener,
SIGHUP, C{check-config} and C{probe} as commands.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from pathlib import Path

import dns.exception
import dns.message
import dns.query
from twisted.internet.protocol import Factory

from tests.helpers import DEMO_PASSWORD, MINIMAL_INI, PROJECT_ROOT, build_ini, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port, free_udp_port
from tests.integration.test_dns_service import wait_dns
from tests.integration.test_probe_cli import (
    IMAP,
    PASSWD,
    PATH,
    SERVICE_INI,
    ProbeCommandTestCase,
)
from tests.integration.test_service import REQUEST, basic

LOOPBACK = "127.0.0.1"
MAIN_URL = "https://mail.example.test/autodiscover/autodiscover.xml"
AUTOCONFIG = "/mail/config-v1.1.xml"


def service_ini(https: int, http: int, dns_port: int, **public: str) -> str:
    """
    The minimal file on loopback with plain HTTP and DNS, and the public
    ports given (C{public_https_port="443"}, ...).
    """
    return build_ini({
        "server": {"https": f"ssl:{https}:interface=127.0.0.1:"
                            "privateKey=tls/server.key:certKey=tls/server.crt",
                   "http": f"tcp:{http}:interface=127.0.0.1",
                   "dns": f"{LOOPBACK}:{dns_port}", **public},
        "dns": {"rrl_rate": "0"},
        "hosts": {"mail.example.test": LOOPBACK},
    }, base=MINIMAL_INI)


class BehindForwardTests(SynchronousTestCase):
    """
    The service on free ports, with C{public_https_port = 443} and
    C{public_http_port = 80}.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.port, self.http_port, self.dns_port = free_port(), free_port(), free_udp_port()
        self.config = write_config(self.directory, self.ini(public_https_port="443",
                                                            public_http_port="80"))
        self.service = RunningService(self.config, self.port)
        self.addCleanup(self.service.stop)
        wait_dns(self.dns_port)
        self.certificate = self.directory / "tls" / "server.crt"

    def ini(self, **public: str) -> str:
        return service_ini(self.port, self.http_port, self.dns_port, **public)

    def https(self, method: str, path: str, host: str = "mail.example.test",
              headers: dict[str, str] | None = None,
              body: bytes | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        """
        One request over TLS verified against the development certificate
        (which names the loopback address we connect to).
        """
        context = ssl.create_default_context(cafile=str(self.certificate))
        connection = http.client.HTTPSConnection(LOOPBACK, self.port, context=context,
                                                 timeout=10)
        self.addCleanup(connection.close)
        connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response, response.read()

    def plain(self, path: str, host: str,
              headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(LOOPBACK, self.http_port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        response.read()
        return response

    def v1_url(self) -> str:
        response, body = self.https("GET", "/autodiscover/autodiscover.json?"
                                           "Email=demo@example.test&Protocol=AutodiscoverV1")
        self.assertEqual(response.status, 200, body)
        url: str = json.loads(body)["Url"]
        return url

    def srv(self, tcp: bool = False) -> tuple[int, int, int, str]:
        query = dns.message.make_query("_autodiscover._tcp.example.test", "SRV")
        send = dns.query.tcp if tcp else dns.query.udp
        [rrset] = send(query, LOOPBACK, timeout=5, port=self.dns_port).answer
        [record] = rrset
        return record.priority, record.weight, record.port, record.target.to_text()

    def test_answers_name_the_public_port(self) -> None:
        """
        v2's AutodiscoverV1 URL has no port (443), the SRV record says 443
        over UDP and TCP, the plain-HTTP 302 names no port, and the POX
        answer names no listening port anywhere.
        """
        self.assertEqual(self.v1_url(), MAIN_URL)
        for tcp in (False, True):
            self.assertEqual(self.srv(tcp), (0, 5, 443, "mail.example.test."))
        for host in ("autodiscover.example.test", "evil.example"):
            response = self.plain("/autodiscover/autodiscover.xml", host)
            self.assertEqual((response.status, response.getheader("Location")),
                             (302, MAIN_URL))
        response, body = self.https("POST", "/autodiscover/autodiscover.xml", headers={
            "Authorization": basic("demo@example.test", DEMO_PASSWORD),
            "Content-Type": "text/xml"}, body=REQUEST)
        self.assertEqual(response.status, 200, body)
        self.assertIn(b"<Type>IMAP</Type>", body)
        for port in (self.port, self.http_port, self.dns_port):
            self.assertNotIn(str(port).encode(), body)

    def test_plain_http_autoconfig_redirect(self) -> None:
        """
        Thunderbird's plain-HTTP fallback gets a 302 to the same path and
        query over https on the same name (no challenge, credentials
        ignored); the https URL, fetched where the forward would take it,
        is the domain's autoconfig document.  A foreign Host goes to the
        public host name.
        """
        query = "?emailaddress=demo%40example.test"
        for host, path in (("autoconfig.example.test", AUTOCONFIG),
                           ("example.test", "/.well-known/autoconfig" + AUTOCONFIG)):
            response = self.plain(path + query, host, {
                "Authorization": basic("demo@example.test", "leaked-secret")})
            self.assertEqual((response.status, response.getheader("Location")),
                             (302, f"https://{host}{path}{query}"))
            self.assertIsNone(response.getheader("WWW-Authenticate"))
            response, body = self.https("GET", path + query, host=host)
            self.assertEqual(response.status, 200, body)
            self.assertIn(b"<domain>example.test</domain>", body)
            self.assertIn(b"<hostname>mail.example.test</hostname>", body)
        response = self.plain(AUTOCONFIG, "autoconfig.evil.example")
        self.assertEqual(response.getheader("Location"), f"https://mail.example.test{AUTOCONFIG}")
        self.assertNotIn("leaked-secret", self.service.log())

    def test_reload_changes_the_public_port(self) -> None:
        """
        SIGHUP applies a new public port to every answer at once, without a
        restart warning; removing it publishes the listening port.
        """
        self.config.write_text(self.ini(public_https_port="8444", public_http_port="80"),
                               encoding="utf-8")
        self.service.reload("reloaded")
        self.assertEqual(self.v1_url(),
                         "https://mail.example.test:8444/autodiscover/autodiscover.xml")
        self.assertEqual(self.srv()[2], 8444)
        self.assertEqual(self.plain(AUTOCONFIG, "autoconfig.example.test").getheader("Location"),
                         f"https://autoconfig.example.test:8444{AUTOCONFIG}")
        self.config.write_text(self.ini(), encoding="utf-8")
        self.service.reload("reloaded")
        self.assertEqual(self.v1_url(),
                         f"https://mail.example.test:{self.port}/autodiscover/autodiscover.xml")
        self.assertEqual(self.srv()[2], self.port)
        self.assertNotIn("restart to", self.service.log())

    def test_bad_value_on_reload_changes_nothing(self) -> None:
        """
        A hostile value on reload is refused with file, section and key;
        the answers keep the public port in force.
        """
        self.config.write_text(self.ini(public_https_port="443abc"), encoding="utf-8")
        self.service.reload("reload failed")
        self.assertIn("[server] public_https_port: '443abc' is not a port number",
                      self.service.log())
        self.assertEqual(self.v1_url(), MAIN_URL)
        self.assertEqual(self.srv()[2], 443)


class CheckConfigTests(SynchronousTestCase):
    """
    C{smartdiscover check-config} as a command.
    """

    def check(self, **public: str) -> tuple[int, str, str]:
        config = write_config(Path(self.mktemp()).absolute(),
                              service_ini(8443, 8080, 53, **public))
        run = subprocess.run([sys.executable, "-m", "smartdiscover.cli", "check-config",
                              str(config)], capture_output=True, text=True, timeout=60,
                             cwd=str(PROJECT_ROOT))
        return run.returncode, run.stdout, run.stderr

    def test_warnings_and_errors(self) -> None:
        """
        DNS on port 53 makes it a deployment: without public ports both
        are warned about (status 0); with 443 and 80 there is nothing to
        say; a hostile value fails with file, section and key.
        """
        status, out, err = self.check()
        self.assertEqual(status, 0, err)
        self.assertIn("OK", out)
        self.assertEqual([line.split(": warning:")[0].rsplit(": ", 1)[1]
                          for line in err.splitlines()],
                         ["[server] public_https_port", "[server] public_http_port"])
        self.assertEqual(self.check(public_https_port="443", public_http_port="80")[0::2],
                         (0, ""))
        status, _, err = self.check(public_https_port="65536")
        self.assertEqual(status, 1)
        self.assertIn("sd.ini: [server] public_https_port: '65536' is not a port number", err)


class StartTests(SynchronousTestCase):
    """
    twistd itself on a hostile value.
    """

    def test_hostile_value_refused_at_start(self) -> None:
        """
        The service does not start, and says which file, section and key
        (Arabic-Indic digits, which int() would read as 443; the other
        hostile values are refused by the same converter, in
        tests/unit/test_public_ports.py).
        """
        for value in ("\u0664\u0664\u0663",):
            port = free_port()
            config = write_config(Path(self.mktemp()).absolute(), service_ini(
                port, free_port(), free_udp_port(), public_https_port=value))
            error = self.assertRaises(RuntimeError, RunningService, config, port)
            self.assertIn(f"sd.ini: [server] public_https_port: {value!r} is not a port "
                          "number (1-65535)", str(error))


class ProbeBehindForwardTests(ProbeCommandTestCase):
    """
    C{smartdiscover probe --port N} beside a service that listens on N and
    publishes 443: every candidate, the SRV one included, passes.
    """

    async def test_every_candidate_passes(self) -> None:
        imap_port, dns_port, http_port = free_port(), free_udp_port(), free_port()
        https = free_port()
        directory = self.directory / "service"
        config = write_config(directory, build_ini({"server": {
            "dns": f"{LOOPBACK}:{dns_port}", "http": f"tcp:{http_port}:interface=127.0.0.1",
            "public_https_port": "443", "public_http_port": "80"}},
            base=SERVICE_INI.format(https=https, imap=imap_port)), passwd=PASSWD)
        service = RunningService(config, https)
        self.addCleanup(service.stop)
        self.wait_for_dns(dns_port)
        self.ca = str(directory / "tls" / "server.crt")
        self.key = str(directory / "tls" / "server.key")
        self.listen(Factory.forProtocol(IMAP), tls=True, port=imap_port)

        status, out, err = await self.probe("--all", "--json", dns_port=dns_port,
                                            https_port=https, http_port=http_port)
        document = json.loads(out)
        checks = {check["name"]: check for check in document["checks"]}
        self.assertEqual((status, [n for n, c in checks.items() if not c["ok"]], err),
                         (0, [], ""), out)
        self.assertEqual(checks["5 _autodiscover._tcp.example.test SRV"]["detail"],
                         "0 5 443 mail.example.test")
        self.assertTrue(checks[f"5 mail.example.test:{https} answer"]["ok"])
        self.assertEqual(checks[f"4 autodiscover.example.test:{http_port} redirect"]["detail"],
                         f"HTTP 302 to https://mail.example.test{PATH}, followed")
