"""
Tests for the C{[acme]} section (smartdiscover/config/acme.py): the CA,
the account, the state directory, the challenge per name, and the names
each certificate gets from the served domains (issue 17 section 2;
docs/certificates.md, "ACME").
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.certs.acme.served import managed_certificates
from smartdiscover.config import ConfigError, load
from smartdiscover.config.acme import (
    DEFAULT_STATE,
    HOSTNAME_LABEL,
    acme_certificates,
    challenges_used,
    domain_label,
)
from smartdiscover.config.model import Model
from tests.helpers import PROJECT_ROOT, Changes, build_ini, write_config

DIRECTORY = "https://acme.example.test/dir"


class AcmeSectionTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()

    def load(self, acme: dict[str, str | None] | None,
             changes: Changes | None = None) -> Model:
        all_changes: dict[str, object] = dict(changes or {})
        if acme is not None:
            all_changes["acme"] = acme
        server = {"http": "tcp:8080",
                  **dict(all_changes.pop("server", None) or {})}  # type: ignore[call-overload]
        all_changes["server"] = {k: v for k, v in server.items() if v is not None}
        return load(write_config(self.directory, build_ini(all_changes)))  # type: ignore[arg-type]

    def problems(self, acme: dict[str, str | None] | None,
                 changes: Changes | None = None) -> list[tuple[str | None, str | None, str]]:
        error = self.assertRaises(ConfigError, self.load, acme, changes)
        return [(p.section, p.key, p.message) for p in error.problems]

    def test_absent(self) -> None:
        """
        No section: nothing is ordered.
        """
        model = self.load(None)
        self.assertIsNone(model.acme)
        self.assertEqual(challenges_used(model), set())

    def test_defaults(self) -> None:
        """
        A directory alone: HTTP-01, the unit's state directory, terms not
        accepted, this instance orders.
        """
        acme = self.load({"directory": DIRECTORY}).acme
        assert acme is not None
        self.assertEqual((acme.directory, acme.state, acme.challenge, acme.agree_terms,
                          acme.order, acme.contact, acme.apex),
                         (DIRECTORY, DEFAULT_STATE, "http-01", False, True, (), frozenset()))

    def test_everything(self) -> None:
        """
        Every key, paths relative to the configuration's directory.
        """
        self.directory.mkdir(parents=True)
        (self.directory / "ca.pem").write_text("x")
        model = self.load({
            "directory": DIRECTORY, "contact": "mailto:hostmaster@example.test, b@example.test",
            "agree_terms": "yes", "state": "state", "ca_file": "ca.pem",
            "challenge": "tls-alpn-01", "apex_names": "example.test",
            "challenge.autoconfig.example.test": "http-01", "order": "no"})
        acme = model.acme
        assert acme is not None
        self.assertEqual(acme.contact, ("hostmaster@example.test", "b@example.test"))
        self.assertEqual(acme.state, self.directory / "state")
        self.assertEqual(acme.ca_file, self.directory / "ca.pem")
        self.assertEqual(dict(acme.challenges), {"autoconfig.example.test": "http-01"})
        self.assertEqual(acme.apex, frozenset({"example.test"}))
        self.assertFalse(acme.order)
        self.assertEqual(challenges_used(model), {"tls-alpn-01", "http-01"})

    def test_refused_values(self) -> None:
        """
        Each bad value is named with its key; nothing else is reported.
        """
        cases: list[tuple[dict[str, str | None], str, str]] = [
            ({"directory": "http://acme.example.test/dir"}, "directory", "not an https URL"),
            ({"directory": "acme.example.test"}, "directory", "not an https URL"),
            ({"contact": "nobody"}, "contact", "not an e-mail address"),
            ({"contact": "a@b"}, "contact", "not an e-mail address"),
            ({"contact": "\u00e9@example.test"}, "contact", "not an e-mail address"),
            ({"challenge": "dns-02"}, "challenge", "is not one of"),
            ({"agree_terms": "maybe"}, "agree_terms", "not yes or no"),
            ({"challenge.autodiscover.example.test": "ftp"},
             "challenge.autodiscover.example.test", "is not one of"),
            ({"challenge.bad..name": "http-01"}, "challenge.bad..name", "challenge.NAME"),
            ({"ca_file": "missing.pem"}, "ca_file", "cannot read"),
            ({"apex_names": "elsewhere.test"}, "apex_names", "not in [server] domains"),
            ({"colour": "blue"}, "colour", "unknown key"),
        ]
        for change, key, message in cases:
            acme: dict[str, str | None] = {"directory": DIRECTORY, **change}
            found = self.problems(acme)
            self.assertEqual([(s, k) for s, k, _ in found], [("acme", key)], change)
            self.assertIn(message, found[0][2], change)

    def test_directory_required(self) -> None:
        self.assertEqual(self.problems({"contact": "a@example.test"}),
                         [("acme", "directory", "required")])

    def test_state_not_a_directory(self) -> None:
        self.directory.mkdir(parents=True)
        (self.directory / "file").write_text("")
        found = self.problems({"directory": DIRECTORY, "state": "file"})
        self.assertEqual([(s, k) for s, k, _ in found], [("acme", "state")])

    def test_name_outside(self) -> None:
        """
        A challenge for a name that is not ordered here (a name of another
        domain, a wildcard) is refused, listing the names that are.
        """
        found = self.problems({"directory": DIRECTORY,
                               "challenge.autodiscover.elsewhere.test": "dns-01"})
        self.assertEqual(found, [("acme", "challenge.autodiscover.elsewhere.test",
                                  "autodiscover.elsewhere.test is not a name ordered here "
                                  "(those are: autoconfig.example.test, "
                                  "autodiscover.example.test, mail.example.test)")])
        found = self.problems({"directory": DIRECTORY, "challenge.*.example.test": "dns-01"})
        self.assertEqual([(s, k) for s, k, _ in found], [("acme", "challenge.*.example.test")])
        self.assertIn("no wildcard is ordered", found[0][2])

    def test_listener_each_challenge_needs(self) -> None:
        """
        HTTP-01 needs the plain-HTTP listener, DNS-01 the DNS responder,
        TLS-ALPN-01 a single process.
        """
        found = self.problems({"directory": DIRECTORY},
                              {"server": {"http": None}})  # type: ignore[dict-item]
        self.assertIn("[server] http", found[0][2])
        found = self.problems({"directory": DIRECTORY, "challenge": "dns-01"})
        self.assertIn("[server] dns", found[0][2])
        found = self.problems({"directory": DIRECTORY, "challenge": "tls-alpn-01"},
                              {"server": {"workers": "2"}})
        self.assertIn("workers = 1", found[0][2])
        # An instance that does not order answers no challenge.
        self.load({"directory": DIRECTORY, "challenge": "dns-01", "order": "no"})

    def test_dns01_outside_zones(self) -> None:
        """
        DNS-01 proves only names in the zones this responder serves.
        """
        found = self.problems({"directory": DIRECTORY, "challenge": "dns-01"},
                              {"server": {"dns": "127.0.0.1:5353",
                                          "public_hostname": "mail.provider.test"},
                               "hosts": {"mail.example.test": "192.0.2.10",
                                         "mail.provider.test": "192.0.2.11"}})
        self.assertEqual([(s, k) for s, k, _ in found],
                         [("acme", "challenge.mail.provider.test")])
        self.assertIn("no served zone", found[0][2])


class NamesTests(SynchronousTestCase):
    """
    One certificate per served domain, one for the public host name when
    no domain's names it.
    """

    def model(self, server: dict[str, str | None], acme: dict[str, str | None] | None = None,
              more: Changes | None = None) -> Model:
        directory = Path(self.mktemp()).absolute()
        changes: dict[str, object] = {"server": {"http": "tcp:8080", **server},
                                      "acme": {"directory": DIRECTORY, **(acme or {})}}
        changes.update(more or {})
        return load(write_config(directory, build_ini(changes)))  # type: ignore[arg-type]

    def test_per_domain(self) -> None:
        model = self.model({"domains": "example.test, example.org"})
        self.assertEqual(acme_certificates(model), [
            ("example.test", ("autodiscover.example.test", "autoconfig.example.test")),
            ("example.org", ("autodiscover.example.org", "autoconfig.example.org")),
            (HOSTNAME_LABEL, ("mail.example.test",)),
        ])

    def test_apex_and_own_hostname(self) -> None:
        """
        C{apex_names} adds the domain itself; a domain's own public host
        name joins its certificate; a public host name a domain's
        certificate names already gets none of its own.
        """
        model = self.model({"domains": "example.test, example.org",
                            "public_hostname": "autodiscover.example.test"},
                           {"apex_names": "example.org"},
                           {"domain:example.org": {"server.public_hostname": "mx.example.org"}})
        self.assertEqual(acme_certificates(model), [
            ("example.test", ("autodiscover.example.test", "autoconfig.example.test")),
            ("example.org", ("example.org", "autodiscover.example.org",
                             "autoconfig.example.org", "mx.example.org")),
        ])
        every = self.model({"domains": "example.test"}, {"apex_names": "all"})
        self.assertEqual(acme_certificates(every)[0][1][0], "example.test")

    def test_idn(self) -> None:
        """
        An internationalised domain is ordered as its A-labels.
        """
        model = self.model({"domains": "b\u00fccher.example"})
        self.assertEqual(managed_certificates(model)[0].names,
                         ("autodiscover.xn--bcher-kva.example",
                          "autoconfig.xn--bcher-kva.example"))

    def test_address_hostname(self) -> None:
        """
        A public host name that is an address gets no certificate (no CA
        issues one by these challenges).
        """
        model = self.model({"public_hostname": "192.0.2.1"})
        self.assertEqual([label for label, _ in acme_certificates(model)], ["example.test"])

    def test_long_domain_label(self) -> None:
        long = ".".join(["a" * 60, "b" * 60, "example"])
        label = domain_label(long)
        self.assertEqual(len(label), 64)
        self.assertNotEqual(label, domain_label(long.replace("a", "c")))
        self.assertEqual(domain_label("example.test"), "example.test")


class DocumentedExampleTests(SynchronousTestCase):
    """
    The C{[acme]} examples of docs/configuration.md and
    docs/certificates.md load as they are written.
    """

    def example(self, document: str) -> str:
        text = (PROJECT_ROOT / "docs" / document).read_text(encoding="utf-8")
        start = text.index("[acme]")
        start = text.rindex("\n", 0, start) + 1
        end = min(i for i in (text.find("\n\n", start), text.find("```", start)) if i > 0)
        return textwrap.dedent(text[start:end]).rstrip(" ") + "\n"

    def test_examples_load(self) -> None:
        for document in ("configuration.md", "certificates.md"):
            section = self.example(document)
            ini = build_ini({"server": {"http": "tcp:8080"}}) + "\n" + section
            model = load(write_config(Path(self.mktemp()), ini))
            assert model.acme is not None, document
            self.assertEqual(model.acme.directory,
                             "https://acme-v02.api.letsencrypt.org/directory", document)
            self.assertTrue(model.acme.agree_terms, document)
