"""
Tests for "Set New Hostname For All": the text rewrite
L{smartdiscover.config.hostname.rename_host} and the command
C{smartdiscover set-hostname}.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import smartdiscover
from smartdiscover import cli
from smartdiscover.config import load
from smartdiscover.config.hostname import hosts_entries, mentions, rename_host
from smartdiscover.web.devcert import create_development_certificate, development_names
from tests.helpers import MINIMAL_INI, write_config

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
    ("pop3.host = pop.example.org,mail.example.test ,  mail.example.test.evil",
     "pop3.host = pop.example.org,mx.example.test ,  mail.example.test.evil"),
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
    "",
    "[dns]",
    ("nameservers = mail.example.test,ns2.example.org",
     "nameservers = mx.example.test,ns2.example.org"),
    ("mx = 10 mail.example.test , 20  backup.example.test, 30\tmail.example.test ; two",
     "mx = 10 mx.example.test , 20  backup.example.test, 30\tmx.example.test ; two"),
    "hostmaster = hostmaster@mail.example.test",
    "tcp_idle = 10",
    "",
    "[hosts]",
    "; mail.example.test = 192.0.2.99 (commented out)",
    ("mail.example.test = 192.0.2.1, 2001:db8::1 ; the machine",
     "mx.example.test = 192.0.2.1, 2001:db8::1 ; the machine"),
    "autodiscover.example.test = 192.0.2.1",
    "mail.example.test.evil = 192.0.2.9",
    "xmail.example.test = mail.example.test",
]


def _text(which: int, eol: str = "\n") -> str:
    return "".join((line if isinstance(line, str) else line[which]) + eol for line in LINES)


ORIGINAL = _text(0)
RENAMED = _text(1)

# A valid configuration with a [domain:] override, a redirect, an explicit
# port, a bare path and hosts that must stay as they are.
RICH_INI = """\
; A configuration with overrides, redirects and every kind of host field.
[server]
public_hostname = mail.example.test
domains = example.test, example.org
https = ssl:8443:privateKey=tls/server.key:certKey=tls/server.crt
ttl = 1

[auth]
backend = passwd
passwd_file = users.passwd

[imap]
host = mail.example.test  ; the mail store
security = ssl

[smtp]
host = smtp.example.test
port = 587
security = starttls

[sip]
host: mail.example.test
transport = tls

[urls]
ews = https://mail.example.test:8443/EWS/Exchange.asmx
webclient = /webmail/
caldav = https://dav.example.test/cal/?user=mail.example.test

[domain:example.org]
server.public_hostname = mail.example.org
imap.host = mail.example.test
urls.ews = https://mail.example.test/org/EWS/Exchange.asmx

