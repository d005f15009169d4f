"""
Tests for the service catalogue of L{smartdiscover.config}: [domain:NAME]
overrides, SIP transports, XMPP defaults, the [urls] services, per-account
redirects and the [server] keys that came with them.

Address normalisation, the password file, file-level errors and the main
sections' basic validation are covered by L{tests.unit.test_config}.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import ConfigError, ConfigProblem, load
from smartdiscover.config.address import address_key
from smartdiscover.config.model import (
    URL_SERVICES,
    Catalogue,
    Model,
    Redirect,
    Security,
    SocketService,
    TCPListener,
)
from tests.helpers import CORE_INI, build_ini, edit, write_config

# Three served domains; IMAP and POP3 hosts default to the public host name,
# SMTP has an explicit host, EWS an absolute URL.
MULTI_INI = build_ini({
    "server": {"domains": "example.test, example.org, example.net"},
    "imap": {"host": None},
    "pop3": {"host": None},
    "smtp": {"host": "smtp.example.test"},
    "urls": {"webclient": None},
})

ORG = "domain:example.org"
AUTODISCOVER = "/autodiscover/autodiscover.xml"


def server_line(line: str, ini: str = MULTI_INI) -> str:
    """
    C{ini} with C{line} added to its [server] section.
    """
    return edit("ttl = 1\n", f"ttl = 1\n{line}\n", ini)


def org(*lines: str, ini: str = MULTI_INI) -> str:
    """
    C{ini} with a [domain:example.org] section holding C{lines}.
    """
    return ini + f"\n[{ORG}]\n" + "".join(line + "\n" for line in lines)


class _CatalogueTestCase(SynchronousTestCase):
    """
    Loading configurations and checking the problems the loader reports.
    """

    def load(self, ini: str) -> Model:
        return load(write_config(self.mktemp(), ini))

    def problems_of(self, ini: str) -> tuple[Path, list[ConfigProblem]]:
        """
        Load C{ini}, which must be invalid; return its path and problems.
        """
        path = write_config(self.mktemp(), ini)
        error = self.assertRaises(ConfigError, load, path)
        self.assertEqual(str(error), "\n".join(str(p) for p in error.problems))
        return path, error.problems

    def assert_only_problem(self, ini: str, section: str | None, key: str | None,
                            *fragments: str) -> ConfigProblem:
        """
        Loading C{ini} fails with exactly one problem: at C{section} and
        C{key} of this file, with every fragment in its message.
        """
        path, problems = self.problems_of(ini)
        self.assertEqual(len(problems), 1, [str(p) for p in problems])
        [problem] = problems
        self.assertEqual((problem.file, problem.section, problem.key),
                         (str(path.absolute()), section, key), str(problem))
        for fragment in fragments:
            self.assertIn(fragment, problem.message)
        return problem

    def where(self, problems: list[ConfigProblem]) -> list[tuple[str | None, str | None]]:
        return [(p.section, p.key) for p in problems]


class DomainOverrideTests(_CatalogueTestCase):
    """
    [domain:NAME] sections change the catalogue of that domain only.
    """

    def test_overrides_change_only_that_domain(self) -> None:
        """
        Overrides of server.public_hostname, server.ttl, a service's host,
        port and security and a URL show in that domain's catalogue; the
        main catalogue and the other domains are untouched.
        """
        model = self.load(org("server.public_hostname = MX.Example.ORG",
                              "server.ttl = 4",
                              "imap.host = imap.example.org",
                              "smtp.port = 2525",
                              "pop3.security = ssl",
                              "urls.ews = https://ews.example.org/EWS/Exchange.asmx"))
        main = model.catalogue
        self.assertEqual(main, Catalogue(
            public_hostname="mail.example.test",
            autodiscover_url="https://mail.example.test:8443" + AUTODISCOVER,
            ttl_hours=1,
            services=(
                SocketService("imap", "mail.example.test", 993, Security.SSL),
                SocketService("pop3", "mail.example.test", 110, Security.STARTTLS),
                SocketService("smtp", "smtp.example.test", 587, Security.STARTTLS),
            ),
            urls=main.urls,
        ))
        self.assertEqual(dict(main.urls),
                         {"ews": "https://mail.example.test/EWS/Exchange.asmx"})
        other = model.catalogue_for("example.org")
        self.assertEqual(other.public_hostname, "mx.example.org")
        self.assertEqual(other.ttl_hours, 4)
        self.assertEqual(other.services, (
            SocketService("imap", "imap.example.org", 993, Security.SSL),
            SocketService("pop3", "mx.example.org", 995, Security.SSL),
            SocketService("smtp", "smtp.example.test", 2525, Security.STARTTLS),
        ))
        self.assertEqual(dict(other.urls),
                         {"ews": "https://ews.example.org/EWS/Exchange.asmx"})
        self.assertIs(model.catalogue_for("example.test"), main)
        self.assertIs(model.catalogue_for("example.net"), main)
        self.assertEqual(model.public_hostname, "mail.example.test")
        self.assertEqual(model.ttl_hours, 1)

    def test_default_host_follows_domain_public_hostname(self) -> None:
        """
        A service without a host follows the domain's own public host name;
        a service with an explicit host keeps it.
        """
        model = self.load(org("server.public_hostname = mx.example.org"))
        hosts = {s.name: s.host for s in model.catalogue_for("example.org").services}
        self.assertEqual(hosts, {"imap": "mx.example.org", "pop3": "mx.example.org",
                                 "smtp": "smtp.example.test"})

    def test_bare_path_uses_domain_public_hostname(self) -> None:
        """
        A bare URL path of the main [urls] section resolves against each
        domain's own public host name.
        """
        ini = edit("ews = https://mail.example.test/EWS/Exchange.asmx",
                   "ews = /EWS/Exchange.asmx\nwebclient = /webmail/", MULTI_INI)
        model = self.load(org("server.public_hostname = mx.example.org",
                              "urls.caldav = /dav/", ini=ini))
        self.assertEqual(dict(model.catalogue.urls), {
            "ews": "https://mail.example.test/EWS/Exchange.asmx",
            "webclient": "https://mail.example.test/webmail/",
        })
        self.assertEqual(dict(model.catalogue_for("example.org").urls), {
            "ews": "https://mx.example.org/EWS/Exchange.asmx",
            "webclient": "https://mx.example.org/webmail/",
            "caldav": "https://mx.example.org/dav/",
        })

    def test_service_only_in_override(self) -> None:
        """
        A socket service or URL that only a [domain:] section sets is
        offered to that domain and to no other.
        """
        model = self.load(org("xmpp.host = chat.example.org",
                              "sip.transport = tcp",
                              "urls.carddav = https://dav.example.org/card/"))
        other = model.catalogue_for("example.org")
        self.assertEqual(other.service("xmpp"),
                         SocketService("xmpp", "chat.example.org", 5223, Security.SSL))
        self.assertEqual(other.service("sip"),
                         SocketService("sip", "mail.example.test", 5060, Security.NONE, "tcp"))
        self.assertEqual(other.urls["carddav"], "https://dav.example.org/card/")
        for domain in ("example.test", "example.net"):
            catalogue = model.catalogue_for(domain)
            self.assertIsNone(catalogue.service("xmpp"))
            self.assertIsNone(catalogue.service("sip"))
            self.assertNotIn("carddav", catalogue.urls)

    def test_security_override_changes_default_port(self) -> None:
        """
        Overriding a service's security gives the standard port of the new
        security when no port is written anywhere.
        """
        model = self.load(org("imap.security = starttls", "pop3.security = none"))
        ports = {s.name: (s.port, s.security)
                 for s in model.catalogue_for("example.org").services}
        self.assertEqual(ports["imap"], (143, Security.STARTTLS))
        self.assertEqual(ports["pop3"], (110, Security.NONE))
        self.assertEqual(model.catalogue.service("imap").port, 993)

    def test_autodiscover_url(self) -> None:
        """
        Each catalogue's Autodiscover URL is on its own public host and the
        HTTPS port, which is omitted when it is 443.
        """
        ini = org("server.public_hostname = mx.example.org")
        model = self.load(ini)
        self.assertEqual(model.catalogue.autodiscover_url,
                         "https://mail.example.test:8443" + AUTODISCOVER)
        self.assertEqual(model.catalogue_for("example.org").autodiscover_url,
                         "https://mx.example.org:8443" + AUTODISCOVER)
        model = self.load(edit("ssl:8443:", "ssl:443:", ini))
        self.assertEqual(model.catalogue.autodiscover_url,
                         "https://mail.example.test" + AUTODISCOVER)
        self.assertEqual(model.catalogue_for("example.org").autodiscover_url,
                         "https://mx.example.org" + AUTODISCOVER)

    def test_ipv6_public_hostname(self) -> None:
        """
        An IPv6 address as a domain's public host name is either refused
        at that key, or every URL built on it is well formed (the address
        in brackets), never a URL whose host reads as a port.
        """
        ini = edit("ews = https://mail.example.test/EWS/Exchange.asmx",
                   "ews = /EWS/Exchange.asmx", MULTI_INI)
        ini = org("server.public_hostname = 2001:DB8::1", ini=ini)
        try:
            model = self.load(ini)
        except ConfigError as e:
            self.assertEqual(self.where(e.problems), [(ORG, "server.public_hostname")],
                             str(e))
            return
        catalogue = model.catalogue_for("example.org")
        for url in (catalogue.autodiscover_url, catalogue.urls["ews"]):
            parts = urlsplit(url)
            self.assertEqual(parts.hostname, "2001:db8::1", url)
        self.assertEqual(urlsplit(catalogue.autodiscover_url).port, 8443)

    def test_domain_name_normalised(self) -> None:
        """
        The NAME of [domain:NAME] is IDNA-normalised, case-folded and may
        carry a trailing dot; the catalogue is found by the normalised name.
        """
        ini = edit("example.org", "Bücher.Example", MULTI_INI)
        model = self.load(ini + "[domain:XN--BCHER-KVA.example.]\nserver.ttl = 7\n")
        self.assertEqual(model.catalogue_for("xn--bcher-kva.example").ttl_hours, 7)
        self.assertEqual(model.catalogue.ttl_hours, 1)

    def test_no_override_sections(self) -> None:
        """
        Without [domain:] sections every domain gets the main catalogue.
        """
        model = self.load(MULTI_INI)
        self.assertEqual(dict(model.domain_catalogues), {})
        for domain in model.domains:
            self.assertIs(model.catalogue_for(domain), model.catalogue)


class DomainOverrideErrorTests(_CatalogueTestCase):
    """
    Problems in [domain:NAME] sections name that section and the key as
    written there.
    """

    def test_domain_not_served(self) -> None:
        """
        A [domain:] section for a domain not in [server] domains is refused.
        """
        self.assert_only_problem(MULTI_INI + "[domain:example.com]\nserver.ttl = 2\n",
                                 "domain:example.com", None,
                                 "example.com", "not in [server] domains")

    def test_bad_domain_name(self) -> None:
        """
        A NAME that is not a domain, or is empty, is refused.
        """
        for name in ("bad_host", "", "a..b"):
            self.assert_only_problem(MULTI_INI + f"[domain:{name}]\nserver.ttl = 2\n",
                                     f"domain:{name}", None, "not a domain")

    def test_duplicate_sections(self) -> None:
        """
        Two sections naming the same domain in different spellings are
        refused at the second.
        """
        for first, second in [("example.org", "Example.ORG"),
                              ("example.org", "example.org."),
                              ("bücher.example", "xn--bcher-kva.example")]:
            ini = edit("example.net", "bücher.example", MULTI_INI)
            ini += f"[domain:{first}]\nserver.ttl = 2\n[domain:{second}]\nserver.ttl = 3\n"
            self.assert_only_problem(ini, f"domain:{second}", None, "another [domain:]")

    def test_key_without_section(self) -> None:
        """
        Keys must be written SECTION.KEY.
        """
        for key in ("public_hostname", "port", ".port"):
            self.assert_only_problem(org(f"{key} = 1"), ORG, key, "SECTION.KEY")

    def test_unknown_section(self) -> None:
        """
        Only [server] and the catalogue sections may be overridden.
        """
        for key in ("auth.backend", "imaps.port", "redirectAddr.a@example.org",
                    "IMAP.port", "Server.ttl", "server"):
            self.assert_only_problem(org(f"{key} = 1"), ORG, key, "SECTION.KEY")

    def test_unknown_key(self) -> None:
        """
        Keys a section does not know, and [server] keys that are not
        per-domain, are refused with the known keys of that section.
        """
        for key, known in [("server.domains", "public_hostname, ttl"),
                           ("server.https", "public_hostname, ttl"),
                           ("server.http", "public_hostname, ttl"),
                           ("server.pox_extensions", "public_hostname, ttl"),
                           ("server.redirect_domains", "public_hostname, ttl"),
                           ("imap.hostname", "host, port, security"),
                           ("imap.transport", "host, port, security"),
                           ("urls.owa", "activesync"),
                           ("sip.tls", "transport")]:
            self.assert_only_problem(org(f"{key} = x"), ORG, key, "unknown key", known)

    def test_bad_values(self) -> None:
        """
        A bad override value is reported once, at the [domain:] section and
        the dotted key, with the converter's message.
        """
        for line, fragment in [
            ("imap.port = 0", "'0' is not a port number"),
            ("smtp.port = abc", "'abc' is not a port number"),
            ("pop3.security = tls", "ssl, starttls, none"),
            ("server.ttl = -1", "negative"),
            ("server.ttl = soon", "whole number"),
            ("server.public_hostname = bad_host", "'bad_host'"),
            ("xmpp.host = -bad.example", "'-bad.example'"),
            ("urls.ews = http://ews.example.org/EWS/Exchange.asmx", "https"),
            ("urls.webclient = https:///webmail/", "no host"),
            ("urls.activesync = /eas", "fixed"),
            ("sip.transport = sctp", "'sctp'"),
            ("sip.security = starttls", "no STARTTLS"),
        ]:
            key = line.split(" ")[0]
            self.assert_only_problem(org(line), ORG, key, fragment)

    def test_each_domain_reports_its_own_problems(self) -> None:
        """
        The same bad override in two [domain:] sections is reported for
        each of them.
        """
        ini = org("imap.port = 0") + "[domain:example.net]\nimap.port = 0\n"
        _, problems = self.problems_of(ini)
        self.assertEqual(self.where(problems), [(ORG, "imap.port"),
                                                ("domain:example.net", "imap.port")])

    def test_main_problem_reported_once(self) -> None:
        """
        A bad value in a main section is reported once, not once for the
        main catalogue and again for every domain with overrides.
        """
        ini = edit("port = 587", "port = 99999", MULTI_INI)
        ini = edit("ews = https://mail.example.test/EWS/Exchange.asmx",
                   "ews = http://mail.example.test/EWS/Exchange.asmx", ini)
        ini += "[sip]\nsecurity = starttls\n"
        ini = org("server.ttl = 2", ini=ini) + "[domain:example.net]\nserver.ttl = 3\n"
        _, problems = self.problems_of(ini)
        self.assertEqual(self.where(problems), [("smtp", "port"), ("sip", "security"),
                                                ("urls", "ews")])

    def test_bad_domains_no_follow_up_problems(self) -> None:
        """
        When [server] domains is invalid, a [domain:] section for a domain
        that is listed there is not also called unserved: the one problem
        is the domain list.
        """
        ini = edit("domains = example.test, example.org, example.net",
                   "domains = example.test, example.org, bad_host", MULTI_INI)
        self.assert_only_problem(org("server.ttl = 2", ini=ini),
                                 "server", "domains", "'bad_host'")

    def test_sip_contradiction_blamed_on_override(self) -> None:
        """
        When a domain's override contradicts a valid main [sip] section,
        the problem names the [domain:] section, not the main section.
        """
        ini = MULTI_INI + "[sip]\ntransport = tls\n"
        self.assert_only_problem(org("sip.security = none", ini=ini),
                                 ORG, "sip.security", "tls", "none")

    def test_empty_override_not_blamed_on_main_section(self) -> None:
        """
        An empty override value is either refused at the [domain:] section
        or ignored (the main value kept); it is never reported as a problem
        of the main section, which is valid.
        """
        ini = org("server.public_hostname =")
        try:
            model = self.load(ini)
        except ConfigError as e:
            self.assertEqual({p.section for p in e.problems}, {ORG}, str(e))
            return
        self.assertEqual(model.catalogue_for("example.org").public_hostname,
                         "mail.example.test")


class SIPTests(_CatalogueTestCase):
    """
    SIP: TLS is a transport; security and transport imply each other.
    """

    def sip(self, *lines: str) -> SocketService:
        model = self.load(CORE_INI + "[sip]\n" + "".join(line + "\n" for line in lines))
        [service] = model.catalogue.services
        return service

    def test_implied_settings(self) -> None:
        """
        Transport tls goes with security ssl and port 5061; udp and tcp go
        with none and 5060; security none alone means udp; an empty [sip]
        section means TLS.
        """
        for lines, transport, security, port in [
            ((), "tls", Security.SSL, 5061),
            (("transport = tls",), "tls", Security.SSL, 5061),
            (("transport = tcp",), "tcp", Security.NONE, 5060),
            (("transport = udp",), "udp", Security.NONE, 5060),
            (("security = ssl",), "tls", Security.SSL, 5061),
            (("security = none",), "udp", Security.NONE, 5060),
            (("security = ssl", "transport = tls"), "tls", Security.SSL, 5061),
            (("security = none", "transport = tcp"), "tcp", Security.NONE, 5060),
            (("security = NONE", "transport = udp"), "udp", Security.NONE, 5060),
        ]:
            self.assertEqual(self.sip(*lines),
                             SocketService("sip", "mail.example.test", port, security,
                                           transport), lines)

    def test_explicit_port_and_host(self) -> None:
        """
        An explicit port and host are used whatever the transport.
        """
        self.assertEqual(self.sip("host = sip.example.test", "transport = tls",
                                  "port = 5062"),
                         SocketService("sip", "sip.example.test", 5062, Security.SSL, "tls"))

    def test_starttls_refused(self) -> None:
        """
        security = starttls is refused with a message that SIP has no
        STARTTLS, and it is the only problem reported, with or without a
        transport.
        """
        for extra in ("", "transport = tls\n", "transport = tcp\n", "transport = udp\n"):
            self.assert_only_problem(CORE_INI + "[sip]\nsecurity = starttls\n" + extra,
                                     "sip", "security", "SIP has no STARTTLS")

    def test_contradiction_refused(self) -> None:
        """
        A transport that does not match the security is refused, naming both.
        """
        for security, transport in [("ssl", "udp"), ("ssl", "tcp"), ("none", "tls")]:
            self.assert_only_problem(
                CORE_INI + f"[sip]\nsecurity = {security}\ntransport = {transport}\n",
                "sip", "transport", f"transport {transport}", f"security {security}")

    def test_unknown_transport(self) -> None:
        """
        A transport other than udp, tcp and tls is refused, listing those.
        """
        for transport in ("sctp", "ws", "tls1.3"):
            self.assert_only_problem(CORE_INI + f"[sip]\ntransport = {transport}\n",
                                     "sip", "transport", repr(transport), "udp, tcp, tls")

    def test_transport_unknown_elsewhere(self) -> None:
        """
        C{transport} is a key of [sip] only.
        """
        for name in ("imap", "pop3", "smtp", "xmpp"):
            self.assert_only_problem(CORE_INI + f"[{name}]\ntransport = tcp\n",
                                     name, "transport", "unknown key")

    def test_other_services_have_no_transport(self) -> None:
        """
        Services other than SIP carry no transport.
        """
        model = self.load(MULTI_INI + "[xmpp]\n")
        self.assertEqual({s.transport for s in model.catalogue.services}, {None})


class XMPPTests(_CatalogueTestCase):
    """
    XMPP's standard ports.
    """

    def test_default_ports(self) -> None:
        """
        XMPP defaults to implicit TLS on 5223; starttls and none use 5222;
        an explicit port wins.
        """
        for lines, port, security in [((), 5223, Security.SSL),
                                      (("security = ssl",), 5223, Security.SSL),
                                      (("security = starttls",), 5222, Security.STARTTLS),
                                      (("security = none",), 5222, Security.NONE),
                                      (("security = ssl", "port = 443"), 443, Security.SSL)]:
            model = self.load(CORE_INI + "[xmpp]\n" + "".join(f"{x}\n" for x in lines))
            self.assertEqual(model.catalogue.services, (
                SocketService("xmpp", "mail.example.test", port, security),), lines)


class URLTests(_CatalogueTestCase):
    """
    The HTTP services of [urls].
    """

    def test_every_service_accepted(self) -> None:
        """
        Every URL service is accepted as an absolute https URL and as a bare
        path on the public host name.
        """
        paths = {name: f"/{name}/" for name in URL_SERVICES}
        paths["activesync"] = "/Microsoft-Server-ActiveSync"
        expected = {name: f"https://mail.example.test{path}" for name, path in paths.items()}
        absolute = "".join(f"{name} = {expected[name]}\n" for name in URL_SERVICES)
        bare = "".join(f"{name} = {paths[name]}\n" for name in URL_SERVICES)
        for body in (absolute, bare):
            model = self.load(CORE_INI + "[urls]\n" + body)
            self.assertEqual(dict(model.catalogue.urls), expected)

    def test_activesync_path(self) -> None:
        """
        ActiveSync's path is /Microsoft-Server-ActiveSync in any letter
        case, with or without a trailing slash.
        """
        for value in ("https://eas.example.test/Microsoft-Server-ActiveSync",
                      "https://eas.example.test/microsoft-server-activesync/",
                      "https://eas.example.test:8443/MICROSOFT-SERVER-ACTIVESYNC"):
            model = self.load(CORE_INI + f"[urls]\nactivesync = {value}\n")
            self.assertEqual(model.catalogue.urls["activesync"], value)

    def test_activesync_other_path_refused(self) -> None:
        """
        Any other ActiveSync path is refused, saying that the path is fixed
        and what it must be.
        """
        for value in ("https://eas.example.test/", "/eas",
                      "https://eas.example.test/Microsoft-Server-ActiveSync/x",
                      "https://eas.example.test/Microsoft-Server-ActiveSyncX"):
            self.assert_only_problem(CORE_INI + f"[urls]\nactivesync = {value}\n",
                                     "urls", "activesync", "fixed",
                                     "/Microsoft-Server-ActiveSync")

    def test_http_refused_for_every_service(self) -> None:
        """
        No URL service accepts a plain http:// URL.
        """
        for name in URL_SERVICES:
            path = "/Microsoft-Server-ActiveSync" if name == "activesync" else "/x"
            self.assert_only_problem(
                CORE_INI + f"[urls]\n{name} = http://mail.example.test{path}\n",
                "urls", name, "https://")


class RedirectTests(_CatalogueTestCase):
    """
    Valid [redirectAddr] and [redirectUrl] sections.
    """

    INI = server_line("redirect_domains = partner.example, Other.Example")

    def test_accepted(self) -> None:
        """
        redirectAddr to an address of a served or allowed domain, and
        redirectUrl to an https Autodiscover URL on a host within a served
        or allowed domain that is not this server, are loaded.
        """
        model = self.load(self.INI + """\
