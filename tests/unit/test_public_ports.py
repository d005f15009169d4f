"""
Issue 16 sections 1 and 7, in memory:

- C{[server] public_https_port} and C{public_http_port}: validation (file,
  section, key; hostile values), defaults, not per domain, applied by a
  reload;
- every answer that names our own URL names the public port: the
  Autodiscover URL of each catalogue, the v2 C{AutodiscoverV1} URL, the
  C{_autodiscover._tcp} SRV record, the plain-HTTP redirect; POX, ActiveSync
  and autoconfig name no listening port;
- C{check-config}'s warning about non-standard public ports;
- the probe: an SRV record's 443 is reached on C{--port};
- the plain-HTTP listener's autoconfig redirect, with hostile Host headers
  and queries.
"""

from __future__ import annotations

import io
import json
import sys

from twisted.names import dns
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover import cli
from smartdiscover.client.urls import Ports
from smartdiscover.config import load
from smartdiscover.config.public import looks_deployed, port_warnings
from smartdiscover.config.restart import unapplied
from smartdiscover.discovery.v2 import answer_v2
from smartdiscover.dns.records import all_records
from smartdiscover.web.redirect import RedirectToHTTPS
from tests.helpers import DEMO_PASSWORD, build_ini, edit
from tests.unit.test_client_fakes import EWS, World, a, service, settings
from tests.unit.test_config import _ConfigTestCase
from tests.unit.test_http_endpoints import (
    EndpointTestCase,
    basic,
    mobile_request,
    outlook_request,
    raw_request,
)
from tests.unit.test_web import Connection, Response

# Two domains (example.org with its own public host), HTTPS on 8443 and
# plain HTTP on 8080 behind a forward that publishes 443 and 80, a DNS
# responder, ActiveSync for the mobilesync answer.
INI = build_ini({
    "server": {"domains": "example.test, example.org", "http": "tcp:8080",
               "dns": "127.0.0.1:8053", "public_https_port": "443",
               "public_http_port": "80"},
    "pop3": None,
    "smtp": None,
    "urls": {"activesync": "/Microsoft-Server-ActiveSync"},
    "hosts": {"mail.example.test": "192.0.2.10", "mail.example.org": "192.0.2.11"},
    "domain:example.org": {"server.public_hostname": "mail.example.org"},
})
# The same without the public ports: clients are told the listening ones.
LISTENING_INI = build_ini({"server": {"public_https_port": None,
                                      "public_http_port": None}}, base=INI)

MAIN_URL = "https://mail.example.test/autodiscover/autodiscover.xml"
ORG_URL = "https://mail.example.org/autodiscover/autodiscover.xml"
AUTOCONFIG = "/mail/config-v1.1.xml"
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
ANDROID = "/v1.1/mail/config-v1.1.xml"

# Values no port key may take: out of range, signed, not a number, other
# scripts' digits (int() reads them), underscores and hex that int() or a
# careless parser reads.
HOSTILE_PORTS = ("0", "65536", "-1", "+443", "443abc", "abc", "1.5", "4_43", "0x1bb",
                 "\u0664\u0664\u0663", "\uff14\uff14\uff13", "443 8443", "1e3")


def with_public(https: str | None, http: str | None = None, base: str = LISTENING_INI) -> str:
    """
    C{base} with the public ports given (L{None}: not written).
    """
    keys = {"public_https_port": https, "public_http_port": http}
    return build_ini({"server": {k: v for k, v in keys.items() if v is not None}}, base=base)


