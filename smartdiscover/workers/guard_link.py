"""
The guard's counters across worker processes: every process tells the
first one of each failure that counted and each success; the first one
counts it too and passes it on to every other process.  So each process's
counters add up to what all of them saw, and the policy's bounds hold for
the whole service, not per process.

One JSON object per line: C{[kind, client address, account, place]}
(L{smartdiscover.auth.guard.GuardEvent}); each process finds the client's
network and the counter from the address itself.
"""

from __future__ import annotations

import json
from typing import Callable

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from smartdiscover.auth.guard import Guard, GuardEvent

# An account comes from a Basic header, which the HTTP channel bounds at
# 8 KiB of headers: an event line stays well below this.
MAX_LINE = 64 * 1024

_log = Logger(namespace="smartdiscover.workers")


KINDS = {"failed": ("address", "network", ""), "verified": ("",), "seen": ("",)}


def encode(event: GuardEvent) -> bytes:
    return json.dumps(list(event), ensure_ascii=False).encode("utf-8")


def decode(line: bytes) -> GuardEvent:
    """
    @raise ValueError: for anything that is not an event.
    """
    try:
        kind, source, account, place = json.loads(line)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not a guard event: {e}") from None
    if not (isinstance(kind, str) and isinstance(source, str) and isinstance(account, str)
            and isinstance(place, str) and place in KINDS.get(kind, ())):
        raise ValueError("not a guard event")
    return kind, source, account, place


def apply_line(guard: Guard, line: bytes) -> GuardEvent | None:
    """
    Count the event on C{line}; C{None} (and a log line) when it is not one.
    """
    try:
        event = decode(line)
    except ValueError as e:
        _log.warn("guard event ignored: {why}", why=str(e))
        return None
    guard.apply(event)
    return event


class WorkerGuardLink(LineReceiver):
    """
    A worker's end, over its standard input (from the first process) and
    file descriptor 4 (to it).  Standard input closing means the first
    process is gone: C{gone} is called.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, guard: Guard, gone: Callable[[], None]) -> None:
        self._guard = guard
        self._gone = gone
        guard.on_event(self._send)

    def _send(self, event: GuardEvent) -> None:
        if self.transport is not None:
            self.sendLine(encode(event))

    def lineReceived(self, line: bytes) -> None:
        apply_line(self._guard, line)

    def lineLengthExceeded(self, line: bytes) -> None:
        # Never from our first process; dropping the link would stop us.
        _log.warn("guard event ignored: over {size} bytes", size=MAX_LINE)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._gone()
