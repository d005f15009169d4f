"""
Tests for the C{[admin]} section (smartdiscover/config/admin.py): the web
console's listener, its accounts file and its sessions; and for
C{smartdiscover admin-passwd NAME}, which writes that file
(docs/configuration.md; docs/console.md).
"""

from __future__ import annotations

import io
import os
import stat
import sys
import textwrap
from pathlib import Path

import argon2
import bcrypt
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover import cli
from smartdiscover.auth.hashing import hash_password, verify_password
from smartdiscover.config import ConfigError, load
from smartdiscover.config.admin import (
    DEFAULT_PORT,
    LOOPBACK,
    MAX_ACCOUNTS_BYTES,
    admin_accounts_path,
    remove_account,
    set_account,
)
from smartdiscover.config.model import AdminSettings, Model, TCPListener
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, PROJECT_ROOT, Changes, build_ini, write_config

ARGON2_HASH = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
BROKEN_ARGON2 = ARGON2_HASH.rsplit("$", 1)[0] + "$tag"  # a tag too short
PASSWORD = "c0nsole-Pa55word"
HOSTS = {"mail.example.test": "192.0.2.10"}  # what [server] dns asks for


def cheap_hash_password(password: bytes, scheme: str = "bcrypt") -> bytes:
    """
    L{smartdiscover.auth.hashing.hash_password} at bcrypt's lowest cost.
    """
    return bcrypt.hashpw(password, bcrypt.gensalt(4))


