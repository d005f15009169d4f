"""
The SIP probe: an RFC 3261 OPTIONS request over UDP, TCP or TLS; any
status line in reply means a SIP server is there.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from twisted.internet import error as neterror
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import DatagramProtocol

from smartdiscover.health.addresses import Attempts, Unreachable, is_address, resolve
from smartdiscover.health.conversation import USER_AGENT, Conversation
from smartdiscover.health.session import Unexpected, excerpt, line, text

_SIP_T1 = 0.5  # RFC 3261 timer T1: the first UDP retransmission interval
_SIP_STATUS = re.compile(rb"SIP/2\.0 \d{3}\b")


def _sip_reply(buffer: bytes) -> tuple[int, bytes] | None:
    """
    A SIP status line: any status means a SIP server is there.
    """
    prefix = b"SIP/2.0 "
    if not prefix.startswith(buffer[:len(prefix)]):
        raise Unexpected(f"unexpected reply {excerpt(buffer)}")
    found = line(buffer)
    if found is not None and not _SIP_STATUS.match(found[1]):
        raise Unexpected(f"unexpected reply {excerpt(found[1])}")
    return found


class _Datagrams(DatagramProtocol):
    """
    A connected UDP socket waiting for one SIP status line.
    """

    def __init__(self) -> None:
        self.reply: Deferred[bytes] = Deferred()
        self.resend: IDelayedCall | None = None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if self.reply.called:
            return
        try:
            found = _sip_reply(datagram)
            if found is None:
                raise Unexpected(f"unexpected reply {excerpt(datagram)}")
        except Unexpected as e:
            self.reply.errback(e)
        else:
            self.reply.callback(found[1])

    def connectionRefused(self) -> None:
        self.fail(neterror.ConnectionRefusedError())

    def fail(self, exc: BaseException) -> None:
        if not self.reply.called:
            self.reply.errback(exc)


def _options(c: Conversation, transport: str, local_host: str, local_port: int) -> bytes:
    """
    An RFC 3261 OPTIONS request: asks a SIP server what it supports.
    """
    t = c.target
    sent_by = f"[{local_host}]" if ":" in local_host else local_host
    host = f"[{t.host}]" if ":" in t.host else t.host
    domain = t.domain or host
    lines = [f"OPTIONS sip:{host}:{t.port} SIP/2.0",
             f"Via: SIP/2.0/{transport} {sent_by}:{local_port}"
             f";branch=z9hG4bK{secrets.token_hex(8)};rport",
             "Max-Forwards: 70",
             f"From: <sip:probe@smartdiscover.invalid>;tag={secrets.token_hex(6)}",
             f"To: <sip:{domain}>",
             f"Call-ID: {secrets.token_hex(12)}@smartdiscover.invalid",
             "CSeq: 1 OPTIONS",
             f"User-Agent: {USER_AGENT}",
             "Accept: application/sdp",
             "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode("utf-8")


async def sip(c: Conversation) -> None:
    transport = c.target.transport
    if transport == "udp":
        return await _sip_udp(c)
    s = await c.connect(tls=transport == "tls")
    assert s.transport is not None
    local = s.transport.getHost()
    assert isinstance(local, (IPv4Address, IPv6Address))  # TCP, or TLS over it
    request = _options(c, transport.upper(), local.host, local.port)
    reply = await c.ask(s, request, _sip_reply, "the OPTIONS reply")
    c.detail = text(reply)


async def _sip_udp(c: Conversation) -> None:
    """
    OPTIONS to the first address of the host (its zone's, else the system
    resolver's): UDP has no connection to fail over on.
    """
    t = c.target
    c.stage = f"the address of {t.host}"
    c.attempts = attempts = Attempts(t.host)
    address = (await resolve(c.resolver, t.host, t.port, "UDP"))[0].host
    attempts.resolved = True
    attempts.tried.append(address)
    attempts.connected = address  # a connected UDP socket: what the stage says next
    datagrams = _Datagrams()
    c.udp = c.reactor.listenUDP(0, datagrams, interface="::" if ":" in address else "",
                                maxPacketSize=8192)  # the reactors' default
    assert datagrams.transport is not None
    datagrams.transport.connect(address, t.port)
    local = datagrams.transport.getHost()
    request = _options(c, "UDP", local.host, local.port)
    c.stage = "the OPTIONS reply" if is_address(t.host) else f"the OPTIONS reply from {address}"
    _send(c, datagrams, request, _SIP_T1)
    try:
        reply = await datagrams.reply
    except neterror.ConnectionRefusedError as e:  # ICMP port unreachable: say where
        attempts.failures[address] = "connection refused"
        raise Unreachable(attempts) from e
    finally:
        if datagrams.resend is not None and datagrams.resend.active():
            datagrams.resend.cancel()
    c.detail = text(reply)


def _send(c: Conversation, datagrams: _Datagrams, request: bytes, interval: float) -> None:
    """
    Send C{request}, and again after C{interval} doubled each time (RFC
    3261 timer A), while the deadline allows: UDP may lose it.
    """
    try:
        assert datagrams.transport is not None
        datagrams.transport.write(request, None)  # to the connected address
    except OSError as e:
        datagrams.fail(e)
        return
    if interval < c.remaining():
        datagrams.resend = c.reactor.callLater(interval, _send, c, datagrams, request,
                                               interval * 2)
