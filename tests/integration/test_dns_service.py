"""
Integration tests of the DNS responder: the real service under twistd on
loopback, queried with dnspython over UDP and TCP the way resolvers do
(issue 5; SECURITY.md 6 and 7; PROTOCOLS.md 9).

Linux routes all of 127.0.0.0/8 to the loopback interface, so queries can
come from several client networks: 127.0.0.x share one /24 rate-limiting
bucket, 127.0.1.1 is another network.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.xfr

from tests.helpers import write_config
from tests.integration import SynchronousTestCase
from tests.integration.service import RunningService, free_port, free_udp_port

LOOPBACK = "127.0.0.1"
SAME_NETWORK = "127.0.0.2"  # the /24 of 127.0.0.1
OTHER_NETWORK = "127.0.1.1"
EXEMPT_NETWORK = "127.0.2.1"
READINESS_SOURCE = "127.0.3.1"
TIMEOUT = 2.0
TTL = 600
BIG = 60  # AAAA records at big.example.test: more than 1232 bytes
MEDIUM = 30  # AAAA records at medium.example.test: between 512 and 1232 bytes

CONFIG = """\
[server]
public_hostname = mail.example.test
domains = example.test
https = ssl:{https_port}:interface=127.0.0.1:privateKey=tls/server.key:certKey=tls/server.crt
dns = 127.0.0.1:{dns_port}
ttl = 1

[auth]
backend = passwd
passwd_file = users.passwd

[imap]
host = mail.example.test
port = {imap_port}
security = ssl

[pop3]
host = mail.example.test
security = starttls

[smtp]
host = mail.example.test
port = 587
security = starttls

[xmpp]
host = chat.example.test
security = starttls
server_port = 5269

[sip]
host = sip.example.test
transport = tls

[urls]
ews = https://mail.example.test/EWS/Exchange.asmx
caldav = https://dav.example.test/caldav/
carddav = https://dav.example.test:8443/carddav/

