"""
Tests for the zone owner's own records, C{[records]} (issue 16 section 3):
the parsing of names, TXT strings and every type
(L{smartdiscover.config.zone_records}), the rules checked at load (CNAME
alone and never at an apex, nothing that contradicts a derived record,
owners inside served zones, CAA per RFC 8659, size limits), and the
answers built from them (L{smartdiscover.dns.configured}, the CNAME chase
of L{smartdiscover.dns.table}), read back with dnspython.

In process: configurations written to a temporary directory, queries
answered by L{smartdiscover.dns.wire.respond}; no sockets.
"""

from __future__ import annotations

import dataclasses
import random
import struct
import tempfile
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import load
from smartdiscover.config.model import Model, ZoneRecord
from smartdiscover.config.zone_records import (
    DERIVED_SRV,
    MAX_RRSET_BYTES,
    derived,
    parse_name,
    quoted_strings,
    txt_strings,
)
from smartdiscover.dns.records import all_records, zone_records
from smartdiscover.dns.table import Table, build_table
from smartdiscover.dns.wire import respond
from tests.helpers import PROJECT_ROOT, write_config
from tests.unit.test_dns_config import LISTENING_INI, PUBLIC_HOSTS, _DNSConfigTestCase, dns_ini
from tests.unit.test_dns_wire import ZONE_INI, mutate

NOERROR, NXDOMAIN = 0, 3
TC = 0x0200


def records_ini(records: str, dns: str | None = None, hosts: str = PUBLIC_HOSTS,
                base: str = LISTENING_INI) -> str:
    """
    The minimal file with the responder on, C{[dns]} (when given), C{[hosts]}
    and a C{[records]} section holding C{records}.
    """
    return dns_ini(dns, hosts, base) + "\n[records]\n" + records


def load_model(ini: str) -> Model:
    with tempfile.TemporaryDirectory() as directory:
        return load(write_config(directory, ini))


# What the wire tests serve: one of each type, a CNAME chain, an alias out
# of our zones, a 300-byte and a 4000-byte TXT, an internationalised owner,
# and a TXT set of about 4.5 kB for the size limits.
BIG_TXT = 9  # records of 500 bytes at big.example.test
WIRE_RECORDS = f"""\
example.test TXT = "v=spf1 mx -all"
                   "google-site-verification=abc123"
_dmarc.example.test TXT = "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
long.example.test TXT = "{"a" * 300}"
huge.example.test TXT = "{"".join(chr(ord("a") + i % 26) for i in range(4000))}"
quoted.example.test TXT = "semi\\; hash\\# quote\\" back\\\\ byte\\255" "" "two"
www.example.test CNAME = web.example.test
web.example.test CNAME = host.example.test
host.example.test A = 192.0.2.80
host.example.test AAAA = 2001:db8::80
host.example.test TXT = "host"
away.example.test CNAME = target.example.net
example.test MX = 10 mail.example.test
                  20 mx.example.net
nomail.example.test MX = 0 .
_sieve._tcp.example.test SRV = 0 1 4190 mail.example.test
_jmap._tcp.example.test SRV = 0 0 0 .
example.test CAA = 0 issue "letsencrypt.org"
                   0 issuewild ";"
                   128 iodef "mailto:security@example.test"
Bücher.Example.Test TXT = "idn"
big.example.test TXT = {chr(10).join(f'  "{i}{"x" * 499}"' for i in range(BIG_TXT))}
"""
WIRE_INI = records_ini(WIRE_RECORDS)


class NameTests(SynchronousTestCase):
    """
    L{parse_name}: owners and targets in ASCII lower case, IDNA for
    internationalised labels, underscore labels for owners only.
    """

    def test_accepted(self) -> None:
        for text, name in [
            ("_dmarc.Example.TEST.", "_dmarc.example.test"),
            ("s1._domainkey.example.test", "s1._domainkey.example.test"),
            ("_25._tcp.mx.example.test", "_25._tcp.mx.example.test"),
            ("bücher.example.test", "xn--bcher-kva.example.test"),
            ("XN--BCHER-KVA.example.test", "xn--bcher-kva.example.test"),
            ("ＷＷＷ。example.test", "www.example.test"),  # UTS 46 mapping, ideographic dot
            ("a" * 63 + ".example.test", "a" * 63 + ".example.test"),
        ]:
            self.assertEqual(parse_name(text), name, text)

    def test_refused(self) -> None:
        for text, fragment in [
            ("", "empty"),
            (".", "empty"),
            ("a..example.test", "empty label"),
            ("*.example.test", "wildcards"),
            ("192.0.2.1", "IP address"),
            ("a b.example.test", "may hold only"),
            ("-a.example.test", "may hold only"),
            ("a\u200db.example.test", "not a valid name"),  # a joiner outside its context
            ("ä_b.example.test", "not a valid name"),
            ("xn--zz.example.test", "IDNA label"),
            ("a" * 64 + ".example.test", "longer than 63"),
            (".".join(["a" * 60] * 5), "longer than 253"),
            ("a\x00b.example.test", "may hold only"),
        ]:
            with self.assertRaises(ValueError, msg=text) as caught:
                parse_name(text)
            self.assertIn(fragment, str(caught.exception), text)

    def test_host_names(self) -> None:
        """
        An MX or SRV target is a host name: no underscore.
        """
        self.assertEqual(parse_name("Mail.example.test", host=True), "mail.example.test")
        with self.assertRaises(ValueError):
            parse_name("_mail.example.test", host=True)


