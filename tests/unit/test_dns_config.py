"""
Tests for the [dns] and [hosts] sections and the [server] dns listener
(L{smartdiscover.config.dns}): defaults, every error path, and the rule that
every name the zones point at inside a served zone has an address
(SECURITY.md 6 and 7, PROTOCOLS.md 9).
"""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import ConfigError, ConfigProblem, load
from smartdiscover.config.dns import in_zone
from smartdiscover.config.model import DNSSettings, Model, Security, SocketService, UDPAddress
from tests.helpers import MINIMAL_INI, edit, write_config

# The minimal file with the responder on, before any [dns] or [hosts].
LISTENING_INI = edit("ttl = 1\n", "ttl = 1\ndns = 127.0.0.1:5353\n")
# The only address the minimal file needs: the public host, which every
# service of the minimal file and the default nameserver point at.
PUBLIC_HOSTS = "mail.example.test = 192.0.2.10, 2001:db8::10\n"
# [server] and [auth] only, public host outside the served zone.
OUT_OF_ZONE_CORE = edit(
    "public_hostname = mail.example.test", "public_hostname = mail.provider.net",
    LISTENING_INI[: LISTENING_INI.index("[imap]")])


def dns_ini(dns: str | None = None, hosts: str | None = PUBLIC_HOSTS,
            base: str = LISTENING_INI) -> str:
    """
    C{base} with a [dns] section holding C{dns} and a [hosts] section
    holding C{hosts} (either left out when L{None}).
    """
    ini = base
    if dns is not None:
        ini += "\n[dns]\n" + dns
    if hosts is not None:
        ini += "\n[hosts]\n" + hosts
    return ini


class _DNSConfigTestCase(SynchronousTestCase):
    """
    Writing a configuration and looking at what the loader makes of it.
    """

    def path(self, ini: str) -> Path:
        return write_config(self.mktemp(), ini)

    def settings(self, ini: str) -> DNSSettings:
        """
        The [dns] settings of C{ini}, which must be valid.
        """
        model = load(self.path(ini))
        self.assertIsInstance(model, Model)
        self.assertIsNotNone(model.dns)
        return model.dns

    def problems(self, ini: str) -> list[ConfigProblem]:
        """
        The problems of C{ini}, which must be invalid; each names the file.
        """
        path = self.path(ini)
        error = self.assertRaises(ConfigError, load, path)
        for problem in error.problems:
            self.assertEqual(problem.file, str(path.absolute()))
        return error.problems

    def where(self, problems: list[ConfigProblem]) -> list[tuple[str | None, str | None]]:
        return [(p.section, p.key) for p in problems]

    def assert_only_problem(self, ini: str, section: str | None, key: str | None,
                            *fragments: str) -> ConfigProblem:
        """
        Loading C{ini} fails with exactly one problem, at C{section} and
        C{key}, whose message and text contain every fragment.
        """
        problems = self.problems(ini)
        self.assertEqual(len(problems), 1, [str(p) for p in problems])
        problem = problems[0]
        self.assertEqual((problem.section, problem.key), (section, key), str(problem))
        shown = problem.file
        if section is not None:
            shown += f": [{section}]"
        if key is not None:
            shown += f" {key}"
        self.assertEqual(str(problem), f"{shown}: {problem.message}")
        for fragment in fragments:
            self.assertIn(fragment, problem.message)
        return problem


