"""
Pre-encoded answers: built once per model, so answering a query is a
lookup and a copy, not an encode through twisted.names objects.

Each positive answer is encoded as a whole message for the lower-case
question, and only what follows the question is kept: the client's
question has the same length (only the letter case may differ), so the
compression pointers into it stay valid.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from twisted.names import dns

from smartdiscover.config.dns import in_zone
from smartdiscover.config.zone_records import MAX_CHAIN
from smartdiscover.dns.records import Payload, Record

ANY = 255
NOERROR, NXDOMAIN = 0, 3
AUTHORITATIVE = 0x0400
_ADDITIONAL_FOR = {dns.SRV: "target", dns.MX: "name", dns.NS: "name"}


@dataclass(frozen=True)
class Answer:
    """
    Everything of a response but its header ID, flags and question.
    """

    flags: int  # AA and RCODE bits
    answers: int
    authority: int
    additional: int
    body: bytes


@dataclass
class Table:
    """
    The answers of every served zone, keyed by lower-case wire-format name.
    """

    answers: dict[tuple[bytes, int], Answer] = field(default_factory=dict)
    names: dict[bytes, bytes] = field(default_factory=dict)  # name (or ENT) -> its apex
    nodata: dict[bytes, Answer] = field(default_factory=dict)  # apex -> NODATA + SOA
    nxdomain: dict[bytes, Answer] = field(default_factory=dict)  # apex -> NXDOMAIN + SOA
    # CNAME owner -> its answer to every type without one of its own in
    # answers: the chain of CNAMEs (and the SOA where the chain ends in a
    # zone of ours without that type).
    aliases: dict[bytes, Answer] = field(default_factory=dict)

    def zone_of(self, name: bytes) -> bytes | None:
        """
        The apex of the served zone holding C{name} (lower-case wire
        format), or L{None} when it lies outside every zone.
        """
        position = 0
        while name[position]:
            position += name[position] + 1
            suffix = name[position:]
            if suffix in self.nxdomain:
                return suffix
        return None


def wire_name(name: str) -> bytes:
    """
    C{name} in uncompressed wire format, lower case.
    """
    out = io.BytesIO()
    dns.Name(name.lower().encode("ascii")).encode(out)
    return out.getvalue()


def _header(owner: str, type_: int, payload: Payload) -> dns.RRHeader:
    return dns.RRHeader(owner, type_, dns.IN, payload.ttl, payload, auth=True)


def _encode(qname: str, qtype: int, answers: list[dns.RRHeader],
            authority: list[dns.RRHeader], additional: list[dns.RRHeader],
            rcode: int = NOERROR) -> Answer:
    message = dns.Message(maxSize=0)  # never cut here: wire.py truncates properly
    message.queries = [dns.Query(qname, qtype, dns.IN)]
    message.answers, message.authority, message.additional = answers, authority, additional
    raw = message.toStr()
    question = len(wire_name(qname)) + 4
    return Answer(AUTHORITATIVE | rcode, len(answers), len(authority), len(additional),
                  raw[12 + question:])


def _uncompressed(record: dns.RRHeader) -> bytes:
    out = io.BytesIO()
    record.encode(out, None)
    return out.getvalue()


def build_table(zones: dict[str, list[Record]]) -> Table:
    """
    Compile the records of every zone (apex -> records) into a L{Table}.
    """
    table = Table()
    addresses: dict[str, list[dns.RRHeader]] = {}
    for records in zones.values():
        for owner, type_, payload in records:
            if type_ in (dns.A, dns.AAAA):
                addresses.setdefault(owner, []).append(_header(owner, type_, payload))

    for apex, records in zones.items():
        apex_wire = wire_name(apex)
        rrsets: dict[tuple[str, int], list[dns.RRHeader]] = {}
        for owner, type_, payload in records:
            rrsets.setdefault((owner, type_), []).append(_header(owner, type_, payload))
        soa = rrsets[(apex, dns.SOA)][0]
        # Negative answers carry the SOA uncompressed: they follow any question.
        negative = _uncompressed(soa)
        table.nodata[apex_wire] = Answer(AUTHORITATIVE | NOERROR, 0, 1, 0, negative)
        table.nxdomain[apex_wire] = Answer(AUTHORITATIVE | NXDOMAIN, 0, 1, 0, negative)

        for (owner, type_), rrset in rrsets.items():
            table.answers[(wire_name(owner), type_)] = _encode(
                owner, type_, rrset, [], _additional(type_, rrset, addresses))

        for owner, _ in rrsets:
            # The owner and every empty non-terminal up to the apex exist.
            name = wire_name(owner)
            while True:
                table.names[name] = apex_wire
                if name == apex_wire:
                    break
                name = name[name[0] + 1:]
    _alias_answers(table, zones, addresses)
    for name in table.names:
        # RFC 8482: ANY gets one small synthesised record, never everything;
        # an alias, its CNAME (the only RRset it may hold).
        alias = table.answers.get((name, dns.CNAME))
        if alias is not None:
            table.answers[(name, ANY)] = alias
            continue
        owner = _text(name)
        table.answers[(name, ANY)] = _encode(owner, ANY, [dns.RRHeader(
            owner, dns.HINFO, dns.IN, 3600, dns.Record_HINFO(b"RFC8482", b""), auth=True)],
            [], [])
    return table


def _additional(type_: int, rrset: list[dns.RRHeader],
                addresses: dict[str, list[dns.RRHeader]]) -> list[dns.RRHeader]:
    """
    The A/AAAA of the in-zone targets of C{rrset} (SRV, MX, NS).
    """
    extra: list[dns.RRHeader] = []
    attribute = _ADDITIONAL_FOR.get(type_)
    if attribute is not None:
        for record in rrset:
            target = str(getattr(record.payload, attribute)).lower()
            extra.extend(addresses.get(target, ()))
    return extra


def _alias_answers(table: Table, zones: dict[str, list[Record]],
                   addresses: dict[str, list[dns.RRHeader]]) -> None:
    """
    A name with a CNAME answers every type with it, followed along the
    chain through our own zones (RFC 1034 4.3.2): the RRset of the type
    asked at the chain's end, or, when the end lacks it, the chain with the
    end zone's SOA (NODATA, RFC 2308 2.2.1), or the chain alone when it
    leaves our zones.
    """
    rrsets: dict[str, dict[int, list[dns.RRHeader]]] = {}
    cnames: dict[str, str] = {}  # owner -> target
    for records in zones.values():
        for owner, type_, payload in records:
            rrsets.setdefault(owner, {}).setdefault(type_, []).append(
                _header(owner, type_, payload))
            if isinstance(payload, dns.Record_CNAME):
                cnames[owner] = str(payload.name).lower()
    for owner, target in cnames.items():
        chain = list(rrsets[owner][dns.CNAME])
        seen = {owner}
        while target in cnames and target not in seen and len(seen) <= MAX_CHAIN:
            seen.add(target)
            chain.extend(rrsets[target][dns.CNAME])
            target = cnames[target]
        end = rrsets.get(target, {})
        name = wire_name(owner)
        if dns.CNAME not in end:
            for type_, rrset in end.items():
                table.answers[(name, type_)] = _encode(owner, type_, chain + rrset, [],
                                                       _additional(type_, rrset, addresses))
        apex = in_zone(target, tuple(zones))
        if apex is None:
            table.aliases[name] = _encode(owner, dns.A, chain, [], [])
        else:
            rcode = NOERROR if wire_name(target) in table.names else NXDOMAIN
            table.aliases[name] = _encode(owner, dns.A, chain, rrsets[apex][dns.SOA][:1], [],
                                          rcode)


def _text(name: bytes) -> str:
    labels = []
    position = 0
    while name[position]:
        length = name[position]
        labels.append(name[position + 1:position + 1 + length].decode("ascii"))
        position += length + 1
    return ".".join(labels)