class AdminSectionTests(SynchronousTestCase):
    """
    C{[admin]} as the loader reads it.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()

    def load(self, admin: dict[str, str | None] | None, accounts: str | bytes | None = None,
             changes: Changes | None = None) -> Model:
        all_changes: dict[str, object] = dict(changes or {})
        if admin is not None:
            all_changes["admin"] = {k: v for k, v in
                                    {"accounts": "admin.passwd", **admin}.items()
                                    if v is not None}
        path = write_config(self.directory, build_ini(all_changes))  # type: ignore[arg-type]
        if accounts is None:
            accounts = f"alice:{DEMO_HASH}\n"
        if isinstance(accounts, str):
            accounts = accounts.encode("utf-8")
        (self.directory / "admin.passwd").write_bytes(accounts)
        return load(path)

    def admin(self, admin: dict[str, str | None], accounts: str | bytes | None = None,
              changes: Changes | None = None) -> AdminSettings:
        settings = self.load(admin, accounts, changes).admin
        assert settings is not None
        return settings

    def problems(self, admin: dict[str, str | None] | None, accounts: str | bytes | None = None,
                 changes: Changes | None = None) -> list[tuple[str | None, str | None, str]]:
        error = self.assertRaises(ConfigError, self.load, admin, accounts, changes)
        return [(p.section, p.key, p.message) for p in error.problems]

    def one_problem(self, admin: dict[str, str | None], accounts: str | bytes | None = None,
                    changes: Changes | None = None) -> tuple[str | None, str]:
        """
        The key and message of the one problem C{admin} has.
        """
        found = self.problems(admin, accounts, changes)
        self.assertEqual(len(found), 1, found)
        self.assertEqual(found[0][0], "admin", found)
        return found[0][1], found[0][2]

    # -- what loads -------------------------------------------------------------

    def test_absent(self) -> None:
        """
        No section: no console.
        """
        self.assertIsNone(self.load(None).admin)

    def test_defaults(self) -> None:
        """
        The accounts file alone: loopback, port 8444, plain HTTP; sessions of
        15 minutes idle and 8 hours at most.
        """
        admin = self.admin({})
        self.assertEqual(admin.listen, TCPListener(DEFAULT_PORT, LOOPBACK, None))
        self.assertEqual((admin.listen.port, admin.listen.interface), (8444, "127.0.0.1"))
        self.assertFalse(admin.over_tls)
        self.assertEqual((admin.session_idle, admin.session_lifetime), (900.0, 28800.0))
        self.assertEqual(admin.accounts_file, self.directory / "admin.passwd")
        self.assertEqual(dict(admin.accounts), {"alice": DEMO_HASH.encode()})

    def test_listen(self) -> None:
        """
        A bare port or a tcp: description; without an interface, loopback,
        never every address.
        """
        cases = [
            ("9000", TCPListener(9000, "127.0.0.1", None)),
            ("tcp:9000", TCPListener(9000, "127.0.0.1", None)),
            ("tcp:9000:interface=", TCPListener(9000, "127.0.0.1", None)),
            ("tcp:9000:backlog=5", TCPListener(9000, "127.0.0.1", 5)),
            ("tcp:9000:interface=0.0.0.0", TCPListener(9000, "0.0.0.0", None)),
            ("tcp:9000:interface=192.0.2.1", TCPListener(9000, "192.0.2.1", None)),
            ("tcp:9000:interface=\\:\\:1", TCPListener(9000, "::1", None)),
        ]
        for value, expected in cases:
            self.assertEqual(self.admin({"listen": value}).listen, expected, value)

    def test_over_tls(self) -> None:
        """
        Plain HTTP on loopback only; TLS on any other address.
        """
        for interface, tls in (("127.0.0.1", False), ("127.0.0.2", False), ("::1", False),
                               ("0.0.0.0", True), ("::", True), ("192.0.2.1", True),
                               (None, True)):
            settings = AdminSettings(TCPListener(8444, interface, None), Path("x"))
            self.assertEqual(settings.over_tls, tls, interface)
        for value, tls in (("tcp:9000:interface=127.0.0.1", False),
                           ("tcp:9000:interface=\\:\\:1", False),
                           ("tcp:9000:interface=0.0.0.0", True),
                           ("tcp:9000:interface=192.0.2.1", True)):
            self.assertEqual(self.admin({"listen": value}).over_tls, tls, value)

    def test_sessions(self) -> None:
        admin = self.admin({"session_idle": "60", "session_lifetime": "60"})
        self.assertEqual((admin.session_idle, admin.session_lifetime), (60.0, 60.0))
        admin = self.admin({"session_idle": "0.5", "session_lifetime": "3600"})
        self.assertEqual((admin.session_idle, admin.session_lifetime), (0.5, 3600.0))

    def test_accounts_file(self) -> None:
        """
        Comments and blank lines are skipped; names are case-folded; bcrypt
        and argon2id hashes are taken; the path is relative to the
        configuration's directory.
        """
        admin = self.admin({"accounts": "./admin.passwd"}, (
            "# administrators\n"
            "\n"
            f"  Alice@Example.TEST:{DEMO_HASH}  \n"
            "   # indented comment\n"
            f"bob.smith_2-x:{ARGON2_HASH}\r\n"
        ))
        self.assertEqual(dict(admin.accounts), {"alice@example.test": DEMO_HASH.encode(),
                                                "bob.smith_2-x": ARGON2_HASH.encode()})
        self.assertEqual(admin.accounts_file, self.directory / "admin.passwd")

    def test_empty_accounts(self) -> None:
        """
        A file without accounts loads (the last administrator removed): no
        one can log in.
        """
        self.assertEqual(dict(self.admin({}, "# nobody yet\n").accounts), {})

    def test_hash_not_in_repr(self) -> None:
        self.assertNotIn(DEMO_HASH, repr(self.load({})))

    def test_documented_example(self) -> None:
        """
        The C{[admin]} example of docs/configuration.md loads as it is
        written.
        """
        text = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
        start = text.rindex("\n", 0, text.index("[admin]")) + 1
        section = textwrap.dedent(text[start:text.index("\n\n", start)]) + "\n"
        self.directory.mkdir(parents=True)
        (self.directory / "admin.passwd").write_text(f"root:{DEMO_HASH}\n")
        model = load(write_config(self.directory, build_ini() + "\n" + section))
        assert model.admin is not None
        self.assertEqual(model.admin.listen, TCPListener(8444, "127.0.0.1", None))
        self.assertEqual((model.admin.session_idle, model.admin.session_lifetime),
                         (900.0, 28800.0))
        self.assertEqual(list(model.admin.accounts), ["root"])

    # -- what is refused --------------------------------------------------------

    def test_refused_values(self) -> None:
        """
        Each bad value is named with its key; nothing else is reported.
        """
        cases: list[tuple[dict[str, str | None], str, str]] = [
            ({"listen": "ssl:8444"}, "listen", "must look like tcp:PORT"),
            ({"listen": "8444x"}, "listen", "must look like tcp:PORT"),
            ({"listen": "0"}, "listen", "not a port number"),
            ({"listen": "70000"}, "listen", "not a port number"),
            ({"listen": "tcp:8444:interface=localhost"}, "listen", "not an IP address"),
            ({"listen": "tcp:8444:colour=blue"}, "listen", "unknown parameter"),
            ({"listen": "haproxy:tcp:8444"}, "listen", "haproxy: is not for the console"),
            ({"listen": "haproxy:tcp:8444:interface=127.0.0.1"}, "listen",
             "haproxy: is not for the console"),
            ({"accounts": None, "listen": "8444"}, "accounts", "required"),
            ({"accounts": ""}, "accounts", "required"),
            ({"session_idle": "0"}, "session_idle", "more than 0"),
            ({"session_idle": "-5"}, "session_idle", "more than 0"),
            ({"session_idle": "nan"}, "session_idle", "more than 0"),
            ({"session_idle": "inf"}, "session_idle", "more than 0"),
            ({"session_idle": "soon"}, "session_idle", "not a number of seconds"),
            ({"session_lifetime": "0"}, "session_lifetime", "more than 0"),
            ({"session_lifetime": "-1"}, "session_lifetime", "more than 0"),
            ({"session_idle": "3600", "session_lifetime": "600"}, "session_lifetime",
             "less than session_idle"),
            ({"session_idle": "30000"}, "session_lifetime", "less than session_idle"),
            ({"colour": "blue"}, "colour", "unknown key"),
        ]
        for change, key, message in cases:
            found_key, found = self.one_problem(change)
            self.assertEqual(found_key, key, change)
            self.assertIn(message, found, change)

    def test_missing_accounts_file(self) -> None:
        """
        The file must exist; the message names it and the command that
        creates it.
        """
        path = write_config(self.directory, build_ini({"admin": {"accounts": "none.passwd"}}))
        error = self.assertRaises(ConfigError, load, path)
        [problem] = error.problems
        self.assertEqual((problem.section, problem.key), ("admin", "accounts"))
        self.assertIn(str(self.directory / "none.passwd"), problem.message)
        self.assertIn("smartdiscover admin-passwd NAME --config PATH", problem.message)

    def test_unreadable_accounts_file(self) -> None:
        self.directory.mkdir(parents=True)
        (self.directory / "dir.passwd").mkdir()
        path = write_config(self.directory, build_ini({"admin": {"accounts": "dir.passwd"}}))
        [problem] = self.assertRaises(ConfigError, load, path).problems
        self.assertEqual(problem.key, "accounts")
        self.assertIn("cannot read", problem.message)

    def test_bad_lines(self) -> None:
        """
        Every bad line is reported with the file and its line number.
        """
        long = "a" * 65
        cases = [
            ("alice\n", "expected NAME:HASH"),
            (f":{DEMO_HASH}\n", "administrator's name is 1-64"),
            (f"{long}:{DEMO_HASH}\n", "administrator's name is 1-64"),
            (f"<script>alert(1)</script>:{DEMO_HASH}\n", "administrator's name is 1-64"),
            (f"al ice:{DEMO_HASH}\n", "administrator's name is 1-64"),
            (f"\u00e9mile:{DEMO_HASH}\n", "administrator's name is 1-64"),
            (f"a\x00b:{DEMO_HASH}\n", "administrator's name is 1-64"),
            ("alice:secret\n", "unsupported password scheme"),
            ("alice:{PLAIN}secret\n", "unsupported password scheme"),
            (f"alice:{DEMO_HASH[:-1]}\n", "malformed bcrypt hash"),
            (f"alice:{DEMO_HASH}:1000:1000\n", "malformed bcrypt hash"),
            (f"alice:{BROKEN_ARGON2}\n", "malformed argon2id hash"),
            (f"alice:{DEMO_HASH[:-1]}\u00e9\n", "not ASCII"),
        ]
        for line, message in cases:
            text = "# first line a comment\n" + line
            key, found = self.one_problem({}, text)
            self.assertEqual(key, "accounts", line)
            self.assertIn(f"{self.directory / 'admin.passwd'}:2: ", found, line)
            self.assertIn(message, found, line)
        self.assertNotIn(long, self.one_problem({}, f"{long}:{DEMO_HASH}\n")[1])
        self.assertNotIn("<script>",
                         self.one_problem({}, f"<script>:{DEMO_HASH}\n")[1])

    def test_hash_never_echoed(self) -> None:
        """
        A bad hash is reported without its text, whole or in part.
        """
        for bad in (DEMO_HASH[:-1], DEMO_HASH + "x", DEMO_HASH + ":extra", "hunter2",
                    BROKEN_ARGON2, "$2b$12$" + "Z" * 20):
            _, message = self.one_problem({}, f"alice:{bad}\n")
            self.assertNotIn(bad, message)
            self.assertNotIn(bad[-10:], message)

    def test_duplicate_names(self) -> None:
        """
        A name given twice, in any case, is refused at its second line.
        """
        key, message = self.one_problem({}, f"alice:{DEMO_HASH}\n\nAlice:{ARGON2_HASH}\n")
        self.assertEqual(key, "accounts")
        self.assertIn(":3: alice appears twice (first on line 1)", message)
        self.assertNotIn(ARGON2_HASH, message)

    def test_too_large(self) -> None:
        accounts = f"alice:{DEMO_HASH}\n" + "#" * MAX_ACCOUNTS_BYTES + "\n"
        key, message = self.one_problem({}, accounts)
        self.assertEqual(key, "accounts")
        self.assertIn(f"larger than {MAX_ACCOUNTS_BYTES} bytes", message)

    def test_not_utf8(self) -> None:
        key, message = self.one_problem({}, f"alice:{DEMO_HASH}\n# caf\xe9\n".encode("latin-1"))
        self.assertEqual(key, "accounts")
        self.assertIn("not UTF-8 (line 2)", message)

    def test_port_clash(self) -> None:
        """
        The console's port must be its own on an address it shares with
        [server] https, http or dns (DNS over TCP).
        """
        cases: list[tuple[dict[str, str | None], dict[str, str | None], str]] = [
            ({"listen": "8443"}, {}, "[server] https"),
            ({"listen": "tcp:8443:interface=192.0.2.1"}, {}, "[server] https"),
            ({"listen": "8080"}, {"http": "tcp:8080"}, "[server] http"),
            ({"listen": "8080"}, {"http": "tcp:8080:interface=0.0.0.0"}, "[server] http"),
            ({"listen": "tcp:8080:interface=\\:\\:1"},
             {"http": "tcp:8080:interface=\\:\\:"}, "[server] http"),
            ({"listen": "8053"}, {"dns": "127.0.0.1:8053"}, "[server] dns"),
        ]
        for admin, server, name in cases:
            found = self.problems(admin, changes={"server": server, "hosts": HOSTS})
            self.assertEqual([(s, k) for s, k, _ in found], [("admin", "listen")], admin)
            self.assertIn(f"taken by {name}", found[0][2], admin)

    def test_no_port_clash(self) -> None:
        """
        The same port on other addresses is the console's to take.
        """
        https = "ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt"
        cases: list[tuple[dict[str, str | None], dict[str, str | None]]] = [
            ({"listen": "8443"}, {"https": https + ":interface=192.0.2.1"}),
            ({"listen": "tcp:8443:interface=\\:\\:1"}, {"https": https + ":interface=0.0.0.0"}),
            ({"listen": "8080"}, {"http": "tcp:8080:interface=192.0.2.1"}),
            ({"listen": "8053"}, {"dns": "192.0.2.1:8053"}),
            ({"listen": "8444"}, {"http": "tcp:8080", "dns": "127.0.0.1:8053"}),
        ]
        for admin, server in cases:
            self.assertIsNotNone(
                self.load(admin, changes={"server": server, "hosts": HOSTS}).admin, admin)


class AccountsTextTests(SynchronousTestCase):
    """
    L{set_account} and L{remove_account}: every other line kept as it is.
    """

    TEXT = "# admins\r\n\nalice:H1\r\n  # kept  \nBob:H2"

    def test_set_new(self) -> None:
        self.assertEqual(set_account(self.TEXT, "carol", "H3"),
                         (self.TEXT + "\ncarol:H3\n", False))
        self.assertEqual(set_account("", "carol", "H3"), ("carol:H3\n", False))

    def test_set_existing(self) -> None:
        """
        Case does not matter; the line ending stays; a later line of the
        same name goes.
        """
        self.assertEqual(set_account(self.TEXT, "ALICE", "H9"),
                         ("# admins\r\n\nalice:H9\r\n  # kept  \nBob:H2", True))
        self.assertEqual(set_account(self.TEXT, "bob", "H9"),
                         ("# admins\r\n\nalice:H1\r\n  # kept  \nBob:H9\n", True))
        self.assertEqual(set_account("a:1\nb:2\nA:3\n", "a", "9"), ("a:9\nb:2\n", True))

    def test_remove(self) -> None:
        self.assertEqual(remove_account(self.TEXT, "Alice"), "# admins\r\n\n  # kept  \nBob:H2")
        error = self.assertRaises(ValueError, remove_account, self.TEXT, "carol")
        self.assertIn("carol is not an administrator", str(error))

    def test_bad_names(self) -> None:
        for name in ("", "a" * 65, "<script>", "a:b", "a\nb", "a b", "#a"):
            self.assertRaises(ValueError, set_account, self.TEXT, name, "H")
            self.assertRaises(ValueError, remove_account, self.TEXT, name)
        self.assertEqual(set_account("", "a" * 64, "H"), ("a" * 64 + ":H\n", False))


class AdminAccountsPathTests(SynchronousTestCase):
    """
    L{admin_accounts_path}: the file named, whether or not it exists.
    """

    def test_path(self) -> None:
        directory = Path(self.mktemp())
        path = write_config(directory, build_ini({"admin": {"accounts": "a/admin.passwd"}}))
        self.assertEqual(admin_accounts_path(path),
                         directory.absolute() / "a" / "admin.passwd")

    def test_refused(self) -> None:
        directory = Path(self.mktemp())
        cases = [
            (build_ini(), "has no [admin] section"),
            (build_ini({"admin": {"listen": "8444"}}), "[admin] accounts is not set"),
            ("[admin]\naccounts = a\naccounts = b\n", "cannot be read as a configuration"),
        ]
        for ini, message in cases:
            error = self.assertRaises(ValueError, admin_accounts_path,
                                      write_config(directory, ini))
            self.assertIn(message, str(error))
        error = self.assertRaises(ValueError, admin_accounts_path, directory / "none.ini")
        self.assertIn("cannot read", str(error))


class AdminPasswdCommandTests(SynchronousTestCase):
    """
    C{smartdiscover admin-passwd NAME [--config PATH] [--remove]}.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)
        self.directory = Path(self.mktemp()).absolute()
        self.config = write_config(self.directory, build_ini(
            {"admin": {"accounts": "admin.passwd"}}))
        self.accounts = self.directory / "admin.passwd"
        self.secrets: list[str] = []
        self.patch(cli, "hash_password", cheap_hash_password)

    def piped(self, text: str) -> None:
        self.patch(sys, "stdin", io.StringIO(text))
        if text.strip():
            self.secrets.append(text.strip())

    def command(self, *args: str, config: Path | None = None) -> int:
        """
        Run the command; no password given to it appears in its output.
        """
        status = cli.main(["admin-passwd", *args, "--config", str(config or self.config)])
        output = self.stdout.getvalue() + self.stderr.getvalue()
        for secret in self.secrets:
            self.assertNotIn(secret, output)
        return status

    def accounts_of(self) -> dict[str, bytes]:
        admin = load(self.config).admin
        assert admin is not None
        return dict(admin.accounts)

    def test_first_account_real_cost(self) -> None:
        """
        The file is missing (the loader refuses the configuration): the
        command creates it, mode 0600, with one account whose hash verifies
        the password; the configuration then loads.
        """
        self.patch(cli, "hash_password", hash_password)
        self.assertRaises(ConfigError, load, self.config)
        self.piped(PASSWORD + "\n")
        self.assertEqual(self.command("Root"), 0, self.stderr.getvalue())
        self.assertEqual(stat.S_IMODE(os.stat(self.accounts).st_mode), 0o600)
        [line] = self.accounts.read_text().splitlines()
        self.assertTrue(line.startswith("Root:$2b$12$"), line)
        accounts = self.accounts_of()
        self.assertEqual(list(accounts), ["root"])
        self.assertTrue(verify_password(accounts["root"], PASSWORD.encode()))
        self.assertFalse(verify_password(accounts["root"], b"wrong"))
        self.assertIn(f"{self.accounts}: added administrator root", self.stdout.getvalue())
        self.assertEqual([name for name in os.listdir(self.directory) if name.startswith(".sd-")],
                         [])

    def test_terminal_twice(self) -> None:
        """
        From a terminal the password is asked twice, without echo.
        """
        prompts: list[str] = []
        typed = iter([PASSWORD, PASSWORD])

        def fake_getpass(prompt: str = "Password: ", stream: object = None) -> str:
            prompts.append(prompt)
            return next(typed)

        self.patch(sys, "stdin", _Terminal())
        self.patch(cli.getpass, "getpass", fake_getpass)
        self.secrets.append(PASSWORD)
        self.assertEqual(self.command("root"), 0, self.stderr.getvalue())
        self.assertEqual(prompts, ["New password: ", "Again: "])
        self.assertTrue(verify_password(self.accounts_of()["root"], PASSWORD.encode()))

    def test_terminal_differ(self) -> None:
        typed = iter([PASSWORD, PASSWORD + "x"])
        self.patch(sys, "stdin", _Terminal())
        self.patch(cli.getpass, "getpass", lambda prompt="", stream=None: next(typed))
        self.secrets.append(PASSWORD)
        self.assertEqual(self.command("root"), 1)
        self.assertIn("the two passwords differ", self.stderr.getvalue())
        self.assertFalse(self.accounts.exists())

    def test_empty_password(self) -> None:
        self.piped("\n")
        self.assertEqual(self.command("root"), 1)
        self.assertIn("empty password", self.stderr.getvalue())
        self.assertFalse(self.accounts.exists())

    def test_argon2id(self) -> None:
        self.patch(cli, "hash_password", lambda password, scheme="bcrypt":
                   argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
                   .hash(password).encode() if scheme == "argon2id" else b"wrong")
        self.piped(PASSWORD + "\n")
        self.assertEqual(self.command("root", "--scheme", "argon2id"), 0, self.stderr.getvalue())
        hashed = self.accounts_of()["root"]
        self.assertTrue(hashed.startswith(b"$argon2id$"))
        self.assertTrue(verify_password(hashed, PASSWORD.encode()))

    def test_change_keeps_other_lines(self) -> None:
        """
        A new password for an existing name (in any case): its line
        changes, every other byte stays; the file's mode stays.
        """
        before = ("# console administrators\n"
                  "\n"
                  f"alice:{DEMO_HASH}\n"
                  "  # an indented comment  \n"
                  f"Root:{DEMO_HASH}\n"
                  f"bob:{ARGON2_HASH}\n"
                  "# the end\n")
        self.accounts.write_text(before)
        os.chmod(self.accounts, 0o640)
        self.piped(PASSWORD + "\n")
        self.assertEqual(self.command("ROOT"), 0, self.stderr.getvalue())
        after = self.accounts.read_text().splitlines(keepends=True)
        old = before.splitlines(keepends=True)
        self.assertEqual(len(after), len(old))
        for index, (new_line, old_line) in enumerate(zip(after, old)):
            if index != 4:
                self.assertEqual(new_line, old_line)
        self.assertTrue(after[4].startswith("Root:$2b$"), after[4])
        self.assertEqual(stat.S_IMODE(os.stat(self.accounts).st_mode), 0o640)
        accounts = self.accounts_of()
        self.assertEqual(sorted(accounts), ["alice", "bob", "root"])
        self.assertTrue(verify_password(accounts["root"], PASSWORD.encode()))
        self.assertTrue(verify_password(accounts["alice"], DEMO_PASSWORD.encode()))
        self.assertIn("updated administrator root", self.stdout.getvalue())

    def test_add_keeps_other_lines(self) -> None:
        before = f"# admins\nalice:{DEMO_HASH}"
        self.accounts.write_text(before)
        self.piped(PASSWORD + "\n")
        self.assertEqual(self.command("carol"), 0, self.stderr.getvalue())
        text = self.accounts.read_text()
        self.assertTrue(text.startswith(before + "\ncarol:$2b$"), text)
        self.assertEqual(sorted(self.accounts_of()), ["alice", "carol"])

    def test_remove(self) -> None:
        """
        C{--remove} takes the name's line out and asks for no password.
        """
        self.accounts.write_text(f"# admins\nalice:{DEMO_HASH}\nroot:{DEMO_HASH}\n# end\n")
        self.patch(sys, "stdin", _Terminal())
        self.assertEqual(self.command("Alice", "--remove"), 0, self.stderr.getvalue())
        self.assertEqual(self.accounts.read_text(), f"# admins\nroot:{DEMO_HASH}\n# end\n")
        self.assertIn("removed administrator alice", self.stdout.getvalue())
        self.assertEqual(list(self.accounts_of()), ["root"])

    def test_remove_unknown(self) -> None:
        before = f"root:{DEMO_HASH}\n"
        self.accounts.write_text(before)
        self.assertEqual(self.command("alice", "--remove"), 1)
        self.assertIn("alice is not an administrator", self.stderr.getvalue())
        self.assertEqual(self.accounts.read_text(), before)

    def test_remove_from_missing_file(self) -> None:
        self.assertEqual(self.command("alice", "--remove"), 1)
        self.assertIn("alice is not an administrator", self.stderr.getvalue())
        self.assertFalse(self.accounts.exists())

    def test_no_admin_section(self) -> None:
        config = write_config(self.directory / "other", build_ini())
        self.piped(PASSWORD + "\n")
        self.assertEqual(self.command("root", config=config), 1)
        self.assertIn("has no [admin] section", self.stderr.getvalue())
        self.assertEqual(sorted(os.listdir(self.directory / "other")),
                         ["sd.ini", "users.passwd"])

    def test_missing_config(self) -> None:
        self.assertEqual(self.command("root", config=self.directory / "none.ini"), 1)
        self.assertIn("cannot read", self.stderr.getvalue())

    def test_hostile_names(self) -> None:
        """
        Markup, a name too long, a colon or a line break: a usage error,
        nothing written, the name not repeated.
        """
        for name in ("<script>alert(1)</script>", "a" * 65, "a:b", "a\nb", ""):
            self.piped(PASSWORD + "\n")
            self.assertEqual(self.command(name), 2, name)
            self.assertFalse(self.accounts.exists(), name)
            self.assertIn("administrator's name is 1-64", self.stderr.getvalue())
        self.assertNotIn("<script>", self.stderr.getvalue())
        self.assertNotIn("a" * 65, self.stderr.getvalue())

    def test_warns_about_other_bad_lines(self) -> None:
        """
        A bad line elsewhere in the file is kept, and pointed out (without
        its hash).
        """
        self.accounts.write_text(f"alice:{DEMO_HASH[:-2]}\n")
        self.piped(PASSWORD + "\n")
        self.assertEqual(self.command("root"), 0, self.stderr.getvalue())
        self.assertIn(f"warning: {self.accounts}:1: incomplete or malformed bcrypt hash",
                      self.stderr.getvalue())
        self.assertNotIn(DEMO_HASH[:-2], self.stderr.getvalue())


class _Terminal:
    """
    Standard input attached to a terminal: read only through getpass.
    """

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        raise AssertionError("read from the terminal with echo")

