"""
Console sessions: a random token in a cookie, an idle and an absolute
expiry, and a CSRF token per session that every form carries.

Sessions live in the memory of the first process: a restart logs every
administrator out, which is the safe failure.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from twisted.internet.interfaces import IReactorTime

# Enough for every administrator on every browser; beyond it the oldest
# session ends, so logins cannot fill the memory.
MAX_SESSIONS = 1000
TOKEN_BYTES = 32


@dataclass
class Session:
    """
    One logged-in administrator.

    @ivar token: the cookie's value.
    @ivar csrf: the value every form of this session must send back.
    """

    token: str
    csrf: str
    name: str
    source: str
    created: float
    seen: float

    def __repr__(self) -> str:
        # Never the tokens: they are credentials.
        return f"<Session {self.name!r} from {self.source}>"

    def accepts(self, csrf: str | None) -> bool:
        """
        Whether C{csrf} (from a form) is this session's token; constant time.
        """
        return csrf is not None and hmac.compare_digest(csrf.encode("utf-8", "replace"),
                                                        self.csrf.encode("ascii"))


class Sessions:
    """
    The open sessions, oldest first.
    """

    def __init__(self, clock: IReactorTime, idle: Callable[[], float],
                 lifetime: Callable[[], float], limit: int = MAX_SESSIONS) -> None:
        """
        @param idle: seconds without a request after which a session ends
            (read at each lookup: a reload applies).
        @param lifetime: seconds after which a session ends anyway.
        """
        self._clock = clock
        self._idle = idle
        self._lifetime = lifetime
        self._limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, name: str, source: str) -> Session:
        now = self._clock.seconds()
        session = Session(secrets.token_urlsafe(TOKEN_BYTES), secrets.token_urlsafe(TOKEN_BYTES),
                          name, source, now, now)
        self._sessions[session.token] = session
        while len(self._sessions) > self._limit:
            self._sessions.popitem(last=False)
        return session

    def find(self, token: str | None) -> Session | None:
        """
        The live session of C{token}, its idle clock reset; L{None} for an
        unknown, ended or expired one (expired: ended now).
        """
        if not token or len(token) > 2 * TOKEN_BYTES:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock.seconds()
        if now - session.seen > self._idle() or now - session.created > self._lifetime():
            del self._sessions[token]
            return None
        session.seen = now
        return session

    def close(self, token: str) -> Session | None:
        """
        End the session of C{token} (logout); its cookie is worthless from
        now on.
        """
        return self._sessions.pop(token, None)

    def close_for(self, name: str) -> int:
        """
        End every session of C{name} (its account was removed or its
        password changed); how many ended.
        """
        ended = [t for t, s in self._sessions.items() if s.name == name]
        for token in ended:
            del self._sessions[token]
        return len(ended)
