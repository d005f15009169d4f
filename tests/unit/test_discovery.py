"""
Unit tests for L{smartdiscover.discovery}: the Outlook POX answers
(PROTOCOLS.md section 2, client constraints in section 11) and the hardened
request parser (SECURITY.md sections 3.3 and 5).

Documents are checked by parsing them with lxml and looking at elements and
namespaces, never by comparing whole documents as strings.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import ConfigError, Model, load
from smartdiscover.discovery.answer import answer_autodiscover
from smartdiscover.discovery import mobilesync, outlook
from smartdiscover.discovery.outlook import render_error, render_settings
from smartdiscover.discovery.splice import UserTemplates
from smartdiscover.config.principal import Principal
from smartdiscover.discovery.request import CACHED_BODY_SIZE, InvalidRequest, parse_request
from tests.helpers import CORE_INI, DEMO_HASH, MINIMAL_INI, edit, write_config

# Namespaces spelled out here, independently of the code under test.
RESPONSE_2006 = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
RESPONSE_2006A = ("http://schemas.microsoft.com/exchange/autodiscover/outlook/"
                  "responseschema/2006a")
REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
MOBILESYNC_REQUEST = ("http://schemas.microsoft.com/exchange/autodiscover/mobilesync/"
                      "requestschema/2006")
MOBILESYNC_RESPONSE = ("http://schemas.microsoft.com/exchange/autodiscover/mobilesync/"
                       "responseschema/2006")
NS = {"r": RESPONSE_2006, "a": RESPONSE_2006A}

NOW = datetime(2025, 3, 4, 21, 25, 4, 889708, tzinfo=timezone.utc)
SERVER = "mail.example.test"
PRINCIPAL = Principal("demo@example.test", "Demo User")
EWS_URL = "https://mail.example.test/EWS/Exchange.asmx"
WEBCLIENT_URL = "https://mail.example.test/webmail/"
LEGACY_DN_PREFIX = ("/o=Example/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
                    "/cn=Recipients/cn=")

# A parser for reading our own output; it never fetches or expands anything.
READER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def make_ini(services: str, ttl: int = 1, auth: str = "") -> str:
    """
    MINIMAL_INI's [server] and [auth] sections (with C{ttl} and extra
    C{auth} keys) followed by C{services}.
    """
    head = edit("ttl = 1\n", f"ttl = {ttl}\n", CORE_INI)
    if auth:
        head = edit("passwd_file = users.passwd\n", f"passwd_file = users.passwd\n{auth}\n",
                    head)
    return head + services


def request(email: str | None = "demo@example.test", legacy_dn: str | None = None,
            schema: str | None = RESPONSE_2006A, namespace: str = REQUEST_NS,
            extra: str = "", encoding: str = "utf-8") -> bytes:
    """
    An Autodiscover request body (PROTOCOLS.md section 2.3).  Values are
    inserted as raw XML, so callers escape what needs escaping.
    """
    fields = ""
    if email is not None:
        fields += f"<EMailAddress>{email}</EMailAddress>"
    if legacy_dn is not None:
        fields += f"<LegacyDN>{legacy_dn}</LegacyDN>"
    fields += extra
    if schema is not None:
        fields += f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema>"
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
            f'<Autodiscover xmlns="{namespace}"><Request>{fields}</Request></Autodiscover>')
    return text.encode(encoding)


class DocumentAssertions(SynchronousTestCase):
    """
    Loading models and reading Autodiscover answers.
    """

    def load_model(self, ini: str = MINIMAL_INI, passwd: str | None = None) -> Model:
        return load(write_config(self.mktemp(), ini, passwd))

    def answer(self, body: bytes | None, model: Model | None = None,
               principal: Principal = PRINCIPAL) -> bytes:
        if model is None:
            model = self.load_model()
        return answer_autodiscover(model, principal, body, NOW).body

    def read(self, output: bytes) -> etree._Element:
        """
        Parse C{output}, which must start with C{<?xml} (PROTOCOLS.md
        section 11.1: exchangelib accepts nothing else) and have the 2006
        Autodiscover root.
        """
        self.assertIsInstance(output, bytes)
        self.assertEqual(output[:5], b"<?xml")
        root = etree.fromstring(output, READER)
        self.assertEqual(root.getroottree().docinfo.encoding.lower(), "utf-8")
        self.assertEqual(root.tag, f"{{{RESPONSE_2006}}}Autodiscover")
        return root

    def assertSettings(self, output: bytes,
                       principal: Principal = PRINCIPAL) -> etree._Element:
        """
        C{output} is a settings document for C{principal} (PROTOCOLS.md
        sections 2.4-2.6); return its 2006a Response.
        """
        root = self.read(output)
        responses = list(root)
        self.assertEqual([r.tag for r in responses], [f"{{{RESPONSE_2006A}}}Response"])
        response = responses[0]
        self.assertEqual(response.xpath("a:User/a:AutoDiscoverSMTPAddress/text()",
                                        namespaces=NS), [principal.address])
        self.assertEqual(response.xpath("a:Account/a:Action/text()", namespaces=NS),
                         ["settings"])
        return response

    def assertError(self, output: bytes, code: int) -> etree._Element:
        """
        C{output} is an Error document with C{code}, shaped the way real
        Exchange sends it (PROTOCOLS.md sections 2.8 and 11.1): Error
        directly under a 2006-namespace Response; return the Error element.
        """
        root = self.read(output)
        self.assertEqual([e.tag for e in root], [f"{{{RESPONSE_2006}}}Response"])
        response = root[0]
        self.assertEqual([e.tag for e in response], [f"{{{RESPONSE_2006}}}Error"])
        error = response[0]
        self.assertEqual(error.xpath("r:ErrorCode/text()", namespaces=NS), [str(code)])
        self.assertTrue(error.xpath("r:Message/text()", namespaces=NS))
        self.assertRegex(error.get("Time", ""), r"^\d{2}:\d{2}:\d{2}\.\d{7}$")
        self.assertRegex(error.get("Id", ""), r"^\d+$")
        # exchangelib crashes on anything of the 2006a schema in an Error document.
        self.assertEqual(root.xpath("//a:*", namespaces=NS), [])
        return error

    def protocols(self, response: etree._Element) -> list[etree._Element]:
        return response.xpath("a:Account/a:Protocol", namespaces=NS)

    def protocol(self, response: etree._Element, pox_type: str) -> etree._Element:
        found = response.xpath("a:Account/a:Protocol[a:Type=$t]", namespaces=NS, t=pox_type)
        self.assertEqual(len(found), 1, f"exactly one {pox_type} Protocol")
        return found[0]

    def field(self, protocol: etree._Element, name: str) -> str | None:
        values = protocol.xpath(f"a:{name}/text()", namespaces=NS)
        self.assertLessEqual(len(values), 1, f"{name} appears more than once")
        return values[0] if values else None


class SettingsDocumentTests(DocumentAssertions):
    """
    The settings document (PROTOCOLS.md sections 2.4-2.7 and 2.10).
    """

    def settings(self, ini: str = MINIMAL_INI,
                 principal: Principal = PRINCIPAL) -> etree._Element:
        model = self.load_model(ini)
        output = render_settings(model.catalogue_for(principal.domain), principal)
        return self.assertSettings(output, principal)

    def test_declarationIsTheFirstBytes(self) -> None:
        """
        The answer starts with C{<?xml} exactly: no BOM, no whitespace
        (PROTOCOLS.md sections 11.1 and 12).
        """
        model = self.load_model()
        output = render_settings(model.catalogue, PRINCIPAL)
        self.assertTrue(output.startswith(b"<?xml"), output[:20])
        self.read(output)

    def test_envelope(self) -> None:
        """
        The root is the generic 2006 Autodiscover holding exactly one
        Response of the outlook 2006a schema, with User and Account
        (PROTOCOLS.md section 2.4).
        """
        response = self.settings()
        self.assertEqual([etree.QName(e).localname for e in response], ["User", "Account"])
        for element in response.iter(etree.Element):
            self.assertEqual(etree.QName(element).namespace, RESPONSE_2006A, element.tag)

    def test_user(self) -> None:
        """
        User carries DisplayName and AutoDiscoverSMTPAddress of the
        principal (PROTOCOLS.md section 2.5).
        """
        response = self.settings()
        self.assertEqual(response.xpath("a:User/a:DisplayName/text()", namespaces=NS),
                         ["Demo User"])
        self.assertEqual(response.xpath("a:User/a:AutoDiscoverSMTPAddress/text()",
                                        namespaces=NS), ["demo@example.test"])

    def test_userWithoutDisplayName(self) -> None:
        """
        A principal the store has no name for still gets a DisplayName: its
        address (PROTOCOLS.md section 2.5).
        """
        response = self.settings(principal=Principal("demo@example.test"))
        self.assertEqual(response.xpath("a:User/a:DisplayName/text()", namespaces=NS),
                         ["demo@example.test"])

    def test_displayNameEscaped(self) -> None:
        """
        Markup in a display name is escaped by lxml, not interpreted
        (SECURITY.md sections 3.3 and 5: replies are built with lxml).
        """
        name = 'Eve <b>"&amp;"</b> ]]> &'
        response = self.settings(principal=Principal("demo@example.test", name))
        self.assertEqual(response.xpath("a:User/a:DisplayName/text()", namespaces=NS),
                         [name])
        self.assertEqual(response.xpath("a:User/a:DisplayName/*", namespaces=NS), [])

    def test_displayNameWithControlCharacters(self) -> None:
        """
        A password-file display name holding characters XML cannot carry
        (here U+0001) is either refused when the file is loaded or does not
        stop the user from getting settings: it never makes the answer raise
        (PROTOCOLS.md section 2.5; SECURITY.md section 9, 0 unhandled
        exceptions).
        """
        passwd = f"demo@example.test:{DEMO_HASH}:::Demo\x01User\n"
        try:
            model = self.load_model(passwd=passwd)
        except ConfigError:
            return
        user = model.users["demo@example.test"]
        principal = Principal(user.address, user.display_name)
        self.assertSettings(self.answer(None, model, principal), principal)

    def test_account(self) -> None:
        """
        Account says AccountType email and Action settings, with no redirect
        element (PROTOCOLS.md section 2.6).
        """
        response = self.settings()
        self.assertEqual(response.xpath("a:Account/a:AccountType/text()", namespaces=NS),
                         ["email"])
        self.assertEqual(response.xpath("a:Account/a:Action/text()", namespaces=NS),
                         ["settings"])
        self.assertEqual(response.xpath("a:Account/a:RedirectUrl | a:Account/a:RedirectURL"
                                        " | a:Account/a:RedirectAddr", namespaces=NS), [])

    def test_protocolOrder(self) -> None:
        """
        Protocols come in the server's order of preference IMAP, POP3, SMTP,
        EXPR, WEB (PROTOCOLS.md sections 2.6 and 2.10), whatever the order of
        the INI sections.
        """
        ini = make_ini("[urls]\nwebclient = https://mail.example.test/webmail/\n"
                       "ews = https://mail.example.test/EWS/Exchange.asmx\n"
                       "[smtp]\nsecurity = starttls\n[pop3]\n[imap]\n")
        response = self.settings(ini)
        types = [self.field(p, "Type") for p in self.protocols(response)]
        self.assertEqual(types, ["IMAP", "POP3", "SMTP", "EXPR", "WEB"])

    def test_securityModes(self) -> None:
        """
        For IMAP, POP3 and SMTP each security mode maps to SSL and Encryption
        (ssl: on/SSL, starttls: on/TLS, none: off/None), always next to SPA
        off, DomainRequired off, AuthRequired on, LoginName = the address,
        the service's Server and Port and the configured TTL (PROTOCOLS.md
        section 2.7: SPA and SSL default to on when omitted).
        """
        modes = {"ssl": ("on", "SSL"), "starttls": ("on", "TLS"), "none": ("off", "None")}
        ports = {("IMAP", "ssl"): "993", ("IMAP", "starttls"): "143", ("IMAP", "none"): "143",
                 ("POP3", "ssl"): "995", ("POP3", "starttls"): "110", ("POP3", "none"): "110",
                 ("SMTP", "ssl"): "465", ("SMTP", "starttls"): "587", ("SMTP", "none"): "587"}
        for mode, (ssl, encryption) in modes.items():
            ini = make_ini(f"[imap]\nhost = imap.example.test\nsecurity = {mode}\n"
                           f"[pop3]\nhost = pop.example.test\nsecurity = {mode}\n"
                           f"[smtp]\nhost = smtp.example.test\nsecurity = {mode}\n",
                           ttl=24)
            response = self.settings(ini)
            for pox_type, host in (("IMAP", "imap.example.test"), ("POP3", "pop.example.test"),
                                   ("SMTP", "smtp.example.test")):
                where = f"{pox_type} with security {mode}"
                protocol = self.protocol(response, pox_type)
                self.assertEqual(self.field(protocol, "SSL"), ssl, where)
                self.assertEqual(self.field(protocol, "Encryption"), encryption, where)
                self.assertEqual(self.field(protocol, "SPA"), "off", where)
                self.assertEqual(self.field(protocol, "DomainRequired"), "off", where)
                self.assertEqual(self.field(protocol, "AuthRequired"), "on", where)
                self.assertEqual(self.field(protocol, "LoginName"), "demo@example.test", where)
                self.assertEqual(self.field(protocol, "Server"), host, where)
                self.assertEqual(self.field(protocol, "Port"), ports[pox_type, mode], where)
                self.assertEqual(self.field(protocol, "TTL"), "24", where)

    def test_configuredPortsAndHosts(self) -> None:
        """
        Server and Port are the configured ones (PROTOCOLS.md section 2.7):
        MINIMAL_INI gives IMAP 993, POP3 110 and SMTP 587 on
        mail.example.test; an explicit port wins over the default.
        """
        response = self.settings()
        for pox_type, port in (("IMAP", "993"), ("POP3", "110"), ("SMTP", "587")):
            protocol = self.protocol(response, pox_type)
            self.assertEqual(self.field(protocol, "Server"), "mail.example.test")
            self.assertEqual(self.field(protocol, "Port"), port, pox_type)
        ini = make_ini("[imap]\nhost = imap.example.test\nport = 10993\n")
        imap = self.protocol(self.settings(ini), "IMAP")
        self.assertEqual(self.field(imap, "Server"), "imap.example.test")
        self.assertEqual(self.field(imap, "Port"), "10993")

    def test_loginNameIsTheAddressAsStored(self) -> None:
        """
        LoginName is the principal's full address as the user store spells
        it, not just the local part (PROTOCOLS.md sections 2.7 and 2.10).
        """
        principal = Principal("Demo.User@Example.Test", "Demo")
        response = self.settings(principal=principal)
        for pox_type in ("IMAP", "POP3", "SMTP"):
            self.assertEqual(self.field(self.protocol(response, pox_type), "LoginName"),
                             "Demo.User@Example.Test")

    def test_smtpFields(self) -> None:
        """
        SMTP has UsePOPAuth on and SMTPLast off; those SMTP-only fields are
        absent from IMAP and POP3 (PROTOCOLS.md section 2.7).
        """
        response = self.settings()
        smtp = self.protocol(response, "SMTP")
        self.assertEqual(self.field(smtp, "UsePOPAuth"), "on")
        self.assertEqual(self.field(smtp, "SMTPLast"), "off")
        for pox_type in ("IMAP", "POP3"):
            protocol = self.protocol(response, pox_type)
            self.assertIsNone(self.field(protocol, "UsePOPAuth"), pox_type)
            self.assertIsNone(self.field(protocol, "SMTPLast"), pox_type)

    def test_ttl(self) -> None:
        """
        TTL is the configured number of hours, 0 included (PROTOCOLS.md
        section 2.7: 0 means no re-discovery needed).
        """
        response = self.settings(make_ini("[imap]\n", ttl=0))
        self.assertEqual(self.field(self.protocol(response, "IMAP"), "TTL"), "0")

    def test_exprWithEws(self) -> None:
        """
        With [urls] ews set, an EXPR Protocol carries both EwsUrl (read by
        exchangelib) and ASUrl (read by evolution-ews), with AuthPackage
        basic (PROTOCOLS.md sections 2.10, 11.1 and 11.2).
        """
        expr = self.protocol(self.settings(), "EXPR")
        self.assertEqual(self.field(expr, "EwsUrl"), EWS_URL)
        self.assertEqual(self.field(expr, "ASUrl"), EWS_URL)
        self.assertEqual(self.field(expr, "AuthPackage"), "basic")

    def test_noExprWithoutEws(self) -> None:
        """
        Without [urls] ews there is no EXPR Protocol and no EwsUrl or ASUrl
        anywhere (PROTOCOLS.md section 2.10: the EWS block only where EWS is
        really offered).
        """
        ini = make_ini("[imap]\n[urls]\nwebclient = https://mail.example.test/webmail/\n")
        response = self.settings(ini)
        types = [self.field(p, "Type") for p in self.protocols(response)]
        self.assertEqual(types, ["IMAP", "WEB"])
        self.assertEqual(response.xpath("//a:EwsUrl | //a:ASUrl", namespaces=NS), [])

    def test_web(self) -> None:
        """
        With [urls] webclient set, a WEB Protocol gives the URL as
        External/OWAUrl with an AuthenticationMethod (PROTOCOLS.md sections
        2.7 and 2.10).
        """
        web = self.protocol(self.settings(), "WEB")
        owa = web.xpath("a:External/a:OWAUrl", namespaces=NS)
        self.assertEqual([e.text for e in owa], [WEBCLIENT_URL])
        self.assertIn("Basic", owa[0].get("AuthenticationMethod", ""))

    def test_noWebWithoutWebclient(self) -> None:
        """
        Without [urls] webclient there is no WEB Protocol (PROTOCOLS.md
        section 2.10).
        """
        ini = make_ini("[imap]\n[urls]\news = https://mail.example.test/EWS/Exchange.asmx\n")
        types = [self.field(p, "Type") for p in self.protocols(self.settings(ini))]
        self.assertEqual(types, ["IMAP", "EXPR"])

    def test_onlyImap(self) -> None:
        """
        A configuration that offers only IMAP yields exactly one Protocol,
        of Type IMAP (PROTOCOLS.md section 2.6: Protocols for offered
        services only).
        """
        response = self.settings(make_ini("[imap]\nsecurity = ssl\n"))
        self.assertEqual([self.field(p, "Type") for p in self.protocols(response)], ["IMAP"])


class ErrorDocumentTests(DocumentAssertions):
    """
    Error documents (PROTOCOLS.md section 2.8) from L{render_error}.
    """

    def test_envelope(self) -> None:
        """
        Error sits directly under a Response of the generic 2006 namespace
        (not 2006a) with ErrorCode, Message and DebugData (PROTOCOLS.md
        sections 2.4, 2.8 and 11.1).
        """
        error = self.assertError(render_error(600, SERVER, NOW), 600)
        self.assertEqual([etree.QName(e).localname for e in error],
                         ["ErrorCode", "Message", "DebugData"])

    def test_declarationIsTheFirstBytes(self) -> None:
        """
        Error documents also start with C{<?xml} exactly (PROTOCOLS.md
        section 11.1).
        """
        self.assertEqual(render_error(500, SERVER, NOW)[:5], b"<?xml")

    def test_time(self) -> None:
        """
        The Time attribute is the given time as HH:MM:SS.fffffff, seven
        fractional digits like Exchange (PROTOCOLS.md sections 2.8 and 12).
        """
        error = self.assertError(render_error(600, SERVER, NOW), 600)
        self.assertEqual(error.get("Time"), "21:25:04.8897080")

    def test_id(self) -> None:
        """
        The Id attribute is a decimal hash of the server name: the same for
        the same server at any time, different for another server
        (PROTOCOLS.md sections 2.8 and 12).
        """
        first = self.assertError(render_error(600, SERVER, NOW), 600).get("Id")
        later = datetime(2026, 1, 1, tzinfo=timezone.utc)
        second = self.assertError(render_error(500, SERVER, later), 500).get("Id")
        other = self.assertError(render_error(600, "other.example.test", NOW), 600).get("Id")
        self.assertRegex(first, r"^[0-9]+$")
        self.assertEqual(first, second)
        self.assertNotEqual(first, other)

    def test_messages(self) -> None:
        """
        ErrorCode 500 says "The e-mail address cannot be found." (the text
        exchangelib maps to "mailbox does not exist") and 600 says "Invalid
        Request" (PROTOCOLS.md section 2.8).
        """
        for code, message in ((500, "The e-mail address cannot be found."),
                              (600, "Invalid Request")):
            error = self.assertError(render_error(code, SERVER, NOW), code)
            self.assertEqual(error.xpath("r:Message/text()", namespaces=NS), [message])


class AnswerTests(DocumentAssertions):
    """
    L{answer_autodiscover}: which request gets settings and which an Error
    (PROTOCOLS.md sections 2.1, 2.3 and 2.8; SECURITY.md section 3.3).
    """

    def test_ownAddress(self) -> None:
        """
        A well-formed request for the principal's own address gets its
        settings (PROTOCOLS.md section 2.9: User and Account).
        """
        self.assertSettings(self.answer(request()))

    def test_malformedXml(self) -> None:
        """
        A body that is not well-formed XML gets ErrorCode 600 (PROTOCOLS.md
        section 2.8).
        """
        self.assertError(self.answer(b"<Autodiscover><Request>"), 600)
        self.assertError(self.answer(b"not xml at all"), 600)

    def test_errorCarriesServerId(self) -> None:
        """
        Errors from L{answer_autodiscover} carry the Time of the given clock
        and the Id of the configured public host name (PROTOCOLS.md section
        2.8).
        """
        error = self.assertError(self.answer(b"<x"), 600)
        self.assertEqual(error.get("Time"), "21:25:04.8897080")
        expected = self.assertError(render_error(600, SERVER, NOW), 600).get("Id")
        self.assertEqual(error.get("Id"), expected)

    def test_mobilesyncSchemaWithoutActiveSync(self) -> None:
        """
        A mobilesync AcceptableResponseSchema gets a mobilesync answer; with
        no ActiveSync URL configured that is ErrorCode 601 in a mobilesync
        Response (PROTOCOLS.md section 4).
        """
        body = request(namespace=MOBILESYNC_REQUEST, schema=MOBILESYNC_RESPONSE)
        root = etree.fromstring(self.answer(body))
        [response] = root
        self.assertEqual(response.tag, f"{{{MOBILESYNC_RESPONSE}}}Response")
        self.assertEqual(response.findtext(f"{{{MOBILESYNC_RESPONSE}}}Error/"
                                           f"{{{MOBILESYNC_RESPONSE}}}ErrorCode"), "601")

    def test_unknownSchema(self) -> None:
        """
        An unknown AcceptableResponseSchema gets ErrorCode 601, the older
        outlook 2006 schema included (PROTOCOLS.md sections 2.3 and 2.8;
        SECURITY.md section 5).
        """
        for schema in ("urn:example:nothing",
                       "http://schemas.microsoft.com/exchange/autodiscover/outlook/"
                       "responseschema/2006"):
            self.assertError(self.answer(request(schema=schema)), 601)

    def test_otherUser(self) -> None:
        """
        An EMailAddress naming another mailbox gets ErrorCode 500, never
        that user's settings nor the principal's (SECURITY.md section 3.3).
        """
        output = self.answer(request("other@example.test"))
        self.assertError(output, 500)
        self.assertNotIn(b"other@example.test", output)
        self.assertError(self.answer(request("demo@other.test")), 500)

    def test_unparsableAddress(self) -> None:
        """
        An EMailAddress that is not an address at all gets ErrorCode 500
        (SECURITY.md section 3.3: it does not name the principal).
        """
        for address in ("demo", "demo@", "@example.test", "de mo@example.test"):
            self.assertError(self.answer(request(address)), 500)

    def test_legacyDnWinsOverEmailAddress(self) -> None:
        """
        With both fields, LegacyDN decides (MS-OXDSCLI 3.2.5, PROTOCOLS.md
        section 2.3): the principal's LegacyDN with someone else's
        EMailAddress gets settings, the reverse ErrorCode 500.
        """
        mine = request("other@example.test", LEGACY_DN_PREFIX + "demo")
        self.assertSettings(self.answer(mine))
        theirs = request("demo@example.test", LEGACY_DN_PREFIX + "other")
        self.assertError(self.answer(theirs), 500)

    def test_legacyDnOnly(self) -> None:
        """
        A LegacyDN alone whose last /cn= is the principal's local part or
        full address is accepted (PROTOCOLS.md section 2.3).
        """
        for cn in ("demo", "demo@example.test"):
            self.assertSettings(self.answer(request(None, LEGACY_DN_PREFIX + cn)))
        self.assertSettings(self.answer(request(None, "/o=Example/cn=demo")))

    def test_legacyDnOfAnotherMailbox(self) -> None:
        """
        A LegacyDN whose last /cn= names another mailbox, or that has no
        /cn= at all, gets ErrorCode 500 (SECURITY.md section 3.3).
        """
        for dn in (LEGACY_DN_PREFIX + "other", LEGACY_DN_PREFIX + "demo@other.test",
                   LEGACY_DN_PREFIX + "demo/cn=other", "/o=Example/ou=Recipients"):
            self.assertError(self.answer(request(None, dn)), 500)

    def test_legacyDnCaseInsensitive(self) -> None:
        """
        By default a LegacyDN's /cn= is compared case-insensitively
        (PROTOCOLS.md section 11.4).
        """
        for cn in ("DEMO", "Demo@EXAMPLE.test"):
            self.assertSettings(self.answer(request(None, LEGACY_DN_PREFIX + cn)))
        upper = request(None, LEGACY_DN_PREFIX.upper() + "demo")
        self.assertSettings(self.answer(upper))

    def test_legacyDnAddressDomainCaseInsensitive(self) -> None:
        """
        Even with case-sensitive local parts, the domain of an address in a
        LegacyDN's /cn= is compared case-insensitively, like every other
        address (PROTOCOLS.md section 11.4), while its local part keeps its
        case.
        """
        model = self.load_model(make_ini("[imap]\n", auth="case_sensitive_local = yes"))
        self.assertSettings(
            self.answer(request(None, LEGACY_DN_PREFIX + "demo@EXAMPLE.TEST"), model))
        self.assertError(
            self.answer(request(None, LEGACY_DN_PREFIX + "DEMO@example.test"), model), 500)

    def test_addressCaseInsensitive(self) -> None:
        """
        By default EMailAddress matches the principal whatever the case of
        its domain and local part (PROTOCOLS.md section 11.4; automx2
        answered 204 to alice@EXAMPLE.COM).
        """
        for address in ("DEMO@EXAMPLE.TEST", "Demo@Example.Test", "demo@example.test."):
            self.assertSettings(self.answer(request(address)))

    def test_caseSensitiveLocalPart(self) -> None:
        """
        With [auth] case_sensitive_local = yes the local part must match
        exactly, the domain still case-insensitively (PROTOCOLS.md section
        11.4).
        """
        model = self.load_model(make_ini("[imap]\n", auth="case_sensitive_local = yes"))
        self.assertError(self.answer(request("DEMO@example.test"), model), 500)
        self.assertSettings(self.answer(request("demo@EXAMPLE.TEST"), model))

    def test_httpsNamespaceTolerated(self) -> None:
        """
        https:// spellings of the request namespace and of the response
        schema, as printed on Microsoft's pages, are accepted (PROTOCOLS.md
        section 2.3).
        """
        body = request(namespace=REQUEST_NS.replace("http://", "https://"),
                       schema=RESPONSE_2006A.replace("http://", "https://"))
        self.assertSettings(self.answer(body))

    def test_emptyBody(self) -> None:
        """
        An empty (or whitespace-only) POST body asks about the
        authenticated principal (PROTOCOLS.md section 2.1).
        """
        for body in (b"", b"  \r\n\t"):
            self.assertSettings(self.answer(body))

    def test_get(self) -> None:
        """
        A GET (body C{None}) is answered for the authenticated principal,
        as mobile apps expect (PROTOCOLS.md sections 2.1 and 11.4).
        """
        self.assertSettings(self.answer(None))

    def test_settingsAreThePrincipals(self) -> None:
        """
        The settings answered are built for the principal in the model's
        catalogue (PROTOCOLS.md section 2.5): its address and display name.
        """
        principal = Principal("Other.User@Example.Test", "Other User")
        response = self.assertSettings(
            self.answer(request("other.user@example.test"), principal=principal), principal)
        self.assertEqual(response.xpath("a:User/a:DisplayName/text()", namespaces=NS),
                         ["Other User"])

    def test_encodingDeclarationAccepted(self) -> None:
        """
        Raw bytes with an encoding declaration, as real Outlook sends, are
        parsed, ISO-8859-1 included (PROTOCOLS.md section 2.3: lxml refuses
        a str with a declaration, which broke other servers).
        """
        self.assertSettings(self.answer(request(encoding="utf-8")))
        self.assertSettings(self.answer(request(encoding="iso-8859-1")))
        principal = Principal("j\u00f6rg@example.test")
        body = request("J\u00d6RG@example.test", encoding="iso-8859-1")
        self.assertSettings(self.answer(body, principal=principal), principal)


class HostileBodyTests(DocumentAssertions):
    """
    Hostile request bodies (SECURITY.md section 5): each gets ErrorCode 600
    (with the document shape of PROTOCOLS.md section 2.8), nothing is
    fetched, and no file content reaches the answer.
    """

    def setUp(self) -> None:
        self.model = self.load_model()
        secret = Path(self.mktemp())
        secret.parent.mkdir(parents=True, exist_ok=True)
        self.secret = b"TOP-SECRET-8f41c2"
        secret.write_bytes(self.secret + b"\n")
        self.secret_uri = secret.absolute().as_uri()

    def assertRejected(self, body: bytes, code: int = 600) -> bytes:
        output = self.answer(body, self.model)
        self.assertError(output, code)
        self.assertNotIn(self.secret, output)
        return output

    def listener(self) -> socket.socket:
        """
        A listening loopback socket; L{assertNoConnection} says whether
        anything connected to it.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        return sock

    def assertNoConnection(self, sock: socket.socket) -> None:
        try:
            connection, peer = sock.accept()
        except BlockingIOError:
            return
        connection.close()
        self.fail(f"the parser connected to the DTD listener from {peer}")

    def test_xxeEtcHostname(self) -> None:
        """
        An external general entity on file:///etc/hostname is not resolved
        and the file's content is not in the answer (SECURITY.md section 5).
        """
        body = (b'<?xml version="1.0"?>\n'
                b'<!DOCTYPE Autodiscover [<!ENTITY x SYSTEM "file:///etc/hostname">]>\n'
                + request("&x;").split(b"\n", 1)[1])
        output = self.assertRejected(body)
        try:
            hostname = Path("/etc/hostname").read_bytes().strip()
        except OSError:
            hostname = b""
        if hostname:
            self.assertNotIn(hostname, output)

    def test_xxeLocalFile(self) -> None:
        """
        An external general entity on a file holding a marker is not
        resolved, in EMailAddress or in the schema (SECURITY.md section 5).
        """
        dtd = f'<!DOCTYPE Autodiscover [<!ENTITY x SYSTEM "{self.secret_uri}">]>\n'.encode()
        for body in (request("&x;"), request(schema="&x;"),
                     request(extra="<Foo>&x;</Foo>")):
            head, rest = body.split(b"\n", 1)
            self.assertRejected(head + b"\n" + dtd + rest)

    def test_parameterEntity(self) -> None:
        """
        A parameter entity (%p;) pulling in a local file is not resolved
        (SECURITY.md section 5; lxml before 6.1.3 fetched these).
        """
        body = (f'<?xml version="1.0"?>\n<!DOCTYPE Autodiscover [\n'
                f'<!ENTITY % p SYSTEM "{self.secret_uri}">\n%p;\n'
                f'<!ENTITY % q "<!ENTITY y \'inner\'>">\n%q;\n]>\n').encode()
        self.assertRejected(body + request("&y;").split(b"\n", 1)[1])

    def test_externalDtdNotFetched(self) -> None:
        """
        An external DTD or parameter entity on an http:// URL is never
        fetched: a loopback listener accepts 0 connections (SECURITY.md
        section 5, SSRF).
        """
        sock = self.listener()
        port = sock.getsockname()[1]
        rest = request().split(b"\n", 1)[1]
        bodies = [
            f'<!DOCTYPE Autodiscover SYSTEM "http://127.0.0.1:{port}/x.dtd">\n'.encode() + rest,
            (f'<?xml version="1.0"?>\n<!DOCTYPE Autodiscover PUBLIC "-//X//EN" '
             f'"http://127.0.0.1:{port}/y.dtd">\n').encode() + rest,
            (f'<!DOCTYPE Autodiscover [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd">'
             f' %p;]>\n').encode() + rest,
            (f'<!DOCTYPE Autodiscover [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>\n'
             ).encode() + request("&x;").split(b"\n", 1)[1],
        ]
        for body in bodies:
            self.assertRejected(body)
        self.assertNoConnection(sock)

    def test_doctypeInUtf16(self) -> None:
        """
        DOCTYPE tricks still fail when the body is UTF-16, where a byte
        search for C{<!DOCTYPE} sees nothing: no file content, no
        connection (SECURITY.md section 5: reject any document with a
        DOCTYPE).
        """
        sock = self.listener()
        port = sock.getsockname()[1]
        rest = request().decode().split("\n", 1)[1]
        entity_rest = request("&x;").decode().split("\n", 1)[1]
        declaration = '<?xml version="1.0" encoding="utf-16"?>\n'
        texts = [
            declaration + f'<!DOCTYPE Autodiscover [<!ENTITY x SYSTEM "{self.secret_uri}">]>\n'
            + entity_rest,
            declaration + '<!DOCTYPE Autodiscover [<!ENTITY x "inline">]>\n' + entity_rest,
            declaration + f'<!DOCTYPE Autodiscover SYSTEM "http://127.0.0.1:{port}/x.dtd">\n'
            + rest,
            declaration + f'<!DOCTYPE Autodiscover [<!ENTITY % p SYSTEM '
            f'"http://127.0.0.1:{port}/p.dtd"> %p;]>\n' + rest,
        ]
        for text in texts:
            self.assertRejected(text.encode("utf-16"))
        self.assertNoConnection(sock)

    def test_internalDoctype(self) -> None:
        """
        Even a harmless internal DOCTYPE is refused: Autodiscover never needs
        one (SECURITY.md section 5).
        """
        rest = request().split(b"\n", 1)[1]
        self.assertRejected(b"<!DOCTYPE Autodiscover>\n" + rest)
        self.assertRejected(b'<!doctype Autodiscover [<!ENTITY a "b">]>\n' + rest)

    def test_billionLaughs(self) -> None:
        """
        Billion laughs (10 levels of 10) is refused quickly, without
        expansion (SECURITY.md section 5: < 10 ms; 1 s here for slow CI).
        """
        entities = ['<!ENTITY lol0 "lol">']
        for level in range(1, 10):
            refs = f"&lol{level - 1};" * 10
            entities.append(f'<!ENTITY lol{level} "{refs}">')
        body = ('<?xml version="1.0"?>\n<!DOCTYPE Autodiscover [' + "".join(entities) + "]>\n"
                ).encode() + request("&lol9;").split(b"\n", 1)[1]
        started = time.perf_counter()
        output = self.assertRejected(body)
        self.assertLess(time.perf_counter() - started, 1.0)
        self.assertNotIn(b"lollol", output)

    def test_deepNesting(self) -> None:
        """
        10 000-deep nesting is refused (SECURITY.md section 5).
        """
        self.assertRejected(request(extra="<x>" * 10000 + "</x>" * 10000))
        self.assertRejected(b"<a>" * 10000 + b"</a>" * 10000)

    def test_nestingJustOver32(self) -> None:
        """
        A request nested 33 elements deep, otherwise valid, is refused: no
        Autodiscover request is that deep (SECURITY.md section 5).
        """
        # Autodiscover and Request are levels 1 and 2.
        self.assertRejected(request(extra="<x>" * 31 + "</x>" * 31))

    def test_nestingUpTo32(self) -> None:
        """
        Nesting up to 32 levels is not refused for depth, so harmless
        extension elements keep working (SECURITY.md section 5).
        """
        self.assertSettings(self.answer(request(extra="<x>" * 30 + "</x>" * 30), self.model))

    def test_oneMebibyteBody(self) -> None:
        """
        A 1 MiB body whose EMailAddress is 1 MiB long is refused with a
        short answer that echoes nothing (SECURITY.md sections 4 and 5).
        """
        body = request("a" * (1024 * 1024) + "@example.test")
        self.assertGreater(len(body), 1024 * 1024)
        output = self.assertRejected(body)
        self.assertLess(len(output), 4096)

    def test_utf16WithBom(self) -> None:
        """
        A UTF-16 body with a BOM is handled (settings for the principal) or
        refused with 600; it never raises (SECURITY.md section 5).
        """
        text = request().decode().replace('encoding="utf-8"', 'encoding="utf-16"')
        for body in (text.encode("utf-16"), text.encode("utf-16-be"),
                     b"\xff\xfe" + text.encode("utf-16-le")):
            if body[:2] not in (b"\xff\xfe", b"\xfe\xff"):
                body = b"\xfe\xff" + body
            output = self.answer(body, self.model)
            root = self.read(output)
            if etree.QName(root[0]).namespace == RESPONSE_2006A:
                self.assertSettings(output)
            else:
                self.assertError(output, 600)

    def test_bogusEncoding(self) -> None:
        """
        An encoding declaration lxml does not know (EBCDIC, made-up names)
        gets 600, not an exception (SECURITY.md section 5).
        """
        for encoding in ("EBCDIC", "x-no-such-encoding"):
            body = request().replace(b'encoding="utf-8"', f'encoding="{encoding}"'.encode())
            self.assertRejected(body)

    def test_nonUtf8Bytes(self) -> None:
        """
        Bytes that are not valid in the declared (or default) UTF-8 get 600
        (PROTOCOLS.md section 2.1: requests are UTF-8 XML).
        """
        self.assertRejected(request("d\xffmo@example.test", encoding="latin-1")
                            .replace(b'encoding="latin-1"', b'encoding="utf-8"'))
        self.assertRejected(request().replace(b"demo", b"d\xc3mo"))
        self.assertRejected(request().split(b"\n", 1)[1].replace(b"demo", b"\x80\x81"))

    def test_truncated(self) -> None:
        """
        Every truncation of a valid request gets 600 (PROTOCOLS.md section
        2.8: improperly formatted XML).
        """
        body = request()
        self.assertTrue(body.endswith(b"</Autodiscover>"))
        for length in range(1, len(body)):
            if body[:length].strip():
                self.assertRejected(body[:length])

    def test_wrongRoot(self) -> None:
        """
        A root in an unknown namespace, in no namespace, or with another
        local name gets 600 (SECURITY.md section 5).
        """
        self.assertRejected(request(namespace="urn:example:evil"))
        self.assertRejected(request(namespace=RESPONSE_2006A))
        self.assertRejected(request().replace(f' xmlns="{REQUEST_NS}"'.encode(), b""))
        self.assertRejected(request().replace(b"Autodiscover", b"Autodiscovery"))

    def test_noRequest(self) -> None:
        """
        An Autodiscover without a Request, or with two, gets 600
        (PROTOCOLS.md section 2.3).
        """
        self.assertRejected(f'<Autodiscover xmlns="{REQUEST_NS}"/>'.encode())
        self.assertRejected(request().replace(b"Request>", b"Requests>"))
        doubled = request().replace(b"</Request>", b"</Request><Request/>")
        self.assertRejected(doubled)

    def test_noSchema(self) -> None:
        """
        A request without AcceptableResponseSchema, or with an empty one,
        gets 600 (PROTOCOLS.md section 2.3).
        """
        self.assertRejected(request(schema=None))
        self.assertRejected(request(schema=""))

    def test_noAddress(self) -> None:
        """
        A request with neither EMailAddress nor LegacyDN (or empty ones)
        gets 600 (SECURITY.md section 5).
        """
        self.assertRejected(request(None))
        self.assertRejected(request("", ""))

    def test_duplicateEmailAddress(self) -> None:
        """
        Two EMailAddress elements get 600, even when they agree: there is no
        telling which one a client meant (PROTOCOLS.md section 2.3).
        """
        self.assertRejected(request(extra="<EMailAddress>other@example.test</EMailAddress>"))
        self.assertRejected(request(extra="<EMailAddress>demo@example.test</EMailAddress>"))

    def test_longEmailAddress(self) -> None:
        """
        An EMailAddress over 1024 characters gets 600 (SECURITY.md section
        5: bounded fields).
        """
        self.assertRejected(request("d" * 1020 + "@example.test"))

    def test_commentsAndProcessingInstructions(self) -> None:
        """
        Comments and processing instructions are dropped by the hardened
        parser, never read as content: a commented-out foreign address does
        not count, a stylesheet PI is not followed, and the request is
        answered for the principal (SECURITY.md section 5: remove_comments,
        remove_pis).
        """
        extra = ("<!-- <EMailAddress>other@example.test</EMailAddress> -->"
                 f'<?xml-stylesheet href="{self.secret_uri}"?><?php echo 1; ?>')
        body = request(extra=extra)
        head, rest = body.split(b"\n", 1)
        body = head + b"\n<!-- before -->\n<?pi before?>\n" + rest + b"<!-- after -->"
        output = self.answer(body, self.model)
        self.assertSettings(output)
        self.assertNotIn(self.secret, output)
        self.assertNotIn(b"php", output)

    def test_markupInAddressNotEchoed(self) -> None:
        """
        An EMailAddress holding C{<}, C{&}, C{]]>} or CRLF (escaped or in
        CDATA) gets an Error that still parses and never echoes it
        unescaped (SECURITY.md section 3.3).
        """
        for address in ("&lt;script&gt;alert(1)&lt;/script&gt;@evil.test",
                        "x&amp;y]]&gt;&lt;z@evil.test",
                        "<![CDATA[<b>&amp;]]]]><![CDATA[>@evil.test]]>",
                        "evil&#13;&#10;X-Injected: 1@evil.test"):
            output = self.answer(request(address), self.model)
            self.assertError(output, 500)
            for raw in (b"<script", b"<b>", b"]]>", b"<z", b"X-Injected", b"evil.test"):
                self.assertNotIn(raw, output)