class DNSDefaultsTests(_DNSConfigTestCase):
    """
    [dns] values when keys are absent or empty (SECURITY.md 6.1: RRL on by
    default with Knot-like limits, slip 2; 6.3: TCP idle 10 s, per-source cap).
    """

    def assert_defaults(self, dns: DNSSettings) -> None:
        self.assertEqual(dns.listen, UDPAddress("127.0.0.1", 5353))
        self.assertEqual(dns.ttl, 300)
        self.assertEqual(dns.nameservers, ("mail.example.test",))
        self.assertIsNone(dns.hostmaster)
        self.assertEqual(dns.mx, ())
        self.assertEqual(dns.rrl_rate, 20)
        self.assertEqual(dns.rrl_slip, 2)
        self.assertEqual(dns.rrl_exempt.texts, ())
        self.assertEqual(dns.tcp_idle, 10.0)
        self.assertIsInstance(dns.tcp_idle, float)
        self.assertEqual(dns.tcp_per_source, 20)
        self.assertEqual(dict(dns.hosts),
                         {"mail.example.test": ("192.0.2.10", "2001:db8::10")})

    def test_no_dns_section(self) -> None:
        """
        Without a [dns] section every key has its default: TTL 300, the
        public host as the only nameserver, hostmaster@<domain>, no MX, RRL
        at 20/s with slip 2 and no exemption, TCP idle 10 s and 20
        connections per source (SECURITY.md 6.1, 6.3).
        """
        self.assert_defaults(self.settings(dns_ini()))

    def test_empty_values_mean_defaults(self) -> None:
        """
        A key written without a value keeps its default, like a key left out.
        """
        empty = "".join(f"{key} =\n" for key in (
            "ttl", "nameservers", "hostmaster", "mx", "rrl_rate", "rrl_slip",
            "rrl_exempt", "tcp_idle", "tcp_per_source"))
        self.assert_defaults(self.settings(dns_ini(empty)))

    def test_settings_are_immutable(self) -> None:
        """
        The settings, like the whole model, cannot change after loading
        (SECURITY.md 7: one immutable model per reload).
        """
        dns = self.settings(dns_ini())
        with self.assertRaises(AttributeError):
            dns.ttl = 1  # type: ignore[misc]
        with self.assertRaises(TypeError):
            dns.hosts["other.example.test"] = ("192.0.2.1",)  # type: ignore[index]


