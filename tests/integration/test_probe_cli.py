"""
C{smartdiscover probe} (issue 8) run as a command against setups on
loopback: the real service with the resolver pointed at its own DNS
responder, and deliberately broken setups built here with Twisted (a DNS
zone without an A record, a certificate for the wrong name, redirect loops,
a plain-HTTP host asking for credentials, a redirect to a foreign domain, a
closed advertised port).  Each must give the right diagnosis and exit status.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any, Callable

import dns.exception as dnspython_exception
import dns.message as dnspython_message
import dns.query as dnspython_query
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.internet.ssl import PrivateCertificate
from twisted.names import dns, error
from twisted.names.common import ResolverBase
from twisted.names.server import DNSServerFactory
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from smartdiscover import cli
from smartdiscover.web.devcert import create_development_certificate
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, build_ini, write_config
from tests.integration import TestCase
from tests.integration.service import PROJECT_ROOT, RunningService, free_port, free_udp_port

LOOPBACK = "127.0.0.1"
ADDRESS = "demo@example.test"
PATH = "/autodiscover/autodiscover.xml"
RUN_TIMEOUT = 30.0

# The minimal file on loopback with IMAP alone, a str.format template of
# the https and IMAP ports; the URLs are paths the service itself answers,
# so the advertised URLs work (401, 200).
SERVICE_INI = build_ini({
    "server": {"https": "ssl:{https}:interface=127.0.0.1:"
                        "privateKey=tls/server.key:certKey=tls/server.crt"},
    "imap": {"port": "{imap}"},
    "pop3": None,
    "smtp": None,
    "urls": {"ews": "/autodiscover/autodiscover.xml", "webclient": "/health/live"},
    "dns": {"mx": "10 mail.example.test", "rrl_rate": "0"},
    "hosts": {"mail.example.test": "127.0.0.1", "example.test": "127.0.0.1"},
    "redirectAddr": {"old@example.test": "demo@example.test"},
})
PASSWD = "".join(f"{user}:{DEMO_HASH}\n" for user in (ADDRESS, "old@example.test"))

SETTINGS = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
<Account><AccountType>email</AccountType><Action>settings</Action>
<Protocol><Type>EXPR</Type><EwsUrl>https://mail.example.net:%d/EWS/Exchange.asmx</EwsUrl>
</Protocol></Account></Response></Autodiscover>
"""