[redirectUrl]
jane@example.test = https://ad.example.org/autodiscover/autodiscover.xml
"""

# The lines of MINIMAL_INI that name mail.example.test, and the same lines
# after renaming it to mx.example.test.
MINIMAL_OLD_LINES = [
    "public_hostname = mail.example.test",
    "host = mail.example.test",
    "host = mail.example.test",
    "host = mail.example.test",
    "ews = https://mail.example.test/EWS/Exchange.asmx",
    "webclient = https://mail.example.test/webmail/",
]
MINIMAL_NEW_LINES = [line.replace(OLD, NEW) for line in MINIMAL_OLD_LINES]


class RenameHostTests(SynchronousTestCase):
    """
    L{rename_host} rewrites host fields and URL hosts in INI text and
    nothing else.
    """

    def test_fixture(self) -> None:
        """
        The fixture is what the other tests assume: it has lines to rename,
        and it does not name the new host before renaming.
        """
        self.assertNotEqual(ORIGINAL, RENAMED)
        self.assertNotIn(NEW, ORIGINAL)

    def test_renames_every_host_field_and_url(self) -> None:
        """
        [server] public_hostname, every service C{host}, the [domain:]
        C{server.public_hostname} and C{SERVICE.host} keys, the items of
        host lists (a service's hosts, [dns] C{nameservers}, the hosts of
        [dns] C{mx}), the name of the host's own [hosts] entry, and the host
        of every http(s) URL in [urls], [domain:] C{urls.*} and
        [redirectUrl] are renamed, keeping separator, spacing, inline
        comment, scheme, port, userinfo, path, query, fragment and the
        entry's addresses; every other line (comments, blank lines,
        continuation lines, look-alike hosts, keys that are not host fields,
        other [hosts] entries, the hostmaster address) stays as it is.
        """
        self.assertEqual(rename_host(ORIGINAL, OLD, NEW).splitlines(), RENAMED.splitlines())
        self.assertEqual(rename_host(ORIGINAL, OLD, NEW), RENAMED)

    def test_round_trip(self) -> None:
        """
        Renaming A to B and then B to A gives back the original text, byte
        for byte, for a text that did not use B.
        """
        there = rename_host(ORIGINAL, OLD, NEW)
        self.assertNotEqual(there, ORIGINAL)
        self.assertEqual(rename_host(there, NEW, OLD), ORIGINAL)

    def test_crlf(self) -> None:
        """
        CRLF line endings are kept on every line, renamed or not, and the
        round trip gives back the original.
        """
        original, renamed = _text(0, "\r\n"), _text(1, "\r\n")
        self.assertEqual(rename_host(original, OLD, NEW), renamed)
        self.assertEqual(rename_host(renamed, NEW, OLD), original)

    def test_mixed_line_endings_and_no_final_newline(self) -> None:
        """
        Each line keeps its own ending, and a last line without a newline
        gets none.
        """
        text = ("[server]\r\npublic_hostname = mail.example.test\n"
                "domains = example.test\r\n[imap]\nhost = mail.example.test")
        self.assertEqual(rename_host(text, OLD, NEW),
                         "[server]\r\npublic_hostname = mx.example.test\n"
                         "domains = example.test\r\n[imap]\nhost = mx.example.test")

    def test_unused_host(self) -> None:
        """
        A text that does not use the old host is returned unchanged, even
        when it names a host that ends with it or a domain it ends with.
        """
        for old in ("other.example.test", "example.test", "xample.test",
                    "ail.example.test", "mail.example"):
            self.assertEqual(rename_host(ORIGINAL, old, NEW), ORIGINAL, old)
            self.assertEqual(rename_host(MINIMAL_INI, old, NEW), MINIMAL_INI, old)

    def test_letter_case(self) -> None:
        """
        Host names are compared case-insensitively: a host key or URL that
        writes the old host in other letter case, or with a trailing dot, is
        renamed, and so is one matched by an old host given in capitals.
        """
        text = ("[server]\npublic_hostname = MAIL.Example.TEST\n"
                "[imap]\nhost = mail.example.test.\n"
                "[urls]\news = https://Mail.EXAMPLE.test:8443/EWS/Exchange.asmx\n")
        expected = ("[server]\npublic_hostname = mx.example.test\n"
                    "[imap]\nhost = mx.example.test\n"
                    "[urls]\news = https://mx.example.test:8443/EWS/Exchange.asmx\n")
        self.assertEqual(rename_host(text, OLD, NEW), expected)
        self.assertEqual(rename_host(text, "MAIL.EXAMPLE.TEST", NEW), expected)

    def test_idna(self) -> None:
        """
        An internationalised host and its punycode form are the same host,
        whichever form the file and the old host use.
        """
        text = ("[server]\npublic_hostname = xn--mil-qla.example.test\n"
                "[imap]\nhost = m\u00e4il.example.test\n"
                "[domain:example.org]\nsmtp.host = M\u00c4IL.example.test\n"
                "[urls]\news = https://m\u00e4il.example.test/EWS/Exchange.asmx\n"
                "webclient = https://XN--MIL-QLA.example.test/webmail/\n")
        expected = ("[server]\npublic_hostname = mx.example.test\n"
                    "[imap]\nhost = mx.example.test\n"
                    "[domain:example.org]\nsmtp.host = mx.example.test\n"
                    "[urls]\news = https://mx.example.test/EWS/Exchange.asmx\n"
                    "webclient = https://mx.example.test/webmail/\n")
        for old in ("m\u00e4il.example.test", "xn--mil-qla.example.test",
                    "M\u00c4IL.Example.Test"):
            self.assertEqual(rename_host(text, old, NEW), expected, old)

    def test_look_alike_hosts(self) -> None:
        """
        A host that merely contains, starts or ends with the old host name,
        or a URL that names it outside its host part, is not renamed.
        """
        hosts = ["mail.example.test.evil", "xmail.example.test", "mail-example.test",
                 "mail.example.testx", "mail.example.tes", "amail.example.test"]
        lines = ["[server]"] + [f"public_hostname = {h}" for h in hosts[:1]]
        lines += ["[imap]"] + [f"host = {h}" for h in hosts[1:2]]
        lines += ["[domain:example.org]"] + [f"imap.host = {h}" for h in hosts[2:3]]
        lines += ["[urls]"] + [f"ews = https://{h}/EWS/Exchange.asmx" for h in hosts]
        lines += ["webclient = https://mail.example.test@evil.example/webmail/",
                  "caldav = https://evil.example/mail.example.test/",
                  "carddav = https://evil.example/?host=mail.example.test",
                  "webdav = https://evil.example/#mail.example.test",
                  "freebusy = https://mail.example.test%2eevil.example/",
                  "ical = //mail.example.test/ical",
                  "sms = mailto:admin@mail.example.test"]
        text = "\n".join(lines) + "\n"
        self.assertEqual(rename_host(text, OLD, NEW), text)

    def test_other_keys_untouched(self) -> None:
        """
        A key whose value equals the old host but that is not a host field
        (in a host section, in a [domain:] section, or in a section that has
        no host fields) is left alone.
        """
        text = ("[server]\ndomains = mail.example.test\nhost = mail.example.test\n"
                "imap.host = mail.example.test\n"
                "[auth]\npasswd_file = mail.example.test\n"
                "[imap]\nsecurity = mail.example.test\nhostname = mail.example.test\n"
                "public_hostname = mail.example.test\n"
                "[smtps]\nhost = mail.example.test\n"
                "[urls]\nhost = mail.example.test\n"
                "[domain:example.org]\nserver.domains = mail.example.test\n"
                "urls.host = mail.example.test\nimap.port = mail.example.test\n"
                "host = mail.example.test\npublic_hostname = mail.example.test\n"
                "[redirectAddr]\njane@example.test = jane@mail.example.test\n"
                "mail.example.test = mail.example.test\n")
        self.assertEqual(rename_host(text, OLD, NEW), text)

    def test_trailing_whitespace_kept(self) -> None:
        """
        Whitespace after a renamed host value (before the end of the line)
        is kept, so the round trip gives back the original bytes.
        """
        text = ("[server]\npublic_hostname = mail.example.test  \n"
                "[imap]\nhost = mail.example.test\t\r\n"
                "[urls]\news = https://mail.example.test/EWS/Exchange.asmx \n")
        expected = ("[server]\npublic_hostname = mx.example.test  \n"
                    "[imap]\nhost = mx.example.test\t\r\n"
                    "[urls]\news = https://mx.example.test/EWS/Exchange.asmx \n")
        self.assertEqual(rename_host(text, OLD, NEW), expected)
        self.assertEqual(rename_host(expected, NEW, OLD), text)

    def test_url_spelling_kept(self) -> None:
        """
        Only the host part of a URL changes: the scheme keeps its letter
        case, and an empty query or fragment marker is not dropped.
        """
        for before, after in [
            ("HTTPS://mail.example.test/EWS/Exchange.asmx",
             "HTTPS://mx.example.test/EWS/Exchange.asmx"),
            ("Http://mail.example.test:8080/x", "Http://mx.example.test:8080/x"),
            ("https://mail.example.test/webmail/?", "https://mx.example.test/webmail/?"),
            ("https://mail.example.test/webmail/#", "https://mx.example.test/webmail/#"),
        ]:
            self.assertEqual(rename_host(f"[urls]\news = {before}\n", OLD, NEW),
                             f"[urls]\news = {after}\n", before)

    def test_indented_keys(self) -> None:
        """
        A key written indented at the start of a section (configparser and
        the loader read it as a key, not as a continuation line) is renamed
        like any other; an indented line after a key is a continuation and
        stays as it is.
        """
        text = ("[server]\n  public_hostname = mail.example.test\n  domains = example.test\n"
                "[imap]\n    host = mail.example.test\n    security = ssl\n"
                "        host = mail.example.test\n")
        expected = ("[server]\n  public_hostname = mx.example.test\n  domains = example.test\n"
                    "[imap]\n    host = mx.example.test\n    security = ssl\n"
                    "        host = mail.example.test\n")
        self.assertEqual(rename_host(text, OLD, NEW), expected)

    def test_byte_order_mark(self) -> None:
        """
        A text that starts with a UTF-8 byte order mark (which the loader
        accepts) before its first section header is renamed like one
        without, and keeps the mark.
        """
        text = "\ufeff[server]\npublic_hostname = mail.example.test\n"
        self.assertEqual(rename_host(text, OLD, NEW),
                         "\ufeff[server]\npublic_hostname = mx.example.test\n")

    def test_hosts_entry_renamed_in_place(self) -> None:
        """
        The [hosts] entry of the old host becomes the new host's, on the
        same line: separator, addresses and inline comment
        kept, the entries around it and the comments in order, whatever
        letter case, trailing dot or IDNA form the key is written in.
        """
        for key in ("mail.example.test", "MAIL.Example.Test", "mail.example.test.",
                    "Mail.EXAMPLE.test"):
            text = ("[hosts]\n; first the machine\nautoconfig.example.test = 192.0.2.2\n"
                    f"{key}\t:  192.0.2.1,2001:db8::1   # the machine\n"
                    "autodiscover.example.test = 192.0.2.1\n")
            self.assertEqual(
                rename_host(text, OLD, NEW),
                "[hosts]\n; first the machine\nautoconfig.example.test = 192.0.2.2\n"
                f"{NEW}\t:  192.0.2.1,2001:db8::1   # the machine\n"
                "autodiscover.example.test = 192.0.2.1\n", key)
        idn = "[hosts]\nm\u00e4il.example.test = 192.0.2.1\n"
        for old in ("xn--mil-qla.example.test", "M\u00c4IL.example.test"):
            self.assertEqual(rename_host(idn, old, NEW), f"[hosts]\n{NEW} = 192.0.2.1\n")

    def test_hosts_entry_of_new_host_kept(self) -> None:
        """
        When [hosts] already has an entry for the new host (in any
        spelling), both entries stay as written: the administrator said
        where the new name is, and the old name keeps its addresses; every
        other field is renamed all the same.
        """
        for spelling in (NEW, "MX.example.TEST", "mx.example.test."):
            text = ("[server]\npublic_hostname = mail.example.test\n"
                    "[hosts]\nmail.example.test = 192.0.2.1\n"
                    f"{spelling} = 192.0.2.50\n")
            self.assertEqual(rename_host(text, OLD, NEW),
                             text.replace("public_hostname = mail.example.test",
                                          "public_hostname = mx.example.test"), spelling)

    def test_hosts_entry_look_alikes(self) -> None:
        """
        Only the entry named exactly the old host is renamed: not a
        look-alike key, not a value naming it, not a key outside [hosts],
        not a commented-out entry.
        """
        text = ("[hosts]\nmail.example.test.evil = 192.0.2.1\nxmail.example.test = 192.0.2.2\n"
                "mail.example = 192.0.2.3\nother.example.test = mail.example.test\n"
                ";mail.example.test = 192.0.2.4\n"
                "[elsewhere]\nmail.example.test = 192.0.2.5\n"
                "[dns]\nmail.example.test = 192.0.2.6\n")
        self.assertEqual(rename_host(text, OLD, NEW), text)

    def test_host_lists(self) -> None:
        """
        In a list of hosts (a service's C{host}, a [domain:] C{SERVICE.host},
        [dns] C{nameservers}, the hosts of [dns] C{mx}), each item that is
        the old host is renamed, in any spelling, with every comma and space
        kept; so is an item on a continuation line of such a list; look-alike
        items, MX preferences and continuation lines of other keys stay.
        """
        text = ("[server]\ndomains = example.test,\n  mail.example.test\n"
                "[imap]\nhost = imap1.example.test,  MAIL.example.test.\t, mail.example.tes\n"
                "[smtp]\nhost = smtp.example.test,\n    mail.example.test ; second\n"
                "port = 587\n"
                "[domain:example.org]\nsmtp.host = mail.example.test,smtp.example.org\n"
                "smtp.port = 587\n"
                "[dns]\nnameservers =mail.example.test\nmx = 10 mail.example.test,\n"
                "  20 mail.example.test.evil, 30 mail.example.test\n"
                "hostmaster = root@mail.example.test\n")
        expected = ("[server]\ndomains = example.test,\n  mail.example.test\n"
                    "[imap]\nhost = imap1.example.test,  mx.example.test\t, mail.example.tes\n"
                    "[smtp]\nhost = smtp.example.test,\n    mx.example.test ; second\n"
                    "port = 587\n"
                    "[domain:example.org]\nsmtp.host = mx.example.test,smtp.example.org\n"
                    "smtp.port = 587\n"
                    "[dns]\nnameservers =mx.example.test\nmx = 10 mx.example.test,\n"
                    "  20 mail.example.test.evil, 30 mx.example.test\n"
                    "hostmaster = root@mail.example.test\n")
        self.assertEqual(rename_host(text, OLD, NEW), expected)
        self.assertEqual(rename_host(text, "10", NEW), text)  # a preference is no host

    def test_records(self) -> None:
        """
        In [records], the targets of CNAME, MX and SRV records that are the
        old host are renamed, on the key's line and on continuation lines,
        with the spacing kept; a key whose name is the old host is renamed
        (its type and data kept) unless the new host has a key of that
        type already; TXT and CAA data, look-alikes, owners below the host
        and other fields of a record stay as written.
        """
        text = ("[records]\n"
                "www.example.test CNAME = mail.example.test\n"
                "lists.example.test MX = 10 MAIL.example.test.\n"
                "                        20  mail.example.test ; backup\n"
                "                        30 mail.example.test.evil\n"
                "_sieve._tcp.example.test SRV = 0 1 4190 mail.example.test\n"
                "_x._tcp.example.test SRV = 0 1 mail.example.test other.example.test\n"
                "mail.example.test TXT = \"v=spf1 a:mail.example.test -all\"\n"
                "Mail.Example.Test.  CAA = 0 issue \"mail.example.test\"\n"
                "mail.example.test MX = 10 mx.example.test\n"
                "mx.example.test MX = 0 .\n"
                "_25._tcp.mail.example.test TXT = \"x\"\n"
                "mail.example.test.evil CNAME = mail.example.test.evil2\n")
        expected = ("[records]\n"
                    "www.example.test CNAME = mx.example.test\n"
                    "lists.example.test MX = 10 mx.example.test\n"
                    "                        20  mx.example.test ; backup\n"
                    "                        30 mail.example.test.evil\n"
                    "_sieve._tcp.example.test SRV = 0 1 4190 mx.example.test\n"
                    "_x._tcp.example.test SRV = 0 1 mail.example.test other.example.test\n"
                    "mx.example.test TXT = \"v=spf1 a:mail.example.test -all\"\n"
                    "mx.example.test  CAA = 0 issue \"mail.example.test\"\n"
                    "mail.example.test MX = 10 mx.example.test\n"
                    "mx.example.test MX = 0 .\n"
                    "_25._tcp.mail.example.test TXT = \"x\"\n"
                    "mail.example.test.evil CNAME = mail.example.test.evil2\n")
        self.assertEqual(rename_host(text, OLD, NEW), expected)

    def test_mentions(self) -> None:
        """
        L{mentions} finds the lines that still name a host outside comments
        and [hosts]: in an address, a TXT string, a URL's query, a key, in
        any spelling (an IDNA name in its Unicode form too); not a
        look-alike, not a comment.
        """
        text = ("; mail.example.test\n[dns]\n"
                "hostmaster = root@MAIL.example.test ; mail.example.test\n"
                "ttl = 300 ; mail.example.test\n"
                "[records]\nexample.test TXT = \"v=spf1 a:mail.example.test -all\"\n"
                "x.example.test CNAME = mail.example.test.evil\n"
                "[urls]\ncaldav = https://dav.example.test/?user=m\u00e4il.example.test\n"
                "[hosts]\nmail.example.test = 192.0.2.1\n"
                "[redirectAddr]\nmail.example.test = jane@example.test\n")
        self.assertEqual(mentions(text, "mail.example.test"), [
            (3, "hostmaster = root@MAIL.example.test ; mail.example.test"),
            (6, 'example.test TXT = "v=spf1 a:mail.example.test -all"'),
            (13, "mail.example.test = jane@example.test")])
        self.assertEqual(mentions(text, "xn--mil-qla.example.test"),
                         [(9, "caldav = https://dav.example.test/?user=m\u00e4il.example.test")])

    def test_hosts_entries(self) -> None:
        """
        L{hosts_entries} lists the [hosts] names normalised, in file order,
        leaving out keys that are no host name and keys of other sections.
        """
        text = ("[server]\npublic_hostname = mail.example.test\n"
                "[hosts]\n; comment = x\nMAIL.example.test. = 192.0.2.1\n"
                "bad_host name = 192.0.2.2\nm\u00e4il.example.test = 192.0.2.3\n"
                "  continued.example.test\n"
                "[dns]\nns.example.test = 192.0.2.4\n")
        self.assertEqual(hosts_entries(text), ["mail.example.test", "xn--mil-qla.example.test"])
        self.assertEqual(hosts_entries(MINIMAL_INI), [])


class SetHostnameTests(SynchronousTestCase):
    """
    C{smartdiscover set-hostname NEW --config PATH [--from OLD] [--dry-run]}.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)

    def set_hostname(self, path: Path, *args: str) -> int:
        return cli.main(["set-hostname", *args, "--config", str(path)])

    def assert_left_alone(self, path: Path, before: bytes) -> None:
        """
        The file still holds C{before} and no temporary file is left beside it.
        """
        self.assertEqual(path.read_bytes(), before)
        self.assertEqual(sorted(p.name for p in path.parent.iterdir()),
                         ["sd.ini", "users.passwd"])

    def diff_lines(self, sign: str) -> list[str]:
        """
        The removed (C{-}) or added (C{+}) lines of the printed diff.
        """
        return [line[1:] for line in self.stdout.getvalue().splitlines()
                if line.startswith(sign) and not line.startswith(sign * 3)]

    def test_renames_public_hostname(self) -> None:
        """
        Without --from the current [server] public_hostname is renamed
        everywhere it is used; the file is replaced by a new one (a new
        inode: written beside it, then renamed over it) with the same
        permissions, no temporary file is left, and stdout ends with a line
        saying the file was written.
        """
        path = write_config(self.mktemp())
        path.chmod(0o640)
        inode = path.stat().st_ino
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(path.read_text(encoding="utf-8"), MINIMAL_INI.replace(OLD, NEW))
        self.assertEqual(path.stat().st_mode & 0o7777, 0o640)
        self.assertNotEqual(path.stat().st_ino, inode)
        self.assertEqual(sorted(p.name for p in path.parent.iterdir()),
                         ["sd.ini", "users.passwd"])
        self.assertTrue(self.stdout.getvalue().endswith(
            f"{path}: written; send SIGHUP to the running service to apply it\n"),
            self.stdout.getvalue())
        self.assertEqual(self.stderr.getvalue(), "")

    def test_private_mode_kept(self) -> None:
        """
        A file readable by its owner only stays so after the rewrite.
        """
        path = write_config(self.mktemp())
        path.chmod(0o600)
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(path.stat().st_mode & 0o7777, 0o600)

    def test_prints_unified_diff(self) -> None:
        """
        The change is printed as a unified diff of the file: headers naming
        it, hunks, and exactly the renamed lines removed and added.
        """
        path = write_config(self.mktemp())
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        lines = self.stdout.getvalue().splitlines()
        self.assertEqual(lines[:2], [f"--- {path}", f"+++ {path}"])
        self.assertTrue(lines[2].startswith("@@ -"), lines[2])
        self.assertEqual(self.diff_lines("-"), MINIMAL_OLD_LINES)
        self.assertEqual(self.diff_lines("+"), MINIMAL_NEW_LINES)

    def test_result_loads_with_new_host(self) -> None:
        """
        The written file loads, and the model shows the new host as public
        host name, Autodiscover URL, service host and URL host wherever the
        old one was, keeping ports and paths; other hosts, other domains'
        public host names and redirects are unchanged.
        """
        path = write_config(self.mktemp(), RICH_INI)
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        model = load(path)
        self.assertEqual(model.public_hostname, NEW)
        catalogue = model.catalogue
        self.assertEqual(catalogue.autodiscover_url,
                         "https://mx.example.test:8443/autodiscover/autodiscover.xml")
        self.assertEqual({s.name: s.host for s in catalogue.services},
                         {"imap": NEW, "smtp": "smtp.example.test", "sip": NEW})
        self.assertEqual(dict(catalogue.urls), {
            "ews": "https://mx.example.test:8443/EWS/Exchange.asmx",
            "webclient": "https://mx.example.test/webmail/",
            "caldav": "https://dav.example.test/cal/?user=mail.example.test",
        })
        org = model.domain_catalogues["example.org"]
        self.assertEqual(org.public_hostname, "mail.example.org")
        self.assertEqual(org.service("imap").host, NEW)
        self.assertEqual(org.urls["ews"], "https://mx.example.test/org/EWS/Exchange.asmx")
        self.assertEqual(org.urls["webclient"], "https://mail.example.org/webmail/")
        self.assertEqual(model.redirects["jane@example.test"].target,
                         "https://ad.example.org/autodiscover/autodiscover.xml")
        text = path.read_text(encoding="utf-8")
        self.assertIn("host = mx.example.test  ; the mail store\n", text)
        self.assertIn("host: mx.example.test\n", text)
        self.assertTrue(text.startswith("; A configuration with overrides"), text)

    def test_from_renames_another_host(self) -> None:
        """
        --from OLD renames that host instead of the public host name: a
        [domain:] public host name, or the host of a redirectUrl target.
        """
        path = write_config(self.mktemp(), RICH_INI)
        self.assertEqual(self.set_hostname(path, "mx.example.org", "--from", "mail.example.org"),
                         0, self.stderr.getvalue())
        self.assertEqual(self.set_hostname(path, "ad2.example.org", "--from", "AD.example.org"),
                         0, self.stderr.getvalue())
        self.assertEqual(
            path.read_text(encoding="utf-8"),
            RICH_INI.replace("server.public_hostname = mail.example.org",
                             "server.public_hostname = mx.example.org")
            .replace("https://ad.example.org/", "https://ad2.example.org/"))
        model = load(path)
        self.assertEqual(model.public_hostname, OLD)
        self.assertEqual(model.domain_catalogues["example.org"].public_hostname,
                         "mx.example.org")
        self.assertEqual(model.domain_catalogues["example.org"].urls["webclient"],
                         "https://mx.example.org/webmail/")
        self.assertEqual(model.redirects["jane@example.test"].target,
                         "https://ad2.example.org/autodiscover/autodiscover.xml")

    def test_dry_run(self) -> None:
        """
        --dry-run prints the same diff as a real run, says nothing about
        writing, and leaves the file byte-identical.
        """
        path = write_config(self.mktemp())
        before = path.read_bytes()
        self.assertEqual(self.set_hostname(path, NEW, "--dry-run"), 0, self.stderr.getvalue())
        self.assert_left_alone(path, before)
        dry = self.stdout.getvalue()
        self.assertEqual(self.diff_lines("-"), MINIMAL_OLD_LINES)
        self.assertEqual(self.diff_lines("+"), MINIMAL_NEW_LINES)
        self.assertNotIn("written", dry)
        self.assertEqual(self.stderr.getvalue(), "")
        self.stdout.truncate(0)
        self.stdout.seek(0)
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertTrue(self.stdout.getvalue().startswith(dry), self.stdout.getvalue())

    def test_refuses_redirect_loop(self) -> None:
        """
        Renaming to the host of a configured redirectUrl target would send
        those clients back to this server: the result is refused with exit
        status 1, the problem is printed, and the file is byte-identical.
        """
        ini = MINIMAL_INI + ("\n[redirectUrl]\n"
                             "jane@example.test = https://ad.example.test/autodiscover/"
                             "autodiscover.xml\n")
        path = write_config(self.mktemp(), ini)
        load(path)
        before = path.read_bytes()
        self.assertEqual(self.set_hostname(path, "ad.example.test"), 1)
        self.assert_left_alone(path, before)
        errors = self.stderr.getvalue().splitlines()
        self.assertEqual(errors[0], f"smartdiscover: the result would not be valid; "
                                    f"{path} is unchanged")
        self.assertEqual(len(errors), 2, errors)
        self.assertIn(": [redirectUrl] jane@example.test: ad.example.test is this server",
                      errors[1])
        self.assertIn("(a loop)", errors[1])
        self.assertNotIn("written", self.stdout.getvalue())

    def test_refused_problems_name_the_file(self) -> None:
        """
        The problems of a refused result name the configuration file the
        administrator has to look at (as check-config does), not a
        temporary file that no longer exists.
        """
        ini = MINIMAL_INI + ("\n[redirectUrl]\n"
                             "jane@example.test = https://ad.example.test/autodiscover/"
                             "autodiscover.xml\n")
        path = write_config(self.mktemp(), ini)
        self.assertEqual(self.set_hostname(path, "ad.example.test"), 1)
        problem = self.stderr.getvalue().splitlines()[1]
        self.assertTrue(problem.startswith(
            f"{path.absolute()}: [redirectUrl] jane@example.test: "), problem)

    def test_refuses_with_passwd_problem(self) -> None:
        """
        With --from, a file whose password file has a problem is not
        rewritten either: exit status 1, the problem printed, the file
        byte-identical.
        """
        path = write_config(self.mktemp(), passwd="not a passwd line\n")
        before = path.read_bytes()
        self.assertEqual(self.set_hostname(path, NEW, "--from", OLD), 1)
        self.assert_left_alone(path, before)
        errors = self.stderr.getvalue()
        self.assertIn("the result would not be valid", errors)
        self.assertIn(": [auth] passwd_file: ", errors)
        self.assertNotIn("written", self.stdout.getvalue())

    def test_invalid_now_without_from(self) -> None:
        """
        Without --from the old host is read from the file; when the file
        does not load, exit status 1 with a message that names the file and
        points at --from, then the problems; nothing is printed on stdout
        and the file is byte-identical.
        """
        path = write_config(self.mktemp(), passwd="not a passwd line\n")
        before = path.read_bytes()
        self.assertEqual(self.set_hostname(path, NEW), 1)
        self.assert_left_alone(path, before)
        errors = self.stderr.getvalue().splitlines()
        self.assertIn(str(path), errors[0])
        self.assertIn("is not valid now", errors[0])
        self.assertIn("--from", errors[0])
        self.assertIn(": [auth] passwd_file: ", errors[1])
        self.assertEqual(self.stdout.getvalue(), "")

    def test_invalid_new_host(self) -> None:
        """
        A NEW (or OLD) that is not a host name is a usage error: exit
        status 2, a message, and the file byte-identical.
        """
        path = write_config(self.mktemp())
        before = path.read_bytes()
        for bad in ("bad host", "a..b", "x-.example.test", "bad_host.example.test",
                    "", "x" * 64 + ".example.test", "mail.example.test/evil"):
            self.assertEqual(self.set_hostname(path, bad), 2, bad)
            self.assertEqual(self.set_hostname(path, NEW, "--from", bad), 2, bad)
            self.assertEqual(self.set_hostname(path, bad, "--from", OLD), 2, bad)
        self.assert_left_alone(path, before)
        self.assertEqual(self.stdout.getvalue(), "")
        errors = self.stderr.getvalue().splitlines()
        self.assertEqual(len(errors), 21, errors)
        for line in errors:
            self.assertTrue(line.startswith("smartdiscover: not a host name: "), line)

    def test_nothing_to_rename(self) -> None:
        """
        An OLD that the file does not use (or a NEW equal to the current
        name) changes nothing: exit status 0, a message, no diff, and the
        file byte-identical (not even rewritten).
        """
        path = write_config(self.mktemp())
        before = path.read_bytes()
        inode = path.stat().st_ino
        self.assertEqual(self.set_hostname(path, NEW, "--from", "other.example.test"), 0)
        self.assertEqual(self.stdout.getvalue(), f"{path}: nothing uses other.example.test\n")
        self.assertEqual(self.set_hostname(path, OLD), 0)
        self.assert_left_alone(path, before)
        self.assertEqual(path.stat().st_ino, inode)
        self.assertNotIn("---", self.stdout.getvalue())
        self.assertEqual(self.stderr.getvalue(), "")

    def make_certificate(self, path: Path) -> Path:
        """
        A development certificate for the names of the minimal
        configuration, where it says the certificate is.
        """
        tls = path.parent / "tls"
        create_development_certificate(tls / "server.crt", tls / "server.key",
                                       development_names(OLD, ("example.test",)))
        return (tls / "server.crt").absolute()

    def test_certificate_warning(self) -> None:
        """
        After writing, a warning on stderr names the certificate when it
        does not cover the new host; the file is written all the same.
        """
        path = write_config(self.mktemp())
        certificate = self.make_certificate(path)
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(self.stderr.getvalue(),
                         f"warning: the certificate {certificate} does not cover {NEW}\n")
        self.assertEqual(load(path).public_hostname, NEW)

    def test_no_certificate_warning_when_covered(self) -> None:
        """
        No warning when the certificate already covers the new host.
        """
        path = write_config(self.mktemp())
        self.make_certificate(path)
        self.assertEqual(self.set_hostname(path, "autodiscover.example.test"), 0,
                         self.stderr.getvalue())
        self.assertEqual(self.stderr.getvalue(), "")
        self.assertEqual(load(path).public_hostname, "autodiscover.example.test")

    def test_crlf_file_kept(self) -> None:
        """
        A file with CRLF line endings keeps them: the bytes written are the
        renamed text with every CRLF in place.
        """
        path = write_config(self.mktemp(), MINIMAL_INI.replace("\n", "\r\n"))
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(path.read_bytes(),
                         MINIMAL_INI.replace(OLD, NEW).replace("\n", "\r\n").encode())

    def test_no_final_newline(self) -> None:
        """
        When the file's last line has no newline and is renamed, the file
        still ends without one, and the printed diff and the message after
        it stay on lines of their own.
        """
        path = write_config(self.mktemp(), MINIMAL_INI.rstrip("\n"))
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(path.read_text(encoding="utf-8"),
                         MINIMAL_INI.replace(OLD, NEW).rstrip("\n"))
        self.assertEqual(self.diff_lines("-"), MINIMAL_OLD_LINES)
        self.assertEqual(self.diff_lines("+"), MINIMAL_NEW_LINES)
        self.assertEqual(self.stdout.getvalue().splitlines()[-1],
                         f"{path}: written; send SIGHUP to the running service to apply it")


