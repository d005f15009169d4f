"""
SIGHUP reloads the configuration; twistd itself would die of it.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorFromThreads


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

    def stopService(self) -> Any:
        signal.signal(self._signum, self._previous or signal.SIG_DFL)
        return super().stopService()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._reactor.callFromThread(self._reload)
