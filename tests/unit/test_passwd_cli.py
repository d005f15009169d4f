"""
Tests for C{smartdiscover passwd ADDRESS [--file PATH]}, which adds a user
to the password file or changes a password (issue 6, section 1; SECURITY.md
section 8).

Standard input is replaced by a L{io.StringIO} (a pipe) or by a fake
terminal with L{getpass.getpass} patched.  Hashing at the CLI's real cost
(bcrypt 12) happens in two tests only; elsewhere
L{smartdiscover.cli.hash_password} is a cheap stand-in of the same schemes.
"""

from __future__ import annotations

import getpass
import io
import os
import sys
from pathlib import Path

import argon2
import bcrypt
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover import cli
from smartdiscover.auth.hashing import BCRYPT_MAX_PASSWORD, verify_password
from smartdiscover.config import load
from tests.helpers import DEMO_HASH, edit, write_config

PASSWORD = "Tr0ub4dor&3-new"
CHEAP_ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
OLD_HASH = DEMO_HASH  # bcrypt, cost 4

EXISTING = (
    "# SmartDiscover users -- edited by hand too\n"
    "\n"
    f"alice@example.test:{OLD_HASH}:1000:1000:Alice Example:/home/alice::allow_nets=192.0.2.0/24\n"
    "  # an indented comment, kept as it is  \n"
    f"Demo@Example.TEST:{OLD_HASH}:1001:1001:Demo User:/home/demo:\n"
    f"bob@example.test:{OLD_HASH}\n"
    "# the end\n"
)


def cheap_hash_password(password: bytes, scheme: str = "bcrypt") -> bytes:
    """
    L{smartdiscover.auth.hashing.hash_password} at the lowest costs: same
    schemes, same refusal of what bcrypt cannot take.
    """
    if scheme == "argon2id":
        return CHEAP_ARGON2.hash(password).encode("ascii")
    if len(password) > BCRYPT_MAX_PASSWORD or b"\x00" in password:
        raise ValueError("bcrypt takes at most 72 bytes and no NUL: use --scheme argon2id")
    return bcrypt.hashpw(password, bcrypt.gensalt(4))


class FakeTerminal:
    """
    Standard input attached to a terminal; the command must read through
    L{getpass.getpass}, never from here.
    """

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        raise AssertionError("a password was read from the terminal with echo")

    read = readline


