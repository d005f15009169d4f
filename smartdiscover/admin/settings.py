"""
The seed's SmartDiscover tab as data: its fields, in its order, read from
the INI text and turned back into changes of it.

The main page edits the main sections; a domain's page edits its
C{[domain:NAME]} overrides (C{imap.host = ...}), an empty field meaning
"as in the main sections".
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass

from smartdiscover.config.loader import DOMAIN_PREFIX

SERVICES = (("smtp", "SMTP"), ("pop3", "POP3"), ("imap", "IMAP"), ("xmpp", "XMPP"),
            ("sip", "SIP"))
URLS = (("activesync", "MobileSync (ActiveSync)"), ("ews", "EWS"), ("syncml", "SyncML"),
        ("webdav", "WebDAV & SmartAttach"), ("webclient", "WebClient"),
        ("webadmin", "WebAdmin"), ("freebusy", "Free/Busy"), ("ical", "Internet Calendar"),
        ("sms", "SMS"), ("antispam", "Antispam"), ("install", "Install"),
        ("teamchat", "TeamChat API"), ("collaboration", "Collaboration API"),
        ("caldav", "CalDAV"), ("carddav", "CardDAV"))
SECURITY_CHOICES = (("", "(not set)"), ("none", "Standard"), ("starttls", "STARTTLS"),
                    ("ssl", "TLS/SSL"))
MAX_VALUE = 2000


@dataclass(frozen=True)
class Field:
    """
    One field of the tab: its INI section and key, its label, its group,
    and whether it is a choice of security.
    """

    section: str
    key: str
    label: str
    group: str
    choice: bool = False

    @property
    def name(self) -> str:
        """
        The form field's name (and its id): C{section.key}, as a domain's
        override is written.
        """
        return f"{self.section}.{self.key}"


def _fields() -> tuple[Field, ...]:
    found = [Field("server", "public_hostname", "Public Hostname", "Server")]
    for section, label in SERVICES:
        found += [Field(section, "host", f"{label} host", label),
                  Field(section, "port", f"{label} port", label),
                  Field(section, "security", f"{label} security", label, choice=True),
                  Field(section, "ports", f"{label} ports, in order (e.g. 465/ssl, "
                                          "587/starttls; instead of port and security)",
                        label)]
    found += [Field("urls", key, label, "URLs") for key, label in URLS]
    return tuple(found)


FIELDS = _fields()


def parse(text: str) -> configparser.ConfigParser:
    """
    The INI text read as the loader reads it.

    @raise configparser.Error: it cannot be.
    """
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"),
                                       strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text.lstrip("\ufeff"))
    return parser


def values(parser: configparser.ConfigParser, domain: str | None) -> dict[str, str]:
    """
    Each field's value as written: in the main sections, or in the
    domain's overrides ("" where it has none).
    """
    found = {}
    for field in FIELDS:
        if domain is None:
            section = parser[field.section] if parser.has_section(field.section) else {}
            found[field.name] = section.get(field.key, "").strip()
        else:
            overrides = parser[DOMAIN_PREFIX + domain] \
                if parser.has_section(DOMAIN_PREFIX + domain) else {}
            found[field.name] = overrides.get(field.name, "").strip()
    return found


def changes(before: dict[str, str], entered: dict[str, str], domain: str | None
            ) -> dict[tuple[str, str], str | None]:
    """
    The (section, key) changes the entries make: a value set, or L{None}
    for a field emptied (the key goes).  Fields not in the form stay.
    """
    found: dict[tuple[str, str], str | None] = {}
    for field in FIELDS:
        if field.name not in entered:
            continue
        new = entered[field.name].strip()
        if new == before.get(field.name, ""):
            continue
        where = (field.section, field.key) if domain is None else (DOMAIN_PREFIX + domain,
                                                                   field.name)
        found[where] = new or None
    return found


def field_of(section: str | None, key: str | None, domain: str | None) -> str | None:
    """
    The form field a problem of the loader is about (its C{section} and
    C{key}), or L{None}.
    """
    if section is None or key is None:
        return None
    if domain is None:
        name = f"{section}.{key}"
    elif section == DOMAIN_PREFIX + domain:
        name = key
    else:
        return None
    return name if any(f.name == name for f in FIELDS) else None
