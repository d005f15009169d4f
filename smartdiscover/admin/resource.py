"""
The console's routes: login and logout, and the pages behind a session.

Every POST must come from the console itself: a cross-site C{Origin} or
C{Sec-Fetch-Site} is refused, and the form must carry the session's CSRF
token (the login form: the token of its own cookie).  Forms are read by
hand, bounded: the site parses no POST body itself.
"""

from __future__ import annotations

import configparser
import hmac
import re
import secrets
from functools import partial
from typing import Callable
from urllib.parse import parse_qs

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import DeferredLock
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.template import renderElement

from smartdiscover.admin.pages import (
    STYLESHEET,
    Page,
    client_page,
    health_page,
    hostname_page,
    settings_page,
    users_page,
    login_page,
    message_page,
)
from smartdiscover.admin.preview import MAX_ADDRESS, preview
from smartdiscover.admin.settings import FIELDS, MAX_VALUE, changes, field_of, parse, values
from smartdiscover.admin.sessions import Session, Sessions
from smartdiscover.auth.credentials import (
    MAX_PASSWORD_BYTES,
    BasicCredentials,
    IPrincipalChecker,
)
from smartdiscover.auth.errors import Unavailable
from smartdiscover.auth.hashing import hash_password
from smartdiscover.config.address import AddressError, normalize_domain, split_address
from smartdiscover.config.edit import (
    FileChanged,
    digest,
    read_text,
    set_values,
    unified_diff,
    validate_text,
    write_text,
)
from smartdiscover.config.hostname import rename_host
from smartdiscover.config.loader import ConfigError
from smartdiscover.config.passwd_file import remove_user, set_password
from smartdiscover.config.principal import Principal
from smartdiscover.config.store import ConfigStore, RunInThread
from smartdiscover.health.endpoints import advertised
from smartdiscover.health.monitor import HealthMonitor
from smartdiscover.web.health import endpoint_states

# The pages behind a session: asked for without one, they send to the login.
PAGES = frozenset({b"", b"settings", b"hostname", b"client", b"users"})
SESSION_COOKIE = b"sd_session"
LOGIN_COOKIE = b"sd_login"
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 50
MAX_NAME = 64

# Besides the headers every response of the site gets (web/site.py): the
# console's own policy, which lets its stylesheet and forms through.
SECURITY_HEADERS = {
    b"Content-Security-Policy": b"default-src 'none'; style-src 'self'; img-src 'self'; "
                                b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    b"X-Frame-Options": b"DENY",
    # Browsers send "Origin: null" with a form posted under no-referrer,
    # and the console checks the origin of every form.
    b"Referrer-Policy": b"same-origin",
}

_LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")

_log = Logger(namespace="smartdiscover.admin")


class FormError(Exception):
    """
    A form body that cannot be read: too large, not UTF-8, too many fields.
    """


def read_form(request: Request) -> dict[str, str]:
    """
    The fields of an C{application/x-www-form-urlencoded} body, each once
    (the first value), bounded.

    @raise FormError: why it cannot be read.
    """
    content = request.content
    body = content.read(MAX_FORM_BYTES + 1) if content is not None else b""
    if len(body) > MAX_FORM_BYTES:
        raise FormError("the form is too large")
    try:
        text = body.decode("ascii")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FIELDS, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form cannot be read") from None
    return {key: values[0] for key, values in fields.items()}