class DNSKeyTests(_DNSConfigTestCase):
    """
    Every [dns] key, its accepted forms and its errors; each error names
    [dns] and the key (SECURITY.md 7: "log file/section/key").
    """

    def test_every_key_given(self) -> None:
        """
        Explicit values are parsed and normalised: host names lower-case
        without the trailing dot, the hostmaster's domain normalised but its
        local part kept, MX as PREFERENCE HOST pairs, exempt networks in
        canonical CIDR form (PROTOCOLS.md 9, SECURITY.md 6.1).
        """
        dns = self.settings(dns_ini(
            "ttl = 604800\n"
            "nameservers = NS1.Example.Test., ns.example.net\n"
            "hostmaster = DNS-Admin@EXAMPLE.test\n"
            "mx = 10 MX1.example.test, 20 mx.example.net,\n"
            "rrl_rate = 1000000\n"
            "rrl_slip = 10\n"
            "rrl_exempt = 192.0.2.7/24, 2001:DB8::/32, 198.51.100.1\n"
            "tcp_idle = 3600\n"
            "tcp_per_source = 10000\n",
            PUBLIC_HOSTS + "ns1.example.test = 192.0.2.53\nmx1.example.test = 192.0.2.25\n"))
        self.assertEqual(dns.ttl, 604800)
        self.assertEqual(dns.nameservers, ("ns1.example.test", "ns.example.net"))
        self.assertEqual(dns.hostmaster, "DNS-Admin@example.test")
        self.assertEqual(dns.mx, ((10, "mx1.example.test"), (20, "mx.example.net")))
        self.assertEqual(dns.rrl_rate, 1000000)
        self.assertEqual(dns.rrl_slip, 10)
        self.assertEqual(dns.rrl_exempt.texts,
                         ("192.0.2.0/24", "2001:db8::/32", "198.51.100.1/32"))
        self.assertEqual(dns.tcp_idle, 3600.0)
        self.assertEqual(dns.tcp_per_source, 10000)

    def test_zero_turns_limits_off(self) -> None:
        """
        C{rrl_rate = 0} turns rate limiting off and C{rrl_slip = 0} drops
        every limited answer; both are accepted (SECURITY.md 6.1), as are a
        TTL of 0 and the preference 0.
        """
        dns = self.settings(dns_ini("rrl_rate = 0\nrrl_slip = 0\nttl = 0\n"
                                    "mx = 0 mail.example.test\n"))
        self.assertEqual((dns.rrl_rate, dns.rrl_slip, dns.ttl), (0, 0, 0))
        self.assertEqual(dns.mx, ((0, "mail.example.test"),))

    def test_unknown_key(self) -> None:
        """
        An unknown [dns] key is an error naming it and listing the known
        keys, so a typo never silently keeps a default.
        """
        problem = self.assert_only_problem(dns_ini("rrl_ratio = 5\n"), "dns", "rrl_ratio",
                                           "unknown key")
        for key in ("ttl", "nameservers", "hostmaster", "mx", "rrl_rate", "rrl_slip",
                    "rrl_exempt", "tcp_idle", "tcp_per_source"):
            self.assertIn(key, problem.message)

    def test_bad_numbers(self) -> None:
        """
        The numeric keys take whole numbers from 0 up to their limit: a TTL
        of at most a week, at most 1,000,000 responses/s, slip at most 10,
        idle timeout at most an hour, at most 10,000 connections per source.
        """
        cases = []
        for key, most in [("ttl", 604800), ("rrl_rate", 1000000), ("rrl_slip", 10),
                          ("tcp_idle", 3600), ("tcp_per_source", 10000)]:
            cases += [(key, "abc", "'abc' is not a whole number"),
                      (key, "1.5", "'1.5' is not a whole number"),
                      (key, "-1", "'-1' is negative"),
                      (key, str(most + 1), f"{most + 1} is more than {most}")]
        for key, value, fragment in cases:
            self.assert_only_problem(dns_ini(f"{key} = {value}\n"), "dns", key, fragment)

    def test_bad_nameservers(self) -> None:
        """
        C{nameservers} is a list of host names.
        """
        for value in ("ns..example.test", "ns1.example.test, -bad-.example.test",
                      "ns_1.example.test"):
            self.assert_only_problem(dns_ini(f"nameservers = {value}\n"),
                                     "dns", "nameservers", "not a host name")

    def test_bad_hostmaster(self) -> None:
        """
        C{hostmaster} is an address whose local part has no dot: the SOA
        RNAME turns the first dot into the @ (PROTOCOLS.md 9), so
        C{first.last@example.test} would be published as another mailbox.
        """
        for value, fragment in [("host.master@example.test", "cannot contain a dot"),
                                ("hostmaster", "not an address"),
                                ("@example.test", "not an address"),
                                ("hostmaster@", "not an address"),
                                ("hostmaster@bad..example.test", "not an address")]:
            self.assert_only_problem(dns_ini(f"hostmaster = {value}\n"),
                                     "dns", "hostmaster", fragment)

    def test_bad_mx(self) -> None:
        """
        C{mx} is a comma-separated list of PREFERENCE HOST with a preference
        from 0 to 65535 and a valid host name.
        """
        for value, fragment in [("mx.example.test", "PREFERENCE HOST"),
                                ("ten mx.example.test", "PREFERENCE HOST"),
                                ("10 mx.example.test, mx2.example.test", "PREFERENCE HOST"),
                                ("65536 mx.example.test", "not a preference"),
                                ("-1 mx.example.test", "not a preference"),
                                ("10", "not a host name"),
                                ("10 mx..example.test", "not a host name"),
                                ("10 mx.example.test extra", "not a host name")]:
            self.assert_only_problem(dns_ini(f"mx = {value}\n"), "dns", "mx", fragment)

    def test_bad_exempt_networks(self) -> None:
        """
        C{rrl_exempt} is a list of addresses or networks (SECURITY.md 6.1:
        the benchmark client is exempted by configuration).
        """
        for value in ("monitoring", "10.0.0.0/33", "2001:db8::/129",
                      "192.0.2.0/24, example.test"):
            self.assert_only_problem(dns_ini(f"rrl_exempt = {value}\n"),
                                     "dns", "rrl_exempt", "not an address or network")

    def test_every_bad_key_reported(self) -> None:
        """
        Several bad keys are all reported at once, each under its own key.
        """
        problems = self.problems(dns_ini("ttl = x\nrrl_slip = 11\nmx = x\nbogus = 1\n"))
        self.assertEqual(sorted(self.where(problems)),
                         [("dns", "bogus"), ("dns", "mx"), ("dns", "rrl_slip"), ("dns", "ttl")])


