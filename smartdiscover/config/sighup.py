"""
SIGHUP reloads the configuration; twistd itself would die of it.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Callable, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads

from smartdiscover.config.store import ConfigStore


class ReloadListener(Protocol):
    """
    Told of a reload before it starts and when it ended (systemd's notifier).
    """

    def reloading(self) -> None: ...

    def reloaded(self, ok: bool, error: str | None) -> None: ...


class Reloadable(Protocol):
    def reload(self) -> Any: ...


class Reload:
    """
    What SIGHUP does: tell C{listener} (systemd) a reload starts, pass the
    signal on to C{others} (the worker processes), reload C{store}, then
    tell C{listener} how it ended.
    """

    def __init__(self, store: ConfigStore, listener: ReloadListener,
                 others: Reloadable | None = None) -> None:
        self._store = store
        self._listener = listener
        self._others = others

    def __call__(self) -> Deferred[bool]:
        self._listener.reloading()
        if self._others is not None:
            self._others.reload()
        return self._store.reload().addCallback(self._ended)

    def _ended(self, ok: bool) -> bool:
        self._listener.reloaded(ok, self._store.last_error)
        return ok


class ReloadOnSignal(Service):
    """
    Schedules C{reload} on the reactor thread whenever the process gets SIGHUP.

    The handler itself does nothing else: it may interrupt any Python code.
    """

    def __init__(self, reload: Callable[[], Any], reactor: IReactorFromThreads,
                 signum: int = signal.SIGHUP) -> None:
        self._reload = reload
        self._reactor = reactor
        self._signum = signum
        self._previous: Any = None

    def startService(self) -> None:
        super().startService()
        self._previous = signal.signal(self._signum, self._handle)

    def stopService(self) -> None:
        signal.signal(self._signum, self._previous or signal.SIG_DFL)
        return super().stopService()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._reactor.callFromThread(self._reload)
