"""
Decaying failure counters with exponential lockout, in a bounded table.
"""

from __future__ import annotations

from typing import Hashable

from cachetools import LRUCache

DEFAULT_SIZE = 100_000


class Penalties:
    """
    One counter per key (a client network, an account): each failure adds
    one, and the count leaks away at C{threshold / window} per second.
    Reaching C{threshold} locks the key for C{lockout} seconds.  Within
    C{max_lockout} after a lock ends the key is on probation: a single
    failure locks it again, each time twice as long, up to C{max_lockout}
    (so a patient attacker gains one guess per lock, not a fresh run).  The
    least recently touched keys are forgotten first.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        # key -> [level, updated, locked_until, strikes]
        self._entries: LRUCache[Hashable, list[float]] = LRUCache(size)

    def __len__(self) -> int:
        return len(self._entries)

    def locked(self, key: Hashable, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and now < entry[2]

    def level(self, key: Hashable, now: float, threshold: int, window: float) -> float:
        """
        The failures counted against C{key} now, after leaking.
        """
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        leak = (now - entry[1]) * threshold / window if window > 0 else float("inf")
        return max(0.0, entry[0] - leak)

    def fail(self, key: Hashable, now: float, threshold: int, window: float,
             lockout: float, max_lockout: float) -> bool:
        """
        Count a failure; return whether C{key} is now locked.
        """
        entry = self._entries.get(key)  # a use: the least recently used go first
        if entry is None:
            entry = self._entries[key] = [0.0, now, float("-inf"), 0.0]
        leak = (now - entry[1]) * threshold / window if window > 0 else float("inf")
        entry[0] = max(0.0, entry[0] - leak) + 1.0
        entry[1] = now
        probation = now - entry[2] < max_lockout
        # "> threshold - 1": leaking between quick failures must not let the
        # threshold-th one slip under it.
        if threshold and (entry[0] > threshold - 1 or probation):
            entry[3] = entry[3] + 1 if probation else 1.0
            entry[2] = now + min(max_lockout, lockout * 2 ** (entry[3] - 1))
            entry[0] = 0.0
            return True
        return False

    def clear(self, key: Hashable) -> None:
        self._entries.pop(key, None)