class HostsTests(_DNSConfigTestCase):
    """
    [hosts]: the A/AAAA addresses of names inside the served zones
    (PROTOCOLS.md 9.1: every SRV target needs A/AAAA).
    """

    def test_addresses_normalised(self) -> None:
        """
        Names are IDNA-normalised and lower-cased without the trailing dot;
        IPv4 and IPv6 addresses are kept in order in canonical form, and an
        address given twice (in any spelling) is kept once.
        """
        dns = self.settings(dns_ini(hosts=(
            "Mail.EXAMPLE.test. = 192.0.2.10 , 2001:DB8:0:0::10, 192.0.2.10,"
            " 2001:db8::10, ::ffff:192.0.2.11\n"
            "bücher.example.test = 192.0.2.12\n"
            "v6.example.test = 2001:db8::1\n")))
        self.assertEqual(dict(dns.hosts), {
            "mail.example.test": ("192.0.2.10", "2001:db8::10", "::ffff:c000:20b"),
            "xn--bcher-kva.example.test": ("192.0.2.12",),
            "v6.example.test": ("2001:db8::1",),
        })

    def test_bad_names(self) -> None:
        """
        An entry whose name is not a host name is reported under its own key.
        """
        for name in ("bad..name.example.test", "-bad.example.test", "under_score.example.test"):
            self.assert_only_problem(dns_ini(hosts=PUBLIC_HOSTS + f"{name} = 192.0.2.1\n"),
                                     "hosts", name, "not a host name")

    def test_bad_addresses(self) -> None:
        """
        Every address of an entry must be an IP address: no host names,
        networks or out-of-range octets.
        """
        for value in ("192.0.2.300", "192.0.2.1, mail.example.test", "192.0.2.0/24",
                      "2001:db8::g", "192.0.2.1 192.0.2.2"):
            self.assert_only_problem(dns_ini(hosts=PUBLIC_HOSTS + f"x.example.test = {value}\n"),
                                     "hosts", "x.example.test", "not an IP address")

    def test_empty_entry(self) -> None:
        """
        An entry without any address is an error, not an empty RRset.
        """
        for value in ("", " , ,"):
            self.assert_only_problem(dns_ini(hosts=PUBLIC_HOSTS + f"x.example.test = {value}\n"),
                                     "hosts", "x.example.test", "no address")

    def test_duplicates_after_normalisation(self) -> None:
        """
        Two entries that name the same host once normalised (case, trailing
        dot, Unicode and punycode) are an error at the second one.
        """
        for first, second in [("mail.example.test", "MAIL.Example.Test."),
                              ("bücher.example.test", "xn--bcher-kva.example.test")]:
            hosts = f"{first} = 192.0.2.10\n{second} = 192.0.2.11\n"
            if first != "mail.example.test":
                hosts = PUBLIC_HOSTS + hosts
            self.assert_only_problem(dns_ini(hosts=hosts), "hosts", second, "given twice")


