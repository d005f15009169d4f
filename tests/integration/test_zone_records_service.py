"""
Integration tests of the zone owner's own records, C{[records]} (issue 16
section 3): the real service under twistd, queried with dnspython over UDP
and TCP as resolvers do: TXT (split at 255 bytes), CNAME, MX, SRV and CAA
answers, a TXT set too big for UDP (truncated, whole over TCP), and
SIGHUP, which applies new records and keeps the old zone when a record is
refused.

The service and its configuration are those of test_dns_service.py, with
a [records] section after [dns] (passed where that module puts extra
[dns] lines).
"""

from __future__ import annotations

from typing import Any, ClassVar

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from tests.integration.test_dns_service import (
    LOOPBACK,
    TTL,
    _ResponderTestCase,
    _SharedResponderTestCase,
    flags,
    header,
)

LONG = "".join(chr(ord("a") + i % 26) for i in range(300))
BIG_TXT = 12  # 400-byte records at bigtxt.example.test: about 5 kB in all
BIG_STRINGS = {(f"{i:02}{'t' * 253}".encode("ascii"), b"t" * 145) for i in range(BIG_TXT)}

RECORDS = f"""
[records]
example.test TXT = "v=spf1 mx -all"
                   "google-site-verification=abc123"
_dmarc.example.test TXT = "v=DMARC1; p=reject"
long.example.test TXT = "{LONG}"
www.example.test CNAME = mail.example.test
away.example.test CNAME = target.example.net
lists.example.test MX = 10 mail.example.test
                        20 mx.example.net
_sieve._tcp.example.test SRV = 0 1 4190 mail.example.test
example.test CAA = 0 issue "letsencrypt.org"
                   128 iodef "mailto:security@example.test"
bigtxt.example.test TXT = {chr(10).join(f'  "{i:02}{"t" * 398}"' for i in range(BIG_TXT))}
"""


def rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)


class _RecordsMixin(_ResponderTestCase):
    def rrset(self, name: str, rdtype: str, tcp: bool = False) -> set[dns.rdata.Rdata]:
        """
        The records of the positive, authoritative, untruncated answer to
        C{name}/C{rdtype}, after checking its name, type and TTL.
        """
        return set(self.answer(name, rdtype, tcp).answer[0])


class RecordsTests(_SharedResponderTestCase, _RecordsMixin):
    """
    Every type of [records], over UDP and TCP, read back by dnspython.
    """

    service_options: ClassVar[dict[str, Any]] = {"dns": RECORDS}

    def test_txt(self) -> None:
        """
        SPF and a verification token at the apex, DMARC below it; a
        300-byte string as two character-strings (255 + 45) that join
        back into the text (RFC 7208 3.3).
        """
        for tcp in (False, True):
            self.assertEqual(self.rrset("example.test", "TXT", tcp), {
                rdata("TXT", '"v=spf1 mx -all"'),
                rdata("TXT", '"google-site-verification=abc123"')})
            self.assertEqual(self.rrset("_dmarc.example.test", "TXT", tcp),
                             {rdata("TXT", '"v=DMARC1; p=reject"')})
            (record,) = self.rrset("long.example.test", "TXT", tcp)
            self.assertEqual([len(s) for s in record.strings], [255, 45])
            self.assertEqual(b"".join(record.strings), LONG.encode("ascii"))
        self.assert_log_clean()

    def test_cname(self) -> None:
        """
        An alias answers every type with its CNAME and, for a target of
        ours, the target's records; the CNAME alone for a foreign target.
        """
        for tcp in (False, True):
            query = dns.message.make_query("www.example.test", "A")
            response = (dns.query.tcp if tcp else dns.query.udp)(
                query, LOOPBACK, timeout=2.0, port=self.dns_port)
            self.assertEqual((response.rcode(), flags(response)),
                             (dns.rcode.NOERROR, (True, False, False)))
            self.assertEqual([(r.name.to_text(), r.ttl, set(r)) for r in response.answer], [
                ("www.example.test.", TTL, {rdata("CNAME", "mail.example.test.")}),
                ("mail.example.test.", TTL, {rdata("A", "192.0.2.10")})])
        self.assertEqual(self.rrset("www.example.test", "CNAME"),
                         {rdata("CNAME", "mail.example.test.")})
        response = self.udp("away.example.test", "AAAA")
        self.assertEqual([set(r) for r in response.answer],
                         [{rdata("CNAME", "target.example.net.")}])
        # A stub resolver follows the chain by itself.
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [LOOPBACK]
        resolver.port = self.dns_port
        answer = resolver.resolve("www.example.test", "AAAA", search=False)
        self.assertEqual(answer.canonical_name, dns.name.from_text("mail.example.test"))
        self.assertEqual({r.address for r in answer}, {"2001:db8::10"})
        self.assert_log_clean()

    def test_mx_and_srv(self) -> None:
        """
        An extra MX and SRV; their in-zone target's addresses in the
        additional section.
        """
        self.assertEqual(self.rrset("lists.example.test", "MX"), {
            rdata("MX", "10 mail.example.test."), rdata("MX", "20 mx.example.net.")})
        self.assertEqual(self.rrset("_sieve._tcp.example.test", "SRV", tcp=True),
                         {rdata("SRV", "0 1 4190 mail.example.test.")})
        for name, rdtype in (("lists.example.test", "MX"), ("_sieve._tcp.example.test", "SRV")):
            response = self.answer(name, rdtype)
            self.assertEqual(self.additional_addresses(response, "mail.example.test."),
                             {"192.0.2.10", "2001:db8::10"})
        # The derived apex MX of [dns] mx is unchanged beside them.
        self.assertEqual(self.rrset("example.test", "MX"), {
            rdata("MX", "10 mx1.example.test."), rdata("MX", "20 mx.example.net.")})
        self.assert_log_clean()

    def test_caa(self) -> None:
        for tcp in (False, True):
            self.assertEqual(self.rrset("example.test", "CAA", tcp), {
                rdata("CAA", '0 issue "letsencrypt.org"'),
                rdata("CAA", '128 iodef "mailto:security@example.test"')})
        self.assert_log_clean()

    def test_big_txt_set(self) -> None:
        """
        About 5 kB of TXT: over UDP only the question with TC=1 (at most
        512 bytes without EDNS, 1232 with), over TCP every record; a stub
        resolver retries over TCP by itself.
        """
        for kwargs, limit in (({}, 512), ({"use_edns": 0, "payload": 1232}, 1232),
                              ({"use_edns": 0, "payload": 65535}, 1232)):
            query = dns.message.make_query("bigtxt.example.test", "TXT", **kwargs)
            data = self.udp_raw(query.to_wire())
            response = dns.message.from_wire(data)
            self.assertLessEqual(len(data), limit)
            self.assertEqual(flags(response), (True, False, True))
            self.assertEqual(header(data)[2:5], (1, 0, 0))
        for kwargs in ({}, {"use_edns": 0, "payload": 1232}):
            response = self.tcp("bigtxt.example.test", "TXT", **kwargs)
            self.assertEqual(flags(response), (True, False, False))
            self.assertEqual({r.strings for r in response.answer[0]}, BIG_STRINGS)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [LOOPBACK]
        resolver.port = self.dns_port
        resolver.lifetime = 3
        answer = resolver.resolve("bigtxt.example.test", "TXT", search=False)
        self.assertEqual({r.strings for r in answer}, BIG_STRINGS)
        self.assert_log_clean()


