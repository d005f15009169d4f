"""
Unit tests for L{smartdiscover.auth}: HTTP Basic decoding, password hash
verification, the password-file checker and the hashing pool (SECURITY.md
sections 3.3 and 8; PROTOCOLS.md section 11.4).
"""

from __future__ import annotations

import base64
import threading
from typing import Any, Callable

import argon2
import bcrypt
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from smartdiscover.auth.credentials import BasicCredentials, IBasicCredentials, decode_basic
from smartdiscover.auth.hashing import verify_password
from smartdiscover.auth.passwd import PasswdChecker
from smartdiscover.auth.pool import HashingPool
from smartdiscover.config import Model, load
from smartdiscover.config.principal import Principal
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, MINIMAL_INI, write_config

SOURCE = "192.0.2.7"
BCRYPT_HASH = DEMO_HASH.encode("ascii")
# Cheap argon2id parameters: the scheme and code path are the real ones.
ARGON2 = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ARGON2_PASSWORD = "argon-password"
ARGON2_HASH = ARGON2.hash(ARGON2_PASSWORD).encode("ascii")
# A password of exactly 72 bytes, the most bcrypt takes.
LONGEST = b"L" * 72
LONGEST_HASH = bcrypt.hashpw(LONGEST, bcrypt.gensalt(4))


def basic(username: bytes, password: bytes, scheme: bytes = b"Basic") -> bytes:
    """
    An C{Authorization} header value for C{username} and C{password}.
    """
    return scheme + b" " + base64.b64encode(username + b":" + password)


