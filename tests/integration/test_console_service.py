"""
The web console through the real service under twistd (issue 18): an
administrator made with C{smartdiscover admin-passwd} logs in over
loopback, changes the IMAP host on the SmartDiscover tab, sees the diff,
applies it, and a real POX request over TLS then carries the new host;
Set New Hostname For All does the same for every field; a wrong password
and a cross-site post are refused; the console over TLS when it is not
on loopback.
"""

from __future__ import annotations

import http.client
import re
import ssl
import subprocess
import sys
import urllib.parse
from pathlib import Path

from lxml import etree

from tests.helpers import DEMO_PASSWORD, PROJECT_ROOT, build_ini, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port
from tests.integration.test_service import NS, REQUEST, basic

ADMIN_PASSWORD = "console-secret-1"


class Browser:
    """
    Enough of a browser for the console: cookies kept per name, forms
    posted from the console's own origin.
    """

    def __init__(self, port: int, context: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.context = context
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, fields: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        if self.context is None:
            connection: http.client.HTTPConnection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=30)
        else:
            connection = http.client.HTTPSConnection("127.0.0.1", self.port,
                                                     context=self.context, timeout=30)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8")
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                cookie = rest.split(";", 1)[0]
                if "max-age=0" in value.lower():
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = cookie
            return response.status, text, dict(response.headers)
        finally:
            connection.close()

    def field(self, text: str, name: str) -> str:
        found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', text)
        assert found is not None, f"no field {name} in the page"
        return found.group(1)

    def login(self, name: str = "alice", password: str = ADMIN_PASSWORD) -> int:
        _, page, _ = self.request("GET", "/login")
        status, _, _ = self.request("POST", "/login", {
            "login_csrf": self.field(page, "login_csrf"), "name": name,
            "password": password})
        return status


class ConsoleServiceTests(SynchronousTestCase):
    timeout = 120

    def start(self, interface: str = "127.0.0.1", dead_imap: bool = False) -> None:
        """
        The service with the console; with C{dead_imap}, probes on and the
        IMAP endpoint on a port nothing listens on.
        """
        self.directory = Path(self.mktemp()).absolute()
        self.https, self.console = free_port(), free_port()
        ini = build_ini({
            "server": {"https": f"ssl:{self.https}:interface=127.0.0.1:"
                                "privateKey=tls/server.key:certKey=tls/server.crt"},
            "health": {"probes": "yes", "timeout": "2"} if dead_imap else {"probes": "no"},
            **({"imap": {"host": "127.0.0.1", "port": str(free_port())}} if dead_imap
               else {}),
            "admin": {"listen": f"tcp:{self.console}:interface={interface}",
                      "accounts": "admins"},
        })
        self.config = write_config(self.directory, ini)
        made = subprocess.run(
            [sys.executable, "-m", "smartdiscover.cli", "admin-passwd", "alice", "--config",
             str(self.config)], input=f"{ADMIN_PASSWORD}\n", capture_output=True, text=True,
            cwd=str(PROJECT_ROOT), timeout=60, check=False)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.service = RunningService(self.config, self.https)
        self.addCleanup(self.service.stop)

    def imap_server(self) -> str:
        """
        The IMAP server a real Outlook-style POX request over TLS gets.
        """
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", self.https, context=context,
                                                 timeout=30)
        try:
            connection.request("POST", "/autodiscover/autodiscover.xml", body=REQUEST,
                               headers={"Authorization": basic("demo@example.test",
                                                               DEMO_PASSWORD),
                                        "Content-Type": "text/xml"})
            response = connection.getresponse()
            document = etree.fromstring(response.read())
        finally:
            connection.close()
        servers = document.xpath("//a:Protocol[a:Type='IMAP']/a:Server/text()",
                                 namespaces=NS)
        return str(servers[0])

    def test_change_imap_host_then_pox(self) -> None:
        self.start()
        browser = Browser(self.console)
        self.assertEqual(browser.login(), 303)
        self.assertEqual(self.imap_server(), "mail.example.test")
        _, page, _ = browser.request("GET", "/settings")
        digest, csrf = browser.field(page, "digest"), browser.field(page, "csrf")
        fields = {"csrf": csrf, "digest": digest, "imap.host": "imap.example.test"}
        status, preview, _ = browser.request("POST", "/settings", {**fields,
                                                                   "action": "preview"})
        self.assertEqual(status, 200, preview)
        self.assertIn("+host = imap.example.test", preview)
        status, saved, _ = browser.request("POST", "/settings", {**fields, "action": "apply"})
        self.assertEqual(status, 200, saved)
        self.assertIn("Saved and reloaded.", saved)
        self.assertEqual(self.imap_server(), "imap.example.test")
        self.assertIn("console: alice changed [imap] host", self.service.log())

        # Set New Hostname For All: every field that named the host.
        _, page, _ = browser.request("GET", "/hostname")
        rename = {"csrf": csrf, "old": "mail.example.test", "new": "mx.example.test"}
        status, preview, _ = browser.request("POST", "/hostname", {**rename,
                                                                   "action": "preview"})
        self.assertEqual(status, 200, preview)
        status, done, _ = browser.request("POST", "/hostname", {
            **rename, "action": "apply", "digest": browser.field(preview, "digest")})
        self.assertIn("written and reloaded", done)
        self.assertNotIn("mail.example.test", self.config.read_text())
        self.assertNotIn(ADMIN_PASSWORD, self.service.log())

    def test_refusals(self) -> None:
        self.start()
        browser = Browser(self.console)
        self.assertEqual(browser.login(password="wrong"), 401)
        self.assertNotIn("sd_session", browser.cookies)
        self.assertEqual(browser.login(), 303)
        _, page, _ = browser.request("GET", "/")
        status, text, _ = browser.request(
            "POST", "/logout", {"csrf": browser.field(page, "csrf")},
            headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(status, 403, text)
        self.assertEqual(browser.request("GET", "/")[0], 200)  # still logged in
        self.assertIn("cross-site logout", self.service.log())

    def test_over_tls_off_loopback(self) -> None:
        """
        On every address (not loopback only), the console speaks TLS with
        the service's certificate, and its cookies are Secure.
        """
        self.start(interface="0.0.0.0")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        browser = Browser(self.console, context)
        status, _, headers = browser.request("GET", "/login")
        self.assertEqual(status, 200)
        self.assertIn("secure", headers.get("Set-Cookie", "").lower())
        self.assertEqual(browser.login(), 303)
        plain = Browser(self.console)
        self.assertRaises((http.client.HTTPException, OSError), plain.request, "GET", "/login")
