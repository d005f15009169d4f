"""
L{smartdiscover.client.main}: the command line's own checks, before any
lookup or connection: ports, time limits, the password and the CA file.
"""

from __future__ import annotations

import argparse
from io import StringIO
from pathlib import Path

from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.main import (
    UsageError,
    _port,
    _seconds,
    add_arguments,
    load_trust,
    read_password,
)
from smartdiscover.web.devcert import create_development_certificate


class ArgumentTests(SynchronousTestCase):
    """
    The values the options accept.
    """

    def test_ports(self) -> None:
        """
        1 to 65535 are ports; 0, 65536 and words are not.
        """
        self.assertEqual((_port("1"), _port("65535")), (1, 65535))
        for text in ("0", "65536", "-443"):
            self.assertRaises(argparse.ArgumentTypeError, _port, text)
        self.assertRaises(ValueError, _port, "https")

    def test_seconds(self) -> None:
        """
        Limits above 0 up to 300 seconds; not 0, negative, over 300, NaN
        or infinity.
        """
        self.assertEqual((_seconds("0.5"), _seconds("300")), (0.5, 300.0))
        for text in ("0", "-1", "300.1", "nan", "inf"):
            self.assertRaises(argparse.ArgumentTypeError, _seconds, text)

    def test_defaults(self) -> None:
        """
        Without options: standard ports, 10 s, first success only, no
        cross-domain credentials.
        """
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(["user@example.test"])
        self.assertEqual((args.port, args.http_port, args.timeout, args.all,
                          args.allow_cross_domain, args.resolver),
                         (443, 80, 10.0, False, False, None))


class PasswordTests(SynchronousTestCase):
    """
    L{read_password} with --password-stdin.
    """

    def test_first_line(self) -> None:
        """
        The first line, without its line end, is the password; spaces are
        kept.
        """
        self.assertEqual(read_password(True, "u@example.test", StringIO(" pw \r\nnext\n")),
                         " pw ")
        self.assertEqual(read_password(True, "u@example.test", StringIO("last")), "last")

    def test_empty_input_is_no_password(self) -> None:
        """
        Standard input that ends before any line is no password (EOFError,
        as at the terminal), not the empty password.
        """
        self.assertRaises(EOFError, read_password, True, "u@example.test", StringIO(""))


class TrustTests(SynchronousTestCase):
    """
    L{load_trust} reads --ca.
    """

    def test_missing_file(self) -> None:
        """
        A file that cannot be read is a usage error naming it.
        """
        path = self.mktemp()
        error = self.assertRaises(UsageError, load_trust, path)
        self.assertIn(f"cannot read {path}", str(error))

    def test_not_pem(self) -> None:
        """
        A file without a PEM certificate is a usage error.
        """
        path = Path(self.mktemp())
        path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        error = self.assertRaises(UsageError, load_trust, str(path))
        self.assertIn("holds no PEM certificate", str(error))
        path.write_bytes(b"\xff\xfe binary")
        self.assertRaises(UsageError, load_trust, str(path))

    def test_certificates(self) -> None:
        """
        A PEM file with a certificate gives a trust root for verification.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        create_development_certificate(directory / "ca.crt", directory / "ca.key",
                                       ["mail.example.test"])
        self.assertTrue(IOpenSSLTrustRoot.providedBy(load_trust(str(directory / "ca.crt"))))
