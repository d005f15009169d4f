"""
Response rate limiting for UDP, in the manner of NSD and Knot: a token
bucket per client network (/24 for IPv4, /56 for IPv6), so the responder
cannot be used to amplify a spoofed flood.  Over the limit, every
C{slip}-th response goes out truncated (real resolvers then retry over TCP,
which is never limited) and the others are dropped.
"""

from __future__ import annotations

from typing import Callable

from cachetools import LRUCache

from smartdiscover.config.networks import Networks
from smartdiscover.netblocks import network_of

SEND, SLIP, DROP = 0, 1, 2
DEFAULT_TABLE_SIZE = 100_000


def network_key(host: str) -> bytes | str:
    """
    The client network C{host} is counted in: its /24 or /56.
    """
    return network_of(host)


class RateLimiter:
    """
    Decides, per UDP response, whether to send it, slip it or drop it.

    @param rate: responses per second per network (also the burst); 0 = off.
    @param slip: every C{slip}-th limited response is slipped; 0 = none.
    @param exempt: networks never limited.
    @param clock: seconds, monotonic (the reactor's C{seconds}).
    @param size: at most this many networks are remembered; the least
        recently seen is forgotten first.
    """

    def __init__(self, rate: int, slip: int, exempt: Networks,
                 clock: Callable[[], float], size: int = DEFAULT_TABLE_SIZE) -> None:
        self._clock = clock
        self._size = size
        self._buckets: LRUCache[bytes | str, list[float]] = LRUCache(size)
        self.configure(rate, slip, exempt)
        self.dropped = 0
        self.slipped = 0

    def configure(self, rate: int, slip: int, exempt: Networks) -> None:
        """
        New limits (on reload); what was counted so far is kept.
        """
        self.rate = rate
        self.slip = slip
        self._exempt = exempt
        self._exempt_cache: LRUCache[str, bool] = LRUCache(self._size)

    def __len__(self) -> int:
        return len(self._buckets)

    def _is_exempt(self, host: str) -> bool:
        exempt = self._exempt_cache.get(host)
        if exempt is None:
            exempt = self._exempt_cache[host] = host in self._exempt
        return exempt

    def check(self, host: str) -> int:
        """
        L{SEND}, L{SLIP} or L{DROP} for the next response to C{host}.
        """
        if not self.rate or (self._exempt and self._is_exempt(host)):
            return SEND
        key = network_key(host)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [self.rate - 1.0, now, 0.0]
            return SEND
        tokens = min(float(self.rate), bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return SEND
        bucket[0] = tokens
        bucket[2] += 1
        if self.slip and bucket[2] % self.slip == 0:
            self.slipped += 1
            return SLIP
        self.dropped += 1
        return DROP
