"""
Unit tests for every discovery format SmartDiscover answers in, driven
through the pure discovery functions:

- Outlook POX with the SmartDiscover extension Protocols (PROTOCOLS.md
  sections 2.6, 2.7 and 6.3), also as exchangelib 4.9 reads it (section 11.1);
- per-domain catalogues ([domain:NAME] overrides);
- per-account redirects (PROTOCOLS.md sections 2.6 and 2.9, SECURITY.md 3.2);
- the ActiveSync "mobilesync" schema (PROTOCOLS.md section 4);
- Autodiscover v2 JSON (PROTOCOLS.md section 5, section 10.2 item 5).

Every answer is parsed (lxml or json) and checked element by element, never
compared as a whole string.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

from exchangelib.autodiscover.properties import Autodiscover as ExchangelibAutodiscover
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import Model, load
from smartdiscover.discovery.answer import Reply, answer_autodiscover
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.v2 import answer_v2
from tests.helpers import DEMO_HASH, MINIMAL_INI, build_ini, edit, write_config

# Namespaces spelled out here, independently of the code under test.
RESPONSE_2006 = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
RESPONSE_2006A = ("http://schemas.microsoft.com/exchange/autodiscover/outlook/"
                  "responseschema/2006a")
OUTLOOK_REQUEST = ("http://schemas.microsoft.com/exchange/autodiscover/outlook/"
                   "requestschema/2006")
MOBILESYNC_REQUEST = ("http://schemas.microsoft.com/exchange/autodiscover/mobilesync/"
                      "requestschema/2006")
MOBILESYNC_RESPONSE = ("http://schemas.microsoft.com/exchange/autodiscover/mobilesync/"
                       "responseschema/2006")
NS = {"r": RESPONSE_2006, "a": RESPONSE_2006A, "m": MOBILESYNC_RESPONSE}

NOW = datetime(2025, 3, 4, 21, 25, 4, 889708, tzinfo=timezone.utc)

# A parser for reading our own output; it never fetches or expands anything.
READER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

# The minimal file with TTL 2 and one socket service of every kind on a
# host of its own, every security mode among them, and every URL service
# (PROTOCOLS.md section 6.3, issue 3 section 1).
FULL_INI = build_ini({
    "server": {"ttl": "2"},
    "imap": {"host": "imap.example.test"},
    "pop3": {"host": "pop.example.test"},
    "smtp": {"host": "smtp.example.test"},
    "xmpp": {"host": "chat.example.test", "security": "starttls"},
    "sip": {"host": "sip.example.test", "transport": "tls"},
    "urls": {
        "activesync": "https://mail.example.test/Microsoft-Server-ActiveSync",
        "syncml": "https://mail.example.test/syncml/",
        "webdav": "https://mail.example.test/webdav/",
        "caldav": "https://dav.example.test/caldav/",
        "carddav": "https://dav.example.test/carddav/",
        "freebusy": "https://mail.example.test/freebusy/",
        "ical": "https://mail.example.test/ical/",
        "webadmin": "https://admin.example.test/admin/",
        "install": "https://mail.example.test/install/",
        "antispam": "https://mail.example.test/antispam/",
        "sms": "https://mail.example.test/sms/",
        "teamchat": "https://chat.example.test/teamchat/",
        "collaboration": "https://mail.example.test/collaboration/",
    },
})
NO_EXTENSIONS_INI = build_ini({"server": {"pox_extensions": "no"}}, base=FULL_INI)

URL_TYPES = {
    "ACTIVESYNC": "https://mail.example.test/Microsoft-Server-ActiveSync",
    "SYNCML": "https://mail.example.test/syncml/",
    "WEBDAV": "https://mail.example.test/webdav/",
    "CALDAV": "https://dav.example.test/caldav/",
    "CARDDAV": "https://dav.example.test/carddav/",
    "FREEBUSY": "https://mail.example.test/freebusy/",
    "ICAL": "https://mail.example.test/ical/",
    "WEBADMIN": "https://admin.example.test/admin/",
    "INSTALL": "https://mail.example.test/install/",
    "ANTISPAM": "https://mail.example.test/antispam/",
    "SMS": "https://mail.example.test/sms/",
    "TEAMCHAT": "https://chat.example.test/teamchat/",
    "COLLABORATION": "https://mail.example.test/collaboration/",
}
STANDARD_ORDER = ["IMAP", "POP3", "SMTP", "EXPR", "WEB"]
FULL_ORDER = STANDARD_ORDER + ["XMPP", "SIP"] + list(URL_TYPES)

DEMO = Principal("demo@example.test", "Demo User")
ORG_DEMO = Principal("demo@example.org", "Org User")
MOVED = Principal("moved@example.test", "Moved User")
AWAY = Principal("away@example.test", "Away User")
PARTNER_URL = "https://autodiscover.partner.example/autodiscover/autodiscover.xml"

# Two served domains; example.org overrides the public host name, every
# socket host and two URLs.  ActiveSync exists for example.org only.
MULTI_INI = build_ini({
    "server": {"domains": "example.test, example.org", "redirect_domains": "partner.example"},
    "imap": {"host": "imap.example.test"},
    "pop3": {"host": "pop.example.test", "security": "ssl"},
    "smtp": {"host": "smtp.example.test", "port": None},
    "xmpp": {"host": "chat.example.test"},
    "urls": {"webclient": "/webmail/"},
    "domain:example.org": {
        "server.public_hostname": "mail.example.org",
        "imap.host": "imap.example.org",
        "pop3.host": "pop.example.org",
        "smtp.host": "smtp.example.org",
        "xmpp.host": "chat.example.org",
        "urls.ews": "/EWS/Exchange.asmx",
        "urls.activesync": "/Microsoft-Server-ActiveSync",
    },
    "redirectAddr": {"moved@example.test": "demo@example.org"},
    "redirectUrl": {"away@example.test": PARTNER_URL},
})

MULTI_PASSWD = "".join(
    f"{principal.address}:{DEMO_HASH}:::{principal.display_name}\n"
    for principal in (DEMO, ORG_DEMO, MOVED, AWAY))

ONLY_IMAP_INI = build_ini({"server": {"ttl": "2"}, "imap": {"security": None}},
                          only=("server", "auth", "imap"))


def request(email: str | None, schema: str | None = RESPONSE_2006A,
            namespace: str = OUTLOOK_REQUEST) -> bytes:
    """
    An Autodiscover request body (PROTOCOLS.md sections 2.3 and 4).
    """
    fields = ""
    if email is not None:
        fields += f"<EMailAddress>{email}</EMailAddress>"
    if schema is not None:
        fields += f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema>"
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{namespace}">'
            f"<Request>{fields}</Request></Autodiscover>").encode("utf-8")


def mobile_request(email: str | None, schema: str | None = MOBILESYNC_RESPONSE) -> bytes:
    """
    A mobilesync request (PROTOCOLS.md section 4).
    """
    return request(email, schema, MOBILESYNC_REQUEST)


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


class FormatTestCase(SynchronousTestCase):
    """
    Loading models and reading answers.
    """

    def load_model(self, ini: str = MINIMAL_INI, passwd: str | None = None) -> Model:
        return load(write_config(self.mktemp(), ini, passwd))

    def reply(self, model: Model, principal: Principal, body: bytes | None) -> Reply:
        return answer_autodiscover(model, principal, body, NOW)

    def read(self, output: bytes) -> etree._Element:
        """
        Parse C{output}: it starts with C{<?xml} and has the generic 2006
        Autodiscover root (PROTOCOLS.md sections 2.4 and 11.1).
        """
        self.assertIsInstance(output, bytes)
        self.assertEqual(output[:5], b"<?xml")
        root = etree.fromstring(output, READER)
        self.assertEqual(root.tag, f"{{{RESPONSE_2006}}}Autodiscover")
        return root

    def pox_settings(self, output: bytes, address: str) -> etree._Element:
        """
        C{output} is a POX settings document for C{address}; return its
        2006a Account.
        """
        root = self.read(output)
        self.assertEqual([e.tag for e in root], [f"{{{RESPONSE_2006A}}}Response"])
        response = root[0]
        self.assertEqual([local(e) for e in response], ["User", "Account"])
        self.assertEqual(response.xpath("a:User/a:AutoDiscoverSMTPAddress/text()",
                                        namespaces=NS), [address])
        account = response[1]
        self.assertEqual(account.xpath("a:AccountType/text()", namespaces=NS), ["email"])
        self.assertEqual(account.xpath("a:Action/text()", namespaces=NS), ["settings"])
        return account

    def pox_error(self, output: bytes, code: int) -> etree._Element:
        """
        C{output} is a POX Error document with C{code}: Error directly under a
        2006-namespace Response (PROTOCOLS.md section 2.8).
        """
        root = self.read(output)
        self.assertEqual([e.tag for e in root], [f"{{{RESPONSE_2006}}}Response"])
        self.assertEqual([e.tag for e in root[0]], [f"{{{RESPONSE_2006}}}Error"])
        error = root[0][0]
        self.assertEqual(error.xpath("r:ErrorCode/text()", namespaces=NS), [str(code)])
        return error

    def types(self, account: etree._Element) -> list[str]:
        return [protocol.findtext(f"{{{RESPONSE_2006A}}}Type")
                for protocol in account.findall(f"{{{RESPONSE_2006A}}}Protocol")]

    def protocol(self, account: etree._Element, pox_type: str) -> etree._Element:
        found = account.xpath("a:Protocol[a:Type=$t]", namespaces=NS, t=pox_type)
        self.assertEqual(len(found), 1, f"exactly one {pox_type} Protocol")
        return found[0]

    def fields(self, protocol: etree._Element) -> dict[str, str]:
        """
        The Protocol's children by local name; each appears at most once.
        """
        names = [local(e) for e in protocol]
        self.assertEqual(len(names), len(set(names)), names)
        return {local(e): (e.text or "") for e in protocol}

    def mobile_response(self, output: bytes) -> etree._Element:
        """
        C{output} is a mobilesync document: the 2006 root around exactly one
        Response of the mobilesync schema (PROTOCOLS.md section 4).
        """
        root = self.read(output)
        self.assertEqual([e.tag for e in root], [f"{{{MOBILESYNC_RESPONSE}}}Response"])
        for element in root[0].iter(etree.Element):
            self.assertEqual(etree.QName(element).namespace, MOBILESYNC_RESPONSE,
                             element.tag)
        return root[0]


class FullCataloguePOXTests(FormatTestCase):
    """
    The POX settings document with every service configured (PROTOCOLS.md
    sections 2.7, 2.10 and 6.3).
    """

    def account(self, ini: str = FULL_INI) -> etree._Element:
        model = self.load_model(ini)
        return self.pox_settings(self.reply(model, DEMO, request(DEMO.address)).body,
                                 DEMO.address)

    def test_protocol_order(self) -> None:
        """
        Standard Types come first, in the order IMAP, POP3, SMTP, EXPR, WEB;
        then the socket extensions XMPP and SIP; then one Protocol per URL
        service in catalogue order (PROTOCOLS.md section 6.3 item 1).
        """
        self.assertEqual(self.types(self.account()), FULL_ORDER)

    def test_every_protocol_in_2006a(self) -> None:
        """
        Every Protocol, extensions included, is a 2006a element with exactly
        one Type (PROTOCOLS.md section 6.3: stay inside the 2006a schema).
        """
        account = self.account()
        protocols = list(account.iter(f"{{{RESPONSE_2006A}}}Protocol"))
        self.assertEqual(len(protocols), len(FULL_ORDER))
        for protocol in protocols:
            self.assertEqual(len(protocol.findall(f"{{{RESPONSE_2006A}}}Type")), 1)
            for element in protocol.iter(etree.Element):
                self.assertEqual(etree.QName(element).namespace, RESPONSE_2006A)

    def test_standard_socket_protocols(self) -> None:
        """
        IMAP, POP3 and SMTP carry host, port, LoginName, SPA off and the SSL
        and Encryption of their security mode (PROTOCOLS.md sections 2.7 and
        2.10: ssl = SSL on/SSL, starttls = SSL on/TLS).
        """
        account = self.account()
        expected = {
            "IMAP": ("imap.example.test", "993", "on", "SSL"),
            "POP3": ("pop.example.test", "110", "on", "TLS"),
            "SMTP": ("smtp.example.test", "587", "on", "TLS"),
        }
        for pox_type, (server, port, ssl, encryption) in expected.items():
            fields = self.fields(self.protocol(account, pox_type))
            self.assertEqual(fields["Server"], server, pox_type)
            self.assertEqual(fields["Port"], port, pox_type)
            self.assertEqual(fields["LoginName"], DEMO.address, pox_type)
            self.assertEqual(fields["SPA"], "off", pox_type)
            self.assertEqual(fields["SSL"], ssl, pox_type)
            self.assertEqual(fields["Encryption"], encryption, pox_type)
            self.assertEqual(fields["AuthRequired"], "on", pox_type)
            self.assertEqual(fields["TTL"], "2", pox_type)

    def test_expr_and_web(self) -> None:
        """
        EXPR carries the EWS URL as both EwsUrl and ASUrl; WEB carries the
        webmail URL in External/OWAUrl (PROTOCOLS.md sections 2.10 and 11).
        """
        account = self.account()
        expr = self.fields(self.protocol(account, "EXPR"))
        self.assertEqual(expr["EwsUrl"], "https://mail.example.test/EWS/Exchange.asmx")
        self.assertEqual(expr["ASUrl"], "https://mail.example.test/EWS/Exchange.asmx")
        web = self.protocol(account, "WEB")
        self.assertEqual(web.xpath("a:External/a:OWAUrl/text()", namespaces=NS),
                         ["https://mail.example.test/webmail/"])

    def test_socket_extensions(self) -> None:
        """
        XMPP and SIP Protocols carry Server, Port, LoginName, SSL,
        Encryption and AuthRequired like the standard socket Types: XMPP
        with STARTTLS on the default 5222, SIP over TLS on the default 5061
        (PROTOCOLS.md section 6.3 items 1 and 4).
        """
        account = self.account()
        expected = {
            "XMPP": ("chat.example.test", "5222", "on", "TLS"),
            "SIP": ("sip.example.test", "5061", "on", "SSL"),
        }
        for pox_type, (server, port, ssl, encryption) in expected.items():
            fields = self.fields(self.protocol(account, pox_type))
            self.assertEqual(fields["Server"], server, pox_type)
            self.assertEqual(fields["Port"], port, pox_type)
            self.assertEqual(fields["LoginName"], DEMO.address, pox_type)
            self.assertEqual(fields["SSL"], ssl, pox_type)
            self.assertEqual(fields["Encryption"], encryption, pox_type)
            self.assertEqual(fields["AuthRequired"], "on", pox_type)
            # Outlook-style fields that default to "on" are written explicitly.
            self.assertEqual(fields["SPA"], "off", pox_type)

    def test_sip_transport_without_tls(self) -> None:
        """
        SIP over UDP has no TLS: port 5060, SSL off, Encryption None; the
        transport itself is no Protocol child outside the strict mode
        (PROTOCOLS.md section 6.3, SIP row); XMPP with ssl uses 5223.
        """
        ini = edit("[xmpp]\nhost = chat.example.test\nsecurity = starttls",
                   "[xmpp]\nhost = chat.example.test\nsecurity = ssl",
                   edit("transport = tls", "transport = udp", FULL_INI))
        account = self.account(ini)
        sip = self.fields(self.protocol(account, "SIP"))
        self.assertEqual((sip["Port"], sip["SSL"], sip["Encryption"]), ("5060", "off", "None"))
        self.assertNotIn("Transport", sip)
        xmpp = self.fields(self.protocol(account, "XMPP"))
        self.assertEqual((xmpp["Port"], xmpp["SSL"], xmpp["Encryption"]), ("5223", "on", "SSL"))

    def test_url_extensions(self) -> None:
        """
        Each URL service is a Protocol whose Server is its absolute https
        URL, with LoginName and AuthRequired, and no Port (PROTOCOLS.md
        section 6.3: "Server = absolute https URL", Port ignored).
        """
        account = self.account()
        for pox_type, url in URL_TYPES.items():
            fields = self.fields(self.protocol(account, pox_type))
            self.assertEqual(fields["Server"], url, pox_type)
            parts = urlsplit(fields["Server"])
            self.assertEqual(parts.scheme, "https", pox_type)
            self.assertTrue(parts.hostname, pox_type)
            self.assertEqual(fields["LoginName"], DEMO.address, pox_type)
            self.assertEqual(fields["AuthRequired"], "on", pox_type)
            self.assertNotIn("Port", fields, pox_type)

    def test_extensions_switched_off(self) -> None:
        """
        With [server] pox_extensions = no only the standard Types remain
        (PROTOCOLS.md section 6.3 item 2: a per-deployment switch).
        """
        self.assertEqual(self.types(self.account(NO_EXTENSIONS_INI)), STANDARD_ORDER)

    def test_only_imap(self) -> None:
        """
        A config with only IMAP lists exactly one Protocol, IMAP
        (PROTOCOLS.md section 2.7; nothing is advertised that is not offered).
        """
        self.assertEqual(self.types(self.account(ONLY_IMAP_INI)), ["IMAP"])

    def test_exchangelib_accepts_the_whole_document(self) -> None:
        """
        exchangelib 4.9 parses the full document, extensions included, and
        finds the EWS URL in the EXPR Protocol (PROTOCOLS.md sections 6.3
        item 2 and 11.1).
        """
        model = self.load_model(FULL_INI)
        body = self.reply(model, DEMO, request(DEMO.address)).body
        parsed = ExchangelibAutodiscover.from_bytes(body)
        parsed.raise_errors()
        self.assertEqual(parsed.response.protocol.ews_url,
                         "https://mail.example.test/EWS/Exchange.asmx")
        self.assertEqual(parsed.response.autodiscover_smtp_address, DEMO.address)
        self.assertEqual([p.type for p in parsed.response.account.protocols], FULL_ORDER)


class MultiDomainTests(FormatTestCase):
    """
    [domain:NAME] overrides: one server, many domains, each with its own
    host names (issue 3 section 1).
    """

    def account(self, principal: Principal) -> etree._Element:
        model = self.load_model(MULTI_INI, MULTI_PASSWD)
        body = self.reply(model, principal, request(principal.address)).body
        return self.pox_settings(body, principal.address)

    def test_main_domain_hosts(self) -> None:
        """
        A user of the main domain gets the main sections' hosts and URLs
        (PROTOCOLS.md sections 2.7 and 6.3).
        """
        account = self.account(DEMO)
        self.assertEqual(self.types(account), ["IMAP", "POP3", "SMTP", "EXPR", "WEB", "XMPP"])
        for pox_type, host in (("IMAP", "imap.example.test"), ("POP3", "pop.example.test"),
                               ("SMTP", "smtp.example.test"), ("XMPP", "chat.example.test")):
            fields = self.fields(self.protocol(account, pox_type))
            self.assertEqual(fields["Server"], host, pox_type)
            self.assertEqual(fields["LoginName"], DEMO.address, pox_type)
        self.assertEqual(self.fields(self.protocol(account, "EXPR"))["EwsUrl"],
                         "https://mail.example.test/EWS/Exchange.asmx")
        self.assertEqual(account.xpath("a:Protocol/a:External/a:OWAUrl/text()",
                                       namespaces=NS),
                         ["https://mail.example.test/webmail/"])
        self.assertNotIn("example.org", etree.tostring(account, encoding="unicode"))

    def test_override_domain_hosts(self) -> None:
        """
        A user of the overriding domain gets that domain's hosts; bare URL
        paths resolve against that domain's public host name; only the
        override adds ActiveSync (PROTOCOLS.md sections 2.7 and 6.3).
        """
        account = self.account(ORG_DEMO)
        self.assertEqual(self.types(account),
                         ["IMAP", "POP3", "SMTP", "EXPR", "WEB", "XMPP", "ACTIVESYNC"])
        for pox_type, host in (("IMAP", "imap.example.org"), ("POP3", "pop.example.org"),
                               ("SMTP", "smtp.example.org"), ("XMPP", "chat.example.org")):
            fields = self.fields(self.protocol(account, pox_type))
            self.assertEqual(fields["Server"], host, pox_type)
            self.assertEqual(fields["LoginName"], ORG_DEMO.address, pox_type)
        self.assertEqual(self.fields(self.protocol(account, "EXPR"))["EwsUrl"],
                         "https://mail.example.org/EWS/Exchange.asmx")
        self.assertEqual(account.xpath("a:Protocol/a:External/a:OWAUrl/text()",
                                       namespaces=NS),
                         ["https://mail.example.org/webmail/"])
        self.assertEqual(self.fields(self.protocol(account, "ACTIVESYNC"))["Server"],
                         "https://mail.example.org/Microsoft-Server-ActiveSync")
        self.assertNotIn("example.test", etree.tostring(account, encoding="unicode"))


class RedirectTests(FormatTestCase):
    """
    Per-account redirects in POX (PROTOCOLS.md sections 2.6 and 2.9,
    SECURITY.md section 3.2).
    """

    def setUp(self) -> None:
        self.model = self.load_model(MULTI_INI, MULTI_PASSWD)

    def account(self, output: bytes) -> etree._Element:
        root = self.read(output)
        self.assertEqual([e.tag for e in root], [f"{{{RESPONSE_2006A}}}Response"])
        self.assertEqual([local(e) for e in root[0]], ["Account"])
        return root[0][0]

    def test_redirect_addr(self) -> None:
        """
        A redirectAddr account gets Action redirectAddr with RedirectAddr
        naming the target, and no RedirectUrl nor Protocol (PROTOCOLS.md
        section 2.6: the element goes with its Action only).
        """
        account = self.account(self.reply(self.model, MOVED, request(MOVED.address)).body)
        self.assertEqual(account.xpath("a:Action/text()", namespaces=NS), ["redirectAddr"])
        self.assertEqual(account.xpath("a:RedirectAddr/text()", namespaces=NS),
                         ["demo@example.org"])
        names = [local(e) for e in account]
        for absent in ("RedirectUrl", "RedirectURL", "Protocol"):
            self.assertNotIn(absent, names)

    def test_redirect_url(self) -> None:
        """
        A redirectUrl account gets Action redirectUrl with both spellings,
        RedirectUrl (MS-OXDSCLI, evolution-ews) and RedirectURL
        (exchangelib), holding the same URL (PROTOCOLS.md sections 2.6 and
        11.1).
        """
        account = self.account(self.reply(self.model, AWAY, request(AWAY.address)).body)
        self.assertEqual(account.xpath("a:Action/text()", namespaces=NS), ["redirectUrl"])
        self.assertEqual(account.xpath("a:RedirectUrl/text()", namespaces=NS), [PARTNER_URL])
        self.assertEqual(account.xpath("a:RedirectURL/text()", namespaces=NS), [PARTNER_URL])
        names = [local(e) for e in account]
        self.assertNotIn("RedirectAddr", names)
        self.assertNotIn("Protocol", names)

    def test_redirect_without_request_body(self) -> None:
        """
        A GET (no body) from a redirected account is redirected the same way
        (PROTOCOLS.md sections 2.1 and 2.9).
        """
        account = self.account(self.reply(self.model, MOVED, None).body)
        self.assertEqual(account.xpath("a:RedirectAddr/text()", namespaces=NS),
                         ["demo@example.org"])

    def test_exchangelib_reads_redirects(self) -> None:
        """
        exchangelib 4.9 reads the redirect address and the redirect URL
        from our documents (PROTOCOLS.md section 11.1: it reads only
        RedirectURL and crashes on RedirectUrl alone).
        """
        moved = ExchangelibAutodiscover.from_bytes(
            self.reply(self.model, MOVED, request(MOVED.address)).body)
        self.assertEqual(moved.response.redirect_address, "demo@example.org")
        self.assertIsNone(moved.response.redirect_url)
        away = ExchangelibAutodiscover.from_bytes(
            self.reply(self.model, AWAY, request(AWAY.address)).body)
        self.assertEqual(away.response.redirect_url, PARTNER_URL)
        self.assertIsNone(away.response.redirect_address)

    def test_redirect_target_gets_settings(self) -> None:
        """
        A redirected client asks again about the target address with the
        original credentials (PROTOCOLS.md section 2.6, Thunderbird): the
        target, served here, gets its own domain's settings.
        """
        body = self.reply(self.model, MOVED, request("demo@example.org")).body
        account = self.pox_settings(body, "demo@example.org")
        imap = self.fields(self.protocol(account, "IMAP"))
        self.assertEqual(imap["Server"], "imap.example.org")
        self.assertEqual(imap["LoginName"], "demo@example.org")
        self.assertEqual(self.fields(self.protocol(account, "EXPR"))["EwsUrl"],
                         "https://mail.example.org/EWS/Exchange.asmx")
        self.assertNotIn("Redirect", etree.tostring(account, encoding="unicode"))

    def test_redirected_principal_asks_about_unrelated_address(self) -> None:
        """
        A redirected principal asking about any other address gets
        ErrorCode 500, never that mailbox's settings (SECURITY.md section
        3.3, PROTOCOLS.md section 10.2 item 4).
        """
        for principal in (MOVED, AWAY):
            for address in ("demo@example.test", "other@example.org", "x@partner.example"):
                output = self.reply(self.model, principal, request(address)).body
                self.pox_error(output, 500)
                self.assertNotIn(address.encode(), output)

    def test_redirect_url_target_is_not_a_mailbox(self) -> None:
        """
        A redirectUrl account asking about an address in the URL's domain
        is not given settings: only redirectAddr targets are mailboxes
        (PROTOCOLS.md section 10.2 item 4, SECURITY.md section 3.3).
        """
        output = self.reply(self.model, AWAY, request("away@partner.example")).body
        self.pox_error(output, 500)


class MobileSyncTests(FormatTestCase):
    """
    The ActiveSync "mobilesync" schema (PROTOCOLS.md section 4; issue 3
    section 2).
    """

    def test_settings(self) -> None:
        """
        With [urls] activesync: Culture en:us, User (DisplayName,
        EMailAddress), then Action/Settings/Server with Type MobileSync and
        the URL in Url and Name (PROTOCOLS.md section 4).
        """
        model = self.load_model(FULL_INI)
        response = self.mobile_response(
            self.reply(model, DEMO, mobile_request(DEMO.address)).body)
        self.assertEqual([local(e) for e in response], ["Culture", "User", "Action"])
        self.assertEqual(response.xpath("m:Culture/text()", namespaces=NS), ["en:us"])
        self.assertEqual([local(e) for e in response[1]], ["DisplayName", "EMailAddress"])
        self.assertEqual(response.xpath("m:User/m:DisplayName/text()", namespaces=NS),
                         ["Demo User"])
        self.assertEqual(response.xpath("m:User/m:EMailAddress/text()", namespaces=NS),
                         [DEMO.address])
        servers = response.xpath("m:Action/m:Settings/m:Server", namespaces=NS)
        self.assertEqual(len(servers), 1)
        server = servers[0]
        url = "https://mail.example.test/Microsoft-Server-ActiveSync"
        self.assertEqual([(local(e), e.text) for e in server],
                         [("Type", "MobileSync"), ("Url", url), ("Name", url)])
        self.assertEqual(response.xpath("m:Action/m:Error", namespaces=NS), [])

    def test_override_domain_settings(self) -> None:
        """
        The URL is the user's own domain's (a [domain:] override;
        PROTOCOLS.md section 4).
        """
        model = self.load_model(MULTI_INI, MULTI_PASSWD)
        response = self.mobile_response(
            self.reply(model, ORG_DEMO, mobile_request(ORG_DEMO.address)).body)
        self.assertEqual(response.xpath("m:Action/m:Settings/m:Server/m:Url/text()",
                                        namespaces=NS),
                         ["https://mail.example.org/Microsoft-Server-ActiveSync"])

    def test_redirect_addr(self) -> None:
        """
        A redirectAddr account gets Action/Redirect with the target address
        and no Settings (PROTOCOLS.md section 4).
        """
        model = self.load_model(MULTI_INI, MULTI_PASSWD)
        response = self.mobile_response(
            self.reply(model, MOVED, mobile_request(MOVED.address)).body)
        self.assertEqual(response.xpath("m:Culture/text()", namespaces=NS), ["en:us"])
        self.assertEqual(response.xpath("m:User/m:EMailAddress/text()", namespaces=NS),
                         [MOVED.address])
        action = response.xpath("m:Action", namespaces=NS)
        self.assertEqual(len(action), 1)
        self.assertEqual([(local(e), e.text) for e in action[0]],
                         [("Redirect", "demo@example.org")])

    def test_redirect_url_is_http_redirect(self) -> None:
        """
        mobilesync has no URL redirect element: a redirectUrl account is
        answered with an HTTP redirect to the URL and an empty body
        (PROTOCOLS.md sections 2.9 and 11.3).
        """
        model = self.load_model(MULTI_INI, MULTI_PASSWD)
        reply = self.reply(model, AWAY, mobile_request(AWAY.address))
        self.assertEqual(reply.location, PARTNER_URL)
        self.assertEqual(reply.body, b"")

    def test_no_activesync_url(self) -> None:
        """
        Without an ActiveSync URL: a mobilesync Response around Error with
        ErrorCode 601 (PROTOCOLS.md section 4: no provider for the schema).
        """
        model = self.load_model(MULTI_INI, MULTI_PASSWD)
        response = self.mobile_response(
            self.reply(model, DEMO, mobile_request(DEMO.address)).body)
        self.assertEqual([local(e) for e in response], ["Error"])
        self.assertEqual(response.xpath("m:Error/m:ErrorCode/text()", namespaces=NS), ["601"])
        self.assertRegex(response[0].get("Time", ""), r"^\d{2}:\d{2}:\d{2}\.\d{7}$")
        self.assertRegex(response[0].get("Id", ""), r"^\d+$")

    def test_malformed_request(self) -> None:
        """
        A mobilesync-namespace request without AcceptableResponseSchema,
        without any address, or with two Request elements gets ErrorCode
        600 in a mobilesync Response (PROTOCOLS.md sections 4 and 10.2
        item 7).
        """
        model = self.load_model(FULL_INI)
        bodies = [
            mobile_request(DEMO.address, schema=None),
            mobile_request(None),
            mobile_request(DEMO.address).replace(b"</Autodiscover>",
                                                 b"<Request/></Autodiscover>"),
        ]
        for body in bodies:
            response = self.mobile_response(self.reply(model, DEMO, body).body)
            self.assertEqual(response.xpath("m:Error/m:ErrorCode/text()", namespaces=NS),
                             ["600"], body)
            self.assertEqual(response.xpath("m:Error/m:Message/text()", namespaces=NS),
                             ["Invalid Request"], body)

    def test_unknown_schema(self) -> None:
        """
        A mobilesync-namespace request asking for any other schema gets
        ErrorCode 601 in a mobilesync Response (PROTOCOLS.md section 4:
        anything else -> 601; the response namespace follows the request).
        """
        model = self.load_model(FULL_INI)
        for schema in ("urn:example:nothing",
                       "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/"
                       "responseschema/2099"):
            response = self.mobile_response(
                self.reply(model, DEMO, mobile_request(DEMO.address, schema)).body)
            self.assertEqual(response.xpath("m:Error/m:ErrorCode/text()", namespaces=NS),
                             ["601"], schema)

    def test_another_users_address(self) -> None:
        """
        Asking about someone else's mailbox gets Action/Error with Status 2
        (MS-ASCMD 4.2.2), never that user's settings (PROTOCOLS.md section
        10.2 item 4).
        """
        model = self.load_model(FULL_INI)
        for address in ("other@example.test", "demo@elsewhere.example"):
            output = self.reply(model, DEMO, mobile_request(address)).body
            response = self.mobile_response(output)
            self.assertEqual(response.xpath("m:Action/m:Error/m:Status/text()",
                                            namespaces=NS), ["2"], address)
            self.assertEqual(response.xpath("m:Action/m:Settings", namespaces=NS), [])
            self.assertNotIn(address.encode(), output)


class AutodiscoverV2Tests(FormatTestCase):
    """
    L{answer_v2}: Autodiscover v2 JSON (PROTOCOLS.md section 5; SECURITY.md
    section 3.3; PROTOCOLS.md section 10.2 item 5).
    """

    def setUp(self) -> None:
        self.model = self.load_model(MULTI_INI, MULTI_PASSWD)

    def answer(self, email: str | None, protocol: str | None) -> tuple[int, dict[str, str]]:
        reply = answer_v2(self.model, email, protocol)
        document = json.loads(reply.body.decode("utf-8"))
        self.assertIsInstance(document, dict)
        return reply.status, document

    def assertInvalidProtocol(self, status: int, document: dict[str, str]) -> list[str]:
        """
        The Office 365 style InvalidProtocol error; return the supported
        values it lists.
        """
        self.assertEqual(status, 400)
        self.assertEqual(set(document), {"ErrorCode", "ErrorMessage"})
        self.assertEqual(document["ErrorCode"], "InvalidProtocol")
        match = re.search(r"Supported values are '([^']*)'$", document["ErrorMessage"])
        self.assertIsNotNone(match, document["ErrorMessage"])
        return match.group(1).split(",")

    def test_answered_protocols(self) -> None:
        """
        ActiveSync, Ews and AutodiscoverV1 are answered with exactly
        Protocol and Url; AutodiscoverV1 is the domain's POX endpoint
        (PROTOCOLS.md section 5).
        """
        expected = {
            "ActiveSync": "https://mail.example.org/Microsoft-Server-ActiveSync",
            "Ews": "https://mail.example.org/EWS/Exchange.asmx",
            "AutodiscoverV1": "https://mail.example.org:8443/autodiscover/autodiscover.xml",
        }
        for protocol, url in expected.items():
            self.assertEqual(self.answer("demo@example.org", protocol),
                             (200, {"Protocol": protocol, "Url": url}))

    def test_protocol_case_insensitive(self) -> None:
        """
        Protocol values match in any letter case: Outlook sends
        Autodiscoverv1, Apple EWS (PROTOCOLS.md section 5); the answer uses
        the canonical spelling.
        """
        cases = {
            "Autodiscoverv1": ("AutodiscoverV1",
                               "https://mail.example.test:8443/autodiscover/autodiscover.xml"),
            "AUTODISCOVERV1": ("AutodiscoverV1",
                               "https://mail.example.test:8443/autodiscover/autodiscover.xml"),
            "EWS": ("Ews", "https://mail.example.test/EWS/Exchange.asmx"),
            "ews": ("Ews", "https://mail.example.test/EWS/Exchange.asmx"),
        }
        for sent, (spelling, url) in cases.items():
            self.assertEqual(self.answer("demo@example.test", sent),
                             (200, {"Protocol": spelling, "Url": url}), sent)
        self.assertEqual(self.answer("demo@example.org", "activesync"),
                         (200, {"Protocol": "ActiveSync",
                                "Url": "https://mail.example.org/Microsoft-Server-ActiveSync"}))

    def test_unknown_protocol(self) -> None:
        """
        An unknown protocol value gets 400 InvalidProtocol naming the value
        and listing the values offered to that domain (PROTOCOLS.md section 5).
        """
        for protocol in ("Rest", "Substrate", "", None):
            status, document = self.answer("demo@example.org", protocol)
            offered = self.assertInvalidProtocol(status, document)
            self.assertEqual(sorted(offered), ["ActiveSync", "AutodiscoverV1", "Ews"])
            self.assertIn(f"'{protocol or ''}' is invalid", document["ErrorMessage"])

    def test_protocol_not_configured_for_domain(self) -> None:
        """
        ActiveSync for a domain without an ActiveSync URL is 400
        InvalidProtocol, and ActiveSync is not among the values offered
        (PROTOCOLS.md section 5: only what is really offered).
        """
        offered = self.assertInvalidProtocol(*self.answer("demo@example.test", "ActiveSync"))
        self.assertEqual(sorted(offered), ["AutodiscoverV1", "Ews"])

    def test_existing_and_unknown_addresses_identical(self) -> None:
        """
        An address that exists and one that does not, of the same served
        domain, get byte-identical status and body, for answered and refused
        protocols alike (PROTOCOLS.md section 10.2 item 5, SECURITY.md 3.3).
        """
        for protocol in ("ActiveSync", "Ews", "AutodiscoverV1", "Rest"):
            for existing, unknown in (("demo@example.org", "nobody@example.org"),
                                      ("demo@example.test", "nobody@example.test"),
                                      ("moved@example.test", "Nobody2@EXAMPLE.test")):
                self.assertEqual(answer_v2(self.model, existing, protocol),
                                 answer_v2(self.model, unknown, protocol),
                                 (existing, protocol))

    def test_unserved_domains_identical(self) -> None:
        """
        Unserved domains always get the same 404 body, whatever the
        address or protocol (PROTOCOLS.md section 10.2 item 5, SECURITY.md
        section 3.3; issue 3 section 3).
        """
        replies = {answer_v2(self.model, email, protocol)
                   for email in ("demo@elsewhere.example", "x@partner.example",
                                 "demo@sub.example.test", "a@b.c")
                   for protocol in ("ActiveSync", "Ews", "Rest", None)}
        self.assertEqual(len(replies), 1, replies)
        [reply] = replies
        self.assertEqual(reply.status, 404)
        document = json.loads(reply.body)
        self.assertEqual(set(document), {"ErrorCode", "ErrorMessage"})
        self.assertNotIn("elsewhere", reply.body.decode())

    def test_invalid_email(self) -> None:
        """
        A missing or malformed address gets 400 with a JSON error
        (PROTOCOLS.md section 5).
        """
        for email in (None, "", "demo", "demo@", "@example.test", "de mo@example.test",
                      "a" * 400 + "@example.test", "demo@exa mple.test"):
            status, document = self.answer(email, "Ews")
            self.assertEqual(status, 400, email)
            self.assertEqual(set(document), {"ErrorCode", "ErrorMessage"}, email)
            self.assertNotEqual(document["ErrorCode"], "InvalidProtocol", email)

    def test_long_protocol_truncated(self) -> None:
        """
        A very long protocol value is truncated in the message, and the body
        stays valid, small JSON (PROTOCOLS.md sections 5 and 10.2 item 8).
        """
        protocol = "P" * 100000
        reply = answer_v2(self.model, "demo@example.test", protocol)
        self.assertLess(len(reply.body), 1024)
        status, document = self.answer("demo@example.test", protocol)
        self.assertInvalidProtocol(status, document)
        shown = re.search(r"value '([^']*)' is invalid", document["ErrorMessage"]).group(1)
        self.assertTrue(protocol.startswith(shown))
        self.assertLess(len(shown), 200)

    def test_protocol_value_escaped(self) -> None:
        """
        Quotes, backslashes and control characters in the protocol value are
        JSON-escaped: the body parses and round-trips the value (PROTOCOLS.md
        section 10.2 item 8: a serializer, never string formatting).
        """
        protocol = 'a"b\\c\n\r\t\x00\x1f\u2028</script>'
        reply = answer_v2(self.model, "demo@example.test", protocol)
        for raw in (b"\n", b"\r", b"\t", b"\x00", b"\x1f"):
            self.assertNotIn(raw, reply.body)
        status, document = self.answer("demo@example.test", protocol)
        self.assertInvalidProtocol(status, document)
        self.assertIn(f"'{protocol}' is invalid", document["ErrorMessage"])
