"""
The [records] section: the zone owner's own records in the served zones
(SPF, DMARC and verification TXT, CNAME, extra MX and SRV, CAA, A/AAAA),
published beside the records SmartDiscover derives, and checked at load so
that none contradicts a derived one (docs/dns.md, "Records of your own").

One key per name and type, C{NAME TYPE = DATA}, one record a line
(continuation lines indented, as configparser reads them)::

    [records]
    example.test TXT = "v=spf1 mx -all"
    _dmarc.example.test TXT = "v=DMARC1; p=reject"
    example.test CAA = 0 issue "letsencrypt.org"
                       0 iodef "mailto:security@example.test"
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from typing import Callable, Mapping

import idna

from smartdiscover.config.dns import in_zone
from smartdiscover.config.model import Catalogue, DNSSettings, ZoneRecord
from smartdiscover.config.zone import zone_hosts

RECORDS = "records"
TYPES = ("A", "AAAA", "CAA", "CNAME", "MX", "SRV", "TXT")
# What [dns] and the service sections already say, and where.
_DERIVED_TYPES = {"SOA": "[dns] (every apex has its SOA)",
                  "NS": "[dns] nameservers", "NAPTR": "[sip]"}
MAX_STRING = 255  # bytes of one TXT character-string (RFC 1035 3.3.14)
# Bytes one RRset takes in an answer (its records' RDATA plus 12 bytes of
# owner pointer, type, class, TTL and length each): a TCP message holds
# 65535 bytes in all, and the additional section needs room too.
MAX_RRSET_BYTES = 32768
MAX_CHAIN = 8  # CNAMEs one after the other; resolvers give up soon after
MAX_CAA_TAG = 15  # RFC 8659 4.1: tags up to 15 characters must be supported
CAA_CRITICAL = 128
# RFC 8659 4.2-4.4 (issue, issuewild, iodef), RFC 9495 (issuemail), the
# CA/Browser Forum's BR 3.2.2.4 (contactemail, contactphone) and VMC
# requirements (issuevmc).
CAA_ISSUE_TAGS = ("issue", "issuewild", "issuemail", "issuevmc")
CAA_KNOWN_TAGS = CAA_ISSUE_TAGS + ("iodef", "contactemail", "contactphone")

# The owners of the SRV records dns/records.py publishes in every zone,
# always ("0 0 0 ." where the service is not offered), and the setting each
# follows.  tests/unit/test_zone_records.py checks that this list and
# derived() still hold every record dns/records.py yields.
DERIVED_SRV = {
    "_submissions._tcp": "[smtp]", "_submission._tcp": "[smtp]",
    "_imaps._tcp": "[imap]", "_imap._tcp": "[imap]",
    "_pop3s._tcp": "[pop3]", "_pop3._tcp": "[pop3]",
    "_xmpps-client._tcp": "[xmpp]", "_xmpp-client._tcp": "[xmpp]",
    "_xmpp-server._tcp": "[xmpp] server_port",
    "_sips._tcp": "[sip]", "_sip._tcp": "[sip]", "_sip._udp": "[sip]",
    "_caldavs._tcp": "[urls] caldav", "_caldav._tcp": "[urls] caldav",
    "_carddavs._tcp": "[urls] carddav", "_carddav._tcp": "[urls] carddav",
    "_autodiscover._tcp": "[server] https",
}

Report = Callable[[str | None, str | None, str], None]

_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")
_SERVICE_LABEL = re.compile(r"[a-z0-9_-]*_[a-z0-9_-]*\Z")  # _dmarc, _25, s1._domainkey's _domainkey
_NUMBER = re.compile(r"[0-9]{1,5}\Z")
_DIGITS = "0123456789"
# RFC 8659 4.2: issuer-domain-name, parameters (the ABNF, as regular expressions).
_CAA_LABEL = r"[A-Za-z0-9](?:-*[A-Za-z0-9])*"
_CAA_PARAMETER = rf"{_CAA_LABEL}[ \t]*=[ \t]*[\x21-\x3a\x3c-\x7e]*"
_CAA_ISSUE = re.compile(
    rf"[ \t]*(?:{_CAA_LABEL}(?:\.{_CAA_LABEL})*[ \t]*)?"
    rf"(?:;[ \t]*(?:{_CAA_PARAMETER}(?:[ \t]*;[ \t]*{_CAA_PARAMETER})*[ \t]*)?)?\Z")
_CAA_TAG = re.compile(r"[A-Za-z0-9]+\Z")
_COMMENT_HINT = ('(";" or "#" after a space starts a comment, even inside quotes: '
                 'write \\; or \\#)')


def derived(domain: str, catalogue: Catalogue,
            settings: DNSSettings) -> dict[str, dict[str, str]]:
    """
    The RRsets SmartDiscover owns in the zone C{domain}: owner -> type ->
    the setting it comes from.  C{[records]} may add none of them, and no
    CNAME at any of their owners.  Host names with addresses own both A
    and AAAA: their addresses are all given in [hosts].
    """
    owned: dict[str, dict[str, str]] = {
        domain: {"SOA": "[dns]", "NS": "[dns] nameservers"}}
    if settings.mx:
        owned[domain]["MX"] = "[dns] mx"
    if catalogue.services_named("sip"):
        owned[domain]["NAPTR"] = "[sip]"
    for label, source in DERIVED_SRV.items():
        owned[f"{label}.{domain}"] = {"SRV": source}
    for key, label in (("caldav", "_caldavs._tcp"), ("carddav", "_carddavs._tcp")):
        if key in catalogue.urls:
            owned[f"{label}.{domain}"]["TXT"] = f"[urls] {key} (its path=)"
    for name in zone_hosts(domain, catalogue, settings):
        source = ("[hosts]" if name in settings.hosts else
                  f"[hosts] {catalogue.public_hostname} (whose addresses {name} takes)")
        owned.setdefault(name, {}).update({"A": source, "AAAA": source})
    return owned


def parse_name(text: str, host: bool = False) -> str:
    """
    C{text} as an ASCII lower-case name without its final dot:
    internationalised labels in their IDNA (punycode) form, underscore
    labels (C{_dmarc}, C{_tcp}) kept unless C{host}: the target of an MX
    or SRV is a host name (letters, digits, hyphens).
    """
    raw = text.strip()
    if raw.endswith("."):
        raw = raw[:-1]
    if not raw:
        raise ValueError("empty name")
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        pass
    else:
        raise ValueError(f"{text!r} is an IP address, not a name")
    try:
        mapped = idna.uts46_remap(raw, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError) as e:
        raise ValueError(f"{text!r} is not a valid name: {e}") from None
    labels = []
    for label in mapped.split("."):
        if not label:
            raise ValueError(f"{text!r} has an empty label")
        if label == "*":
            raise ValueError(f"{text!r}: wildcards (*) are not served; name each owner")
        if label.isascii():
            label = label.lower()
            if label.startswith("xn--"):
                try:
                    idna.decode(label)
                except (idna.IDNAError, UnicodeError) as e:
                    raise ValueError(f"{text!r}: {label!r} is not a valid IDNA label: {e}"
                                     ) from None
            elif not (_LDH.match(label) or (not host and _SERVICE_LABEL.match(label))):
                allowed = ("letters, digits and inner hyphens" if host else
                           "letters, digits, hyphens and underscores")
                raise ValueError(f"{text!r}: label {label!r} may hold only {allowed}")
        else:
            try:
                label = idna.encode(label).decode("ascii")
            except (idna.IDNAError, UnicodeError) as e:
                raise ValueError(f"{text!r} is not a valid name: {e}") from None
        if len(label) > 63:
            raise ValueError(f"{text!r}: label {label[:20]!r}... is longer than 63 bytes")
        labels.append(label)
    name = ".".join(labels)
    if len(name) > 253:
        raise ValueError(f"{text[:40]!r}... is longer than 253 characters")
    return name


def _quoted(text: str, position: int) -> tuple[bytes, int]:
    """
    The quoted string opening at C{text[position]} (a C{"}), unescaped,
    and the position after its closing quote.  Escapes as in zone files
    (RFC 1035 5.1): C{\\DDD} is the byte DDD, C{\\X} is X.
    """
    out = bytearray()
    position += 1
    while True:
        if position >= len(text):
            raise ValueError(f"unterminated quoted string {_COMMENT_HINT}")
        char = text[position]
        if char == '"':
            return bytes(out), position + 1
        if char == "\\":
            escaped = text[position + 1:position + 2]
            if not escaped:
                raise ValueError(f"a backslash ends the value {_COMMENT_HINT}")
            if escaped in _DIGITS:
                digits = text[position + 1:position + 4]
                if len(digits) != 3 or any(d not in _DIGITS for d in digits) \
                        or int(digits) > 255:
                    raise ValueError(f"\\{digits} is not \\DDD, a byte from \\000 to \\255")
                out.append(int(digits))
                position += 4
            else:
                out += escaped.encode("utf-8")
                position += 2
            continue
        if ord(char) < 0x20 or char == "\x7f":
            raise ValueError(f"control character {char!r}: write it as \\DDD")
        out += char.encode("utf-8")
        position += 1


def quoted_strings(text: str) -> list[bytes]:
    """
    The quoted strings of C{text}, which holds nothing else (spaces apart).
    """
    strings = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
        elif text[position] == '"':
            string, position = _quoted(text, position)
            strings.append(string)
        else:
            raise ValueError('write the text in double quotes, "like this" (several '
                             f'strings, "a" "b", make one record): {text!r}')
    return strings


def txt_strings(text: str) -> tuple[bytes, ...]:
    """
    The character-strings of one TXT record: each quoted string of
    C{text}, those longer than 255 bytes split into 255-byte strings, which
    readers of SPF, DKIM and DMARC join again without spaces (RFC 7208
    3.3).
    """
    strings = []
    for string in quoted_strings(text):
        strings.extend([string[i:i + MAX_STRING] for i in range(0, len(string), MAX_STRING)]
                       or [b""])
    return tuple(strings)


def _u16(text: str, what: str) -> int:
    if not _NUMBER.match(text) or int(text) > 65535:
        raise ValueError(f"{what} {text!r} is not a number from 0 to 65535")
    return int(text)


def _fields(text: str, count: int, layout: str) -> list[str]:
    fields = text.split()
    if len(fields) != count:
        raise ValueError(f"{text!r} is not {layout}")
    return fields


def _target(text: str, host: bool = True) -> str:
    """
    A target name; C{""} for the root, C{"."}.
    """
    return "" if text == "." else parse_name(text, host=host)


def _caa(text: str) -> ZoneRecord:
    fields = text.split(None, 2)
    if len(fields) != 3:
        raise ValueError(f'{text!r} is not FLAGS TAG VALUE, e.g. 0 issue "letsencrypt.org"')
    flags_text, tag, rest = fields
    if not _NUMBER.match(flags_text) or int(flags_text) not in (0, CAA_CRITICAL):
        raise ValueError(f"flags {flags_text!r} must be 0, or 128 (issuer critical): the "
                         "other bits are reserved (RFC 8659 4.1)")
    flags = int(flags_text)
    if not _CAA_TAG.match(tag) or len(tag) > MAX_CAA_TAG:
        raise ValueError(f"tag {tag!r} must be 1 to {MAX_CAA_TAG} ASCII letters and digits "
                         "(RFC 8659 4.1)")
    tag = tag.lower()  # tags match case-insensitively
    if rest.startswith('"'):
        strings = quoted_strings(rest)
        if len(strings) != 1:
            raise ValueError(f"the value is one quoted string: {rest!r}")
        value = strings[0]
    elif any(c.isspace() or c in '"\\' for c in rest):
        raise ValueError(f"write a value with spaces or escapes in double quotes: {rest!r}")
    else:
        value = rest.encode("utf-8")
    if tag in CAA_ISSUE_TAGS:
        if not value.isascii() or not _CAA_ISSUE.match(value.decode("ascii")):
            raise ValueError(f"{tag} value {value!r} is not [ISSUER-DOMAIN] [; NAME=VALUE...] "
                             '(RFC 8659 4.2; ";" alone forbids issuance)')
    elif tag == "iodef":
        _iodef(value)
    elif flags & CAA_CRITICAL:
        raise ValueError(f"tag {tag!r} is unknown (known: {', '.join(CAA_KNOWN_TAGS)}) and "
                         "marked critical: no CA would issue a certificate (RFC 8659 4.5)")
    return ZoneRecord("", "CAA", numbers=(flags,), strings=(tag.encode("ascii"), value))


def _iodef(value: bytes) -> None:
    """
    RFC 8659 4.4: a mailto:, http: or https: URL.
    """
    text = value.decode("utf-8", "replace")
    scheme, colon, rest = text.partition(":")
    if not value.isascii() or any(c.isspace() for c in text) or not colon:
        raise ValueError(f"iodef value {text!r} is not a mailto:, http: or https: URL")
    if scheme.lower() == "mailto":
        local, at, domain = rest.partition("@")
        if not (local and at and domain):
            raise ValueError(f"iodef value {text!r} is not mailto:ADDRESS")
        parse_name(domain, host=True)
    elif scheme.lower() in ("http", "https"):
        if not rest.startswith("//") or not rest[2:].split("/", 1)[0]:
            raise ValueError(f"iodef value {text!r} has no host")
    else:
        raise ValueError(f"iodef value {text!r} is not a mailto:, http: or https: URL "
                         "(RFC 8659 4.4)")


def parse_record(owner: str, rtype: str, text: str) -> ZoneRecord:
    """
    One line of data for C{owner} C{rtype}, as a record.

    @raise ValueError: saying what is wrong with it.
    """
    if rtype in ("A", "AAAA"):
        version = 4 if rtype == "A" else 6
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = None
        if address is None or address.version != version or "%" in text:
            other = "AAAA for IPv6" if version == 4 else "A for IPv4"
            raise ValueError(f"{text!r} is not an IPv{version} address ({other})")
        return ZoneRecord(owner, rtype, target=str(address))
    if rtype == "CNAME":
        (target,) = _fields(text, 1, "one target name")
        name = parse_name(target)
        if name == owner:
            raise ValueError(f"{owner} cannot be an alias of itself")
        return ZoneRecord(owner, rtype, target=name)
    if rtype == "TXT":
        return ZoneRecord(owner, rtype, strings=txt_strings(text))
    if rtype == "MX":
        preference, exchange = _fields(text, 2, "PREFERENCE HOST, e.g. 10 mx1.example.test")
        number = _u16(preference, "preference")
        target = _target(exchange)
        if not target and number != 0:
            raise ValueError('a null MX ("no mail here") is exactly "0 ." (RFC 7505)')
        return ZoneRecord(owner, rtype, target=target, numbers=(number,))
    if rtype == "SRV":
        fields = _fields(text, 4, "PRIORITY WEIGHT PORT TARGET, e.g. 0 1 4190 mail.example.test")
        numbers = (_u16(fields[0], "priority"), _u16(fields[1], "weight"),
                   _u16(fields[2], "port"))
        return ZoneRecord(owner, rtype, target=_target(fields[3]), numbers=numbers)
    if rtype == "CAA":
        return replace(_caa(text), owner=owner)
    raise AssertionError(rtype)


def _size(record: ZoneRecord) -> int:
    """
    The bytes C{record} takes in an answer (uncompressed names).
    """
    name = len(record.target) + 2 if record.target else 1
    rdata = {"A": 4, "AAAA": 16, "CNAME": name, "MX": 2 + name, "SRV": 6 + name,
             "TXT": sum(1 + len(s) for s in record.strings),
             "CAA": 2 + sum(len(s) for s in record.strings)}[record.rtype]
    return 12 + rdata


def parse_key(key: str) -> tuple[str, str]:
    """
    C{NAME TYPE} as (owner, upper-case type).
    """
    parts = key.split()
    if len(parts) != 2:
        raise ValueError('must be NAME TYPE, e.g. _dmarc.example.test TXT = "v=DMARC1; p=none"')
    rtype = parts[1].upper()
    if rtype in _DERIVED_TYPES:
        raise ValueError(f"SmartDiscover derives the {rtype} records itself, from "
                         f"{_DERIVED_TYPES[rtype]}")
    if rtype not in TYPES:
        raise ValueError(f"unsupported type {parts[1]!r} (supported: {', '.join(TYPES)})")
    return parse_name(parts[0]), rtype


def _rrset(key: str, owner: str, rtype: str, value: str, report: Report
           ) -> list[ZoneRecord] | None:
    """
    The records of one key, or L{None} when one of them is wrong (reported).
    """
    lines = [line.strip() for line in value.split("\n") if line.strip()]
    if not lines:
        report(RECORDS, key, "no data: give one record a line (continuation lines indented)")
        return None
    records: list[ZoneRecord] = []
    failed = False
    for number, line in enumerate(lines, 1):
        where = f"line {number} of the value: " if len(lines) > 1 else ""
        try:
            record = parse_record(owner, rtype, line)
        except ValueError as e:
            report(RECORDS, key, f"{where}{e}")
            failed = True
            continue
        if record in records:
            report(RECORDS, key, f"{where}{line!r} given twice (an RRset holds each record once, "
                   "RFC 2181 5)")
            failed = True
        records.append(record)
    if failed:
        return None
    if rtype == "CNAME" and len(records) > 1:
        report(RECORDS, key, "a name has one CNAME at most (RFC 1034 3.6.2)")
        return None
    if rtype in ("MX", "SRV") and len(records) > 1 and any(not r.target for r in records):
        report(RECORDS, key, 'the "." target (no such service) must be the only record')
        return None
    if rtype == "SRV" and not all(label.startswith("_") for label in owner.split(".")[:2]):
        report(RECORDS, key, f"an SRV owner is _SERVICE._PROTO.NAME (RFC 2782), not {owner}")
        return None
    size = sum(_size(r) for r in records)
    if size > MAX_RRSET_BYTES:
        report(RECORDS, key, f"these records take {size} bytes in an answer, more than "
               f"{MAX_RRSET_BYTES} (a DNS message over TCP holds 65535)")
        return None
    return records


def build_records(section: Mapping[str, str], settings: DNSSettings,
                  catalogues: Mapping[str, Catalogue], report: Report) -> DNSSettings:
    """
    C{settings} with the records of C{[records]} (C{section}); C{catalogues}
    maps each served domain to its catalogue.  Every problem is reported
    with its key, in the order of the keys.
    """
    found: dict[str, list[str]] = {key: [] for key in section}

    def problem(_: str | None, key: str | None, message: str) -> None:
        assert key is not None
        found[key].append(message)

    records = _build(section, settings, catalogues, problem)
    for key, messages in found.items():
        for message in messages:
            report(RECORDS, key, message)
    return replace(settings, records=records)


def _build(section: Mapping[str, str], settings: DNSSettings,
           catalogues: Mapping[str, Catalogue], report: Report) -> tuple[ZoneRecord, ...]:
    domains = tuple(catalogues)
    owned: dict[str, dict[str, str]] = {}
    for domain, catalogue in catalogues.items():
        for owner, types in derived(domain, catalogue, settings).items():
            owned.setdefault(owner, {}).update(types)

    rrsets: dict[tuple[str, str], tuple[str, list[ZoneRecord]]] = {}
    keys: dict[tuple[str, str], str] = {}
    for key, value in section.items():
        try:
            owner, rtype = parse_key(key)
        except ValueError as e:
            report(RECORDS, key, str(e))
            continue
        if in_zone(owner, domains) is None:
            report(RECORDS, key, f"{owner} is outside every served zone "
                   f"({', '.join(domains)}): write the full name, inside one of them")
            continue
        if (owner, rtype) in keys:
            report(RECORDS, key, f"the same name and type as {keys[(owner, rtype)]!r}: write "
                   "every record of one name and type under one key, one a line")
            continue
        keys[(owner, rtype)] = key
        records = _rrset(key, owner, rtype, value, report)
        if records is not None:
            rrsets[(owner, rtype)] = (key, records)

    types_at: dict[str, list[str]] = {}
    for owner, rtype in rrsets:
        types_at.setdefault(owner, []).append(rtype)
    aliases = {owner: records[0].target for (owner, rtype), (_, records) in rrsets.items()
               if rtype == "CNAME"}
    addressed = ({name for name, types in owned.items() if "A" in types}
                 | {owner for owner, rtype in rrsets if rtype in ("A", "AAAA")})
    for (owner, rtype), (key, records) in rrsets.items():
        mine = owned.get(owner, {})
        if rtype in mine:
            what = ("the addresses of" if rtype in ("A", "AAAA")
                    else f"the {rtype} records of")
            report(RECORDS, key, f"SmartDiscover publishes {what} {owner} from {mine[rtype]}: "
                   "change them there (a derived RRset is never mixed with [records])")
        elif rtype == "CNAME":
            _check_alias(key, owner, records[0].target, domains, mine,
                         set(owned) | set(types_at),
                         [t for t in types_at[owner] if t != "CNAME"], aliases, report)
        elif rtype in ("MX", "SRV"):
            for record in records:
                _check_host(key, rtype, record.target, domains, addressed, aliases, report)
    return tuple(record for _, records in rrsets.values() for record in records)


def _check_alias(key: str, owner: str, target: str, domains: tuple[str, ...],
                 mine: Mapping[str, str], existing: set[str], others: list[str],
                 aliases: Mapping[str, str], report: Report) -> None:
    """
    A CNAME stands alone (RFC 1034 3.6.2, RFC 2181 10.1), never at an apex,
    and leads somewhere.
    """
    if owner in domains:
        report(RECORDS, key, f"a CNAME cannot be at the zone apex {owner}, which holds SOA "
               "and NS (RFC 1034 3.6.2, RFC 2181 10.1)")
        return
    if mine:
        sources = ", ".join(sorted(f"{t} from {s}" for t, s in mine.items()))
        report(RECORDS, key, f"SmartDiscover publishes other data at {owner} ({sources}): "
               "a CNAME cannot be alongside it (RFC 1034 3.6.2)")
        return
    if others:
        report(RECORDS, key, f"{owner} also has {', '.join(others)} in [records]: a CNAME "
               "cannot be alongside other data (RFC 1034 3.6.2, RFC 2181 10.1)")
        return
    chain = [owner]
    while target in aliases:
        if target in chain:
            report(RECORDS, key, "a CNAME loop: " + " -> ".join(chain + [target]))
            return
        chain.append(target)
        if len(chain) > MAX_CHAIN:
            report(RECORDS, key, f"a chain of more than {MAX_CHAIN} CNAMEs: "
                   + " -> ".join(chain))
            return
        target = aliases[target]
    zone = in_zone(target, domains)
    if zone is not None and target not in existing:
        report(RECORDS, key, f"the target {target} is inside the served zone {zone} but has "
               "no records there")


def _check_host(key: str, rtype: str, target: str, domains: tuple[str, ...],
                addressed: set[str], aliases: Mapping[str, str], report: Report) -> None:
    """
    An in-zone MX or SRV target is a host of ours with an address, never an
    alias (RFC 2181 10.3).
    """
    if not target:
        return
    zone = in_zone(target, domains)
    if zone is None:
        return
    if target in aliases:
        report(RECORDS, key, f"{target} is an alias (CNAME): an {rtype} target must be the "
               "host's own name (RFC 2181 10.3)")
    elif target not in addressed:
        report(RECORDS, key, f"{target} is inside the served zone {zone}: it needs an address "
               "([hosts], or A/AAAA in [records])")