class TXTStringTests(SynchronousTestCase):
    """
    TXT data: quoted strings with zone-file escapes (RFC 1035 5.1), split
    into character-strings of at most 255 bytes (RFC 7208 3.3).
    """

    def test_split_at_255_bytes(self) -> None:
        """
        A string over 255 bytes becomes consecutive 255-byte strings and
        the rest; joined without spaces they are the original text.
        """
        for length, sizes in [(0, [0]), (1, [1]), (255, [255]), (256, [255, 1]),
                              (300, [255, 45]), (510, [255, 255]), (4000, [255] * 15 + [175])]:
            text = "".join(chr(ord("a") + i % 26) for i in range(length))
            strings = txt_strings(f'"{text}"')
            self.assertEqual([len(s) for s in strings], sizes, length)
            self.assertEqual(b"".join(strings), text.encode("ascii"))

    def test_multibyte_split_joins_back(self) -> None:
        """
        UTF-8 text is split by bytes, even inside a character; joined, it
        is the same text.
        """
        text = "ü" * 200  # 400 bytes
        strings = txt_strings(f'"{text}"')
        self.assertEqual([len(s) for s in strings], [255, 145])
        self.assertEqual(b"".join(strings).decode("utf-8"), text)

    def test_several_strings_kept_apart(self) -> None:
        self.assertEqual(txt_strings('"a b"  "c"""'), (b"a b", b"c", b""))

    def test_escapes(self) -> None:
        self.assertEqual(quoted_strings(r'"\"q\" \\ \; \# \065\000\255 \x"'),
                         [b'"q" \\ ; # A\x00\xff x'])

    def test_refused(self) -> None:
        for text, fragment in [
            ("v=spf1 -all", "double quotes"),
            ('"v=spf1 -all', "unterminated"),
            ('"a" b', "double quotes"),
            ('"a\\', "backslash ends"),
            ('"\\256"', "\\256"),
            ('"\\12x"', "\\12x"),
            ('"\\1"', "\\1"),
            ('"a\tb"', "control character"),
        ]:
            with self.assertRaises(ValueError, msg=text) as caught:
                txt_strings(text)
            self.assertIn(fragment, str(caught.exception), text)


class LoadTests(_DNSConfigTestCase):
    """
    C{[records]} read by the loader: every type, several records per name
    and type, and the model they end up in.
    """

    def records(self, records: str, **kwargs: Any) -> tuple[ZoneRecord, ...]:
        return self.settings(records_ini(records, **kwargs)).records

    def test_every_type(self) -> None:
        records = self.records(
            "example.test txt = \"v=spf1 mx -all\"  ; SPF\n"
            "WWW.example.test. CNAME = Mail.Example.Test.\n"
            "web.example.test A = 192.0.2.80\n"
            "web.example.test AAAA = 2001:DB8:0::80\n"
            "example.test MX = 10 mail.example.test\n"
            "    20 MX.example.net.\n"
            "_sieve._tcp.example.test SRV = 0 1 4190 mail.example.test\n"
            "example.test CAA = 0 issue \"letsencrypt.org\"\n"
            "    128 ISSUEWILD \";\"\n")
        self.assertEqual(records, (
            ZoneRecord("example.test", "TXT", strings=(b"v=spf1 mx -all",)),
            ZoneRecord("www.example.test", "CNAME", target="mail.example.test"),
            ZoneRecord("web.example.test", "A", target="192.0.2.80"),
            ZoneRecord("web.example.test", "AAAA", target="2001:db8::80"),
            ZoneRecord("example.test", "MX", target="mail.example.test", numbers=(10,)),
            ZoneRecord("example.test", "MX", target="mx.example.net", numbers=(20,)),
            ZoneRecord("_sieve._tcp.example.test", "SRV", target="mail.example.test",
                       numbers=(0, 1, 4190)),
            ZoneRecord("example.test", "CAA", numbers=(0,),
                       strings=(b"issue", b"letsencrypt.org")),
            ZoneRecord("example.test", "CAA", numbers=(128,), strings=(b"issuewild", b";")),
        ))

    def test_without_records_section(self) -> None:
        self.assertEqual(self.settings(dns_ini()).records, ())

    def test_responder_off(self) -> None:
        """
        Without C{[server] dns}, as C{[dns]} and C{[hosts]}, C{[records]} is
        not read: there is no zone to put it in.
        """
        model = load(self.path(LISTENING_INI.replace("dns = 127.0.0.1:5353\n", "")
                               + "\n[records]\nexample.test TXT = \"x\"\n"))
        self.assertIsNone(model.dns)

    def test_4000_byte_txt(self) -> None:
        """
        A 4000-byte TXT (a long DKIM key, a verification blob) loads as 16
        character-strings.
        """
        (record,) = self.records(f'example.test TXT = "{"k" * 4000}"\n')
        self.assertEqual([len(s) for s in record.strings], [255] * 15 + [175])

    def test_internationalised_owner(self) -> None:
        (record,) = self.records('Bücher.example.test TXT = "ü"\n')
        self.assertEqual(record.owner, "xn--bcher-kva.example.test")
        self.assertEqual(record.strings, ("ü".encode("utf-8"),))

    def test_apex_mx_without_dns_mx(self) -> None:
        """
        Without C{[dns] mx} the apex has no derived MX: C{[records]} may
        give one per zone (a null MX too).
        """
        (record,) = self.records("example.test MX = 0 .\n")
        self.assertEqual((record.target, record.numbers), ("", (0,)))

    def test_txt_beside_derived_records(self) -> None:
        """
        A TXT at a name whose SRV or addresses SmartDiscover derives adds a
        type it does not derive there: accepted.
        """
        records = self.records('_imaps._tcp.example.test TXT = "note"\n'
                               'mail.example.test TXT = "host"\n'
                               'autodiscover.example.test TXT = "x"\n')
        self.assertEqual(len(records), 3)


