"""
DNS-01 challenges (RFC 8555 section 8.4) answered by SmartDiscover's own
DNS responder.

The responder answers from a compiled table (dns/table.py), not from
memory it looks values up in, so a published value is answered only once
a table holding it is built and in force: L{ZoneChallenges.publish} waits
for that, through the rebuild hook dns/service.py connects.
"""

from __future__ import annotations

import re
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from smartdiscover.certs.acme.responders import DNS01Records, IDNS01Responder

PREFIX = "_acme-challenge."
MAX_NAME = 253  # characters of a name without its final dot (RFC 1035 2.3.4)
MAX_VALUE = 255  # bytes of one TXT character-string (RFC 1035 3.3.14)

Rebuild = Callable[[], "Deferred[None]"]

# Letters, digits, hyphens and underscores: a name dns/table.py encodes
# as it is (it writes a longer label's length into the type bits).
_LABEL = re.compile(r"[a-z0-9_-]{1,63}\Z")
# RFC 8555 8.4: the base64url SHA-256 digest of the key authorization.
_VALUE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_VALUE}}}\Z")


def challenge_owner(name: str, value: str) -> str:
    """
    C{name} lower case without its final dot, where a TXT record of
    C{value} can be published.

    @raise ValueError: when C{name} is no DNS name of ASCII letters,
        digits, hyphens and underscores, or C{value} no base64url text
        that fits one TXT string.
    """
    owner = name.lower()
    if owner.endswith("."):
        owner = owner[:-1]
    if (len(owner) > MAX_NAME or not owner.isascii()
            or not all(_LABEL.match(label) for label in owner.split("."))):
        raise ValueError(f"not a DNS name: {name[:60]!r}")
    if not _VALUE.match(value):
        raise ValueError(f"not a DNS-01 value: {value[:60]!r}")
    return owner


def _fire(result: Failure | None, waiters: list[Deferred[None]]) -> None:
    for waiter in waiters:
        if isinstance(result, Failure):
            waiter.errback(result)
        else:
            waiter.callback(None)


@implementer(IDNS01Responder)
class ZoneChallenges(DNS01Records):
    """
    The DNS-01 values the zones of this instance answer: held as
    L{DNS01Records} holds them, and put in force by a rebuild of the zones.
    """

    _log = Logger()

    def __init__(self) -> None:
        super().__init__()
        # What published() returns, replaced whole on the reactor thread:
        # reloads read it off that thread while publish() may run.
        self._pairs: tuple[tuple[str, str], ...] = ()
        self._rebuild: Rebuild | None = None
        self._early: list[Deferred[None]] = []  # published before connect()

    def connect(self, rebuild: Rebuild) -> None:
        """
        Put every change in force with C{rebuild}, whose L{Deferred} fires
        once a table built from what is published at the call is in force.
        Values published before this call wait for a rebuild now.
        """
        self._rebuild = rebuild
        early, self._early = self._early, []
        if early:
            rebuild().addBoth(_fire, early)

    def publish(self, name: str, value: str) -> Deferred[None]:
        """
        Answer C{value} at C{name} (C{_acme-challenge.<identifier>}) once
        the zones are built again; the L{Deferred} fires when they are in
        force, and fails when building them failed.

        @raise ValueError: for a name outside C{_acme-challenge.} or not a
            DNS name, or a value that is not one (see L{challenge_owner}).
        @raise TooManyChallenges: as L{DNS01Records.publish} does.
        """
        owner = challenge_owner(name, value)
        if not owner.startswith(PREFIX):
            raise ValueError(f"a DNS-01 name starts with {PREFIX!r}: {name[:60]!r}")
        DNS01Records.publish(self, owner, value)
        self._pairs = tuple(DNS01Records.published(self))
        if self._rebuild is None:
            waiter: Deferred[None] = Deferred()
            self._early.append(waiter)
            return waiter
        return self._rebuild()

    def withdraw(self, name: str, value: str) -> None:
        """
        Stop answering C{value} at C{name} once the zones are built again;
        nobody waits for that, so a failure is only logged.
        """
        DNS01Records.withdraw(self, name, value)
        pairs = tuple(DNS01Records.published(self))
        if pairs == self._pairs:
            return
        self._pairs = pairs
        if self._rebuild is not None:
            self._rebuild().addErrback(
                lambda failure: self._log.failure(
                    "the zones without DNS-01 value {value} at {name} are not in force",
                    failure, value=value, name=name[:60]))

    def published(self) -> list[tuple[str, str]]:
        """
        As L{DNS01Records.published}; safe to call off the reactor thread.
        """
        return list(self._pairs)
