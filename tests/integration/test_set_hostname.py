"""
Tests for "Set New Hostname For All": the text rewrite
L{smartdiscover.config.hostname.rename_host} and the command
C{smartdiscover set-hostname}.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


import smartdiscover
from smartdiscover.config import load
from tests.helpers import write_config
from tests.integration import SynchronousTestCase

# The checkout: the directory that holds the smartdiscover package.
CHECKOUT = Path(smartdiscover.__file__).resolve().parent.parent

OLD = "mail.example.test"
NEW = "mx.example.test"

# One INI text, line by line: a plain string is a line that renaming OLD to
# NEW must leave alone; a pair is (the line as written, the line renamed).
# The text need not validate: rename_host is pure text.
LINES: list[str | tuple[str, str]] = [
    "; mail.example.test in a full-line ; comment",
    "# and https://mail.example.test/ in a # comment",
    "",
    "[server]",
    ("public_hostname = mail.example.test", "public_hostname = mx.example.test"),
    "domains = example.test,",
    "    mail.example.test",
    "redirect_domains = mail.example.test",
    "https = ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt",
    "   ; an indented comment: host = mail.example.test",
    "",
    "[auth]",
    "passwd_file = mail.example.test",
    "",
    "[imap]",
    ("host = mail.example.test ; inline comment naming mail.example.test",
     "host = mx.example.test ; inline comment naming mail.example.test"),
    "hostname = mail.example.test",
    "security = ssl",
    "  host = mail.example.test",
    "",
    "[pop3]",
    ("host: mail.example.test", "host: mx.example.test"),
    "port = 995",
    "",
    "",
    "[smtp]",
    ("host=mail.example.test", "host=mx.example.test"),
    "security = mail.example.test",
    "",
    "[xmpp]",
    ("host\t =  \tmail.example.test\t# a tab before the comment",
     "host\t =  \tmx.example.test\t# a tab before the comment"),
    "",
    "[sip]",
    "host = mail.example.test.evil",
    "transport = tls",
    "",
    "[urls]",
    ("ews = https://mail.example.test/EWS/Exchange.asmx ; on the old host",
     "ews = https://mx.example.test/EWS/Exchange.asmx ; on the old host"),
    ("webclient = https://user:secret@mail.example.test:8443/web/mail.example.test/"
     "?host=mail.example.test&x=1#mail.example.test",
     "webclient = https://user:secret@mx.example.test:8443/web/mail.example.test/"
     "?host=mail.example.test&x=1#mail.example.test"),
    ("caldav: http://mail.example.test:8080/cal/", "caldav: http://mx.example.test:8080/cal/"),
    ("syncml=https://mail.example.test", "syncml=https://mx.example.test"),
    "carddav = https://xmail.example.test/card/",
    "webdav = https://mail.example.test.evil/dav/",
    "freebusy = https://mail.example.test@evil.example/fb/",
    "webadmin = https://evil.example/?next=https://mail.example.test/",
    "install = /install/mail.example.test",
    "sms = ftp://mail.example.test/sms",
    "ical = https://[::1]/ical",
    "host = mail.example.test",
    "",
    "[domain:example.org]",
    ("server.public_hostname = mail.example.test", "server.public_hostname = mx.example.test"),
    "server.ttl = mail.example.test",
    ("imap.host = mail.example.test", "imap.host = mx.example.test"),
    ("sip.host : mail.example.test", "sip.host : mx.example.test"),
    "smtp.host = smtp.example.org",
    "urls.host = mail.example.test",
    "imap.hostname = mail.example.test",
    ("urls.ews = https://mail.example.test/org/EWS/Exchange.asmx",
     "urls.ews = https://mx.example.test/org/EWS/Exchange.asmx"),
    "",
    "[redirectAddr]",
    "jane@example.test = jane@mail.example.test",
    "",
    "[redirectUrl]",
    ("bob@example.test = https://mail.example.test/autodiscover/autodiscover.xml",
     "bob@example.test = https://mx.example.test/autodiscover/autodiscover.xml"),
    "eve@example.test = https://ad.example.org/autodiscover/autodiscover.xml",
    "",
    "[elsewhere]",
    "host = mail.example.test",
]


class SetHostnameProcessTests(SynchronousTestCase):
    """
    C{python -m smartdiscover.cli set-hostname} as a separate process.
    """

    def test_renames(self) -> None:
        """
        Run as a program, the command exits with status 0, prints the diff
        and the written line on stdout and nothing on stderr, and the file
        loads with the new host.
        """
        path = write_config(self.mktemp()).absolute()
        result = subprocess.run(
            [sys.executable, "-m", "smartdiscover.cli", "set-hostname", NEW,
             "--config", str(path)],
            cwd=CHECKOUT, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        self.assertEqual(lines[:2], [f"--- {path}", f"+++ {path}"])
        self.assertIn("-public_hostname = mail.example.test", lines)
        self.assertIn("+public_hostname = mx.example.test", lines)
        self.assertEqual(lines[-1],
                         f"{path}: written; send SIGHUP to the running service to apply it")
        self.assertEqual(load(path).public_hostname, NEW)