class InZoneAddressTests(_DNSConfigTestCase):
    """
    Every name the zones point at inside a served zone needs a [hosts]
    address (PROTOCOLS.md 9.1, 9.7: "every target needs A/AAAA"), and each
    missing one is reported where the name was written (SECURITY.md 7).
    """

    def assert_missing(self, ini: str, section: str, key: str, host: str) -> None:
        self.assert_only_problem(ini, section, key, host, "inside a served zone", "[hosts]")

    def test_service_hosts(self) -> None:
        """
        A socket service (IMAP, POP3, SMTP, XMPP, SIP) on a host inside the
        zone, the apex included, needs an address; with one, the file loads.
        """
        for section, host in [("imap", "imap.example.test"), ("pop3", "pop.example.test"),
                              ("smtp", "smtp.example.test"), ("xmpp", "example.test"),
                              ("sip", "sip.deep.sub.example.test")]:
            if f"[{section}]\n" in LISTENING_INI:
                base = edit(f"[{section}]\nhost = mail.example.test",
                            f"[{section}]\nhost = {host}", LISTENING_INI)
            else:
                base = LISTENING_INI + f"\n[{section}]\nhost = {host}\n"
            self.assert_missing(dns_ini(base=base), section, "host", host)
            dns = self.settings(dns_ini(hosts=PUBLIC_HOSTS + f"{host} = 192.0.2.99\n",
                                        base=base))
            self.assertEqual(dns.hosts[host], ("192.0.2.99",))

    def test_dav_url_hosts(self) -> None:
        """
        The hosts of the caldav and carddav URLs are the targets of
        _caldavs._tcp and _carddavs._tcp (PROTOCOLS.md 9.3), so they need an
        address when inside the zone.
        """
        for key, url, host in [("caldav", "https://dav.example.test/caldav/", "dav.example.test"),
                               ("carddav", "https://card.example.test:8443/", "card.example.test")]:
            base = edit("[urls]\n", f"[urls]\n{key} = {url}\n", LISTENING_INI)
            self.assert_missing(dns_ini(base=base), "urls", key, host)
            self.settings(dns_ini(hosts=PUBLIC_HOSTS + f"{host} = 192.0.2.98\n", base=base))

    def test_nameservers_and_mx(self) -> None:
        """
        In-zone nameservers and MX hosts need an address, reported under
        [dns] nameservers and [dns] mx; out-of-zone ones do not.
        """
        self.assert_missing(dns_ini("nameservers = ns1.example.test, ns.example.net\n"),
                            "dns", "nameservers", "ns1.example.test")
        self.assert_missing(dns_ini("mx = 10 mx1.example.test, 20 mx.example.net\n"),
                            "dns", "mx", "mx1.example.test")
        dns = self.settings(dns_ini(
            "nameservers = ns1.example.test, ns.example.net\n"
            "mx = 10 mx1.example.test, 20 mx.example.net\n",
            PUBLIC_HOSTS + "ns1.example.test = 192.0.2.53\nmx1.example.test = 2001:db8::25\n"))
        self.assertEqual(dns.nameservers, ("ns1.example.test", "ns.example.net"))
        self.assertEqual(dns.mx, ((10, "mx1.example.test"), (20, "mx.example.net")))

    def test_public_hostname(self) -> None:
        """
        The public host is the target of _autodiscover._tcp (PROTOCOLS.md
        9.6), so it needs an address even when no service and no nameserver
        points at it.
        """
        base = OUT_OF_ZONE_CORE.replace("public_hostname = mail.provider.net",
                                        "public_hostname = www.example.test")
        hosts = "autodiscover.example.test = 192.0.2.80\nautoconfig.example.test = 192.0.2.81\n"
        self.assert_missing(dns_ini("nameservers = ns.provider.net\n", hosts, base=base),
                            "server", "public_hostname", "www.example.test")
        self.settings(dns_ini("nameservers = ns.provider.net\n",
                              hosts + "www.example.test = 192.0.2.82\n", base=base))

    def test_public_hostname_blamed_when_nameservers_defaulted(self) -> None:
        """
        Without [hosts], the missing address of the public host is reported
        under [server] public_hostname, a key the file has, not under
        [dns] nameservers, which the file does not set (the nameserver only
        defaults to the public host); SECURITY.md 7: "log file/section/key".
        """
        problems = self.problems(dns_ini(hosts=None))
        public = [p for p in problems if "mail.example.test is inside" in p.message]
        self.assertEqual(len(public), 1, [str(p) for p in problems])
        self.assertEqual((public[0].section, public[0].key), ("server", "public_hostname"))

    def test_domain_override_blamed_in_its_section(self) -> None:
        """
        A target set by a [domain:NAME] override is reported under that
        section and its SECTION.KEY, where it was written, as every other
        override problem is.
        """
        base = LISTENING_INI.replace("domains = example.test",
                                     "domains = example.test, example.org")
        base += "\n[domain:example.org]\nimap.host = imap.example.org\n"
        self.assert_missing(dns_ini(base=base), "domain:example.org", "imap.host",
                            "imap.example.org")
        self.settings(dns_ini(hosts=PUBLIC_HOSTS + "imap.example.org = 192.0.2.70\n",
                              base=base))

    def test_aliases_default_to_public_host(self) -> None:
        """
        autodiscover.<domain> and autoconfig.<domain> take the public host's
        addresses (PROTOCOLS.md 9.7); with the public host outside the zone
        and not in [hosts], each alias is reported under [hosts] with a
        message naming the alias and the public host.
        """
        base = OUT_OF_ZONE_CORE
        problems = self.problems(dns_ini("nameservers = ns.provider.net\n", None, base=base))
        self.assertEqual(self.where(problems), [("hosts", None), ("hosts", None)])
        for problem, alias in zip(problems, ("autodiscover.example.test",
                                             "autoconfig.example.test")):
            self.assertIn(f"no address for {alias}", problem.message)
            self.assertIn("mail.provider.net", problem.message)
        # Only one alias given: the other is still missing.
        self.assert_only_problem(
            dns_ini("nameservers = ns.provider.net\n",
                    "autodiscover.example.test = 192.0.2.80\n", base=base),
            "hosts", None, "autoconfig.example.test")
        # Both aliases given, or the (out-of-zone) public host: it loads.
        dns = self.settings(dns_ini("nameservers = ns.provider.net\n",
                                    "autodiscover.example.test = 192.0.2.80\n"
                                    "autoconfig.example.test = 2001:db8::81\n", base=base))
        self.assertNotIn("mail.provider.net", dns.hosts)
        dns = self.settings(dns_ini("nameservers = ns.provider.net\n",
                                    "mail.provider.net = 192.0.2.90\n", base=base))
        self.assertEqual(dict(dns.hosts), {"mail.provider.net": ("192.0.2.90",)})

    def test_aliases_of_every_domain(self) -> None:
        """
        Each served domain has its own autodiscover and autoconfig names; the
        public host's entry covers them all.
        """
        base = OUT_OF_ZONE_CORE.replace("domains = example.test",
                                        "domains = example.test, example.org")
        problems = self.problems(dns_ini("nameservers = ns.provider.net\n",
                                         "autodiscover.example.test = 192.0.2.80\n"
                                         "autoconfig.example.test = 192.0.2.80\n",
                                         base=base))
        self.assertEqual(len(problems), 2, [str(p) for p in problems])
        self.assertIn("autodiscover.example.org", problems[0].message)
        self.assertIn("autoconfig.example.org", problems[1].message)
        self.settings(dns_ini("nameservers = ns.provider.net\n",
                              "mail.provider.net = 192.0.2.90\n", base=base))

    def test_out_of_zone_targets_need_no_address(self) -> None:
        """
        Targets outside every served zone (another domain, a name that only
        ends in the same letters, an IP address) need no [hosts] entry: the
        responder is not authoritative for them (SECURITY.md 6.2).
        """
        base = (OUT_OF_ZONE_CORE
                + "[imap]\nhost = imap.provider.net\n"
                + "[smtp]\nhost = mail.notexample.test\n"
                + "[pop3]\nhost = 192.0.2.7\n"
                + "[xmpp]\nhost = chat.provider.net\nserver_port = 5269\n"
                + "[sip]\nhost = sip.provider.net\n"
                + "[urls]\ncaldav = https://dav.provider.net/dav/\n"
                + "carddav = https://[2001:db8::7]/card/\n")
        dns = self.settings(dns_ini("nameservers = ns.provider.net, ns2.provider.net\n"
                                    "mx = 10 mx.provider.net\n",
                                    "mail.provider.net = 192.0.2.90\n", base=base))
        self.assertEqual(list(dns.hosts), ["mail.provider.net"])

    def test_in_zone(self) -> None:
        """
        L{in_zone} matches whole labels and prefers the longest served zone.
        """
        domains = ("example.test", "sub.example.test")
        self.assertEqual(in_zone("example.test", domains), "example.test")
        self.assertEqual(in_zone("a.example.test", domains), "example.test")
        self.assertEqual(in_zone("a.sub.example.test", domains), "sub.example.test")
        self.assertEqual(in_zone("sub.example.test", domains), "sub.example.test")
        self.assertIsNone(in_zone("notexample.test", domains))
        self.assertIsNone(in_zone("example.test.net", domains))
        self.assertIsNone(in_zone("test", domains))


