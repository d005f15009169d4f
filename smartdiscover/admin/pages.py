"""
The console's pages, built with twisted.web.template's tags: every value
is escaped by construction, no page needs JavaScript, every field has its
label and every error stands next to what it is about.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.web.template import Element, Tag, TagLoader, tags

from smartdiscover.admin.preview import Shown
from smartdiscover.admin.sessions import Session
from smartdiscover.admin.settings import FIELDS, MAX_VALUE, SECURITY_CHOICES

TITLE = "SmartDiscover"

STYLESHEET = b"""\
:root { color-scheme: light dark; --accent: #1f5fa8; --bad: #b00020; --good: #1b7a2e; }
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; }
header { display: flex; align-items: center; gap: 1.5em; padding: .6em 1.5em;
         border-bottom: 1px solid #8884; }
header .brand { font-weight: 600; }
header nav a { margin-right: 1em; }
header form { margin-left: auto; }
main { padding: 1em 1.5em; max-width: 80em; }
a { color: var(--accent); }
a:focus, button:focus, input:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
label { display: block; font-weight: 600; margin-top: 1em; }
input[type=text], input[type=password] { font: inherit; padding: .3em; width: 20em;
                                          max-width: 100%; }
button { font: inherit; padding: .3em 1em; margin-top: 1em; }
.error { color: var(--bad); font-weight: 600; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { text-align: left; padding: .3em .8em; border-bottom: 1px solid #8884;
         vertical-align: top; }
.state-ok { color: var(--good); }
.state-failing { color: var(--bad); font-weight: 600; }
fieldset { margin-top: 1em; border: 1px solid #8886; }
legend { font-weight: 600; }
nav.domains a { margin-right: 1em; }
select { font: inherit; padding: .3em; }
.scroll { overflow-x: auto; }
pre { background: #8881; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
"""


class Page(Element):
    """
    A whole page: the tag tree, rendered by L{twisted.web.template}.
    """

    def __init__(self, tree: Tag) -> None:
        super().__init__(loader=TagLoader(tree))


def layout(title: str, session: Session | None, *content: Any) -> Page:
    """
    Every page: the header (the navigation and a logout form once logged
    in), then C{content} under an C{h1} of C{title}.
    """
    header = tags.header(tags.span(TITLE, class_="brand"))
    if session is not None:
        header(tags.nav(tags.a("Health", href="/"),
                        tags.a("SmartDiscover", href="/settings"),
                        tags.a("What a client gets", href="/client"),
                        tags.a("Set New Hostname For All", href="/hostname"),
                        tags.a("Users", href="/users"),
                        **{"aria-label": "Console"}),
               tags.form(tags.input(type="hidden", name="csrf", value=session.csrf),
                         tags.span(f"{session.name} "),
                         tags.button("Log out", type="submit"),
                         method="post", action="/logout"))
    # twisted.web.template's tags predate <main>; a Tag of that name is
    # escaped and rendered as any other.
    return Page(tags.html(
        tags.head(tags.meta(charset="utf-8"),
                  tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
                  tags.title(f"{title} - {TITLE}"),
                  tags.link(rel="stylesheet", href="/style.css")),
        tags.body(header, Tag("main")(tags.h1(title), *content)),
        lang="en"))


def login_page(login_token: str, error: str | None = None, name: str = "") -> Page:
    """
    The login form; C{error} next to it, the name typed kept (never the
    password).
    """
    fields: list[Any] = []
    if error is not None:
        fields.append(tags.p(error, class_="error", id="login-error", role="alert"))
    described = {"aria-describedby": "login-error"} if error is not None else {}
    fields += [
        tags.input(type="hidden", name="login_csrf", value=login_token),
        tags.label("Name", for_="name"),
        tags.input(type="text", id="name", name="name", value=name, required="required",
                   autocomplete="username", maxlength="64", autofocus="autofocus",
                   **described),
        tags.label("Password", for_="password"),
        tags.input(type="password", id="password", name="password", required="required",
                   autocomplete="current-password", maxlength="1024", **described),
        tags.div(tags.button("Log in", type="submit")),
    ]
    return layout("Log in", None, tags.form(*fields, method="post", action="/login"))


def message_page(title: str, text: str, session: Session | None = None) -> Page:
    return layout(title, session, tags.p(text))


def _moment(iso: str | None) -> str:
    """
    C{2026-12-03 16:26:08 UTC} for an ISO 8601 time in UTC.
    """
    return (iso or "").replace("T", " ").replace("+00:00", " UTC")


def health_page(session: Session, generation: int, last_error: str | None,
                probes: bool, endpoints: Iterable[dict[str, Any]]) -> Page:
    """
    The configuration generation and last reload, and every probed
    endpoint with its state.
    """
    reload = (tags.p("The last reload succeeded.") if last_error is None else
              tags.p("The last reload failed: ", tags.span(last_error, class_="error")))
    rows = []
    for endpoint in endpoints:
        state = endpoint["state"]
        rows.append(tags.tr(
            tags.td(endpoint["endpoint"]), tags.td(endpoint["security"]),
            tags.td(state, class_=f"state-{state}"),
            tags.td(_moment(endpoint["since"])),
            tags.td("" if endpoint["latency_ms"] is None else f"{endpoint['latency_ms']} ms"),
            tags.td(endpoint["error"] or ""),
            tags.td("" if endpoint["certificate_days_left"] is None
                    else f"{endpoint['certificate_days_left']} days"),
            tags.td("yes" if endpoint["advertised"] else "no")))
    if not probes:
        table: Any = tags.p("Probes are off ([health] probes = no): every endpoint is "
                            "advertised.")
    elif not rows:
        table = tags.p("No endpoint has been probed yet.")
    else:
        table = tags.div(tags.table(
            tags.caption("Advertised endpoints"),
            tags.thead(tags.tr(*(tags.th(h, scope="col") for h in (
                "Endpoint", "Security", "State", "Since", "Latency", "Last error",
                "Certificate", "Advertised")))),
            tags.tbody(*rows)), class_="scroll")
    return layout("Health", session,
                  tags.p(f"Configuration generation {generation}."), reload, table)


def client_page(session: Session, address: str, error: str | None,
                shown: Iterable[Shown]) -> Page:
    """
    An address in; every answer a client of it gets out.
    """
    described = {"aria-describedby": "address-error", "aria-invalid": "true"} \
        if error is not None else {}
    fields: list[Any] = [
        tags.label("E-mail address", for_="address"),
        tags.input(type="text", id="address", name="address", value=address,
                   required="required", maxlength="320", autocomplete="off", **described),
    ]
    if error is not None:
        fields.append(tags.p(error, class_="error", id="address-error", role="alert"))
    fields.append(tags.div(tags.button("Show", type="submit")))
    sections = [tags.section(tags.h2(item.title), tags.p(tags.code(item.asked)),
                             tags.pre(item.text))
                for item in shown]
    return layout("What a client gets", session,
                  tags.form(*fields, method="get", action="/client"), *sections)


def _field(label: str, name: str, value: str, error: str | None, **extra: str) -> list[Any]:
    """
    A labelled text field, its error right after it (announced, and tied
    to the field for screen readers).
    """
    attributes = dict(extra)
    if error is not None:
        attributes.update({"aria-describedby": f"{name}-error", "aria-invalid": "true"})
    found: list[Any] = [tags.label(label, for_=name),
                        tags.input(type="text", id=name, name=name, value=value, **attributes)]
    if error is not None:
        found.append(tags.p(error, class_="error", id=f"{name}-error", role="alert"))
    return found


def hostname_page(session: Session, old: str, new: str, errors: dict[str, str],
                  diff: str | None = None, digest: str | None = None,
                  message: str | None = None) -> Page:
    """
    Set New Hostname For All: the old and the new name; the preview of
    every line the change makes (a diff of the file) with an Apply button
    that carries the digest of the file it was made from.
    """
    content: list[Any] = []
    if message is not None:
        content.append(tags.p(message, role="status"))
    content.append(tags.form(
        tags.input(type="hidden", name="csrf", value=session.csrf),
        tags.input(type="hidden", name="action", value="preview"),
        *_field("Current host name", "old", old, errors.get("old"), required="required",
                maxlength="253"),
        *_field("New host name", "new", new, errors.get("new"), required="required",
                maxlength="253"),
        tags.div(tags.button("Preview", type="submit")),
        method="post", action="/hostname"))
    if "file" in errors:
        content.append(tags.section(tags.h2("The result would not be valid"),
                                    tags.pre(errors["file"], class_="error"),
                                    tags.p("Nothing was written.")))
    if diff is not None and digest is not None:
        content.append(tags.section(
            tags.h2("What changes"), tags.pre(diff),
            tags.form(tags.input(type="hidden", name="csrf", value=session.csrf),
                      tags.input(type="hidden", name="action", value="apply"),
                      tags.input(type="hidden", name="old", value=old),
                      tags.input(type="hidden", name="new", value=new),
                      tags.input(type="hidden", name="digest", value=digest),
                      tags.button("Apply and reload", type="submit"),
                      method="post", action="/hostname")))
    return layout("Set New Hostname For All", session, *content)


def settings_page(session: Session, domains: Iterable[str], domain: str | None,
                  shown: dict[str, str], main: dict[str, str], errors: dict[str, str],
                  digest: str, problems: Iterable[str] = (), message: str | None = None,
                  diff: str | None = None, entered: dict[str, str] | None = None) -> Page:
    """
    The seed's SmartDiscover tab: every field of the main sections, or of
    one domain's overrides (the main value shown as the placeholder, an
    override marked as such); errors next to their fields; after a
    preview, the diff of the file and an Apply button carrying what was
    entered and the digest of the file it was made from.
    """
    choose = [tags.a("Main settings", href="/settings")]
    for name in domains:
        choose.append(tags.a(name, href=f"/settings?domain={name}"))
    content: list[Any] = [tags.nav(*choose, class_="domains",
                                   **{"aria-label": "Settings of"})]
    if message is not None:
        content.append(tags.p(message, role="status"))
    listed = list(problems)
    if listed:
        content.append(tags.section(tags.h2("The configuration would not be valid"),
                                    tags.ul(*(tags.li(p) for p in listed), class_="error"),
                                    tags.p("Nothing was written.")))
    groups: dict[str, list[Any]] = {}
    for field in FIELDS:
        value = shown.get(field.name, "")
        error = errors.get(field.name)
        attributes: dict[str, str] = {}
        if error is not None:
            attributes.update({"aria-describedby": f"{field.name}-error",
                               "aria-invalid": "true"})
        label = field.label
        if domain is not None and (entered or {}).get(field.name, value):
            label += " (override)"
        if field.choice:
            options = []
            for option, text in SECURITY_CHOICES:
                if domain is not None and option == "":
                    text = f"as in the main settings ({main.get(field.name) or 'not set'})"
                selected = {"selected": "selected"} if option == value else {}
                options.append(tags.option(text, value=option, **selected))
            control: Any = tags.select(*options, id=field.name, name=field.name, **attributes)
        else:
            placeholder = main.get(field.name, "") if domain is not None else ""
            control = tags.input(type="text", id=field.name, name=field.name, value=value,
                                 maxlength=str(MAX_VALUE), placeholder=placeholder,
                                 **attributes)
        items = [tags.label(label, for_=field.name), control]
        if error is not None:
            items.append(tags.p(error, class_="error", id=f"{field.name}-error",
                                role="alert"))
        groups.setdefault(field.group, []).extend(items)
    fieldsets = [tags.fieldset(tags.legend(group), *items) for group, items in groups.items()]
    hidden = [tags.input(type="hidden", name="csrf", value=session.csrf),
              tags.input(type="hidden", name="digest", value=digest),
              tags.input(type="hidden", name="domain", value=domain or "")]
    content.append(tags.form(*hidden, tags.input(type="hidden", name="action", value="preview"),
                             *fieldsets, tags.div(tags.button("Preview the change",
                                                              type="submit")),
                             method="post", action="/settings"))
    if diff is not None and entered is not None:
        content.insert(1 if message is None else 2, tags.section(
            tags.h2("What changes"), tags.pre(diff),
            tags.form(*hidden, tags.input(type="hidden", name="action", value="apply"),
                      *(tags.input(type="hidden", name=name, value=value)
                        for name, value in entered.items()),
                      tags.button("Apply and reload", type="submit"),
                      method="post", action="/settings")))
    title = "SmartDiscover" if domain is None else f"SmartDiscover: {domain}"
    return layout(title, session, *content)


def users_page(session: Session, users: Iterable[tuple[str, str]], digest: str,
               errors: dict[str, str], address: str = "", display_name: str = "",
               message: str | None = None) -> Page:
    """
    The password file's users: one removal form each, and a form that adds
    a user or sets a new password (asked twice).
    """
    content: list[Any] = []
    if message is not None:
        content.append(tags.p(message, role="status"))
    rows = [tags.tr(tags.td(user), tags.td(name),
                    tags.td(tags.form(
                        tags.input(type="hidden", name="csrf", value=session.csrf),
                        tags.input(type="hidden", name="digest", value=digest),
                        tags.input(type="hidden", name="action", value="remove"),
                        tags.input(type="hidden", name="address", value=user),
                        tags.button("Remove", type="submit", **{"aria-label": f"Remove {user}"}),
                        method="post", action="/users")))
            for user, name in users]
    content.append(tags.table(tags.caption("Users of the password file"),
                              tags.thead(tags.tr(tags.th("Address", scope="col"),
                                                 tags.th("Display name", scope="col"),
                                                 tags.th("", scope="col"))),
                              tags.tbody(*rows)) if rows else tags.p("No users yet."))
    password_attributes = {"autocomplete": "new-password", "maxlength": "1024"}
    fields: list[Any] = [
        tags.input(type="hidden", name="csrf", value=session.csrf),
        tags.input(type="hidden", name="digest", value=digest),
        tags.input(type="hidden", name="action", value="set"),
        *_field("Address", "address", address, errors.get("address"), required="required",
                maxlength="320", autocomplete="off"),
        *_field("Display name (optional)", "display_name", display_name,
                errors.get("display_name"), maxlength="200"),
    ]
    for name, label in (("password", "Password"), ("confirm", "The password again")):
        error = errors.get(name)
        attributes = dict(password_attributes)
        if error is not None:
            attributes.update({"aria-describedby": f"{name}-error", "aria-invalid": "true"})
        fields += [tags.label(label, for_=name),
                   tags.input(type="password", id=name, name=name, required="required",
                              **attributes)]
        if error is not None:
            fields.append(tags.p(error, class_="error", id=f"{name}-error", role="alert"))
    fields.append(tags.div(tags.button("Add the user or set the password", type="submit")))
    content.append(tags.section(tags.h2("Add a user, or set a new password"),
                                tags.form(*fields, method="post", action="/users")))
    return layout("Users", session, *content)
