"""
Tests for L{smartdiscover.config}: address normalisation, the INI loader and
its validation, the L{ConfigStore} reload, and the SIGHUP service.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Callable

import bcrypt
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from smartdiscover.config import ConfigError, ConfigProblem, ConfigStore, load
from smartdiscover.config.address import (
    AddressError,
    address_key,
    normalize_domain,
    split_address,
)
from smartdiscover.config.loader import MAX_CONFIG_BYTES
from smartdiscover.config.model import Model, Security, SocketService, TCPListener
from smartdiscover.config.sighup import ReloadOnSignal
from tests.helpers import CORE_INI, DEMO_HASH, DEMO_PASSWORD, MINIMAL_INI, edit, write_config
from tests.helpers import run_synchronously

ARGON2_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"


def passwd_line(address: str, hash_: str = DEMO_HASH, name: str = "") -> str:
    """
    One Dovecot passwd-file line for C{address}.
    """
    return f"{address}:{hash_}:::{name}\n"


class _ConfigTestCase(SynchronousTestCase):
    """
    Writing a configuration and collecting the problems the loader finds.
    """

    def write(self, ini: str = MINIMAL_INI, passwd: str | None = None) -> Path:
        return write_config(self.mktemp(), ini, passwd)

    def problems(self, path: Path) -> list[ConfigProblem]:
        """
        Load C{path}, which must be invalid, and return its problems.
        """
        error = self.assertRaises(ConfigError, load, path)
        self.assertEqual(str(error), "\n".join(str(p) for p in error.problems))
        return error.problems

    def problems_of(self, ini: str, passwd: str | None = None
                    ) -> tuple[Path, list[ConfigProblem]]:
        path = self.write(ini, passwd)
        return path, self.problems(path)

    def assert_problem(self, path: Path, problem: ConfigProblem,
                       section: str | None, key: str | None,
                       *fragments: str) -> None:
        """
        C{problem} names the file (absolute), C{section} and C{key}, its
        message contains every fragment, and C{str()} shows all of that.
        """
        file = str(path.absolute())
        self.assertEqual((problem.file, problem.section, problem.key),
                         (file, section, key))
        where = file
        if section is not None:
            where += f": [{section}]"
        if key is not None:
            where += f" {key}"
        self.assertEqual(str(problem), f"{where}: {problem.message}")
        for fragment in fragments:
            self.assertIn(fragment, problem.message)

    def assert_only_problem(self, ini: str, section: str | None, key: str | None,
                            *fragments: str, passwd: str | None = None
                            ) -> ConfigProblem:
        """
        Loading C{ini} fails with exactly one problem, at C{section}/C{key}.
        """
        path, problems = self.problems_of(ini, passwd)
        self.assertEqual(len(problems), 1, [str(p) for p in problems])
        self.assert_problem(path, problems[0], section, key, *fragments)
        return problems[0]

    def where(self, problems: list[ConfigProblem]) -> list[tuple[str | None, str | None]]:
        return [(p.section, p.key) for p in problems]


class NormalizeDomainTests(SynchronousTestCase):
    """
    L{normalize_domain}: one ASCII, lower-case form per domain.
    """

    def test_idna_and_punycode_are_equal(self) -> None:
        """
        An internationalised domain and its punycode form normalise to the
        same lower-case ASCII name.
        """
        self.assertEqual(normalize_domain("Bücher.Example"), "xn--bcher-kva.example")
        self.assertEqual(normalize_domain("xn--bcher-kva.example"), "xn--bcher-kva.example")
        self.assertEqual(normalize_domain("XN--BCHER-KVA.EXAMPLE"), "xn--bcher-kva.example")

    def test_case_whitespace_and_trailing_dot(self) -> None:
        """
        Letter case, surrounding white space and one trailing dot (the
        absolute form) do not make a different domain.
        """
        self.assertEqual(normalize_domain("  Example.TEST. "), "example.test")

    def test_invalid_names(self) -> None:
        """
        Empty names, empty labels, spaces, underscores, leading hyphens and
        labels longer than 63 octets are not host names.
        """
        for bad in ["", " ", ".", "a..b", "exa mple.test", "bad_host.example",
                    "-bad.example", "a" * 64 + ".example", "bad host!"]:
            self.assertRaises(AddressError, normalize_domain, bad)

    def test_error_is_a_value_error(self) -> None:
        """
        L{AddressError} is a L{ValueError}, so validators can treat it as one.
        """
        self.assertTrue(issubclass(AddressError, ValueError))


class AddressTests(SynchronousTestCase):
    """
    L{split_address} and L{address_key}.
    """

    def test_split_keeps_local_part(self) -> None:
        """
        The local part is returned as typed; the domain is normalised.
        """
        self.assertEqual(split_address("Jane.Doe@Bücher.Example"),
                         ("Jane.Doe", "xn--bcher-kva.example"))

    def test_split_rejects_non_addresses(self) -> None:
        """
        No C{@}, an empty local part, an empty or invalid domain, spaces or
        control characters in the local part, and over-long input are
        rejected.
        """
        for bad in ["jane", "@example.test", "jane@", "jane@bad_host",
                    "ja ne@example.test", "ja\x00ne@example.test",
                    "ja\x7fne@example.test", "j" * 320 + "@example.test"]:
            self.assertRaises(AddressError, split_address, bad)

    def test_key_folds_local_part(self) -> None:
        """
        By default two addresses that differ only in letter case or in the
        IDNA form of the domain have the same key.
        """
        self.assertEqual(address_key("Jane@Bücher.Example"), "jane@xn--bcher-kva.example")
        self.assertEqual(address_key("JANE@xn--bcher-kva.example"),
                         address_key("jane@bücher.example"))

    def test_key_case_sensitive_local(self) -> None:
        """
        With C{case_sensitive_local} the local part keeps its case while the
        domain is still folded.
        """
        self.assertEqual(address_key("Jane@EXAMPLE.test", case_sensitive_local=True),
                         "Jane@example.test")
        self.assertNotEqual(address_key("Jane@example.test", case_sensitive_local=True),
                            address_key("jane@example.test", case_sensitive_local=True))


class LoadValidTests(_ConfigTestCase):
    """
    L{load} of valid files.
    """

    def test_minimal(self) -> None:
        """
        The minimal file gives the model it describes.
        """
        path = self.write()
        model = load(path)
        self.assertIsInstance(model, Model)
        directory = path.parent.absolute()
        self.assertEqual(model.source, directory / "sd.ini")
        self.assertEqual(model.public_hostname, "mail.example.test")
        self.assertEqual(model.domains, ("example.test",))
        self.assertEqual(model.https.port, 8443)
        self.assertIsNone(model.https.interface)
        self.assertIsNone(model.https.backlog)
        self.assertEqual(model.https.private_key, directory / "tls" / "server.key")
        self.assertEqual(model.https.certificate, directory / "tls" / "server.crt")
        self.assertIsNone(model.http)
        self.assertIsNone(model.dns)
        self.assertEqual(model.ttl_hours, 1)
        self.assertEqual(model.auth.backend, "passwd")
        self.assertEqual(model.auth.passwd_file, directory / "users.passwd")
        self.assertFalse(model.auth.case_sensitive_local)
        self.assertEqual(model.catalogue.public_hostname, "mail.example.test")
        self.assertEqual(model.catalogue.services, (
            SocketService("imap", "mail.example.test", 993, Security.SSL),
            SocketService("pop3", "mail.example.test", 110, Security.STARTTLS),
            SocketService("smtp", "mail.example.test", 587, Security.STARTTLS),
        ))
        self.assertEqual(dict(model.catalogue.urls), {
            "ews": "https://mail.example.test/EWS/Exchange.asmx",
            "webclient": "https://mail.example.test/webmail/",
        })
        self.assertEqual(list(model.users), ["demo@example.test"])
        user = model.users["demo@example.test"]
        self.assertEqual(user.address, "demo@example.test")
        self.assertEqual(user.display_name, "Demo User")
        self.assertEqual(user.password_hash, DEMO_HASH.encode())

    def test_optional_server_keys(self) -> None:
        """
        C{http}, C{dns} (IPv4 or bracketed IPv6), C{ttl} and the HTTPS
        endpoint's C{interface} and C{backlog} are parsed.
        """
        ini = edit("ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt\nttl = 1",
                   "ssl:443:privateKey=k.pem:interface=2001\\:DB8\\:\\:1:backlog=50\n"
                   "http = tcp:8080:interface=127.0.0.1\n"
                   "dns = [::1]:8053\n"
                   "ttl = 0") + "[hosts]\nmail.example.test = 192.0.2.10\n"
        model = load(self.write(ini))
        self.assertEqual(model.https.port, 443)
        self.assertEqual(model.https.interface, "2001:db8::1")
        self.assertEqual(model.https.backlog, 50)
        self.assertEqual(model.https.certificate, model.https.private_key)
        self.assertEqual(model.http, TCPListener(8080, "127.0.0.1", None))
        self.assertEqual((model.dns.listen.host, model.dns.listen.port), ("::1", 8053))
        self.assertEqual(model.ttl_hours, 0)
        model = load(self.write(edit("ttl = 1", "dns = 127.0.0.1:53")
                                + "[hosts]\nmail.example.test = 192.0.2.10\n"))
        self.assertEqual((model.dns.listen.host, model.dns.listen.port), ("127.0.0.1", 53))

    def test_listeners_behind_haproxy(self) -> None:
        """
        Twisted's C{haproxy:} prefix in front of C{https} and C{http} sets
        C{proxy_protocol}; everything after it is parsed as without it.
        Without the prefix, C{proxy_protocol} is off.
        """
        model = load(self.write())
        self.assertFalse(model.https.proxy_protocol)
        ini = edit("https = ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt",
                   "https = haproxy:ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt"
                   ":interface=\\:\\::backlog=50\n"
                   "http = haproxy:tcp:8080:interface=127.0.0.1")
        model = load(self.write(ini))
        directory = model.source.parent
        self.assertTrue(model.https.proxy_protocol)
        self.assertEqual((model.https.port, model.https.interface, model.https.backlog),
                         (8443, "::", 50))
        self.assertEqual(model.https.private_key, directory / "tls" / "server.key")
        self.assertEqual(model.https.certificate, directory / "tls" / "server.crt")
        self.assertEqual(model.http, TCPListener(8080, "127.0.0.1", None, proxy_protocol=True))
        # One listener behind HAProxy, the other not.
        model = load(self.write(edit("ttl = 1", "ttl = 1\nhttp = haproxy:tcp:8080")))
        self.assertFalse(model.https.proxy_protocol)
        self.assertTrue(model.http.proxy_protocol)

    def test_proxies(self) -> None:
        """
        C{proxies} lists the addresses and networks besides loopback that
        may send PROXY headers, normalised; none by default; anything else
        is an error naming the key.
        """
        self.assertEqual(load(self.write()).proxies.texts, ())
        model = load(self.write(edit("ttl = 1", "ttl = 1\nproxies = 10.0.0.5, 2001:db8::/64")))
        self.assertEqual(model.proxies.texts, ("10.0.0.5/32", "2001:db8::/64"))
        error = self.assertRaises(ConfigError, load,
                                  self.write(edit("ttl = 1", "ttl = 1\nproxies = haproxy.lan")))
        self.assertIn("proxies", str(error))
        self.assertIn("'haproxy.lan' is not an address or network", str(error))

    def test_defaults_when_keys_absent(self) -> None:
        """
        Without C{ttl} the TTL is one hour; without C{backend} the backend
        is C{passwd}; a service section without C{host} uses the public
        host name and without C{security} uses implicit TLS.
        """
        ini = edit("ttl = 1\n", "", edit("backend = passwd\n", "", CORE_INI))
        model = load(self.write(ini + "[smtp]\n"))
        self.assertEqual(model.ttl_hours, 1)
        self.assertEqual(model.auth.backend, "passwd")
        self.assertEqual(model.catalogue.services, (
            SocketService("smtp", "mail.example.test", 465, Security.SSL),))
        self.assertEqual(dict(model.catalogue.urls), {})

    def test_default_ports(self) -> None:
        """
        A service without C{port} gets the standard port for its security:
        IMAP 993/143, POP3 995/110, SMTP 465/587, XMPP 5223/5222,
        SIP 5061/5060 (SIP has no STARTTLS).
        """
        expected = {
            "ssl": {"imap": 993, "pop3": 995, "smtp": 465, "xmpp": 5223, "sip": 5061},
            "starttls": {"imap": 143, "pop3": 110, "smtp": 587, "xmpp": 5222},
            "none": {"imap": 143, "pop3": 110, "smtp": 587, "xmpp": 5222, "sip": 5060},
        }
        for security, ports in expected.items():
            ini = CORE_INI + "".join(f"[{name}]\nsecurity = {security.upper()}\n"
                                     for name in ports)
            model = load(self.write(ini))
            self.assertEqual(
                {s.name: (s.port, s.security) for s in model.catalogue.services},
                {name: (port, Security(security)) for name, port in ports.items()},
                security)

    def test_explicit_port_wins(self) -> None:
        """
        An explicit port is used whatever the security.
        """
        model = load(self.write(edit("[imap]\n", "[imap]\nport = 10143\n")))
        self.assertEqual(model.catalogue.service("imap").port, 10143)

    def test_hosts_normalised(self) -> None:
        """
        Host names are IDNA-normalised and lower-cased; IP addresses are
        accepted and written in their canonical form.
        """
        ini = edit("public_hostname = mail.example.test",
                   "public_hostname = Mail.Bücher.Example.")
        ini = edit("[imap]\nhost = mail.example.test", "[imap]\nhost = 192.0.2.7", ini)
        ini = edit("[pop3]\nhost = mail.example.test", "[pop3]\nhost = 2001:DB8::7", ini)
        ini = edit("[smtp]\nhost = mail.example.test", "[smtp]\nhost = SMTP.Example.TEST", ini)
        model = load(self.write(ini))
        self.assertEqual(model.public_hostname, "mail.xn--bcher-kva.example")
        self.assertEqual([s.host for s in model.catalogue.services],
                         ["192.0.2.7", "2001:db8::7", "smtp.example.test"])

    def test_domains_normalised_and_deduplicated(self) -> None:
        """
        Served domains are IDNA-normalised and lower-cased; a domain given
        twice, in any form, is served once, in the order first given.
        """
        ini = edit("domains = example.test",
                   "domains = Bücher.Example, EXAMPLE.test., xn--bcher-kva.example,")
        model = load(self.write(ini))
        self.assertEqual(model.domains, ("xn--bcher-kva.example", "example.test"))
        self.assertTrue(model.serves("xn--bcher-kva.example"))
        self.assertFalse(model.serves("example.org"))

    def test_urls(self) -> None:
        """
        Absolute https URLs are kept with a normalised host; a bare path is
        taken on the public host name; an absent key is not offered.
        """
        ini = edit("webclient = https://mail.example.test/webmail/",
                   "webclient = /webmail/\n"
                   "caldav = HTTPS://DAV.Bücher.Example:8443/cal?x=1\n"
                   "carddav = https://[2001:db8::1]")
        model = load(self.write(ini))
        self.assertEqual(dict(model.catalogue.urls), {
            "ews": "https://mail.example.test/EWS/Exchange.asmx",
            "webclient": "https://mail.example.test/webmail/",
            "caldav": "https://dav.xn--bcher-kva.example:8443/cal?x=1",
            "carddav": "https://[2001:db8::1]/",
        })
        self.assertNotIn("activesync", model.catalogue.urls)

    def test_bare_path_uses_normalised_public_hostname(self) -> None:
        """
        A bare URL path is resolved against the normalised public host name.
        """
        ini = edit("public_hostname = mail.example.test",
                   "public_hostname = MAIL.Bücher.example")
        ini = edit("ews = https://mail.example.test/EWS/Exchange.asmx",
                   "ews = /EWS/Exchange.asmx", ini)
        model = load(self.write(ini))
        self.assertEqual(model.catalogue.urls["ews"],
                         "https://mail.xn--bcher-kva.example/EWS/Exchange.asmx")

    def test_relative_paths_against_file_directory(self) -> None:
        """
        Relative paths in the file are resolved against the directory of
        the file, not the working directory, and come out absolute.
        """
        path = self.write()
        directory = path.parent.absolute()
        self.addCleanup(os.chdir, os.getcwd())
        elsewhere = Path(self.mktemp()).absolute()
        elsewhere.mkdir()
        os.chdir(elsewhere)
        model = load(directory / "sd.ini")
        self.assertEqual(model.auth.passwd_file, directory / "users.passwd")
        self.assertEqual(model.https.private_key, directory / "tls" / "server.key")
        self.assertEqual(model.https.certificate, directory / "tls" / "server.crt")
        self.assertEqual(len(model.users), 1)

        # Given as a relative path, from the directory's parent.
        os.chdir(directory.parent)
        model = load(Path(directory.name) / "sd.ini")
        os.chdir(elsewhere)
        for p in (model.source, model.auth.passwd_file, model.https.private_key,
                  model.https.certificate):
            self.assertTrue(p.is_absolute(), p)
        self.assertEqual(model.auth.passwd_file, directory / "users.passwd")
        self.assertEqual(model.https.private_key, directory / "tls" / "server.key")
        self.assertTrue(model.auth.passwd_file.exists())

    def test_absolute_passwd_path(self) -> None:
        """
        An absolute C{passwd_file} is used as it is.
        """
        other = write_config(self.mktemp(),
                             passwd=passwd_line("other@example.test", name="Other"))
        passwd = other.parent.absolute() / "users.passwd"
        model = load(self.write(edit("passwd_file = users.passwd",
                                     f"passwd_file = {passwd}")))
        self.assertEqual(model.auth.passwd_file, passwd)
        self.assertEqual(list(model.users), ["other@example.test"])

    def test_certificate_and_key_present(self) -> None:
        """
        A configuration whose certificate and key both exist is valid.
        """
        path = self.write()
        (path.parent / "tls").mkdir()
        (path.parent / "tls" / "server.key").write_text("key")
        (path.parent / "tls" / "server.crt").write_text("cert")
        model = load(path)
        self.assertTrue(model.https.private_key.exists())

    def test_users_and_display_names(self) -> None:
        """
        Users are keyed by their folded address, keep the address as typed,
        and take the 5th passwd field as display name (empty when absent);
        comments and blank lines are skipped.
        """
        passwd = ("# a comment\n\n"
                  "Jane.Doe@Bücher.Example:" + DEMO_HASH
                  + ":1000:1000:Jane Doé:/home/j:/bin/sh\r\n"
                  "   \n"
                  "bob@example.test:" + DEMO_HASH + "\n"
                  "carol@example.test:" + DEMO_HASH + ":::\n")
        model = load(self.write(passwd=passwd))
        self.assertEqual(sorted(model.users), ["bob@example.test", "carol@example.test",
                                               "jane.doe@xn--bcher-kva.example"])
        jane = model.users["jane.doe@xn--bcher-kva.example"]
        self.assertEqual(jane.address, "Jane.Doe@Bücher.Example")
        self.assertEqual(jane.display_name, "Jane Doé")
        self.assertEqual(model.users["bob@example.test"].display_name, "")
        self.assertEqual(model.users["carol@example.test"].display_name, "")

    def test_case_sensitive_local(self) -> None:
        """
        With C{case_sensitive_local = yes}, addresses that differ only in the
        case of the local part are different users, keyed as typed.
        """
        ini = edit("passwd_file = users.passwd",
                   "passwd_file = users.passwd\ncase_sensitive_local = yes")
        passwd = passwd_line("Jane@example.test") + passwd_line("jane@EXAMPLE.test.")
        model = load(self.write(ini, passwd))
        self.assertTrue(model.auth.case_sensitive_local)
        self.assertEqual(sorted(model.users), ["Jane@example.test", "jane@example.test"])

    def test_dovecot_prefixes(self) -> None:
        """
        Dovecot's C{{BLF-CRYPT}} and C{{ARGON2ID}} prefixes are accepted and
        removed, leaving a hash bcrypt verifies.
        """
        passwd = (passwd_line("a@example.test", "{BLF-CRYPT}" + DEMO_HASH)
                  + passwd_line("b@example.test", "{ARGON2ID}" + ARGON2_HASH)
                  + passwd_line("c@example.test", ARGON2_HASH))
        model = load(self.write(passwd=passwd))
        hashed = model.users["a@example.test"].password_hash
        self.assertEqual(hashed, DEMO_HASH.encode())
        self.assertTrue(bcrypt.checkpw(DEMO_PASSWORD.encode(), hashed))
        self.assertEqual(model.users["b@example.test"].password_hash, ARGON2_HASH.encode())
        self.assertEqual(model.users["c@example.test"].password_hash, ARGON2_HASH.encode())

    def test_bcrypt_variants(self) -> None:
        """
        bcrypt hashes in the C{$2a$}, C{$2b$} and C{$2y$} variants are
        accepted.
        """
        body = DEMO_HASH[4:]
        passwd = "".join(passwd_line(f"{v}@example.test", f"$2{v}${body}") for v in "aby")
        model = load(self.write(passwd=passwd))
        self.assertEqual(len(model.users), 3)

    def test_empty_passwd_file(self) -> None:
        """
        A password file with no entries gives a model with no users.
        """
        model = load(self.write(passwd=""))
        self.assertEqual(dict(model.users), {})

    def test_comments_and_bom(self) -> None:
        """
        A UTF-8 byte order mark and inline C{;}/C{#} comments after white
        space are allowed.
        """
        ini = edit("ttl = 1", "ttl = 2 ; two hours", MINIMAL_INI)
        ini = edit("security = starttls\n\n[smtp]",
                   "security = starttls # STARTTLS\n\n[smtp]", ini)
        path = self.write(ini)
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        model = load(path)
        self.assertEqual(model.ttl_hours, 2)
        self.assertEqual(model.catalogue.service("pop3").security, Security.STARTTLS)

    def test_largest_file(self) -> None:
        """
        A file of exactly 1 MiB is not too large.
        """
        path = self.write()
        size = len(path.read_bytes())
        path.write_bytes(path.read_bytes() + b"#" * (MAX_CONFIG_BYTES - size - 1) + b"\n")
        self.assertEqual(path.stat().st_size, MAX_CONFIG_BYTES)
        self.assertEqual(load(path).public_hostname, "mail.example.test")

    def test_model_is_immutable(self) -> None:
        """
        The model and its user table cannot be changed in place.
        """
        model = load(self.write())
        with self.assertRaises(AttributeError):
            model.ttl_hours = 5  # type: ignore[misc]
        with self.assertRaises(TypeError):
            model.users["x@example.test"] = model.users["demo@example.test"]  # type: ignore
        with self.assertRaises(TypeError):
            model.catalogue.urls["ews"] = "https://evil.example/"  # type: ignore[index]


class LoadFileErrorTests(_ConfigTestCase):
    """
    Files that cannot be read or parsed as INI.
    """

    def test_missing_file(self) -> None:
        """
        A missing file is reported against the file itself.
        """
        path = Path(self.mktemp())
        [problem] = self.problems(path)
        self.assert_problem(path, problem, None, None, "cannot read")

    def test_zero_byte_file(self) -> None:
        """
        An empty file lacks the [server] section.
        """
        path = self.write("")
        [problem] = self.problems(path)
        self.assert_problem(path, problem, "server", None, "missing")

    def test_truncated_file(self) -> None:
        """
        A half-written file reports each required key it lacks.
        """
        ini = MINIMAL_INI[: MINIMAL_INI.index("domains")]
        path, problems = self.problems_of(ini)
        self.assertEqual(self.where(problems), [("server", "domains"),
                                                ("server", "https"),
                                                ("auth", "passwd_file")])
        for problem in problems:
            self.assert_problem(path, problem, problem.section, problem.key, "required")

    def test_oversized_file(self) -> None:
        """
        A file over 1 MiB is refused without being parsed.
        """
        path = self.write()
        size = len(path.read_bytes())
        path.write_bytes(path.read_bytes() + b"#" * (MAX_CONFIG_BYTES - size) + b"\n")
        self.assertEqual(path.stat().st_size, MAX_CONFIG_BYTES + 1)
        [problem] = self.problems(path)
        self.assert_problem(path, problem, None, None, f"larger than {MAX_CONFIG_BYTES}")

    def test_not_utf8(self) -> None:
        """
        A file that is not UTF-8 is refused, naming the offending byte.
        """
        path = self.write()
        raw = path.read_bytes()
        offset = raw.index(b"mail.example.test")
        path.write_bytes(raw[:offset] + b"m\xe4il" + raw[offset + 4:])
        [problem] = self.problems(path)
        self.assert_problem(path, problem, None, None, "UTF-8", f"byte {offset + 1}")

    def test_syntax_error_names_line(self) -> None:
        """
        A line that is neither a section, a key nor a comment is reported
        with its line number.
        """
        ini = edit("ttl = 1", "ttl 1")
        line = ini.splitlines().index("ttl 1") + 1
        path, problems = self.problems_of(ini)
        self.assertTrue(problems)
        self.assert_problem(path, problems[0], None, None)
        self.assertRegex(problems[0].message, rf"\bline\W+{line}\b")

    def test_text_before_first_section(self) -> None:
        """
        Text before the first section header is reported with its line.
        """
        path, problems = self.problems_of("garbage\n" + MINIMAL_INI)
        self.assertEqual(len(problems), 1)
        self.assert_problem(path, problems[0], None, None)
        self.assertRegex(problems[0].message, r"\bline\W+1\b")

    def test_duplicate_key(self) -> None:
        """
        A key given twice in one section is reported against that section
        and key.
        """
        ini = edit("ttl = 1", "ttl = 1\nttl = 2")
        self.assert_only_problem(ini, "server", "ttl")

    def test_duplicate_section(self) -> None:
        """
        A section given twice is reported against that section.
        """
        ini = MINIMAL_INI + "\n[imap]\nport = 1993\n"
        self.assert_only_problem(ini, "imap", None)


class LoadErrorTests(_ConfigTestCase):
    """
    Each validation of L{load} names the file, section and key at fault.
    """

    def test_unknown_section(self) -> None:
        """
        A section the loader does not know is reported by name.
        """
        self.assert_only_problem(MINIMAL_INI + "[imaps]\nport = 993\n",
                                 "imaps", None, "unknown section")

    def test_unknown_keys(self) -> None:
        """
        Unknown keys are reported in every section, and keys are case
        sensitive.
        """
        ini = edit("ttl = 1", "ttl = 1\nTTL = 2")
        ini = edit("backend = passwd", "backend = passwd\npassword_file = x", ini)
        ini = edit("[imap]\n", "[imap]\nhostname = x\n", ini)
        ini = edit("[urls]\n", "[urls]\nowa = https://mail.example.test/owa\n", ini)
        path, problems = self.problems_of(ini)
        self.assertEqual(self.where(problems), [("server", "TTL"),
                                                ("auth", "password_file"),
                                                ("imap", "hostname"),
                                                ("urls", "owa")])
        for problem in problems:
            self.assert_problem(path, problem, problem.section, problem.key, "unknown key")

    def test_missing_server(self) -> None:
        """
        A file without [server] says so.
        """
        ini = MINIMAL_INI[MINIMAL_INI.index("[auth]"):]
        self.assert_only_problem(ini, "server", None, "missing")

    def test_missing_required_keys(self) -> None:
        """
        C{public_hostname}, C{domains}, C{https} and (for the passwd
        backend) C{passwd_file} are required; an empty value counts as
        missing.
        """
        for line, section, key in [
            ("public_hostname = mail.example.test\n", "server", "public_hostname"),
            ("domains = example.test\n", "server", "domains"),
            ("https = ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt\n",
             "server", "https"),
            ("passwd_file = users.passwd\n", "auth", "passwd_file"),
        ]:
            self.assert_only_problem(edit(line, ""), section, key, "required")
            self.assert_only_problem(edit(line, f"{key} =  \n"), section, key, "required")

    def test_bad_ports(self) -> None:
        """
        Ports outside 1-65535 and non-numbers are refused, in service
        sections and endpoints alike.
        """
        for port in ["0", "70000", "abc", "-1", "1.5"]:
            self.assert_only_problem(edit("port = 587", f"port = {port}"),
                                     "smtp", "port", repr(port), "port")
            self.assert_only_problem(edit("ssl:8443:", f"ssl:{port}:"),
                                     "server", "https", repr(port))
            self.assert_only_problem(edit("ttl = 1", f"ttl = 1\nhttp = tcp:{port}"),
                                     "server", "http", repr(port))
            self.assert_only_problem(edit("ttl = 1", f"ttl = 1\ndns = 127.0.0.1:{port}"),
                                     "server", "dns", repr(port))

    def test_bad_security(self) -> None:
        """
        C{security} must be ssl, starttls or none.
        """
        for value in ["tls", "SSL/TLS", "yes"]:
            self.assert_only_problem(edit("security = starttls\n\n[smtp]",
                                          f"security = {value}\n\n[smtp]"),
                                     "pop3", "security", repr(value), "ssl, starttls, none")

    def test_bad_host_names(self) -> None:
        """
        Host names that are not valid DNS names are refused in
        C{public_hostname}, C{domains} and service C{host}.
        """
        for bad in ["bad_host.example", "-bad.example", "a..b", "exa mple.test"]:
            self.assert_only_problem(edit("public_hostname = mail.example.test",
                                          f"public_hostname = {bad}"),
                                     "server", "public_hostname", repr(bad))
            self.assert_only_problem(edit("domains = example.test",
                                          f"domains = example.test, {bad}"),
                                     "server", "domains", repr(bad))
            self.assert_only_problem(edit("[imap]\nhost = mail.example.test",
                                          f"[imap]\nhost = {bad}"),
                                     "imap", "host", repr(bad))

    def test_empty_domain_list(self) -> None:
        """
        A domain list of only commas names no domain.
        """
        self.assert_only_problem(edit("domains = example.test", "domains = , ,"),
                                 "server", "domains", "no domain")

    def test_https_endpoint_shape(self) -> None:
        """
        C{https} must be an C{ssl:PORT} endpoint with keyword parameters.
        """
        for value in ["tcp:8443:privateKey=k", "ssl:privateKey=k", "ssl",
                      "ssl:8443:443:privateKey=k", "ssl:8443:privateKey=k:extra",
                      "ssl:8443:privateKey=k:privateKey=l", "privateKey=k:certKey=c"]:
            self.assert_only_problem(
                edit("ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt", value),
                "server", "https")

    def test_https_unknown_parameter(self) -> None:
        """
        Parameters other than privateKey, certKey, interface and backlog are
        refused by name.
        """
        self.assert_only_problem(edit("certKey=tls/server.crt",
                                      "certKey=tls/server.crt:sslmethod=TLSv1_METHOD"),
                                 "server", "https", "sslmethod")

    def test_https_missing_private_key(self) -> None:
        """
        C{privateKey=} is required, even when C{certKey=} is given.
        """
        self.assert_only_problem(edit("privateKey=tls/server.key:", ""),
                                 "server", "https", "privateKey")

    def test_https_only_one_of_certificate_and_key(self) -> None:
        """
        When only one of the certificate and key files exists, the missing
        one is named (a development certificate is made only when both are
        missing).
        """
        for present, missing in [("server.key", "server.crt"),
                                 ("server.crt", "server.key")]:
            path = self.write()
            (path.parent / "tls").mkdir()
            (path.parent / "tls" / present).write_text("pem")
            [problem] = self.problems(path)
            self.assert_problem(path, problem, "server", "https",
                                str(path.parent.absolute() / "tls" / missing), "missing")

    def test_https_unreadable_key(self) -> None:
        """
        A key file that exists but cannot be read is refused.
        """
        if os.geteuid() == 0:
            raise SkipTest("root reads every file")
        path = self.write()
        (path.parent / "tls").mkdir()
        (path.parent / "tls" / "server.crt").write_text("pem")
        key = path.parent / "tls" / "server.key"
        key.write_text("pem")
        key.chmod(0)
        [problem] = self.problems(path)
        self.assert_problem(path, problem, "server", "https", "not readable")

    def test_https_bad_interface_and_backlog(self) -> None:
        """
        The HTTPS C{interface} must be an IP address, C{backlog} a whole
        number.
        """
        self.assert_only_problem(edit("certKey=tls/server.crt",
                                      "certKey=tls/server.crt:interface=localhost"),
                                 "server", "https", "'localhost'", "IP address")
        self.assert_only_problem(edit("certKey=tls/server.crt",
                                      "certKey=tls/server.crt:backlog=many"),
                                 "server", "https", "'many'")

    def test_bad_http_endpoint(self) -> None:
        """
        C{http} must be a C{tcp:PORT} endpoint with only interface and
        backlog parameters.
        """
        for value in ["ssl:8080", "tcp", "tcp:8080:8081", "tcp:8080:foo=bar",
                      "tcp:8080:interface=localhost", "interface=127.0.0.1"]:
            self.assert_only_problem(edit("ttl = 1", f"ttl = 1\nhttp = {value}"),
                                     "server", "http")

    def test_bad_haproxy_prefix(self) -> None:
        """
        C{haproxy:} must be followed by the listener's own description, once
        and in lower case; the message shows both forms.  Errors after the
        prefix are the same as without it.
        """
        https = "ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt"
        for value in ["haproxy", "haproxy:", f"haproxy:haproxy:{https}", f"HAProxy:{https}",
                      "haproxy:tcp:8443", f"ssl:8443:haproxy:{https[9:]}", "proxy:" + https]:
            self.assert_only_problem(edit(https, value), "server", "https",
                                     "must look like ssl:PORT", "haproxy:ssl:")
        self.assert_only_problem(edit(https, f"{https}:haproxy"),
                                 "server", "https", "positional 'haproxy' after a keyword")
        self.assert_only_problem(edit(https, f"haproxy:{https}:proxy=v2"),
                                 "server", "https", "unknown parameter proxy")
        self.assert_only_problem(edit(https, f"haproxy:{https}:interface=localhost"),
                                 "server", "https", "'localhost'", "IP address")
        self.assert_only_problem(edit(https, "haproxy:ssl:8443:certKey=tls/server.crt"),
                                 "server", "https", "privateKey")
        for value in ["haproxy", "haproxy:", "haproxy:ssl:8080", "haproxy:haproxy:tcp:8080",
                      "haproxy:8080", "tcp:8080:haproxy"]:
            self.assert_only_problem(edit("ttl = 1", f"ttl = 1\nhttp = {value}"),
                                     "server", "http", "must look like tcp:PORT",
                                     "haproxy:tcp:")
        for value, fragment in [("haproxy:tcp:8080:foo=bar", "unknown parameter foo"),
                                ("haproxy:tcp:65536", "port number"),
                                ("haproxy:tcp:8080:backlog=-1", "negative")]:
            self.assert_only_problem(edit("ttl = 1", f"ttl = 1\nhttp = {value}"),
                                     "server", "http", fragment)

    def test_bad_dns_address(self) -> None:
        """
        C{dns} must be an IP address and a port.
        """
        for value in ["127.0.0.1", "localhost:53", "[::1]", "example.test:53", ":53"]:
            self.assert_only_problem(edit("ttl = 1", f"ttl = 1\ndns = {value}"),
                                     "server", "dns")

    def test_bad_ttl(self) -> None:
        """
        C{ttl} must be a whole number of hours, not negative.
        """
        for value, fragment in [("-1", "negative"), ("abc", "whole number"),
                                ("1.5", "whole number")]:
            self.assert_only_problem(edit("ttl = 1", f"ttl = {value}"),
                                     "server", "ttl", fragment)

    def test_unknown_backend(self) -> None:
        """
        A backend the loader does not know is refused by name.
        """
        self.assert_only_problem(edit("backend = passwd", "backend = kerberos"),
                                 "auth", "backend", "'kerberos'")

    def test_bad_boolean(self) -> None:
        """
        C{case_sensitive_local} must be a yes/no value.
        """
        self.assert_only_problem(edit("passwd_file = users.passwd",
                                      "passwd_file = users.passwd\n"
                                      "case_sensitive_local = maybe"),
                                 "auth", "case_sensitive_local", "'maybe'")

    def test_non_https_url(self) -> None:
        """
        A URL in [urls] must be https.
        """
        for value in ["http://mail.example.test/webmail/", "ftp://mail.example.test/",
                      "//mail.example.test/webmail/", "mail.example.test/webmail/"]:
            self.assert_only_problem(
                edit("webclient = https://mail.example.test/webmail/", f"webclient = {value}"),
                "urls", "webclient", "https")

    def test_bad_urls(self) -> None:
        """
        URLs without a host, with a bad host or port, or with spaces are
        refused.
        """
        for value in ["https:///webmail/", "https://bad_host.example/",
                      "https://mail.example.test:99999/", "https://mail.example.test/a b"]:
            self.assert_only_problem(
                edit("webclient = https://mail.example.test/webmail/", f"webclient = {value}"),
                "urls", "webclient")

    def test_bare_path_without_public_hostname(self) -> None:
        """
        A bare path cannot be resolved when the public host name is invalid;
        both problems are reported.
        """
        ini = edit("public_hostname = mail.example.test", "public_hostname = bad_host")
        ini = edit("webclient = https://mail.example.test/webmail/",
                   "webclient = /webmail/", ini)
        path, problems = self.problems_of(ini)
        self.assertEqual(self.where(problems), [("server", "public_hostname"),
                                                ("urls", "webclient")])
        self.assert_problem(path, problems[1], "urls", "webclient", "public_hostname")

    def test_missing_passwd_file(self) -> None:
        """
        A missing password file is reported against [auth] passwd_file.
        """
        path = self.write()
        (path.parent / "users.passwd").unlink()
        [problem] = self.problems(path)
        self.assert_problem(path, problem, "auth", "passwd_file",
                            str(path.parent.absolute() / "users.passwd"))

    def test_unreadable_passwd_file(self) -> None:
        """
        A password file that cannot be read (here: a directory) is reported
        against [auth] passwd_file.
        """
        path = self.write(edit("passwd_file = users.passwd", "passwd_file = tls"))
        (path.parent / "tls").mkdir()
        [problem] = self.problems(path)
        self.assert_problem(path, problem, "auth", "passwd_file", "cannot read")

    def test_unreadable_passwd_permissions(self) -> None:
        """
        A password file without read permission is reported against [auth]
        passwd_file.
        """
        if os.geteuid() == 0:
            raise SkipTest("root reads every file")
        path = self.write()
        (path.parent / "users.passwd").chmod(0)
        [problem] = self.problems(path)
        self.assert_problem(path, problem, "auth", "passwd_file", "cannot read")

    def test_passwd_bad_lines(self) -> None:
        """
        Every bad password-file line is reported with the file and line
        number: no hash, a bad address, an unsupported scheme, not UTF-8,
        a display name no XML document can carry.
        """
        passwd = ("# users\n"
                  "no-hash@example.test\n"
                  + passwd_line("not-an-address")
                  + passwd_line("jane@bad_host")
                  + passwd_line("md5@example.test", "$1$salt$hash")
                  + passwd_line("sha@example.test", "{SHA512-CRYPT}$6$salt$hash")
                  + passwd_line("plain@example.test", "secret")
                  + "caf\xe9@example.test:" + DEMO_HASH + "\n"
                  + "ctl@example.test:" + DEMO_HASH + ":::Bad\x01Name\n"
                  + passwd_line("ok@example.test"))
        path = self.write(passwd=passwd)
        raw = (path.parent / "users.passwd").read_bytes().replace("é".encode(), b"\xe9")
        (path.parent / "users.passwd").write_bytes(raw)
        problems = self.problems(path)
        passwd_path = path.parent.absolute() / "users.passwd"
        expected = [(2, "address:hash"), (3, "not-an-address"), (4, "jane@bad_host"),
                    (5, "unsupported password scheme"), (6, "unsupported password scheme"),
                    (7, "unsupported password scheme"), (8, "UTF-8"),
                    (9, "control characters in the display name")]
        self.assertEqual(len(problems), len(expected), [str(p) for p in problems])
        for problem, (line, fragment) in zip(problems, expected):
            self.assert_problem(path, problem, "auth", "passwd_file",
                                f"{passwd_path}:{line}: ", fragment)

    def test_passwd_incomplete_hashes(self) -> None:
        """
        A hash of a supported scheme that is cut short or malformed is a
        problem at its line, and the message never shows the hash: a file
        cut off inside its last hash, a bcrypt hash with a character outside
        its alphabet or an impossible cost, argon2id hashes without salt,
        with a tag cut to a length Base64 cannot have, or without
        parameters (issue 14, section 4).  Whole hashes of both schemes,
        with and without Dovecot prefixes, still load.
        """
        cut = [DEMO_HASH[:-1], DEMO_HASH[:30], DEMO_HASH[:-1] + "!",
               DEMO_HASH[:4] + "03" + DEMO_HASH[6:], "{BLF-CRYPT}" + DEMO_HASH[:59],
               ARGON2_HASH[:ARGON2_HASH.rindex("$")],
               ARGON2_HASH[:-1][:ARGON2_HASH.rindex("$") + 18],
               "$argon2id$v=19$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
               "{ARGON2ID}" + ARGON2_HASH[:-5]]
        passwd = ("".join(passwd_line(f"u{i}@example.test", hashed)
                          for i, hashed in enumerate(cut))
                  + passwd_line("whole@example.test", "{BLF-CRYPT}" + DEMO_HASH)
                  + passwd_line("argon@example.test", ARGON2_HASH))
        path = self.write(passwd=passwd)
        problems = self.problems(path)
        passwd_path = path.parent.absolute() / "users.passwd"
        self.assertEqual(len(problems), len(cut), [str(p) for p in problems])
        for line, (problem, hashed) in enumerate(zip(problems, cut), 1):
            scheme = "argon2id" if "argon2id" in hashed or "ARGON" in hashed else "bcrypt"
            self.assert_problem(path, problem, "auth", "passwd_file",
                                f"{passwd_path}:{line}: ", f"malformed {scheme} hash")
            self.assertNotIn(hashed.split("}")[-1][7:20], str(problem))
        model = load(self.write(passwd=passwd_line("whole@example.test",
                                                   "{BLF-CRYPT}" + DEMO_HASH)))
        self.assertEqual(list(model.users), ["whole@example.test"])

    def test_passwd_duplicates(self) -> None:
        """
        An address given twice, in any letter case or domain form, is a
        problem at its second line.
        """
        passwd = (passwd_line("jane@example.test")
                  + passwd_line("Jane@EXAMPLE.test")
                  + passwd_line("hans@bücher.example")
                  + passwd_line("HANS@xn--bcher-kva.example."))
        path = self.write(passwd=passwd)
        problems = self.problems(path)
        passwd_path = path.parent.absolute() / "users.passwd"
        self.assertEqual(len(problems), 2, [str(p) for p in problems])
        self.assert_problem(path, problems[0], "auth", "passwd_file",
                            f"{passwd_path}:2: ", "Jane@EXAMPLE.test", "twice")
        self.assert_problem(path, problems[1], "auth", "passwd_file",
                            f"{passwd_path}:4: ", "HANS@xn--bcher-kva.example.", "twice")

    def test_passwd_duplicates_case_sensitive(self) -> None:
        """
        With case-sensitive local parts, addresses differing only in the
        domain's case are still duplicates.
        """
        ini = edit("passwd_file = users.passwd",
                   "passwd_file = users.passwd\ncase_sensitive_local = yes")
        passwd = passwd_line("Jane@example.test") + passwd_line("Jane@Example.Test")
        self.assert_only_problem(ini, "auth", "passwd_file", ":2: ", "twice",
                                 passwd=passwd)

    def test_several_problems_together(self) -> None:
        """
        Every problem of a file is reported at once, in file order, not
        just the first.
        """
        ini = edit("ttl = 1", "ttl = -1")
        ini = edit("[imap]\n", "[imap]\nport = 0\n", ini)
        ini = edit("port = 587\nsecurity = starttls", "port = 587\nsecurity = tls", ini)
        ini = edit("ews = https://mail.example.test/EWS/Exchange.asmx",
                   "ews = http://mail.example.test/EWS/Exchange.asmx", ini)
        ini += "[imaps]\n"
        passwd = passwd_line("jane@bad_host")
        path, problems = self.problems_of(ini, passwd)
        self.assertEqual(self.where(problems), [
            ("imaps", None),
            ("server", "ttl"),
            ("imap", "port"),
            ("smtp", "security"),
            ("urls", "ews"),
            ("auth", "passwd_file"),
        ])
        for problem in problems:
            self.assert_problem(path, problem, problem.section, problem.key)


class _FakeRunner:
    """
    A C{run_in_thread} whose calls wait until the test runs them.
    """

    def __init__(self) -> None:
        self.calls: list[Callable[[], Any]] = []
        self.deferreds: list[Deferred[Any]] = []

    def __call__(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        self.calls.append(lambda: f(*args, **kwargs))
        d: Deferred[Any] = Deferred()
        self.deferreds.append(d)
        return d

    def run(self, index: int) -> None:
        """
        Run call C{index} now and fire its L{Deferred} with the outcome.
        """
        try:
            result = self.calls[index]()
        except BaseException as e:
            self.deferreds[index].errback(e)
        else:
            self.deferreds[index].callback(result)


class ConfigStoreTests(SynchronousTestCase):
    """
    L{ConfigStore}: reload, veto, failure handling and coalescing.
    """

    def setUp(self) -> None:
        self.path = write_config(self.mktemp())
        self.model = load(self.path)

    def rewrite(self, ini: str) -> None:
        self.path.write_text(ini, encoding="utf-8")

    def store(self, run_in_thread: Callable[..., Deferred[Any]] = run_synchronously
              ) -> ConfigStore:
        return ConfigStore(self.model, lambda: load(self.path), run_in_thread)

    def test_initial_state(self) -> None:
        """
        A new store serves the model it was given, at generation 1, with no
        error.
        """
        store = self.store()
        self.assertIs(store.current, self.model)
        self.assertEqual((store.generation, store.reloads, store.reload_failures,
                          store.last_error), (1, 0, 0, None))

    def test_subscribe_runs_now(self) -> None:
        """
        C{subscribe} prepares from the current model and commits the result
        once, immediately.
        """
        store = self.store()
        prepared: list[Model] = []
        committed: list[object] = []
        token = object()

        def prepare(model: Model) -> object:
            prepared.append(model)
            return token

        store.subscribe(prepare, committed.append)
        self.assertEqual(prepared, [self.model])
        self.assertEqual(committed, [token])

    def test_valid_reload(self) -> None:
        """
        A valid change comes into force: generation +1, the new model is
        current, and each subscriber commits the value it prepared from the
        new model.
        """
        store = self.store()
        committed: list[tuple[str, int]] = []
        store.subscribe(lambda m: ("a", m.ttl_hours), committed.append)
        store.subscribe(lambda m: ("b", m.ttl_hours), committed.append)
        self.rewrite(edit("ttl = 1", "ttl = 7"))
        d = store.reload()
        self.assertIs(self.successResultOf(d), True)
        self.assertEqual(store.generation, 2)
        self.assertEqual(store.reloads, 1)
        self.assertIsNot(store.current, self.model)
        self.assertEqual(store.current.ttl_hours, 7)
        self.assertIsNone(store.last_error)
        self.assertEqual(committed, [("a", 1), ("b", 1), ("a", 7), ("b", 7)])

    def test_broken_file_keeps_model(self) -> None:
        """
        A broken file leaves the model, the generation and the subscribers
        alone, counts a failure, and records an error naming file, section
        and key.
        """
        store = self.store()
        committed: list[object] = []
        store.subscribe(lambda m: m, committed.append)
        self.rewrite(edit("[imap]\n", "[imap]\nport = 0\n"))
        d = store.reload()
        self.assertIs(self.successResultOf(d), False)
        self.assertIs(store.current, self.model)
        self.assertEqual(store.generation, 1)
        self.assertEqual((store.reloads, store.reload_failures), (0, 1))
        self.assertIsNotNone(store.last_error)
        self.assertIn(f"{self.path.absolute()}: [imap] port: ", store.last_error)
        self.assertEqual(committed, [self.model])

    def test_recovery_after_failure(self) -> None:
        """
        After a failed reload, a reload of a fixed file succeeds and clears
        the error.
        """
        store = self.store()
        self.rewrite("")
        self.assertIs(self.successResultOf(store.reload()), False)
        self.assertIn(str(self.path.absolute()), store.last_error)
        self.rewrite(edit("ttl = 1", "ttl = 3"))
        self.assertIs(self.successResultOf(store.reload()), True)
        self.assertEqual(store.generation, 2)
        self.assertEqual(store.current.ttl_hours, 3)
        self.assertIsNone(store.last_error)
        self.assertEqual((store.reloads, store.reload_failures), (1, 1))

    def test_commit_failure_is_logged_not_fatal(self) -> None:
        """
        A subscriber whose commit raises is logged; the new model and the
        other subscribers' values still come into force together.
        """
        store = self.store()
        committed: list[object] = []
        calls = []

        def failing_commit(value: object) -> None:
            calls.append(value)
            if len(calls) > 1:
                raise RuntimeError("commit broke")

        store.subscribe(lambda model: model.ttl_hours, failing_commit)
        store.subscribe(lambda model: model.ttl_hours, committed.append)
        self.rewrite(edit("ttl = 1", "ttl = 5"))
        self.assertIs(self.successResultOf(store.reload()), True)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual((store.generation, store.current.ttl_hours), (2, 5))
        self.assertEqual(committed, [1, 5])

    def test_reload_refuses_redirect_loops_and_plain_http(self) -> None:
        """
        A reload whose redirects would loop or send clients to plain HTTP is
        refused and the served model stays as it was (SECURITY.md 3.2).
        """
        store = self.store()
        for section in ("[redirectAddr]\ndemo@example.test = demo@example.test\n",
                        "[redirectUrl]\ndemo@example.test = "
                        "http://other.example.test/autodiscover/autodiscover.xml\n"):
            self.rewrite(MINIMAL_INI + section)
            self.assertIs(self.successResultOf(store.reload()), False)
            self.assertIs(store.current, self.model)
            self.assertIn("demo@example.test", store.last_error)
        self.assertEqual(store.generation, 1)

    def test_subscriber_veto(self) -> None:
        """
        A subscriber whose prepare raises vetoes the reload: the model is
        not swapped and no subscriber commits, not even those whose prepare
        succeeded.
        """
        store = self.store()
        committed: list[object] = []
        store.subscribe(lambda m: ("a", m.ttl_hours), committed.append)

        def picky(model: Model) -> int:
            if model.ttl_hours != 1:
                raise ValueError("key does not match certificate")
            return model.ttl_hours

        store.subscribe(picky, committed.append)
        store.subscribe(lambda m: ("c", m.ttl_hours), committed.append)
        self.assertEqual(committed, [("a", 1), 1, ("c", 1)])
        self.rewrite(edit("ttl = 1", "ttl = 2"))
        self.assertIs(self.successResultOf(store.reload()), False)
        self.assertIs(store.current, self.model)
        self.assertEqual(store.generation, 1)
        self.assertEqual(store.reload_failures, 1)
        self.assertIn("ValueError", store.last_error)
        self.assertIn("key does not match certificate", store.last_error)
        self.assertEqual(committed, [("a", 1), 1, ("c", 1)])

    def test_reload_runs_in_thread(self) -> None:
        """
        Loading and preparing run through C{run_in_thread}; nothing changes
        until its result arrives.
        """
        runner = _FakeRunner()
        store = self.store(runner)
        prepared: list[int] = []
        store.subscribe(lambda m: prepared.append(m.ttl_hours), lambda v: None)
        self.rewrite(edit("ttl = 1", "ttl = 2"))
        d = store.reload()
        self.assertEqual(len(runner.calls), 1)
        self.assertNoResult(d)
        self.assertEqual(prepared, [1])
        self.assertIs(store.current, self.model)
        runner.run(0)
        self.assertEqual(prepared, [1, 2])
        self.assertIs(self.successResultOf(d), True)
        self.assertEqual(store.generation, 2)

    def test_single_reload_no_follow_up(self) -> None:
        """
        A reload with no other request while it runs runs once.
        """
        runner = _FakeRunner()
        store = self.store(runner)
        d = store.reload()
        runner.run(0)
        self.assertIs(self.successResultOf(d), True)
        self.assertEqual(len(runner.calls), 1)

    def test_coalescing(self) -> None:
        """
        Any number of reload requests while a reload runs are folded into
        one follow-up reload, which reads the file as it is then; each
        caller learns the outcome of the reload that covers its request.
        """
        runner = _FakeRunner()
        store = self.store(runner)
        first = store.reload()
        self.rewrite(edit("ttl = 1", "ttl = 2"))
        later = [store.reload() for _ in range(50)]
        self.assertEqual(len(runner.calls), 1)
        runner.run(0)
        self.assertEqual(store.generation, 2)
        self.assertIs(self.successResultOf(first), True)
        self.assertEqual(len(runner.calls), 2)
        self.rewrite(edit("ttl = 1", "ttl = 3"))
        outcomes: list[object] = []
        for d in later:
            d.addBoth(lambda result: (outcomes.append(result), result)[1])
        self.assertEqual(outcomes, [])
        runner.run(1)
        self.assertEqual(len(runner.calls), 2)
        self.assertEqual(store.generation, 3)
        self.assertEqual(store.reloads, 2)
        self.assertEqual(store.current.ttl_hours, 3)
        self.assertEqual(outcomes, [True] * 50)
        # The store is idle again: the next request starts a new reload.
        store.reload()
        self.assertEqual(len(runner.calls), 3)

    def test_coalescing_after_failure(self) -> None:
        """
        Requests made during a reload that fails still get their follow-up.
        """
        runner = _FakeRunner()
        store = self.store(runner)
        self.rewrite("")
        first = store.reload()
        second = store.reload()
        store.reload()
        runner.run(0)
        self.assertEqual(store.reload_failures, 1)
        self.assertIs(self.successResultOf(first), False)
        self.assertEqual(len(runner.calls), 2)
        self.rewrite(edit("ttl = 1", "ttl = 4"))
        runner.run(1)
        self.assertEqual(len(runner.calls), 2)
        self.assertIs(self.successResultOf(second), True)
        self.assertEqual((store.generation, store.current.ttl_hours), (2, 4))
        self.assertIsNone(store.last_error)

    def test_runner_failure(self) -> None:
        """
        A failure of the runner itself is recorded like a bad file.
        """
        store = self.store(lambda f: self.fail_deferred(OSError("pool gone")))
        self.assertIs(self.successResultOf(store.reload()), False)
        self.assertEqual((store.generation, store.reload_failures), (1, 1))
        self.assertIn("pool gone", store.last_error)

    def fail_deferred(self, error: Exception) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        d.errback(error)
        return d


class _FakeReactor:
    """
    Records C{callFromThread} calls instead of running them.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.calls.append((f, args, kwargs))


class ReloadOnSignalTests(SynchronousTestCase):
    """
    L{ReloadOnSignal} turns a signal into a reload scheduled on the reactor.
    """

    signum = signal.SIGUSR1

    def setUp(self) -> None:
        original = signal.getsignal(self.signum)
        self.addCleanup(signal.signal, self.signum, original)
        self.received: list[int] = []
        signal.signal(self.signum, self.previous_handler)
        self.reloads: list[None] = []
        self.reactor = _FakeReactor()
        self.service = ReloadOnSignal(self.reload, self.reactor, signum=self.signum)

    def previous_handler(self, signum: int, frame: object) -> None:
        self.received.append(signum)

    def reload(self) -> None:
        self.reloads.append(None)

    def test_signal_schedules_reload(self) -> None:
        """
        Once started, the signal makes the handler schedule the reload with
        C{callFromThread} and do nothing else.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.assertTrue(self.service.running)
        os.kill(os.getpid(), self.signum)
        self.assertEqual(self.reactor.calls, [(self.reload, (), {})])
        self.assertEqual(self.reloads, [])
        self.assertEqual(self.received, [])

    def test_every_signal_schedules(self) -> None:
        """
        Each signal schedules a reload; coalescing is the store's job.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        for _ in range(3):
            os.kill(os.getpid(), self.signum)
        self.assertEqual(len(self.reactor.calls), 3)

    def test_not_installed_before_start(self) -> None:
        """
        Constructing the service does not touch the signal handler.
        """
        self.assertEqual(signal.getsignal(self.signum), self.previous_handler)
        os.kill(os.getpid(), self.signum)
        self.assertEqual(self.received, [self.signum])
        self.assertEqual(self.reactor.calls, [])

    def test_stop_restores_previous_handler(self) -> None:
        """
        C{stopService} puts the previous handler back; later signals no
        longer schedule reloads.
        """
        self.service.startService()
        self.service.stopService()
        self.assertFalse(self.service.running)
        self.assertEqual(signal.getsignal(self.signum), self.previous_handler)
        os.kill(os.getpid(), self.signum)
        self.assertEqual(self.received, [self.signum])
        self.assertEqual(self.reactor.calls, [])

    def test_stop_restores_ignore_and_default(self) -> None:
        """
        A previous C{SIG_IGN} or C{SIG_DFL} disposition is restored as it
        was.
        """
        for disposition in (signal.SIG_IGN, signal.SIG_DFL):
            signal.signal(self.signum, disposition)
            service = ReloadOnSignal(self.reload, self.reactor, signum=self.signum)
            service.startService()
            self.assertNotEqual(signal.getsignal(self.signum), disposition)
            service.stopService()
            self.assertEqual(signal.getsignal(self.signum), disposition)

    def test_default_signal_is_sighup(self) -> None:
        """
        Without C{signum}, the service handles SIGHUP.
        """
        original = signal.getsignal(signal.SIGHUP)
        self.addCleanup(signal.signal, signal.SIGHUP, original)
        service = ReloadOnSignal(self.reload, self.reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertNotEqual(signal.getsignal(signal.SIGHUP), original)
        self.assertEqual(signal.getsignal(self.signum), self.previous_handler)
        os.kill(os.getpid(), signal.SIGHUP)
        self.assertEqual(self.reactor.calls, [(self.reload, (), {})])
