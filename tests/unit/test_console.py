"""
Tests for the web console (smartdiscover/admin/, issue 18): login through
the guard, sessions in a cookie with idle and absolute expiry, logout,
CSRF tokens on every form, cross-site posts refused, hostile form values;
the health page.  Through the real site over an in-memory connection, on
a L{Clock}.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from smartdiscover.admin.checker import AdminChecker
from smartdiscover.admin.resource import MAX_FORM_BYTES, SECURITY_HEADERS, Console
from smartdiscover.admin.sessions import Sessions
from smartdiscover.auth.credentials import IPrincipalChecker
from smartdiscover.auth.guard import Guard
from smartdiscover.config import ConfigStore, load
from smartdiscover.config.model import AdminSettings, Model, TCPListener
from smartdiscover.health.monitor import HealthMonitor
from tests.helpers import DEMO_HASH, DEMO_PASSWORD, run_synchronously, write_config
from tests.unit.test_http_endpoints import raw_request
from tests.unit.test_web import Connection, Response

IDLE, LIFETIME = 900.0, 3600.0


def admin_model(directory: str) -> Model:
    model = load(write_config(directory))
    admin = AdminSettings(TCPListener(8444, "127.0.0.1", None), Path(directory) / "admins",
                          {"alice": DEMO_HASH.encode("ascii")}, IDLE, LIFETIME)
    return dataclasses.replace(model, admin=admin)


def cookies(response: Response) -> dict[bytes, bytes]:
    """
    Each Set-Cookie by name: the whole header value.
    """
    return {value.split(b"=", 1)[0]: value for value in response.header(b"set-cookie")}


def cookie_value(response: Response, name: bytes) -> bytes:
    return cookies(response)[name].split(b";", 1)[0].split(b"=", 1)[1]


def form(**fields: str) -> bytes:
    return urllib.parse.urlencode(fields).encode("ascii")


class ConsoleTestCase(SynchronousTestCase):
    secure = False

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.model = admin_model(self.mktemp())
        self.store = ConfigStore(self.model, lambda: self.model, run_synchronously)
        current = lambda: self.store.current  # noqa: E731
        self.guard = Guard(AdminChecker(current, run_synchronously), current, self.clock,
                           local_store=False)
        self.sessions = Sessions(self.clock, lambda: IDLE, lambda: LIFETIME)
        self.console = Console(self.store, HealthMonitor(current, self.clock), self.guard,
                               self.sessions, self.clock, lambda: self.secure,
                               run_synchronously)

    def send(self, method: bytes, path: bytes, headers: tuple[bytes, ...] = (),
             body: bytes | None = None) -> Response:
        connection = Connection(self.console)
        if body is not None:
            headers += (b"Content-Type: application/x-www-form-urlencoded",)
        connection.send(raw_request(method, path, b"127.0.0.1:8444", headers, body))
        return connection.response()

    def login_form(self) -> tuple[bytes, str]:
        """
        The login cookie and the form's token.
        """
        response = self.send(b"GET", b"/login")
        self.assertEqual(response.code, 200)
        found = re.search(rb'name="login_csrf" value="([^"]+)"', response.body)
        assert found is not None, response.body
        return cookie_value(response, b"sd_login"), found.group(1).decode()

    def login(self, name: str = "alice", password: str = DEMO_PASSWORD,
              headers: tuple[bytes, ...] = ()) -> Response:
        cookie, token = self.login_form()
        return self.send(b"POST", b"/login", (b"Cookie: sd_login=" + cookie, *headers),
                         form(login_csrf=token, name=name, password=password))

    def session(self) -> tuple[bytes, str]:
        """
        A logged-in session: its cookie and its CSRF token.
        """
        response = self.login()
        self.assertEqual(response.code, 303, response.body)
        token = cookie_value(response, b"sd_session")
        page = self.send(b"GET", b"/", (b"Cookie: sd_session=" + token,))
        found = re.search(rb'name="csrf" value="([^"]+)"', page.body)
        assert found is not None, page.body
        return token, found.group(1).decode()


class LoginTests(ConsoleTestCase):
    def test_checker_interface(self) -> None:
        verifyObject(IPrincipalChecker, AdminChecker(lambda: self.model, run_synchronously))

    def test_pages_need_a_session(self) -> None:
        response = self.send(b"GET", b"/")
        self.assertEqual((response.code, response.header(b"location")), (303, [b"/login"]))

    def test_login_form(self) -> None:
        """
        Labelled fields, a token equal to its HttpOnly, SameSite=Strict
        cookie (not Secure on loopback), the security headers.
        """
        response = self.send(b"GET", b"/login")
        body = response.body.decode()
        self.assertIn('<label for="name">Name</label>', body)
        self.assertIn('<label for="password">Password</label>', body)
        self.assertTrue(body.startswith("<!DOCTYPE html>"))
        cookie = cookies(response)[b"sd_login"].lower()
        self.assertIn(b"httponly", cookie)
        self.assertIn(b"samesite=strict", cookie)
        self.assertNotIn(b"secure", cookie)
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(response.header(name), [value], name)
        # The site's own headers, once each; its policy replaced by ours.
        self.assertEqual(response.header(b"cache-control"), [b"no-store"])
        self.assertEqual(response.header(b"x-content-type-options"), [b"nosniff"])

    def test_login_token_kept(self) -> None:
        """
        A second login page in the same browser (another tab) keeps the
        token the first form carries; a fetch of no page (the favicon) is a
        404 that leaves it alone.
        """
        cookie, token = self.login_form()
        again = self.send(b"GET", b"/login", (b"Cookie: sd_login=" + cookie,))
        self.assertIn(f'value="{token}"'.encode(), again.body)
        self.assertEqual(again.header(b"set-cookie"), [])
        favicon = self.send(b"GET", b"/favicon.ico", (b"Cookie: sd_login=" + cookie,))
        self.assertEqual((favicon.code, favicon.header(b"set-cookie")), (404, []))

    def test_login_and_health_page(self) -> None:
        """
        The right password: a new session cookie and the health page, with
        the generation, a logout form and no password anywhere.
        """
        response = self.login()
        self.assertEqual((response.code, response.header(b"location")), (303, [b"/"]))
        cookie = cookies(response)[b"sd_session"].lower()
        self.assertIn(b"httponly", cookie)
        self.assertIn(b"samesite=strict", cookie)
        token = cookie_value(response, b"sd_session")
        page = self.send(b"GET", b"/", (b"Cookie: sd_session=" + token,))
        self.assertEqual(page.code, 200)
        self.assertIn(b"<h1>Health</h1>", page.body)
        self.assertIn(b"Configuration generation 1.", page.body)
        self.assertIn(b'action="/logout"', page.body)
        self.assertNotIn(DEMO_PASSWORD.encode(), page.body + response.body)

    def test_wrong_password_and_unknown_name(self) -> None:
        """
        The same answer for both: 401, the message next to the form, the
        name kept and the password not.
        """
        for name, password in (("alice", "wrong-password"), ("bob", DEMO_PASSWORD)):
            response = self.login(name, password)
            self.assertEqual(response.code, 401, name)
            self.assertIn(b"The name or the password is wrong.", response.body)
            self.assertIn(f'value="{name}"'.encode(), response.body)
            self.assertNotIn(password.encode(), response.body)
            self.assertNotIn(b"sd_session", b"".join(response.header(b"set-cookie")))

    def test_markup_is_escaped(self) -> None:
        name = '"><script>alert(1)</script>'
        response = self.login(name, "x")
        self.assertEqual(response.code, 401)
        self.assertNotIn(b"<script>", response.body)
        self.assertIn(b"&lt;script&gt;", response.body)

    def test_hostile_values(self) -> None:
        """
        Too long a name or password, an empty one, a body over the limit,
        non-ASCII bytes, too many fields: a clear refusal, no session.
        """
        cookie, token = self.login_form()
        header = (b"Cookie: sd_login=" + cookie,)
        cases = [
            (form(login_csrf=token, name="a" * 65, password="x"), 401),
            (form(login_csrf=token, name="alice", password="x" * 1025), 401),
            (form(login_csrf=token, name="", password=""), 401),
            (b"name=" + b"a" * (MAX_FORM_BYTES + 1), 400),
            (b"login_csrf=" + token.encode() + b"&name=\xff\xfe&password=x", 400),
            (b"&".join(b"f%d=1" % i for i in range(200)), 400),
        ]
        for body, code in cases:
            response = self.send(b"POST", b"/login", header, body)
            self.assertEqual(response.code, code, body[:60])
            self.assertNotIn(b"sd_session", b"".join(response.header(b"set-cookie")))
        self.assertEqual(len(self.sessions), 0)

    def test_login_token_required(self) -> None:
        """
        No token, a token without its cookie, or another form's token: 403.
        """
        cookie, token = self.login_form()
        other, _ = self.login_form()
        for headers, body in (((b"Cookie: sd_login=" + cookie,), form(name="alice")),
                              ((), form(login_csrf=token, name="alice",
                                        password=DEMO_PASSWORD)),
                              ((b"Cookie: sd_login=" + other,),
                               form(login_csrf=token, name="alice", password=DEMO_PASSWORD))):
            response = self.send(b"POST", b"/login", headers, body)
            self.assertEqual(response.code, 403)
        self.assertEqual(len(self.sessions), 0)

    def test_cross_site_refused(self) -> None:
        """
        A form posted from another site (Origin or Sec-Fetch-Site) is
        refused before anything is checked; the console's own origin
        passes.
        """
        for header in (b"Origin: https://evil.example", b"Origin: null",
                       b"Sec-Fetch-Site: cross-site", b"Sec-Fetch-Site: same-site"):
            response = self.login(headers=(header,))
            self.assertEqual(response.code, 403, header)
            self.assertIn(b"not sent from the console", response.body)
        self.assertEqual(self.guard.verifications, 0)
        response = self.login(headers=(b"Origin: http://127.0.0.1:8444",
                                       b"Sec-Fetch-Site: same-origin"))
        self.assertEqual(response.code, 303)


class SessionTests(ConsoleTestCase):
    def test_logout(self) -> None:
        """
        Logout needs the session's token; then the cookie is worthless, for
        pages and forms alike (a replayed session).
        """
        token, csrf = self.session()
        cookie = (b"Cookie: sd_session=" + token,)
        self.assertEqual(self.send(b"POST", b"/logout", cookie, form()).code, 403)
        self.assertEqual(self.send(b"POST", b"/logout", cookie, form(csrf="stale")).code, 403)
        self.assertEqual(len(self.sessions), 1)
        response = self.send(b"POST", b"/logout", cookie, form(csrf=csrf))
        self.assertEqual((response.code, response.header(b"location")), (303, [b"/login"]))
        self.assertIn(b"max-age=0", cookies(response)[b"sd_session"].lower())
        self.assertEqual(self.send(b"GET", b"/", cookie).code, 303)
        self.assertEqual(self.send(b"POST", b"/logout", cookie, form(csrf=csrf)).code, 403)

    def test_idle_expiry(self) -> None:
        token, _ = self.session()
        cookie = (b"Cookie: sd_session=" + token,)
        self.clock.advance(IDLE - 1)
        self.assertEqual(self.send(b"GET", b"/", cookie).code, 200)
        self.clock.advance(IDLE + 1)
        self.assertEqual(self.send(b"GET", b"/", cookie).code, 303)

    def test_absolute_expiry(self) -> None:
        token, _ = self.session()
        cookie = (b"Cookie: sd_session=" + token,)
        for _ in range(int(LIFETIME // 600)):
            self.clock.advance(600)
            self.assertEqual(self.send(b"GET", b"/", cookie).code, 200)
        self.clock.advance(601)
        self.assertEqual(self.send(b"GET", b"/", cookie).code, 303)

    def test_forged_cookies(self) -> None:
        for value in (b"", b"x" * 5000, b"\xff", b"abc"):
            self.assertEqual(self.send(b"GET", b"/", (b"Cookie: sd_session=" + value,)).code,
                             303, value[:20])

    def test_new_session_per_login(self) -> None:
        """
        Every login makes a new token (no session fixation); both live.
        """
        first, _ = self.session()
        second, _ = self.session()
        self.assertNotEqual(first, second)
        self.assertEqual(len(self.sessions), 2)

    def test_unknown_page(self) -> None:
        token, _ = self.session()
        response = self.send(b"GET", b"/nothing/here", (b"Cookie: sd_session=" + token,))
        self.assertEqual(response.code, 404)


class SecureTests(ConsoleTestCase):
    secure = True

    def test_secure_cookies(self) -> None:
        """
        Over TLS the cookies are Secure, and the console's origin is https.
        """
        response = self.login(headers=(b"Origin: https://127.0.0.1:8444",))
        self.assertEqual(response.code, 303, response.body)
        self.assertIn(b"secure", cookies(response)[b"sd_session"].lower())
        self.assertEqual(self.login(headers=(b"Origin: http://127.0.0.1:8444",)).code, 403)


class SessionsTests(SynchronousTestCase):
    def test_bounded(self) -> None:
        clock = Clock()
        sessions = Sessions(clock, lambda: IDLE, lambda: LIFETIME, limit=3)
        opened = [sessions.open("alice", "127.0.0.1") for _ in range(5)]
        self.assertEqual(len(sessions), 3)
        self.assertIsNone(sessions.find(opened[0].token))
        self.assertIs(sessions.find(opened[-1].token), opened[-1])

    def test_repr_without_tokens(self) -> None:
        session = Sessions(Clock(), lambda: IDLE, lambda: LIFETIME).open("alice", "::1")
        self.assertNotIn(session.token, repr(session))
        self.assertNotIn(session.csrf, repr(session))

    def test_close_for(self) -> None:
        sessions = Sessions(Clock(), lambda: IDLE, lambda: LIFETIME)
        sessions.open("alice", "::1")
        sessions.open("alice", "::1")
        kept = sessions.open("bob", "::1")
        self.assertEqual(sessions.close_for("alice"), 2)
        self.assertIs(sessions.find(kept.token), kept)


class ClientPageTests(ConsoleTestCase):
    """
    What a client gets: the answers of the listeners' own renderers for an
    address, escaped into the page; hostile addresses refused next to the
    field.
    """

    def get(self, query: bytes) -> Response:
        token, _ = self.session()
        return self.send(b"GET", b"/client" + query, (b"Cookie: sd_session=" + token,))

    def test_answers(self) -> None:
        response = self.get(b"?address=Demo%40Example.test")
        self.assertEqual(response.code, 200, response.body)
        body = response.body.decode()
        for title in ("Outlook (POX)", "ActiveSync (mobilesync)", "Mozilla autoconfig",
                      "Autodiscover v2 (AutodiscoverV1)", "Apple profile payloads"):
            self.assertIn(f"<h2>{title}</h2>", body)
        # The XML documents are shown as text, escaped.
        self.assertIn("&lt;Server&gt;mail.example.test&lt;/Server&gt;", body)
        self.assertIn("com.apple.mail.managed", body)
        self.assertIn("Demo User", body)  # the display name of the password file
        self.assertNotIn("<h2>DNS zone", body)  # no [server] dns here

    def test_form_alone(self) -> None:
        response = self.get(b"")
        self.assertEqual(response.code, 200)
        self.assertIn(b'<label for="address">E-mail address</label>', response.body)
        self.assertNotIn(b"<h2>", response.body)

    def test_hostile_addresses(self) -> None:
        for query, message in ((b"?address=nobody", b"not an e-mail address"),
                               (b"?address=a%40elsewhere.test", b"not a served domain"),
                               (b"?address=" + b"a" * 400 + b"%40example.test",
                                b"at most 320"),
                               (b"?address=%FF%FE%40example.test", b"Not UTF-8")):
            response = self.get(query)
            self.assertEqual(response.code, 400, query)
            self.assertIn(message, response.body, query)
            self.assertIn(b'role="alert"', response.body, query)
        # Markup a local part may hold is shown, escaped, in every answer.
        response = self.get(b"?address=%3Cscript%3E%40example.test")
        self.assertEqual(response.code, 200)
        self.assertNotIn(b"<script>", response.body)
        self.assertIn(b"&lt;script&gt;@example.test", response.body)

    def test_needs_a_session(self) -> None:
        response = self.send(b"GET", b"/client?address=demo%40example.test")
        self.assertEqual(response.code, 303)


class HostnamePageTests(ConsoleTestCase):
    """
    Set New Hostname For All: the preview is the diff of the file; apply
    writes it in one step and reloads; a file changed since the preview is
    never overwritten.
    """

    def setUp(self) -> None:
        super().setUp()
        self.token, self.csrf = self.session()
        self.config = self.model.source
        self.before = self.config.read_text()

    def post(self, **fields: str) -> Response:
        return self.send(b"POST", b"/hostname", (b"Cookie: sd_session=" + self.token,),
                         form(**fields))

    def preview(self) -> tuple[Response, str]:
        response = self.post(csrf=self.csrf, action="preview", old="mail.example.test",
                             new="mx.example.test")
        self.assertEqual(response.code, 200, response.body)
        found = re.search(rb'name="digest" value="([0-9a-f]{64})"', response.body)
        assert found is not None, response.body
        return response, found.group(1).decode()

    def test_form(self) -> None:
        response = self.send(b"GET", b"/hostname", (b"Cookie: sd_session=" + self.token,))
        self.assertEqual(response.code, 200)
        self.assertIn(b'<label for="old">Current host name</label>', response.body)
        self.assertIn(b'value="mail.example.test"', response.body)

    def test_preview_writes_nothing(self) -> None:
        response, _ = self.preview()
        self.assertIn(b"-public_hostname = mail.example.test", response.body)
        self.assertIn(b"+public_hostname = mx.example.test", response.body)
        self.assertIn(b"+host = mx.example.test", response.body)
        self.assertEqual(self.config.read_text(), self.before)

    def test_apply(self) -> None:
        _, digest = self.preview()
        generation = self.store.generation
        response = self.post(csrf=self.csrf, action="apply", old="mail.example.test",
                             new="mx.example.test", digest=digest)
        self.assertEqual(response.code, 200, response.body)
        self.assertIn(b"mail.example.test is now mx.example.test", response.body)
        self.assertIn(b"written and reloaded", response.body)
        after = self.config.read_text()
        self.assertNotIn("mail.example.test", after)
        self.assertEqual(after, self.before.replace("mail.example.test", "mx.example.test"))
        self.assertEqual(self.store.generation, generation + 1)

    def test_changed_since_preview(self) -> None:
        """
        Another administrator saved in between: nothing is overwritten, the
        preview of the file as it is now is shown.
        """
        _, digest = self.preview()
        edited = self.before.replace("ttl = 1", "ttl = 2")
        self.config.write_text(edited)
        response = self.post(csrf=self.csrf, action="apply", old="mail.example.test",
                             new="mx.example.test", digest=digest)
        self.assertEqual(response.code, 200)
        self.assertIn(b"The file changed since your preview", response.body)
        self.assertEqual(self.config.read_text(), edited)
        self.assertNotIn(digest.encode(), response.body)

    def test_refused(self) -> None:
        """
        Bad names are shown next to their field; a missing token is
        refused; nothing is written.
        """
        for old, new, field in (("mail.example.test", "bad..name", b"new-error"),
                                ("", "mx.example.test", b"old-error"),
                                ("mail.example.test", "x" * 300, b"new-error"),
                                ("<script>", "mx.example.test", b"old-error")):
            response = self.post(csrf=self.csrf, action="preview", old=old, new=new)
            self.assertEqual(response.code, 400, (old, new))
            self.assertIn(b'id="' + field + b'"', response.body)
            self.assertNotIn(b"<script>", response.body)
        response = self.post(action="apply", old="mail.example.test", new="mx.example.test")
        self.assertEqual(response.code, 403)
        self.assertEqual(self.config.read_text(), self.before)

    def test_nothing_uses_it(self) -> None:
        response = self.post(csrf=self.csrf, action="preview", old="other.example.test",
                             new="mx.example.test")
        self.assertEqual(response.code, 200)
        self.assertIn(b"uses other.example.test", response.body)
        self.assertNotIn(b'name="digest"', response.body)


class SettingsPageTests(ConsoleTestCase):
    """
    The SmartDiscover tab: the seed's fields as the file has them; a save
    previews the diff, checked as check-config checks the file, then
    writes it in one step and reloads; two administrators saving at once:
    the second is told and sees the new values.
    """

    def setUp(self) -> None:
        super().setUp()
        self.token, self.csrf = self.session()
        self.config = self.model.source
        self.before = self.config.read_text()

    def page(self, query: bytes = b"") -> tuple[Response, str]:
        response = self.send(b"GET", b"/settings" + query,
                             (b"Cookie: sd_session=" + self.token,))
        found = re.search(rb'name="digest" value="([0-9a-f]{64})"', response.body)
        return response, found.group(1).decode() if found else ""

    def post(self, **fields: str) -> Response:
        return self.send(b"POST", b"/settings", (b"Cookie: sd_session=" + self.token,),
                         form(csrf=self.csrf, **fields))

    def test_fields(self) -> None:
        response, _ = self.page()
        self.assertEqual(response.code, 200)
        body = response.body.decode()
        for label in ("Public Hostname", "IMAP host", "SMTP ports", "MobileSync (ActiveSync)",
                      "WebDAV &amp; SmartAttach", "TeamChat API", "Collaboration API"):
            self.assertIn(label, body)
        self.assertIn('id="imap.host" name="imap.host" value="mail.example.test"', body)
        self.assertIn('<option value="ssl" selected="selected">TLS/SSL</option>', body)

    def test_preview_then_apply(self) -> None:
        _, digest = self.page()
        response = self.post(digest=digest, action="preview", **{"imap.host": "imap.example.test"})
        self.assertEqual(response.code, 200, response.body)
        self.assertIn(b"-host = mail.example.test", response.body)
        self.assertIn(b"+host = imap.example.test", response.body)
        self.assertEqual(self.config.read_text(), self.before)
        generation = self.store.generation
        response = self.post(digest=digest, action="apply", **{"imap.host": "imap.example.test"})
        self.assertEqual(response.code, 200, response.body)
        self.assertIn(b"Saved and reloaded.", response.body)
        self.assertEqual(self.config.read_text(), self.before.replace(
            "[imap]\nhost = mail.example.test", "[imap]\nhost = imap.example.test"))
        self.assertEqual(self.store.generation, generation + 1)

    def test_errors_on_the_fields(self) -> None:
        """
        A value the loader refuses is shown next to its field, the others
        kept as entered; nothing is written.
        """
        _, digest = self.page()
        response = self.post(digest=digest, action="apply",
                             **{"imap.port": "99999", "urls.webclient": "ftp://x",
                                "imap.host": "<b>bold</b>"})
        self.assertEqual(response.code, 400, response.body)
        body = response.body.decode()
        self.assertIn('id="imap.port-error"', body)
        self.assertIn('id="urls.webclient-error"', body)
        self.assertIn('aria-invalid="true"', body)
        self.assertNotIn("<b>bold</b>", body)
        self.assertEqual(self.config.read_text(), self.before)

    def test_hostile_values(self) -> None:
        _, digest = self.page()
        for fields in ({"imap.host": "a" * 3000}, {"imap.host": "x ; injected"},
                       {"imap.host": "x\ny = z"}):
            response = self.post(digest=digest, action="apply", **fields)
            self.assertEqual(response.code, 400, fields)
            self.assertEqual(self.config.read_text(), self.before)
        self.assertEqual(self.post(action="apply", digest="0" * 64,
                                   **{"imap.host": "x.example.test"}).code, 409)
        response = self.send(b"POST", b"/settings", (b"Cookie: sd_session=" + self.token,),
                             form(digest=digest, action="apply", **{"imap.host": "x"}))
        self.assertEqual(response.code, 403)  # no CSRF token

    def test_two_administrators(self) -> None:
        """
        The second save, from a page read before the first: refused, the
        values now in the file shown, and what was not saved listed.
        """
        _, digest = self.page()
        first = self.post(digest=digest, action="apply", **{"imap.host": "one.example.test"})
        self.assertEqual(first.code, 200, first.body)
        second = self.post(digest=digest, action="apply",
                           **{"urls.webclient": "https://two.example.test/"})
        self.assertEqual(second.code, 409)
        self.assertIn(b"The file changed since you opened this page", second.body)
        self.assertIn(b"urls.webclient = https://two.example.test/", second.body)
        self.assertIn(b'value="one.example.test"', second.body)
        self.assertNotIn("two.example.test", self.config.read_text())

    def test_domain_overrides(self) -> None:
        """
        A domain's page edits its overrides: the main value as the
        placeholder; saving writes [domain:NAME] imap.host; emptying it
        removes the override.
        """
        response, digest = self.page(b"?domain=example.test")
        self.assertEqual(response.code, 200)
        self.assertIn(b'placeholder="mail.example.test"', response.body)
        saved = self.post(digest=digest, action="apply", domain="example.test",
                          **{"imap.host": "imap.example.test"})
        self.assertEqual(saved.code, 200, saved.body)
        self.assertIn("[domain:example.test]\nimap.host = imap.example.test\n",
                      self.config.read_text())
        response, digest = self.page(b"?domain=example.test")
        self.assertIn(b"IMAP host (override)", response.body)
        self.post(digest=digest, action="apply", domain="example.test", **{"imap.host": ""})
        self.assertNotIn("imap.host", self.config.read_text())
        self.assertEqual(self.page(b"?domain=elsewhere.test")[0].code, 404)


class UsersPageTests(ConsoleTestCase):
    """
    Users of the password file: add, set a password, remove; the file
    replaced in one step and reloaded, never over a change made since the
    page was read.
    """

    def setUp(self) -> None:
        super().setUp()
        self.token, self.csrf = self.session()
        passwd = self.model.auth.passwd_file
        assert passwd is not None
        self.passwd = passwd

    def page(self) -> tuple[Response, str]:
        response = self.send(b"GET", b"/users", (b"Cookie: sd_session=" + self.token,))
        found = re.search(rb'name="digest" value="([0-9a-f]{64})"', response.body)
        assert found is not None, response.body
        return response, found.group(1).decode()

    def post(self, **fields: str) -> Response:
        return self.send(b"POST", b"/users", (b"Cookie: sd_session=" + self.token,),
                         form(csrf=self.csrf, **fields))

    def test_list(self) -> None:
        response, _ = self.page()
        self.assertIn(b"<td>demo@example.test</td><td>Demo User</td>", response.body)
        self.assertIn(b'aria-label="Remove demo@example.test"', response.body)
        self.assertNotIn(DEMO_HASH.encode(), response.body)

    def test_add_and_remove(self) -> None:
        from smartdiscover.auth.hashing import verify_password
        _, digest = self.page()
        response = self.post(digest=digest, action="set", address="new@example.test",
                             display_name="New One", password="a new secret",
                             confirm="a new secret")
        self.assertEqual(response.code, 200, response.body)
        self.assertIn(b"User added new@example.test; reloaded.", response.body)
        self.assertNotIn(b"a new secret", response.body)
        line = [entry for entry in self.passwd.read_text().splitlines()
                if entry.startswith("new@")][0]
        self.assertTrue(verify_password(line.split(":")[1].encode(), b"a new secret"))
        self.assertTrue(line.endswith(":New One"))
        _, digest = self.page()
        response = self.post(digest=digest, action="remove", address="new@example.test")
        self.assertEqual(response.code, 200, response.body)
        self.assertNotIn("new@example.test", self.passwd.read_text())
        self.assertIn("demo@example.test", self.passwd.read_text())

    def test_refused(self) -> None:
        _, digest = self.page()
        before = self.passwd.read_text()
        for fields, error in (
                ({"address": "nobody", "password": "x", "confirm": "x"}, b"address-error"),
                ({"address": "a@elsewhere.test", "password": "x", "confirm": "x"},
                 b"address-error"),
                ({"address": "a@example.test", "password": "x", "confirm": "y"},
                 b"confirm-error"),
                ({"address": "a@example.test", "password": "", "confirm": ""},
                 b"password-error"),
                ({"address": "a@example.test", "password": "x", "confirm": "x",
                  "display_name": "bad:name"}, b"display_name-error")):
            response = self.post(digest=digest, action="set", **fields)
            self.assertEqual(response.code, 400, fields)
            self.assertIn(b'id="' + error + b'"', response.body, fields)
        response = self.post(digest=digest, action="remove", address="ghost@example.test")
        self.assertEqual(response.code, 400)
        self.assertEqual(self.post(digest="0" * 64, action="remove",
                                   address="demo@example.test").code, 409)
        self.assertEqual(self.passwd.read_text(), before)
