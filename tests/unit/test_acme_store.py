"""
Tests for L{smartdiscover.certs.acme.store}: the ACME state directory's
modes, atomic writes and the detection of corrupted files.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.certs.acme import store as store_module
from smartdiscover.certs.acme.store import (
    Account,
    AcmeStore,
    StateError,
    check_label,
    generate_account_key,
    write_atomically,
)

DIRECTORY = "https://acme.example.test/directory"


def certificate(names: list[str], key: ec.EllipticCurvePrivateKey | None = None,
                not_before: datetime | None = None, days: float = 90,
                issuer_key: ec.EllipticCurvePrivateKey | None = None
                ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """
    A certificate for C{names}, valid for C{days} from C{not_before}.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    not_before = not_before or datetime.now(timezone.utc) - timedelta(hours=1)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    built = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(not_before).not_valid_after(not_before + timedelta(days=days))
             .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False)
             .sign(issuer_key or key, hashes.SHA256()))
    return built, key


class StoreTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.state = Path(self.mktemp())
        self.state.mkdir()
        self.store = AcmeStore(self.state).open()
        previous = os.umask(0)  # the store's modes must not depend on it
        self.addCleanup(os.umask, previous)


class ModeTests(StoreTestCase):
    def test_directories(self) -> None:
        """
        The store's directories are 0700, also when they were there with a
        looser mode (systemd makes a StateDirectory 0755).
        """
        self.store.certificates.chmod(0o755)
        AcmeStore(self.state).open()
        for directory in (self.store.root, self.store.accounts, self.store.certificates):
            self.assertEqual(directory.stat().st_mode & 0o777, 0o700, directory)

    def test_files(self) -> None:
        """
        The account and every certificate are 0600 whatever the umask.
        """
        self.store.save_account(Account(DIRECTORY, generate_account_key()))
        leaf, key = certificate(["a.example.test"])
        self.store.save_certificate("a", key, [leaf])
        for path in (self.store.account_path(DIRECTORY), self.store.certificate_path("a")):
            self.assertEqual(path.stat().st_mode & 0o777, 0o600, path)

    def test_not_a_directory(self) -> None:
        """
        A file where the store's directory should be: a clear error.
        """
        state = Path(self.mktemp())
        state.mkdir()
        (state / "acme").write_text("")
        error = self.assertRaises(StateError, AcmeStore(state).open)
        self.assertIn(str(state / "acme"), str(error))


class RoundTripTests(StoreTestCase):
    def test_account(self) -> None:
        """
        An account reads back as written.
        """
        key = generate_account_key()
        account = Account(DIRECTORY, key, "https://acme.example.test/acct/1",
                          ("mailto:a@example.test",), "https://acme.example.test/terms",
                          {"status": "valid"})
        self.store.save_account(account)
        loaded = self.store.load_account(DIRECTORY)
        assert loaded is not None
        self.assertEqual((loaded.uri, loaded.contact, loaded.terms_of_service,
                          loaded.registration),
                         (account.uri, account.contact, account.terms_of_service,
                          account.registration))
        self.assertEqual(loaded.key.private_numbers(), key.private_numbers())  # type: ignore[union-attr]

    def test_no_account(self) -> None:
        """
        No file: no account (and an account of another CA is another file).
        """
        self.store.save_account(Account(DIRECTORY, generate_account_key()))
        self.assertIsNone(self.store.load_account("https://other.example.test/dir"))

    def test_certificate(self) -> None:
        """
        A key and its chain read back as one, leaf first.
        """
        issuer, issuer_key = certificate(["ca.example.test"])
        leaf, key = certificate(["a.example.test", "b.example.test"], issuer_key=issuer_key)
        self.store.save_certificate("a", key, [leaf, issuer])
        loaded = self.store.load_certificate("a")
        assert loaded is not None
        self.assertEqual(loaded.chain, (leaf, issuer))
        self.assertEqual(loaded.names, ("a.example.test", "b.example.test"))
        self.assertEqual(loaded.not_after, leaf.not_valid_after_utc)
        self.assertEqual(self.store.labels(), ["a"])
        self.assertIsNone(self.store.load_certificate("b"))

    def test_repr_without_keys(self) -> None:
        """
        A stored certificate or an account in a traceback or a log line
        (a failed test's message, a renewal error) shows no private key.
        """
        leaf, key = certificate(["a.example.test"])
        stored = self.store.save_certificate("a", key, [leaf])
        self.assertIn("a.example.test", repr(stored))
        account = Account(DIRECTORY, generate_account_key())
        for value in (stored, account):
            self.assertNotIn("PRIVATE KEY", repr(value))
            self.assertNotIn("key=", repr(value))
        secret = stored.key_pem.splitlines()[1].decode()
        self.assertNotIn(secret, repr(stored))

    def test_refuses_mismatched_key(self) -> None:
        """
        A key that is not the leaf's is never written.
        """
        leaf, _ = certificate(["a.example.test"])
        other = ec.generate_private_key(ec.SECP256R1())
        self.assertRaises(ValueError, self.store.save_certificate, "a", other, [leaf])
        self.assertFalse(self.store.certificate_path("a").exists())

    def test_labels(self) -> None:
        """
        A label names a file in the store and nothing else.
        """
        for label in ("../escape", "a/b", "", ".hidden", "x" * 65, "é"):
            self.assertRaises(ValueError, check_label, label)
            self.assertRaises(ValueError, self.store.certificate_path, label)
        self.assertEqual(check_label("mail.example-1_2"), "mail.example-1_2")