[redirectAddr]
a@example.test = b@example.org
c@example.org = Joe@PARTNER.example

[redirectUrl]
d@example.test = https://Autodiscover.Partner.Example/Autodiscover/Autodiscover.xml
e@example.net = https://ad.other.example:8443/x/autodiscover/autodiscover.xml
f@example.test = https://exchange.example.org/autodiscover/autodiscover.xml
g@example.test = https://partner.example/autodiscover/autodiscover.xml
""")
        self.assertEqual(dict(model.redirects), {
            "a@example.test": Redirect("redirectAddr", "b@example.org"),
            "c@example.org": Redirect("redirectAddr", "Joe@partner.example"),
            "d@example.test": Redirect(
                "redirectUrl",
                "https://autodiscover.partner.example/Autodiscover/Autodiscover.xml"),
            "e@example.net": Redirect(
                "redirectUrl", "https://ad.other.example:8443/x/autodiscover/autodiscover.xml"),
            "f@example.test": Redirect(
                "redirectUrl", "https://exchange.example.org/autodiscover/autodiscover.xml"),
            "g@example.test": Redirect(
                "redirectUrl", "https://partner.example/autodiscover/autodiscover.xml"),
        })
        self.assertEqual(model.redirect_for("a@example.test"),
                         Redirect("redirectAddr", "b@example.org"))
        self.assertIsNone(model.redirect_for("b@example.org"))

    def test_source_case_insensitive(self) -> None:
        """
        By default the source address matches in any letter case and domain
        form: the redirect is found by the normalised address key.
        """
        ini = edit("example.org", "bücher.example", self.INI)
        model = self.load(ini + "[redirectAddr]\nJane@Example.TEST = joe@example.test\n"
                          "Hans@BÜCHER.example = hans@partner.example\n")
        for typed in ("jane@example.test", "JANE@example.test", "Jane@EXAMPLE.TEST."):
            self.assertEqual(model.redirect_for(address_key(typed)),
                             Redirect("redirectAddr", "joe@example.test"))
        self.assertEqual(model.redirect_for(address_key("hans@xn--bcher-kva.example")),
                         Redirect("redirectAddr", "hans@partner.example"))

    def test_source_case_sensitive(self) -> None:
        """
        With case-sensitive local parts the source matches only as written,
        and addresses differing in case are different sources.
        """
        ini = edit("passwd_file = users.passwd",
                   "passwd_file = users.passwd\ncase_sensitive_local = yes", self.INI)
        model = self.load(ini + "[redirectAddr]\nJane@example.test = joe@example.test\n"
                          "jane@example.test = joe2@example.test\n")
        self.assertEqual(model.redirect_for(address_key("Jane@Example.test", True)),
                         Redirect("redirectAddr", "joe@example.test"))
        self.assertEqual(model.redirect_for(address_key("jane@example.test", True)),
                         Redirect("redirectAddr", "joe2@example.test"))
        self.assertIsNone(model.redirect_for(address_key("JANE@example.test", True)))

    def test_no_redirects(self) -> None:
        """
        Without redirect sections nobody is redirected.
        """
        model = self.load(MULTI_INI)
        self.assertEqual(dict(model.redirects), {})
        self.assertIsNone(model.redirect_for("demo@example.test"))


class RedirectErrorTests(_CatalogueTestCase):
    """
    Refused redirects name their section and the source address as key.
    """

    INI = server_line("redirect_domains = partner.example")

    def assert_refused(self, section: str, source: str, target: str,
                       *fragments: str, ini: str | None = None) -> None:
        """
        A config whose only redirect is C{source = target} in C{section}
        fails with one problem at that section and source.
        """
        ini = self.INI if ini is None else ini
        self.assert_only_problem(ini + f"[{section}]\n{source} = {target}\n",
                                 section, source, *fragments)

    def test_source_not_an_address(self) -> None:
        """
        A source that is not an e-mail address is refused in both sections.
        """
        for source in ("jane", "@example.test", "jane@bad_host"):
            self.assert_refused("redirectAddr", source, "joe@example.test", "not an address")
            self.assert_refused("redirectUrl", source,
                                "https://ad.partner.example" + AUTODISCOVER, "not an address")

    def test_source_in_unserved_domain(self) -> None:
        """
        Only addresses of served domains can be redirected, even those of
        an allowed domain.
        """
        for source in ("jane@example.com", "jane@partner.example"):
            self.assert_refused("redirectAddr", source, "joe@example.test",
                                "not a served domain")
            self.assert_refused("redirectUrl", source,
                                "https://ad.partner.example" + AUTODISCOVER,
                                "not a served domain")

    def test_source_in_both_sections(self) -> None:
        """
        An address in both sections, in any letter case, is refused at its
        [redirectUrl] entry.
        """
        for second in ("jane@example.test", "JANE@Example.Test"):
            ini = self.INI + ("[redirectAddr]\njane@example.test = joe@example.test\n"
                              f"[redirectUrl]\n{second} = https://ad.partner.example"
                              + AUTODISCOVER + "\n")
            self.assert_only_problem(ini, "redirectUrl", second, "already redirected",
                                     "[redirectAddr]")

    def test_source_twice_in_redirect_url(self) -> None:
        """
        An address given twice in [redirectUrl] (in different letter case)
        is refused, and the message names the section it is really in.
        """
        url = "https://ad.partner.example" + AUTODISCOVER
        ini = self.INI + f"[redirectUrl]\njane@example.test = {url}\nJane@example.test = {url}\n"
        problem = self.assert_only_problem(ini, "redirectUrl", "Jane@example.test",
                                           "already redirected", "[redirectUrl]")
        self.assertNotIn("redirectAddr", problem.message)

    def test_address_target_outside_scope(self) -> None:
        """
        A redirectAddr target must be in a served or allowed domain (not a
        subdomain of one); it must be an address.
        """
        for target in ("joe@example.com", "joe@sub.example.test", "joe@evil.example"):
            self.assert_refused("redirectAddr", "jane@example.test", target,
                                "neither served nor in [server] redirect_domains")
        for target in ("joe", "joe@", "joe@bad_host"):
            self.assert_refused("redirectAddr", "jane@example.test", target,
                                "not an address")

    def test_loop_to_itself(self) -> None:
        """
        An address redirected to itself, in any letter case, is a loop.
        """
        for target in ("jane@example.test", "JANE@EXAMPLE.test"):
            self.assert_refused("redirectAddr", "jane@example.test", target, "loop")

    def test_chain_refused(self) -> None:
        """
        A redirectAddr target that is itself redirected (by either section)
        is a chain, reported at the first address only.
        """
        for rest in ("b@example.test = c@example.test\n",
                     "[redirectUrl]\nb@example.test = https://ad.partner.example"
                     + AUTODISCOVER + "\n"):
            ini = self.INI + "[redirectAddr]\na@example.test = B@example.test\n" + rest
            self.assert_only_problem(ini, "redirectAddr", "a@example.test", "chain")

    def test_two_redirects_pointing_at_each_other(self) -> None:
        """
        Two addresses redirected to each other are both refused.
        """
        _, problems = self.problems_of(self.INI + "[redirectAddr]\n"
                                       "a@example.test = b@example.test\n"
                                       "b@example.test = a@example.test\n")
        self.assertEqual(self.where(problems), [("redirectAddr", "a@example.test"),
                                                ("redirectAddr", "b@example.test")])

    def test_url_not_https(self) -> None:
        """
        A redirectUrl must be https.
        """
        for url in ("http://ad.partner.example" + AUTODISCOVER,
                    "ftp://ad.partner.example" + AUTODISCOVER,
                    "//ad.partner.example" + AUTODISCOVER,
                    AUTODISCOVER):
            self.assert_refused("redirectUrl", "jane@example.test", url, "https://")

    def test_url_foreign_host(self) -> None:
        """
        A redirectUrl host must lie within a served or allowed domain;
        look-alike names do not count, nor do IP addresses.
        """
        for host in ("evil.example", "example.test.evil.example", "evilexample.test",
                     "partner.example.evil", "192.0.2.1", "[2001:db8::1]"):
            self.assert_refused("redirectUrl", "jane@example.test",
                                f"https://{host}" + AUTODISCOVER,
                                "neither within a served domain nor in "
                                "[server] redirect_domains")

    def test_url_to_this_server(self) -> None:
        """
        A redirectUrl to any name of this server (the public host, a served
        domain, its autodiscover host, a domain's overridden public host)
        is a loop, whatever the letter case, trailing dot or port.
        """
        ini = org("server.public_hostname = mx.example.org", ini=self.INI)
        for host in ("mail.example.test", "MAIL.example.test.", "mail.example.test:8443",
                     "example.test", "autodiscover.example.test", "example.net",
                     "autodiscover.example.org", "mx.example.org", "Mx.Example.Org:443"):
            self.assert_refused("redirectUrl", "jane@example.test",
                                f"https://{host}" + AUTODISCOVER,
                                "this server", "loop", ini=ini)

    def test_url_other_path(self) -> None:
        """
        A redirectUrl must end in /autodiscover/autodiscover.xml.
        """
        for path in ("/", "/owa", "/autodiscover/autodiscover.json",
                     "/autodiscover/autodiscover.xml/x", "/autodiscover.xml"):
            self.assert_refused("redirectUrl", "jane@example.test",
                                "https://ad.partner.example" + path, AUTODISCOVER)

    def test_url_malformed(self) -> None:
        """
        Malformed https URLs are refused at the source address.
        """
        for url in ("https://", "https://ad.partner.example:99999" + AUTODISCOVER,
                    "https://bad_host.partner.example" + AUTODISCOVER,
                    "https://ad.partner.example:port" + AUTODISCOVER):
            self.assert_refused("redirectUrl", "jane@example.test", url)

    def test_bad_redirect_domains(self) -> None:
        """
        [server] redirect_domains must be a list of domain names.
        """
        self.assert_only_problem(server_line("redirect_domains = partner.example, bad_host"),
                                 "server", "redirect_domains", "'bad_host'")

    def test_every_problem_reported(self) -> None:
        """
        Every refused redirect is reported, in file order, not just the
        first.
        """
        _, problems = self.problems_of(self.INI + """\
[redirectAddr]
a@example.com = b@example.test
c@example.test = d@example.com
[redirectUrl]
e@example.test = http://ad.partner.example/autodiscover/autodiscover.xml
f@example.test = https://ad.partner.example/owa
""")
        self.assertEqual(self.where(problems), [("redirectAddr", "a@example.com"),
                                                ("redirectAddr", "c@example.test"),
                                                ("redirectUrl", "e@example.test"),
                                                ("redirectUrl", "f@example.test")])


class ServerKeyTests(_CatalogueTestCase):
    """
    [server] pox_extensions and http.
    """

    def test_pox_extensions(self) -> None:
        """
        pox_extensions defaults to yes and takes yes/no values.
        """
        self.assertIs(self.load(MULTI_INI).pox_extensions, True)
        for value, expected in [("yes", True), ("no", False), ("No", False),
                                ("off", False), ("true", True), ("0", False)]:
            model = self.load(server_line(f"pox_extensions = {value}"))
            self.assertIs(model.pox_extensions, expected, value)

    def test_bad_pox_extensions(self) -> None:
        """
        A pox_extensions value that is not yes or no is refused.
        """
        for value in ("maybe", "2", "y"):
            self.assert_only_problem(server_line(f"pox_extensions = {value}"),
                                     "server", "pox_extensions", repr(value))

    def test_http_listener(self) -> None:
        """
        http is parsed into a TCPListener with port, interface and backlog;
        without it there is no plain-HTTP listener.
        """
        self.assertIsNone(self.load(MULTI_INI).http)
        for value, expected in [
            ("tcp:80", TCPListener(80, None, None)),
            ("tcp:8080:backlog=7", TCPListener(8080, None, 7)),
            ("tcp:8080:interface=\\:\\::backlog=0", TCPListener(8080, "::", 0)),
            ("tcp:8080:interface=2001\\:DB8\\:\\:1", TCPListener(8080, "2001:db8::1", None)),
        ]:
            self.assertEqual(self.load(server_line(f"http = {value}")).http, expected, value)

    def test_bad_http(self) -> None:
        """
        Bad http ports, backlogs and interfaces are refused at [server] http.
        """
        for value, fragment in [("tcp:8080:backlog=-1", "negative"),
                                ("tcp:8080:backlog=many", "whole number"),
                                ("tcp:8080:interface=::1", ""),
                                ("tcp:8080:interface=mail.example.test", "IP address"),
                                ("tcp:65536", "port number"),
                                ("tcp:8080:backlog=1:backlog=2", "twice")]:
            self.assert_only_problem(server_line(f"http = {value}"),
                                     "server", "http", fragment)