class DecodeBasicTests(SynchronousTestCase):
    """
    L{decode_basic}: one decoding rule for HTTP Basic credentials, and
    L{None} for every unusable header (SECURITY.md sections 3.3 and 8).
    """

    def test_valid(self) -> None:
        """
        A valid header gives the user name as text, the password as UTF-8
        bytes, and keeps the source address.
        """
        credentials = decode_basic(basic(b"demo@example.test", b"demo-password"), SOURCE)
        self.assertIsInstance(credentials, BasicCredentials)
        self.assertEqual(credentials.username, "demo@example.test")
        self.assertIsInstance(credentials.username, str)
        self.assertEqual(credentials.password, b"demo-password")
        self.assertIsInstance(credentials.password, bytes)
        self.assertEqual(credentials.source, SOURCE)

    def test_interface(self) -> None:
        """
        L{BasicCredentials} provides L{IBasicCredentials}, the interface the
        checker declares (SECURITY.md section 8).
        """
        self.assertTrue(verifyObject(IBasicCredentials,
                                     BasicCredentials("demo@example.test", b"pw", SOURCE)))
        self.assertTrue(verifyObject(IBasicCredentials,
                                     decode_basic(basic(b"a@b.test", b"pw"), SOURCE)))

    def test_passwordWithColon(self) -> None:
        """
        Only the first colon separates user name and password, so passwords
        may contain colons (RFC 7617).
        """
        credentials = decode_basic(basic(b"demo@example.test", b"pa:ss:"), SOURCE)
        self.assertEqual(credentials.username, "demo@example.test")
        self.assertEqual(credentials.password, b"pa:ss:")

    def test_latin1Password(self) -> None:
        """
        A password that is not valid UTF-8 is read as ISO-8859-1 (older
        Outlook) and handed on re-encoded as UTF-8 (PROTOCOLS.md section
        11.4; SECURITY.md section 8).
        """
        raw = "p\u00e4ssword".encode("latin-1")
        credentials = decode_basic(basic(b"demo@example.test", raw), SOURCE)
        self.assertEqual(credentials.password, "p\u00e4ssword".encode("utf-8"))

    def test_utf8Password(self) -> None:
        """
        A UTF-8 password (mobile clients) is kept byte for byte
        (PROTOCOLS.md section 11.4).
        """
        raw = "p\u00e4ss\u20acw\U0001f511rd".encode("utf-8")
        credentials = decode_basic(basic(b"demo@example.test", raw), SOURCE)
        self.assertEqual(credentials.password, raw)

    def test_latin1Username(self) -> None:
        """
        The user name follows the same rule: UTF-8, else ISO-8859-1
        (PROTOCOLS.md section 11.4).
        """
        for raw in ("j\u00f6rg@example.test".encode("latin-1"),
                    "j\u00f6rg@example.test".encode("utf-8")):
            credentials = decode_basic(basic(raw, b"pw"), SOURCE)
            self.assertEqual(credentials.username, "j\u00f6rg@example.test")

    def test_schemeCaseInsensitive(self) -> None:
        """
        The scheme name is matched case-insensitively (RFC 7235).
        """
        for scheme in (b"basic", b"BASIC", b"bAsIc"):
            credentials = decode_basic(basic(b"demo@example.test", b"pw", scheme), SOURCE)
            self.assertIsNotNone(credentials, scheme)
            self.assertEqual(credentials.password, b"pw")

    def test_absent(self) -> None:
        """
        No header, or an empty one, is L{None} (SECURITY.md section 3.3).
        """
        self.assertIsNone(decode_basic(None, SOURCE))
        self.assertIsNone(decode_basic(b"", SOURCE))
        self.assertIsNone(decode_basic(b"   ", SOURCE))

    def test_otherScheme(self) -> None:
        """
        Schemes other than Basic are L{None}, even when followed by valid
        Basic-looking data (SECURITY.md section 3.3).
        """
        encoded = base64.b64encode(b"demo@example.test:pw")
        for header in (b"Bearer x", b"Digest " + encoded, b"Bearer " + encoded,
                       b"Basic" + encoded, b"Basicx " + encoded):
            self.assertIsNone(decode_basic(header, SOURCE), header)

    def test_badBase64(self) -> None:
        """
        Data that is not strict Base64 is L{None} (SECURITY.md section 3.3:
        bad Base64 fails like any other bad login).
        """
        for header in (b"Basic !!!!", b"Basic ZGVtbzpw*XNz", b"Basic ZGVt bzpwYXNz",
                       b"Basic ZGVtb\xffzpwYXNz", b"Basic ZGVtbzpwYX", b"Basic"):
            self.assertIsNone(decode_basic(header, SOURCE), header)

    def test_missingColon(self) -> None:
        """
        Decoded data without a colon is L{None} (SECURITY.md section 3.3).
        """
        self.assertIsNone(decode_basic(b"Basic " + base64.b64encode(b"demo-password"), SOURCE))

    def test_emptyUsername(self) -> None:
        """
        An empty user name is L{None}.
        """
        self.assertIsNone(decode_basic(basic(b"", b"demo-password"), SOURCE))

    def test_emptyPassword(self) -> None:
        """
        An empty password is L{None}: it must never reach a backend, where
        it may mean an unauthenticated bind (SECURITY.md section 8).
        """
        self.assertIsNone(decode_basic(basic(b"demo@example.test", b""), SOURCE))

    def test_oversizedHeader(self) -> None:
        """
        A header far longer than any user name and password is L{None}
        before it is decoded (SECURITY.md section 8).
        """
        self.assertIsNone(decode_basic(b"Basic " + b"QUFB" * 1000, SOURCE))
        self.assertIsNone(decode_basic(basic(b"demo@example.test", b"p" * 100_000), SOURCE))

    def test_passwordOver1024Bytes(self) -> None:
        """
        A password over 1 KiB is L{None}; exactly 1 KiB is still accepted
        (SECURITY.md section 8: rejected before hashing).
        """
        self.assertIsNone(decode_basic(basic(b"demo@example.test", b"p" * 1025), SOURCE))
        credentials = decode_basic(basic(b"demo@example.test", b"p" * 1024), SOURCE)
        self.assertEqual(credentials.password, b"p" * 1024)

    def test_usernameTooLong(self) -> None:
        """
        A user name longer than any e-mail address (320 bytes) is L{None}.
        """
        self.assertIsNone(decode_basic(basic(b"u" * 321, b"pw"), SOURCE))

    def test_reprHidesPassword(self) -> None:
        """
        Neither repr nor str of the credentials contains the password
        (SECURITY.md section 8: 0 plaintext passwords in logs).
        """
        credentials = decode_basic(basic(b"demo@example.test", b"s3cr3t-PW"), SOURCE)
        for text in (repr(credentials), str(credentials)):
            self.assertNotIn("s3cr3t-PW", text)
            self.assertNotIn(repr(b"s3cr3t-PW"), text)
        self.assertIn("demo@example.test", repr(credentials))


