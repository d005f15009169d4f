"""
Tests for the DNS query path, L{smartdiscover.dns.wire.respond}, over the
table L{smartdiscover.dns.server.build_zones} compiles from a configuration:
the records of every served domain (issue 5 section 1; PROTOCOLS.md section
9), the header, EDNS, size limits and negative answers (SECURITY.md F1-F4,
6.1, 6.2), malformed packets (SECURITY.md 6.3) and a bounded mutation fuzz.

In process: queries are built and responses parsed with dnspython, no
sockets, no reactor.
"""

from __future__ import annotations

import random
import struct
import tempfile
import time
from typing import Any

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import load
from smartdiscover.dns.server import build_zones
from smartdiscover.dns.table import Table
from smartdiscover.dns.wire import Response, respond
from tests.helpers import build_ini, write_config

# One name with 60 IPv6 addresses: about 1.7 kB of AAAA, more than any UDP
# limit; one with 30: about 0.9 kB, between 512 and 1232 bytes.
BIG = [f"2001:db8:b16::{i:x}" for i in range(1, 61)]
MID = [f"2001:db8:3::{i:x}" for i in range(1, 31)]

# Every service, two served domains (other.test overrides the securities,
# the SIP transport and the public host name), [dns] and [hosts].
ZONE_INI = build_ini({
    "server": {"domains": "example.test, other.test", "dns": "127.0.0.1:8053"},
    "dns": {"ttl": "300", "nameservers": "ns1.example.test, ns.elsewhere.net",
            "hostmaster": "admin@example.test", "mx": "10 mx.example.test, 20 mx.backup.net"},
    "hosts": {
        "mail.example.test": "192.0.2.10, 2001:db8::10",
        "ns1.example.test": "192.0.2.53",
        "mx.example.test": "192.0.2.25, 2001:db8::25",
        "chat.example.test": "192.0.2.20",
        "sip.example.test": "2001:db8::5060",
        "dav.example.test": "192.0.2.80",
        "mail.other.test": "198.51.100.10",
        "big.example.test": ", ".join(BIG),
        "mid.example.test": ", ".join(MID),
    },
    "imap": {"port": "993"},
    "smtp": {"port": None, "security": "ssl"},
    "xmpp": {"host": "chat.example.test", "security": "starttls", "server_port": "5269"},
    "sip": {"host": "sip.example.test", "transport": "tls"},
    "urls": {"activesync": "/Microsoft-Server-ActiveSync", "ews": "/EWS/Exchange.asmx",
             "webclient": None, "caldav": "https://dav.example.test/caldav/",
             "carddav": "https://dav.example.test:8843/carddav/"},
    "domain:other.test": {
        "server.public_hostname": "mail.other.test",
        "imap.security": "starttls",
        "imap.port": "143",
        "smtp.security": "starttls",
        "smtp.port": "587",
        "xmpp.security": "ssl",
        "sip.transport": "udp",
        "sip.security": "none",
    },
})

NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 3, 4, 5
BADVERS = 16
QR, AA, TC, RD, RA, Z = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0040
UDP_LIMIT = 1232

_TABLE: Table | None = None


def zone_table() -> Table:
    """
    The table of L{ZONE_INI}, built once for the whole module.
    """
    global _TABLE
    if _TABLE is None:
        with tempfile.TemporaryDirectory() as directory:
            _TABLE = build_zones(load(write_config(directory, ZONE_INI)))
    return _TABLE