class PasswdCommandTests(SynchronousTestCase):
    """
    C{smartdiscover passwd}.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)
        self.directory = Path(self.mktemp())
        self.directory.mkdir()
        self.path = self.directory / "users.passwd"
        self.hashed: list[tuple[bytes, str]] = []
        self.secrets: list[str] = []

    def cheap_hashing(self) -> None:
        def record(password: bytes, scheme: str = "bcrypt") -> bytes:
            self.hashed.append((password, scheme))
            return cheap_hash_password(password, scheme)

        self.patch(cli, "hash_password", record)

    def piped(self, text: str) -> None:
        self.patch(sys, "stdin", io.StringIO(text))
        if text.strip():
            self.secrets.append(text.strip())

    def terminal(self, *answers: str) -> list[str]:
        """
        A terminal on which the user types C{answers} in turn; returns the
        prompts shown.
        """
        prompts: list[str] = []
        typed = iter(answers)

        def fake_getpass(prompt: str = "Password: ", stream: object = None) -> str:
            prompts.append(prompt)
            return next(typed)

        self.patch(sys, "stdin", FakeTerminal())
        self.patch(getpass, "getpass", fake_getpass)
        self.secrets.extend(answer for answer in answers if answer)
        return prompts

    def passwd(self, *args: str, file: Path | None = None) -> int:
        """
        Run the command on C{file} (default: C{self.path}); check that no
        password it was given appears in its output.
        """
        argv = ["passwd", *args]
        if file is not None or "--config" not in args:
            argv += ["--file", str(file if file is not None else self.path)]
        status = cli.main(argv)
        output = self.stdout.getvalue() + self.stderr.getvalue()
        for secret in self.secrets:
            self.assertNotIn(secret, output)
        return status

    def assertPasswd(self, *args: str) -> None:
        """
        Run the command; it must succeed.
        """
        self.assertEqual(self.passwd(*args), 0, self.stderr.getvalue())

    def entry(self, address: str) -> list[str]:
        """
        The fields of C{address}'s one line in the file.
        """
        lines = [line for line in self.path.read_text().splitlines()
                 if line.split(":")[0] == address]
        self.assertEqual(len(lines), 1, self.path.read_text())
        return lines[0].split(":")

    # -- adding -----------------------------------------------------------------

    def test_add_bcrypt_real_cost(self) -> None:
        """
        A new user, password from a pipe: a new file with one line,
        C{address:$2b$12$...}, whose hash verifies the password; the
        command says it added the user.  (Real cost: one hash, one check.)
        """
        self.piped(PASSWORD + "\n")
        self.assertPasswd("alice@example.test")
        [line] = self.path.read_text().splitlines()
        address, hashed = line.split(":")
        self.assertEqual(address, "alice@example.test")
        self.assertTrue(hashed.startswith("$2b$12$"), hashed)
        self.assertTrue(verify_password(hashed.encode(), PASSWORD.encode()))
        self.assertIn("added alice@example.test", self.stdout.getvalue())
        self.assertNotIn(PASSWORD, self.path.read_text())

    def test_add_argon2id(self) -> None:
        """
        C{--scheme argon2id}: an argon2id hash that verifies the password.
        """
        self.piped(PASSWORD + "\n")
        self.assertPasswd("alice@example.test", "--scheme", "argon2id")
        address, hashed = self.path.read_text().rstrip("\n").split(":")
        self.assertTrue(hashed.startswith("$argon2id$"), hashed)
        self.assertTrue(verify_password(hashed.encode(), PASSWORD.encode()))
        self.assertFalse(verify_password(hashed.encode(), b"not-" + PASSWORD.encode()))

    def test_add_keeps_file(self) -> None:
        """
        A new user in an existing file: one line appended, every existing
        byte kept; a last line without a newline gets one first.
        """
        self.cheap_hashing()
        self.path.write_text(EXISTING.rstrip("\n"))
        self.piped(PASSWORD + "\n")
        self.assertPasswd("carol@example.test")
        text = self.path.read_text()
        self.assertTrue(text.startswith(EXISTING), text)
        added = text[len(EXISTING):]
        self.assertTrue(added.startswith("carol@example.test:$2b$"), added)
        self.assertTrue(added.endswith("\n"))
        self.assertEqual(added.count("\n"), 1)
        self.assertEqual(self.hashed, [(PASSWORD.encode(), "bcrypt")])

    def test_name_for_new_user(self) -> None:
        """
        C{--name} gives a new user a display name (the fifth field), which
        the loaded model shows.
        """
        self.cheap_hashing()
        ini = write_config(self.directory, passwd="")
        self.piped(PASSWORD + "\n")
        self.assertPasswd("carol@example.test", "--name", "Carol Example")
        fields = self.entry("carol@example.test")
        self.assertEqual(fields[2:], ["", "", "Carol Example"])
        user = load(ini).users["carol@example.test"]
        self.assertEqual(user.display_name, "Carol Example")

    # -- updating -----------------------------------------------------------------

    def test_update_case_insensitive(self) -> None:
        """
        An existing user named in another letter case: its hash is replaced
        in place, the address as the file spells it and every other field
        kept; every other line (comments, blanks, other users, order) is
        byte-for-byte the same; no line is added.
        """
        self.cheap_hashing()
        self.path.write_text(EXISTING)
        self.piped(PASSWORD + "\n")
        self.assertPasswd("demo@example.test")
        self.assertIn("updated demo@example.test", self.stdout.getvalue())
        old, new = EXISTING.splitlines(keepends=True), \
            self.path.read_text().splitlines(keepends=True)
        self.assertEqual(len(new), len(old))
        changed = [i for i in range(len(old)) if old[i] != new[i]]
        self.assertEqual(changed, [4])
        before, after = old[4].rstrip("\n").split(":"), new[4].rstrip("\n").split(":")
        self.assertEqual(after[0], "Demo@Example.TEST")
        self.assertEqual(after[2:], before[2:])
        self.assertTrue(new[4].endswith("\n"))
        self.assertTrue(verify_password(after[1].encode(), PASSWORD.encode()))
        self.assertFalse(verify_password(after[1].encode(), b"demo-password"))

    def test_update_keeps_crlf(self) -> None:
        """
        A file with CRLF line ends keeps them, on the changed line too.
        """
        self.cheap_hashing()
        original = EXISTING.replace("\n", "\r\n").encode()
        self.path.write_bytes(original)
        self.piped(PASSWORD + "\n")
        self.assertPasswd("bob@example.test")
        old, new = original.split(b"\r\n"), self.path.read_bytes().split(b"\r\n")
        self.assertEqual(len(new), len(old))
        self.assertEqual([i for i in range(len(old)) if old[i] != new[i]], [5])
        self.assertNotIn(b"\n", new[5])

    def test_name_for_existing_user(self) -> None:
        """
        C{--name} on an existing user replaces only the display name; a
        line with just address and hash gets the empty fields before it.
        """
        self.cheap_hashing()
        self.path.write_text(EXISTING)
        self.piped(PASSWORD + "\n")
        self.assertPasswd("alice@example.test", "--name", "Alice Liddell")
        old = EXISTING.splitlines()[2].split(":")
        fields = self.entry("alice@example.test")
        self.assertEqual(fields[4], "Alice Liddell")
        self.assertEqual(fields[2:4] + fields[5:], old[2:4] + old[5:])

        self.piped(PASSWORD + "\n")
        self.assertPasswd("bob@example.test", "--name", "Bob")
        self.assertEqual(self.entry("bob@example.test")[2:], ["", "", "Bob"])

    def test_from_terminal(self) -> None:
        """
        On a terminal the password is asked twice without echo (getpass),
        never read from standard input.
        """
        self.cheap_hashing()
        prompts = self.terminal(PASSWORD, PASSWORD)
        self.assertPasswd("alice@example.test")
        self.assertEqual(len(prompts), 2)
        self.assertEqual(self.hashed, [(PASSWORD.encode(), "bcrypt")])
        self.assertTrue(verify_password(self.entry("alice@example.test")[1].encode(),
                                        PASSWORD.encode()))

    # -- refusals -------------------------------------------------------------------

    def assertRefused(self, status: int, unchanged: bytes | None) -> None:
        """
        Exit status 1 with a message, and the file as it was (or absent).
        """
        self.assertEqual(status, 1)
        self.assertTrue(self.stderr.getvalue().startswith("smartdiscover: "),
                        self.stderr.getvalue())
        if unchanged is None:
            self.assertFalse(self.path.exists())
        else:
            self.assertEqual(self.path.read_bytes(), unchanged)

    def test_terminal_mismatch(self) -> None:
        """
        Two different passwords on the terminal: exit 1, file unchanged,
        nothing hashed.
        """
        self.cheap_hashing()
        self.path.write_text(EXISTING)
        self.terminal(PASSWORD, PASSWORD + "x")
        self.assertRefused(self.passwd("demo@example.test"), EXISTING.encode())
        self.assertIn("differ", self.stderr.getvalue())
        self.assertEqual(self.hashed, [])

    def test_empty_password(self) -> None:
        """
        An empty password (an empty line, end of input, or twice nothing on
        a terminal): exit 1, no file created.
        """
        self.cheap_hashing()
        for setup in (lambda: self.piped("\n"), lambda: self.piped(""),
                      lambda: self.terminal("", "")):
            setup()
            self.assertRefused(self.passwd("alice@example.test"), None)
        self.assertEqual(self.hashed, [])

    def test_73_bytes_bcrypt(self) -> None:
        """
        A 73-byte password with bcrypt (which would silently ignore the
        rest, or raise): exit 1, the message suggests argon2id, the file is
        unchanged.  (The real hash function refuses before hashing.)
        """
        self.path.write_text(EXISTING)
        self.piped("p" * 73 + "\n")
        self.assertRefused(self.passwd("demo@example.test"), EXISTING.encode())
        self.assertIn("argon2id", self.stderr.getvalue())

    def test_bad_addresses(self) -> None:
        """
        An address with C{:} (which would shift the fields), or one that is
        no address at all: exit 1, the file unchanged.
        """
        self.cheap_hashing()
        self.path.write_text(EXISTING)
        for address, message in (("ali:ce@example.test", "':'"),
                                 ("demo@example.test:x", "':'"),
                                 ("no-at-sign", "not an e-mail address")):
            self.stderr.truncate(0)
            self.stderr.seek(0)
            self.piped(PASSWORD + "\n")
            self.assertRefused(self.passwd(address), EXISTING.encode())
            self.assertIn(message, self.stderr.getvalue())

    def test_bad_display_name(self) -> None:
        """
        A display name with C{:} or a control character: exit 1.
        """
        self.cheap_hashing()
        self.path.write_text(EXISTING)
        for name in ("Alice: Admin", "Alice\x07"):
            self.stderr.truncate(0)
            self.stderr.seek(0)
            self.piped(PASSWORD + "\n")
            self.assertRefused(self.passwd("alice@example.test", "--name", name),
                               EXISTING.encode())
            self.assertIn("display name", self.stderr.getvalue())

    # -- the file from the configuration; modes ----------------------------------

    def test_file_from_config(self) -> None:
        """
        Without C{--file}, the command writes C{[auth] passwd_file} of
        C{--config}; the configuration then loads with both users, and the
        new hash verifies.
        """
        self.cheap_hashing()
        ini = write_config(self.directory)
        self.piped(PASSWORD + "\n")
        self.assertPasswd("carol@example.test", "--config", str(ini))
        users = load(ini).users
        self.assertEqual(set(users), {"demo@example.test", "carol@example.test"})
        self.assertTrue(verify_password(users["carol@example.test"].password_hash,
                                        PASSWORD.encode()))
        self.assertEqual(users["demo@example.test"].display_name, "Demo User")

    def test_case_sensitive_config(self) -> None:
        """
        With C{case_sensitive_local = true} in the configuration,
        C{DEMO@example.test} is another user: added, not an update.
        """
        self.cheap_hashing()
        ini = write_config(self.directory, edit("passwd_file = users.passwd\n",
                                                "passwd_file = users.passwd\n"
                                                "case_sensitive_local = true\n"))
        self.piped(PASSWORD + "\n")
        self.assertPasswd("DEMO@example.test", "--config", str(ini))
        self.assertIn("added", self.stdout.getvalue())
        self.assertEqual(len(load(ini).users), 2)

    def test_config_without_file(self) -> None:
        """
        No C{--file} and a configuration that cannot be loaded: exit 1.
        """
        self.cheap_hashing()
        self.piped(PASSWORD + "\n")
        missing = self.directory / "missing.ini"
        self.assertEqual(self.passwd("carol@example.test", "--config", str(missing)), 1)
        self.assertIn(str(missing), self.stderr.getvalue())
        self.assertEqual(self.hashed, [])

    def test_new_file_mode(self) -> None:
        """
        A new password file is created readable by its owner only (0600).
        """
        self.cheap_hashing()
        self.piped(PASSWORD + "\n")
        self.assertPasswd("alice@example.test")
        self.assertEqual(self.path.stat().st_mode & 0o777, 0o600)

    def test_existing_mode_kept(self) -> None:
        """
        An existing file keeps its mode (here 0640, for a group the mail
        server runs as); no temporary file is left behind.
        """
        self.cheap_hashing()
        self.path.write_text(EXISTING)
        os.chmod(self.path, 0o640)
        self.piped(PASSWORD + "\n")
        self.assertPasswd("alice@example.test")
        self.assertEqual(self.path.stat().st_mode & 0o777, 0o640)
        self.assertEqual(os.listdir(self.directory), ["users.passwd"])

    def test_result_loads(self) -> None:
        """
        After adding and updating users (bcrypt and argon2id, with names),
        the configuration loads, and each hash verifies its password.
        """
        self.cheap_hashing()
        ini = write_config(self.directory, passwd=EXISTING)
        passwords = {"carol@example.test": ("carol-pw", "argon2id"),
                     "demo@example.test": ("demo-pw", "bcrypt"),
                     "alice@example.test": ("alice-pw", "argon2id")}
        for address, (password, scheme) in passwords.items():
            self.piped(password + "\n")
            self.assertPasswd(address, "--scheme", scheme, "--name", "N " + address)
        users = load(ini).users
        self.assertEqual(set(users), {"alice@example.test", "demo@example.test",
                                      "bob@example.test", "carol@example.test"})
        for address, (password, scheme) in passwords.items():
            self.assertTrue(verify_password(users[address].password_hash, password.encode()),
                            address)
            self.assertEqual(users[address].display_name, "N " + address)
        self.assertEqual(users["demo@example.test"].address, "Demo@Example.TEST")
