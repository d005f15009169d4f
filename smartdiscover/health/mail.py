"""
The mail probes: an SMTP, IMAP or POP3 greeting, STARTTLS when the target
asks for it, and one command proving the channel works, then a polite
goodbye.
"""

from __future__ import annotations

import re

from smartdiscover.config.model import Security
from smartdiscover.health.conversation import Conversation
from smartdiscover.health.session import (
    Parser,
    Session,
    Unexpected,
    excerpt,
    expect,
    line,
    text,
)
from smartdiscover.health.starttls import starttls

_EHLO = b"EHLO smartdiscover.invalid\r\n"
_SMTP_LINE = re.compile(rb"\d{3}(?:[ -]|$)")


def _smtp_reply(buffer: bytes) -> tuple[int, bytes] | None:
    """
    A complete SMTP reply: "250-..." lines up to a "250 ..." line.
    """
    start = 0
    while True:
        end = buffer.find(b"\n", start)
        reply = buffer[start:] if end < 0 else buffer[start:end].rstrip(b"\r")
        if (end >= 0 or len(reply) >= 4) and not _SMTP_LINE.match(reply[:4]):
            raise Unexpected(f"unexpected reply {excerpt(reply)}")
        if end < 0:
            return None
        if reply[3:4] != b"-":
            return end + 1, buffer[:end + 1]
        start = end + 1


def _tagged(tag: bytes) -> Parser:
    """
    IMAP: untagged lines up to the line tagged C{tag}, which is the reply.
    """
    def parse(buffer: bytes) -> tuple[int, bytes] | None:
        start = 0
        while (found := line(buffer[start:])) is not None:
            used, reply = found
            start += used
            if reply.startswith(tag + b" "):
                return start, reply
            if not reply.startswith((b"* ", b"+ ")):
                raise Unexpected(f"unexpected reply {excerpt(reply)}")
        return None
    return parse


async def smtp(c: Conversation) -> None:
    s = await c.connect()
    greeting = await c.ask(s, None, _smtp_reply, "the greeting")
    c.detail = text(greeting.split(b"\n", 1)[0])
    expect(greeting, b"220", "greeting")
    ehlo = await c.ask(s, _EHLO, _smtp_reply, "the EHLO reply")
    expect(ehlo, b"250", "EHLO reply")
    if c.target.security is Security.STARTTLS:
        keywords = {reply[4:].split(b" ", 1)[0].strip().upper()
                    for reply in ehlo.split(b"\n")}
        await starttls(c, s, b"STARTTLS\r\n", _smtp_reply, b"220",
                       offered=b"STARTTLS" in keywords)
        ehlo = await c.ask(s, _EHLO, _smtp_reply, "the EHLO reply after STARTTLS")
        expect(ehlo, b"250", "EHLO reply")
    s.send(b"QUIT\r\n")


async def _greeted(c: Conversation, expected: bytes) -> Session:
    """
    Connect and read a one-line greeting that must start with C{expected}
    (IMAP and POP3); the greeting becomes the probe's detail.
    """
    s = await c.connect()
    greeting = await c.ask(s, None, line, "the greeting")
    c.detail = text(greeting)
    expect(greeting, expected, "greeting")
    return s


async def imap(c: Conversation) -> None:
    s = await _greeted(c, b"* OK")
    if c.target.security is Security.STARTTLS:
        await starttls(c, s, b"a1 STARTTLS\r\n", _tagged(b"a1"), b"A1 OK")
    reply = await c.ask(s, b"a2 CAPABILITY\r\n", _tagged(b"a2"), "the CAPABILITY reply")
    expect(reply, b"A2 OK", "CAPABILITY reply")
    s.send(b"a3 LOGOUT\r\n")


async def pop3(c: Conversation) -> None:
    s = await _greeted(c, b"+OK")
    if c.target.security is Security.STARTTLS:
        await starttls(c, s, b"STLS\r\n", line, b"+OK", name="STLS")
    # The QUIT reply proves the (upgraded) channel works end to end.
    reply = await c.ask(s, b"QUIT\r\n", line, "the QUIT reply")
    expect(reply, b"+OK", "QUIT reply")