def header(ident: int = 0x1234, flags: int = RD, qd: int = 1, an: int = 0, ns: int = 0,
           ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def labels(*parts: bytes) -> bytes:
    """
    An uncompressed wire-format name of C{parts}.
    """
    return b"".join(bytes([len(p)]) + p for p in parts) + b"\x00"


QNAME = labels(b"example", b"test")
A_IN = struct.pack("!HH", 1, 1)
OPT_1232 = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


def query(name: str, rdtype: Any, **kwargs: Any) -> dns.message.QueryMessage:
    return dns.message.make_query(name, rdtype, **kwargs)


class _WireTestCase(SynchronousTestCase):
    """
    Asking the table and parsing what comes back.
    """

    def setUp(self) -> None:
        self.table = zone_table()

    def raw(self, packet: bytes, udp: bool = True) -> Response | None:
        return respond(packet, self.table, udp)

    def exchange(self, message: dns.message.Message, udp: bool = True
                 ) -> tuple[bytes, dns.message.Message]:
        """
        Send C{message}; return the response bytes and the parsed response,
        checked to be a response to C{message} with RA=0 and Z=0.
        """
        wire = message.to_wire()
        response = self.raw(wire, udp)
        self.assertIsNotNone(response)
        assert response is not None
        try:
            parsed = dns.message.from_wire(response.data)
        except dns.exception.DNSException as e:
            self.fail(f"unparsable response to {message.question}: {e!r}")
        self.assertTrue(message.is_response(parsed), parsed)
        self.assertEqual(parsed.id, message.id)
        self.assertFalse(parsed.flags & dns.flags.RA)
        self.assertFalse(struct.unpack_from("!H", response.data, 2)[0] & Z)
        self.assertEqual(dns.rcode.to_text(response.rcode), dns.rcode.to_text(parsed.rcode()))
        if udp:
            self.assertLessEqual(len(response.data), 512 if message.edns < 0 else UDP_LIMIT)
        return response.data, parsed

    def ask(self, name: str, rdtype: Any, udp: bool = True, **kwargs: Any
            ) -> dns.message.Message:
        return self.exchange(query(name, rdtype, **kwargs), udp)[1]

    def answer(self, name: str, rdtype: Any, **kwargs: Any) -> list[str]:
        """
        The answer RRset of a positive authoritative answer, as text.
        """
        response = self.ask(name, rdtype, **kwargs)
        self.assertEqual(response.rcode(), NOERROR)
        self.assertTrue(response.flags & dns.flags.AA)
        self.assertEqual(len(response.answer), 1, response)
        rrset = response.answer[0]
        self.assertEqual(rrset.name, dns.name.from_text(name))
        self.assertEqual(rrset.rdtype, dns.rdatatype.from_text(rdtype))
        self.assertEqual(rrset.ttl, 300)
        return sorted(rdata.to_text() for rdata in rrset)

    def additional(self, name: str, rdtype: Any) -> set[tuple[str, str, str]]:
        """
        The additional section of an answer as (owner, type, rdata) triples.
        """
        response = self.ask(name, rdtype)
        return {(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rdata.to_text())
                for rrset in response.additional for rdata in rrset}

    def assertNegative(self, name: str, rdtype: Any, rcode: int, apex: str,
                       udp: bool = True) -> None:
        """
        NXDOMAIN or NODATA: authoritative, no answer, the zone's SOA.
        """
        response = self.ask(name, rdtype, udp=udp)
        self.assertEqual(response.rcode(), rcode)
        self.assertTrue(response.flags & dns.flags.AA)
        self.assertEqual(response.answer, [])
        self.assertEqual(len(response.authority), 1)
        soa = response.authority[0]
        self.assertEqual(soa.rdtype, dns.rdatatype.SOA)
        self.assertEqual(soa.name, dns.name.from_text(apex))
        self.assertEqual(response.additional, [])

    def assertRefused(self, message: dns.message.Message, udp: bool = True) -> None:
        """
        REFUSED, AA=0, RA=0, nothing but the question.
        """
        _, response = self.exchange(message, udp)
        self.assertEqual(response.rcode(), REFUSED)
        self.assertFalse(response.flags & dns.flags.AA)
        self.assertEqual((response.answer, response.authority, response.additional),
                         ([], [], []))

    def assertRejected(self, packet: bytes, rcode: int = FORMERR) -> None:
        """
        C{packet} gets no reply, or an error with its ID, over UDP and TCP.
        """
        for udp in (True, False):
            response = self.raw(packet, udp)
            if response is None:
                continue
            ident, flags, qd, an, ns = struct.unpack_from("!HHHHH", response.data)
            self.assertEqual(ident, struct.unpack_from("!H", packet)[0])
            self.assertEqual((flags & QR, flags & 0x000F, response.rcode), (QR, rcode, rcode))
            self.assertEqual((an, ns), (0, 0))
            self.assertFalse(flags & (RA | AA))
            dns.message.from_wire(response.data)  # well-formed

    def assertFormErr(self, packet: bytes) -> None:
        """
        C{packet} is answered FORMERR (not dropped) over UDP and TCP.
        """
        for udp in (True, False):
            response = self.raw(packet, udp)
            self.assertIsNotNone(response, packet)
            assert response is not None
            self.assertEqual(response.rcode, FORMERR, packet)
        self.assertRejected(packet)


class MailRecordTests(_WireTestCase):
    """
    RFC 6186 and RFC 8314 SRV records follow the configured security
    (PROTOCOLS.md 9.2, 9.7; issue 5 section 1).
    """

    def test_implicit_tls(self) -> None:
        """
        example.test offers IMAP and submission over implicit TLS and POP3
        with STARTTLS: _imaps, _submissions and _pop3 point at the host and
        port; the other variant of each gets the "." target.
        """
        self.assertEqual(self.answer("_imaps._tcp.example.test", "SRV"),
                         ["0 1 993 mail.example.test."])
        self.assertEqual(self.answer("_submissions._tcp.example.test", "SRV"),
                         ["0 1 465 mail.example.test."])
        self.assertEqual(self.answer("_pop3._tcp.example.test", "SRV"),
                         ["0 1 110 mail.example.test."])
        for owner in ("_imap", "_submission", "_pop3s"):
            self.assertEqual(self.answer(f"{owner}._tcp.example.test", "SRV"), ["0 0 0 ."])

    def test_domain_override(self) -> None:
        """
        other.test's [domain:] section switches IMAP and SMTP to STARTTLS:
        its _imap and _submission carry the ports, _imaps and
        _submissions get ".", and example.test is unaffected.
        """
        self.assertEqual(self.answer("_imap._tcp.other.test", "SRV"),
                         ["0 1 143 mail.example.test."])
        self.assertEqual(self.answer("_submission._tcp.other.test", "SRV"),
                         ["0 1 587 mail.example.test."])
        self.assertEqual(self.answer("_imaps._tcp.other.test", "SRV"), ["0 0 0 ."])
        self.assertEqual(self.answer("_submissions._tcp.other.test", "SRV"), ["0 0 0 ."])
        self.assertEqual(self.answer("_imap._tcp.example.test", "SRV"), ["0 0 0 ."])

    def test_not_offered_has_no_additional(self) -> None:
        """
        A "." target (RFC 2782, PROTOCOLS.md 9.1) has no address to add.
        """
        self.assertEqual(self.additional("_pop3s._tcp.example.test", "SRV"), set())


class OtherServiceTests(_WireTestCase):
    """
    CalDAV/CardDAV (RFC 6764), XMPP (RFC 6120, XEP-0368), SIP (RFC 3263) and
    Microsoft's _autodiscover._tcp (PROTOCOLS.md 9.3-9.7).
    """

    def test_dav_srv_and_path(self) -> None:
        """
        _caldavs and _carddavs point at the URLs' host and port (443 when
        the URL has none) with a TXT path=; plain _caldav/_carddav get ".".
        """
        self.assertEqual(self.answer("_caldavs._tcp.example.test", "SRV"),
                         ["0 1 443 dav.example.test."])
        self.assertEqual(self.answer("_caldavs._tcp.example.test", "TXT"), ['"path=/caldav/"'])
        self.assertEqual(self.answer("_carddavs._tcp.example.test", "SRV"),
                         ["0 1 8843 dav.example.test."])
        self.assertEqual(self.answer("_carddavs._tcp.other.test", "TXT"), ['"path=/carddav/"'])
        self.assertEqual(self.answer("_caldav._tcp.example.test", "SRV"), ["0 0 0 ."])
        self.assertEqual(self.answer("_carddav._tcp.other.test", "SRV"), ["0 0 0 ."])

    def test_xmpp(self) -> None:
        """
        STARTTLS XMPP is _xmpp-client (5222) with _xmpps-client "."; the
        override to implicit TLS is _xmpps-client (5223, XEP-0368) with
        _xmpp-client "."; server_port gives _xmpp-server.
        """
        self.assertEqual(self.answer("_xmpp-client._tcp.example.test", "SRV"),
                         ["0 1 5222 chat.example.test."])
        self.assertEqual(self.answer("_xmpps-client._tcp.example.test", "SRV"), ["0 0 0 ."])
        self.assertEqual(self.answer("_xmpps-client._tcp.other.test", "SRV"),
                         ["0 1 5223 chat.example.test."])
        self.assertEqual(self.answer("_xmpp-client._tcp.other.test", "SRV"), ["0 0 0 ."])
        for domain in ("example.test", "other.test"):
            self.assertEqual(self.answer(f"_xmpp-server._tcp.{domain}", "SRV"),
                             ["0 1 5269 chat.example.test."])

    def test_sip(self) -> None:
        """
        SIP over TLS is _sips._tcp (5061) with a SIPS+D2T NAPTR at the
        apex; over UDP (the override) _sip._udp (5060) with SIP+D2U; the
        other transports get "." (RFC 3263, PROTOCOLS.md 9.5).
        """
        self.assertEqual(self.answer("_sips._tcp.example.test", "SRV"),
                         ["0 1 5061 sip.example.test."])
        self.assertEqual(self.answer("example.test", "NAPTR"),
                         ['50 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.'])
        self.assertEqual(self.answer("_sip._udp.other.test", "SRV"),
                         ["0 1 5060 sip.example.test."])
        self.assertEqual(self.answer("other.test", "NAPTR"),
                         ['100 50 "s" "SIP+D2U" "" _sip._udp.other.test.'])
        for name in ("_sip._udp.example.test", "_sip._tcp.example.test",
                     "_sip._tcp.other.test", "_sips._tcp.other.test"):
            self.assertEqual(self.answer(name, "SRV"), ["0 0 0 ."])

    def test_autodiscover_srv(self) -> None:
        """
        _autodiscover._tcp points at each domain's public host on the HTTPS
        port with weight 5 as Microsoft publishes it (PROTOCOLS.md 9.6), with
        its address in the additional section.
        """
        self.assertEqual(self.answer("_autodiscover._tcp.example.test", "SRV"),
                         ["0 5 8443 mail.example.test."])
        self.assertEqual(self.answer("_autodiscover._tcp.other.test", "SRV"),
                         ["0 5 8443 mail.other.test."])
        self.assertEqual(self.additional("_autodiscover._tcp.other.test", "SRV"),
                         {("mail.other.test.", "A", "198.51.100.10")})


class AddressAndApexTests(_WireTestCase):
    """
    A/AAAA from [hosts], the autodiscover/autoconfig aliases, the additional
    section, SOA, NS and MX (issue 5 section 1; PROTOCOLS.md 9.7).
    """

    def test_aliases(self) -> None:
        """
        autodiscover.<d> and autoconfig.<d> carry the addresses of the
        domain's public host.
        """
        for alias in ("autodiscover", "autoconfig"):
            self.assertEqual(self.answer(f"{alias}.example.test", "A"), ["192.0.2.10"])
            self.assertEqual(self.answer(f"{alias}.example.test", "AAAA"), ["2001:db8::10"])
            self.assertEqual(self.answer(f"{alias}.other.test", "A"), ["198.51.100.10"])

    def test_hosts(self) -> None:
        """
        Every in-zone SRV target has its [hosts] addresses.
        """
        self.assertEqual(self.answer("mail.example.test", "A"), ["192.0.2.10"])
        self.assertEqual(self.answer("chat.example.test", "A"), ["192.0.2.20"])
        self.assertEqual(self.answer("sip.example.test", "AAAA"), ["2001:db8::5060"])
        self.assertEqual(self.answer("dav.example.test", "A"), ["192.0.2.80"])
        self.assertEqual(self.answer("mail.other.test", "A"), ["198.51.100.10"])
        self.assertEqual(len(self.answer("mid.example.test", "AAAA", udp=False)), len(MID))

    def test_additional_for_srv(self) -> None:
        """
        SRV answers carry the A and AAAA of their in-zone target
        (PROTOCOLS.md 9.7: "in the additional section when we are
        authoritative for it").
        """
        mail = {("mail.example.test.", "A", "192.0.2.10"),
                ("mail.example.test.", "AAAA", "2001:db8::10")}
        self.assertEqual(self.additional("_imaps._tcp.example.test", "SRV"), mail)
        self.assertEqual(self.additional("_imap._tcp.other.test", "SRV"), mail)
        self.assertEqual(self.additional("_sips._tcp.example.test", "SRV"),
                         {("sip.example.test.", "AAAA", "2001:db8::5060")})
        self.assertEqual(self.additional("_caldavs._tcp.example.test", "SRV"),
                         {("dav.example.test.", "A", "192.0.2.80")})

    def test_soa_and_ns(self) -> None:
        """
        The apex has the SOA (MNAME the first name server, RNAME from
        hostmaster) and the NS records; the in-zone name server's address
        is in the additional section, the outside one's is not.
        """
        for apex in ("example.test", "other.test"):
            (soa,) = self.answer(apex, "SOA")
            fields = soa.split()
            self.assertEqual(fields[:2], ["ns1.example.test.", "admin.example.test."])
            self.assertEqual(fields[3:], ["3600", "600", "1209600", "300"])
            self.assertLess(abs(int(fields[2]) - time.time()), 3600)
            self.assertEqual(self.answer(apex, "NS"),
                             ["ns.elsewhere.net.", "ns1.example.test."])
            self.assertEqual(self.additional(apex, "NS"),
                             {("ns1.example.test.", "A", "192.0.2.53")})

    def test_mx(self) -> None:
        """
        [dns] mx is published at every apex, with the in-zone exchanger's
        addresses as additional data.
        """
        for apex in ("example.test", "other.test"):
            self.assertEqual(self.answer(apex, "MX"),
                             ["10 mx.example.test.", "20 mx.backup.net."])
            self.assertEqual(self.additional(apex, "MX"),
                             {("mx.example.test.", "A", "192.0.2.25"),
                              ("mx.example.test.", "AAAA", "2001:db8::25")})


class HeaderTests(_WireTestCase):
    """
    Header bits and the echoed question (SECURITY.md 6.2: AA, RA=0, Z=0,
    0x20 mixed case).
    """

    def test_flags(self) -> None:
        """
        Answers are authoritative, never recursive; RD is copied; Z, AD and
        the opcode are clear.
        """
        for rd in (0, dns.flags.RD):
            wire = bytearray(query("_imaps._tcp.example.test", "SRV", flags=rd).to_wire())
            wire[3] |= Z | 0x20  # Z and AD set in the query
            response = self.raw(bytes(wire))
            assert response is not None
            flags = struct.unpack_from("!H", response.data, 2)[0]
            self.assertEqual(flags & 0xFFF0, QR | AA | rd, hex(flags))

    def test_id_copied(self) -> None:
        """
        The response carries the query's ID, whatever it is.
        """
        for ident in (0, 1, 0x8000, 0xFFFF):
            _, response = self.exchange(query("example.test", "SOA", id=ident))
            self.assertEqual(response.id, ident)

    def test_mixed_case_question_echoed(self) -> None:
        """
        A 0x20-encoded question is answered, and echoed byte for byte, in
        every kind of response; the answer's owner follows its case.
        """
        for name, rdtype in (("_ImAPs._TCP.eXaMpLe.TeSt", "SRV"),
                             ("AutoDiscover.Example.TEST", "A"),
                             ("NoSuchName.EXAMPLE.test", "A"),
                             ("WWW.Google.COM", "A"),
                             ("BiG.eXample.TEST", "AAAA")):
            wire = query(name, rdtype).to_wire()
            response = self.raw(wire)
            assert response is not None
            self.assertEqual(response.data[12:len(wire)], wire[12:], name)
            parsed = dns.message.from_wire(response.data)
            self.assertEqual(parsed.question[0].name.to_text(), name + ".")
        _, parsed = self.exchange(query("_ImAPs._TCP.eXaMpLe.TeSt", "SRV"))
        self.assertEqual(parsed.answer[0].name.to_text(), "_ImAPs._TCP.eXaMpLe.TeSt.")
        self.assertEqual(parsed.answer[0][0].to_text(), "0 1 993 mail.example.test.")


class NegativeTests(_WireTestCase):
    """
    NXDOMAIN and NODATA (SECURITY.md 6.2; RFC 2308).
    """

    def test_nxdomain(self) -> None:
        """
        A name that does not exist in a zone: NXDOMAIN, AA=1, the zone's SOA.
        """
        self.assertNegative("nope.example.test", "A", NXDOMAIN, "example.test")
        self.assertNegative("a.b.c.autodiscover.example.test", "A", NXDOMAIN, "example.test")
        self.assertNegative("_nope._tcp.other.test", "SRV", NXDOMAIN, "other.test", udp=False)

    def test_nodata(self) -> None:
        """
        An existing name asked for another type: NOERROR, no answer, SOA.
        """
        self.assertNegative("autodiscover.example.test", "TXT", NOERROR, "example.test")
        self.assertNegative("example.test", "A", NOERROR, "example.test")
        self.assertNegative("_imaps._tcp.example.test", "TXT", NOERROR, "example.test")
        self.assertNegative("mail.other.test", "AAAA", NOERROR, "other.test")

    def test_empty_non_terminal(self) -> None:
        """
        _tcp.<domain> holds no record but names below it do: NODATA, not
        NXDOMAIN (RFC 8020).
        """
        self.assertNegative("_tcp.example.test", "SRV", NOERROR, "example.test")
        self.assertNegative("_udp.other.test", "A", NOERROR, "other.test")


class RefusedTests(_WireTestCase):
    """
    Outside the zones, other classes and zone transfers are REFUSED; ANY is
    minimal (SECURITY.md F2, F3, 6.1, 6.2; RFC 8482).
    """

    def test_out_of_zone(self) -> None:
        """
        Names outside every served zone, including the root, a parent of
        the zones and a name that merely ends in the zone's text.
        """
        for name in ("www.google.com", "example.test.evil", ".", "test", "xexample.test",
                     "mail.example.testx"):
            self.assertRefused(query(name, "A"))
            self.assertRefused(query(name, "NS", use_edns=0), udp=False)

    def test_refused_with_edns(self) -> None:
        """
        A REFUSED answer to an EDNS query still carries an OPT (RFC 6891).
        """
        _, response = self.exchange(query("www.google.com", "A", use_edns=0))
        self.assertEqual((response.rcode(), response.edns, response.payload),
                         (REFUSED, 0, UDP_LIMIT))

    def test_chaos_version_bind(self) -> None:
        """
        CH version.bind TXT never reveals a version; CH for a served name
        is refused too.
        """
        for name in ("version.bind", "hostname.bind", "example.test"):
            self.assertRefused(query(name, "TXT", rdclass=dns.rdataclass.CH))

    def test_zone_transfers(self) -> None:
        """
        AXFR and IXFR are REFUSED with no zone data, over UDP and TCP.
        """
        for rdtype in ("AXFR", "IXFR"):
            for udp in (True, False):
                for apex in ("example.test", "other.test"):
                    self.assertRefused(query(apex, rdtype), udp)

    def test_any(self) -> None:
        """
        ANY gets exactly one HINFO "RFC8482" record, never the zone's data,
        at the apex, at a leaf and at an empty non-terminal; in zone only.
        """
        for name in ("example.test", "_imaps._tcp.example.test", "_tcp.other.test",
                     "big.example.test"):
            for udp in (True, False):
                data, response = self.exchange(query(name, "ANY"), udp)
                self.assertLessEqual(len(data), 512)
                self.assertEqual(response.rcode(), NOERROR)
                self.assertTrue(response.flags & dns.flags.AA)
                self.assertEqual(len(response.answer), 1)
                (rdata,) = response.answer[0]
                self.assertEqual(response.answer[0].rdtype, dns.rdatatype.HINFO)
                self.assertEqual((rdata.cpu, rdata.os), (b"RFC8482", b""))
                self.assertEqual((response.authority, response.additional), ([], []))
        self.assertNegative("nope.example.test", "ANY", NXDOMAIN, "example.test")
        self.assertRefused(query("www.google.com", "ANY"))


class SizeTests(_WireTestCase):
    """
    UDP answers fit 512 bytes without EDNS and min(client, 1232) with it;
    otherwise TC=1 and the question only; TCP gets everything (SECURITY.md
    F1, 6.1; issue 5 section 2).
    """

    def assertTruncated(self, message: dns.message.Message, limit: int) -> None:
        data, response = self.exchange(message, udp=True)
        self.assertLessEqual(len(data), limit)
        self.assertTrue(response.flags & dns.flags.TC)
        self.assertEqual(response.rcode(), NOERROR)
        self.assertEqual((response.answer, response.authority, response.additional),
                         ([], [], []))
        self.assertEqual(response.edns, message.edns)
        if message.edns >= 0:
            self.assertEqual(response.payload, UDP_LIMIT)

    def assertComplete(self, message: dns.message.Message, udp: bool,
                       addresses: list[str]) -> bytes:
        data, response = self.exchange(message, udp)
        self.assertFalse(response.flags & dns.flags.TC)
        self.assertEqual(len(response.answer), 1)
        self.assertEqual(sorted(r.to_text() for r in response.answer[0]), sorted(addresses))
        self.assertEqual(response.edns, message.edns)
        return data

    def test_no_edns(self) -> None:
        """
        Without EDNS an answer over 512 bytes is truncated to the question.
        """
        self.assertTruncated(query("big.example.test", "AAAA"), 512)
        self.assertTruncated(query("mid.example.test", "AAAA"), 512)

    def test_edns_1232(self) -> None:
        """
        With EDNS 1232 an answer of about 900 bytes is sent whole; one of
        about 1.7 kB is truncated with an OPT.
        """
        data = self.assertComplete(query("mid.example.test", "AAAA", use_edns=0, payload=1232),
                                   True, MID)
        self.assertGreater(len(data), 512)
        self.assertTruncated(query("big.example.test", "AAAA", use_edns=0, payload=1232),
                             UDP_LIMIT)

    def test_small_payload(self) -> None:
        """
        An EDNS payload under 512 counts as 512: a 900-byte answer is
        truncated to 512, a small one is not cut at the client's 100.
        """
        self.assertTruncated(query("mid.example.test", "AAAA", use_edns=0, payload=100), 512)
        data, response = self.exchange(
            query("_imaps._tcp.example.test", "SRV", use_edns=0, payload=100))
        self.assertGreater(len(data), 100)
        self.assertFalse(response.flags & dns.flags.TC)
        self.assertEqual(len(response.answer), 1)

    def test_large_payload_capped(self) -> None:
        """
        An EDNS payload of 4096 is capped at 1232 (DNS Flag Day 2020).
        """
        self.assertTruncated(query("big.example.test", "AAAA", use_edns=0, payload=4096),
                             UDP_LIMIT)
        self.assertTruncated(query("big.example.test", "AAAA", use_edns=0, payload=65535),
                             UDP_LIMIT)

    def test_tcp_full_answer(self) -> None:
        """
        The query truncated over UDP gets every record over TCP, with and
        without EDNS (the TC retry).
        """
        for message in (query("big.example.test", "AAAA"),
                        query("big.example.test", "AAAA", use_edns=0, payload=1232),
                        query("mid.example.test", "AAAA")):
            data = self.assertComplete(message, False,
                                       BIG if message.question[0].name.labels[0] == b"big"
                                       else MID)
            self.assertGreater(len(data), 512)

    def test_truncated_is_whole(self) -> None:
        """
        A truncated response is never cut mid-record: it is the header, the
        question and the OPT, and parses; its length is exactly that.
        """
        for edns in (-1, 0):
            wire = query("BIG.example.test", "AAAA", use_edns=edns).to_wire()
            response = self.raw(wire)
            assert response is not None
            self.assertEqual(len(response.data), len(wire))  # the query's header and OPT
            self.assertTrue(response.truncated)
            parsed = dns.message.from_wire(response.data)
            self.assertTrue(parsed.flags & dns.flags.TC)
            self.assertEqual(parsed.answer, [])


class EDNSTests(_WireTestCase):
    """
    EDNS(0) (RFC 6891; SECURITY.md F4, 6.2).
    """

    def test_opt_in_answers(self) -> None:
        """
        Every answer to an EDNS query has an OPT, version 0, payload 1232;
        answers to plain queries have none.
        """
        for name, rdtype in (("_imaps._tcp.example.test", "SRV"), ("nope.example.test", "A"),
                             ("example.test", "A"), ("example.test", "ANY")):
            for payload in (512, 1232, 4096):
                _, response = self.exchange(query(name, rdtype, use_edns=0, payload=payload))
                self.assertEqual((response.edns, response.payload, response.ednsflags),
                                 (0, UDP_LIMIT, 0))
            _, response = self.exchange(query(name, rdtype))
            self.assertEqual(response.edns, -1)

    def test_badvers(self) -> None:
        """
        EDNS version 1 (or 255) gets BADVERS with an OPT of version 0.
        """
        for version in (1, 255):
            for udp in (True, False):
                _, response = self.exchange(
                    query("_imaps._tcp.example.test", "SRV", use_edns=version), udp)
                self.assertEqual(response.rcode(), BADVERS)
                self.assertEqual((response.edns, response.payload), (0, UDP_LIMIT))
                self.assertEqual(response.answer, [])

    def test_unknown_option(self) -> None:
        """
        Unknown option 65001 is ignored and not echoed.
        """
        message = query("_imaps._tcp.example.test", "SRV", use_edns=0,
                        options=[dns.edns.GenericOption(65001, b"\x01\x02\x03")])
        _, response = self.exchange(message)
        self.assertEqual(response.rcode(), NOERROR)
        self.assertEqual(len(response.answer), 1)
        self.assertEqual(response.options, ())

    def test_unknown_flags(self) -> None:
        """
        Unknown EDNS flags (and DO: no DNSSEC here) are ignored and not set
        in the answer.
        """
        message = query("_imaps._tcp.example.test", "SRV", use_edns=0,
                        ednsflags=0x4000 | dns.flags.DO)
        _, response = self.exchange(message)
        self.assertEqual((response.rcode(), response.ednsflags), (NOERROR, 0))
        self.assertEqual(len(response.answer), 1)


class MalformedTests(_WireTestCase):
    """
    Malformed packets are dropped or answered FORMERR; opcodes other than
    QUERY get NOTIMP; responses are never answered (SECURITY.md 6.2, 6.3).
    """

    def test_short_packets(self) -> None:
        """
        Packets of 0, 1, 11 and 12 bytes.
        """
        for packet in (b"", b"\x12", header()[:11]):
            self.assertRejected(packet)
        self.assertFormErr(header())

    def test_question_count(self) -> None:
        """
        QDCOUNT 0 and 2 (RFC 9619: one question).
        """
        self.assertFormErr(header(qd=0))
        self.assertFormErr(header(qd=0) + QNAME + A_IN)
        self.assertFormErr(header(qd=2) + QNAME + A_IN + QNAME + A_IN)

    def test_other_sections(self) -> None:
        """
        A query with answer or authority records, or two OPT records.
        """
        record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\xc0\x00\x02\x01"
        self.assertFormErr(header(an=1) + QNAME + A_IN + record)
        self.assertFormErr(header(ns=1) + QNAME + A_IN + record)
        self.assertFormErr(header(ar=2) + QNAME + A_IN + OPT_1232 + OPT_1232)

    def test_bad_opt(self) -> None:
        """
        An OPT whose owner is not the root, whose rdlength runs past the
        end, or that is cut short; an additional count without a record.
        """
        not_root = QNAME + OPT_1232[1:]
        self.assertFormErr(header(ar=1) + QNAME + A_IN + not_root)
        past_end = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 8) + b"\x00\x08\x00"
        self.assertFormErr(header(ar=1) + QNAME + A_IN + past_end)
        self.assertFormErr(header(ar=1) + QNAME + A_IN + OPT_1232[:7])
        self.assertFormErr(header(ar=1) + QNAME + A_IN)

    def test_trailing_garbage(self) -> None:
        """
        Bytes after the question, or after the OPT record.
        """
        self.assertFormErr(header() + QNAME + A_IN + b"\x00")
        self.assertFormErr(header(ar=1) + QNAME + A_IN + OPT_1232 + b"junk")

    def test_label_too_long(self) -> None:
        """
        A label of 64 octets (the length byte 0x40 is also an extended
        label type) and the reserved 0x80 label type.
        """
        self.assertFormErr(header() + labels(b"a" * 64, b"example", b"test") + A_IN)
        self.assertFormErr(header() + b"\x80" + QNAME + A_IN)

    def test_name_too_long(self) -> None:
        """
        Names of 256 octets and more are malformed (RFC 1035 3.1: 255 at
        most, the root label included); 255 octets is a valid (foreign)
        name.
        """
        too_long = labels(*[b"a" * 63] * 3, b"b" * 62)
        self.assertEqual(len(too_long), 256)
        self.assertFormErr(header() + too_long + A_IN)
        self.assertFormErr(header() + labels(*[b"a" * 63] * 4) + A_IN)
        self.assertFormErr(header() + labels(*[b"a" * 63] * 8) + A_IN)
        longest = labels(*[b"a" * 63] * 3, b"b" * 61)
        self.assertEqual(len(longest), 255)
        response = self.raw(header() + longest + A_IN)
        assert response is not None
        self.assertEqual(response.rcode, REFUSED)

    def test_compression_pointers(self) -> None:
        """
        A question has nothing to point at: a self-pointer (C0 0C), a
        pointer into the header, a forward pointer past the end, a 2-cycle
        and a pointer after a label.
        """
        self.assertFormErr(header() + b"\xc0\x0c" + A_IN)
        self.assertFormErr(header() + b"\xc0\x00" + A_IN)
        self.assertFormErr(header() + b"\xc0\x20" + A_IN)
        self.assertFormErr(header() + b"\xc0\x0e\xc0\x0c" + A_IN)
        self.assertFormErr(header() + b"\x07example\xc0\x0c" + A_IN)

    def test_truncated_question(self) -> None:
        """
        A name without its end, or without its full type and class.
        """
        self.assertFormErr(header() + QNAME[:-1])
        self.assertFormErr(header() + b"\x3f" + b"a" * 10)
        for cut in range(4):
            self.assertFormErr(header() + QNAME + A_IN[:cut])

    def test_opcodes(self) -> None:
        """
        Opcodes 1 (IQUERY), 2 (STATUS), 5 (UPDATE) and 15 get NOTIMP with
        the query's ID.
        """
        for opcode in (1, 2, 5, 15):
            packet = header(ident=0xBEEF, flags=RD | opcode << 11) + QNAME + A_IN
            for udp in (True, False):
                response = self.raw(packet, udp)
                assert response is not None
                self.assertEqual(response.rcode, NOTIMP)
                parsed = dns.message.from_wire(response.data)
                self.assertEqual((parsed.id, parsed.rcode()), (0xBEEF, NOTIMP))
                self.assertTrue(parsed.flags & dns.flags.QR)
                self.assertFalse(parsed.flags & (dns.flags.RA | dns.flags.AA))

    def test_response_not_answered(self) -> None:
        """
        QR=1, a response sent to us, is never answered: no reflection loops.
        """
        valid = query("_imaps._tcp.example.test", "SRV").to_wire()
        for packet in (header(flags=QR) + QNAME + A_IN,
                       bytes([valid[0], valid[1], valid[2] | 0x80]) + valid[3:],
                       header(flags=QR | AA | 5 << 11, qd=2),
                       header(flags=QR)):
            for udp in (True, False):
                self.assertIsNone(self.raw(packet, udp))


