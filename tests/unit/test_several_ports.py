"""
A service on several ports (issue 16 section 2): C{ports = 465/ssl,
587/starttls} in [imap], [pop3], [smtp], [xmpp] and [sip] and as a
[domain:NAME] override, its hostile values, and what follows from it in
every answer:

- POX lists one Protocol per endpoint in order of preference (PROTOCOLS.md
  2.7), autoconfig one server each (7.3), the Apple profile the first (8);
- DNS publishes every matching SRV record, RFC 8314's C{_submissions} for
  the implicit-TLS endpoint and RFC 6186's C{_submission} for the STARTTLS
  one, priorities following the list across owners, and "not offered"
  where one kind is absent (PROTOCOLS.md 9.2, 9.5, 9.7);
- health probes each endpoint, and advertise_unhealthy = no leaves one out
  while the other works;
- the probe command checks each advertised endpoint and holds each SRV
  owner against the answer (PROTOCOLS.md 9.2).

In memory: models loaded from files in a temporary directory, answers
rendered by the pure functions, DNS asked through the wire path, probes
and DNS lookups answered by the stand-ins of the other unit modules.
"""

from __future__ import annotations

import plistlib
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from lxml import etree
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.answer import parse_answer
from smartdiscover.client.checks import check_endpoints, socket_endpoint, srv_endpoints
from smartdiscover.client.report import Report
from smartdiscover.client.resolve import DNS
from smartdiscover.config import ConfigError, ConfigProblem, Model, load
from smartdiscover.config.catalogue import MAX_PORTS, port_pairs
from smartdiscover.config.model import Security, SocketService
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.autoconfig import render_autoconfig
from smartdiscover.discovery.mobileconfig import render_profile
from smartdiscover.discovery.outlook import render_settings
from smartdiscover.dns.records import all_records
from smartdiscover.dns.server import build_zones
from smartdiscover.dns.wire import respond
from smartdiscover.health.endpoints import AdvertisedModel, service_key, targets
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.health.probes import ProbeResult, Target
from tests.helpers import PROJECT_ROOT, build_ini, write_config
from tests.unit.test_client_fakes import Prober, Zone
from tests.unit.test_health import FakeProbe

SSL, STARTTLS, NONE = Security.SSL, Security.STARTTLS, Security.NONE
MAIL = "mail.example.test"
ORG = "domain:example.org"
NS = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
DEMO = Principal("demo@example.test", "Demo User")

# The minimal file with the DNS responder, a second domain, and SMTP on
# both submission ports (RFC 8314 465 first, RFC 6186 587 second).
INI = build_ini({
    "server": {"domains": "example.test, example.org", "dns": "127.0.0.1:8053"},
    "smtp": {"port": None, "security": None, "ports": "465/ssl, 587/starttls"},
    "hosts": {MAIL: "192.0.2.10", "a.example.test": "192.0.2.1",
              "b.example.test": "192.0.2.2"},
})


def with_smtp(ports: str | None = "465/ssl, 587/starttls", ini: str = INI,
              **keys: str | None) -> str:
    """
    C{ini} with [smtp] C{ports} (removed when L{None}) and the other
    [smtp] C{keys} set (removed when L{None}).
    """
    return build_ini({"smtp": {"ports": ports, **keys}}, base=ini)


def smtp_section(body: str, ini: str = INI) -> str:
    """
    C{ini} with [smtp] written as C{body}, word for word.
    """
    return build_ini({"smtp": body}, base=ini)


def org(*lines: str, ini: str = INI) -> str:
    """
    C{ini} with a [domain:example.org] section holding C{lines}.
    """
    return ini + f"\n[{ORG}]\n" + "".join(line + "\n" for line in lines)


