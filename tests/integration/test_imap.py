"""
The IMAP checker against a real Dovecot (SECURITY.md 3.4, 8): logs in with
the user's credentials over imaps or STARTTLS, verified, and tells the mail
server the client's address.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from zope.interface.verify import verifyObject

from smartdiscover.auth.credentials import BasicCredentials
from smartdiscover.auth.errors import BackendUnavailable
from smartdiscover.auth.imap import IMAPChecker
from smartdiscover.config import Model, load
from smartdiscover.config.principal import Principal
from tests.helpers import edit, write_config
from tests.integration import TestCase
from tests.integration.backends import DovecotServer


class IMAPCheckerTests(TestCase):
    """
    One Dovecot per test, with alice and bob in its passwd-file.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.dovecot = DovecotServer(self.directory / "dovecot")
        self.addCleanup(self.dovecot.stop)

    def checker(self, url: str, ca: Path | None = None, extra: str = "") -> IMAPChecker:
        auth = (f"backend = imap\nimap_url = {url}\nimap_ca = {ca or self.dovecot.ca_file}\n"
                f"imap_timeout = 2\n{extra}")
        model: Model = load(write_config(self.directory / "config", edit(
            "backend = passwd\npasswd_file = users.passwd\n", auth)))
        return IMAPChecker(lambda: model, reactor)

    def imaps(self) -> IMAPChecker:
        return self.checker(f"imaps://127.0.0.1:{self.dovecot.tls_port}")

    def check(self, checker: IMAPChecker, user: str, password: bytes | str,
              source: str = "192.0.2.1") -> Any:
        if isinstance(password, str):
            password = password.encode("utf-8")
        return checker.requestAvatarId(BasicCredentials(user, password, source))

    def test_interface(self) -> None:
        """
        The checker provides ICredentialsChecker.
        """
        self.assertTrue(verifyObject(ICredentialsChecker, self.imaps()))

    @inlineCallbacks
    def test_imaps(self) -> Any:
        """
        Over implicit TLS: the right password gives the principal; a wrong
        password and an unknown user are failed logins.
        """
        checker = self.imaps()
        principal = yield self.check(checker, "alice@example.test", "alice-password")
        self.assertEqual(principal, Principal("alice@example.test", ""))
        for user, password in (("alice@example.test", "bob-password"),
                               ("nobody@example.test", "alice-password")):
            yield self.assertFailure(self.check(checker, user, password), UnauthorizedLogin)

    @inlineCallbacks
    def test_starttls(self) -> Any:
        """
        Over imap:// the checker upgrades with STARTTLS before it sends any
        credentials: the server logs the login as TLS.
        """
        checker = self.checker(f"imap://127.0.0.1:{self.dovecot.port}")
        principal = yield self.check(checker, "bob@example.test", "bob-password")
        self.assertEqual(principal.address, "bob@example.test")
        line = self.dovecot.wait_for_log("user=<bob@example.test>")
        self.assertIn("TLS", line.split("user=<bob@example.test>", 1)[1].splitlines()[0])

    @inlineCallbacks
    def test_originating_ip(self) -> Any:
        """
        The client's address reaches the mail server (IMAP ID
        x-originating-ip), so its throttling sees the real source.
        """
        yield self.check(self.imaps(), "alice@example.test", "alice-password",
                         source="192.0.2.33")
        line = self.dovecot.wait_for_log("rip=192.0.2.33")
        self.assertIn("alice@example.test", line)

    @inlineCallbacks
    def test_line_breaks_cannot_inject(self) -> Any:
        """
        A password with CR LF is a failed login, not a second IMAP command.
        """
        for password in (b"alice-password\r\nA9 LOGOUT", b"x\r\n", b"\x00alice-password"):
            yield self.assertFailure(self.check(self.imaps(), "alice@example.test", password),
                                     UnauthorizedLogin)

    @inlineCallbacks
    def test_local_part_login(self) -> Any:
        """
        imap_login = local sends only the local part (this server wants the
        address, so it refuses: the setting is honoured).
        """
        checker = self.checker(f"imaps://127.0.0.1:{self.dovecot.tls_port}",
                               extra="imap_login = local\n")
        yield self.assertFailure(self.check(checker, "alice@example.test", "alice-password"),
                                 UnauthorizedLogin)
        self.dovecot.wait_for_log("passwd-file(alice,")

    @inlineCallbacks
    def test_server_down_is_unavailable(self) -> Any:
        """
        A mail server that is down is 503, not a failed login.
        """
        checker = self.imaps()
        self.dovecot.stop()
        yield self.assertFailure(self.check(checker, "alice@example.test", "alice-password"),
                                 BackendUnavailable)

    @inlineCallbacks
    def test_untrusted_certificate_is_unavailable(self) -> Any:
        """
        A certificate that does not verify stops the check before any
        credentials are sent.
        """
        other = DovecotServer(self.directory / "other")
        self.addCleanup(other.stop)
        checker = self.checker(f"imaps://127.0.0.1:{self.dovecot.tls_port}", ca=other.ca_file)
        yield self.assertFailure(self.check(checker, "alice@example.test", "alice-password"),
                                 BackendUnavailable)
        self.assertNotIn("alice@example.test", self.dovecot.log())
