"""
A service on several ports (issue 16 section 2) through the real service
under twistd on loopback: SMTP on 465/ssl and 587/starttls (RFC 8314 and
RFC 6186; PROTOCOLS.md 9.2 and 9.7) in POX (PROTOCOLS.md 2.7), autoconfig
(7.3), the DNS responder asked with dnspython, /health, a reload, a
hostile value refused by check-config and by a reload, the shipped
etc/sd.ini, and C{smartdiscover probe} checking each endpoint and each SRV
owner against SMTP servers built here.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
from lxml import etree
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

from tests.helpers import DEMO_PASSWORD, PROJECT_ROOT, build_ini, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port, free_udp_port
from tests.integration.test_dns_service import wait_dns
from tests.integration.test_probe_cli import PASSWD, ProbeCommandTestCase

LOOPBACK = "127.0.0.1"
MAIL = "mail.example.test."
NS = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
REQUEST = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>demo@example.test</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""
AUTHORIZATION = "Basic " + base64.b64encode(
    f"demo@example.test:{DEMO_PASSWORD}".encode()).decode()


def service_ini(https_port: int, dns_port: int, ports: str = "465/ssl, 587/starttls") -> str:
    """
    The minimal file on loopback with the DNS responder, a second domain
    whose override lists 587 alone, and SMTP on C{ports}.
    """
    return build_ini({
        "server": {"domains": "example.test, example.org",
                   "https": f"ssl:{https_port}:interface=127.0.0.1:"
                            "privateKey=tls/server.key:certKey=tls/server.crt",
                   "dns": f"127.0.0.1:{dns_port}"},
        "smtp": {"port": None, "security": None, "ports": ports},
        "dns": {"rrl_rate": "0"},
        "hosts": {"mail.example.test": LOOPBACK},
        "domain:example.org": {"smtp.ports": "587/starttls"},
    })


class _ServiceTestCase(SynchronousTestCase):
    https_port: int
    dns_port: int
    config: Path
    service: RunningService

    def start(self, config: Path, https_port: int, dns_port: int) -> None:
        self.https_port, self.dns_port, self.config = https_port, dns_port, config
        self.service = RunningService(config, https_port)
        self.addCleanup(self.service.stop)
        wait_dns(dns_port)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.config.parent / "tls" / "server.crt"))
        context.check_hostname = False
        connection = http.client.HTTPSConnection(LOOPBACK, self.https_port, context=context,
                                                 timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def pox_smtp(self) -> list[tuple[str, str, str]]:
        """
        (Server, Port, Encryption) of every SMTP Protocol of the demo
        user's POX answer, in document order.
        """
        status, body = self.request("POST", "/autodiscover/autodiscover.xml", REQUEST,
                                    {"Authorization": AUTHORIZATION,
                                     "Content-Type": "text/xml; charset=utf-8"})
        self.assertEqual(status, 200, body)
        root = etree.fromstring(body)
        return [(p.findtext("a:Server", namespaces=NS), p.findtext("a:Port", namespaces=NS),
                 p.findtext("a:Encryption", namespaces=NS))
                for p in root.xpath("//a:Protocol[a:Type='SMTP']", namespaces=NS)]

    def autoconfig_smtp(self, address: str) -> list[tuple[str, str]]:
        status, body = self.request("GET", f"/mail/config-v1.1.xml?emailaddress={address}")
        self.assertEqual(status, 200, body)
        root = etree.fromstring(body)
        return [(s.findtext("port") or "", s.findtext("socketType") or "")
                for s in root.iter("outgoingServer")]

    def srv(self, owner: str, tcp: bool = False) -> list[tuple[int, int, str]]:
        """
        (priority, port, target) at C{owner}, asked of the responder.
        """
        query = dns.message.make_query(owner, "SRV")
        ask = dns.query.tcp if tcp else dns.query.udp
        response = ask(query, LOOPBACK, timeout=2.0, port=self.dns_port)
        self.assertTrue(response.flags & dns.flags.AA)
        rrset = response.find_rrset(response.answer, dns.name.from_text(owner),
                                    dns.rdataclass.IN, dns.rdatatype.SRV)
        return sorted((r.priority, r.port, r.target.to_text()) for r in rrset)


class SeveralPortsServiceTests(_ServiceTestCase):
    """
    SMTP on 465/ssl and 587/starttls, example.org on 587 alone.
    """

    def setUp(self) -> None:
        https_port, dns_port = free_port(), free_udp_port()
        config = write_config(Path(self.mktemp()).absolute(), service_ini(https_port, dns_port))
        self.start(config, https_port, dns_port)

    def test_every_answer_lists_both(self) -> None:
        """
        POX has both SMTP Protocols in order, autoconfig two
        outgoingServer, DNS _submissions._tcp -> 465 and _submission._tcp
        -> 587 over UDP and TCP, priorities in the list's order; example.org
        gets 587 alone and "0 0 0 ." at _submissions; /health holds both
        endpoints, each with its security.
        """
        self.assertEqual(self.pox_smtp(), [("mail.example.test", "465", "SSL"),
                                           ("mail.example.test", "587", "TLS")])
        self.assertEqual(self.autoconfig_smtp("demo@example.test"),
                         [("465", "SSL"), ("587", "STARTTLS")])
        self.assertEqual(self.autoconfig_smtp("demo@example.org"), [("587", "STARTTLS")])
        for tcp in (False, True):
            self.assertEqual(self.srv("_submissions._tcp.example.test.", tcp), [(0, 465, MAIL)])
            self.assertEqual(self.srv("_submission._tcp.example.test.", tcp), [(10, 587, MAIL)])
        self.assertEqual(self.srv("_submissions._tcp.example.org."), [(0, 0, ".")])
        self.assertEqual(self.srv("_submission._tcp.example.org."), [(0, 587, MAIL)])
        status, body = self.request("GET", "/health")
        self.assertEqual(status, 200, body)
        endpoints = {e["endpoint"]: e["security"] for e in json.loads(body)["endpoints"]}
        self.assertEqual(endpoints.get("smtp://mail.example.test:465"), "ssl", endpoints)
        self.assertEqual(endpoints.get("smtp://mail.example.test:587"), "starttls", endpoints)

    def test_reload_reorders_and_refuses_hostile_values(self) -> None:
        """
        A reload to 587 first flips POX and the DNS priorities; a reload to
        a list with a pair given twice fails, names [smtp] ports, and the
        answers stay as they were.
        """
        self.config.write_text(service_ini(self.https_port, self.dns_port,
                                           "587/starttls, 465/ssl"), encoding="utf-8")
        self.service.reload("reloaded")
        self.assertEqual([port for _, port, _ in self.pox_smtp()], ["587", "465"])
        self.assertEqual(self.srv("_submission._tcp.example.test."), [(0, 587, MAIL)])
        self.assertEqual(self.srv("_submissions._tcp.example.test."), [(10, 465, MAIL)])
        for hostile in ("465/ssl, 465/ssl", "0/ssl", "465/tls", ""):
            self.config.write_text(service_ini(self.https_port, self.dns_port, hostile),
                                   encoding="utf-8")
            self.service.reload("reload failed")
            self.assertIn(f"{self.config}: [smtp] ports", self.service.log())
            self.assertEqual([port for _, port, _ in self.pox_smtp()], ["587", "465"])
            self.assertEqual(self.srv("_submission._tcp.example.test."), [(0, 587, MAIL)])


class CheckConfigTests(SynchronousTestCase):
    """
    check-config, run as administrators run it, on hostile ports values.
    """

    def test_hostile_values_named(self) -> None:
        """
        Exit status 1 and one line naming file, section and key for each:
        a pair twice, ports beside port, a bad domain override.
        """
        ini = build_ini({"smtp": {"port": None, "security": None, "ports": "465/ssl, 465/ssl"},
                         "imap": {"port": "993", "ports": "993/ssl"},
                         "pop3": {"security": None, "ports": "995/ssl"},
                         "domain:example.test": {"pop3.port": "110"}})
        path = write_config(self.mktemp(), ini).absolute()
        result = subprocess.run(
            [sys.executable, "-m", "smartdiscover.cli", "check-config", str(path)],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        lines = sorted(result.stderr.splitlines())
        self.assertEqual([line.split(": ", 2)[1] for line in lines],
                         ["[domain:example.test] pop3.port", "[imap] ports", "[smtp] ports"],
                         result.stderr)
        self.assertIn("override pop3.ports instead", lines[0])
        self.assertIn("cannot be combined with port", lines[1])
        self.assertIn("'465/ssl' is given twice", lines[2])


class ShippedConfigTests(_ServiceTestCase):
    """
    etc/sd.ini as shipped, on free ports: SMTP on 465 and 587.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp()).absolute()
        directory.mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "etc" / "users.passwd", directory / "users.passwd")
        text = (PROJECT_ROOT / "etc" / "sd.ini").read_text(encoding="utf-8")
        https_port, http_port, dns_port = free_port(), free_port(), free_udp_port()
        for pattern, port in ((r"^(https\s*=\s*ssl:)8443:", f"{https_port}:interface=127.0.0.1:"),
                              (r"^(http\s*=\s*tcp:)8080\b", f"{http_port}:interface=127.0.0.1"),
                              (r"^(dns\s*=\s*127\.0\.0\.1:)8053\b", str(dns_port))):
            text, count = re.subn(pattern, lambda m: m.group(1) + port, text, flags=re.M)
            self.assertEqual(count, 1, f"{pattern} in etc/sd.ini")
        config = directory / "sd.ini"
        config.write_text(text, encoding="utf-8")
        self.start(config, https_port, dns_port)

    def test_both_submission_ports(self) -> None:
        self.assertEqual(self.pox_smtp(), [("mail.example.test", "465", "SSL"),
                                           ("mail.example.test", "587", "TLS")])
        self.assertEqual(self.srv("_submissions._tcp.example.test."), [(0, 465, MAIL)])
        self.assertEqual(self.srv("_submission._tcp.example.test."), [(10, 587, MAIL)])


