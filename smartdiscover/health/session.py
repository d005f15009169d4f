"""
A probe's client connection, read reply by reply, and what reading a reply
needs: parsers say where a reply ends, L{Unexpected} is a server that does
not speak its protocol.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    ITLSTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

LIMIT = 64 * 1024  # the longest reply we buffer: greetings are a few hundred bytes

# Parsers: given the received bytes, the length of the first complete reply
# and the reply, or None while it is incomplete; Unexpected for garbage.
Parser = Callable[[bytes], "tuple[int, bytes] | None"]


class Unexpected(Exception):
    """
    The server answered, but not as its protocol says: a verdict, not a bug.
    """


def excerpt(data: bytes, limit: int = 60) -> str:
    """
    The first line of C{data}, printable and short, for an error message.
    """
    line = data.strip().split(b"\n", 1)[0].rstrip(b"\r")
    text = "".join(c if c.isprintable() else "?" for c in line[:limit].decode("latin-1"))
    return repr(text + ("..." if len(line) > limit else ""))


def text(line: bytes) -> str:
    """
    A reply line as detail text.
    """
    return line.strip().decode("utf-8", "replace")[:200]


def line(buffer: bytes) -> tuple[int, bytes] | None:
    """
    One line: the reply of POP3 and of an IMAP greeting.
    """
    end = buffer.find(b"\n")
    if end < 0:
        return None
    return end + 1, buffer[:end].rstrip(b"\r")


def expect(reply: bytes, prefix: bytes, what: str) -> None:
    """
    Fail unless C{reply} starts with C{prefix}, in any letter case.
    """
    if not reply.upper().startswith(prefix):
        raise Unexpected(f"unexpected {what} {excerpt(reply)}")


@implementer(IHandshakeListener)
class Session(Protocol):
    """
    One client connection read reply by reply: a read waits until the
    buffer holds a complete reply as its parser defines it.
    """

    # Narrower than Protocol's ITransport | None: a TCP connection that
    # STARTTLS upgrades, or TLS from the first byte, whose wrapper provides
    # its TCP transport's interfaces.
    transport: ITLSTransport | None

    def __init__(self) -> None:
        self._buffer = b""
        self._parser: Parser | None = None
        self._reply: Deferred[bytes] | None = None
        self._handshake: Deferred[None] | None = None
        self._handshaken = False
        self._closed: list[Deferred[None]] = []
        self._error: Failure | None = None
        self.gone = False

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def read(self, parser: Parser) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred(self._cancelled)
        self._parser, self._reply = parser, d
        self._feed()
        if self._reply is d and self._error is not None:
            self._parser = self._reply = None
            d.errback(self._error)
        return d

    def secure(self, creator: IOpenSSLClientConnectionCreator | None) -> Deferred[None]:
        """
        Wait for the TLS handshake, first starting it with C{creator}
        (STARTTLS); without one the connection was wrapped from the start.
        """
        d: Deferred[None] = Deferred(self._cancelled)
        if self._error is not None:
            d.errback(self._error)
            return d
        if creator is not None:
            self._buffer = b""  # never trust plain text sent before the upgrade
            assert self.transport is not None
            self.transport.startTLS(creator)
        if self._handshaken:
            d.callback(None)
        else:
            self._handshake = d
        return d

    def closed(self) -> Deferred[None]:
        """
        A Deferred that fires once the connection is gone.
        """
        if self.gone:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._closed.append(d)
        return d

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > LIMIT:
            self._stop(Failure(Unexpected(f"reply longer than {LIMIT // 1024} KiB")))
            assert self.transport is not None
            self.transport.abortConnection()
        else:
            self._feed()

    def handshakeCompleted(self) -> None:
        self._handshaken = True
        d, self._handshake = self._handshake, None
        if d is not None:
            d.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.gone = True
        self._stop(reason)
        waiting, self._closed = self._closed, []
        for d in waiting:
            if not d.called:
                d.callback(None)

    def _feed(self) -> None:
        if self._parser is None or self._reply is None:
            return
        try:
            found = self._parser(self._buffer)
        except Unexpected:
            self._stop(Failure())
            return
        if found is not None:
            used, message = found
            self._buffer = self._buffer[used:]
            d, self._parser, self._reply = self._reply, None, None
            d.callback(message)

    def _stop(self, reason: Failure) -> None:
        """
        Fail whatever waits, and every later wait, with C{reason}.
        """
        if self._error is None:
            self._error = reason
        reply, handshake = self._reply, self._handshake
        self._parser = self._reply = self._handshake = None
        for d in (reply, handshake):
            if d is not None:
                d.errback(self._error)

    def _cancelled(self, d: Deferred[Any]) -> None:
        if self._reply is d:
            self._parser = self._reply = None
        if self._handshake is d:
            self._handshake = None
