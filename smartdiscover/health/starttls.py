"""
STARTTLS, the same for every protocol that upgrades a plain connection:
only the command, the go-ahead and the name the protocol gives it differ.
"""

from __future__ import annotations

from smartdiscover.health.conversation import Conversation
from smartdiscover.health.session import Parser, Session, Unexpected, expect


async def starttls(c: Conversation, s: Session, command: bytes, parser: Parser,
                   ready: bytes, name: str = "STARTTLS", offered: bool = True) -> None:
    """
    Send C{command} and, once the server's reply starts with C{ready},
    upgrade the connection, verifying the certificate against the target's
    host.  A server that did not offer the upgrade is not asked for it.
    """
    if not offered:
        raise Unexpected("server does not offer STARTTLS")
    reply = await c.ask(s, command, parser, f"the {name} reply")
    expect(reply, ready, f"{name} reply")
    await c.handshake(s, c.tls_options(c.target.host))
