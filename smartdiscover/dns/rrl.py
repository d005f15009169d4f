"""
Response rate limiting for UDP, in the manner of NSD and Knot: a token
bucket per client network (/24 for IPv4, /56 for IPv6), so the responder
cannot be used to amplify a spoofed flood.  Over the limit, every
C{slip}-th response goes out truncated (real resolvers then retry over TCP,
which is never limited) and the others are dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

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
        self._buckets: OrderedDict[bytes | str, list[float]] = OrderedDict()
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
        self._exempt_cache: dict[str, bool] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def _is_exempt(self, host: str) -> bool:
        exempt = self._exempt_cache.get(host)
        if exempt is None:
            exempt = host in self._exempt
            if len(self._exempt_cache) >= self._size:
                self._exempt_cache.clear()
            self._exempt_cache[host] = exempt
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
            if len(self._buckets) >= self._size:
                self._buckets.popitem(last=False)
            self._buckets[key] = [self.rate - 1.0, now, 0.0]
            return SEND
        self._buckets.move_to_end(key)
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
