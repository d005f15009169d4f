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
