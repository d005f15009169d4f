"""
Integration tests: the real service under twistd, spoken to over real TLS on
loopback the way a client would.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from pathlib import Path

from cryptography import x509
from lxml import etree

from tests.helpers import DEMO_PASSWORD, MINIMAL_INI, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port

NS = {
    "r": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
    "a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
}
REQUEST = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>demo@example.test</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post_status(connection: http.client.HTTPConnection, authorization: str) -> int:
    """
    POST the demo user's Autodiscover request on C{connection}, then close
    it; the status.
    """
    try:
        connection.request("POST", "/autodiscover/autodiscover.xml", body=REQUEST,
                           headers={"Authorization": authorization,
                                    "Content-Type": "text/xml"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class ServiceTests(SynchronousTestCase):
    """
    One twistd process per test, on a free loopback port.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.port = free_port()
        self.http_port = free_port()
        self.config = write_config(self.directory, self.ini())
        self.service = RunningService(self.config, self.port)
        self.addCleanup(self.service.stop)
        self.certificate = self.directory / "tls" / "server.crt"

    def ini(self, imap_port: int = 993) -> str:
        return (MINIMAL_INI
                .replace("https = ssl:8443:", f"http = tcp:{self.http_port}:interface=127.0.0.1\n"
                         f"https = ssl:{self.port}:interface=127.0.0.1:")
                .replace("[imap]\n", f"[imap]\nport = {imap_port}\n"))

    def client_context(self, **kwargs: object) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certificate))
        for name, value in kwargs.items():
            setattr(context, name, value)
        return context

    def connect(self, context: ssl.SSLContext | None = None) -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=context or self.client_context(), timeout=10)
        self.addCleanup(connection.close)
        return connection

    def post(self, authorization: str | None, body: bytes = REQUEST,
             path: str = "/Autodiscover/Autodiscover.xml",
             connection: http.client.HTTPSConnection | None = None
             ) -> http.client.HTTPResponse:
        connection = connection or self.connect()
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if authorization is not None:
            headers["Authorization"] = authorization
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        return response

    def imap_port(self, response: http.client.HTTPResponse) -> str:
        root = etree.fromstring(response.body)  # type: ignore[attr-defined]
        ports = root.xpath("a:Response/a:Account/a:Protocol[a:Type='IMAP']/a:Port/text()",
                           namespaces={"a": NS["a"]})
        self.assertEqual(len(ports), 1)
        return ports[0]

    def test_settings_over_verified_tls(self) -> None:
        """
        The demo user gets IMAP, POP3 and SMTP settings over TLS that
        verifies against the development certificate the first start created
        (issue 2, "Done when").
        """
        response = self.post(basic("demo@example.test", DEMO_PASSWORD))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("Content-Type"), "text/xml; charset=utf-8")
        self.assertTrue(response.body.startswith(b"<?xml"))  # type: ignore[attr-defined]
        root = etree.fromstring(response.body)  # type: ignore[attr-defined]
        self.assertEqual(root.tag, f"{{{NS['r']}}}Autodiscover")
        types = root.xpath("a:Response/a:Account/a:Protocol/a:Type/text()",
                           namespaces={"a": NS["a"]})
        self.assertEqual(types, ["IMAP", "POP3", "SMTP", "EXPR", "WEB"])
        self.assertIn("development certificate", self.service.log())

    def test_wrong_password_and_no_credentials(self) -> None:
        """
        A wrong password and a missing Authorization header both get 401
        with the Basic challenge; the password never reaches the log.
        """
        for authorization in (basic("demo@example.test", "wrong-secret"), None):
            response = self.post(authorization)
            self.assertEqual(response.status, 401)
            self.assertEqual(response.getheader("WWW-Authenticate"),
                             'Basic realm="mail.example.test", charset="UTF-8"')
        self.assertNotIn("wrong-secret", self.service.log())
        self.assertNotIn(DEMO_PASSWORD, self.service.log())

    def test_lowercase_path_and_keep_alive(self) -> None:
        """
        The lower-case path works too, and several requests share one
        kept-alive TLS connection.
        """
        connection = self.connect()
        for path in ("/autodiscover/autodiscover.xml", "/AutoDiscover/AutoDiscover.XML"):
            response = self.post(basic("demo@example.test", DEMO_PASSWORD),
                                 path=path, connection=connection)
            self.assertEqual(response.status, 200)

    def test_old_tls_refused(self) -> None:
        """
        A client that offers at most TLS 1.1 cannot connect (SECURITY.md 4.1).
        """
        context = self.client_context()
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            self.post(basic("demo@example.test", DEMO_PASSWORD),
                      connection=self.connect(context))

    def test_oversized_body_then_still_serving(self) -> None:
        """
        A 1 MiB body gets 413 and the service keeps answering.
        """
        connection = self.connect()
        connection.putrequest("POST", "/autodiscover/autodiscover.xml")
        connection.putheader("Authorization", basic("demo@example.test", DEMO_PASSWORD))
        connection.putheader("Content-Length", str(1024 * 1024))
        connection.endheaders()
        response = connection.getresponse()
        self.assertEqual(response.status, 413)
        response = self.post(basic("demo@example.test", DEMO_PASSWORD))
        self.assertEqual(response.status, 200)

    def test_reload_valid_change(self) -> None:
        """
        After SIGHUP with a changed file, the new value is served.
        """
        self.assertEqual(self.imap_port(self.post(basic("demo@example.test", DEMO_PASSWORD))),
                         "993")
        self.config.write_text(self.ini(imap_port=1993), encoding="utf-8")
        self.service.reload("reloaded")
        self.assertEqual(self.imap_port(self.post(basic("demo@example.test", DEMO_PASSWORD))),
                         "1993")

    def test_reload_broken_file_keeps_serving(self) -> None:
        """
        After SIGHUP with a broken file the old model stays in force, the log
        names file, section and key, and the process keeps serving.
        """
        self.config.write_text(self.ini().replace("security = ssl", "security = maybe", 1),
                               encoding="utf-8")
        self.service.reload("reload failed")
        self.assertIn(f"{self.config}: [imap] security", self.service.log())
        response = self.post(basic("demo@example.test", DEMO_PASSWORD))
        self.assertEqual(response.status, 200)
        self.assertEqual(self.imap_port(response), "993")
        self.config.write_text("\x00garbage[", encoding="utf-8")
        self.service.reload("reload failed")
        self.assertEqual(self.post(basic("demo@example.test", DEMO_PASSWORD)).status, 200)

    def test_reload_cut_off_password_file_refused(self) -> None:
        """
        A password file cut off inside a hash (a half-written copy), or
        emptied, is refused on SIGHUP with file and line (issue 14,
        section 4): the generation stays, /health says the reload failed,
        and the user it would have dropped still logs in.
        """
        passwd = self.directory / "users.passwd"
        whole = passwd.read_text(encoding="utf-8")
        for broken, where in ((whole[:whole.index("$2b$") + 30], f"{passwd}:1: "),
                              ("", "holds no users")):
            passwd.write_text(broken, encoding="utf-8")
            self.service.reload("reload failed")
            self.assertIn(where, self.service.log())
            health = self.connect()
            health.request("GET", "/health")
            state = json.loads(health.getresponse().read())
            self.assertEqual((state["generation"], state["last_reload_ok"]), (1, False), state)
            self.assertEqual(self.post(basic("demo@example.test", DEMO_PASSWORD)).status, 200)

    def test_reload_dropping_most_users_warns(self) -> None:
        """
        A reload that keeps one user of three applies, and warns with the
        count it drops.
        """
        passwd = self.directory / "users.passwd"
        demo = passwd.read_text(encoding="utf-8")
        hashed = demo.split(":")[1]
        passwd.write_text(demo + f"a@example.test:{hashed}\nb@example.test:{hashed}\n",
                          encoding="utf-8")
        self.service.reload("reloaded")
        passwd.write_text(demo, encoding="utf-8")
        self.service.reload("reloaded")
        self.assertIn(f"reloading {self.config} drops 2 of 3 users", self.service.log())
        self.assertEqual(self.post(basic("demo@example.test", DEMO_PASSWORD)).status, 200)

    def test_reload_new_certificate(self) -> None:
        """
        After a certificate change and SIGHUP, new connections get the new
        certificate while an open kept-alive connection keeps working.
        """
        from smartdiscover.web.devcert import create_development_certificate

        def serial(connection: http.client.HTTPSConnection) -> int:
            der = connection.sock.getpeercert(binary_form=True)
            return x509.load_der_x509_certificate(der).serial_number

        kept = self.connect(self.client_context(check_hostname=False, verify_mode=ssl.CERT_NONE))
        self.assertEqual(self.post(basic("demo@example.test", DEMO_PASSWORD),
                                   connection=kept).status, 200)
        old_serial = serial(kept)
        create_development_certificate(self.certificate, self.directory / "tls" / "server.key",
                                       ["mail.example.test"])
        self.service.reload("reloaded")
        fresh = self.connect(self.client_context())
        self.assertEqual(self.post(basic("demo@example.test", DEMO_PASSWORD),
                                   connection=fresh).status, 200)
        self.assertNotEqual(serial(fresh), old_serial)
        self.assertEqual(self.post(basic("demo@example.test", DEMO_PASSWORD),
                                   connection=kept).status, 200)
        self.assertEqual(serial(kept), old_serial)

    def test_plain_http_redirects_without_asking_for_credentials(self) -> None:
        """
        The plain-HTTP listener answers the redirect probe, even one that
        carries credentials, with a 302 to the https Autodiscover URL and
        never a challenge (SECURITY.md 3.1); the credentials are not logged.
        """
        for headers in ({}, {"Authorization": basic("demo@example.test", "leaked-secret")}):
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
            self.addCleanup(connection.close)
            connection.request("GET", "/autodiscover/autodiscover.xml", headers=headers)
            response = connection.getresponse()
            response.read()
            self.assertEqual(response.status, 302)
            self.assertEqual(response.getheader("Location"),
                             f"https://mail.example.test:{self.port}/autodiscover/autodiscover.xml")
            self.assertIsNone(response.getheader("WWW-Authenticate"))
        self.assertNotIn("leaked-secret", self.service.log())

    def test_clean_stop(self) -> None:
        """
        SIGTERM stops the service cleanly: twistd shuts down and ends by the
        signal, which systemd counts as a clean stop.
        """
        self.assertEqual(self.service.stop(), -15)
        self.assertIn("Server Shut Down.", self.service.log())
        self.assertNotIn("Traceback", self.service.log())