class _ModelTestCase(SynchronousTestCase):
    def load(self, ini: str) -> Model:
        return load(write_config(self.mktemp(), ini))

    def endpoints(self, ini: str, name: str = "smtp",
                  domain: str = "example.test") -> list[tuple[str, int, Security, str | None]]:
        """
        (host, port, security, transport) of every endpoint of C{name} for
        C{domain}, in order.
        """
        catalogue = self.load(ini).catalogue_for(domain)
        return [(s.host, s.port, s.security, s.transport)
                for s in catalogue.services_named(name)]

    def assert_only_problem(self, ini: str, section: str, key: str,
                            *fragments: str) -> ConfigProblem:
        """
        Loading C{ini} fails with exactly one problem, at C{section} and
        C{key} of this file, every fragment in its message; the text
        check-config prints names file, section and key.
        """
        path = write_config(self.mktemp(), ini)
        error = self.assertRaises(ConfigError, load, path)
        self.assertEqual(len(error.problems), 1, str(error))
        [problem] = error.problems
        self.assertEqual((problem.file, problem.section, problem.key),
                         (str(path.absolute()), section, key), str(problem))
        for fragment in fragments:
            self.assertIn(fragment, problem.message)
        self.assertTrue(str(problem).startswith(f"{path.absolute()}: [{section}] {key}: "),
                        str(problem))
        return problem


class PortsKeyTests(_ModelTestCase):
    """
    What a valid C{ports} key means (docs/configuration.md).
    """

    def test_pairs_in_order(self) -> None:
        """
        Each pair is an endpoint, in the order written; the order is kept
        whichever comes first.
        """
        self.assertEqual(self.endpoints(INI),
                         [(MAIL, 465, SSL, None), (MAIL, 587, STARTTLS, None)])
        self.assertEqual(self.endpoints(with_smtp("587/starttls, 465/ssl")),
                         [(MAIL, 587, STARTTLS, None), (MAIL, 465, SSL, None)])

    def test_standard_port_when_omitted(self) -> None:
        """
        A security alone takes its standard port (DEFAULT_PORTS, as the
        port key's default does): 465 and 587 for SMTP, 993 and 143 for
        IMAP, 995 and 110 for POP3, 5223 and 5222 for XMPP.
        """
        self.assertEqual(self.endpoints(with_smtp("ssl, starttls")),
                         [(MAIL, 465, SSL, None), (MAIL, 587, STARTTLS, None)])
        for name, ssl_port, starttls_port in (("imap", 993, 143), ("pop3", 995, 110),
                                              ("xmpp", 5223, 5222)):
            ini = build_ini({name: f"host = {MAIL}\nports = SSL , starttls\n"}, base=INI)
            self.assertEqual(self.endpoints(ini, name),
                             [(MAIL, ssl_port, SSL, None), (MAIL, starttls_port, STARTTLS, None)],
                             name)

    def test_spelling(self) -> None:
        """
        Spaces around commas and slashes, upper case, an empty entry
        between commas and a mix of explicit and standard ports are read
        as written.
        """
        self.assertEqual(self.endpoints(with_smtp(" 2465 / SSL ,, starttls,25/none ")),
                         [(MAIL, 2465, SSL, None), (MAIL, 587, STARTTLS, None),
                          (MAIL, 25, NONE, None)])

    def test_every_host_on_each_pair(self) -> None:
        """
        With several hosts, every host on the first pair comes before any
        host on the next: a client that fails over stays on the preferred
        security.
        """
        ini = with_smtp(host="a.example.test, b.example.test")
        self.assertEqual(self.endpoints(ini), [
            ("a.example.test", 465, SSL, None), ("b.example.test", 465, SSL, None),
            ("a.example.test", 587, STARTTLS, None), ("b.example.test", 587, STARTTLS, None)])

    def test_old_keys_unchanged(self) -> None:
        """
        port and security without ports give the one endpoint they always
        gave, and an absent port its standard one.
        """
        self.assertEqual(self.endpoints(with_smtp(None, port="2525", security="starttls")),
                         [(MAIL, 2525, STARTTLS, None)])
        self.assertEqual(self.endpoints(smtp_section("host = mail.example.test\n"
                                                     "security = ssl\n")),
                         [(MAIL, 465, SSL, None)])

    def test_sip_transports(self) -> None:
        """
        SIP lists transports: tls (or ssl) is security ssl on 5061, tcp and
        udp are none on 5060; UDP and TCP may share a port number.
        """
        ini = INI + "\n[sip]\nhost = mail.example.test\nports = tls, 5060/tcp, udp, 5062/SSL\n"
        self.assertEqual(self.endpoints(ini, "sip"), [
            (MAIL, 5061, SSL, "tls"), (MAIL, 5060, NONE, "tcp"), (MAIL, 5060, NONE, "udp"),
            (MAIL, 5062, SSL, "tls")])

    def test_xmpp_keeps_server_port(self) -> None:
        """
        XMPP's server_port stays its own key beside ports, on every endpoint.
        """
        model = self.load(INI + "\n[xmpp]\nports = ssl, starttls\nserver_port = 5269\n")
        self.assertEqual([(s.port, s.server_port) for s in model.catalogue.services_named("xmpp")],
                         [(5223, 5269), (5222, 5269)])

    def test_bound_is_inclusive(self) -> None:
        """
        MAX_PORTS entries are accepted.
        """
        ports = ", ".join(f"{2000 + i}/ssl" for i in range(MAX_PORTS))
        self.assertEqual(len(self.endpoints(with_smtp(ports))), MAX_PORTS)


