"""
Several certificates chosen by the TLS server name, through the real
service under twistd on loopback (issue 17 section 1; docs/certificates.md):
real TLS clients (the ssl module, verifying against the test CA's root
only, and pyOpenSSL for SNI values the ssl module will not send) get each
name's certificate and chain; no SNI gets the default; SIGHUP after a file
is replaced serves the new certificate to new connections while an open one
keeps working; a profile of domain B verifies, with C{openssl cms -verify},
as signed by B's certificate.
"""

from __future__ import annotations

import http.client
import json
import re
import select
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import SSL
from twisted.trial.unittest import SkipTest

from tests.helpers import DEMO_HASH, DEMO_PASSWORD, build_ini, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port
from tests.integration.test_service import basic
from tests.unit.test_certificates import CertificateFiles, TestCA

IDN = "xn--bcher-kva.example"  # bücher.example


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """
    HTTPS to 127.0.0.1 that sends C{host} as the server name (SNI) and
    checks the certificate against it, as a client that resolved C{host}
    to this machine does.
    """

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            raw, server_hostname=self.host)


class _SNIService:
    """
    One service with a default certificate, a certificate for example.org
    (its chain written out of order), a wildcard for example.net and one
    for an IDN domain; C{workers} processes.
    """

    workers = 1
    mktemp: Any
    addCleanup: Any

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.port = free_port()
        self.ca = TestCA()
        self.root = self.ca.write_root(self.directory / "root.pem")
        self.files = CertificateFiles(self.ca, self.directory / "tls")
        self.files.write("server", ["mail.example.test", "autodiscover.example.test",
                                    "autoconfig.example.test"])
        self.files.write("org", ["autodiscover.example.org", "autoconfig.example.org"],
                         order=lambda leaf, intermediate: [intermediate, leaf])
        self.files.write("net", ["*.example.net"])
        self.files.write("idn", [f"autodiscover.{IDN}"])
        ini = build_ini({
            "server": {
                "https": f"ssl:{self.port}:interface=127.0.0.1:privateKey=tls/server.key:"
                         "certKey=tls/server.crt",
                "domains": "example.test, example.org, example.net, bücher.example",
                "workers": str(self.workers),
            },
            "certificates": {"org": "tls/org.crt, tls/org.key",
                             "net": "tls/net.crt, tls/net.key",
                             "idn": "tls/idn.crt, tls/idn.key"},
        })
        self.config = write_config(self.directory, ini, passwd=(
            f"demo@example.test:{DEMO_HASH}:::Demo\nolga@example.org:{DEMO_HASH}:::Olga\n"))
        self.service = RunningService(self.config, self.port)
        self.addCleanup(self.service.stop)

    def context(self, check_hostname: bool = True) -> ssl.SSLContext:
        """
        A client context that trusts only the test CA's root: a leaf
        verifies only when the server sends the intermediate too.
        """
        context = ssl.create_default_context(cafile=str(self.root))
        context.check_hostname = check_hostname
        return context

    def peer(self, name: str | None, check_hostname: bool = True) -> x509.Certificate:
        """
        The verified certificate the service presents to a client asking
        for C{name} (L{None}: no SNI).
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            with self.context(check_hostname and name is not None).wrap_socket(
                    raw, server_hostname=name) as tls:
                der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def raw_sni(self, value: bytes) -> tuple[x509.Certificate | None, list[x509.Certificate]]:
        """
        The certificate and chain a pyOpenSSL client that sends the SNI
        bytes C{value} gets (L{None}, [] when the handshake fails).
        """
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            connection = SSL.Connection(context, raw)
            connection.set_tlsext_host_name(value)
            connection.set_connect_state()
            deadline = time.monotonic() + 10
            while True:
                try:
                    connection.do_handshake()
                    break
                except SSL.WantReadError:  # the socket has a timeout: not blocking
                    if time.monotonic() > deadline:
                        raise AssertionError("the handshake took more than 10 s") from None
                    select.select([raw], [], [], 1)
                except SSL.Error:
                    return None, []
            return (connection.get_peer_certificate(as_cryptography=True),
                    connection.get_peer_cert_chain(as_cryptography=True) or [])

    def leaf(self, stem: str) -> x509.Certificate:
        return self.files.leaves[stem]


class SNIServiceTests(_SNIService, SynchronousTestCase):
    """
    The service in one process.
    """

    def test_each_name_gets_its_chain(self) -> None:
        """
        Every name gets the certificate that names it, verified with the
        host name against the root alone, so the chain is complete and in
        order (example.org's file has it backwards); a wildcard serves a
        name one label below it; an IDN is asked for by its A-label.
        """
        for name, stem in (("autodiscover.example.org", "org"),
                           ("autoconfig.example.org", "org"),
                           ("autodiscover.example.net", "net"),
                           ("autoconfig.example.net", "net"),
                           ("autodiscover.bücher.example", "idn"),
                           (f"autodiscover.{IDN}", "idn"),
                           ("mail.example.test", "server"),
                           ("autodiscover.example.test", "server")):
            self.assertEqual(self.peer(name), self.leaf(stem), name)
        certificate, chain = self.raw_sni(b"autodiscover.example.org")
        self.assertEqual(chain, [self.leaf("org"), self.ca.intermediate])

    def test_default_without_sni_or_known_name(self) -> None:
        """
        No SNI (a client that connects by address), a name no certificate
        covers and a name two labels below the wildcard get the default.
        """
        self.assertEqual(self.peer(None), self.leaf("server"))
        for name in ("unknown.example.com", "a.b.example.net", "example.org"):
            self.assertEqual(self.peer(name, check_hostname=False), self.leaf("server"), name)

    def test_hostile_server_names(self) -> None:
        """
        Upper case and a trailing dot are the same name; garbage, a U-label
        in raw UTF-8, a wildcard, an empty label and values of 255 to 4000
        bytes (OpenSSL passes them all to the callback) get the default;
        the service keeps answering after all of them, with no traceback.
        """
        self.assertEqual(self.raw_sni(b"AUTODISCOVER.EXAMPLE.ORG.")[0], self.leaf("org"))
        self.assertEqual(self.raw_sni(b"AutoDiscover.Example.NET")[0], self.leaf("net"))
        for value in (b"\xff\xfe\xfd", "autodiscover.bücher.example".encode(),
                      b"*.example.net", b"autodiscover..example.org", b"-", b"\r\n",
                      b"a" * 63 + b"." + b"b" * 63 + b"." + b"c" * 63 + b"." + b"d" * 62,
                      b"x" * 255, b"x" * 256, b"x" * 300, b"y." * 2000):
            self.assertEqual(self.raw_sni(value)[0], self.leaf("server"), value[:40])
        self.assertEqual(self.peer("autodiscover.example.org"), self.leaf("org"))
        self.assertNotIn("Traceback", self.service.log())
        self.assertNotIn("SNI context", self.service.log())

    def test_sighup_swaps_for_new_connections(self) -> None:
        """
        After example.org's files are replaced and SIGHUP, new connections
        get the new certificate; a keep-alive connection opened before
        keeps its certificate and keeps answering.  Then a broken file:
        the reload is refused naming file, section and key, and the
        certificate in force stays.
        """
        before = PinnedHTTPSConnection("autodiscover.example.org", self.port,
                                       context=self.context(), timeout=10)
        self.addCleanup(before.close)
        before.request("GET", "/health/live")
        self.assertEqual(before.getresponse().read(), b"ok\n")
        old = self.leaf("org")
        self.files.write("org", ["autodiscover.example.org", "autoconfig.example.org"])
        new = self.leaf("org")
        self.service.reload("reloaded")
        self.assertEqual(self.peer("autodiscover.example.org"), new)
        self.assertEqual(self.peer("autodiscover.example.net"), self.leaf("net"))
        before.request("GET", "/health/live")
        self.assertEqual(before.getresponse().read(), b"ok\n")
        assert before.sock is not None
        self.assertEqual(x509.load_der_x509_certificate(
            before.sock.getpeercert(binary_form=True)), old)

        (self.directory / "tls" / "org.key").write_bytes(
            (self.directory / "tls" / "net.key").read_bytes())
        self.service.reload("reload failed")
        self.assertIn(f"{self.config}: [certificates] org: ", self.service.log())
        self.assertIn("the key does not belong to the certificate", self.service.log())
        self.assertEqual(self.peer("autodiscover.example.org"), new)

    def test_profile_signed_with_the_domains_certificate(self) -> None:
        """
        The profile of olga@example.org verifies with C{openssl cms
        -verify} against the root, and its signer is example.org's
        certificate; demo@example.test's is signed by the default.
        """
        if shutil.which("openssl") is None:
            raise SkipTest("the openssl command-line tool is not installed")
        for user, stem in (("olga@example.org", "org"), ("demo@example.test", "server")):
            connection = PinnedHTTPSConnection("mail.example.test", self.port,
                                               context=self.context(), timeout=10)
            self.addCleanup(connection.close)
            connection.request("GET", "/mobileconfig",
                               headers={"Authorization": basic(user, DEMO_PASSWORD)})
            response = connection.getresponse()
            body = response.read()
            self.assertEqual(response.status, 200, body[:200])
            signed = self.directory / f"{stem}.mobileconfig"
            signed.write_bytes(body)
            signer = self.directory / f"{stem}.signer.pem"
            result = subprocess.run(
                ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed),
                 "-CAfile", str(self.root), "-purpose", "any", "-signer", str(signer),
                 "-out", str(self.directory / f"{stem}.plist")],
                capture_output=True, timeout=60, check=False)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(x509.load_pem_x509_certificate(signer.read_bytes()),
                             self.leaf(stem), user)
            self.assertIn(b"PayloadContent", (self.directory / f"{stem}.plist").read_bytes())

    def test_health_metrics_and_log(self) -> None:
        """
        /health lists every certificate with its names and expiry and the
        served name none covers; /metrics has each one's expiry; the log at
        start warned about the uncovered name with section and key.
        """
        connection = PinnedHTTPSConnection("mail.example.test", self.port,
                                           context=self.context(), timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", "/health")
        document = json.loads(connection.getresponse().read())
        self.assertEqual([c["certificate"] for c in document["certificates"]],
                         ["default", "org", "net", "idn"])
        org = document["certificates"][1]
        self.assertEqual(org["names"], ["autodiscover.example.org", "autoconfig.example.org"])
        self.assertEqual(org["state"], "valid")
        self.assertTrue(any("out of order" in w for w in org["warnings"]), org)
        self.assertEqual(document["uncovered_names"], [f"autoconfig.{IDN}"])
        connection.request("GET", "/metrics")
        metrics = connection.getresponse().read().decode()
        for label in ("default", "org", "net", "idn"):
            self.assertIn(f'smartdiscover_certificate_expiry_seconds{{certificate="{label}"}}',
                          metrics)
        self.assertIn("smartdiscover_served_names_uncovered 1.0", metrics)
        self.assertIn(f"{self.config}: [certificates]: warning: no certificate covers "
                      f"autoconfig.{IDN}", self.service.log())


class SNIWorkersTests(_SNIService, SynchronousTestCase):
    """
    With C{[server] workers = 2}: every process serves the same set, and
    SIGHUP swaps it in every process.
    """

    workers = 2

    def test_every_process_serves_and_reloads(self) -> None:
        """
        24 new connections (the kernel spreads them over both processes)
        all get example.org's certificate, before and after its files are
        replaced and SIGHUP is sent; after, none gets the old one.
        """
        deadline = time.monotonic() + 30
        while "[worker-1 " not in self.service.log() or "SmartSite (TLS) starting" not in \
                self.service.log().split("[worker-1 ", 1)[1]:
            self.assertLess(time.monotonic(), deadline, self.service.log())
            time.sleep(0.05)
        old = self.leaf("org")
        self.assertEqual({self.peer("autodiscover.example.org") for _ in range(24)}, {old})
        self.files.write("org", ["autodiscover.example.org", "autoconfig.example.org"])
        self.service.reload("reloaded")
        while not re.search(r"\[worker-1 [^\]]*\] reloaded .*generation 2", self.service.log()):
            self.assertLess(time.monotonic(), deadline, self.service.log())
            time.sleep(0.05)
        self.assertEqual({self.peer("autodiscover.example.org") for _ in range(24)},
                         {self.leaf("org")})
        self.assertEqual({self.peer(None) for _ in range(8)}, {self.leaf("server")})