class KeyTests(_ConfigTestCase):
    """
    The two keys: ports 1-65535 in ASCII digits, their problems named by
    file, section and key.
    """

    def test_defaults_are_the_listening_ports(self) -> None:
        """
        Without the keys clients are told the listening ports; the model
        says nothing was published.
        """
        model = load(self.write(LISTENING_INI))
        self.assertEqual((model.https.port, model.https.public_port,
                          model.https.published_port), (8443, 8443, None))
        assert model.http is not None
        self.assertEqual((model.http.port, model.http.public_port,
                          model.http.published_port), (8080, 8080, None))

    def test_public_ports_set(self) -> None:
        """
        The public ports are the ones set; the listeners stay where they are.
        """
        model = load(self.write(with_public("8444", "8081")))
        self.assertEqual((model.https.port, model.https.public_port), (8443, 8444))
        assert model.http is not None
        self.assertEqual((model.http.port, model.http.public_port), (8080, 8081))
        for value in ("1", "65535", "0443"):
            self.assertEqual(load(self.write(with_public(value))).https.public_port,
                             int(value))

    def test_hostile_values(self) -> None:
        """
        Each hostile value gives exactly one problem, at [server] and the
        key, quoting the value; the same values are refused in the other
        port keys, which share the converter.
        """
        for key in ("public_https_port", "public_http_port"):
            for value in HOSTILE_PORTS:
                ini = build_ini({"server": {key: value}}, base=INI)
                self.assert_only_problem(ini, "server", key, repr(value), "1-65535")
        for value in ("\u0664\u0664\u0663", "+587", "5_87"):
            self.assert_only_problem(build_ini({"imap": {"port": value}}, base=INI),
                                     "imap", "port", repr(value))
            self.assert_only_problem(edit("ssl:8443:", f"ssl:{value}:", INI),
                                     "server", "https", repr(value))

    def test_empty_value(self) -> None:
        """
        An empty value (or only a comment) is refused, not taken as the
        default: an administrator who wrote the key meant a port.
        """
        for key in ("public_https_port", "public_http_port"):
            for value in ("", "   ", "; 443 some day"):
                ini = build_ini({"server": {key: value}}, base=INI)
                self.assert_only_problem(ini, "server", key, "empty",
                                         "remove the line to publish the listening port")

    def test_http_port_without_http_listener(self) -> None:
        """
        public_http_port with no http listener is refused; with a broken
        http only the http problem is reported.
        """
        no_http = build_ini({"server": {"http": None}}, base=INI)
        self.assert_only_problem(no_http, "server", "public_http_port", "[server] http")
        broken = build_ini({"server": {"http": "tcp:nope"}}, base=INI)
        self.assert_only_problem(broken, "server", "http", "'nope'")

    def test_not_per_domain(self) -> None:
        """
        One listener serves every domain behind one forward: a [domain:]
        section cannot set a public port.
        """
        for key in ("server.public_https_port", "server.public_http_port"):
            ini = build_ini({"domain:example.org": {key: "443"}}, base=INI)
            self.assert_only_problem(ini, "domain:example.org", key, "unknown key",
                                     "public_hostname")

    def test_reload_applies_without_restart(self) -> None:
        """
        Only answers name the public ports: a reload that changes them asks
        for no restart, while moving a listener still does.
        """
        started = load(self.write(INI))
        for ini in (LISTENING_INI, with_public("8444", "8081")):
            self.assertEqual(unapplied(started, load(self.write(ini))), [])
        moved = load(self.write(edit("ssl:8443:", "ssl:8444:", INI)))
        self.assertEqual(unapplied(started, moved),
                         ["[server] https listens elsewhere now: restart to listen there"])


