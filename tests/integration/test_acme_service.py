"""
ACME through the real service under twistd (issue 17 section 3;
docs/certificates.md, "ACME"): Debian's pebble on loopback resolves every
name through SmartDiscover's own DNS responder and validates each
challenge type against the running service: HTTP-01 on its plain-HTTP
listener, DNS-01 from its DNS responder, TLS-ALPN-01 on its HTTPS
listener.  Then a TLS client that trusts only pebble's root verifies the
served chain for every name, and C{openssl cms -verify} accepts a profile
signed with the issued certificate.

Faults: the CA down while the stored certificate is about to expire (it
stays served; /health and /metrics say the renewal fails), a challenge
that cannot succeed beside one that does, a corrupted state file.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from twisted.trial.unittest import SkipTest

from smartdiscover.certs.acme.store import AcmeStore
from tests.helpers import DEMO_PASSWORD, build_ini, write_config
from tests.integration import SynchronousTestCase
from tests.integration.pebble import PebbleServer, pebble_installed
from tests.integration.service import RunningService, free_port, free_udp_port
from tests.integration.test_service import basic
from tests.integration.test_sni_service import PinnedHTTPSConnection
from tests.unit.test_acme_store import certificate

DOMAIN = "example.test"
NAMES = {f"autodiscover.{DOMAIN}": "http-01", f"autoconfig.{DOMAIN}": "dns-01",
         f"mail.{DOMAIN}": "tls-alpn-01"}
IDN = "xn--bcher-kva.example"  # bücher.example
ISSUE_TIMEOUT = 90.0


class _AcmeService:
    """
    pebble, then the service configured to order from it.
    """

    mktemp: Any
    addCleanup: Any
    fail: Any

    def start(self, challenges: dict[str, str], workers: int = 1,
              pebble_http_port: int | None = None, pebble: bool = True,
              domains: str = DOMAIN) -> None:
        if not pebble_installed():
            raise SkipTest("pebble is not installed (sh tests/install-debian-packages)")
        self.directory = self.prepared()
        self.https, self.http, self.dns = free_port(), free_port(), free_udp_port()
        self.pebble: PebbleServer | None = None
        directory_url = f"https://127.0.0.1:{free_port()}/dir"
        ca_file = self.directory / "nothing.pem"
        ca_file.write_text("")
        if pebble:
            self.pebble = PebbleServer(self.directory / "pebble", self.dns,
                                       pebble_http_port or self.http, self.https)
            self.addCleanup(self.pebble.stop)
            directory_url, ca_file = self.pebble.directory_url, self.pebble.ca_file
        self.ini = build_ini({
            "server": {
                "https": f"ssl:{self.https}:interface=127.0.0.1:privateKey=tls/server.key:"
                         "certKey=tls/server.crt",
                "http": f"tcp:{self.http}:interface=127.0.0.1",
                "dns": f"127.0.0.1:{self.dns}",
                "domains": domains,
                "workers": str(workers),
            },
            "hosts": {f"mail.{DOMAIN}": "127.0.0.1"},
            "dns": {"rrl_rate": "0"},
            "health": {"probes": "no"},
            "acme": {"directory": directory_url, "ca_file": str(ca_file),
                     "state": "state", "contact": f"hostmaster@{DOMAIN}",
                     "agree_terms": "yes",
                     **{f"challenge.{name}": kind for name, kind in challenges.items()}},
        })
        self.config = write_config(self.directory, self.ini)
        self.service = RunningService(self.config, self.https)
        self.addCleanup(self.service.stop)

    def prepared(self) -> Path:
        """
        The test's directory, where the state directory may be prepared
        before the start.
        """
        if getattr(self, "_directory", None) is None:
            self._directory = Path(self.mktemp()).absolute()
            self._directory.mkdir(parents=True)
        return self._directory

    def health(self) -> dict[str, Any]:
        connection = self.service.probe_connection()
        try:
            connection.request("GET", "/health")
            document: dict[str, Any] = json.loads(connection.getresponse().read())
            return document
        finally:
            connection.close()

    def metrics(self) -> str:
        connection = self.service.probe_connection()
        try:
            connection.request("GET", "/metrics")
            return connection.getresponse().read().decode()
        finally:
            connection.close()

    def wait_acme(self, label: str, state: str, failures: int = 0) -> dict[str, Any]:
        """
        Until /health says certificate C{label} is in C{state} (after at
        least C{failures} failed orders).
        """
        deadline = time.monotonic() + ISSUE_TIMEOUT
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = self.health().get("acme", [])
            for status in seen:
                if (status["certificate"], status["state"]) == (label, state) and (
                        status["failures"] >= failures):
                    return status
            time.sleep(0.2)
        self.fail(f"{label} never became {state}: {seen}\n{self.service.log()}")

    def verified_peer(self, name: str, root: bytes) -> x509.Certificate:
        """
        The certificate served for C{name} to a client that trusts only
        C{root} and checks the name (a verification failure raises).
        """
        context = ssl.create_default_context(cadata=root.decode("ascii"))
        with socket.create_connection(("127.0.0.1", self.https), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)

    def unverified_peer(self, name: str) -> x509.Certificate:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.https), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)


def names_of(leaf: x509.Certificate) -> list[str]:
    extension = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return sorted(extension.value.get_values_for_type(x509.DNSName))


class AcmeServiceTests(_AcmeService, SynchronousTestCase):
    timeout = 240

    def test_every_challenge_type(self) -> None:
        """
        One certificate per domain (HTTP-01 and DNS-01 names) and one for
        the public host name (TLS-ALPN-01), all issued by pebble through
        the service's own listeners; every name verifies against pebble's
        root alone; the domain's profile is signed with its certificate;
        /health and /metrics say so; an IDN domain added by SIGHUP gets its own.
        """
        self.start(NAMES)
        domain = self.wait_acme(f"acme:{DOMAIN}", "valid")
        hostname = self.wait_acme("acme:hostname", "valid")
        self.assertEqual(domain["names"], [f"autodiscover.{DOMAIN}", f"autoconfig.{DOMAIN}"])
        self.assertEqual(hostname["names"], [f"mail.{DOMAIN}"])
        assert self.pebble is not None
        root = self.pebble.root_pem()
        for name in NAMES:
            leaf = self.verified_peer(name, root)
            self.assertIn(name, names_of(leaf))
        self.assertEqual(names_of(self.verified_peer(f"autodiscover.{DOMAIN}", root)),
                         sorted([f"autodiscover.{DOMAIN}", f"autoconfig.{DOMAIN}"]))
        self.assert_profile_verifies(root, f"autodiscover.{DOMAIN}")
        document = self.health()
        served = {c["certificate"]: c for c in document["certificates"]}
        self.assertEqual(served[f"acme:{DOMAIN}"]["configured"], f"[acme] {DOMAIN}")
        self.assertEqual(document["uncovered_names"], [])
        metrics = self.metrics()
        self.assertIn(f'smartdiscover_acme_certificate_state{{certificate="acme:{DOMAIN}",'
                      'state="valid"} 1.0', metrics)
        self.assertIn(f'smartdiscover_acme_renewal_failures{{certificate="acme:{DOMAIN}"}} 0.0',
                      metrics)
        mode = (self.directory / "state" / "acme" / "certificates" / f"{DOMAIN}.pem"
                ).stat().st_mode & 0o777
        self.assertEqual(mode, 0o600)

        # A new, internationalised domain: its names go by HTTP-01 (the
        # default), ordered and served as A-labels.
        self.config.write_text(self.ini.replace(f"domains = {DOMAIN}",
                                                f"domains = {DOMAIN}, bücher.example"),
                               encoding="utf-8")
        self.service.reload("reloaded")
        self.wait_acme(f"acme:{IDN}", "valid")
        leaf = self.verified_peer(f"autoconfig.{IDN}", root)
        self.assertEqual(names_of(leaf), [f"autoconfig.{IDN}", f"autodiscover.{IDN}"])
        self.assertNotIn("Traceback", self.service.log())

    def assert_profile_verifies(self, root: bytes, host: str) -> None:
        if shutil.which("openssl") is None:
            raise SkipTest("the openssl command-line tool is not installed")
        context = ssl.create_default_context(cadata=root.decode("ascii"))
        connection = PinnedHTTPSConnection(host, self.https, context=context, timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", "/mobileconfig", headers={
            "Authorization": basic(f"demo@{DOMAIN}", DEMO_PASSWORD)})
        response = connection.getresponse()
        body = response.read()
        self.assertEqual(response.status, 200, body[:200])
        (self.directory / "root.pem").write_bytes(root)
        (self.directory / "profile").write_bytes(body)
        result = subprocess.run(
            ["openssl", "cms", "-verify", "-inform", "DER", "-in",
             str(self.directory / "profile"), "-CAfile", str(self.directory / "root.pem"),
             "-purpose", "any", "-signer", str(self.directory / "signer.pem"),
             "-out", str(self.directory / "profile.plist")],
            capture_output=True, timeout=60, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        signer = x509.load_pem_x509_certificate((self.directory / "signer.pem").read_bytes())
        self.assertEqual(signer, self.verified_peer(host, root))

    def test_workers_get_the_certificate(self) -> None:
        """
        With two workers serving HTTPS, the first process orders (HTTP-01,
        DNS-01) and the workers serve the certificate it stored, none of
        them killed by the reload signal that tells them.
        """
        self.start({f"autodiscover.{DOMAIN}": "http-01", f"autoconfig.{DOMAIN}": "dns-01",
                    f"mail.{DOMAIN}": "dns-01"}, workers=2)
        self.wait_acme(f"acme:{DOMAIN}", "valid")
        self.wait_acme("acme:hostname", "valid")
        assert self.pebble is not None
        root = self.pebble.root_pem()
        deadline = time.monotonic() + 30
        while True:
            try:
                # Several connections: the kernel spreads them over both workers.
                for _ in range(8):
                    for name in NAMES:
                        self.verified_peer(name, root)
                break
            except ssl.SSLCertVerificationError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # The reload signal that tells workers of the new certificate may
        # reach one still starting: it must not kill it.
        self.assertNotIn("exited", self.service.log())


class AcmeFaultTests(_AcmeService, SynchronousTestCase):
    timeout = 240

    def test_ca_down_with_expiry_near(self) -> None:
        """
        The CA cannot be reached and the stored certificate has two days
        left: it stays served; /health says the renewal fails and why,
        /metrics counts the failures; the service answers as ever.
        """
        state = AcmeStore(self.prepared() / "state").open()
        names = [f"autodiscover.{DOMAIN}", f"autoconfig.{DOMAIN}"]
        leaf, key = certificate(names, not_before=datetime.now(timezone.utc)
                                - timedelta(days=88), days=90)
        state.save_certificate(DOMAIN, key, [leaf])
        self.start({}, pebble=False)
        status = self.wait_acme(f"acme:{DOMAIN}", "failing", failures=1)
        self.assertIn("cannot be reached", status["last_error"])
        self.assertEqual(status["expires"], leaf.not_valid_after_utc.isoformat())
        self.assertEqual(self.unverified_peer(f"autodiscover.{DOMAIN}"), leaf)
        served = {c["certificate"]: c for c in self.health()["certificates"]}
        self.assertLess(served[f"acme:{DOMAIN}"]["days_left"], 3)
        self.assertTrue(any("expires on" in w for w in served[f"acme:{DOMAIN}"]["warnings"]))
        self.assertRegex(self.metrics(), r'smartdiscover_acme_renewal_failures\{certificate='
                         rf'"acme:{DOMAIN}"\}} [1-9]')
        connection = self.service.probe_connection()
        connection.request("GET", "/health/live")
        self.assertEqual(connection.getresponse().read(), b"ok\n")
        connection.close()
        self.assertIn("order failed", self.service.log())

    def test_failing_challenge_and_corrupted_state(self) -> None:
        """
        pebble's HTTP-01 requests go to a closed port, and the domain's
        state file is corrupted: the file is reported, the order fails
        with pebble's reason for the name, the default serves that name;
        the public host name (TLS-ALPN-01) is issued all the same.
        """
        state = AcmeStore(self.prepared() / "state").open()
        state.certificate_path(DOMAIN).write_bytes(b"-----BEGIN PRIVATE KEY-----\nnonsense")
        self.start({f"autodiscover.{DOMAIN}": "http-01", f"autoconfig.{DOMAIN}": "http-01",
                    f"mail.{DOMAIN}": "tls-alpn-01"}, pebble_http_port=free_port())
        status = self.wait_acme(f"acme:{DOMAIN}", "failing", failures=1)
        self.assertIn("http-01 validation failed", status["last_error"])
        self.wait_acme("acme:hostname", "valid")
        assert self.pebble is not None
        self.verified_peer(f"mail.{DOMAIN}", self.pebble.root_pem())
        log = self.service.log()
        self.assertIn(f"ACME certificate {DOMAIN} is not served", log)
        self.assertIn(str(state.certificate_path(DOMAIN)), log)
        self.assertNotIn("nonsense", log)