class Console(Resource):
    """
    The console's root: every path is routed here (a leaf).
    """

    isLeaf = True

    def __init__(self, store: ConfigStore, monitor: HealthMonitor, guard: IPrincipalChecker,
                 sessions: Sessions, clock: IReactorTime, secure: Callable[[], bool],
                 run_in_thread: RunInThread) -> None:
        """
        @param guard: checks administrators' passwords (a
            L{smartdiscover.auth.guard.Guard} around
            L{smartdiscover.admin.checker.AdminChecker}).
        @param secure: whether the console is served over TLS (its cookies
            are then C{Secure}).
        """
        super().__init__()
        self._store = store
        self._monitor = monitor
        self._guard = guard
        self._sessions = sessions
        self._clock = clock
        self._secure = secure
        self._run_in_thread = run_in_thread
        # One change of the file at a time, in this process.
        self._writes = DeferredLock()

    # Dispatch.

    def render(self, request: Request) -> bytes | int:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        path = b"/".join(request.postpath or [])
        method = request.method
        if path == b"style.css" and method in (b"GET", b"HEAD"):
            request.setHeader(b"Content-Type", b"text/css; charset=utf-8")
            return STYLESHEET
        if method == b"POST" and not self._same_origin(request):
            _log.warn("console: cross-site {path} from {source} refused",
                      path=path.decode("ascii", "replace")[:80], source=_source(request))
            return self._show(request, message_page(
                "Refused", "This form was not sent from the console."), 403)
        if path == b"login":
            if method == b"POST":
                return self._login(request)
            return self._login_form(request)
        session = self._sessions.find(_cookie(request, SESSION_COOKIE))
        if session is None:
            if method == b"POST":
                return self._show(request, message_page(
                    "Session ended", "Your session has ended: log in again."), 403)
            if path not in PAGES:
                return self._show(request, message_page("Not found", "No such page."), 404)
            return _redirect(request, b"/login")
        if path == b"logout" and method == b"POST":
            return self._logout(request, session)
        if method == b"POST" and not session.accepts(_form(request).get("csrf")):
            return self._show(request, message_page(
                "Refused", "The form's token is missing or stale: reload the page.", session),
                403)
        if path == b"" and method in (b"GET", b"HEAD"):
            return self._health(request, session)
        if path == b"client" and method in (b"GET", b"HEAD"):
            return self._client(request, session)
        if path == b"settings" and method in (b"GET", b"HEAD", b"POST"):
            return self._settings(request, session)
        if path == b"users" and method in (b"GET", b"HEAD", b"POST"):
            return self._users(request, session)
        if path == b"hostname":
            if method == b"POST":
                return self._rename(request, session)
            if method in (b"GET", b"HEAD"):
                model = self._store.current
                return self._show(request, hostname_page(session, model.public_hostname, "",
                                                         {}))
        return self._show(request, message_page("Not found", "No such page.", session), 404)

    # Pages.

    def _health(self, request: Request, session: Session) -> int:
        model = self._store.current
        endpoints = endpoint_states(model, self._monitor, self._clock.seconds())
        return self._show(request, health_page(session, self._store.generation,
                                               self._store.last_error, model.health.probes,
                                               endpoints))

    def _settings(self, request: Request, session: Session) -> int:
        """
        The SmartDiscover tab: the fields as the file has them; a preview
        (the diff, checked as C{check-config} checks the file: errors on
        the fields, nothing written); the change applied in one step and
        reloaded, unless the file changed since the page was read, which
        shows the values now in the file and what was not saved.
        """
        model = self._store.current
        config = model.source
        form = _form(request) if request.method == b"POST" else {}
        if request.method == b"POST":
            domain_text = form.get("domain", "")
        else:
            args: dict[bytes, list[bytes]] = request.args or {}
            domain_text = args.get(b"domain", [b""])[0].decode("utf-8", "replace")
        domain = domain_text.strip().lower() or None
        if domain is not None and not model.serves(domain):
            return self._show(request, message_page(
                "Not found", "That is not a served domain.", session), 404)
        entered = {f.name: form[f.name][:MAX_VALUE + 1] for f in FIELDS if f.name in form}
        action = form.get("action")
        seen = form.get("digest", "")
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def work() -> tuple[Page | None, int, str]:
            """
            The page to show and its status, or (None, 0, what changed)
            once written; blocking.
            """
            text = read_text(config)
            now = digest(text)
            try:
                parser = parse(text)
            except configparser.Error as e:
                return message_page("The file cannot be read", str(e).splitlines()[0],
                                    session), 500, ""
            current = values(parser, domain)
            page = partial(settings_page, session, model.domains, domain,
                           main=values(parser, None), digest=now)
            if action is None:
                return page(current, errors={}), 200, ""
            if now != seen:
                lost = [f"{name} = {value}" for name, value in entered.items()
                        if value.strip() != current.get(name, "")]
                return page(current, errors={}, message=(
                    "The file changed since you opened this page (someone else saved "
                    "it): these are the values in it now. Nothing was saved"
                    + (": " + "; ".join(lost) if lost else "."))), 409, ""
            errors = {name: f"At most {MAX_VALUE} characters." for name, value
                      in entered.items() if len(value) > MAX_VALUE}
            if errors:
                return page(entered, errors=errors), 400, ""
            wanted = changes(current, entered, domain)
            if not wanted:
                return page(current, errors={}, message="Nothing changed."), 200, ""
            try:
                new_text = set_values(text, wanted)
            except ValueError as e:
                return page(entered, errors={}, problems=[str(e)]), 400, ""
            try:
                validate_text(config, new_text)
            except ConfigError as e:
                errors, others = {}, []
                for problem in e.problems:
                    name = field_of(problem.section, problem.key, domain)
                    if name is not None:
                        errors.setdefault(name, problem.message)
                    else:
                        others.append(str(problem))
                return page(entered, errors=errors, problems=others), 400, ""
            if action != "apply":
                return page(entered, errors={}, diff=unified_diff(config, text, new_text),
                            entered=entered), 200, ""
            write_text(config, new_text, expected=seen)
            return None, 0, ", ".join(f"[{s}] {k}" for s, k in wanted)

        def done(result: tuple[Page | None, int, str]) -> object:
            page, code, summary = result
            if page is None:
                _log.info("console: {name} changed {keys} in {file}", name=session.name,
                          keys=summary, file=str(config))
                return self._store.reload().addCallback(reloaded)
            if not gone:
                self._show(request, page, code)
            return None

        def reloaded(ok: bool) -> None:
            if gone:
                return
            outcome = "Saved and reloaded." if ok else (
                f"Saved; the reload failed: {self._store.last_error}")
            self._show(request, message_page("Saved", outcome, session))

        def failed(failure: Failure) -> None:
            if not failure.check(FileChanged):
                _log.failure("console: saving the settings", failure)
            if not gone:
                self._show(request, message_page(
                    "Not saved", "The file changed while it was being written, or the "
                    "write failed: nothing was saved; open the page again.", session), 409)

        self._writes.run(self._run_in_thread, work).addCallback(done).addErrback(failed)
        return NOT_DONE_YET

    def _users(self, request: Request, session: Session) -> int:
        """
        The password file's users: add one, set a password, remove one;
        the file replaced in one step (only if unchanged since the page
        was read) and reloaded.  Only with C{[auth] backend = passwd}.
        """
        model = self._store.current
        path = model.auth.passwd_file
        if model.auth.backend != "passwd" or path is None:
            return self._show(request, message_page(
                "Users", f"Users are kept by the {model.auth.backend} backend, not here.",
                session), 404)
        form = _form(request) if request.method == b"POST" else {}
        action = form.get("action")
        address = form.get("address", "").strip()[:MAX_ADDRESS + 1]
        display_name = form.get("display_name", "").strip()[:201]
        password = form.get("password", "").encode("utf-8")
        seen = form.get("digest", "")
        case_sensitive = model.auth.case_sensitive_local
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def listed(text: str) -> list[tuple[str, str]]:
            found = []
            for line in text.splitlines():
                fields = line.strip().split(":")
                if line.strip() and not line.strip().startswith("#") and len(fields) >= 2:
                    found.append((fields[0], fields[4] if len(fields) > 4 else ""))
            return found

        def work() -> tuple[Page | None, int, str]:
            text = read_text(path)
            now = digest(text)
            page = partial(users_page, session, listed(text), now)
            if action is None:
                return page({}), 200, ""
            if now != seen:
                return page({}, message="The password file changed since you opened this "
                                        "page: these are its users now. Nothing was saved."
                            ), 409, ""
            errors: dict[str, str] = {}
            try:
                if len(address) > MAX_ADDRESS:
                    raise AddressError(f"at most {MAX_ADDRESS} characters")
                _, domain = split_address(address)
                if not model.serves(domain):
                    raise AddressError(f"{domain} is not a served domain")
            except AddressError as e:
                errors["address"] = f"Not an address of a served domain: {e}."
            if action == "remove" and not errors:
                new_text, existed = remove_user(text, address, case_sensitive)
                if not existed:
                    errors["address"] = "No such user."
            elif action == "set" and not errors:
                if not password or len(password) > MAX_PASSWORD_BYTES:
                    errors["password"] = f"1 to {MAX_PASSWORD_BYTES} bytes."
                elif form.get("confirm", "").encode("utf-8") != password:
                    errors["confirm"] = "The two passwords differ."
                else:
                    try:
                        new_text, existed = set_password(
                            text, address, hash_password(password).decode("ascii"),
                            display_name or None, case_sensitive)
                    except ValueError as e:
                        errors["display_name"] = f"{e}."
            elif not errors:
                errors["address"] = "Unknown action."
            if errors:
                return page(errors, address, display_name), 400, ""
            write_text(path, new_text, expected=seen, mode=0o600)
            done_what = ("removed" if action == "remove" else
                         "password set for" if existed else "added")
            return None, 0, f"{done_what} {address}"

        def done(result: tuple[Page | None, int, str]) -> object:
            page, code, summary = result
            if page is None:
                _log.info("console: {name} {change} in {file}", name=session.name,
                          change=summary, file=str(path))
                return self._store.reload().addCallback(reloaded, summary)
            if not gone:
                self._show(request, page, code)
            return None

        def reloaded(ok: bool, summary: str) -> None:
            if gone:
                return
            outcome = "reloaded." if ok else f"the reload failed: {self._store.last_error}"
            self._show(request, message_page("Users", f"User {summary}; {outcome}", session))

        def failed(failure: Failure) -> None:
            if not failure.check(FileChanged):
                _log.failure("console: changing the users", failure)
            if not gone:
                self._show(request, message_page(
                    "Not saved", "The password file changed while it was being written, "
                    "or the write failed: nothing was saved.", session), 409)

        self._writes.run(self._run_in_thread, work).addCallback(done).addErrback(failed)
        return NOT_DONE_YET

    def _rename(self, request: Request, session: Session) -> int:
        """
        Set New Hostname For All: a preview, or the change applied, written
        in one step and reloaded; refused when the file changed since the
        preview (the new preview is shown).
        """
        form = _form(request)
        old_text, new_text = form.get("old", "").strip(), form.get("new", "").strip()
        errors: dict[str, str] = {}
        names = {}
        for field, value in (("old", old_text), ("new", new_text)):
            try:
                if not value or len(value) > 253:
                    raise AddressError("a host name of 1 to 253 characters")
                names[field] = normalize_domain(value)
            except AddressError as e:
                errors[field] = f"Not a host name: {e}."
        old_text, new_text = old_text[:253], new_text[:253]
        if errors:
            return self._show(request, hostname_page(session, old_text, new_text, errors), 400)
        old, new = names["old"], names["new"]
        config = self._store.current.source
        apply = form.get("action") == "apply"
        seen = form.get("digest", "")
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def work() -> tuple[str, str | None, str | None, str | None]:
            """
            (message, diff, digest, invalid) for the page; blocking.
            """
            text = read_text(config)
            renamed = rename_host(text, old, new)
            if renamed == text:
                return f"Nothing in {config} uses {old}.", None, None, None
            try:
                validate_text(config, renamed)
            except ConfigError as e:
                return "", None, None, str(e)
            now = digest(text)
            if apply and now == seen:
                write_text(config, renamed, expected=seen)
                return "written", None, None, None
            changed = ("The file changed since your preview (someone else saved it): "
                       "here is the preview of the file as it is now. "
                       if apply else "")
            return changed, unified_diff(config, text, renamed), now, None

        def done(result: tuple[str, str | None, str | None, str | None]) -> object:
            message, diff, current, invalid = result
            if message == "written":
                _log.info("console: {name} renamed host {old} to {new} in {file}",
                          name=session.name, old=old, new=new, file=str(config))
                return self._store.reload().addCallback(reloaded)
            if gone:
                return None
            errors = {"file": invalid} if invalid is not None else {}
            self._show(request, hostname_page(session, old, new, errors, diff, current,
                                              message or None),
                       200 if invalid is None else 400)
            return None

        def reloaded(ok: bool) -> None:
            if gone:
                return
            outcome = ("written and reloaded." if ok else
                       f"written; the reload failed: {self._store.last_error}")
            self._show(request, hostname_page(
                session, new, "", {}, message=f"{old} is now {new} in {config}: {outcome}"))

        def failed(failure: Failure) -> None:
            if failure.check(FileChanged):
                # Saved by someone else between the check and the write.
                done(("The file changed while it was being written: nothing was "
                      "written; preview again.", None, None, None))
                return
            _log.failure("console: renaming a host", failure)
            if not gone:
                self._show(request, message_page("Error", "The change failed; see the log.",
                                                 session), 500)

        self._writes.run(self._run_in_thread, work).addCallback(done).addErrback(failed)
        return NOT_DONE_YET

    def _client(self, request: Request, session: Session) -> int:
        args: dict[bytes, list[bytes]] = request.args or {}
        raw = args.get(b"address", [b""])[0]
        try:
            address = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return self._show(request, client_page(session, "", "Not UTF-8 text.", []), 400)
        if not address:
            return self._show(request, client_page(session, "", None, []))
        model = advertised(self._store.current, self._monitor.down)
        try:
            shown = preview(model, address)
        except ValueError as e:
            return self._show(request, client_page(session, address[:MAX_ADDRESS],
                                                   f"{e}.", []), 400)
        return self._show(request, client_page(session, address, None, shown))

    def _login_form(self, request: Request, error: str | None = None, name: str = "",
                    code: int = 200) -> int:
        if error is None and self._sessions.find(_cookie(request, SESSION_COOKIE)):
            return _redirect(request, b"/")
        # The same token for every login page of this browser: a page
        # opened in another tab, or a fetch that lands here (the favicon),
        # must not void the form already shown.
        token = _cookie(request, LOGIN_COOKIE) or ""
        if not _LOGIN_TOKEN.fullmatch(token):
            token = secrets.token_urlsafe(32)
            self._cookie(request, LOGIN_COOKIE, token.encode("ascii"))
        return self._show(request, login_page(token, error, name), code)

    def _login(self, request: Request) -> int:
        try:
            form = read_form(request)
        except FormError as e:
            return self._login_form(request, f"The form was refused: {e}.", code=400)
        expected = _cookie(request, LOGIN_COOKIE) or ""
        sent = form.get("login_csrf", "")
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            return self._login_form(request, "The form has expired: log in again.", code=403)
        name = form.get("name", "").strip()
        password = form.get("password", "").encode("utf-8")
        if not name or not password or len(name) > MAX_NAME or len(
                password) > MAX_PASSWORD_BYTES:
            return self._login_form(request, "The name or the password is wrong.",
                                    name[:MAX_NAME], 401)
        source = _source(request)
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        checked = self._guard.requestAvatarId(BasicCredentials(
            name, password, source, self._store.current))

        def allowed(principal: Principal) -> None:
            if gone:
                return  # the browser left before the check ended
            session = self._sessions.open(principal.address, source)
            _log.info("console: {name} logged in from {source}", name=principal.address,
                      source=source)
            self._cookie(request, SESSION_COOKIE, session.token.encode("ascii"))
            self._cookie(request, LOGIN_COOKIE, b"", expire=True)
            _redirect(request, b"/")

        def refused(failure: Failure) -> None:
            if gone:
                return
            if failure.check(UnauthorizedLogin):
                _log.info("console: login refused for {name} from {source}",
                          name=name[:MAX_NAME], source=source)
                self._login_form(request, "The name or the password is wrong.",
                                 name[:MAX_NAME], 401)
            elif failure.check(Unavailable):
                self._login_form(request, "Logins cannot be checked now: try again in a "
                                 "moment.", name[:MAX_NAME], 503)
            else:
                _log.failure("console: checking a login", failure)
                self._login_form(request, "Logins cannot be checked now.", name[:MAX_NAME],
                                 503)

        checked.addCallbacks(allowed, refused)
        return NOT_DONE_YET

    def _logout(self, request: Request, session: Session) -> int:
        if not session.accepts(_form(request).get("csrf")):
            return self._show(request, message_page(
                "Refused", "The form's token is missing or stale: reload the page.", session),
                403)
        self._sessions.close(session.token)
        _log.info("console: {name} logged out", name=session.name)
        self._cookie(request, SESSION_COOKIE, b"", expire=True)
        return _redirect(request, b"/login")

    # Helpers.

    def _same_origin(self, request: Request) -> bool:
        """
        Whether a POST comes from the console's own pages, as far as the
        browser says: C{Sec-Fetch-Site} and C{Origin}, when sent.
        """
        site = request.getHeader(b"sec-fetch-site")
        if site is not None and site.lower() not in (b"same-origin", b"none"):
            return False
        origin = request.getHeader(b"origin")
        if origin is None:
            return True
        host = request.getHeader(b"host") or b""
        scheme = b"https" if self._secure() else b"http"
        return origin.lower() == scheme + b"://" + host.lower()

    def _cookie(self, request: Request, name: bytes, value: bytes, expire: bool = False) -> None:
        request.addCookie(name, value, path=b"/", httpOnly=True, sameSite=b"strict",
                          secure=True if self._secure() else None,
                          max_age=b"0" if expire else None)

    def _show(self, request: Request, page: Page, code: int = 200) -> int:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        renderElement(request, page)
        return NOT_DONE_YET


def _form(request: Request) -> dict[str, str]:
    """
    The fields of the request's form, read once (an unreadable form has
    none, so its token is missing).
    """
    form = getattr(request, "_console_form", None)
    if form is None:
        try:
            form = read_form(request)
        except FormError:
            form = {}
        request._console_form = form  # type: ignore[attr-defined]
    return form


def _cookie(request: Request, name: bytes) -> str | None:
    value = request.getCookie(name)
    if value is None:
        return None
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        return None


def _source(request: Request) -> str:
    peer = request.getClientAddress()
    return str(getattr(peer, "host", "unknown"))


def _redirect(request: Request, location: bytes) -> int:
    request.setResponseCode(303)
    request.setHeader(b"Location", location)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    request.write(b"")
    request.finish()
    return NOT_DONE_YET