class ServerDNSTests(_DNSConfigTestCase):
    """
    [server] dns: where the responder listens; without it there is no
    responder and no [dns]/[hosts] is needed.
    """

    def test_listen_addresses(self) -> None:
        """
        IPv4 C{ADDRESS:PORT} and bracketed IPv6 C{[ADDRESS]:PORT} are parsed
        into the listening address, IPv6 in canonical form.
        """
        for value, expected in [("127.0.0.1:5353", UDPAddress("127.0.0.1", 5353)),
                                ("[2001:DB8::53]:53", UDPAddress("2001:db8::53", 53)),
                                ("[::1]:65535", UDPAddress("::1", 65535)),
                                ("0.0.0.0:1", UDPAddress("0.0.0.0", 1))]:
            ini = edit("dns = 127.0.0.1:5353", f"dns = {value}", dns_ini())
            self.assertEqual(self.settings(ini).listen, expected)

    def test_bad_listen_addresses(self) -> None:
        """
        A listening address needs an IP address and a port from 1 to 65535.
        """
        for value in ("127.0.0.1", "localhost:53", "127.0.0.1:0", "127.0.0.1:65536",
                      "[::1]", "[::1]:x", ":53"):
            ini = edit("dns = 127.0.0.1:5353", f"dns = {value}", dns_ini())
            self.assert_only_problem(ini, "server", "dns")

    def test_no_listener(self) -> None:
        """
        Without [server] dns the model has no DNS settings and neither
        [dns] nor [hosts] is required, even with in-zone service hosts.
        """
        ini = edit("[imap]\nhost = mail.example.test", "[imap]\nhost = imap.example.test")
        model = load(self.path(ini))
        self.assertIsNone(model.dns)
        model = load(self.path(ini + "\n[dns]\nttl = 60\n\n[hosts]\n" + PUBLIC_HOSTS))
        self.assertIsNone(model.dns)

    def test_dns_problems_with_other_problems(self) -> None:
        """
        [dns] and [hosts] problems are reported together with the problems
        of other sections, each where it is.
        """
        ini = edit("security = ssl", "security = maybe", dns_ini("ttl = x\n",
                                                                 PUBLIC_HOSTS + "y = 1\n"))
        self.assertEqual(sorted(self.where(self.problems(ini)), key=str),
                         [("dns", "ttl"), ("hosts", "y"), ("imap", "security")])


