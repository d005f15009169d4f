"""
The zone owner's own records, C{[records]} (validated by
config/zone_records.py), as twisted.names payloads, added to the zones
dns/records.py derives.

The loader already refused any record that contradicts a derived one; a
record that still meets a derived RRset (the two lists drifted apart) is
left out and logged, so the derived answers stay whole.
"""

from __future__ import annotations

import struct
from typing import Iterator, Mapping, Sequence

from twisted.logger import Logger
from twisted.names import dns

from smartdiscover.config.dns import in_zone
from smartdiscover.config.model import ZoneRecord

CAA = 257  # RFC 8659; twisted.names has no class for it

ConfiguredPayload = (dns.Record_A | dns.Record_AAAA | dns.Record_CNAME | dns.Record_MX
                     | dns.Record_SRV | dns.Record_TXT | dns.UnknownRecord)

_TYPES = {"A": dns.A, "AAAA": dns.AAAA, "CNAME": dns.CNAME, "MX": dns.MX, "SRV": dns.SRV,
          "TXT": dns.TXT, "CAA": CAA}

_log = Logger()


def payload(record: ZoneRecord, ttl: int) -> tuple[int, ConfiguredPayload]:
    """
    The type code and twisted.names payload of C{record}.
    """
    rtype = record.rtype
    if rtype == "A":
        return dns.A, dns.Record_A(record.target, ttl=ttl)
    if rtype == "AAAA":
        return dns.AAAA, dns.Record_AAAA(record.target, ttl=ttl)
    if rtype == "CNAME":
        return dns.CNAME, dns.Record_CNAME(record.target.encode("ascii"), ttl=ttl)
    if rtype == "TXT":
        return dns.TXT, dns.Record_TXT(*record.strings, ttl=ttl)
    if rtype == "MX":
        return dns.MX, dns.Record_MX(record.numbers[0], record.target.encode("ascii"), ttl=ttl)
    if rtype == "SRV":
        priority, weight, port = record.numbers
        return dns.SRV, dns.Record_SRV(priority, weight, port, record.target.encode("ascii"),
                                       ttl=ttl)
    if rtype == "CAA":
        tag, value = record.strings
        return CAA, dns.UnknownRecord(struct.pack("!BB", record.numbers[0], len(tag))
                                      + tag + value, ttl=ttl)
    raise ValueError(f"unknown record type {rtype}")


def configured_records(records: tuple[ZoneRecord, ...], ttl: int,
                       zones: Mapping[str, Sequence[tuple[str, int, object]]]
                       ) -> Iterator[tuple[str, str, int, ConfiguredPayload]]:
    """
    (apex, owner, type, payload) of every record of C{records} that fits
    beside the derived C{zones} (apex -> records): none at a derived
    owner and type, no CNAME at a derived owner.
    """
    derived: dict[str, set[int]] = {}
    for records_of_zone in zones.values():
        for owner, type_, _ in records_of_zone:
            derived.setdefault(owner, set()).add(type_)
    for record in records:
        apex = in_zone(record.owner, tuple(zones))
        type_ = _TYPES[record.rtype]
        types = derived.get(record.owner, set())
        if apex is None or type_ in types or (type_ == dns.CNAME and types):
            _log.warn("[records] {owner} {rtype} meets a record SmartDiscover derives: "
                      "left out", owner=record.owner, rtype=record.rtype)
            continue
        yield (apex, record.owner, *payload(record, ttl))