class HostileValueTests(_ModelTestCase):
    """
    Every bad ports value is refused at load, once, at [smtp] ports (or the
    key that was written), with a message that says what to write.
    """

    def test_bad_values(self) -> None:
        for value, fragments in [
            (",", ("no port given", "465/ssl, 587/starttls")),
            (" , ,", ("no port given",)),
            (", ".join(["ssl"] * (MAX_PORTS + 1)),
             (f"{MAX_PORTS + 1} entries", f"at most {MAX_PORTS}")),
            ("0/ssl", ("'0' is not a port number (1-65535)",)),
            ("65536/ssl", ("'65536' is not a port number",)),
            ("100000/ssl", ("'100000/ssl'", "not a port number")),
            ("-1/ssl", ("'-1' is not a port number",)),
            ("+465/ssl", ("'+465' is not a port number",)),
            ("4_65/ssl", ("'4_65' is not a port number",)),  # int() would read 465
            ("\u0664\u0666\u0665/ssl", ("is not a port number",)),  # Arabic-Indic 465
            ("abc/ssl", ("'abc' is not a port number",)),
            ("/ssl", ("write ssl alone for the standard port",)),
            ("465", ("'465' has no security", "465/ssl, 465/starttls or 465/none")),
            ("465/", ("is not PORT/SECURITY",)),
            ("465/ssl/tls", ("is not PORT/SECURITY",)),
            ("465/ssl 587/starttls", ("is not PORT/SECURITY",)),  # a missing comma
            ("465:ssl", ("'465:ssl' is not one of: ssl, starttls, none",)),
            ("465/tls", ("'tls' is not one of: ssl, starttls, none", "implicit TLS is ssl")),
            ("465/ssl3", ("'ssl3' is not one of",)),
            ("465/ssl, 465/ssl", ("'465/ssl' is given twice",)),
            ("ssl, 465/SSL", ("'465/SSL' is given twice",)),
            ("465/ssl, 465/starttls", ("port 465 is listed with two securities",
                                       "465/ssl, 465/starttls")),
            ("ssl, starttls, none", ("port 587 is listed with two securities",
                                     "587/starttls, 587/none")),
        ]:
            self.assert_only_problem(with_smtp(value), "smtp", "ports", *fragments)

    def test_empty_value(self) -> None:
        """
        ports with nothing after it is refused, not read as "no ports".
        """
        self.assert_only_problem(smtp_section("host = mail.example.test\nports =\n"),
                                 "smtp", "ports", "empty", "remove the key")

    def test_sip_inapplicable(self) -> None:
        """
        SIP has no STARTTLS, and none does not say which plain transport;
        one TCP port cannot be both tls and tcp; transport sits beside ports
        no more than port does.
        """
        for value, fragments in [
            ("5060/starttls", ("SIP has no STARTTLS", "tls, tcp or udp")),
            ("starttls", ("SIP has no STARTTLS",)),
            ("5060/none", ("tcp or udp",)),
            ("5060/sctp", ("'sctp' is not one of: tls, tcp, udp",)),
            ("5060", ("has no security", "5060/tls, 5060/tcp or 5060/udp")),
            ("5060/tcp, 5060/tls", ("port 5060 is listed with two transports",)),
            ("udp, 5060/udp", ("given twice",)),
        ]:
            self.assert_only_problem(INI + f"\n[sip]\nports = {value}\n", "sip", "ports",
                                     *fragments)
        self.assert_only_problem(INI + "\n[sip]\nports = tls\ntransport = tls\n",
                                 "sip", "ports", "cannot be combined with transport")

    def test_xmpp_inapplicable(self) -> None:
        """
        SIP's transports are not XMPP securities.
        """
        for value in ("5222/udp", "5222/tcp", "5223/tls"):
            self.assert_only_problem(INI + f"\n[xmpp]\nports = {value}\n", "xmpp", "ports",
                                     "is not one of: ssl, starttls, none", "SIP transports")

    def test_mixed_with_port_or_security(self) -> None:
        """
        ports beside port, security or both in one section is refused at
        ports, naming the keys to remove.
        """
        for keys, named in [({"port": "465"}, "port"), ({"security": "ssl"}, "security"),
                            ({"port": "465", "security": "ssl"}, "port and security")]:
            self.assert_only_problem(with_smtp(**keys), "smtp", "ports",
                                     f"cannot be combined with {named}", f"remove {named}")


