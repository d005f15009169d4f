"""
Tests for L{smartdiscover.config.edit}: a new text validated as the file,
written in one step, never over a change made since it was read.
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import ConfigError
from smartdiscover.config.edit import (
    FileChanged,
    digest,
    read_text,
    set_values,
    unified_diff,
    validate_text,
    write_text,
)
from tests.helpers import MINIMAL_INI, edit, write_config


class EditTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.config = write_config(self.mktemp())
        os.chmod(self.config, 0o640)

    def test_write_keeps_mode_and_checks_digest(self) -> None:
        text = read_text(self.config)
        write_text(self.config, text + "; a comment\n", expected=digest(text))
        self.assertEqual(self.config.stat().st_mode & 0o777, 0o640)
        self.assertTrue(read_text(self.config).endswith("; a comment\n"))
        self.assertRaises(FileChanged, write_text, self.config, text, expected=digest(text))
        self.assertTrue(read_text(self.config).endswith("; a comment\n"))
        leftovers = [p for p in Path(self.config.parent).iterdir() if p.name.startswith(".sd-")]
        self.assertEqual(leftovers, [])

    def test_validate_names_the_file(self) -> None:
        error = self.assertRaises(ConfigError, validate_text, self.config,
                                  edit("ttl = 1", "ttl = lots", MINIMAL_INI))
        self.assertEqual([(p.file, p.key) for p in error.problems],
                         [(str(self.config.absolute()), "ttl")])
        self.assertEqual(validate_text(self.config, MINIMAL_INI).public_hostname,
                         "mail.example.test")
        leftovers = [p for p in Path(self.config.parent).iterdir() if p.name.startswith(".sd-")]
        self.assertEqual(leftovers, [])

    def test_diff(self) -> None:
        diff = unified_diff(self.config, "a\nb\n", "a\nc")
        self.assertIn("-b\n+c\n\\ No newline at end of file\n", diff)


class SetValuesTests(SynchronousTestCase):
    TEXT = ("; the file\n[server]\npublic_hostname = mail.example.test   ; ours\n"
            "domains = example.test,\n    example.org\n\n[imap]\nhost = mail.example.test\n"
            "# end\n")

    def test_replace_keeps_comment_and_place(self) -> None:
        result = set_values(self.TEXT, {("server", "public_hostname"): "mx.example.test"})
        self.assertEqual(result, self.TEXT.replace("mail.example.test   ; ours",
                                                   "mx.example.test   ; ours"))

    def test_continuation_lines_go(self) -> None:
        result = set_values(self.TEXT, {("server", "domains"): "example.test"})
        self.assertIn("domains = example.test\n\n[imap]", result)
        self.assertNotIn("example.org", result)

    def test_remove_add_and_new_section(self) -> None:
        result = set_values(self.TEXT, {("imap", "host"): None, ("imap", "port"): "993",
                                        ("server", "ttl"): "2",
                                        ("urls", "webclient"): "https://mail.example.test/"})
        self.assertEqual(result, (
            "; the file\n[server]\npublic_hostname = mail.example.test   ; ours\n"
            "domains = example.test,\n    example.org\nttl = 2\n\n[imap]\nport = 993\n"
            "# end\n\n[urls]\nwebclient = https://mail.example.test/\n"))

    def test_crlf_kept(self) -> None:
        text = self.TEXT.replace("\n", "\r\n")
        result = set_values(text, {("imap", "host"): "imap.example.test",
                                   ("imap", "port"): "993"})
        self.assertNotIn("\n", result.replace("\r\n", ""))
        self.assertIn("host = imap.example.test\r\nport = 993\r\n", result)

    def test_refused_values(self) -> None:
        for value in ("a\nb", "a\rb", "x ; injected", "x # comment", "; all"):
            self.assertRaises(ValueError, set_values, self.TEXT, {("imap", "host"): value})

    def test_nothing_to_change(self) -> None:
        self.assertEqual(set_values(self.TEXT, {}), self.TEXT)
        self.assertEqual(set_values(self.TEXT, {("imap", "nothing"): None}), self.TEXT)