class AnswerTests(EndpointTestCase):
    """
    Every answer naming our own URL uses the public HTTPS port; none names
    the listening one.
    """

    def setUp(self) -> None:
        self.model = self.load_model(INI)

    def test_autodiscover_urls(self) -> None:
        """
        The Autodiscover URL of every catalogue: no port for 443, the
        public port otherwise, never the listening one.
        """
        self.assertEqual((self.model.catalogue.autodiscover_url,
                          self.model.catalogue_for("example.org").autodiscover_url),
                         (MAIN_URL, ORG_URL))
        model = self.load_model(with_public("8444"))
        self.assertEqual(model.catalogue_for("example.org").autodiscover_url,
                         "https://mail.example.org:8444/autodiscover/autodiscover.xml")
        listening = self.load_model(LISTENING_INI)
        self.assertEqual(listening.catalogue.autodiscover_url,
                         "https://mail.example.test:8443/autodiscover/autodiscover.xml")

    def test_v2_autodiscover_v1(self) -> None:
        """
        v2 JSON: AutodiscoverV1 is the public URL of the address's domain,
        through the pure function and the real tree.
        """
        for address, url in (("demo@example.test", MAIN_URL), ("x@example.org", ORG_URL)):
            reply = answer_v2(self.model, address, "AutodiscoverV1")
            self.assertEqual((reply.status, json.loads(reply.body)),
                             (200, {"Protocol": "AutodiscoverV1", "Url": url}))
        response = self.send(self.tree(self.model), raw_request(
            b"GET", b"/autodiscover/autodiscover.json?Email=demo@example.test"
                    b"&Protocol=AutodiscoverV1"))
        self.assertEqual(json.loads(response.body)["Url"], MAIN_URL)

    def test_srv_record(self) -> None:
        """
        _autodiscover._tcp of every zone: 0 5 443 <the domain's public host>.
        """
        for model, port in ((self.model, 443), (self.load_model(with_public("8444")), 8444),
                            (self.load_model(LISTENING_INI), 8443)):
            zones = all_records(model, serial=1)
            found = {}
            for domain, host in (("example.test", "mail.example.test"),
                                 ("example.org", "mail.example.org")):
                [record] = [payload for owner, kind, payload in zones[domain]
                            if owner == f"_autodiscover._tcp.{domain}" and kind == dns.SRV]
                assert isinstance(record, dns.Record_SRV)
                found[domain] = (record.priority, record.weight, record.port,
                                 record.target.name.decode("ascii"))
                self.assertEqual(found[domain], (0, 5, port, host))

    def test_authenticated_answers_name_no_listening_port(self) -> None:
        """
        POX and mobilesync, the authenticated answers, and the open
        autoconfig answer never contain the listening port.
        """
        tree = self.tree(self.model)
        credentials = basic(b"demo@example.test", DEMO_PASSWORD.encode())
        bodies = []
        for body in (outlook_request("demo@example.test"), mobile_request("demo@example.test")):
            response = self.send(tree, raw_request(
                b"POST", b"/autodiscover/autodiscover.xml",
                headers=(credentials, b"Content-Type: text/xml"), body=body))
            self.assertEqual(response.code, 200, response.body)
            bodies.append(response.body)
        self.assertIn(b"https://mail.example.test/Microsoft-Server-ActiveSync", bodies[1])
        response = self.send(tree, raw_request(b"GET", AUTOCONFIG.encode("ascii")))
        self.assertEqual(response.code, 200)
        bodies.append(response.body)
        for body in bodies:
            self.assertNotIn(b"8443", body)
            self.assertNotIn(b"8080", body)

    def test_plain_http_redirect(self) -> None:
        """
        The plain-HTTP 302 names the public URL of the Host's domain.
        """
        for host, location in ((b"autodiscover.example.test", MAIN_URL),
                               (b"autodiscover.example.org:8080", ORG_URL),
                               (b"evil.example", MAIN_URL)):
            response = self.send(RedirectToHTTPS(lambda: self.model),
                                 raw_request(b"GET", b"/autodiscover/autodiscover.xml", host))
            self.assertEqual((response.code, response.header(b"location")),
                             (302, [location.encode("ascii")]))