class RefusedTests(_DNSConfigTestCase):
    """
    Every record that cannot be served is refused at load, with file,
    [records] and its key (SECURITY.md 7: a bad file changes nothing).
    """

    def refused(self, records: str, key: str, *fragments: str, **kwargs: Any) -> None:
        self.assert_only_problem(records_ini(records, **kwargs), "records", key, *fragments)

    def test_cname_at_apex(self) -> None:
        self.refused("example.test CNAME = mail.example.test\n", "example.test CNAME",
                     "zone apex", "RFC 1034 3.6.2")
        self.refused("Example.Test. cname = mail.example.test\n", "Example.Test. cname",
                     "zone apex")

    def test_cname_beside_other_data(self) -> None:
        """
        A CNAME beside a TXT of [records], the addresses of [hosts], the
        aliases' addresses or a derived SRV (RFC 1034 3.6.2, RFC 2181 10.1).
        """
        self.refused("www.example.test CNAME = mail.example.test\n"
                     "www.example.test TXT = \"x\"\n", "www.example.test CNAME",
                     "also has TXT in [records]", "RFC 2181 10.1")
        self.refused("mail.example.test CNAME = web.example.net\n", "mail.example.test CNAME",
                     "other data", "A from [hosts]")
        self.refused("autoconfig.example.test CNAME = mail.example.test\n",
                     "autoconfig.example.test CNAME", "other data", "mail.example.test")
        self.refused("_imaps._tcp.example.test CNAME = mail.example.test\n",
                     "_imaps._tcp.example.test CNAME", "SRV from [imap]")

    def test_cname_rrset(self) -> None:
        self.refused("www.example.test CNAME = a.example.net\n  b.example.net\n",
                     "www.example.test CNAME", "one CNAME at most")
        self.refused("www.example.test CNAME = www.example.test\n", "www.example.test CNAME",
                     "alias of itself")

    def test_cname_loop_and_dangling(self) -> None:
        problems = self.problems(records_ini("a.example.test CNAME = b.example.test\n"
                                             "b.example.test CNAME = a.example.test\n"))
        self.assertEqual(self.where(problems), [("records", "a.example.test CNAME"),
                                                ("records", "b.example.test CNAME")])
        self.assertIn("a.example.test -> b.example.test -> a.example.test",
                      problems[0].message)
        self.refused("www.example.test CNAME = nothing.example.test\n", "www.example.test CNAME",
                     "nothing.example.test", "no records")
        chain = "".join(f"c{i}.example.test CNAME = c{i + 1}.example.test\n" for i in range(9))
        problems = self.problems(records_ini(chain + "c9.example.test A = 192.0.2.9\n"))
        self.assertIn("more than 8 CNAMEs", problems[0].message)

    def test_contradicting_derived_srv(self) -> None:
        """
        SRV records at the owners SmartDiscover publishes are its own, even
        where a service is "not offered" (0 0 0 .).
        """
        self.refused("_imaps._tcp.example.test SRV = 0 1 993 mail.example.test\n",
                     "_imaps._tcp.example.test SRV", "SmartDiscover publishes", "[imap]")
        self.refused("_xmpp-client._tcp.example.test SRV = 0 0 0 .\n",
                     "_xmpp-client._tcp.example.test SRV", "[xmpp]")
        self.refused("_autodiscover._tcp.example.test SRV = 0 5 443 mail.example.test\n",
                     "_autodiscover._tcp.example.test SRV", "[server] https")

    def test_contradicting_derived_addresses(self) -> None:
        """
        A/AAAA of [hosts] names and of autodiscover./autoconfig. (which take
        the public host's) come from [hosts] only; both families, even
        where [hosts] gives one.
        """
        self.refused("mail.example.test A = 192.0.2.11\n", "mail.example.test A",
                     "addresses of mail.example.test", "[hosts]")
        self.refused("autodiscover.example.test AAAA = 2001:db8::1\n",
                     "autodiscover.example.test AAAA", "[hosts] mail.example.test")
        self.refused("mail.example.test AAAA = 2001:db8::11\n", "mail.example.test AAAA",
                     "[hosts]", hosts="mail.example.test = 192.0.2.10\n")

    def test_contradicting_apex(self) -> None:
        self.refused("example.test SOA = x\n", "example.test SOA", "derives the SOA")
        self.refused("example.test NS = ns.example.net\n", "example.test NS",
                     "[dns] nameservers")
        self.refused("example.test MX = 20 mx.example.net\n", "example.test MX",
                     "[dns] mx", dns="mx = 10 mail.example.test\n")

    def test_contradicting_derived_txt(self) -> None:
        """
        RFC 6764's path= TXT follows [urls] caldav.
        """
        base = LISTENING_INI.replace("[urls]\n", "[urls]\ncaldav = /dav/\n")
        self.refused('_caldavs._tcp.example.test TXT = "path=/other/"\n',
                     "_caldavs._tcp.example.test TXT", "[urls] caldav", base=base)

    def test_owner_outside_served_zones(self) -> None:
        for key in ("example.net TXT", "_dmarc TXT", "example.testing TXT", "test TXT"):
            self.refused(f'{key} = "x"\n', key, "outside every served zone", "example.test")

    def test_bad_keys(self) -> None:
        self.refused('example.test = "x"\n', "example.test", "NAME TYPE")
        self.refused('example.test TXT extra = "x"\n', "example.test TXT extra", "NAME TYPE")
        self.refused('example.test SPF = "v=spf1 -all"\n', "example.test SPF",
                     "unsupported type", "TXT")
        self.refused("x.example.test HINFO = a b\n", "x.example.test HINFO", "unsupported")
        self.refused("x.example.test TYPE257 = 0 issue x\n", "x.example.test TYPE257",
                     "unsupported")
        self.refused("x.example.test NAPTR = 1\n", "x.example.test NAPTR", "[sip]")
        self.refused('*.example.test TXT = "x"\n', "*.example.test TXT", "wildcards")

    def test_non_ascii_owners(self) -> None:
        self.refused('a\u200db.example.test TXT = "x"\n', "a\u200db.example.test TXT",
                     "not a valid name")
        self.refused('bü_cher.example.test TXT = "x"\n', "bü_cher.example.test TXT",
                     "not a valid name")
        self.refused('Bücher.example.test TXT = "x"\nxn--bcher-kva.example.test TXT = "y"\n',
                     "xn--bcher-kva.example.test TXT", "the same name and type as",
                     "Bücher.example.test TXT")

    def test_empty_data(self) -> None:
        self.refused("x.example.test TXT =\n", "x.example.test TXT", "no data")
        self.refused("x.example.test A =   \n", "x.example.test A", "no data")
        self.refused("x.example.test CNAME = .\n", "x.example.test CNAME", "empty name")

    def test_same_name_and_type_twice(self) -> None:
        self.refused('x.example.test TXT = "a"\nX.Example.Test. txt = "b"\n',
                     "X.Example.Test. txt", "the same name and type", "one a line")
        self.refused('x.example.test TXT = "a"\n  "a"\n', "x.example.test TXT", "given twice")

    def test_bad_txt(self) -> None:
        self.refused("x.example.test TXT = v=spf1 -all\n", "x.example.test TXT",
                     "double quotes")
        # An inline comment cuts the value inside the quotes: never served cut short.
        self.refused('x.example.test TXT = "v=spf1 ; -all"\n', "x.example.test TXT",
                     "unterminated", "\\;")
        self.refused('x.example.test TXT = "a"\n  "b\n', "x.example.test TXT",
                     "line 2 of the value", "unterminated")

    def test_zone_file_shorthands_refused(self) -> None:
        """
        Forms a general zone-file parser (dnspython's) takes, each refused
        here: C{@} (the origin: the root for absolute names, so "0 @" would
        be a null MX, not the apex), C{;} with no space before it (a
        comment there: the rest dropped), bare words in TXT ("v=spf1 -all"
        would be two strings, joined by readers as "v=spf1-all"),
        parentheses, the generic C{\\#} form and escapes in names.
        """
        for key, data, fragment in [
                ("x.example.test MX", "0 @", "'@'"),
                ("www.example.test CNAME", "@", "'@'"),
                ("x.example.test TXT", '"v=spf1 -all";"more"', "double quotes"),
                ("x.example.test MX", "10 mail.example.test;x", "may hold only"),
                ("x.example.test TXT", "v=spf1 -all", "double quotes"),
                ("x.example.test TXT", '( "a" )', "double quotes"),
                ("x.example.test A", "\\# 4 c0000201", "IPv4"),
                ("x.example.test MX", "0 a\\065.example.test", "may hold only")]:
            self.refused(f"{key} = {data}\n", key, fragment)

    def test_txt_over_limits(self) -> None:
        """
        One RRset takes at most 32768 bytes of an answer, so every answer
        fits a TCP message (65535) with its additional section.
        """
        lines = "\n".join(f'  "{i:02}{"t" * 998}"' for i in range(33))
        self.refused(f"x.example.test TXT = {lines}\n", "x.example.test TXT",
                     str(MAX_RRSET_BYTES), "65535")
        self.refused(f'x.example.test TXT = "{"t" * 40000}"\n', "x.example.test TXT",
                     "more than")

    def test_bad_addresses(self) -> None:
        self.refused("x.example.test A = 2001:db8::1\n", "x.example.test A", "IPv4",
                     "AAAA for IPv6")
        self.refused("x.example.test AAAA = 192.0.2.1\n", "x.example.test AAAA", "IPv6")
        self.refused("x.example.test A = 192.0.2.256\n", "x.example.test A", "IPv4")
        self.refused("x.example.test A = 192.0.2.1 192.0.2.2\n", "x.example.test A", "IPv4")
        self.refused("x.example.test AAAA = fe80::1%eth0\n", "x.example.test AAAA", "IPv6")

    def test_bad_mx(self) -> None:
        for data, fragment in [("mail.example.test", "PREFERENCE HOST"),
                               ("70000 mail.example.test", "0 to 65535"),
                               ("-1 mail.example.test", "0 to 65535"),
                               ("10 192.0.2.25", "IP address"),
                               ("10 _mx.example.net", "may hold only"),
                               ("10 .", "0 ."),
                               ("0 .\n  10 mx.example.net", '"." target'),
                               ("10 nowhere.example.test", "needs an address")]:
            self.refused(f"x.example.test MX = {data}\n", "x.example.test MX", fragment)

    def test_bad_srv(self) -> None:
        for owner, data, fragment in [
                ("_sieve._tcp", "0 1 4190", "PRIORITY WEIGHT PORT TARGET"),
                ("_sieve._tcp", "0 1 70000 mail.example.test", "port"),
                ("_sieve._tcp", "x 1 4190 mail.example.test", "priority"),
                ("_sieve._tcp", "0 1 4190 nowhere.example.test", "needs an address"),
                ("sieve._tcp", "0 1 4190 mail.example.test", "_SERVICE._PROTO"),
                ("_sieve", "0 1 4190 mail.example.test", "_SERVICE._PROTO")]:
            self.refused(f"{owner}.example.test SRV = {data}\n", f"{owner}.example.test SRV",
                         fragment)
        self.refused("www.example.test CNAME = mail.example.test\n"
                     "_sieve._tcp.example.test SRV = 0 1 4190 www.example.test\n",
                     "_sieve._tcp.example.test SRV", "alias (CNAME)", "RFC 2181 10.3")

    def test_srv_target_addressed_by_records(self) -> None:
        """
        An in-zone target needs an address: from [hosts] or from [records].
        """
        records = self.settings(records_ini(
            "_sieve._tcp.example.test SRV = 0 1 4190 sieve.example.test\n"
            "sieve.example.test AAAA = 2001:db8::4190\n")).records
        self.assertEqual(len(records), 2)

    def test_bad_caa(self) -> None:
        for data, fragment in [
                ('1 issue "ca.example"', "reserved"),
                ('256 issue "ca.example"', "reserved"),
                ('x issue "ca.example"', "must be 0"),
                ('0 "ca.example"', "FLAGS TAG VALUE"),
                ('0 issue', "FLAGS TAG VALUE"),
                ('0 is-sue "ca.example"', "ASCII letters and digits"),
                ('0 abcdefghijklmnop "x"', "1 to 15"),
                ('0 issue "ca.example; =x"', "RFC 8659 4.2"),
                ('0 issue "-ca.example"', "RFC 8659 4.2"),
                ('0 issue "ca.example" "again"', "one quoted string"),
                ('0 issue ca example', "double quotes"),
                ('0 iodef "ftp://ca.example/"', "mailto:, http: or https:"),
                ('0 iodef "mailto:nobody"', "mailto:ADDRESS"),
                ('0 iodef "https:///x"', "no host"),
                ('128 future "x"', "critical"),
        ]:
            self.refused(f"example.test CAA = {data}\n", "example.test CAA", fragment)

    def test_good_caa(self) -> None:
        records = self.settings(records_ini(
            'example.test CAA = 0 issue "letsencrypt.org; validationmethods=dns-01"\n'
            '  0 issue ";"\n'
            '  0 issuewild letsencrypt.org\n'
            '  0 iodef "https://ca-reports.example.test/caa"\n'
            '  0 future "anything \\"goes\\""\n')).records
        self.assertEqual([r.strings for r in records], [
            (b"issue", b"letsencrypt.org; validationmethods=dns-01"), (b"issue", b";"),
            (b"issuewild", b"letsencrypt.org"),
            (b"iodef", b"https://ca-reports.example.test/caa"), (b"future", b'anything "goes"')])

    def test_every_problem_reported(self) -> None:
        """
        Each bad key is its own problem, all in one pass.
        """
        problems = self.problems(records_ini(
            "example.test CNAME = mail.example.test\n"
            'example.net TXT = "x"\n'
            "x.example.test A = ::1\n"
            'fine.example.test TXT = "ok"\n'))
        self.assertEqual(self.where(problems), [("records", "example.test CNAME"),
                                                ("records", "example.net TXT"),
                                                ("records", "x.example.test A")])

    def test_continuation_comment_ends_value(self) -> None:
        """
        A comment line inside a value ends it, so the indented line after
        it is no record but a syntax error with its line number.
        """
        problems = self.problems(records_ini("example.test MX = 10 mail.example.test\n"
                                             "  ; backup\n  20 mx.example.net\n"))
        self.assertEqual(len(problems), 1)
        self.assertIn("not a [section], key = value or comment", problems[0].message)