class RecordsReloadTests(_RecordsMixin):
    """
    SIGHUP picks up changed [records]; a file with a refused record leaves
    the zone in force byte for byte and names the record's key.

    A service per test: each rewrites the configuration and reloads it.
    """

    def setUp(self) -> None:
        self.start(dns=RECORDS)

    def test_reload_changes_records(self) -> None:
        self.assertEqual(self.udp("new.example.test", "TXT").rcode(), dns.rcode.NXDOMAIN)
        self.options["dns"] = RECORDS.replace(
            '"v=spf1 mx -all"', '"v=spf1 -all"') + 'new.example.test TXT = "added"\n'
        self.config.write_text(self.ini(), encoding="utf-8")
        self.service.reload("reloaded")
        for tcp in (False, True):
            self.assertEqual(self.rrset("new.example.test", "TXT", tcp),
                             {rdata("TXT", '"added"')})
            self.assertIn(rdata("TXT", '"v=spf1 -all"'), self.rrset("example.test", "TXT", tcp))
        self.assert_log_clean()

    def test_refused_record_keeps_zone(self) -> None:
        """
        A CNAME at the apex, a CNAME beside a TXT, a record that contradicts
        a derived SRV or a [hosts] address, an owner outside the zones, a
        cut TXT string or a bad CAA: "reload failed" naming [records] and
        the key, and the old answers unchanged.
        """
        queries = [dns.message.make_query(name, rdtype, id=1600 + i).to_wire()
                   for i, (name, rdtype) in enumerate([("example.test", "TXT"),
                                                       ("www.example.test", "A"),
                                                       ("_imaps._tcp.example.test", "SRV")])]
        before = [self.udp_raw(query) for query in queries]
        for extra, key in [
                ("example.test CNAME = mail.example.test\n", "example.test CNAME"),
                ('www.example.test TXT = "x"\n', "www.example.test CNAME"),
                ("_imaps._tcp.example.test SRV = 0 1 993 evil.example.net\n",
                 "_imaps._tcp.example.test SRV"),
                ("mail.example.test A = 192.0.2.66\n", "mail.example.test A"),
                ('example.net TXT = "x"\n', "example.net TXT"),
                ('cut.example.test TXT = "v=spf1 ; -all"\n', "cut.example.test TXT"),
                ('example.test CAA = 1 issue "ca.example"\n', "example.test CAA"),
                (f'huge.example.test TXT = "{"h" * 40000}"\n', "huge.example.test TXT")]:
            # A second CAA key would be "given twice": replace the good one.
            records = (RECORDS.replace("example.test CAA = 0 issue", "caa.example.test CAA = 0 "
                                       "issue") if "CAA" in key else RECORDS)
            self.options["dns"] = records + extra
            self.config.write_text(self.ini(), encoding="utf-8")
            self.service.reload("reload failed")
            self.assertIn(f"{self.config}: [records] {key}: ", self.service.log())
            self.assertEqual([self.udp_raw(query) for query in queries], before, key)
        self.assert_log_clean()