class DomainOverrideTests(_ModelTestCase):
    """
    [domain:NAME] SECTION.ports works like every other service key.
    """

    def test_override_replaces_the_list(self) -> None:
        """
        The domain's list replaces the main one for that domain only.
        """
        ini = org("smtp.ports = 587/starttls")
        self.assertEqual(self.endpoints(ini, domain="example.org"),
                         [(MAIL, 587, STARTTLS, None)])
        self.assertEqual(self.endpoints(ini), [(MAIL, 465, SSL, None),
                                              (MAIL, 587, STARTTLS, None)])

    def test_override_replaces_port_and_security(self) -> None:
        """
        Over a main section with port and security, the domain's ports
        replace both.
        """
        ini = org("smtp.ports = ssl, starttls",
                  ini=with_smtp(None, port="2525", security="starttls"))
        self.assertEqual(self.endpoints(ini, domain="example.org"),
                         [(MAIL, 465, SSL, None), (MAIL, 587, STARTTLS, None)])
        self.assertEqual(self.endpoints(ini), [(MAIL, 2525, STARTTLS, None)])

    def test_override_of_port_over_main_ports(self) -> None:
        """
        A main ports list cannot be changed pair by pair: overriding port
        or security is refused at the override, saying to override ports.
        """
        for key in ("smtp.port = 2525", "smtp.security = none"):
            self.assert_only_problem(org(key), ORG, key.split(" ")[0],
                                     "[smtp] lists ports", "override smtp.ports")

    def test_mixed_in_the_override(self) -> None:
        """
        ports and port in the same [domain:] section are refused there.
        """
        self.assert_only_problem(org("smtp.ports = ssl", "smtp.port = 465"), ORG, "smtp.ports",
                                 "cannot be combined with smtp.port", "remove smtp.port")

    def test_bad_override(self) -> None:
        """
        A bad or empty override is reported at the [domain:] key.
        """
        self.assert_only_problem(org("smtp.ports = 465/ssl, 465/ssl"), ORG, "smtp.ports",
                                 "given twice")
        self.assert_only_problem(org("smtp.ports ="), ORG, "smtp.ports", "empty value")
        self.assert_only_problem(org("sip.ports = 5060/starttls"), ORG, "sip.ports",
                                 "SIP has no STARTTLS")

    def test_port_pairs_directly(self) -> None:
        """
        L{port_pairs} is what both places read with.
        """
        self.assertEqual(port_pairs("smtp", "465/ssl, starttls"),
                         [(465, SSL, None), (587, STARTTLS, None)])
        self.assertEqual(port_pairs("sip", "tls, udp"),
                         [(5061, SSL, "tls"), (5060, NONE, "udp")])
        self.assertRaises(ValueError, port_pairs, "smtp", "")


