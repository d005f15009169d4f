"""
The [auth] section: backends, their TLS servers, and the guard's policy.
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import ConfigError, load
from smartdiscover.config.model import GuardPolicy, TLSServer
from tests.helpers import edit, write_config

PASSWD_AUTH = "backend = passwd\npasswd_file = users.passwd\n"


class AuthConfigTests(SynchronousTestCase):
    def load_auth(self, auth: str) -> object:
        directory = Path(self.mktemp())
        directory.mkdir(parents=True)
        (directory / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
        (directory / "reader.secret").write_text("s3cret\n")
        return load(write_config(directory, edit(PASSWD_AUTH, auth)))

    def problems(self, auth: str) -> list[tuple[str | None, str | None, str]]:
        error = self.assertRaises(ConfigError, self.load_auth, auth)
        return [(p.section, p.key, p.message) for p in error.problems]

    def test_guard_defaults_and_values(self) -> None:
        """
        Without guard keys the documented defaults apply; each key is read
        with its type (SECURITY.md 3.4).
        """
        model = self.load_auth(PASSWD_AUTH)
        self.assertEqual(model.auth.guard, GuardPolicy())
        model = self.load_auth(PASSWD_AUTH + "failure_delay = 0.5\nnetwork_failures = 3\n"
                                            "cache_ttl = 0\nmax_pending = 4\n")
        guard = model.auth.guard
        self.assertEqual((guard.failure_delay, guard.network_failures, guard.cache_ttl,
                          guard.max_pending), (0.5, 3, 0.0, 4))

    def test_guard_bad_values(self) -> None:
        """
        Negative or non-numeric policy values are refused with their key.
        """
        for line in ("failure_delay = -1", "network_failures = many", "max_pending = 1.5"):
            key = line.split(" = ")[0]
            [(section, where, _)] = self.problems(PASSWD_AUTH + line + "\n")
            self.assertEqual((section, where), ("auth", key))

    def test_ldap_template(self) -> None:
        """
        ldaps:// is implicit TLS on 636; ldap:// is upgraded with StartTLS
        on 389; the CA file is relative to the configuration file; the
        display-name attributes default to displayName, cn.
        """
        model = self.load_auth("backend = ldap\nldap_url = ldaps://LDAP.Example.test\n"
                               "ldap_ca = ca.pem\nldap_bind_dn = uid={local},dc=example\n")
        ldap = model.auth.ldap
        self.assertEqual(ldap.server, TLSServer("ldap.example.test", 636, True,
                                                model.source.parent / "ca.pem", 5.0))
        self.assertEqual(ldap.display_name_attributes, ("displayName", "cn"))
        model = self.load_auth("backend = ldap\nldap_url = ldap://127.0.0.1:10389\n"
                               "ldap_bind_dn = uid={local},dc=example\n")
        self.assertEqual((model.auth.ldap.server.port, model.auth.ldap.server.implicit_tls),
                         (10389, False))

    def test_ldap_search_reads_the_secret(self) -> None:
        """
        Search-then-bind reads the service password from its file, and it
        never shows in the model's repr.
        """
        model = self.load_auth("backend = ldap\nldap_url = ldaps://ldap.example.test\n"
                               "ldap_base = dc=example\nldap_service_dn = cn=reader\n"
                               "ldap_service_password_file = reader.secret\n")
        self.assertEqual(model.auth.ldap.service_password, "s3cret")
        self.assertNotIn("s3cret", repr(model.auth))

    def test_ldap_problems(self) -> None:
        """
        Plain-text schemes, a template with unknown fields, neither or both
        of template and search, a service DN without password, an
        unreadable CA and a bad attribute are each refused with their key.
        """
        base = "backend = ldap\nldap_bind_dn = uid={local}\n"
        cases = {
            "ldap_url": base + "ldap_url = http://ldap.example.test\n",
            "ldap_bind_dn": "backend = ldap\nldap_url = ldaps://h\nldap_bind_dn = uid={user}\n",
            "ldap_ca": base + "ldap_url = ldaps://h\nldap_ca = missing.pem\n",
            "ldap_attribute": base + "ldap_url = ldaps://h\nldap_attribute = (mail)\n",
        }
        for key, auth in cases.items():
            self.assertIn(key, [where for _, where, _ in self.problems(auth)], auth)
        neither = "backend = ldap\nldap_url = ldaps://h\n"
        self.assertIn("ldap_bind_dn", [where for _, where, _ in self.problems(neither)])
        lonely = ("backend = ldap\nldap_url = ldaps://h\nldap_base = dc=x\n"
                  "ldap_service_dn = cn=reader\n")
        self.assertIn("ldap_service_dn", [where for _, where, _ in self.problems(lonely)])
        self.assertIn("ldap_url", [where for _, where, _ in self.problems("backend = ldap\n")])

    def test_imap(self) -> None:
        """
        imaps:// on 993, imap:// (STARTTLS) on 143; imap_login address or
        local; anything else refused.
        """
        model = self.load_auth("backend = imap\nimap_url = imaps://imap.example.test\n")
        self.assertEqual((model.auth.imap.server.port, model.auth.imap.server.implicit_tls,
                          model.auth.imap.login), (993, True, "address"))
        model = self.load_auth("backend = imap\nimap_url = imap://imap.example.test\n"
                               "imap_login = local\n")
        self.assertEqual((model.auth.imap.server.port, model.auth.imap.login), (143, "local"))
        for auth in ("backend = imap\nimap_url = pop3://h\n",
                     "backend = imap\nimap_url = imaps://h\nimap_login = uid\n",
                     "backend = imap\nimap_url = imaps://h\nimap_timeout = soon\n"):
            self.assertTrue(self.problems(auth), auth)

    def test_unknown_key_and_backend(self) -> None:
        """
        Unknown keys and backends are refused.
        """
        self.assertEqual(self.problems(PASSWD_AUTH + "password_hash = x\n")[0][:2],
                         ("auth", "password_hash"))
        self.assertEqual(self.problems("backend = kerberos\n")[0][:2], ("auth", "backend"))