class WarningTests(_ConfigTestCase):
    """
    check-config warns when a deployment that looks real publishes HTTPS
    other than 443, or plain HTTP other than 80.
    """

    def warnings(self, ini: str) -> list[str]:
        return [key for key, _ in port_warnings(load(self.write(ini)))]

    def test_test_beds_are_quiet(self) -> None:
        """
        Unprivileged listeners and no public port written (the shipped
        configuration, a test setup): nothing to warn about.
        """
        self.assertFalse(looks_deployed(load(self.write(LISTENING_INI))))
        self.assertEqual(self.warnings(LISTENING_INI), [])
        self.assertEqual(self.warnings(INI), [])  # deployed, on 443 and 80

    def test_deployed_on_other_ports(self) -> None:
        """
        A public port written, or any listener (HTTPS, HTTP, DNS) on a
        privileged port, makes it a deployment: then each non-standard
        public port is named.
        """
        cases = [
            (with_public("8443"), ["public_https_port", "public_http_port"]),
            (with_public("443", "8080"), ["public_http_port"]),
            (with_public(None, "80"), ["public_https_port"]),
            (edit("127.0.0.1:8053", "127.0.0.1:53", LISTENING_INI),
             ["public_https_port", "public_http_port"]),
            (edit("tcp:8080", "tcp:80", LISTENING_INI), ["public_https_port"]),
            (edit("ssl:8443:", "ssl:443:", LISTENING_INI), ["public_http_port"]),
            (edit("ssl:8443:", "ssl:443:", with_public("8443", "80")), ["public_https_port"]),
        ]
        for ini, keys in cases:
            self.assertEqual(self.warnings(ini), keys, ini)

    def test_check_config_prints_and_passes(self) -> None:
        """
        The command prints each warning with file, section and key on
        standard error, still says OK and exits 0.
        """
        path = self.write(with_public("8443"))
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)
        self.assertEqual(cli.main(["check-config", str(path)]), 0)
        lines = err.getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith(
            f"{path.absolute()}: [server] public_https_port: warning: clients are told "
            "HTTPS port 8443: exchangelib skips _autodiscover._tcp SRV records"), lines[0])
        self.assertIn("set public_https_port = 443", lines[0])
        self.assertTrue(lines[1].startswith(
            f"{path.absolute()}: [server] public_http_port: warning: "), lines[1])
        self.assertIn("OK", out.getvalue())


class ProbePortTests(SynchronousTestCase):
    """
    The probe beside a service behind a forward: C{--port N} says where
    443 is reached, for an SRV record's 443 too.
    """

    def test_standard_port_mapped(self) -> None:
        ports = Ports(8443, 8080)
        self.assertEqual(ports.autodiscover("https", "h.example", 443),
                         "https://h.example:8443/autodiscover/autodiscover.xml")
        self.assertEqual(ports.autodiscover("https", "h.example", 9443),
                         "https://h.example:9443/autodiscover/autodiscover.xml")
        self.assertEqual(ports.autodiscover("http", "h.example", 80),
                         "http://h.example:8080/autodiscover/autodiscover.xml")
        self.assertEqual(Ports().autodiscover("https", "h.example", 443),
                         "https://h.example/autodiscover/autodiscover.xml")

    def test_srv_443_reached_on_port(self) -> None:
        """
        SRV _autodiscover._tcp 0 5 443 names the candidate reached on
        --port, and passes without the exchangelib remark.
        """
        url = "https://srv.example.test:8443/autodiscover/autodiscover.xml"
        records = {**a("srv.example.test"),
                   ("_autodiscover._tcp.example.test", dns.SRV):
                       [dns.Record_SRV(0, 5, 443, b"srv.example.test")]}
        world = World(records, {url: service(settings(EWS))}, ports=Ports(8443))
        found = self.successResultOf(world.start())
        assert found is not None
        self.assertEqual(found.url, url)
        check = world.check("5 _autodiscover._tcp.example.test SRV")
        self.assertEqual((check.ok, check.detail), (True, "0 5 443 srv.example.test"))