[dns]
ttl = {ttl}
nameservers = ns1.example.test, ns.example.net
hostmaster = admin@example.test
mx = 10 mx1.example.test, 20 mx.example.net
{dns}
[hosts]
mail.example.test = 192.0.2.10, 2001:db8::10
chat.example.test = 192.0.2.20
sip.example.test = 192.0.2.30
dav.example.test = 192.0.2.40
ns1.example.test = 192.0.2.53
mx1.example.test = 192.0.2.25, 2001:db8::25
medium.example.test = {medium}
big.example.test = {big}
"""

MAIL = "mail.example.test."
MAIL_ADDRESSES = {"192.0.2.10", "2001:db8::10"}
NOT_OFFERED = (0, 0, 0, ".")


def aaaa_list(count: int, prefix: str) -> str:
    return ", ".join(f"2001:db8:{prefix}::{i + 1:x}" for i in range(count))


def flags(response: dns.message.Message) -> tuple[bool, bool, bool]:
    """
    (AA, RA, TC) of C{response}.
    """
    return (bool(response.flags & dns.flags.AA), bool(response.flags & dns.flags.RA),
            bool(response.flags & dns.flags.TC))


def header(data: bytes) -> tuple[int, int, int, int, int, int]:
    return struct.unpack_from("!HHHHHH", data)


def render_ini(https_port: int, dns_port: int, options: dict[str, Any],
               imap_port: int = 993) -> str:
    """
    The service's configuration, with C{options} (rrl_rate, rrl_slip and
    extra [dns] lines) in the [dns] section.
    """
    return CONFIG.format(
        https_port=https_port, dns_port=dns_port, imap_port=imap_port,
        ttl=TTL, medium=aaaa_list(MEDIUM, "1"), big=aaaa_list(BIG, "2"),
        dns=(f"rrl_rate = {options['rrl_rate']}\nrrl_slip = {options['rrl_slip']}\n"
             + options["dns"]))


def wait_dns(dns_port: int) -> None:
    """
    Wait until the responder answers over UDP (from a network of its
    own, so no test's rate-limiting bucket is touched).  UDP and TCP
    are bound in the same start-up step, before the reactor answers
    anything, so TCP is listening too; no TCP connection is used,
    so none is still counted against a per-source cap.
    """
    deadline = time.monotonic() + 10
    query = dns.message.make_query("example.test", "SOA")
    while True:
        try:
            dns.query.udp(query, LOOPBACK, timeout=0.2, port=dns_port,
                          source=READINESS_SOURCE)
            return
        except (OSError, dns.exception.Timeout):
            if time.monotonic() > deadline:
                raise


# TCP states (include/net/tcp_states.h) of a connection the responder has
# not closed yet, so still counts against its caps: queued for accept or
# accepted (ESTABLISHED, SYN_RECV) or closed by the client only (CLOSE_WAIT).
OPEN_STATES = {"01", "03", "08"}


def open_dns_connections(dns_port: int) -> list[str]:
    """
    The remote ends of the TCP connections to 127.0.0.1:C{dns_port} the
    responder still holds open, from /proc/net/tcp.
    """
    local = f"0100007F:{dns_port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return [row[2] for row in rows if row[1] == local and row[3] in OPEN_STATES]


class _ResponderTestCase(SynchronousTestCase):
    """
    A twistd process with its DNS responder on a free loopback port: one per
    test (L{start}), or one per class (L{_SharedResponderTestCase}).
    """

    directory: Path
    https_port: int
    dns_port: int
    options: dict[str, Any]
    config: Path
    service: RunningService

    def start(self, rrl_rate: int = 0, rrl_slip: int = 2, imap_port: int = 993,
              dns: str = "") -> None:
        """
        Start this test's own service, stopped when the test ends.
        """
        self.directory = Path(self.mktemp()).absolute()
        self.launch(self, self.directory, self.addCleanup, rrl_rate=rrl_rate,
                    rrl_slip=rrl_slip, imap_port=imap_port, dns=dns)

    @staticmethod
    def launch(on: Any, directory: Path, stop_later: Callable[[Callable[[], object]], None],
               rrl_rate: int = 0, rrl_slip: int = 2, imap_port: int = 993,
               dns: str = "") -> None:
        """
        Start twistd with its configuration in C{directory} and set its
        ports, options, configuration path and L{RunningService} on C{on}
        (a test, or a test class).  C{stop_later} gets the service's C{stop}
        as soon as the process runs, so one that never answers is stopped.
        """
        on.https_port = free_port()
        on.dns_port = free_udp_port()
        while on.dns_port == on.https_port:
            on.dns_port = free_udp_port()
        on.options = {"rrl_rate": rrl_rate, "rrl_slip": rrl_slip, "dns": dns}
        on.config = write_config(directory,
                                 render_ini(on.https_port, on.dns_port, on.options, imap_port))
        on.service = RunningService(on.config, on.https_port)
        stop_later(on.service.stop)
        wait_dns(on.dns_port)

    def ini(self, imap_port: int = 993) -> str:
        return render_ini(self.https_port, self.dns_port, self.options, imap_port)

    def udp(self, name: str, rdtype: str | int, source: str | None = None,
            **kwargs: object) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, **kwargs)
        return dns.query.udp(query, LOOPBACK, timeout=TIMEOUT, port=self.dns_port,
                             source=source)

    def tcp(self, name: str, rdtype: str | int, source: str | None = None,
            **kwargs: object) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, **kwargs)
        return dns.query.tcp(query, LOOPBACK, timeout=TIMEOUT, port=self.dns_port,
                             source=source)

    def udp_raw(self, packet: bytes, source: str = LOOPBACK) -> bytes:
        """
        Send C{packet} as one datagram and return the raw reply.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((source, 0))
            s.settimeout(TIMEOUT)
            s.sendto(packet, (LOOPBACK, self.dns_port))
            return s.recv(65535)

    def tcp_socket(self, source: str = LOOPBACK) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(TIMEOUT)
        s.bind((source, 0))
        s.connect((LOOPBACK, self.dns_port))
        return s

    def read_tcp_message(self, s: socket.socket) -> bytes:
        """
        One length-prefixed DNS message from C{s}.
        """
        def exactly(count: int) -> bytes:
            data = b""
            while len(data) < count:
                chunk = s.recv(count - len(data))
                if not chunk:
                    raise ConnectionError("closed")
                data += chunk
            return data
        return exactly(struct.unpack("!H", exactly(2))[0])

    def answer(self, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
        """
        The positive, authoritative answer to C{name}/C{rdtype}.
        """
        response = (self.tcp if tcp else self.udp)(name, rdtype)
        self.assertEqual(response.rcode(), dns.rcode.NOERROR, (name, rdtype))
        self.assertEqual(flags(response), (True, False, False), (name, rdtype))
        self.assertEqual(len(response.answer), 1, (name, rdtype, response.to_text()))
        rrset = response.answer[0]
        self.assertEqual(rrset.name, dns.name.from_text(name))
        self.assertEqual(rrset.rdtype, dns.rdatatype.from_text(rdtype))
        self.assertEqual(rrset.ttl, TTL)
        return response

    def srv(self, name: str, tcp: bool = False) -> tuple[int, int, int, str]:
        """
        The single SRV record at C{name} as (priority, weight, port, target).
        """
        rrset = self.answer(name, "SRV", tcp).answer[0]
        self.assertEqual(len(rrset), 1, rrset.to_text())
        record = next(iter(rrset))
        return record.priority, record.weight, record.port, record.target.to_text()

    def additional_addresses(self, response: dns.message.Message, owner: str) -> set[str]:
        return {record.address for rrset in response.additional
                if rrset.name == dns.name.from_text(owner)
                and rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
                for record in rrset}

    def assert_log_clean(self) -> None:
        """
        Nothing the responder was sent made it log an exception
        (SECURITY.md 6.3: "no logged exception").
        """
        log = self.service.log()
        self.assertNotIn("Traceback", log)
        self.assertNotIn("DNS query failed", log)
        self.assertIsNone(self.service.process.poll(), log)


class _SharedResponderTestCase(_ResponderTestCase):
    """
    One twistd process for all the tests of a class, started with
    C{service_options} (the keyword arguments of L{_ResponderTestCase.start}),
    for tests that only query it: none reloads it, edits its configuration or
    uses up a rate-limiting bucket.  Each test starts, as on a fresh service,
    with no TCP connection of an earlier test still counted against the caps.

    The service is started in C{setUpClass} and stopped in C{tearDownClass},
    but trial's suites never call those (its C{TestSuite.run} replaces the
    standard library's, which does), so this class calls them: C{setUp}
    calls C{setUpClass} when the class has no running service, and the last
    test still to run of those loaded calls C{tearDownClass} in a cleanup, so
    a failure to stop counts as that test's error.  A single test run alone
    gets a service of its own; a run cut short stops it at exit.
    """

    service_options: ClassVar[dict[str, Any]] = {}
    _loaded: ClassVar[set[str]] = set()  # the test methods loaded in this process
    _waiting: ClassVar[set[str]] = set()  # those the running service has not served yet

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._loaded = set()
        cls._waiting = set()

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        type(self)._loaded.add(methodName)

    @classmethod
    def setUpClass(cls) -> None:
        """
        Start the class's service, in a directory of its own under the
        current (trial's temporary) directory; if anything fails, stop
        what was started and remove the directory.
        """
        try:
            cls.directory = Path(tempfile.mkdtemp(prefix=f"{cls.__name__}-",
                                                  dir=os.getcwd())).absolute()
            cls.launch(cls, cls.directory, lambda stop: None, **cls.service_options)
        except BaseException:
            cls.tearDownClass()
            raise
        cls._waiting = set(cls._loaded)

    @classmethod
    def tearDownClass(cls) -> None:
        """
        Stop the class's service (if it runs) and remove its directory (if
        made); doing nothing the second time.
        """
        service = cls.__dict__.get("service")
        directory = cls.__dict__.get("directory")
        cls._waiting = set()
        try:
            if service is not None:
                del cls.service
                service.stop()
        finally:
            if directory is not None:
                del cls.directory
                shutil.rmtree(directory, ignore_errors=True)

    def setUp(self) -> None:
        cls = type(self)
        if "service" not in cls.__dict__:
            cls.setUpClass()
        cls._waiting.discard(self._testMethodName)
        if not cls._waiting:
            self.addCleanup(cls.tearDownClass)
        self.wait_connections_closed()

    def wait_connections_closed(self, timeout: float = 10.0) -> None:
        """
        Until the responder holds no TCP connection open, so that none of
        an earlier test (closed by the client, the close not yet seen by the
        server) takes a place under tcp_per_source.
        """
        deadline = time.monotonic() + timeout
        while remaining := open_dns_connections(self.dns_port):
            if time.monotonic() > deadline:
                raise AssertionError(f"DNS connections still open: {remaining}")
            time.sleep(0.01)


def _stop_shared_services(classes: list[type[_SharedResponderTestCase]]) -> None:
    """
    At exit, stop the services of a run cut short (its last test never ran).
    """
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        cls.tearDownClass()


atexit.register(_stop_shared_services, [_SharedResponderTestCase])


class RecordTests(_SharedResponderTestCase):
    """
    Every record type the zone publishes (PROTOCOLS.md 9.2-9.7), answered
    authoritatively (AA=1) and never recursively (RA=0; SECURITY.md 6.2).
    """

    def test_mail_srv(self) -> None:
        """
        RFC 6186 / RFC 8314 SRV records follow each service's security: the
        offered variant points at the host and port, the other gets the
        "." target (0 0 0 .) so clients stop probing (PROTOCOLS.md 9.2);
        the additional section carries the target's A and AAAA.
        """
        expected = {
            "_imaps._tcp": (0, 993, MAIL), "_imap._tcp": None,
            "_pop3._tcp": (0, 110, MAIL), "_pop3s._tcp": None,
            "_submission._tcp": (0, 587, MAIL), "_submissions._tcp": None,
        }
        for label, record in expected.items():
            name = f"{label}.example.test"
            priority, weight, port, target = self.srv(name)
            if record is None:
                self.assertEqual((priority, weight, port, target), NOT_OFFERED, name)
            else:
                self.assertEqual((priority, port, target), record, name)
                self.assertGreater(weight, 0, name)
        response = self.answer("_imaps._tcp.example.test", "SRV")
        self.assertEqual(self.additional_addresses(response, MAIL), MAIL_ADDRESSES)
        self.assert_log_clean()

    def test_dav_srv_and_txt(self) -> None:
        """
        RFC 6764: _caldavs._tcp and _carddavs._tcp point at the URL's host
        and port (443 when the URL has none), with a TXT path= of the URL's
        path; plain-HTTP DAV is not offered (PROTOCOLS.md 9.3).
        """
        for label, port, path in [("_caldavs._tcp", 443, b"path=/caldav/"),
                                  ("_carddavs._tcp", 8443, b"path=/carddav/")]:
            name = f"{label}.example.test"
            priority, weight, srv_port, target = self.srv(name)
            self.assertEqual((priority, srv_port, target), (0, port, "dav.example.test."))
            self.assertGreater(weight, 0)
            txt = self.answer(name, "TXT").answer[0]
            self.assertEqual([record.strings for record in txt], [(path,)])
        for label in ("_caldav._tcp", "_carddav._tcp"):
            self.assertEqual(self.srv(f"{label}.example.test"), NOT_OFFERED)
        self.assert_log_clean()

    def test_xmpp_srv(self) -> None:
        """
        XMPP: _xmpp-client._tcp for STARTTLS, _xmpps-client._tcp (XEP-0368)
        not offered, _xmpp-server._tcp on server_port (PROTOCOLS.md 9.4).
        """
        priority, weight, port, target = self.srv("_xmpp-client._tcp.example.test")
        self.assertEqual((priority, port, target), (0, 5222, "chat.example.test."))
        self.assertGreater(weight, 0)
        self.assertEqual(self.srv("_xmpps-client._tcp.example.test"), NOT_OFFERED)
        priority, weight, port, target = self.srv("_xmpp-server._tcp.example.test")
        self.assertEqual((priority, port, target), (0, 5269, "chat.example.test."))
        response = self.answer("_xmpp-client._tcp.example.test", "SRV")
        self.assertEqual(self.additional_addresses(response, "chat.example.test."),
                         {"192.0.2.20"})
        self.assert_log_clean()

    def test_sip_naptr_and_srv(self) -> None:
        """
        RFC 3263: a NAPTR at the domain names the SRV owner of the
        configured transport (SIPS+D2T -> _sips._tcp, flag "s"); the other
        transports get the "." target (PROTOCOLS.md 9.5).
        """
        rrset = self.answer("example.test", "NAPTR").answer[0]
        self.assertEqual([(r.order, r.preference, r.flags, r.service, r.regexp,
                           r.replacement.to_text()) for r in rrset],
                         [(50, 50, b"s", b"SIPS+D2T", b"", "_sips._tcp.example.test.")])
        priority, weight, port, target = self.srv("_sips._tcp.example.test")
        self.assertEqual((priority, port, target), (0, 5061, "sip.example.test."))
        for label in ("_sip._tcp", "_sip._udp"):
            self.assertEqual(self.srv(f"{label}.example.test"), NOT_OFFERED)
        self.assert_log_clean()

    def test_autodiscover_and_addresses(self) -> None:
        """
        _autodiscover._tcp points at the public host on the HTTPS port
        (PROTOCOLS.md 9.6); autodiscover.<domain> and autoconfig.<domain>
        carry the public host's A and AAAA, as do the SRV targets
        (PROTOCOLS.md 9.7).
        """
        priority, weight, port, target = self.srv("_autodiscover._tcp.example.test")
        self.assertEqual((priority, port, target), (0, self.https_port, MAIL))
        self.assertGreater(weight, 0)
        for name in ("mail.example.test", "autodiscover.example.test",
                     "autoconfig.example.test"):
            found = set()
            for rdtype in ("A", "AAAA"):
                found |= {r.address for r in self.answer(name, rdtype).answer[0]}
            self.assertEqual(found, MAIL_ADDRESSES, name)
        self.assertEqual({r.address for r in self.answer("sip.example.test", "A").answer[0]},
                         {"192.0.2.30"})
        self.assert_log_clean()

    def test_soa_ns_mx(self) -> None:
        """
        The apex has the SOA (MNAME the first nameserver, RNAME the
        hostmaster address with its @ as the first dot, minimum the TTL),
        the NS and the MX records, with in-zone addresses in the additional
        section (PROTOCOLS.md 9.7).
        """
        soa = next(iter(self.answer("example.test", "SOA").answer[0]))
        self.assertEqual((soa.mname.to_text(), soa.rname.to_text()),
                         ("ns1.example.test.", "admin.example.test."))
        self.assertEqual((soa.refresh, soa.retry, soa.expire, soa.minimum),
                         (3600, 600, 14 * 24 * 3600, TTL))
        self.assertGreater(soa.serial, 0)
        response = self.answer("example.test", "NS")
        self.assertEqual({r.target.to_text() for r in response.answer[0]},
                         {"ns1.example.test.", "ns.example.net."})
        self.assertEqual(self.additional_addresses(response, "ns1.example.test."),
                         {"192.0.2.53"})
        response = self.answer("example.test", "MX")
        self.assertEqual({(r.preference, r.exchange.to_text()) for r in response.answer[0]},
                         {(10, "mx1.example.test."), (20, "mx.example.net.")})
        self.assertEqual(self.additional_addresses(response, "mx1.example.test."),
                         {"192.0.2.25", "2001:db8::25"})
        self.assert_log_clean()

    def test_same_answers_over_tcp(self) -> None:
        """
        TCP gives the same authoritative answers as UDP (RFC 7766;
        SECURITY.md 6.2: "TCP must work").
        """
        for name, rdtype in [("_imaps._tcp.example.test", "SRV"), ("example.test", "SOA"),
                             ("example.test", "NAPTR"), ("autodiscover.example.test", "A")]:
            over_udp = self.answer(name, rdtype)
            over_tcp = self.answer(name, rdtype, tcp=True)
            self.assertEqual(over_tcp.answer, over_udp.answer)
            self.assertEqual(over_tcp.additional, over_udp.additional)
        self.assert_log_clean()

    def test_mixed_case_and_recursion_desired(self) -> None:
        """
        A mixed-case (0x20) question is echoed in its own case and answered;
        RD=1 gets authoritative data only, RA=0 (SECURITY.md 6.2).
        """
        name = "_IMAPS._tcp.Example.TEST."
        query = dns.message.make_query(name, "SRV")
        self.assertTrue(query.flags & dns.flags.RD)
        response = dns.message.from_wire(self.udp_raw(query.to_wire()))
        self.assertEqual(response.id, query.id)
        self.assertEqual(response.question[0].name.to_text(), name)
        self.assertEqual(flags(response), (True, False, False))
        self.assertTrue(response.flags & dns.flags.RD)
        self.assertEqual(next(iter(response.answer[0])).port, 993)
        self.assert_log_clean()


class SizeTests(_SharedResponderTestCase):
    """
    UDP answers never exceed 512 bytes without EDNS, min(payload, 1232)
    with it; otherwise TC=1 with only the question, and the same query over
    TCP gets the whole answer (SECURITY.md 6.1, issue 5 section 2).
    """

    def raw(self, name: str, **kwargs: object) -> tuple[bytes, dns.message.Message]:
        query = dns.message.make_query(name, "AAAA", **kwargs)
        data = self.udp_raw(query.to_wire())
        response = dns.message.from_wire(data)
        self.assertEqual(response.id, query.id)
        self.assertEqual(response.question, query.question)
        return data, response

    def assert_truncated(self, data: bytes, response: dns.message.Message, limit: int,
                         edns: bool) -> None:
        self.assertLessEqual(len(data), limit)
        self.assertEqual(flags(response), (True, False, True))
        # Whole records or none: only the question (and OPT) is left.
        _, _, questions, answers, authority, additional = header(data)
        self.assertEqual((questions, answers, authority, additional), (1, 0, 0, int(edns)))
        self.assertEqual(response.edns, 0 if edns else -1)

    def test_big_answer_truncated(self) -> None:
        """
        An RRset larger than 1232 bytes is truncated to the question over
        UDP, without EDNS and with any EDNS payload, the OPT record kept.
        """
        name = "big.example.test"
        self.assert_truncated(*self.raw(name), 512, False)
        for payload in (512, 1232, 4096, 65535):
            self.assert_truncated(*self.raw(name, use_edns=0, payload=payload), 1232, True)
        self.assert_log_clean()

    def test_medium_answer(self) -> None:
        """
        An answer between 512 and 1232 bytes is truncated without EDNS and
        with an EDNS payload below 512 (counted as 512), and sent whole
        with EDNS 1232.
        """
        name = "medium.example.test"
        self.assert_truncated(*self.raw(name), 512, False)
        self.assert_truncated(*self.raw(name, use_edns=0, payload=100), 512, True)
        data, response = self.raw(name, use_edns=0, payload=1232)
        self.assertGreater(len(data), 512)
        self.assertLessEqual(len(data), 1232)
        self.assertEqual(flags(response), (True, False, False))
        self.assertEqual(len(response.answer[0]), MEDIUM)
        self.assertEqual(response.edns, 0)
        self.assert_log_clean()

    def test_tcp_gets_whole_answer(self) -> None:
        """
        The same query over TCP gets every record, without truncation.
        """
        for kwargs in ({}, {"use_edns": 0, "payload": 1232}):
            response = self.tcp("big.example.test", "AAAA", **kwargs)
            self.assertEqual(flags(response), (True, False, False))
            self.assertEqual({r.address for r in response.answer[0]},
                             {f"2001:db8:2::{i + 1:x}" for i in range(BIG)})
        self.assert_log_clean()

    def test_resolver_retries_over_tcp(self) -> None:
        """
        A stub resolver that gets TC=1 retries over TCP by itself and gets
        every address, with and without EDNS.
        """
        for edns in (-1, 0):
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [LOOPBACK]
            resolver.port = self.dns_port
            resolver.use_edns(edns, 0, 1232)
            resolver.lifetime = 3
            answer = resolver.resolve("big.example.test", "AAAA", search=False)
            self.assertEqual(len(answer.rrset), BIG)
        self.assert_log_clean()


class ProtocolTests(_SharedResponderTestCase):
    """
    What an authoritative-only server must answer to queries it does not
    serve (SECURITY.md 6.1, 6.2).
    """

    def assert_refused(self, response: dns.message.Message) -> None:
        self.assertEqual(response.rcode(), dns.rcode.REFUSED)
        self.assertEqual(flags(response)[:2], (False, False))
        self.assertEqual((response.answer, response.authority), ([], []))

    def test_out_of_zone_refused(self) -> None:
        """
        Names outside the served zone, including ones that only end in the
        same letters or contain the zone as a prefix, and other classes are
        REFUSED with AA=0 and RA=0, over UDP and TCP.
        """
        for name in ("www.google.com", "notexample.test", "example.test.attacker.example",
                     "test", "."):
            for ask in (self.udp, self.tcp):
                self.assert_refused(ask(name, "A"))
        self.assert_refused(self.udp("version.bind", "TXT", rdclass=dns.rdataclass.CH))
        self.assert_refused(self.udp("example.test", "SOA", rdclass=dns.rdataclass.CH))
        response = self.udp("www.google.com", "A", use_edns=0)
        self.assert_refused(response)
        self.assertEqual(response.edns, 0)
        self.assert_log_clean()

    def test_in_zone_negative_answers(self) -> None:
        """
        Inside the zone, a missing name is NXDOMAIN and an existing name
        (or empty non-terminal) without the type is NODATA, both AA=1 with
        the SOA in the authority section.
        """
        for name, rdtype, rcode in [("nothere.example.test", "A", dns.rcode.NXDOMAIN),
                                    ("a.b.mail.example.test", "A", dns.rcode.NXDOMAIN),
                                    ("mail.example.test", "TXT", dns.rcode.NOERROR),
                                    ("_tcp.example.test", "SRV", dns.rcode.NOERROR)]:
            response = self.udp(name, rdtype)
            self.assertEqual(response.rcode(), rcode, name)
            self.assertEqual(flags(response), (True, False, False), name)
            self.assertEqual(response.answer, [], name)
            self.assertEqual([(r.name.to_text(), r.rdtype) for r in response.authority],
                             [("example.test.", dns.rdatatype.SOA)], name)
        self.assert_log_clean()

    def test_badvers(self) -> None:
        """
        EDNS version 1 gets BADVERS with an OPT record of version 0
        (RFC 6891; SECURITY.md 6.2); version 0 with an unknown option is
        answered and the option not echoed.
        """
        for ask in (self.udp, self.tcp):
            response = ask("example.test", "SOA", use_edns=1)
            self.assertEqual(response.rcode(), dns.rcode.BADVERS)
            self.assertEqual(response.edns, 0)
            self.assertEqual(response.answer, [])
            self.assertFalse(response.flags & dns.flags.RA)
        option = dns.edns.GenericOption(65001, b"\x01\x02")
        response = self.udp("example.test", "SOA", use_edns=0, options=[option])
        self.assertEqual(response.rcode(), dns.rcode.NOERROR)
        self.assertEqual(response.edns, 0)
        self.assertEqual(response.options, ())
        self.assert_log_clean()

    def test_minimal_any(self) -> None:
        """
        ANY gets one small synthesised RRset (RFC 8482 HINFO), never the
        whole name, within 512 bytes (SECURITY.md 6.1).
        """
        for name in ("example.test", "_imaps._tcp.example.test", "mail.example.test"):
            query = dns.message.make_query(name, "ANY")
            data = self.udp_raw(query.to_wire())
            self.assertLessEqual(len(data), 512)
            response = dns.message.from_wire(data)
            self.assertEqual(response.rcode(), dns.rcode.NOERROR)
            self.assertFalse(response.flags & dns.flags.TC)
            self.assertEqual(len(response.answer), 1, response.to_text())
            rrset = response.answer[0]
            self.assertEqual(len(rrset), 1)
            if rrset.rdtype == dns.rdatatype.HINFO:
                self.assertEqual(next(iter(rrset)).cpu, b"RFC8482")
            self.assertLessEqual(len(self.tcp(name, "ANY").answer), 1)
        self.assertEqual(self.udp("nothere.example.test", "ANY").rcode(), dns.rcode.NXDOMAIN)
        self.assert_log_clean()

    def test_axfr_refused(self) -> None:
        """
        AXFR is REFUSED over TCP and UDP and gives no zone data (SECURITY.md
        6.1: "AXFR over TCP and UDP: REFUSED; no zone data"); dnspython's
        transfer client fails on it.
        """
        with self.assertRaises(dns.xfr.TransferError) as caught:
            list(dns.query.xfr(LOOPBACK, "example.test", port=self.dns_port,
                               timeout=TIMEOUT, lifetime=5))
        self.assertEqual(caught.exception.rcode, dns.rcode.REFUSED)
        for ask in (self.udp, self.tcp):
            self.assert_refused(ask("example.test", "AXFR"))
        self.assert_log_clean()

    def test_ixfr_refused(self) -> None:
        """
        IXFR is REFUSED too (issue 5: "AXFR and IXFR -> REFUSED"), also
        in the form real secondaries send it, with the SOA they hold in the
        authority section (RFC 1995), as dnspython's transfer client does.
        """
        with self.assertRaises(dns.xfr.TransferError) as caught:
            list(dns.query.xfr(LOOPBACK, "example.test", rdtype=dns.rdatatype.IXFR,
                               serial=1, port=self.dns_port, timeout=TIMEOUT, lifetime=5))
        self.assertEqual(caught.exception.rcode, dns.rcode.REFUSED)
        for ask in (self.udp, self.tcp):
            self.assert_refused(ask("example.test", "IXFR"))
        self.assert_log_clean()

    def test_malformed_packets(self) -> None:
        """
        Malformed packets are dropped or answered FORMERR with the query's
        ID, a response sent to us gets no reply, unknown opcodes get
        NOTIMP, and after a bounded mutation loop over valid queries the
        service still answers with nothing logged (SECURITY.md 6.3).
        """
        question = dns.message.make_query("example.test", "SOA").to_wire()[12:]

        def packet(ident: int, flag_bits: int = 0x0100, counts: tuple[int, ...] = (1, 0, 0, 0),
                   body: bytes = question) -> bytes:
            return struct.pack("!HH4H", ident, flag_bits, *counts) + body

        opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
        formerr_or_drop = {
            1: packet(1, body=b""),
            2: packet(2, body=b"\xc0\x0c\x00\x01\x00\x01"),  # self pointer
            3: packet(3, body=b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"),  # label of 64
            4: packet(4, body=(b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01"),  # > 255
            5: packet(5, counts=(2, 0, 0, 0), body=question * 2),
            6: packet(6, counts=(0, 0, 0, 0), body=b""),
            7: packet(7, counts=(1, 0, 0, 2), body=question + opt * 2),
            8: packet(8, counts=(1, 0, 0, 1), body=question + opt[:-2] + b"\x00\x10"),
            9: packet(9, body=question + b"trailing"),
            10: packet(10, body=question[:-2]),
            11: packet(11, counts=(1, 0, 0, 1), body=question + b"\x01a" + opt[1:]),
            12: packet(12, counts=(1, 1, 0, 0)),
        }
        no_reply = {20: packet(20, flag_bits=0x8100), 21: packet(21)[:11], 22: b"\x00"}
        notimp = {30: packet(30, flag_bits=(1 << 11)), 31: packet(31, flag_bits=(2 << 11)),
                  32: packet(32, flag_bits=(5 << 11)), 33: packet(33, flag_bits=(15 << 11))}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((LOOPBACK, 0))
            for data in [*formerr_or_drop.values(), *no_reply.values(), *notimp.values(), b""]:
                s.sendto(data, (LOOPBACK, self.dns_port))
            replies = self.collect(s, 0.5)
        for data in replies:
            ident, bits, *_ = header(data)
            self.assertTrue(bits & 0x8000, data)
            self.assertNotIn(ident, no_reply)
            if ident in formerr_or_drop:
                self.assertEqual(bits & 0x000F, dns.rcode.FORMERR, ident)
            else:
                self.assertIn(ident, notimp)
                self.assertEqual(bits & 0x000F, dns.rcode.NOTIMP, ident)
        self.assertEqual(sorted(header(d)[0] for d in replies if header(d)[0] in notimp),
                         sorted(notimp))

        # A bounded mutation loop over valid queries of every served type.
        generator = random.Random(5)
        seeds = [dns.message.make_query(name, rdtype, **kwargs).to_wire()
                 for name, rdtype in [("example.test", "SOA"), ("example.test", "NAPTR"),
                                      ("_imaps._tcp.example.test", "SRV"),
                                      ("big.example.test", "AAAA"),
                                      ("example.test", "ANY"), ("www.google.com", "A")]
                 for kwargs in ({}, {"use_edns": 0})]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((LOOPBACK, 0))
            for _ in range(3000):
                data = bytearray(generator.choice(seeds))
                for _ in range(generator.randint(1, 4)):
                    if not data:
                        break
                    position = generator.randrange(len(data))
                    choice = generator.random()
                    if choice < 0.6:
                        data[position] = generator.randrange(256)
                    elif choice < 0.8:
                        del data[position:]
                    else:
                        data[position:position] = generator.randbytes(generator.randint(1, 8))
                s.sendto(bytes(data), (LOOPBACK, self.dns_port))
            for data in self.collect(s, 0.3):
                self.assertTrue(header(data)[1] & 0x8000)

        # Over TCP: garbage frames, a long chain of pointers, then a query.
        connection = self.tcp_socket()
        chain = b"".join(struct.pack("!H", 0xC000 | (12 + 2 * (i + 1))) for i in range(8000))
        for data in (b"\xff" * 40, packet(40, body=chain), packet(41, flag_bits=0x8100)):
            connection.sendall(struct.pack("!H", len(data)) + data)
        connection.close()
        self.assertEqual(self.answer("example.test", "SOA", tcp=True).answer[0].rdtype,
                         dns.rdatatype.SOA)
        self.assertEqual(self.answer("example.test", "SOA").answer[0].rdtype,
                         dns.rdatatype.SOA)
        self.assert_log_clean()

    def collect(self, s: socket.socket, idle: float, most: float = 5.0) -> list[bytes]:
        """
        Every datagram arriving on C{s} until C{idle} seconds pass without
        one (at most C{most} seconds in all).
        """
        replies = []
        deadline = time.monotonic() + most
        while time.monotonic() < deadline:
            s.settimeout(idle)
            try:
                replies.append(s.recv(65535))
            except socket.timeout:
                break
        return replies


class TCPTests(_SharedResponderTestCase):
    """
    DNS over TCP: RFC 7766 framing, the idle timeout and the cap on
    connections per source address (SECURITY.md 6.3).
    """

    service_options = {"dns": "tcp_idle = 1\ntcp_per_source = 2\n"}

    def query_over(self, s: socket.socket, name: str, rdtype: str) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        wire = query.to_wire()
        s.sendall(struct.pack("!H", len(wire)) + wire)
        response = dns.message.from_wire(self.read_tcp_message(s))
        self.assertEqual(response.id, query.id)
        return response

    def test_framing(self) -> None:
        """
        A length prefix and message sent one byte at a time is answered;
        two queries pipelined in one segment get two answers.
        """
        s = self.tcp_socket()
        query = dns.message.make_query("example.test", "SOA")
        wire = query.to_wire()
        for byte in struct.pack("!H", len(wire)) + wire:
            s.sendall(bytes([byte]))
            time.sleep(0.002)
        self.assertEqual(dns.message.from_wire(self.read_tcp_message(s)).id, query.id)
        first = dns.message.make_query("_imaps._tcp.example.test", "SRV")
        second = dns.message.make_query("example.test", "NAPTR")
        s.sendall(b"".join(struct.pack("!H", len(q.to_wire())) + q.to_wire()
                           for q in (first, second)))
        answers = [dns.message.from_wire(self.read_tcp_message(s)) for _ in range(2)]
        self.assertEqual([a.id for a in answers], [first.id, second.id])
        self.assertEqual([a.answer[0].rdtype for a in answers],
                         [dns.rdatatype.SRV, dns.rdatatype.NAPTR])
        self.assert_log_clean()

    def test_per_source_cap_and_idle_timeout(self) -> None:
        """
        At most tcp_per_source connections per address are kept (the next
        is closed at once, other addresses are still served); an idle
        connection is closed after tcp_idle seconds, which frees its place.
        """
        first, second = self.tcp_socket(), self.tcp_socket()
        opened = time.monotonic()
        self.assertEqual(self.query_over(first, "example.test", "SOA").rcode(),
                         dns.rcode.NOERROR)
        with self.assertRaises((ConnectionError, socket.timeout)):
            # Refused at once: on loopback the reset may even beat connect().
            self.query_over(self.tcp_socket(), "example.test", "SOA")
        self.assertEqual(self.tcp("example.test", "SOA", source=OTHER_NETWORK).rcode(),
                         dns.rcode.NOERROR)
        for s in (second, first):
            s.settimeout(5)
            try:
                closed = s.recv(1)
            except ConnectionError:
                closed = b""
            self.assertEqual(closed, b"")
            idle = time.monotonic() - opened
            self.assertGreater(idle, 0.8)
            self.assertLess(idle, 4.0)
        time.sleep(0.1)  # the server sees the close after the client does
        self.assertEqual(self.query_over(self.tcp_socket(), "example.test", "SOA").rcode(),
                         dns.rcode.NOERROR)
        self.assert_log_clean()


class ReloadTests(_ResponderTestCase):
    """
    SIGHUP rebuilds the zone and swaps it in; a broken file keeps the old
    zone, byte for byte (SECURITY.md 7; issue 5 section 4).

    A service per test: each rewrites the configuration and reloads it.
    """

    def setUp(self) -> None:
        self.start()

    def test_reload_changes_srv_port(self) -> None:
        """
        After a changed [imap] port and SIGHUP, _imaps._tcp shows the new
        port over UDP and TCP.
        """
        self.assertEqual(self.srv("_imaps._tcp.example.test")[2], 993)
        self.config.write_text(self.ini(imap_port=1993), encoding="utf-8")
        self.service.reload("reloaded")
        self.assertEqual(self.srv("_imaps._tcp.example.test")[2], 1993)
        self.assertEqual(self.srv("_imaps._tcp.example.test", tcp=True)[2], 1993)
        self.assert_log_clean()

    def test_broken_file_keeps_zone(self) -> None:
        """
        A file with a bad [dns] value, a bad [imap] port or broken syntax is
        refused on SIGHUP ("reload failed", naming section and key) and the
        old answers are still served unchanged.
        """
        query = dns.message.make_query("_imaps._tcp.example.test", "SRV", id=4242)
        before = self.udp_raw(query.to_wire())
        good = self.ini()
        for broken, where in [(good.replace("port = 993", "port = 99999"), "[imap] port"),
                              (good.replace("ttl = 600", "ttl = forever"), "[dns] ttl"),
                              (good.replace("chat.example.test = 192.0.2.20\n", ""),
                               "[xmpp] host"),
                              ("[server\n", None)]:
            self.config.write_text(broken, encoding="utf-8")
            self.service.reload("reload failed")
            if where is not None:
                self.assertIn(f"{self.config}: {where}", self.service.log())
            self.assertEqual(self.udp_raw(query.to_wire()), before)
            self.assertEqual(self.srv("_imaps._tcp.example.test")[2], 993)
        self.assert_log_clean()


class RateLimitTests(_ResponderTestCase):
    """
    Response rate limiting per /24 with slip (SECURITY.md 6.1; issue 5
    section 2): a burst from one network is mostly dropped or slipped,
    another network and TCP are still answered.

    A service per test: a burst empties the buckets of the networks it
    comes from, and the bound on full answers counts on a full bucket.
    """

    RATE = 5

    def setUp(self) -> None:
        self.start(rrl_rate=self.RATE, rrl_slip=2, dns="rrl_exempt = 127.0.2.0/24\n")

    def burst(self, sources: list[str], count: int) -> tuple[list[socket.socket], bytes]:
        """
        Send C{count} identical SRV queries (distinct IDs) round-robin from
        C{sources} without waiting for answers.
        """
        sockets = []
        for source in sources:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(s.close)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((source, 0))
            sockets.append(s)
        query = dns.message.make_query("_imaps._tcp.example.test", "SRV")
        wire = query.to_wire()
        for ident in range(count):
            sockets[ident % len(sockets)].sendto(struct.pack("!H", ident) + wire[2:],
                                                 (LOOPBACK, self.dns_port))
        return sockets, wire

    def replies(self, sockets: list[socket.socket]) -> tuple[list[bytes], float]:
        """
        Every reply on C{sockets} (bounded), and when the last one came.
        """
        replies: list[bytes] = []
        last = time.monotonic()
        deadline = last + 5
        for s in sockets:
            s.settimeout(0.5)
            while time.monotonic() < deadline:
                try:
                    replies.append(s.recv(65535))
                    last = time.monotonic()
                except socket.timeout:
                    break
        return replies, last

    def test_burst_dropped_and_slipped(self) -> None:
        """
        200 queries at once from 127.0.0.1 and 127.0.0.2 (one /24): about
        the rate is answered, every second limited answer is slipped (TC=1,
        question only, no larger than the query) and the rest dropped.
        Meanwhile 127.0.1.1 (another /24) is answered over UDP and the
        limited address over TCP, which is never limited.
        """
        started = time.monotonic()
        sockets, wire = self.burst([LOOPBACK, SAME_NETWORK], 200)
        other = self.udp("_imaps._tcp.example.test", "SRV", source=OTHER_NETWORK)
        self.assertEqual(flags(other), (True, False, False))
        self.assertEqual(next(iter(other.answer[0])).port, 993)
        over_tcp = self.tcp("_imaps._tcp.example.test", "SRV", source=LOOPBACK)
        self.assertEqual(flags(over_tcp), (True, False, False))
        self.assertEqual(next(iter(over_tcp.answer[0])).port, 993)
        replies, last = self.replies(sockets)

        full = [r for r in replies if not header(r)[1] & 0x0200]
        slipped = [r for r in replies if header(r)[1] & 0x0200]
        dropped = 200 - len(replies)
        for reply in full:
            self.assertEqual(header(reply)[3], 1)
        for reply in slipped:
            self.assertEqual(header(reply)[2:], (1, 0, 0, 0))
            self.assertTrue(header(reply)[1] & 0x8000)
            self.assertLessEqual(len(reply), len(wire))
            self.assertEqual(reply[12:], wire[12:])
        self.assertEqual(len({header(r)[0] for r in replies}), len(replies))
        # One bucket for the /24: the burst allowance plus what refilled
        # while the burst was answered, not twice that.
        self.assertGreaterEqual(len(full), 1)
        self.assertLessEqual(len(full), self.RATE * (1 + (last - started)) + 1)
        self.assertGreaterEqual(len(slipped), 50)
        self.assertGreaterEqual(dropped, 50)
        self.assert_log_clean()

    def test_exempt_network_not_limited(self) -> None:
        """
        A network in rrl_exempt (the benchmark client) gets every answer.
        """
        sockets, _ = self.burst([EXEMPT_NETWORK], 60)
        replies, _ = self.replies(sockets)
        self.assertEqual(len(replies), 60)
        self.assertFalse(any(header(r)[1] & 0x0200 for r in replies))
        self.assert_log_clean()
