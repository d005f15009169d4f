"""
L{smartdiscover.client.answer}: the request the probe sends, and its verdict
on every kind of answer a server may give, hostile ones included.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.client.answer import Protocol, parse_answer, request_body
from smartdiscover.discovery.outlook import RESPONSE_2006
from smartdiscover.discovery.request import OUTLOOK_REQUEST, OUTLOOK_RESPONSE, parse_request
from tests.unit.test_client_fakes import EWS, document, redirect_addr, settings


class RequestTests(SynchronousTestCase):
    """
    L{request_body} is an Outlook request the server's own parser reads.
    """

    def test_round_trip(self) -> None:
        """
        The address, the 2006a response schema and the Outlook namespace
        come back out of the service's request parser.
        """
        request = parse_request(request_body("user@example.test"))
        self.assertEqual((request.email_address, request.response_schema, request.namespace),
                         ("user@example.test", OUTLOOK_RESPONSE, OUTLOOK_REQUEST))

    def test_markup_in_the_address_is_escaped(self) -> None:
        """
        An address with XML metacharacters stays one text node.
        """
        address = 'a&b<c>"d@example.test'
        body = request_body(address)
        self.assertTrue(body.startswith(b"<?xml"))
        self.assertEqual(parse_request(body).email_address, address)


class SettingsTests(SynchronousTestCase):
    """
    Settings answers: the protocols and what clients need of them.
    """

    def test_socket_and_url_protocols(self) -> None:
        """
        A socket protocol gives server, port, SSL and Encryption; URLs of
        any element are collected once each, an extension's URL in Server
        is a URL, not a server.
        """
        answer = parse_answer(settings(
            "<Protocol><Type>imap</Type><Server> mail.example.test </Server><Port>993</Port>"
            "<SSL>on</SSL><Encryption>SSL</Encryption></Protocol>",
            EWS,
            "<Protocol><Type>WEB</Type><Internal><OWAUrl AuthenticationMethod='Basic'>"
            "https://mail.example.test/owa</OWAUrl></Internal>"
            "<External><OWAUrl>https://mail.example.test/owa</OWAUrl></External></Protocol>",
            "<Protocol><Type>X-CALDAV</Type><Server>https://dav.example.test/</Server>"
            "</Protocol>"))
        self.assertEqual(answer.kind, "settings")
        self.assertEqual(answer.problems, ())
        self.assertEqual(answer.protocols, (
            Protocol("IMAP", "mail.example.test", 993, "on", "SSL"),
            Protocol("EXPR", urls=(("EwsUrl", "https://mail.example.test/EWS/Exchange.asmx"),)),
            Protocol("WEB", urls=(("OWAUrl", "https://mail.example.test/owa"),)),
            Protocol("X-CALDAV", urls=(("Server", "https://dav.example.test/"),))))
        self.assertIn("IMAP, EXPR, WEB, X-CALDAV", answer.detail)
        self.assertNotIn("no EwsUrl", answer.detail)

    def test_without_ews(self) -> None:
        """
        Settings without an EwsUrl, or without any Protocol, say that
        exchangelib cannot use them.
        """
        self.assertIn("no EwsUrl", parse_answer(settings(
            "<Protocol><Type>IMAP</Type><Server>m</Server></Protocol>")).detail)
        empty = parse_answer(settings())
        self.assertEqual((empty.kind, empty.protocols), ("settings", ()))
        self.assertIn("no Protocol", empty.detail)

    def test_action_defaults_to_settings(self) -> None:
        """
        An Account without Action is a settings answer.
        """
        answer = parse_answer(document("<Account>" + EWS + "</Account>"))
        self.assertEqual(answer.kind, "settings")

    def test_odd_ports(self) -> None:
        """
        A Port that is not a number of ASCII digits (text, negative,
        superscript or other scripts' digits, empty) is no port, not an
        exception.
        """
        for text in ("imap", "-1", "99.5", "\u00b2", "\u0663", "", "1e3"):
            answer = parse_answer(settings(
                f"<Protocol><Type>IMAP</Type><Server>m</Server><Port>{text}</Port></Protocol>"))
            self.assertEqual(answer.kind, "settings", text)
            self.assertIsNone(answer.protocols[0].port, text)

    def test_type_missing(self) -> None:
        """
        A Protocol without Type is kept as type "?".
        """
        answer = parse_answer(settings("<Protocol><Server>m</Server></Protocol>"))
        self.assertEqual(answer.protocols[0].type, "?")


class RedirectTests(SynchronousTestCase):
    """
    redirectAddr and redirectUrl answers.
    """

    def test_redirect_addr(self) -> None:
        """
        redirectAddr gives the address to start again with.
        """
        answer = parse_answer(redirect_addr("new@example.test"))
        self.assertEqual((answer.kind, answer.target), ("redirectAddr", "new@example.test"))

    def test_redirect_url_spellings(self) -> None:
        """
        RedirectURL is what exchangelib reads; RedirectUrl alone works for
        other clients but is a problem to report.
        """
        url = "https://autodiscover.example.test/autodiscover/autodiscover.xml"
        upper = parse_answer(document(f"<Account><Action>redirectUrl</Action>"
                                      f"<RedirectURL>{url}</RedirectURL></Account>"))
        self.assertEqual((upper.kind, upper.target, upper.problems), ("redirectUrl", url, ()))
        lower = parse_answer(document(f"<Account><Action>redirectUrl</Action>"
                                      f"<RedirectUrl>{url}</RedirectUrl></Account>"))
        self.assertEqual((lower.kind, lower.target), ("redirectUrl", url))
        self.assertEqual(len(lower.problems), 1)
        self.assertIn("RedirectURL", lower.problems[0][0])

    def test_redirect_without_target(self) -> None:
        """
        A redirect Action without (or with an empty) target is invalid.
        """
        for account in ("<Account><Action>redirectAddr</Action></Account>",
                        "<Account><Action>redirectUrl</Action><RedirectURL> </RedirectURL>"
                        "</Account>"):
            answer = parse_answer(document(account))
            self.assertEqual((answer.kind, answer.target), ("invalid", None))

    def test_unknown_action(self) -> None:
        """
        An Action the protocol does not know is invalid.
        """
        answer = parse_answer(document("<Account><Action>reboot</Action></Account>"))
        self.assertEqual(answer.kind, "invalid")
        self.assertIn("reboot", answer.detail)


class ErrorTests(SynchronousTestCase):
    """
    Error answers, in the namespace clients expect or not.
    """

    def test_error_in_the_2006_response(self) -> None:
        """
        Code and message are reported, no problem noted.
        """
        body = document("<Error><ErrorCode>500</ErrorCode><Message>Unknown user</Message>"
                        "</Error>", response_namespace=RESPONSE_2006)
        answer = parse_answer(body)
        self.assertEqual((answer.kind, answer.problems), ("error", ()))
        self.assertIn("500", answer.detail)
        self.assertIn("Unknown user", answer.detail)

    def test_error_in_a_2006a_response(self) -> None:
        """
        An Error inside a 2006a Response is a problem: exchangelib fails.
        """
        answer = parse_answer(document("<Error><ErrorCode>600</ErrorCode></Error>"))
        self.assertEqual(answer.kind, "error")
        self.assertEqual(len(answer.problems), 1)
        self.assertIn("exchangelib", answer.problems[0][0])

    def test_error_without_code(self) -> None:
        """
        An empty Error still is an error answer.
        """
        answer = parse_answer(document("<Error/>", response_namespace=RESPONSE_2006))
        self.assertEqual(answer.kind, "error")


class HostileTests(SynchronousTestCase):
    """
    Bodies that are not answers: a clear "invalid" verdict, never an
    exception.
    """

    def assertInvalid(self, body: bytes, reason: str) -> None:
        answer = parse_answer(body)
        self.assertEqual(answer.kind, "invalid", body[:80])
        self.assertIn(reason, answer.detail)

    def test_not_xml(self) -> None:
        """
        Empty bodies, HTML, JSON and truncated XML are not XML documents.
        """
        for body in (b"", b"<html><body>It works", b'{"Action": "settings"}',
                     settings(EWS)[:-20], b"\x00\x01\x02"):
            self.assertInvalid(body, "not an XML document")

    def test_wrongly_encoded(self) -> None:
        """
        Bytes that do not match the declared encoding, or an encoding that
        does not exist, are not XML documents.
        """
        latin1 = settings(EWS).replace(b"email", "\u00e9mail".encode("latin-1"))
        for body in (latin1, settings(EWS).replace(b"utf-8", b"x-unknown-8"),
                     settings(EWS).replace(b"utf-8", b"utf-16")):
            self.assertInvalid(body, "not an XML document")

    def test_dangerous_constructs(self) -> None:
        """
        DOCTYPE and entity declarations (billion laughs, external
        entities) and deep nesting are refused.
        """
        laughs = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol">'
                  b'<!ENTITY l2 "&l;&l;&l;&l;">]><Autodiscover>&l2;</Autodiscover>')
        external = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM '
                    b'"file:///etc/passwd">]><a>&x;</a>')
        deep = settings("<Protocol>" + "<X>" * 40 + "</X>" * 40 + "</Protocol>")
        for body, reason in ((laughs, "DOCTYPE"), (external, "DOCTYPE"), (deep, "deeply")):
            self.assertInvalid(body, reason)

    def test_wrong_root(self) -> None:
        """
        A root of another name or namespace is invalid.
        """
        self.assertInvalid(b'<?xml version="1.0"?><Autodiscover><Response/></Autodiscover>',
                           "not Autodiscover")
        self.assertInvalid(f'<?xml version="1.0"?><Discover xmlns="{RESPONSE_2006}"/>'.encode(),
                           "not Autodiscover")

    def test_missing_parts(self) -> None:
        """
        No Response, or a Response with neither Error nor Account, is
        invalid.
        """
        self.assertInvalid(f'<?xml version="1.0"?><Autodiscover xmlns="{RESPONSE_2006}"/>'
                           .encode(), "no Response")
        self.assertInvalid(document("<Nothing/>"), "neither Error nor Account")

    def test_missing_declaration(self) -> None:
        """
        An answer without its XML declaration is read, with the problem
        that exchangelib rejects it; a byte order mark before it is fine.
        """
        bare = parse_answer(settings(EWS).split(b"\n", 1)[1])
        self.assertEqual(bare.kind, "settings")
        self.assertEqual(len(bare.problems), 1)
        self.assertIn("<?xml", bare.problems[0][0])
        self.assertEqual(parse_answer(b"\xef\xbb\xbf" + settings(EWS)).problems, ())

    def test_problem_kept_with_invalid_answer(self) -> None:
        """
        The missing declaration is still reported when the rest is invalid.
        """
        answer = parse_answer(document("<Nothing/>", declaration=False))
        self.assertEqual(answer.kind, "invalid")
        self.assertEqual(len(answer.problems), 1)
