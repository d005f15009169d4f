"""
Caps on open connections, in all and per client, below the process's
descriptor limit: one source, or a crowd of them, must never leave the
process without descriptors to accept, read its files or reach its
backends (twisted.protocols.policies.LimitConnectionsByPeer is broken on
Python 3 and has no total).
"""

from __future__ import annotations

import resource
from collections import Counter
from typing import Hashable, cast

from twisted.internet.interfaces import (
    IProtocolFactory,
    IReactorTime,
    ITCPTransport,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure

from smartdiscover.netblocks import client_of

# Descriptors no listener may take: configuration and password files,
# backend and probe connections, the thread pool's and workers' pipes.
RESERVED_DESCRIPTORS = 64
REFUSAL_LOG_INTERVAL = 60.0


def descriptor_budget() -> int:
    """
    The descriptors listeners may share: the soft C{RLIMIT_NOFILE} less
    L{RESERVED_DESCRIPTORS}.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(0, soft - RESERVED_DESCRIPTORS)


def default_web_connections() -> int:
    """
    HTTPS and plain HTTP together: three quarters of the budget.
    """
    return max(16, descriptor_budget() * 3 // 4)


def default_dns_connections() -> int:
    """
    DNS over TCP: an eighth of the budget, at most 1,000.
    """
    return max(8, min(1000, descriptor_budget() // 8))


class ConnectionLimits:
    """
    The connections open on some listeners, in all and per client (an
    IPv4 address, an IPv6 /64: one host could otherwise take 2^64 slots).

    @ivar refused: connections turned away since start.
    """

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self.refused = 0
        self._open: Counter[Hashable] = Counter()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def configure(self, total: int, per_client: int) -> None:
        """
        New caps, for connections from now on (open ones stay).
        """
        self.total = total
        self.per_client = per_client

    def admit(self, host: str) -> Hashable | None:
        """
        Count a new connection from C{host}; C{None} when a cap is reached,
        else the key to L{release} it with.
        """
        key = client_of(host)
        if self._count >= self.total or self._open[key] >= self.per_client:
            self.refused += 1
            return None
        self._open[key] += 1
        self._count += 1
        return key

    def release(self, key: Hashable) -> None:
        self._count -= 1
        self._open[key] -= 1
        if not self._open[key]:
            del self._open[key]


class LimitedProtocol(ProtocolWrapper):
    """
    Starts the wrapped protocol only when its connection is admitted; a
    refused connection is aborted before it has read a byte.

    The client is the transport's peer when the connection is made, so
    behind a PROXY protocol header (L{smartdiscover.web.proxy}) this wrapper
    goes inside it.
    """

    factory: LimitedFactory
    _key: Hashable | None = None

    def makeConnection(self, transport: ITransport) -> None:
        host = getattr(transport.getPeer(), "host", "")
        self._key = self.factory.limits.admit(host)
        if self._key is None:
            self.factory.refused(host)
            # Every listener is TCP, and a PROXY header's wrapper provides its
            # TCP transport's interfaces: ITransport alone lacks abortConnection.
            cast(ITCPTransport, transport).abortConnection()
            return
        super().makeConnection(transport)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._key is None:  # refused: the wrapped protocol never started
            return
        self.factory.limits.release(self._key)
        self._key = None
        super().connectionLost(reason)


class LimitedFactory(WrappingFactory):
    """
    Wraps a listener's factory in L{ConnectionLimits} it may share with
    other listeners.
    """

    protocol = LimitedProtocol
    noisy = False
    _log = Logger()

    def __init__(self, wrappedFactory: IProtocolFactory, limits: ConnectionLimits,
                 clock: IReactorTime) -> None:
        super().__init__(wrappedFactory)
        self.limits = limits
        self._clock = clock
        self._last_log = float("-inf")

    def registerProtocol(self, p: ProtocolWrapper) -> None:
        """
        No registry of open connections: the limits count them.
        """

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        pass

    def refused(self, host: str) -> None:
        now = self._clock.seconds()
        if now - self._last_log >= REFUSAL_LOG_INTERVAL:
            self._last_log = now
            self._log.warn(
                "connection from {peer} refused: {open} connections open (at most {total}, "
                "{per_client} per client); {refused} refused since start", peer=host,
                open=len(self.limits), total=self.limits.total,
                per_client=self.limits.per_client, refused=self.limits.refused)

    def logPrefix(self) -> str:
        wrapped = self.wrappedFactory
        return wrapped.logPrefix() if hasattr(wrapped, "logPrefix") else type(wrapped).__name__
