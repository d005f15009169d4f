"""
A dedicated, bounded thread pool for password hashing.

Not the reactor's default pool: that one is shared with name resolution and
its queue has no bound.
"""

from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class HashingPool(Service):
    """
    Runs blocking verifications on at most C{size} threads (bcrypt and
    argon2 release the GIL, so one thread per core is the useful maximum).
    """

    def __init__(self, reactor: IReactorFromThreads, size: int | None = None) -> None:
        self._reactor = reactor
        self.size = size or os.cpu_count() or 1
        self._pool = ThreadPool(minthreads=0, maxthreads=self.size, name="smartdiscover-hashing")

    def startService(self) -> None:
        super().startService()
        self._pool.start()

    def stopService(self) -> None:
        self._pool.stop()
        return super().stopService()

    def run(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._pool, f, *args)