class DerivedTests(SynchronousTestCase):
    """
    L{derived} names every RRset dns/records.py publishes, so the load-time
    rules know each record SmartDiscover derives.  Should a new derived
    record come along, this fails until config/zone_records.py knows it.
    """

    def test_derived_covers_published(self) -> None:
        configurations = {
            "etc/sd.ini": (PROJECT_ROOT / "etc" / "sd.ini").read_text(encoding="utf-8"),
            "test_dns_wire": ZONE_INI,
            "minimal": dns_ini(),
            "mx and caldav": dns_ini("mx = 10 mail.example.test\n", base=LISTENING_INI.replace(
                "[urls]\n", "[urls]\ncaldav = /dav/\ncarddav = /dav/\n")),
        }
        for label, ini in configurations.items():
            model = load_model(ini)
            assert model.dns is not None
            for domain in model.domains:
                catalogue = model.catalogue_for(domain)
                owned = derived(domain, catalogue, model.dns)
                for owner, type_, _ in zone_records(domain, catalogue, model.dns,
                                                    model.https.port, 1):
                    text = dns.rdatatype.to_text(type_)
                    self.assertIn(text, owned.get(owner, {}), (label, owner, text))

    def test_srv_owners(self) -> None:
        """
        Every SRV owner SmartDiscover publishes is always there ("0 0 0 ."
        where not offered).
        """
        model = load_model(dns_ini())
        assert model.dns is not None
        published = {owner for owner, type_, _ in zone_records(
            "example.test", model.catalogue, model.dns, 443, 1) if type_ == 33}
        self.assertEqual(published, {f"{label}.example.test" for label in DERIVED_SRV})