class FormatTests(_ModelTestCase):
    """
    POX, autoconfig and the Apple profile of SMTP on 465 and 587, and of
    IMAP on 993 and 143.
    """

    INI = build_ini({"imap": {"security": None, "ports": "993/ssl, 143/starttls"}}, base=INI)

    def pox(self, ini: str, domain: str = "example.test") -> list[dict[str, str]]:
        catalogue = self.load(ini).catalogue_for(domain)
        root = etree.fromstring(render_settings(catalogue, Principal(f"demo@{domain}", "D")))
        return [{etree.QName(child).localname: child.text or "" for child in protocol}
                for protocol in root.xpath("//a:Protocol", namespaces=NS)]

    def test_pox_lists_every_endpoint_in_order(self) -> None:
        """
        One Protocol per endpoint, standard Types in their order, each
        service's endpoints in the order of its list, with the SSL and
        Encryption of its own security (PROTOCOLS.md 2.7).
        """
        protocols = self.pox(self.INI)
        socket = [(p["Type"], p["Port"], p["SSL"], p["Encryption"]) for p in protocols
                  if "Port" in p]
        self.assertEqual(socket, [("IMAP", "993", "on", "SSL"), ("IMAP", "143", "on", "TLS"),
                                  ("POP3", "110", "on", "TLS"),
                                  ("SMTP", "465", "on", "SSL"), ("SMTP", "587", "on", "TLS")])
        smtp = [p for p in protocols if p["Type"] == "SMTP"]
        self.assertEqual({(p["Server"], p["LoginName"], p["UsePOPAuth"]) for p in smtp},
                         {(MAIL, "demo@example.test", "on")})

    def test_pox_follows_the_domain(self) -> None:
        """
        A domain whose override lists 587 alone gets one SMTP Protocol.
        """
        protocols = self.pox(org("smtp.ports = 587/starttls", ini=self.INI), "example.org")
        self.assertEqual([p["Port"] for p in protocols if p["Type"] == "SMTP"], ["587"])

    def test_autoconfig_one_server_each(self) -> None:
        """
        Every endpoint is its own incomingServer or outgoingServer, in
        order, with its socketType (PROTOCOLS.md 7.3).
        """
        root = etree.fromstring(render_autoconfig(self.load(self.INI).catalogue, "example.test"))
        servers = [(s.tag, s.get("type"), s.findtext("port"), s.findtext("socketType"))
                   for s in root.iter("incomingServer", "outgoingServer")]
        self.assertEqual(servers, [
            ("incomingServer", "imap", "993", "SSL"), ("incomingServer", "imap", "143", "STARTTLS"),
            ("incomingServer", "pop3", "110", "STARTTLS"),
            ("outgoingServer", "smtp", "465", "SSL"),
            ("outgoingServer", "smtp", "587", "STARTTLS")])

    def test_profile_takes_the_first(self) -> None:
        """
        The Apple mail payload has room for one incoming and one outgoing
        server: the first of each list (PROTOCOLS.md 8).
        """
        def mail(ini: str) -> dict[str, Any]:
            profile = plistlib.loads(render_profile(self.load(ini).catalogue, DEMO))
            [payload] = [p for p in profile["PayloadContent"]
                         if p["PayloadType"] == "com.apple.mail.managed"]
            return payload

        first = mail(self.INI)
        self.assertEqual((first["IncomingMailServerPortNumber"],
                          first["OutgoingMailServerPortNumber"],
                          first["OutgoingMailServerUseSSL"]), (993, 465, True))
        reversed_ = mail(build_ini({"smtp": {"ports": "587/starttls, 465/ssl"},
                                    "imap": {"ports": "143/starttls, 993/ssl"}}, base=self.INI))
        self.assertEqual((reversed_["IncomingMailServerPortNumber"],
                          reversed_["OutgoingMailServerPortNumber"]), (143, 587))