class SMTP(LineReceiver):
    """
    Just enough SMTP submission for the health probe: the greeting, EHLO
    (offering STARTTLS when the factory has C{starttls} options and the
    channel is still plain), STARTTLS and QUIT.
    """

    secured = False

    def connectionMade(self) -> None:
        self.sendLine(b"220 submission.test ESMTP ready")

    def lineReceived(self, line: bytes) -> None:
        command = line.split(b" ")[0].upper()
        options = getattr(self.factory, "starttls", None)
        transport: Any = self.transport
        assert transport is not None
        if command == b"EHLO":
            if options is not None and not self.secured:
                self.sendLine(b"250-submission.test")
                self.sendLine(b"250 STARTTLS")
            else:
                self.sendLine(b"250 submission.test")
        elif command == b"STARTTLS" and options is not None and not self.secured:
            self.sendLine(b"220 go ahead")
            transport.startTLS(options)
            self.secured = True
        elif command == b"QUIT":
            self.sendLine(b"221 bye")
            transport.loseConnection()
        else:
            self.sendLine(b"500 unknown command")


class ProbeSeveralPortsTests(ProbeCommandTestCase):
    """
    C{smartdiscover probe} against the real service advertising SMTP on an
    implicit-TLS port and a STARTTLS port, both served here.
    """

    def start_smtp_service(self, ssl_port: int, starttls_port: int, dns_port: int) -> int:
        https = free_port()
        directory = self.directory / "service"
        config = write_config(directory, build_ini({
            "server": {"https": f"ssl:{https}:interface=127.0.0.1:"
                                "privateKey=tls/server.key:certKey=tls/server.crt",
                       "dns": f"127.0.0.1:{dns_port}"},
            "imap": None,
            "pop3": None,
            "smtp": {"port": None, "security": None,
                     "ports": f"{ssl_port}/ssl, {starttls_port}/starttls"},
            "urls": {"ews": "/autodiscover/autodiscover.xml", "webclient": "/health/live"},
            "dns": {"mx": "10 mail.example.test", "rrl_rate": "0"},
            "hosts": {"mail.example.test": LOOPBACK, "example.test": LOOPBACK},
        }), passwd=PASSWD)
        service = RunningService(config, https)
        self.addCleanup(service.stop)
        self.wait_for_dns(dns_port)
        self.ca = str(directory / "tls" / "server.crt")
        self.key = str(directory / "tls" / "server.key")
        return https

    def smtp_factory(self, starttls: bool) -> Factory[Any]:
        factory = Factory.forProtocol(SMTP)
        if starttls:
            factory.starttls = self.tls_options()  # type: ignore[attr-defined]
        return factory

    async def test_each_endpoint_and_owner(self) -> None:
        """
        Both endpoints pass with their own security (the STARTTLS one
        upgraded), both SRV owners match the answer: exit status 0.  With
        the STARTTLS port closed, that endpoint alone fails.
        """
        ssl_port, starttls_port, dns_port = free_port(), free_port(), free_udp_port()
        https = self.start_smtp_service(ssl_port, starttls_port, dns_port)
        self.listen(self.smtp_factory(False), tls=True, port=ssl_port)
        listening = self.listen(self.smtp_factory(True), port=starttls_port)
        self.assertEqual(listening, starttls_port)

        status, out, err = await self.probe(dns_port=dns_port, https_port=https)
        self.assertEqual((status, self.failures(out), err), (0, [], ""), out)
        for line in (
            f"PASS  1 autodiscover.example.test:{https} answer: POX settings: SMTP, SMTP, EXPR, "
            "WEB",
            f"PASS  endpoint SMTP mail.example.test:{ssl_port} (SSL): 220 submission.test",
            f"PASS  endpoint SMTP mail.example.test:{starttls_port} (STARTTLS): 220 "
            "submission.test",
            f"PASS  SRV _submissions._tcp.example.test: mail.example.test:{ssl_port} matches",
            f"PASS  SRV _submission._tcp.example.test: mail.example.test:{starttls_port} "
            "matches",
        ):
            self.assertIn(line, out)

    async def test_closed_starttls_port(self) -> None:
        ssl_port, starttls_port, dns_port = free_port(), free_port(), free_udp_port()
        https = self.start_smtp_service(ssl_port, starttls_port, dns_port)
        self.listen(self.smtp_factory(False), tls=True, port=ssl_port)
        status, out, _ = await self.probe(dns_port=dns_port, https_port=https)
        self.assertEqual(status, 1, out)
        failures = self.failures(out)
        self.assertEqual(len(failures), 1, out)
        self.assertTrue(failures[0].startswith(
            f"FAIL  endpoint SMTP mail.example.test:{starttls_port} (STARTTLS): "
            f"mail.example.test:{starttls_port}: connection refused"), out)
        self.assertIn(f"PASS  endpoint SMTP mail.example.test:{ssl_port} (SSL)", out)
        self.assertIn(f"PASS  SRV _submission._tcp.example.test: mail.example.test:"
                      f"{starttls_port} matches", out)