def copy_shipped(directory: str | Path) -> Path:
    """
    The shipped C{etc/sd.ini} and C{etc/users.passwd}, byte for byte, in
    C{directory}; return the INI path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("sd.ini", "users.passwd"):
        (directory / name).write_bytes((CHECKOUT / "etc" / name).read_bytes())
    return directory / "sd.ini"


def assert_shipped_renamed(case: SynchronousTestCase, path: Path, diff: str) -> None:
    """
    C{path}, a copy of the shipped configuration, was renamed from OLD to
    NEW as C{diff} shows: only lines that named OLD changed, each to the
    same line with NEW; the [hosts] entry with them; comments and order as
    shipped; the result loads, and its zone gives the new host and the
    aliases that default to it the shipped addresses.
    """
    from twisted.names import dns

    from smartdiscover.dns.records import all_records

    shipped = (CHECKOUT / "etc" / "sd.ini").read_text(encoding="utf-8").splitlines()
    written = path.read_text(encoding="utf-8").splitlines()
    removed = [line[1:] for line in diff.splitlines()
               if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    case.assertIn(f"{OLD} = 127.0.0.1, ::1", removed)
    case.assertIn(f"{NEW} = 127.0.0.1, ::1", added)
    case.assertIn(f"public_hostname = {NEW}", added)
    case.assertEqual([line.replace(OLD, NEW) for line in removed], added)
    case.assertEqual(len(written), len(shipped))
    for before, after in zip(shipped, written):
        case.assertEqual(after, before.replace(OLD, NEW) if before in removed else before)
        if not before.lstrip().startswith((";", "#")):
            case.assertNotIn(OLD, after)
    model = load(path)
    case.assertEqual(model.public_hostname, NEW)
    case.assertEqual({s.host for s in model.catalogue.services}, {NEW})
    assert model.dns is not None
    case.assertEqual(dict(model.dns.hosts), {NEW: ("127.0.0.1", "::1")})
    records = all_records(model, serial=1)["example.test"]
    for name in (NEW, "autodiscover.example.test", "autoconfig.example.test"):
        case.assertEqual(
            sorted(payload.dottedQuad() for owner, kind, payload in records
                   if owner == name and kind == dns.A), ["127.0.0.1"], name)
    case.assertFalse([owner for owner, _, _ in records if owner == OLD])


class ShippedConfigurationTests(SynchronousTestCase):
    """
    C{set-hostname} on the shipped C{etc/sd.ini} exactly (issue 16,
    section 4): the DNS responder is on, so every in-zone name needs a
    [hosts] address, and renaming the host renames its entry.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)

    def set_hostname(self, path: Path, *args: str) -> int:
        return cli.main(["set-hostname", *args, "--config", str(path)])

    def test_shipped_configuration(self) -> None:
        """
        C{set-hostname mx.example.test} on the shipped file exits with 0,
        writes nothing on stderr, and the diff and the written file show
        every host field and the [hosts] entry renamed, nothing else.
        """
        path = copy_shipped(self.mktemp())
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(self.stderr.getvalue(), "")
        assert_shipped_renamed(self, path, self.stdout.getvalue())

    def test_shipped_round_trip(self) -> None:
        """
        Renaming back gives the shipped bytes again.
        """
        path = copy_shipped(self.mktemp())
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(self.set_hostname(path, OLD), 0, self.stderr.getvalue())
        self.assertEqual(path.read_bytes(), (CHECKOUT / "etc" / "sd.ini").read_bytes())

    def test_dry_run_on_shipped(self) -> None:
        """
        --dry-run shows the [hosts] line in the diff and leaves the file as
        shipped.
        """
        path = copy_shipped(self.mktemp())
        self.assertEqual(self.set_hostname(path, NEW, "--dry-run"), 0, self.stderr.getvalue())
        self.assertIn(f"-{OLD} = 127.0.0.1, ::1\n", self.stdout.getvalue())
        self.assertIn(f"+{NEW} = 127.0.0.1, ::1\n", self.stdout.getvalue())
        self.assertEqual(path.read_bytes(), (CHECKOUT / "etc" / "sd.ini").read_bytes())

    def test_new_host_has_an_entry_already(self) -> None:
        """
        When [hosts] already gives the new host an address (another
        machine, or one the administrator added first), both entries are
        kept as written, a note on stderr says so, and the result is
        written and served with the new host's own address.
        """
        path = copy_shipped(self.mktemp())
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(f"{OLD} = 127.0.0.1, ::1\n",
                                     f"{OLD} = 127.0.0.1, ::1\nMX.example.test = 127.0.0.5\n"),
                        encoding="utf-8")
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        self.assertEqual(
            self.stderr.getvalue(),
            f"note: [hosts] already has an entry for {NEW}: it and the entry for {OLD} are "
            f"kept as they are (remove the one for {OLD} once nothing needs it)\n")
        self.assertNotIn(f"-{OLD} = ", self.stdout.getvalue())
        model = load(path)
        assert model.dns is not None
        self.assertEqual(dict(model.dns.hosts),
                         {OLD: ("127.0.0.1", "::1"), NEW: ("127.0.0.5",)})
        self.assertEqual(model.public_hostname, NEW)

    def test_from_service_host_renames_its_entry(self) -> None:
        """
        --from the host of one service renames that service's host and the
        host's [hosts] entry; the public host and its entry stay.
        """
        path = copy_shipped(self.mktemp())
        text = path.read_text(encoding="utf-8")
        text = text.replace("[smtp]\nhost = mail.example.test\n",
                            "[smtp]\nhost = smtp.example.test\n")
        path.write_text(text.replace(f"{OLD} = 127.0.0.1, ::1\n",
                                     f"{OLD} = 127.0.0.1, ::1\nsmtp.example.test = 127.0.0.2\n"),
                        encoding="utf-8")
        load(path)
        self.assertEqual(self.set_hostname(path, "submission.example.test", "--from",
                                           "smtp.example.test"), 0, self.stderr.getvalue())
        self.assertIn("+submission.example.test = 127.0.0.2\n", self.stdout.getvalue())
        model = load(path)
        assert model.dns is not None
        self.assertEqual(dict(model.dns.hosts), {OLD: ("127.0.0.1", "::1"),
                                                 "submission.example.test": ("127.0.0.2",)})
        self.assertEqual(model.catalogue.service("smtp").host, "submission.example.test")
        self.assertEqual(model.public_hostname, OLD)

    def test_new_host_without_address_refused(self) -> None:
        """
        Renaming a host outside the served zones (which needs no address)
        to one inside them, which [hosts] does not know: the result is
        refused with the problem, naming the key and what to add, and the
        file stays as it was.
        """
        path = copy_shipped(self.mktemp())
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("[smtp]\nhost = mail.example.test\n",
                                     "[smtp]\nhost = smtp.provider.example\n"),
                        encoding="utf-8")
        load(path)
        before = path.read_bytes()
        self.assertEqual(self.set_hostname(path, "smtp.example.test", "--from",
                                           "smtp.provider.example"), 1)
        self.assertEqual(path.read_bytes(), before)
        errors = self.stderr.getvalue().splitlines()
        self.assertEqual(errors[0], f"smartdiscover: the result would not be valid; "
                                    f"{path} is unchanged")
        self.assertEqual(errors[1:], [f"{path.absolute()}: [smtp] host: smtp.example.test is "
                                      "inside a served zone: [hosts] needs its address"])

    def test_per_domain_public_host(self) -> None:
        """
        With a second domain whose [domain:] section names its own public
        host: renaming the main host leaves that host and its [hosts] entry
        alone (its aliases keep its addresses); --from renames it and its
        entry, and leaves the main host alone.
        """
        path = copy_shipped(self.mktemp())
        text = path.read_text(encoding="utf-8")
        text = text.replace("domains = example.test\n", "domains = example.test, example.org\n")
        text = text.replace(f"{OLD} = 127.0.0.1, ::1\n",
                            f"{OLD} = 127.0.0.1, ::1\nmail.example.org = 127.0.0.3\n")
        path.write_text(text + "\n[domain:example.org]\nserver.public_hostname = "
                               "mail.example.org\n", encoding="utf-8")
        load(path)
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        model = load(path)
        assert model.dns is not None
        self.assertEqual(dict(model.dns.hosts), {NEW: ("127.0.0.1", "::1"),
                                                 "mail.example.org": ("127.0.0.3",)})
        self.assertEqual(model.domain_catalogues["example.org"].public_hostname,
                         "mail.example.org")
        self.assertEqual(self.set_hostname(path, "mx.example.org", "--from",
                                           "MAIL.example.org"), 0, self.stderr.getvalue())
        model = load(path)
        assert model.dns is not None
        self.assertEqual(dict(model.dns.hosts), {NEW: ("127.0.0.1", "::1"),
                                                 "mx.example.org": ("127.0.0.3",)})
        self.assertEqual(model.public_hostname, NEW)
        self.assertEqual(model.domain_catalogues["example.org"].public_hostname,
                         "mx.example.org")
        self.assertTrue(path.read_text(encoding="utf-8").endswith(
            "\n[domain:example.org]\nserver.public_hostname = mx.example.org\n"))

    def test_records_follow_the_host(self) -> None:
        """
        The shipped file with records of the zone owner that point at the
        host (docs/dns.md's example): the MX and SRV targets and the TXT at
        the host's name follow it, so the result is valid and the zone
        points at the renamed host; what still names the old host where it
        is no host field (an SPF mechanism, the SOA contact) is left as
        written and listed in a note, line by line.
        """
        path = copy_shipped(self.mktemp())
        text = path.read_text(encoding="utf-8")
        text = text.replace("ttl = 300\n", "ttl = 300\nhostmaster = root@mail.example.test\n")
        path.write_text(text + (
            "\n[records]\n"
            'example.test TXT = "v=spf1 a:mail.example.test -all"\n'
            "lists.example.test MX = 10 mail.example.test\n"
            "                        20 mx.backup.example.net\n"
            "_sieve._tcp.example.test SRV = 0 1 4190 mail.example.test\n"
            "webmail.example.test CNAME = mail.example.test\n"
            'mail.example.test TXT = "v=spf1 a -all"\n'), encoding="utf-8")
        load(path)
        self.assertEqual(self.set_hostname(path, NEW), 0, self.stderr.getvalue())
        lines = path.read_text(encoding="utf-8").splitlines()
        spf = lines.index('example.test TXT = "v=spf1 a:mail.example.test -all"') + 1
        hostmaster = lines.index("hostmaster = root@mail.example.test") + 1
        self.assertEqual(self.stderr.getvalue().splitlines(), [
            f"note: {OLD} is still named where it is no host field, left as written:",
            f"  line {hostmaster}: hostmaster = root@mail.example.test",
            f'  line {spf}: example.test TXT = "v=spf1 a:mail.example.test -all"'])
        for line in ("lists.example.test MX = 10 mx.example.test",
                     "_sieve._tcp.example.test SRV = 0 1 4190 mx.example.test",
                     "webmail.example.test CNAME = mx.example.test",
                     'mx.example.test TXT = "v=spf1 a -all"'):
            self.assertIn(line, lines)
        model = load(path)
        assert model.dns is not None
        self.assertEqual({(r.owner, r.rtype, r.target) for r in model.dns.records
                          if r.rtype != "TXT"},
                         {("lists.example.test", "MX", NEW),
                          ("lists.example.test", "MX", "mx.backup.example.net"),
                          ("_sieve._tcp.example.test", "SRV", NEW),
                          ("webmail.example.test", "CNAME", NEW)})
        self.assertIn((NEW, "TXT"), {(r.owner, r.rtype) for r in model.dns.records})