class AutoconfigRedirectTests(EndpointTestCase):
    """
    The plain-HTTP listener sends the autoconfig paths to the same path
    over https on the Host's name when it is ours, never asking for
    credentials (issue 16 section 7).
    """

    def setUp(self) -> None:
        self.model = self.load_model(INI)

    def get(self, path: bytes, host: bytes | None = b"autoconfig.example.test",
            headers: tuple[bytes, ...] = (), method: bytes = b"GET") -> tuple[Response, bytes]:
        connection = Connection(RedirectToHTTPS(lambda: self.model))
        connection.send(raw_request(method, path, host, headers))
        return connection.response(), connection.transport.value()

    def assertRedirect(self, response: Response, location: str) -> None:
        self.assertEqual(response.code, 302, response.body)
        self.assertEqual(response.header(b"location"), [location.encode("ascii")])
        self.assertEqual(response.header(b"www-authenticate"), [])
        self.assertEqual(response.body, b"")
        self.assertSecurityHeaders(response)

    def test_each_path_any_case(self) -> None:
        """
        Each autoconfig path, in any letter case or %-encoded, goes to its
        own lower-case form on https, for GET and HEAD alike.
        """
        for path in (AUTOCONFIG, WELL_KNOWN, ANDROID):
            for asked in (path, path.upper(), path.replace("config-", "Config%2D")):
                response, _ = self.get(asked.encode("ascii"))
                self.assertRedirect(response, f"https://autoconfig.example.test{path}")
            connection = Connection(RedirectToHTTPS(lambda: self.model))
            connection.send(raw_request(b"HEAD", path.encode(), b"example.org"))
            self.assertEqual(connection.response().header(b"location"),
                             [f"https://example.org{path}".encode()])

    def test_query_kept(self) -> None:
        """
        The query string (emailaddress, Evolution's emailmd5) goes along as
        sent.
        """
        query = "emailaddress=demo%40example.test&emailmd5=0cc175b9c0f1b6a8"
        response, _ = self.get(f"{AUTOCONFIG}?{query}".encode())
        self.assertRedirect(response, f"https://autoconfig.example.test{AUTOCONFIG}?{query}")
        response, _ = self.get(f"{AUTOCONFIG}?emailaddress=demo@example.test".encode())
        self.assertRedirect(response, f"https://autoconfig.example.test{AUTOCONFIG}"
                                      "?emailaddress=demo@example.test")
        response, _ = self.get(f"{AUTOCONFIG}?".encode())
        self.assertRedirect(response, f"https://autoconfig.example.test{AUTOCONFIG}")

    def test_hostile_query_encoded(self) -> None:
        """
        Bytes a Location must not carry raw (quotes, angle brackets, a
        backslash, DEL, a fragment mark) are %-encoded; nothing of it
        reaches another header or the body.  A request line with bytes
        that are not ASCII is refused before (400, no Location).
        """
        raw = b"emailaddress=\"<b>\\\x7f#x|{}^`"
        response, written = self.get(AUTOCONFIG.encode() + b"?" + raw)
        self.assertRedirect(response, f"https://autoconfig.example.test{AUTOCONFIG}"
                                      "?emailaddress=%22%3Cb%3E%5C%7F%23x%7C%7B%7D%5E%60")
        self.assertNotIn(b"<b>", written)
        response, _ = self.get(AUTOCONFIG.encode() + "?emailaddress=\u00fc@example.test"
                               .encode("utf-8"))
        self.assertEqual((response.code, response.header(b"location")), (400, []))

    def test_our_names_kept(self) -> None:
        """
        autoconfig.<domain>, <domain>, autodiscover.<domain> and each
        public host name stay the Location's host, normalised: lower case,
        without port or trailing dot.
        """
        for host, name in ((b"autoconfig.example.org", "autoconfig.example.org"),
                           (b"AutoConfig.Example.ORG", "autoconfig.example.org"),
                           (b"autoconfig.example.test:8080", "autoconfig.example.test"),
                           (b"autoconfig.example.test.", "autoconfig.example.test"),
                           (b"example.test", "example.test"),
                           (b"autodiscover.example.org", "autodiscover.example.org"),
                           (b"mail.example.test", "mail.example.test"),
                           (b"MAIL.example.org:80", "mail.example.org")):
            response, _ = self.get(AUTOCONFIG.encode(), host)
            self.assertRedirect(response, f"https://{name}{AUTOCONFIG}")

    def test_foreign_and_garbage_hosts(self) -> None:
        """
        Any other Host (foreign, a served name as a prefix, garbage, very
        long, missing) goes to the main public host name and appears
        nowhere in the response: never an open redirect.
        """
        for host in (b"evil.example", b"autoconfig.evil.example",
                     b"autoconfig.example.test.evil.example", b"evil.example:443",
                     b"<evil>", b"a\"b", b"autoconfig.example.test@evil.example",
                     b"evil.example/autoconfig.example.test", b"x" * 4000,
                     b"autoconfig." + b"evil" * 100 + b".example.test", b"[::1]", b"",
                     "autoconfig.b\u00fccher.example".encode("utf-8"), b"192.0.2.66"):
            response, written = self.get(AUTOCONFIG.encode(), host)
            self.assertRedirect(response, f"https://mail.example.test{AUTOCONFIG}")
            self.assertNotIn(b"evil", written)
        response, _ = self.get(AUTOCONFIG.encode(), None)
        self.assertRedirect(response, f"https://mail.example.test{AUTOCONFIG}")

    def test_idn_domain(self) -> None:
        """
        A served internationalised domain is kept in its ASCII form.
        """
        self.model = self.load_model(build_ini({"server": {
            "domains": "example.test, example.org, b\u00fccher.example", "dns": None}},
            base=INI))
        for host in (b"autoconfig.xn--bcher-kva.example", b"AUTOCONFIG.XN--BCHER-KVA.EXAMPLE"):
            response, _ = self.get(AUTOCONFIG.encode(), host)
            self.assertRedirect(response, f"https://autoconfig.xn--bcher-kva.example{AUTOCONFIG}")

    def test_public_port_and_reload(self) -> None:
        """
        The Location names the public HTTPS port, as the model in force
        says at each request.
        """
        response, _ = self.get(AUTOCONFIG.encode())
        self.assertRedirect(response, f"https://autoconfig.example.test{AUTOCONFIG}")
        self.model = self.load_model(with_public("8444", "80"))
        response, _ = self.get(AUTOCONFIG.encode())
        self.assertRedirect(response, f"https://autoconfig.example.test:8444{AUTOCONFIG}")
        self.model = self.load_model(LISTENING_INI)
        response, _ = self.get(AUTOCONFIG.encode())
        self.assertRedirect(response, f"https://autoconfig.example.test:8443{AUTOCONFIG}")

    def test_other_paths_keep_autodiscover(self) -> None:
        """
        Near misses of the autoconfig paths are redirected to the
        Autodiscover URL, as every other path.
        """
        for path in (b"/mail/config-v1.1.xml/", b"/mail/config-v1.1.xml/x",
                     b"//mail/config-v1.1.xml", b"/mail/config-v1.2.xml",
                     b"/x/mail/config-v1.1.xml", b"/config-v1.1.xml",
                     b"/.well-known/autoconfig/config-v1.1.xml", b"/mail"):
            response, _ = self.get(path, b"autoconfig.example.org")
            self.assertRedirect(response, ORG_URL)

    def test_credentials_ignored(self) -> None:
        """
        An Authorization header changes nothing and is echoed nowhere; no
        method gets a challenge.
        """
        plain, _ = self.get(AUTOCONFIG.encode())
        header = basic(b"demo@example.test", b"Sekr3t-Passw0rd-xyzzy")
        for method in (b"GET", b"POST", b"PUT"):
            response, written = self.get(AUTOCONFIG.encode(), headers=(header,), method=method)
            self.assertEqual(response.comparable(), plain.comparable())
            self.assertNotIn(b"Sekr3t", written)
            self.assertNotIn(header.split(b" ")[-1], written)