def srv(model: Model, owner: str) -> list[tuple[int, int, str]]:
    """
    (priority, port, target) of the SRV records at C{owner} in the zones of
    C{model}, asked through the wire path as a resolver asks.
    """
    query = dns.message.make_query(owner, "SRV")
    response = respond(query.to_wire(), build_zones(model), False)
    assert response is not None
    message = dns.message.from_wire(response.data)
    assert message.rcode() == dns.rcode.NOERROR, message
    records = message.find_rrset(message.answer, dns.name.from_text(owner),
                                 dns.rdataclass.IN, dns.rdatatype.SRV)
    return sorted((r.priority, r.port, r.target.to_text()) for r in records)


def naptr(model: Model, owner: str) -> list[str]:
    query = dns.message.make_query(owner, "NAPTR")
    response = respond(query.to_wire(), build_zones(model), False)
    assert response is not None
    message = dns.message.from_wire(response.data)
    return sorted(r.to_text() for rrset in message.answer for r in rrset)


NOT_OFFERED = [(0, 0, ".")]


class DNSTests(_ModelTestCase):
    """
    Every endpoint is published under the owner of its security; an owner
    nothing matches stays "not offered" (PROTOCOLS.md 9.2, 9.7).
    """

    def test_both_submission_records(self) -> None:
        """
        465/ssl is _submissions._tcp, 587/starttls _submission._tcp; the
        priorities follow the list across the two owners (0 before 10),
        as PROTOCOLS.md 9.7 publishes them and RFC 6186 compares them.
        """
        model = self.load(INI)
        self.assertEqual(srv(model, "_submissions._tcp.example.test."), [(0, 465, MAIL + ".")])
        self.assertEqual(srv(model, "_submission._tcp.example.test."), [(10, 587, MAIL + ".")])
        model = self.load(with_smtp("587/starttls, 465/ssl"))
        self.assertEqual(srv(model, "_submission._tcp.example.test."), [(0, 587, MAIL + ".")])
        self.assertEqual(srv(model, "_submissions._tcp.example.test."), [(10, 465, MAIL + ".")])

    def test_one_kind_absent_stays_not_offered(self) -> None:
        """
        A domain whose override lists STARTTLS alone publishes 587 and
        "0 0 0 ." at _submissions (RFC 6186 section 3.4 "not offered");
        the main domain keeps both.  IMAP without a ports key is as before.
        """
        model = self.load(org("smtp.ports = starttls"))
        self.assertEqual(srv(model, "_submissions._tcp.example.org."), NOT_OFFERED)
        self.assertEqual(srv(model, "_submission._tcp.example.org."), [(0, 587, MAIL + ".")])
        self.assertEqual(srv(model, "_submissions._tcp.example.test."), [(0, 465, MAIL + ".")])
        self.assertEqual(srv(model, "_imaps._tcp.example.test."), [(0, 993, MAIL + ".")])
        self.assertEqual(srv(model, "_imap._tcp.example.test."), NOT_OFFERED)

    def test_hosts_and_ports(self) -> None:
        """
        Two hosts on two ports: each owner holds both hosts, in order, at
        the priorities of their place in the whole list.
        """
        model = self.load(with_smtp(host="a.example.test, b.example.test"))
        self.assertEqual(srv(model, "_submissions._tcp.example.test."),
                         [(0, 465, "a.example.test."), (10, 465, "b.example.test.")])
        self.assertEqual(srv(model, "_submission._tcp.example.test."),
                         [(20, 587, "a.example.test."), (30, 587, "b.example.test.")])

    def test_starttls_and_plain_share_the_owner(self) -> None:
        """
        STARTTLS and plain both belong at _submission, in list order.
        """
        model = self.load(with_smtp("ssl, 587/starttls, 25/none"))
        self.assertEqual(srv(model, "_submission._tcp.example.test."),
                         [(10, 587, MAIL + "."), (20, 25, MAIL + ".")])

    def test_every_mail_pair(self) -> None:
        """
        IMAP and POP3 on both their ports fill both their owners.
        """
        model = self.load(build_ini({
            "imap": {"security": None, "ports": "993/ssl, 143/starttls"},
            "pop3": {"security": None, "ports": "starttls, ssl"}}, base=INI))
        self.assertEqual(srv(model, "_imaps._tcp.example.test."), [(0, 993, MAIL + ".")])
        self.assertEqual(srv(model, "_imap._tcp.example.test."), [(10, 143, MAIL + ".")])
        self.assertEqual(srv(model, "_pop3._tcp.example.test."), [(0, 110, MAIL + ".")])
        self.assertEqual(srv(model, "_pop3s._tcp.example.test."), [(10, 995, MAIL + ".")])

    def test_sip_every_transport(self) -> None:
        """
        SIP on tls, tcp and udp publishes each SRV owner and a NAPTR for
        each, in RFC 3263's order (PROTOCOLS.md 9.5).
        """
        model = self.load(INI + "\n[sip]\nports = tls, tcp, udp\n")
        self.assertEqual(srv(model, "_sips._tcp.example.test."), [(0, 5061, MAIL + ".")])
        self.assertEqual(srv(model, "_sip._tcp.example.test."), [(0, 5060, MAIL + ".")])
        self.assertEqual(srv(model, "_sip._udp.example.test."), [(0, 5060, MAIL + ".")])
        self.assertEqual(naptr(model, "example.test."), [
            '100 50 "s" "SIP+D2U" "" _sip._udp.example.test.',
            '50 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.',
            '90 50 "s" "SIP+D2T" "" _sip._tcp.example.test.'])