class VerifyPasswordTests(SynchronousTestCase):
    """
    L{verify_password}: bcrypt and argon2id, where every kind of mismatch is
    C{False} and nothing raises (SECURITY.md sections 1 (F9) and 8).
    """

    def test_bcrypt2b(self) -> None:
        """
        A bcrypt $2b$ hash accepts its password and nothing else.
        """
        self.assertTrue(BCRYPT_HASH.startswith(b"$2b$"))
        self.assertIs(verify_password(BCRYPT_HASH, DEMO_PASSWORD.encode()), True)
        self.assertIs(verify_password(BCRYPT_HASH, b"wrong-password"), False)
        self.assertIs(verify_password(BCRYPT_HASH, DEMO_PASSWORD.upper().encode()), False)

    def test_bcrypt2y(self) -> None:
        """
        A bcrypt $2y$ hash (PHP, Dovecot) is verified like $2b$
        (SECURITY.md section 8).
        """
        hashed = b"$2y$" + BCRYPT_HASH[4:]
        self.assertIs(verify_password(hashed, DEMO_PASSWORD.encode()), True)
        self.assertIs(verify_password(hashed, b"wrong-password"), False)

    def test_argon2id(self) -> None:
        """
        An argon2id hash accepts its password and nothing else.
        """
        self.assertTrue(ARGON2_HASH.startswith(b"$argon2id$"))
        self.assertIs(verify_password(ARGON2_HASH, ARGON2_PASSWORD.encode()), True)
        self.assertIs(verify_password(ARGON2_HASH, b"wrong-password"), False)

    def test_73Bytes(self) -> None:
        """
        A 73-byte password is C{False}, not an exception, even when its
        first 72 bytes are the right password (SECURITY.md F9: bcrypt 5
        raises ValueError; older bcrypt silently truncated).
        """
        self.assertIs(verify_password(LONGEST_HASH, LONGEST), True)
        self.assertIs(verify_password(LONGEST_HASH, LONGEST + b"x"), False)
        self.assertIs(verify_password(BCRYPT_HASH, b"x" * 73), False)

    def test_10kB(self) -> None:
        """
        A 10 kB password is C{False} for both schemes, without an exception
        (SECURITY.md F9 and section 3.3).
        """
        for hashed in (BCRYPT_HASH, LONGEST_HASH, ARGON2_HASH):
            self.assertIs(verify_password(hashed, b"L" * 10_000), False)

    def test_nul(self) -> None:
        """
        A password holding NUL is C{False}; in particular the right password
        followed by NUL and more bytes does not match, as it would if the
        password were cut at the NUL (SECURITY.md section 3.3).
        """
        right = DEMO_PASSWORD.encode()
        for password in (right + b"\x00", right + b"\x00junk", b"\x00" + right, b"\x00"):
            self.assertIs(verify_password(BCRYPT_HASH, password), False, password)
        argon = ARGON2_PASSWORD.encode()
        for password in (argon + b"\x00", argon + b"\x00junk"):
            self.assertIs(verify_password(ARGON2_HASH, password), False, password)

    def test_garbageHash(self) -> None:
        """
        A hash that is not a usable bcrypt or argon2id hash is C{False},
        never an exception.
        """
        for hashed in (b"", b"garbage", b"$2b$04$short", b"\xff\xfe\x00",
                       b"$2b$99$" + BCRYPT_HASH[7:], b"$argon2id$garbage",
                       b"$argon2id$\xff", BCRYPT_HASH[:-5], ARGON2_HASH[:-5]):
            self.assertIs(verify_password(hashed, DEMO_PASSWORD.encode()), False, hashed)


