"""
Tests for L{smartdiscover.config.restart}: what a reload leaves for a
restart.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import Model, load
from smartdiscover.config.restart import unapplied
from tests.helpers import MINIMAL_INI, edit, write_config


class UnappliedTests(SynchronousTestCase):
    def load(self, ini: str) -> Model:
        return load(write_config(self.mktemp(), ini))

    def test_nothing_for_what_applies(self) -> None:
        """
        Changes a reload applies (a port clients are told, the TTL) need no
        restart.
        """
        started = self.load(MINIMAL_INI)
        new = self.load(edit("ttl = 1", "ttl = 5", edit("[imap]\n", "[imap]\nport = 1993\n")))
        self.assertEqual(unapplied(started, new), [])
        self.assertEqual(unapplied(started, started), [])

    def test_listeners_workers_backend(self) -> None:
        """
        Another HTTPS port, a plain-HTTP and a DNS listener added, more
        workers and another user store: one message each, naming the key.
        """
        started = self.load(MINIMAL_INI)
        new = self.load(edit("ttl = 1", "ttl = 1\nhttp = tcp:8080\ndns = 127.0.0.1:8053\n"
                             "workers = 2", edit("ssl:8443:", "ssl:9443:",
                                                 edit("backend = passwd", "backend = imap\n"
                                                      "imap_url = imaps://mail.example.test")))
                        + "\n[hosts]\nmail.example.test = 192.0.2.10\n")
        self.assertEqual(unapplied(started, new), [
            "[server] workers changed to 2: restart to apply",
            "[server] https listens elsewhere now: restart to listen there",
            "[server] http listens elsewhere now: restart to listen there",
            "[server] dns changed to 127.0.0.1:8053: restart to apply",
            "[auth] backend changed to imap: restart to apply"])
        self.assertIn("[server] dns was removed: restart to apply", unapplied(new, started))

    def test_acme_ordering(self) -> None:
        """
        [acme] added, or switched to C{order = no}: whether this instance
        orders waits for a restart; another CA or contact applies.
        """
        plain = edit("ttl = 1", "ttl = 1\nhttp = tcp:8080")
        started = self.load(plain)
        acme = plain + "\n[acme]\ndirectory = https://acme.example.test/dir\n"
        ordering = self.load(acme)
        self.assertEqual(unapplied(started, ordering),
                         ["[acme]: this instance now orders certificates from a restart on"])
        self.assertEqual(unapplied(ordering, self.load(acme + "order = no\n")),
                         ["[acme]: this instance no longer orders certificates from a "
                          "restart on"])
        self.assertEqual(unapplied(ordering, self.load(
            acme.replace("acme.example", "other.example") + "contact = a@example.test\n")), [])