class HealthTests(_ModelTestCase):
    """
    Health probes every endpoint, and advertise_unhealthy = no leaves out
    the failing one while the other works.
    """

    POLICY = "interval = 60\ngrace = 100\nadvertise_unhealthy = no\n"

    def test_one_target_per_endpoint(self) -> None:
        """
        targets() holds each pair as its own target, with its security.
        """
        found = targets(self.load(INI))
        smtp = sorted((t.port, t.security) for t in found.values() if t.protocol == "smtp")
        self.assertEqual(smtp, [(465, SSL), (587, STARTTLS)])
        self.assertIn(("smtp", MAIL, "465", "ssl", ""), found)
        self.assertIn(("smtp", MAIL, "587", "starttls", ""), found)

    def start(self) -> tuple[HealthMonitor, FakeProbe, Clock, Model]:
        model = self.load(build_ini({"health": {"interval": "60", "grace": "100",
                                                "advertise_unhealthy": "no"}}, base=INI))
        clock = Clock()
        probe = FakeProbe(clock)
        monitor = HealthMonitor(lambda: model, clock, run_probe=probe)
        monitor.startService()
        self.addCleanup(monitor.stopService)
        return monitor, probe, clock, model

    def test_each_endpoint_probed(self) -> None:
        """
        One round probes 465 and 587, each once.
        """
        _, probe, clock, _ = self.start()
        clock.advance(0)
        self.assertEqual(sorted(c for c in probe.calls if c.startswith("smtp")),
                         ["smtp://mail.example.test:465", "smtp://mail.example.test:587"])

    def test_failing_port_left_out(self) -> None:
        """
        465 refusing beyond the grace period leaves POX with 587 alone and
        makes _submissions "not offered"; service readiness holds; when
        587 fails too, both are advertised again.
        """
        monitor, probe, clock, model = self.start()
        advertised = AdvertisedModel(lambda: model, lambda: monitor.down)
        refused = ProbeResult(False, 0.001, "connection refused", None)
        probe.results["smtp://mail.example.test:465"] = refused
        for _ in range(3):
            clock.advance(60)
        [ssl_endpoint] = [s for s in model.catalogue.services if s.port == 465]
        self.assertEqual(monitor.down, frozenset({service_key(ssl_endpoint)}))
        self.assertEqual([s.port for s in advertised().catalogue.services_named("smtp")], [587])
        self.assertEqual(srv(advertised(), "_submissions._tcp.example.test."), NOT_OFFERED)
        self.assertEqual(srv(advertised(), "_submission._tcp.example.test."),
                         [(0, 587, MAIL + ".")])
        self.assertEqual(monitor.unavailable(model), [])
        probe.results["smtp://mail.example.test:587"] = refused
        for _ in range(3):
            clock.advance(60)
        self.assertEqual([s.port for s in advertised().catalogue.services_named("smtp")],
                         [465, 587])
        self.assertEqual(monitor.unavailable(model), ["example.test smtp", "example.org smtp"])