class XMPPServerPortTests(_DNSConfigTestCase):
    """
    [xmpp] server_port: the federation port published as _xmpp-server._tcp
    (PROTOCOLS.md 9.4).
    """

    def xmpp(self, extra: str) -> SocketService | None:
        model = load(self.path(MINIMAL_INI + "\n[xmpp]\nhost = mail.example.test\n" + extra))
        return model.catalogue.service("xmpp")

    def test_server_port(self) -> None:
        """
        C{server_port} is kept beside the client port; without it the domain
        does not federate (L{None}).
        """
        self.assertEqual(self.xmpp("security = starttls\nserver_port = 5269\n"),
                         SocketService("xmpp", "mail.example.test", 5222, Security.STARTTLS,
                                       None, 5269))
        self.assertIsNone(self.xmpp("").server_port)
        self.assertEqual(self.xmpp("server_port =\n").server_port, None)

    def test_bad_server_port(self) -> None:
        """
        C{server_port} is a port number.
        """
        for value in ("0", "65536", "xmpp", "-1"):
            self.assert_only_problem(
                MINIMAL_INI + f"\n[xmpp]\nhost = mail.example.test\nserver_port = {value}\n",
                "xmpp", "server_port", "port number")

    def test_only_xmpp_has_server_port(self) -> None:
        """
        Other socket services have no C{server_port}: it is an unknown key.
        """
        for section in ("imap", "smtp"):
            ini = edit(f"[{section}]\n", f"[{section}]\nserver_port = 5269\n")
            self.assert_only_problem(ini, section, "server_port", "unknown key")
        self.assert_only_problem(MINIMAL_INI + "\n[sip]\nserver_port = 5269\n",
                                 "sip", "server_port", "unknown key")

    def test_tcp_limits_at_least_one(self) -> None:
        """
        tcp_idle and tcp_per_source of 0 would refuse every TCP query, the
        fallback clients take after TC=1 (SECURITY.md 6.1): refused.
        """
        for key in ("tcp_idle", "tcp_per_source"):
            self.assert_only_problem(dns_ini(f"{key} = 0\n"), "dns", key, "at least 1")

    def test_unbracketed_ipv6_listen_address(self) -> None:
        """
        An IPv6 listening address must be bracketed: 2001:db8::1:2 would
        otherwise read as host 2001:db8::1, port 2.
        """
        ini = dns_ini().replace("dns = 127.0.0.1:5353", "dns = 2001:db8::1:53")
        self.assert_only_problem(ini, "server", "dns", "brackets")

