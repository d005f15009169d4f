"""
The query path: parse a query's header, question and OPT record, look the
answer up, and write the response bytes.

Stock twisted.names never truncates, ignores EDNS, answers names outside
its zones with NXDOMAIN and serves AXFR (SECURITY.md F1-F4); this module is
where SmartDiscover does each of those right.  It must never raise: every
malformed packet is either dropped or answered FORMERR.
"""

from __future__ import annotations

import struct

from smartdiscover.dns.table import ANY, Answer, Table

_HEADER = struct.Struct("!HHHHHH")
_TYPE_CLASS = struct.Struct("!HH")
_OPT_FIXED = struct.Struct("!HHIH")

QR, OPCODE, AA, TC, RD = 0x8000, 0x7800, 0x0400, 0x0200, 0x0100
FORMERR, NOTIMP, REFUSED = 1, 4, 5
BADVERS = 16
IN, OPT, IXFR, AXFR = 1, 41, 251, 252

UDP_MINIMUM = 512  # without EDNS, and the floor of any EDNS size
UDP_MAXIMUM = 1232  # DNS Flag Day 2020
MAX_NAME = 255


def _opt_record(extended_rcode: int = 0) -> bytes:
    return b"\x00" + _OPT_FIXED.pack(OPT, UDP_MAXIMUM, extended_rcode << 24, 0)


_OPT_RECORD = _opt_record()
_OPT_BADVERS = _opt_record(BADVERS >> 4)


class Response:
    """
    What the server sends, and what it is, for rate limiting and metrics.
    """

    __slots__ = ("data", "rcode", "truncated", "question")

    def __init__(self, data: bytes, rcode: int, truncated: bool = False,
                 question: bytes = b"") -> None:
        self.data = data
        self.rcode = rcode
        self.truncated = truncated
        self.question = question

    def slipped(self) -> bytes:
        """
        The same response cut to its question with TC=1: what rate limiting
        sends instead, so that a real resolver retries over TCP.
        """
        ident, flags = struct.unpack_from("!HH", self.data)
        return _HEADER.pack(ident, flags | TC, 1 if self.question else 0, 0, 0, 0) + self.question


def _error(ident: int, rd: int, rcode: int) -> Response:
    return Response(_HEADER.pack(ident, QR | rd | rcode, 0, 0, 0, 0), rcode)


def respond(packet: bytes, table: Table, udp: bool) -> Response | None:
    """
    The response to C{packet}, or L{None} when nothing must be sent (a
    response sent to us, or a packet too short to carry an ID).

    Over UDP (C{udp}) the response fits 512 bytes without EDNS and the
    client's size (at most 1232) with it; otherwise it is truncated (TC=1)
    to the question, so the client retries over TCP.
    """
    size = len(packet)
    if size < 12:
        return None
    ident, flags, questions, answers, authority, additional = _HEADER.unpack_from(packet)
    if flags & QR:
        return None  # never answer a response: no reflection loops
    rd = flags & RD
    if flags & OPCODE:
        return _error(ident, rd, NOTIMP)
    if questions != 1 or answers or authority > 1 or additional > 1:
        return _error(ident, rd, FORMERR)

    # The question name: plain labels only (a query has nothing to point at).
    position = 12
    while True:
        if position >= size:
            return _error(ident, rd, FORMERR)
        length = packet[position]
        if length == 0:
            position += 1
            break
        if length > 63:
            return _error(ident, rd, FORMERR)
        position += length + 1
        if position - 12 >= MAX_NAME:  # the root label still follows
            return _error(ident, rd, FORMERR)
    end = position + 4
    if end > size:
        return _error(ident, rd, FORMERR)
    qtype, qclass = _TYPE_CLASS.unpack_from(packet, position)
    question = packet[12:end]
    if authority:
        # Only an IXFR query carries a record there (the client's SOA, RFC 1995).
        if qtype != IXFR:
            return _error(ident, rd, FORMERR)
        return Response(_HEADER.pack(ident, QR | rd | REFUSED, 1, 0, 0, 0) + question,
                        REFUSED, question=question)

    limit = UDP_MINIMUM
    opt = b""
    if additional:
        # The only record a query may carry: an OPT at the root (RFC 6891).
        if end + 11 > size or packet[end] != 0:
            return _error(ident, rd, FORMERR)
        rtype, payload, extended, rdlength = _OPT_FIXED.unpack_from(packet, end + 1)
        if rtype != OPT or end + 11 + rdlength != size:
            return _error(ident, rd, FORMERR)
        if (extended >> 16) & 0xFF:  # EDNS version above 0
            return Response(_HEADER.pack(ident, QR | rd, 1, 0, 0, 1) + question
                            + _OPT_BADVERS, BADVERS, question=question)
        opt = _OPT_RECORD
        limit = min(max(payload, UDP_MINIMUM), UDP_MAXIMUM)
    elif end != size:
        return _error(ident, rd, FORMERR)

    name = packet[12:position].lower()
    if qclass != IN or qtype in (AXFR, IXFR):
        found: Answer | None = None
    else:
        found = table.answers.get((name, ANY if qtype == ANY else qtype))
        if found is None:
            found = table.aliases.get(name)  # a CNAME: its chain, for any type
        if found is None:
            apex = table.names.get(name)
            if apex is not None:
                found = table.nodata[apex]
            else:
                apex = table.zone_of(name)
                if apex is not None:
                    found = table.nxdomain[apex]
    if found is None:
        # Not ours (or a zone transfer): REFUSED, not authoritative, no RA.
        data = _HEADER.pack(ident, QR | rd | REFUSED, 1, 0, 0, 1 if opt else 0) + question + opt
        return Response(data, REFUSED, question=question)

    rcode = found.flags & 0x000F
    data = (_HEADER.pack(ident, QR | rd | found.flags, 1, found.answers, found.authority,
                         found.additional + (1 if opt else 0))
            + question + found.body + opt)
    if udp and len(data) > limit:
        data = _HEADER.pack(ident, QR | rd | TC | found.flags, 1, 0, 0,
                            1 if opt else 0) + question + opt
        return Response(data, rcode, truncated=True, question=question)
    return Response(data, rcode, question=question)
