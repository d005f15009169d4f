"""
The LDAP checker against a real slapd (SECURITY.md 8): binds as the user
over ldaps and StartTLS with a verified certificate.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.logger import formatEvent, globalLogPublisher
from zope.interface.verify import verifyObject

from smartdiscover.auth.credentials import BasicCredentials
from smartdiscover.auth.errors import BackendUnavailable
from smartdiscover.auth.ldap import LDAPChecker
from smartdiscover.config import Model, load
from smartdiscover.config.principal import Principal
from tests.helpers import edit, write_config
from tests.integration import TestCase
from tests.integration.backends import SlapdServer


def ldap_ini(auth: str) -> str:
    return edit("backend = passwd\npasswd_file = users.passwd\n",
                "backend = ldap\n" + auth + "failure_delay = 0\n")


class LDAPCheckerTests(TestCase):
    """
    One slapd per test: seeded with alice (displayName), bob (cn only), a
    user without password and two entries sharing one address.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.slapd = SlapdServer(self.directory / "slapd")
        self.addCleanup(self.slapd.stop)
        secret = self.directory / "reader.secret"
        secret.write_text(self.slapd.reader_password + "\n")
        self.secret = secret

    def checker(self, auth: str) -> LDAPChecker:
        model: Model = load(write_config(self.directory / "config", ldap_ini(auth)))
        return LDAPChecker(lambda: model, reactor)

    def template(self, url: str | None = None) -> LDAPChecker:
        return self.checker(f"ldap_url = {url or self.slapd.tls_uri}\n"
                            f"ldap_ca = {self.slapd.ca_file}\n"
                            f"ldap_bind_dn = uid={{local}},ou=people,{self.slapd.base}\n")

    def search(self, url: str | None = None) -> LDAPChecker:
        return self.checker(f"ldap_url = {url or self.slapd.uri}\n"
                            f"ldap_ca = {self.slapd.ca_file}\n"
                            f"ldap_base = {self.slapd.base}\n"
                            f"ldap_service_dn = {self.slapd.reader_dn}\n"
                            f"ldap_service_password_file = {self.secret}\n")

    def check(self, checker: LDAPChecker, user: str, password: str | bytes) -> Any:
        if isinstance(password, str):
            password = password.encode("utf-8")
        return checker.requestAvatarId(BasicCredentials(user, password, "192.0.2.1"))

    def test_interface(self) -> None:
        """
        The checker provides ICredentialsChecker.
        """
        self.assertTrue(verifyObject(ICredentialsChecker, self.template()))

    @inlineCallbacks
    def test_template_bind_over_ldaps(self) -> Any:
        """
        A DN from the template, bound over ldaps: the right password gives
        the principal with the directory's display name; a wrong one and an
        unknown user are failed logins.
        """
        checker = self.template()
        principal = yield self.check(checker, "alice@example.test", "alice-password")
        self.assertEqual(principal, Principal("alice@example.test", "Alice Example"))
        for user, password in (("alice@example.test", "wrong"),
                               ("nobody@example.test", "alice-password")):
            yield self.assertFailure(self.check(checker, user, password), UnauthorizedLogin)

    @inlineCallbacks
    def test_search_then_bind_over_starttls(self) -> Any:
        """
        Search with the service account, then bind as the entry found, on
        ldap:// upgraded with StartTLS; without displayName the cn is shown.
        """
        checker = self.search()
        principal = yield self.check(checker, "Bob@EXAMPLE.test", "bob-password")
        self.assertEqual(principal, Principal("Bob@example.test", "Bob"))
        yield self.assertFailure(self.check(checker, "bob@example.test", "alice-password"),
                                 UnauthorizedLogin)

    @inlineCallbacks
    def test_empty_password_never_binds(self) -> Any:
        """
        Empty and blank passwords fail before any connection (an empty
        simple bind would be an unauthenticated bind that succeeds, RFC 4513
        5.1.2): even with the directory gone they are 401, not 503.
        """
        checker = self.template()
        self.slapd.stop()
        for password in (b"", b" ", b"\t"):
            yield self.assertFailure(self.check(checker, "alice@example.test", password),
                                     UnauthorizedLogin)

    @inlineCallbacks
    def test_filter_injection(self) -> Any:
        """
        User names with filter syntax match nothing (SECURITY.md 8).
        """
        checker = self.search()
        for user in ("*@example.test", "admin)(uid=*@example.test", "\x00@example.test",
                     "*)(mail=*@example.test", "alice@example.test)(|(mail=*"):
            yield self.assertFailure(self.check(checker, user, "alice-password"),
                                     UnauthorizedLogin)

    @inlineCallbacks
    def test_two_entries_refused(self) -> Any:
        """
        An address found twice is refused, with the right password, and logged.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        checker = self.search()
        yield self.assertFailure(self.check(checker, self.slapd.twin_address,
                                            self.slapd.twin_password), UnauthorizedLogin)
        self.assertIn("2 entries have mail=twin@example.test",
                      " ".join(formatEvent(e) for e in events))

    @inlineCallbacks
    def test_user_without_password(self) -> Any:
        """
        An entry without userPassword cannot log in.
        """
        checker = self.search()
        yield self.assertFailure(self.check(checker, self.slapd.nopw_address, "anything"),
                                 UnauthorizedLogin)

    @inlineCallbacks
    def test_directory_down_is_unavailable(self) -> Any:
        """
        A directory that is down is 503 (BackendUnavailable), not a failed
        login that would count towards a lockout.
        """
        checker = self.template()
        self.slapd.stop()
        yield self.assertFailure(self.check(checker, "alice@example.test", "alice-password"),
                                 BackendUnavailable)

    @inlineCallbacks
    def test_untrusted_certificate_is_unavailable(self) -> Any:
        """
        A certificate that does not verify against the configured CA stops
        the check before the password is sent: 503.
        """
        other = SlapdServer(self.directory / "other")
        self.addCleanup(other.stop)
        checker = self.checker(f"ldap_url = {self.slapd.tls_uri}\nldap_ca = {other.ca_file}\n"
                               f"ldap_bind_dn = uid={{local}},ou=people,{self.slapd.base}\n")
        yield self.assertFailure(self.check(checker, "alice@example.test", "alice-password"),
                                 BackendUnavailable)

    @inlineCallbacks
    def test_silent_server_times_out(self) -> Any:
        """
        A server that accepts and never answers is given up after the
        configured timeout: 503.
        """
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        self.addCleanup(silent.close)
        port = silent.getsockname()[1]
        checker = self.checker(f"ldap_url = ldaps://127.0.0.1:{port}\n"
                               f"ldap_ca = {self.slapd.ca_file}\nldap_timeout = 0.5\n"
                               f"ldap_bind_dn = uid={{local}},ou=people,{self.slapd.base}\n")
        yield self.assertFailure(self.check(checker, "alice@example.test", "alice-password"),
                                 BackendUnavailable)