class ProbeCommandTests(_ModelTestCase):
    """
    What C{smartdiscover probe} makes of SMTP on two ports: our own POX
    answer read back with its parser, each endpoint probed with the
    stand-in prober, the SRV owners asked of a zone holding our own
    records.
    """

    def zone(self, model: Model, drop: str | None = None) -> Zone:
        """
        The in-memory zone of C{model}'s records, without owner C{drop}'s
        records (a zone that is behind the configuration).
        """
        records: dict[tuple[str, int], list[Any]] = {}
        for owner, kind, payload in all_records(model, 1)["example.test"]:
            if owner != drop:
                records.setdefault((owner, kind), []).append(payload)
        return Zone(records)

    def discover(self, model: Model, zone: Zone, prober: Prober) -> Report:
        body = render_settings(model.catalogue, DEMO)
        answer = parse_answer(body)
        self.assertEqual(answer.kind, "settings")
        endpoints = [e for e in (socket_endpoint(p, "example.test") for p in answer.protocols)
                     if e is not None]
        report = Report()
        seen: set[Target] = set()
        self.successResultOf(Deferred.fromCoroutine(
            check_endpoints(endpoints, report, None, None, 5.0, seen, prober=prober)))
        extra = self.successResultOf(Deferred.fromCoroutine(
            srv_endpoints(answer.protocols, "example.test", DNS(zone, Clock(), 5.0), report)))
        self.successResultOf(Deferred.fromCoroutine(
            check_endpoints(extra, report, None, None, 5.0, seen, prober=prober)))
        return report

    def test_each_endpoint_and_owner_checked(self) -> None:
        """
        Both SMTP endpoints are probed with their own security, and both
        submission owners match the answer: every check passes.
        """
        model = self.load(INI)
        prober = Prober()
        report = self.discover(model, self.zone(model), prober)
        self.assertEqual([c.name for c in report.checks if not c.ok], [])
        self.assertIn(Target("smtp", MAIL, 465, SSL, domain="example.test"), prober.calls)
        self.assertIn(Target("smtp", MAIL, 587, STARTTLS, domain="example.test"), prober.calls)
        names = [c.name for c in report.checks]
        for name in ("endpoint SMTP mail.example.test:465 (SSL)",
                     "endpoint SMTP mail.example.test:587 (STARTTLS)",
                     "SRV _submissions._tcp.example.test", "SRV _submission._tcp.example.test"):
            self.assertIn(name, names)

    def test_zone_without_the_second_record(self) -> None:
        """
        A zone that does not publish 587 fails the _submission check with
        the record to publish; _submissions still passes.
        """
        model = self.load(INI)
        report = self.discover(model, self.zone(model, drop="_submission._tcp.example.test"),
                          Prober())
        failed = {c.name: c for c in report.checks if not c.ok}
        self.assertEqual(list(failed), ["SRV _submission._tcp.example.test"])
        check = failed["SRV _submission._tcp.example.test"]
        self.assertIn("the autodiscover answer offers mail.example.test:587", check.detail)
        self.assertIn("publish _submission._tcp.example.test SRV 0 1 587 mail.example.test.",
                      check.fix)

    def test_one_port_down(self) -> None:
        """
        A refused 587 fails that endpoint alone.
        """
        model = self.load(INI)
        report = self.discover(model, self.zone(model),
                          Prober({(MAIL, 587): "connection refused"}))
        self.assertEqual([c.name for c in report.checks if not c.ok],
                         ["endpoint SMTP mail.example.test:587 (STARTTLS)"])


class ShippedConfigTests(SynchronousTestCase):
    """
    etc/sd.ini shows SMTP on both submission ports, and stays valid.
    """

    def test_shipped_smtp(self) -> None:
        model = load(PROJECT_ROOT / "etc" / "sd.ini")
        self.assertEqual([(s.port, s.security) for s in model.catalogue.services_named("smtp")],
                         [(465, SSL), (587, STARTTLS)])
        self.assertEqual(srv(model, "_submissions._tcp.example.test.")[0][1], 465)
        self.assertEqual(srv(model, "_submission._tcp.example.test.")[0][1], 587)
