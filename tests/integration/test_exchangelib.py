"""
A real third-party client, exchangelib 4.9.0 (the last release that speaks
POX, PROTOCOLS.md 11.1), discovers settings from the running service over
TLS on loopback: its own dnspython resolver asks a loopback DNS server, its
HTTPS connections reach the service, and it verifies the certificate.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


from tests.helpers import DEMO_HASH, DEMO_PASSWORD, MINIMAL_INI, write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port, free_udp_port

try:
    from exchangelib import Credentials
    from exchangelib.autodiscover import clear_cache
    from exchangelib.autodiscover.discovery.base import BaseAutodiscovery
    from exchangelib.autodiscover.discovery.pox import PoxAutodiscovery
except ImportError:  # pragma: no cover  (a test extra; CI installs it)
    PoxAutodiscovery = None

NAMES = ("example.test", "autodiscover.example.test", "mail.example.test",
         "example.org", "autodiscover.example.org", "mail2.example.test")

CONFIG = MINIMAL_INI.replace("domains = example.test", "domains = example.test, example.org").replace(
    "[urls]\n", "[urls]\nactivesync = /Microsoft-Server-ActiveSync\ncaldav = /dav/\n") + """
[xmpp]
security = starttls

[sip]
transport = tls

[domain:example.org]
server.public_hostname = mail.example.org
urls.ews = https://mail.example.org/EWS/Exchange.asmx

[redirectAddr]
old@example.test = new@example.org

[redirectUrl]
moved@example.test = https://mail2.example.test/autodiscover/autodiscover.xml

[hosts]
example.test = 127.0.0.1
mail.example.test = 127.0.0.1
mail2.example.test = 127.0.0.1
example.org = 127.0.0.1
mail.example.org = 127.0.0.1
"""

SECOND = MINIMAL_INI.replace("public_hostname = mail.example.test",
                             "public_hostname = mail2.example.test").replace(
    "ews = https://mail.example.test/EWS/Exchange.asmx",
    "ews = https://mail2.example.test/EWS/Exchange.asmx")

PASSWD = "".join(f"{user}:{DEMO_HASH}\n" for user in
                 ("demo@example.test", "old@example.test", "moved@example.test"))


class ExchangelibTests(SynchronousTestCase):
    """
    exchangelib against two SmartDiscover processes: the main one, whose
    DNS responder answers exchangelib's own resolver, and a second one that
    a redirectUrl points at.
    """

    def setUp(self) -> None:
        if PoxAutodiscovery is None:
            self.fail("exchangelib==4.9.0 is a test dependency: pip install '.[test]'")
        directory = Path(self.mktemp()).absolute()
        dns_port = free_udp_port()
        self.main = self.start(directory / "main", CONFIG.replace(
            "ttl = 1\n", f"ttl = 1\ndns = 127.0.0.1:{dns_port}\n"))
        self.second = self.start(directory / "second", SECOND)
        bundle = directory / "ca.pem"
        bundle.write_bytes(b"".join((d / "tls" / "server.crt").read_bytes()
                                    for d in (directory / "main", directory / "second")))
        previous = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
        self.addCleanup(self.restore_env, previous)

        self.patch(BaseAutodiscovery, "DNS_RESOLVER_KWARGS", {"configure": False})
        self.patch(BaseAutodiscovery, "DNS_RESOLVER_ATTRS",
                   {"nameservers": ["127.0.0.1"], "port": dns_port, "timeout": 5})
        self.route_https({"mail2.example.test": self.second.port}, self.main.port)
        clear_cache()
        self.addCleanup(clear_cache)

    def restore_env(self, previous: str | None) -> None:
        if previous is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = previous

    def start(self, directory: Path, ini: str) -> RunningService:
        port = free_port()
        config = write_config(directory, ini.replace(
            "https = ssl:8443:", f"https = ssl:{port}:interface=127.0.0.1:"), passwd=PASSWD)
        service = RunningService(config, port)
        self.addCleanup(service.stop)
        return service

    def route_https(self, special: dict[str, int], default: int) -> None:
        """
        Send the client's connections to port 443 of the test names to the
        services on loopback; the URL, Host header and TLS name stay as the
        client wrote them.
        """
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and host.rstrip(".") in NAMES and int(port) == 443:
                return real("127.0.0.1", special.get(host.rstrip("."), default),
                            socket.AF_INET, socket.SOCK_STREAM)
            return real(host, port, *args, **kwargs)

        self.patch(socket, "getaddrinfo", getaddrinfo)

    def discover(self, address: str) -> Any:
        credentials = Credentials(address, DEMO_PASSWORD)
        response, protocol = PoxAutodiscovery(email=address, credentials=credentials).discover()
        return response, protocol

    def test_settings(self) -> None:
        """
        exchangelib finds the EWS URL (from EwsUrl in EXPR) and the IMAP
        settings, after the 401 challenge it relies on, in a document that
        also carries the extension Protocols.
        """
        response, protocol = self.discover("demo@example.test")
        self.assertEqual(protocol.service_endpoint, "https://mail.example.test/EWS/Exchange.asmx")
        imap = [p for p in response.account.protocols if p.type == "IMAP"]
        self.assertEqual([(p.server, p.port) for p in imap], [("mail.example.test", 993)])
        types = [p.type for p in response.account.protocols]
        self.assertEqual(types, ["IMAP", "POP3", "SMTP", "EXPR", "WEB", "XMPP", "SIP",
                                 "ACTIVESYNC", "CALDAV"])

    def test_redirect_addr(self) -> None:
        """
        Action redirectAddr: exchangelib restarts discovery for the new
        address in the other served domain, with the same credentials, and
        gets that domain's settings.
        """
        response, protocol = self.discover("old@example.test")
        self.assertEqual(protocol.service_endpoint, "https://mail.example.org/EWS/Exchange.asmx")
        self.assertEqual(response.autodiscover_smtp_address, "new@example.org")

    def test_redirect_url(self) -> None:
        """
        Action redirectUrl: exchangelib reads RedirectURL, checks the target
        over TLS and gets the settings from the second server.
        """
        _, protocol = self.discover("moved@example.test")
        self.assertEqual(protocol.service_endpoint,
                         "https://mail2.example.test/EWS/Exchange.asmx")