class RequestCacheTests(SynchronousTestCase):
    """
    Small request bodies are parsed once: clients send the same few again
    and again.  Only successes are kept.
    """

    def test_same_small_body_parsed_once(self) -> None:
        """
        A repeated small body gives the very same parsed request.
        """
        body = request("demo@example.test")
        self.assertIs(parse_request(body), parse_request(bytes(body)))

    def test_invalid_body_rejected_every_time(self) -> None:
        """
        A malformed body raises on every call, never an earlier success.
        """
        for _ in range(2):
            self.assertRaises(InvalidRequest, parse_request, b"<Autodiscover")

    def test_large_body_parsed_each_time(self) -> None:
        """
        Bodies over the cached size (padded with whitespace) are parsed
        anew, so the cache never holds more than its small entries.
        """
        body = request("demo@example.test") + b" " * CACHED_BODY_SIZE
        first, second = parse_request(body), parse_request(body)
        self.assertEqual(first, second)
        self.assertIsNot(first, second)


class SplicedSettingsTests(DocumentAssertions):
    """
    A settings document is built once per catalogue and each user's address
    and display name are filled in: the bytes must be exactly what building
    it for that user gives.
    """

    def setUp(self) -> None:
        self.model = self.load_model(edit(
            "[urls]\n", "[urls]\ncaldav = https://mail.example.test/dav/?a=1&b=<2>\n"))
        self.catalogue = self.model.catalogue
        self.templates = UserTemplates()

    def assertSameAsBuilt(self, principal: Principal) -> bytes:
        for extensions in (True, False):
            spliced = render_settings(self.catalogue, principal, extensions, self.templates)
            self.assertEqual(spliced, outlook._render_settings(self.catalogue, principal,
                                                               extensions))
        return spliced

    def test_values_escaped_as_built(self) -> None:
        """
        Markup characters, quotes, non-ASCII, tabs and newlines in either
        value come out byte for byte as lxml writes them.
        """
        for principal in (PRINCIPAL,
                          Principal("demo@example.test"),
                          Principal("o'brien+tag@example.test", 'A & B <"C"> \'D\''),
                          Principal("jörg@exämple.test", "Jörg Ünïcødé 🎉"),
                          Principal("demo@example.test", "tab\there\nline"),
                          Principal("demo@example.test", "carriage\rreturn")):
            output = self.assertSameAsBuilt(principal)
            self.assertSettings(output, principal)

    def test_mobilesync_answers_spliced_alike(self) -> None:
        """
        The ActiveSync settings answer is built once per URL and filled in
        per user the same way, byte for byte.
        """
        url = "https://mail.example.test/Microsoft-Server-ActiveSync?a=1&b=<2>"
        for principal in (PRINCIPAL, Principal("o'brien@example.test", 'A & B <"C">'),
                          Principal("jörg@exämple.test", "Jörg 🎉"),
                          Principal("demo@example.test", "carriage\rreturn"),
                          Principal("demo@example.test", "\ue001")):
            self.assertEqual(mobilesync.render_settings(url, principal, self.templates),
                             mobilesync._render_settings(url, principal))

    def test_values_lxml_refuses_are_refused_alike(self) -> None:
        """
        A control character cannot be in an XML document: the answer fails
        as building it would, never with a broken document.
        """
        principal = Principal("demo@example.test", "bell\x07")
        self.assertRaises(ValueError, render_settings, self.catalogue, principal, True,
                          self.templates)

    def test_marks_in_values_and_catalogue(self) -> None:
        """
        The private-use characters that mark the user's values are just
        text when a user or the configuration holds them.
        """
        self.assertSameAsBuilt(Principal("demo@example.test", "\ue000\ue001"))
        self.catalogue = self.load_model(edit(
            "[urls]\n", "[urls]\ncaldav = https://mail.example.test/\ue001/\n")).catalogue
        self.assertSameAsBuilt(PRINCIPAL)

    def test_built_once_per_catalogue(self) -> None:
        """
        Answers for many users of one catalogue build the document once
        (and once more to check the catalogue holds no mark).
        """
        built = []
        build = outlook._render_settings
        self.patch(outlook, "_render_settings",
                   lambda *a: built.append(a) or build(*a))
        for n in range(20):
            render_settings(self.catalogue, Principal(f"user{n}@example.test", f"User {n}"),
                            True, self.templates)
        self.assertEqual(len(built), 2)

    def test_without_templates_built_each_time(self) -> None:
        """
        Without templates (what the caller keeps per model) nothing is kept
        between answers: each is built whole.
        """
        built = []
        build = outlook._render_settings
        self.patch(outlook, "_render_settings",
                   lambda *a: built.append(a) or build(*a))
        for n in range(3):
            render_settings(self.catalogue, Principal(f"user{n}@example.test"))
        self.assertEqual(len(built), 3)