class PasswdCheckerTests(SynchronousTestCase):
    """
    L{PasswdChecker} against a password file (SECURITY.md sections 3.3 and
    8), with a synchronous hash runner that counts its calls.
    """

    def setUp(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        passwd = (f"Demo@Example.Test:{DEMO_HASH}:::Demo User\n"
                  f"argon@example.test:{ARGON2_HASH.decode()}:::Argon User\n")
        self.model = self.load_model(passwd=passwd)
        self.checker = PasswdChecker(lambda: self.model, self.run_hash)

    def load_model(self, ini: str = MINIMAL_INI, passwd: str | None = None) -> Model:
        return load(write_config(self.mktemp(), ini, passwd))

    def run_hash(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        self.calls.append((f, args))
        return defer.maybeDeferred(f, *args)

    def check(self, username: str, password: bytes) -> defer.Deferred[Principal]:
        return self.checker.requestAvatarId(BasicCredentials(username, password, SOURCE))

    def assertRefused(self, username: str, password: bytes) -> UnauthorizedLogin:
        failure = self.failureResultOf(self.check(username, password), UnauthorizedLogin)
        return failure.value

    def test_interface(self) -> None:
        """
        L{PasswdChecker} provides L{ICredentialsChecker} and accepts
        L{IBasicCredentials}.
        """
        self.assertTrue(verifyObject(ICredentialsChecker, self.checker))
        self.assertIn(IBasicCredentials, self.checker.credentialInterfaces)

    def test_rightPassword(self) -> None:
        """
        The right password gives a L{Principal} with the address as the file
        spells it and the file's display name, after exactly one hash check
        run through C{run_hash} (never on the caller's thread).
        """
        principal = self.successResultOf(self.check("Demo@Example.Test",
                                                    DEMO_PASSWORD.encode()))
        self.assertEqual(principal, Principal("Demo@Example.Test", "Demo User"))
        self.assertEqual(self.calls, [(verify_password, (BCRYPT_HASH, DEMO_PASSWORD.encode()))])

    def test_argon2User(self) -> None:
        """
        An argon2id entry of the file is checked like a bcrypt one
        (SECURITY.md section 8).
        """
        principal = self.successResultOf(self.check("argon@example.test",
                                                    ARGON2_PASSWORD.encode()))
        self.assertEqual(principal, Principal("argon@example.test", "Argon User"))
        self.assertRefused("argon@example.test", DEMO_PASSWORD.encode())

    def test_caseInsensitiveLookup(self) -> None:
        """
        The user is found whatever the case of domain and local part, and
        the principal keeps the file's spelling (PROTOCOLS.md section 11.4;
        SECURITY.md section 8).
        """
        for username in ("demo@example.test", "DEMO@EXAMPLE.TEST", "dEmO@eXaMpLe.TeSt",
                         "demo@example.test."):
            principal = self.successResultOf(self.check(username, DEMO_PASSWORD.encode()))
            self.assertEqual(principal.address, "Demo@Example.Test", username)

    def test_caseSensitiveLocalPart(self) -> None:
        """
        With case_sensitive_local = yes the local part must match exactly
        while the domain stays case-insensitive (SECURITY.md section 8).
        """
        ini = MINIMAL_INI.replace("passwd_file = users.passwd\n",
                                  "passwd_file = users.passwd\ncase_sensitive_local = yes\n")
        self.model = self.load_model(ini, f"Demo@example.test:{DEMO_HASH}:::Demo User\n")
        self.assertEqual(self.successResultOf(
            self.check("Demo@EXAMPLE.TEST", DEMO_PASSWORD.encode())).address,
            "Demo@example.test")
        self.assertRefused("demo@example.test", DEMO_PASSWORD.encode())

    def test_wrongPassword(self) -> None:
        """
        A wrong password fails with L{UnauthorizedLogin} after one hash
        check (SECURITY.md section 3.3).
        """
        self.assertRefused("Demo@Example.Test", b"wrong-password")
        self.assertEqual(len(self.calls), 1)

    def test_unknownUser(self) -> None:
        """
        An unknown user fails with L{UnauthorizedLogin} and still costs
        exactly one verification against a real hash of the file, so it
        takes as long as a wrong password (SECURITY.md section 3.3 (2)).
        """
        self.assertRefused("nobody@example.test", DEMO_PASSWORD.encode())
        self.assertEqual(len(self.calls), 1)
        function, (target, password) = self.calls[0]
        self.assertIs(function, verify_password)
        self.assertIn(target, (BCRYPT_HASH, ARGON2_HASH))
        self.assertEqual(password, DEMO_PASSWORD.encode())

    def test_unknownUserRightPasswordOfAnother(self) -> None:
        """
        An unknown user with the password of the entry used for the dummy
        check is still refused: the dummy result is thrown away
        (SECURITY.md section 3.3).
        """
        for password in (DEMO_PASSWORD.encode(), ARGON2_PASSWORD.encode()):
            self.assertRefused("nobody@example.test", password)
        self.assertEqual(len(self.calls), 2)

    def test_malformedUsername(self) -> None:
        """
        A user name that is not an address fails with L{UnauthorizedLogin}
        after the same single dummy verification (SECURITY.md section 3.3).
        """
        usernames = ("demo", "demo@", "@example.test", "de mo@example.test",
                     "demo@exa mple.test", "demo@" + "x" * 400 + ".test", "\x00")
        for username in usernames:
            self.assertRefused(username, DEMO_PASSWORD.encode())
        self.assertEqual(len(self.calls), len(usernames))

    def test_sameFailureForEveryCause(self) -> None:
        """
        Unknown user, wrong password, malformed user name and an over-long
        password fail identically (SECURITY.md section 3.3 (1)).
        """
        failures = [self.assertRefused("nobody@example.test", b"x"),
                    self.assertRefused("Demo@Example.Test", b"x"),
                    self.assertRefused("not-an-address", b"x"),
                    self.assertRefused("Demo@Example.Test", DEMO_PASSWORD.encode() * 10)]
        self.assertEqual({type(f) for f in failures}, {UnauthorizedLogin})
        self.assertEqual({str(f) for f in failures}, {str(failures[0])})

    def test_overlongPassword(self) -> None:
        """
        A password bcrypt cannot take (73 bytes) fails with
        L{UnauthorizedLogin}, not an error (SECURITY.md F9).
        """
        self.assertRefused("Demo@Example.Test", DEMO_PASSWORD.encode() + b"x" * 60)

    def test_emptyUserFile(self) -> None:
        """
        With an empty password file every login fails with
        L{UnauthorizedLogin}.
        """
        self.model = self.load_model(passwd="")
        self.assertRefused("demo@example.test", DEMO_PASSWORD.encode())

    def test_modelPerCheck(self) -> None:
        """
        Each check reads the model in force: a reloaded password file takes
        effect at the next check (SECURITY.md section 8).
        """
        self.successResultOf(self.check("demo@example.test", DEMO_PASSWORD.encode()))
        self.model = self.load_model(passwd=f"other@example.test:{DEMO_HASH}:::Other\n")
        self.assertRefused("demo@example.test", DEMO_PASSWORD.encode())
        principal = self.successResultOf(self.check("other@example.test",
                                                    DEMO_PASSWORD.encode()))
        self.assertEqual(principal, Principal("other@example.test", "Other"))


class HashingPoolTests(TestCase):
    """
    L{HashingPool} with the global reactor.
    """

    def test_runsOffTheReactorThread(self) -> None:
        """
        A started pool runs L{verify_password} on one of its own threads,
        not the reactor thread, and delivers the result (SECURITY.md
        sections 8 and 9: hashing never runs on the reactor thread).
        """
        pool = HashingPool(reactor, size=1)
        pool.startService()
        reactor_thread = threading.get_ident()

        def verify(password: bytes) -> tuple[int, bool]:
            return threading.get_ident(), verify_password(BCRYPT_HASH, password)

        d = defer.gatherResults([pool.run(verify, DEMO_PASSWORD.encode()),
                                 pool.run(verify, b"wrong-password")])

        def checked(results: list[tuple[int, bool]]) -> None:
            (thread, right), (_, wrong) = results
            self.assertNotEqual(thread, reactor_thread)
            self.assertIs(right, True)
            self.assertIs(wrong, False)

        def stop(result: object) -> object:
            pool.stopService()
            return result

        d.addCallback(checked)
        d.addBoth(stop)
        return d