# Valid seed queries: each record type, with and without EDNS, lower and
# mixed case (SECURITY.md 6.3: "seeds from dnspython make_query(...)").
SEED_QUESTIONS = (
    ("example.test", "SOA"), ("example.test", "NS"), ("example.test", "MX"),
    ("other.test", "NAPTR"), ("example.test", "ANY"), ("_imaps._tcp.example.test", "SRV"),
    ("_caldavs._tcp.example.test", "TXT"), ("autodiscover.example.test", "A"),
    ("autoconfig.example.test", "AAAA"), ("big.example.test", "AAAA"),
    ("nope.other.test", "A"), ("www.google.com", "A"), ("example.test", "AXFR"),
)


def _mixed(name: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def seeds() -> list[bytes]:
    rng = random.Random(6891)
    packets = []
    for name, rdtype in SEED_QUESTIONS:
        for edns in (-1, 0):
            for spelling in (name, _mixed(name, rng)):
                packets.append(query(spelling, rdtype, use_edns=edns,
                                     id=rng.randrange(65536)).to_wire())
    return packets


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """
    Byte flips, random bytes, truncations, insertions, deletions and header
    count changes; now and then pure noise.
    """
    if rng.random() < 0.05:
        return rng.randbytes(rng.randrange(600))
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        operation = rng.randrange(6)
        position = rng.randrange(len(data) + 1)
        if operation == 0 and position < len(data):
            data[position] ^= 1 << rng.randrange(8)
        elif operation == 1 and position < len(data):
            data[position] = rng.randrange(256)
        elif operation == 2:
            del data[position:]
        elif operation == 3:
            data[position:position] = rng.randbytes(rng.randint(1, 16))
        elif operation == 4:
            del data[position:position + rng.randint(1, 8)]
        elif operation == 5 and len(data) >= 12:
            field = rng.choice((2, 3, 4, 6, 8, 10))
            data[field:field + 2] = struct.pack("!H", rng.choice((0, 1, 2, 255, 65535)))
    return bytes(data)


class FuzzTests(_WireTestCase):
    """
    A bounded mutation fuzz of the query path (SECURITY.md 6.3; issue 5
    section 4: at least 10,000 malformed packets, zero exceptions).
    """

    PACKETS = 40_000

    def test_fuzz(self) -> None:
        """
        Mutated seed queries over UDP and TCP: no exception; every response
        has the query's ID, QR=1, RA=0, Z=0; UDP responses fit 1232 bytes,
        512 without an OPT; a sample parses with dnspython.
        """
        rng = random.Random(0x5EED)
        pool = seeds()
        self.assertGreaterEqual(len(pool), 50)
        options = (b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00",
                   b"\x00\x00\x29\x04\xd0\x01\x00\x00\x00\x00\x00")
        outcomes: dict[Any, int] = {}
        for count in range(self.PACKETS):
            packet = mutate(rng.choice(pool), rng)
            for udp in (True, False):
                try:
                    response = respond(packet, self.table, udp)
                except Exception as e:  # report the packet that broke it
                    self.fail(f"{packet!r} (udp={udp}) raised {e!r}")
                rcode = None if response is None else response.rcode
                outcomes[rcode] = outcomes.get(rcode, 0) + 1
                if response is None:
                    continue
                data = response.data
                ident, flags = struct.unpack_from("!HH", data)
                if len(packet) >= 2:
                    self.assertEqual(ident, struct.unpack_from("!H", packet)[0], packet)
                self.assertEqual(flags & (QR | RA | Z), QR, packet)
                if udp:
                    self.assertLessEqual(len(data), UDP_LIMIT, packet)
                    if data[-11:] not in options:
                        self.assertLessEqual(len(data), 512, packet)
                if count % 10 == 0:
                    try:
                        dns.message.from_wire(data)
                    except Exception as e:
                        self.fail(f"{packet!r} (udp={udp}): unparsable response {e!r}")
        # The mutations reached every branch, not only the first check.
        for rcode in (None, NOERROR, FORMERR, NXDOMAIN, NOTIMP, REFUSED, BADVERS):
            self.assertGreater(outcomes.get(rcode, 0), 20, (rcode, outcomes))