_TABLE: dict[str, Table] = {}


def table(ini: str = WIRE_INI) -> Table:
    """
    The answers of C{ini}'s zones, with a fixed SOA serial (the service's
    is the time of the build) so that two tables compare byte for byte.
    """
    if ini not in _TABLE:
        _TABLE[ini] = build_table(all_records(load_model(ini), serial=2026120301))
    return _TABLE[ini]


def rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    """
    dnspython's record for the presentation C{text}.
    """
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)


class WireTests(SynchronousTestCase):
    """
    The answers built from [records], parsed by dnspython and compared with
    dnspython's own reading of the same records in presentation format.
    """

    def ask(self, name: str, rdtype: str, udp: bool = False, **kwargs: Any
            ) -> tuple[bytes, dns.message.Message]:
        query = dns.message.make_query(name, rdtype, **kwargs)
        response = respond(query.to_wire(), table(), udp)
        assert response is not None
        parsed = dns.message.from_wire(response.data)
        self.assertTrue(query.is_response(parsed))
        self.assertTrue(parsed.flags & dns.flags.AA)
        return response.data, parsed

    def rrset(self, name: str, rdtype: str, **kwargs: Any) -> set[dns.rdata.Rdata]:
        """
        The one answer RRset at C{name}, of C{rdtype}, TTL 300.
        """
        _, response = self.ask(name, rdtype, **kwargs)
        self.assertEqual(response.rcode(), NOERROR)
        self.assertEqual(len(response.answer), 1, response)
        answer = response.answer[0]
        self.assertEqual((answer.name, answer.rdtype, answer.ttl),
                         (dns.name.from_text(name), dns.rdatatype.from_text(rdtype), 300))
        return set(answer)

    def test_txt(self) -> None:
        self.assertEqual(self.rrset("example.test", "TXT"), {
            rdata("TXT", '"v=spf1 mx -all"'),
            rdata("TXT", '"google-site-verification=abc123"')})
        self.assertEqual(self.rrset("_dmarc.example.test", "TXT"), {
            rdata("TXT", '"v=DMARC1; p=reject; rua=mailto:dmarc@example.test"')})
        self.assertEqual(self.rrset("quoted.example.test", "TXT"), {
            rdata("TXT", r'"semi; hash# quote\" back\\ byte\255" "" "two"')})

    def test_long_txt_split(self) -> None:
        """
        300 bytes: two strings (255 + 45); 4000 bytes: 16 strings; the
        answer to either holds every byte, over UDP with EDNS or over TCP.
        """
        (record,) = self.rrset("long.example.test", "TXT")
        self.assertEqual(record.strings, (b"a" * 255, b"a" * 45))
        self.assertEqual(record, rdata("TXT", f'"{"a" * 255}" "{"a" * 45}"'))
        text = "".join(chr(ord("a") + i % 26) for i in range(4000)).encode("ascii")
        (record,) = self.rrset("huge.example.test", "TXT")
        self.assertEqual([len(s) for s in record.strings], [255] * 15 + [175])
        self.assertEqual(b"".join(record.strings), text)
        data, response = self.ask("huge.example.test", "TXT", udp=True, use_edns=0)
        self.assertTrue(response.flags & dns.flags.TC)  # 4 kB never fits UDP
        self.assertLessEqual(len(data), 1232)

    def test_idn_owner(self) -> None:
        self.assertEqual(self.rrset("xn--bcher-kva.example.test", "TXT"),
                         {rdata("TXT", '"idn"')})
        self.assertEqual(self.rrset("XN--BCHER-KVA.Example.Test", "TXT"),
                         {rdata("TXT", '"idn"')})

    def test_mx_srv_caa(self) -> None:
        self.assertEqual(self.rrset("example.test", "MX"), {
            rdata("MX", "10 mail.example.test."), rdata("MX", "20 mx.example.net.")})
        self.assertEqual(self.rrset("nomail.example.test", "MX"), {rdata("MX", "0 .")})
        self.assertEqual(self.rrset("_sieve._tcp.example.test", "SRV"), {
            rdata("SRV", "0 1 4190 mail.example.test.")})
        self.assertEqual(self.rrset("_jmap._tcp.example.test", "SRV"), {rdata("SRV", "0 0 0 .")})
        self.assertEqual(self.rrset("example.test", "CAA"), {
            rdata("CAA", '0 issue "letsencrypt.org"'), rdata("CAA", '0 issuewild ";"'),
            rdata("CAA", '128 iodef "mailto:security@example.test"')})

    def test_additional_addresses(self) -> None:
        """
        An MX or SRV of [records] pointing at a host of ours carries its
        addresses in the additional section, as the derived ones do.
        """
        for name, rdtype in (("example.test", "MX"), ("_sieve._tcp.example.test", "SRV")):
            _, response = self.ask(name, rdtype)
            self.assertEqual({(rrset.name.to_text(), r.address) for rrset in response.additional
                              for r in rrset},
                             {("mail.example.test.", "192.0.2.10"),
                              ("mail.example.test.", "2001:db8::10")})

    def test_cname_chase(self) -> None:
        """
        A query at an alias gets the chain of CNAMEs and the RRset of the
        type asked at its end (RFC 1034 4.3.2).
        """
        for rdtype, end in (("A", "192.0.2.80"), ("AAAA", "2001:db8::80"), ("TXT", '"host"')):
            _, response = self.ask("www.example.test", rdtype)
            self.assertEqual(response.rcode(), NOERROR)
            self.assertEqual([(r.name.to_text(), dns.rdatatype.to_text(r.rdtype), list(r))
                              for r in response.answer], [
                ("www.example.test.", "CNAME", [rdata("CNAME", "web.example.test.")]),
                ("web.example.test.", "CNAME", [rdata("CNAME", "host.example.test.")]),
                ("host.example.test.", rdtype, [rdata(rdtype, end)])])
            self.assertEqual(response.authority, [])

    def test_cname_nodata(self) -> None:
        """
        A type the end of the chain lacks: the chain, and the SOA in the
        authority section (RFC 2308 2.2.1).
        """
        _, response = self.ask("www.example.test", "MX")
        self.assertEqual(response.rcode(), NOERROR)
        self.assertEqual([r.rdtype for r in response.answer], [dns.rdatatype.CNAME] * 2)
        self.assertEqual([(r.name.to_text(), r.rdtype) for r in response.authority],
                         [("example.test.", dns.rdatatype.SOA)])

    def test_cname_itself_and_any(self) -> None:
        """
        CNAME and ANY at an alias get its CNAME only (RFC 8482: one RRset).
        """
        for rdtype in ("CNAME", "ANY"):
            _, response = self.ask("www.example.test", rdtype)
            self.assertEqual([(r.name.to_text(), list(r)) for r in response.answer],
                             [("www.example.test.", [rdata("CNAME", "web.example.test.")])])

    def test_cname_out_of_zone(self) -> None:
        """
        An alias of a name outside our zones: the CNAME alone, for the
        resolver to follow.
        """
        for rdtype in ("A", "AAAA", "TXT"):
            _, response = self.ask("away.example.test", rdtype)
            self.assertEqual(response.rcode(), NOERROR)
            self.assertEqual([list(r) for r in response.answer],
                             [[rdata("CNAME", "target.example.net.")]])
            self.assertEqual((response.authority, response.additional), ([], []))

    def test_negative_answers_unchanged(self) -> None:
        """
        NODATA at a [records] name for another type, NXDOMAIN below the
        zone, and an empty non-terminal above an SRV owner.
        """
        for name, rdtype, rcode in (("_dmarc.example.test", "A", NOERROR),
                                    ("nothing.example.test", "TXT", NXDOMAIN),
                                    ("_sieve.example.test", "TXT", NXDOMAIN),
                                    ("_tcp.example.test", "TXT", NOERROR)):
            _, response = self.ask(name, rdtype)
            self.assertEqual((response.rcode(), response.answer), (rcode, []), name)
            self.assertEqual(response.authority[0].rdtype, dns.rdatatype.SOA)

    def test_derived_records_unchanged(self) -> None:
        """
        A file with [records] serves the derived records exactly as the
        same file without.
        """
        plain = table(records_ini(""))
        mine = table()
        for key, answer in plain.answers.items():
            if key[1] not in (255, 15, 16, 257):  # ANY, MX, TXT and CAA at the apex are ours
                self.assertEqual(mine.answers[key], answer, key)

    def test_big_txt_set_truncated_over_udp(self) -> None:
        """
        About 4.5 kB of TXT: over UDP the question alone with TC=1 (512
        bytes without EDNS, 1232 with), over TCP every record.
        """
        for kwargs, limit in (({}, 512), ({"use_edns": 0, "payload": 1232}, 1232),
                              ({"use_edns": 0, "payload": 4096}, 1232)):
            data, response = self.ask("big.example.test", "TXT", udp=True, **kwargs)
            self.assertLessEqual(len(data), limit)
            self.assertTrue(response.flags & dns.flags.TC)
            self.assertEqual(struct.unpack_from("!HHH", data, 4),
                             (1, 0, 0))  # question only, whole records or none
        _, response = self.ask("big.example.test", "TXT")
        self.assertFalse(response.flags & dns.flags.TC)
        self.assertEqual({r.strings for r in response.answer[0]},
                         {(f"{i}{'x' * 254}".encode("ascii"), b"x" * 245)
                          for i in range(BIG_TXT)})

    def test_fuzz(self) -> None:
        """
        Mutated queries for the [records] names never make the query path
        raise.
        """
        rng = random.Random(16)
        pool = [dns.message.make_query(name, rdtype, use_edns=edns).to_wire()
                for name in ("www.example.test", "away.example.test", "big.example.test",
                             "example.test")
                for rdtype in ("A", "TXT", "CNAME", "CAA", "ANY")
                for edns in (-1, 0)]
        for _ in range(5000):
            packet = mutate(rng.choice(pool), rng)
            for udp in (True, False):
                respond(packet, table(), udp)