REDIRECT_URL = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
<Account><AccountType>email</AccountType><Action>redirectUrl</Action>
<RedirectURL>https://autodiscover.example.test/autodiscover/autodiscover.xml</RedirectURL>
</Account></Response></Autodiscover>
"""


class Zone(ResolverBase):
    """
    An authoritative in-memory zone: (name, type) -> payloads; other types
    of a known name are NODATA, unknown names NXDOMAIN.
    """

    def __init__(self, records: dict[tuple[str, int], list[Any]]) -> None:
        super().__init__()
        self.records = records

    def _lookup(self, name: Any, cls: int, type: int, timeout: Any) -> Deferred[Any]:
        text = (name.decode("ascii") if isinstance(name, bytes) else name).lower().rstrip(".")
        if (text, type) in self.records:
            answers = [dns.RRHeader(text, type, dns.IN, 60, payload, auth=True)
                       for payload in self.records[(text, type)]]
            return succeed((answers, [], []))
        if any(known == text for known, _ in self.records):
            return succeed(([], [], []))
        return fail(error.DomainError(text))


def addresses(*names: str) -> dict[tuple[str, int], list[Any]]:
    return {(name, dns.A): [dns.Record_A(LOOPBACK)] for name in names}


class Tracking(WrappingFactory):
    """
    Keeps a server's connections, to close what is left when a test ends.
    """

    def close_all(self) -> None:
        for protocol in list(self.protocols):
            protocol.transport.abortConnection()


class IMAP(LineReceiver):
    """
    Just enough IMAP for the health probe: greeting, CAPABILITY, LOGOUT.
    """

    def connectionMade(self) -> None:
        self.sendLine(b"* OK IMAP4rev1 test server ready")

    def lineReceived(self, line: bytes) -> None:
        tag, _, rest = line.partition(b" ")
        command = rest.split(b" ")[0].upper()
        if command == b"CAPABILITY":
            self.sendLine(b"* CAPABILITY IMAP4rev1")
            self.sendLine(tag + b" OK CAPABILITY completed")
        elif command == b"LOGOUT":
            self.sendLine(b"* BYE")
            self.sendLine(tag + b" OK LOGOUT completed")
            self.transport.loseConnection()
        else:
            self.sendLine(tag + b" BAD unknown command")


class Scripted(Resource):
    """
    An HTTP(S) site whose answer depends on the Host header: C{routes} maps
    a host name to a function of the request.  Every request is recorded as
    (method, host, Authorization header or None).
    """

    isLeaf = True

    def __init__(self, routes: dict[str, Callable[[Request], bytes]]) -> None:
        super().__init__()
        self.routes = routes
        self.seen: list[tuple[str, str, str | None]] = []

    def render(self, request: Request) -> bytes:
        host = request.getRequestHostname().decode("ascii")
        authorization = request.getHeader(b"Authorization")
        self.seen.append((request.method.decode("ascii"), host,
                          authorization.decode("ascii") if authorization else None))
        route = self.routes.get(host)
        if route is None:
            request.setResponseCode(404)
            return b"no such host"
        return route(request)

    def authorizations(self) -> list[str]:
        return [a for _, _, a in self.seen if a is not None]


def redirect(location: str) -> Callable[[Request], bytes]:
    def answer(request: Request) -> bytes:
        request.setResponseCode(302)
        request.setHeader(b"Location", location.encode("ascii"))
        return b""
    return answer


def challenge(request: Request) -> bytes:
    request.setResponseCode(401)
    request.setHeader(b"WWW-Authenticate", b'Basic realm="test"')
    return b"log in"


class Run(ProcessProtocol):
    """
    One run of the command: C{stdin} written and closed, output collected.
    """

    def __init__(self, stdin: bytes) -> None:
        self.stdin = stdin
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.done: Deferred[tuple[int, str, str]] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processEnded(self, reason: Failure) -> None:
        self.done.callback((reason.value.exitCode, b"".join(self.out).decode("utf-8"),
                            b"".join(self.err).decode("utf-8")))


class ProbeCommandTestCase(TestCase):
    """
    Servers on loopback, and the command as a child process.
    """

    timeout = 60

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.directory.mkdir(parents=True)

    # -- servers ------------------------------------------------------------

    def start_service(self, imap_port: int, dns_port: int | None = None,
                      http_port: int | None = None,
                      certificate_names: list[str] | None = None) -> int:
        """
        The real service on a free https port (returned), with its DNS
        responder and port-80 listener where given; a development
        certificate for C{certificate_names} instead of the default one.
        """
        https = free_port()
        listeners: dict[str, str] = {}
        if dns_port is not None:
            listeners["dns"] = f"127.0.0.1:{dns_port}"
        if http_port is not None:
            listeners["http"] = f"tcp:{http_port}:interface=127.0.0.1"
        directory = self.directory / "service"
        if certificate_names is not None:
            create_development_certificate(directory / "tls" / "server.crt",
                                           directory / "tls" / "server.key", certificate_names)
        config = write_config(directory, build_ini(
            {"server": listeners}, base=SERVICE_INI.format(https=https, imap=imap_port)),
            passwd=PASSWD)
        service = RunningService(config, https)
        self.addCleanup(service.stop)
        if dns_port is not None:
            self.wait_for_dns(dns_port)
        self.ca = str(directory / "tls" / "server.crt")
        self.key = str(directory / "tls" / "server.key")
        return https

    def wait_for_dns(self, port: int) -> None:
        deadline = time.monotonic() + 10
        query = dnspython_message.make_query("example.test", "SOA")
        while True:
            try:
                dnspython_query.udp(query, LOOPBACK, timeout=0.2, port=port)
                return
            except (OSError, dnspython_exception.Timeout):
                if time.monotonic() > deadline:
                    raise

    def own_certificate(self, names: list[str]) -> None:
        """
        A development certificate for C{names}, for the servers built here.
        """
        certificate, key = self.directory / "tls.crt", self.directory / "tls.key"
        create_development_certificate(certificate, key, names)
        self.ca, self.key = str(certificate), str(key)

    def tls_options(self) -> Any:
        pem = Path(self.key).read_bytes() + Path(self.ca).read_bytes()
        return PrivateCertificate.loadPEM(pem).options()

    def listen(self, factory: Factory, tls: bool = False, port: int = 0) -> int:
        tracking = Tracking(factory)
        if tls:
            listening = reactor.listenSSL(port, tracking, self.tls_options(),
                                          interface=LOOPBACK)
        else:
            listening = reactor.listenTCP(port, tracking, interface=LOOPBACK)
        self.addCleanup(listening.stopListening)
        self.addCleanup(tracking.close_all)
        return listening.getHost().port

    def serve_dns(self, records: dict[tuple[str, int], list[Any]]) -> int:
        protocol = dns.DNSDatagramProtocol(DNSServerFactory(authorities=[Zone(records)]))
        port = reactor.listenUDP(0, protocol, interface=LOOPBACK)
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def serve_web(self, routes: dict[str, Callable[[Request], bytes]],
                  tls: bool = True) -> tuple[int, Scripted]:
        site = Scripted(routes)
        return self.listen(Site(site), tls=tls), site

    # -- the command ----------------------------------------------------------

    async def probe(self, *arguments: str, dns_port: int, https_port: int,
                    http_port: int | None = None, password: str = DEMO_PASSWORD,
                    address: str = ADDRESS) -> tuple[int, str, str]:
        """
        Run C{smartdiscover probe} for C{address}; (status, stdout, stderr).
        The password never appears in the output.
        """
        argv = [sys.executable, "-m", "smartdiscover.cli", "probe", address,
                "--password-stdin", "--resolver", f"{LOOPBACK}:{dns_port}", "--ca", self.ca,
                "--port", str(https_port), "--http-port", str(http_port or free_port()),
                "--timeout", "3", *arguments]
        run = Run((password + "\n").encode("utf-8"))
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        process = reactor.spawnProcess(run, sys.executable, argv, env=env,
                                       path=str(PROJECT_ROOT))
        timer = reactor.callLater(RUN_TIMEOUT, process.signalProcess, "KILL")
        status, out, err = await run.done
        if timer.active():
            timer.cancel()
        self.assertNotIn(password, out + err)
        return status, out, err

    def failures(self, out: str) -> list[str]:
        return [line for line in out.splitlines() if line.startswith("FAIL")]


class WorkingSetupTests(ProbeCommandTestCase):
    """
    The service as deployed: its DNS responder publishes every name, its
    certificate covers them, the advertised IMAP server answers.
    """

    async def test_every_check_passes(self) -> None:
        """
        The first candidate answers; every advertised endpoint works and
        the SRV records agree with the answer: exit status 0.  With --all
        --json every candidate, the plain-HTTP redirect probe and SRV
        included, passes too.  An address with a redirectAddr restarts
        discovery for the new address.
        """
        imap_port, dns_port, http_port = free_port(), free_udp_port(), free_port()
        https = self.start_service(imap_port, dns_port, http_port)
        self.listen(Factory.forProtocol(IMAP), tls=True, port=imap_port)

        status, out, err = await self.probe(dns_port=dns_port, https_port=https,
                                            http_port=http_port)
        self.assertEqual((status, self.failures(out), err), (0, [], ""), out)
        for line in (
            f"PASS  1 autodiscover.example.test:{https} DNS: autodiscover.example.test has "
            "address 127.0.0.1",
            f"PASS  1 autodiscover.example.test:{https} TLS: certificate valid for "
            "autodiscover.example.test",
            f"PASS  1 autodiscover.example.test:{https} HTTP: 401 without credentials, "
            "WWW-Authenticate: Basic",
            f"PASS  1 autodiscover.example.test:{https} auth: POST with credentials: HTTP 200",
            f"PASS  1 autodiscover.example.test:{https} answer: POX settings: IMAP, EXPR, WEB",
            f"PASS  endpoint IMAP mail.example.test:{imap_port} (SSL): * OK IMAP4rev1",
            f"PASS  SRV _imaps._tcp.example.test: mail.example.test:{imap_port} matches",
            "PASS  endpoint EXPR EwsUrl https://mail.example.test/autodiscover/autodiscover.xml",
        ):
            self.assertIn(line, out)
        self.assertNotIn(" 2 example.test", out)  # stopped at the first success
        self.assertTrue(out.rstrip().endswith(
            f"settings from https://autodiscover.example.test:{https}{PATH}"), out)

        status, out, err = await self.probe("--all", "--json", dns_port=dns_port,
                                            https_port=https, http_port=http_port)
        document = json.loads(out)
        self.assertEqual((status, document["ok"], err), (0, True, ""), out)
        self.assertEqual(document["url"], f"https://autodiscover.example.test:{https}{PATH}")
        checks = {check["name"]: check for check in document["checks"]}
        self.assertTrue(all(c["ok"] and c["fix"] == "" for c in checks.values()))
        self.assertEqual(set(checks[f"2 example.test:{https} answer"]),
                         {"name", "ok", "detail", "fix"})
        self.assertEqual(checks["3 example.test MX"]["detail"], "10 mail.example.test")
        self.assertEqual(checks[f"4 autodiscover.example.test:{http_port} redirect"]["detail"],
                         f"HTTP 302 to https://mail.example.test:{https}{PATH}, followed")
        self.assertIn(f"4.1 mail.example.test:{https} answer", checks)
        self.assertEqual(checks["5 _autodiscover._tcp.example.test SRV"]["detail"],
                         f"0 5 {https} mail.example.test")
        self.assertIn(f"5 mail.example.test:{https} answer", checks)

        status, out, err = await self.probe(dns_port=dns_port, https_port=https,
                                            http_port=http_port, address="old@example.test")
        self.assertEqual((status, self.failures(out), err), (0, [], ""), out)
        first, restart = out.split("redirectAddr to demo@example.test\n")
        self.assertIn(f"PASS  1 autodiscover.example.test:{https} answer: ", first)
        self.assertIn(f"PASS  1 autodiscover.example.test:{https} answer: POX settings: IMAP",
                      restart)

    async def test_closed_port(self) -> None:
        """
        The answer advertises an IMAP port nothing listens on: discovery
        works, DNS agrees, the endpoint check fails with its fix.
        """
        imap_port, dns_port = free_port(), free_udp_port()
        https = self.start_service(imap_port, dns_port)
        status, out, _ = await self.probe(dns_port=dns_port, https_port=https)
        self.assertEqual(status, 1, out)
        self.assertEqual(self.failures(out), [
            f"FAIL  endpoint IMAP mail.example.test:{imap_port} (SSL): mail.example.test:"
            f"{imap_port}: connection refused -- fix: start the service on mail.example.test:"
            f"{imap_port} (and open the firewall), or stop advertising it"])
        self.assertIn(f"PASS  SRV _imaps._tcp.example.test: mail.example.test:{imap_port} "
                      "matches the autodiscover answer", out)
        self.assertTrue(out.rstrip().startswith("PASS") and "1 of " in out, out)


class BrokenSetupTests(ProbeCommandTestCase):
    """
    One mistake each, and the diagnosis that names it.
    """

    async def test_no_address_record(self) -> None:
        """
        DNS has no A record for autodiscover.<domain>: step 1 fails with
        that diagnosis, step 2 (the domain itself) gives the settings.  The
        zone's _imaps SRV names another port than the answer.
        """
        imap_port, srv_port = free_port(), free_port()
        https = self.start_service(imap_port)
        records = addresses("example.test", "mail.example.test")
        records[("_imaps._tcp.example.test", dns.SRV)] = [
            dns.Record_SRV(0, 1, srv_port, "mail.example.test")]
        dns_port = self.serve_dns(records)
        status, out, _ = await self.probe(dns_port=dns_port, https_port=https)
        self.assertEqual(status, 1, out)
        failures = self.failures(out)
        self.assertEqual(failures[0],
                         f"FAIL  1 autodiscover.example.test:{https} DNS: "
                         "autodiscover.example.test has no A record (NXDOMAIN; no AAAA "
                         "either) -- fix: publish an A (and AAAA) record for "
                         "autodiscover.example.test, or let clients skip this step knowingly")
        self.assertIn(f"PASS  2 example.test:{https} answer: POX settings: IMAP, EXPR, WEB", out)
        self.assertIn(f"FAIL  SRV _imaps._tcp.example.test: SRV _imaps._tcp.example.test says "
                      f"port {srv_port} but the autodiscover answer says {imap_port}", out)
        self.assertIn(f"FAIL  endpoint IMAP mail.example.test:{srv_port} (SSL) (from SRV "
                      "_imaps._tcp): ", out)
        self.assertIn(f"settings from https://example.test:{https}{PATH}", out)

    async def test_certificate_for_another_name(self) -> None:
        """
        The service's certificate covers mail.example.test only: steps 1
        and 2 fail at TLS naming the missing name; the MX host answers.
        """
        dns_port = free_udp_port()
        imap_port = free_port()
        https = self.start_service(imap_port, dns_port, certificate_names=["mail.example.test"])
        self.listen(Factory.forProtocol(IMAP), tls=True, port=imap_port)
        status, out, _ = await self.probe(dns_port=dns_port, https_port=https)
        self.assertEqual(status, 1, out)
        fix = ("add {0} to the certificate's subjectAltName, or advertise a name the "
               "certificate covers")
        self.assertEqual(self.failures(out), [
            f"FAIL  1 autodiscover.example.test:{https} TLS: certificate does not cover "
            f"autodiscover.example.test -- fix: {fix.format('autodiscover.example.test')}",
            f"FAIL  2 example.test:{https} TLS: certificate does not cover example.test -- "
            f"fix: {fix.format('example.test')}"])
        self.assertIn(f"PASS  3 mail.example.test:{https} answer: POX settings", out)
        self.assertNotIn(f"1 autodiscover.example.test:{https} HTTP", out)  # nothing was sent

    async def test_redirect_loop_and_endless_chain(self) -> None:
        """
        autodiscover.<domain> redirects (HTTP 302) to mail.<domain>, which
        once authenticated redirects back (redirectUrl): a loop.  <domain>
        redirects to ever new URLs: stopped after 10 hops.
        """
        self.own_certificate(["autodiscover.example.test", "example.test",
                              "mail.example.test"])
        port_box: list[int] = []

        def endless(request: Request) -> bytes:
            hop = int(request.args.get(b"n", [b"0"])[0]) + 1
            return redirect(f"https://example.test:{port_box[0]}{PATH}?n={hop}")(request)

        https, site = self.serve_web({
            "autodiscover.example.test": redirect(f"https://mail.example.test{PATH}"),
            "mail.example.test": lambda request: (
                REDIRECT_URL if request.getHeader(b"Authorization") else challenge(request)),
            "example.test": endless,
        })
        port_box.append(https)
        dns_port = self.serve_dns(addresses("autodiscover.example.test", "example.test",
                                            "mail.example.test"))
        status, out, _ = await self.probe(dns_port=dns_port, https_port=https)
        self.assertEqual(status, 1, out)
        self.assertIn(f"FAIL  1.1 mail.example.test:{https} redirect: redirect loop: "
                      f"https://autodiscover.example.test{PATH} was already visited -- fix: "
                      "point the redirect at the final Autodiscover URL", out)
        self.assertIn(f"FAIL  2.10 example.test:{https} redirect: more than 10 redirects; "
                      f"stopped at https://example.test:{https}{PATH}?n=11", out)
        self.assertIn("FAIL  discovery: no candidate gave settings", out)
        self.assertEqual([host for _, host, authorization in site.seen if authorization],
                         ["mail.example.test"])

    async def test_plain_http_asks_for_credentials(self) -> None:
        """
        Nothing answers https; http://autodiscover.<domain> answers 401 with
        a Basic challenge.  The probe sends no credentials and says so.
        """
        self.own_certificate(["autodiscover.example.test"])
        http_port, site = self.serve_web({"autodiscover.example.test": challenge}, tls=False)
        dns_port = self.serve_dns(addresses("autodiscover.example.test"))
        status, out, _ = await self.probe(dns_port=dns_port, https_port=free_port(),
                                          http_port=http_port)
        self.assertEqual(status, 1, out)
        self.assertIn(f"FAIL  4 autodiscover.example.test:{http_port} HTTP: asks for "
                      "credentials over plain HTTP (HTTP 401, Basic realm=\"test\"); none were "
                      f"sent -- fix: port {http_port} must never ask for credentials: answer "
                      "only a 301/302 to https://autodiscover.example.test:", out)
        self.assertEqual(site.seen, [("GET", "autodiscover.example.test", None)])

    async def test_redirect_outside_the_domain(self) -> None:
        """
        autodiscover.<domain> redirects to a host of another domain that
        asks for credentials: refused, unless --allow-cross-domain.
        """
        self.own_certificate(["autodiscover.example.test", "mail.example.net"])
        port_box: list[int] = []

        def foreign(request: Request) -> bytes:
            if request.path == b"/EWS/Exchange.asmx":
                return b"EWS"
            if request.getHeader(b"Authorization") is None:
                return challenge(request)
            request.setHeader(b"Content-Type", b"text/xml; charset=utf-8")
            return SETTINGS % port_box[0]

        https, site = self.serve_web({
            "autodiscover.example.test": redirect(f"https://mail.example.net{PATH}"),
            "mail.example.net": foreign,
        })
        port_box.append(https)
        dns_port = self.serve_dns(addresses("autodiscover.example.test", "mail.example.net"))

        status, out, _ = await self.probe(dns_port=dns_port, https_port=https)
        self.assertEqual(status, 1, out)
        self.assertIn(f"FAIL  1.1 mail.example.net:{https} auth: refused to send credentials "
                      "to mail.example.net: outside example.test -- fix: serve Autodiscover "
                      "from a host within example.test, or rerun with --allow-cross-domain if "
                      "you trust mail.example.net", out)
        self.assertEqual(site.authorizations(), [])

        status, out, _ = await self.probe("--allow-cross-domain", dns_port=dns_port,
                                          https_port=https)
        self.assertEqual((status, self.failures(out)), (0, []), out)
        expected = base64.b64encode(f"{ADDRESS}:{DEMO_PASSWORD}".encode()).decode()
        self.assertEqual(site.authorizations(), [f"Basic {expected}"])
        self.assertIn(f"PASS  endpoint EXPR EwsUrl https://mail.example.net:{https}"
                      "/EWS/Exchange.asmx: HTTP 200", out)


class UsageTests(TestCase):
    """
    Command lines that cannot run: exit status 2 and a message, before any
    password is asked for or any network use.
    """

    def run_command(self, *arguments: str) -> tuple[int, str]:
        errors = StringIO()
        self.patch(sys, "stderr", errors)
        try:
            status = cli.main(["probe", *arguments])
        except SystemExit as e:  # argparse
            status = e.code
        return status, errors.getvalue()

    def test_not_an_address(self) -> None:
        status, message = self.run_command("no-at-sign")
        self.assertEqual(status, 2)
        self.assertIn("'no-at-sign' is not an e-mail address", message)

    def test_bad_resolver(self) -> None:
        status, message = self.run_command(ADDRESS, "--resolver", "dns.example.test")
        self.assertEqual(status, 2)
        self.assertIn("--resolver 'dns.example.test' is not IP[:PORT]", message)

    def test_unreadable_ca(self) -> None:
        status, message = self.run_command(ADDRESS, "--ca", self.mktemp())
        self.assertEqual(status, 2)
        self.assertIn("cannot read", message)

    def test_bad_port(self) -> None:
        status, message = self.run_command(ADDRESS, "--port", "0")
        self.assertEqual(status, 2)
        self.assertIn("--port: 0 is not a port", message)
