"""
Tests for the fixture builder of L{tests.helpers}: L{build_ini} derives the
suite's configuration files from L{MINIMAL_INI}, so what it renders must be
what the loader reads.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import load
from tests.helpers import CORE_INI, MINIMAL_INI, build_ini, ini_sections, write_config


class BuildINITests(SynchronousTestCase):
    def test_unchanged_is_minimal(self) -> None:
        """
        Without changes the text is L{MINIMAL_INI} to the letter, and
        L{CORE_INI} is its [server] and [auth] up to the first service.
        """
        self.assertEqual(build_ini(), MINIMAL_INI)
        self.assertEqual(CORE_INI, MINIMAL_INI[:MINIMAL_INI.index("[imap]")])

    def test_changes(self) -> None:
        """
        A key set keeps its place or goes last in its section; a key or
        section mapped to None goes; a new section goes last; a str is a
        section's body as it stands.
        """
        ini = build_ini({
            "server": {"domains": "example.test, example.org", "dns": "127.0.0.1:5353",
                       "ttl": None},
            "pop3": None,
            "hosts": {"mail.example.test": "192.0.2.10"},
            "health": "{health}",
        })
        sections = ini_sections(ini.format(health="interval = 5\n"))
        self.assertEqual(list(sections), ["server", "auth", "imap", "smtp", "urls", "hosts",
                                          "health"])
        self.assertEqual(list(sections["server"].items()), [
            ("public_hostname", "mail.example.test"),
            ("domains", "example.test, example.org"),
            ("https", "ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt"),
            ("dns", "127.0.0.1:5353"),
        ])
        self.assertEqual(sections["hosts"], {"mail.example.test": "192.0.2.10"})
        self.assertEqual(sections["health"], {"interval": "5"})
        self.assertEqual(sections["imap"], ini_sections(MINIMAL_INI)["imap"])

    def test_only(self) -> None:
        """
        C{only} keeps the named sections of C{base}, in that order, before
        the changes apply.
        """
        ini = build_ini({"imap": {"security": None}}, only=("server", "auth", "imap"))
        self.assertEqual(list(ini_sections(ini)), ["server", "auth", "imap"])
        self.assertEqual(ini_sections(ini)["imap"], {"host": "mail.example.test"})

    def test_loud_on_absent(self) -> None:
        """
        Removing or keeping what C{base} lacks fails, so a fixture never
        silently keeps what it meant to change.
        """
        self.assertRaises(AssertionError, build_ini, {"xmpp": None})
        self.assertRaises(AssertionError, build_ini, {"imap": {"port": None}})
        self.assertRaises(AssertionError, build_ini, only=("server", "xmpp"))

    def test_loads(self) -> None:
        """
        What it renders is a file the loader takes, with the changes in the
        model.
        """
        ini = build_ini({"server": {"domains": "example.test, example.org"}})
        model = load(write_config(self.mktemp(), ini))
        self.assertEqual(model.domains, ("example.test", "example.org"))