class DriftTests(SynchronousTestCase):
    """
    The last guard in dns/configured.py: a record that meets a derived
    RRset anyway (the load-time list fell behind) is left out and logged;
    the derived answer stays whole.
    """

    def test_derived_wins(self) -> None:
        model = load_model(records_ini('x.example.test TXT = "x"\n'))
        assert model.dns is not None
        smuggled = (ZoneRecord("_imaps._tcp.example.test", "SRV", target="evil.example.net",
                               numbers=(0, 0, 1)),
                    ZoneRecord("_imap._tcp.example.test", "CNAME", target="evil.example.net"),
                    *model.dns.records)
        forged = dataclasses.replace(model, dns=dataclasses.replace(model.dns, records=smuggled))
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        forged_table = build_table(all_records(forged, serial=1))
        clean_table = build_table(all_records(model, serial=1))
        for name in (b"\x06_imaps\x04_tcp\x07example\x04test\x00",
                     b"\x05_imap\x04_tcp\x07example\x04test\x00"):
            self.assertEqual(forged_table.answers[(name, 33)], clean_table.answers[(name, 33)])
            self.assertNotIn(name, forged_table.aliases)
        warnings = [e for e in events if e.get("log_level") == LogLevel.warn
                    and "left out" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 2)
        self.assertIn((b"\x01x\x07example\x04test\x00", 16), forged_table.answers)


class DocumentedExamplesTests(_DNSConfigTestCase):
    """
    The [records] examples of docs/dns.md and docs/configuration.md load
    as they are written.
    """

    def example(self, document: str) -> str:
        text = (PROJECT_ROOT / "docs" / document).read_text(encoding="utf-8")
        start = text.index("\n[records]") + 1
        end = min(i for i in (text.find("\n\n", start), text.find("```", start)) if i > 0)
        return text[start:end] + "\n"

    def test_examples_load(self) -> None:
        for document, count in (("dns.md", 13), ("configuration.md", 5)):
            section = self.example(document)
            ini = dns_ini(hosts=PUBLIC_HOSTS) + "\n" + section
            self.assertEqual(len(self.settings(ini).records), count, document)


class ShippedConfigTests(SynchronousTestCase):
    """
    The shipped etc/sd.ini still loads (it has no [records]).
    """

    def test_loads(self) -> None:
        model = load(Path(PROJECT_ROOT / "etc" / "sd.ini"))
        assert model.dns is not None
        self.assertEqual(model.dns.records, ())