class AtomicWriteTests(StoreTestCase):
    def test_failed_rename_keeps_old(self) -> None:
        """
        A write that fails before the rename (a crash, a full disk) leaves
        the old bytes and no temporary file.
        """
        path = self.store.certificates / "x.pem"
        write_atomically(path, b"old")

        def broken(*args: Any) -> None:
            raise OSError(28, "No space left on device")
        self.patch(store_module.os, "replace", broken)
        self.assertRaises(OSError, write_atomically, path, b"new")
        self.assertEqual(path.read_bytes(), b"old")
        self.assertEqual(sorted(p.name for p in self.store.certificates.iterdir()), ["x.pem"])

    def test_flushes_file_and_directory(self) -> None:
        """
        The data is flushed before the rename, and the directory after.
        """
        path = self.store.certificates / "x.pem"
        calls: list[str] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            calls.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
            real_fsync(fd)

        def replace(source: Any, target: Any) -> None:
            calls.append("replace")
            real_replace(source, target)
        self.patch(store_module.os, "fsync", fsync)
        self.patch(store_module.os, "replace", replace)
        write_atomically(path, b"new")
        self.assertEqual(calls, ["fsync-file", "replace", "fsync-dir"])

    def test_leftovers_removed(self) -> None:
        """
        Temporary files an interrupted write left are removed at open and
        never read as state.
        """
        leftover = self.store.certificates / ".tmp-a.pem.123.abcd"
        leftover.write_bytes(b"half")
        AcmeStore(self.state).open()
        self.assertFalse(leftover.exists())
        self.assertEqual(self.store.labels(), [])


class CorruptionTests(StoreTestCase):
    def assert_corrupted(self, path: Path, load: Any) -> None:
        error = self.assertRaises(StateError, load)
        self.assertIn(str(path), str(error))

    def test_certificate_files(self) -> None:
        """
        Every way a certificate file can be broken is reported with its
        path, never returned as a certificate.
        """
        leaf, key = certificate(["a.example.test"])
        self.store.save_certificate("a", key, [leaf])
        path = self.store.certificate_path("a")
        good = path.read_bytes()
        other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        cases = {
            "empty": b"",
            "truncated": good[: len(good) // 2],
            "garbage": os.urandom(300),
            "key only": good[: good.index(b"-----BEGIN CERTIFICATE")],
            "certificate only": good[good.index(b"-----BEGIN CERTIFICATE"):],
            "another key": other_key + good[good.index(b"-----BEGIN CERTIFICATE"):],
            "oversize": good + b"\n" * store_module.MAX_FILE_BYTES,
        }
        for case, data in cases.items():
            path.write_bytes(data)
            error = self.assertRaises(StateError, self.store.load_certificate, "a")
            self.assertIn(str(path), str(error), case)

    def test_account_files(self) -> None:
        """
        A broken account file is reported with its path.
        """
        self.store.save_account(Account(DIRECTORY, generate_account_key()))
        path = self.store.account_path(DIRECTORY)
        good = path.read_text()
        for data in ["", "{", "[]", good.replace(DIRECTORY, "https://other.test/"),
                     good.replace("BEGIN PRIVATE KEY", "BEGIN"), '{"directory": "%s"}' % DIRECTORY,
                     good.replace('"uri": null', '"uri": 5')]:
            path.write_text(data)
            self.assert_corrupted(path, lambda: self.store.load_account(DIRECTORY))

    def test_symlink_and_directory(self) -> None:
        """
        A symbolic link or a directory in a file's place is not followed.
        """
        path = self.store.certificate_path("a")
        target = self.state / "elsewhere.pem"
        leaf, key = certificate(["a.example.test"])
        self.store.save_certificate("b", key, [leaf])
        target.write_bytes(self.store.certificate_path("b").read_bytes())
        path.symlink_to(target)
        self.assert_corrupted(path, lambda: self.store.load_certificate("a"))
        path.unlink()
        path.mkdir()
        self.assert_corrupted(path, lambda: self.store.load_certificate("a"))
