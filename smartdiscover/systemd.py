"""
Telling systemd how the service is doing (sd_notify, without libsystemd).

Twisted has no sd_notify (C{twisted.python.systemd} only reads C{LISTEN_FDS});
the protocol is one datagram of newline-separated C{KEY=value} assignments
sent to the C{AF_UNIX}/C{SOCK_DGRAM} socket named by C{$NOTIFY_SOCKET} (a
leading C{@} names a socket in the abstract namespace).  See sd_notify(3).

L{SystemdNotifier} sends, for a C{Type=notify} unit::

    READY=1 + STATUS=...          once the reactor runs (every service started)
    WATCHDOG=1                    every WATCHDOG_USEC/2, from the reactor
    RELOADING=1 + MONOTONIC_USEC  when a reload starts        (reloading())
    READY=1 + STATUS=...          when it ended, even if it failed (reloaded())
    STOPPING=1                    when the service tree stops

Without C{$NOTIFY_SOCKET} (not started by systemd) everything is a no-op.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable, Mapping

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

__all__ = ["notify", "INotifierReactor", "SystemdNotifier"]

_log = Logger(namespace="smartdiscover.systemd")

#: How long one send may wait when systemd's receive queue is full.  The
#: datagrams are tiny and systemd drains its socket at once; this only bounds
#: the worst case, in which the reactor thread would otherwise block.
_SEND_TIMEOUT = 1.0

#: Longest C{STATUS=} text sent (systemctl status shows one line).
_STATUS_LIMIT = 400


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """
    Send one sd_notify datagram.

    @param message: newline-separated assignments, e.g. C{"READY=1"}.
    @param environ: where C{NOTIFY_SOCKET} is read.
    @return: C{True} if the datagram was sent; C{False} if there is no
        C{NOTIFY_SOCKET}, its address is of a kind not supported here (only
        absolute paths and C{@abstract} names are), or sending failed (the
        socket vanished, nobody is bound to it, its queue stayed full, ...).
        Never raises for any of these.
    """
    address = environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        target = "\0" + address[1:]
    elif address.startswith("/"):
        target = address
    else:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(_SEND_TIMEOUT)
            sock.sendto(message.encode("utf-8"), target)
    except (OSError, ValueError):
        # OSError: ENOENT, ECONNREFUSED, EAGAIN/timeout, EPERM, ...;
        # ValueError: an embedded NUL in a path.
        return False
    return True


class INotifierReactor(IReactorCore, IReactorTime):
    """
    What L{SystemdNotifier} needs of the reactor: C{callWhenRunning} for
    C{READY=1}, and a clock for the watchdog's L{LoopingCall}.

    zope.interface has no intersection type, so this names one, as
    Twisted's own C{IDistTrialReactor} does; a reactor need not declare it.
    """


def _first_line(text: str | None) -> str:
    """
    The first non-empty line of C{text}, fit for one C{STATUS=} assignment.
    """
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:_STATUS_LIMIT]
    return "unknown error"


class SystemdNotifier(Service):
    """
    Keeps systemd informed: readiness, watchdog pings, reloads and stopping.

    Add it to the service tree I{after} every other service: its
    C{startService} only schedules C{READY=1} for when the reactor runs (so
    it follows every listener's start) and, stopped first, its C{STOPPING=1}
    is the first thing systemd hears of a shutdown.

    Around a configuration reload call L{reloading} then L{reloaded}::

        notifier.reloading()
        store.reload().addCallback(lambda ok: notifier.reloaded(ok, store.last_error))

    @ivar watchdog_interval: seconds between C{WATCHDOG=1} pings, or L{None}
        when systemd asked for none (no C{WATCHDOG_USEC}, or a
        C{WATCHDOG_PID} that is not this process).
    """

    def __init__(self, reactor: INotifierReactor, environ: Mapping[str, str] = os.environ,
                 clock: Callable[[], int] = time.monotonic_ns,
                 status: Callable[[], str] = lambda: "serving") -> None:
        """
        @param reactor: provides C{callWhenRunning}, and C{callLater} and
            C{seconds} for the watchdog's L{LoopingCall}.
        @param environ: where C{NOTIFY_SOCKET}, C{WATCHDOG_USEC} and
            C{WATCHDOG_PID} are read.
        @param clock: C{CLOCK_MONOTONIC} in nanoseconds (what systemd
            compares C{MONOTONIC_USEC} with).
        @param status: describes the running service for C{STATUS=}, e.g.
            C{lambda: f"serving configuration generation {store.generation}"}.
        """
        # Not a class attribute: mypy types Service's unannotated name as None.
        self.setName("systemd-notify")
        self._reactor = reactor
        self._environ = environ
        self._clock = clock
        self._status = status
        self._reloads = 0
        self._watchdog: LoopingCall | None = None
        self.watchdog_interval = _watchdog_interval(environ)

    # -- lifecycle ---------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._reactor.callWhenRunning(self._ready)

    def stopService(self) -> None:
        self._send("STOPPING=1")
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        self._watchdog = None
        return super().stopService()

    def _ready(self) -> None:
        if not self.running:
            return
        self._send(f"READY=1\nSTATUS={self._describe()}")
        if self.watchdog_interval is not None and self._watchdog is None:
            self._watchdog = LoopingCall(self._send, "WATCHDOG=1")
            self._watchdog.clock = self._reactor
            self._watchdog.start(self.watchdog_interval, now=True)

    # -- reloads -----------------------------------------------------------

    def reloading(self) -> None:
        """
        A reload starts: C{RELOADING=1} with the current C{MONOTONIC_USEC}
        (which C{Type=notify-reload} requires).
        """
        self._reloads += 1
        usec = self._clock() // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}\n"
                   f"STATUS=reloading the configuration")

    def reloaded(self, ok: bool, error: str | None = None) -> None:
        """
        A reload ended: C{READY=1} (also after a failure: the previous
        configuration stays in force and is served) and a C{STATUS=} saying
        which.  While further reloads started by L{reloading} are still
        running only C{STATUS=} is sent; C{READY=1} follows the last one.

        @param ok: whether the new configuration came into force.
        @param error: why it did not (only its first line is sent).
        """
        self._reloads = max(0, self._reloads - 1)
        if ok:
            status = f"reloaded; {self._describe()}"
        else:
            status = ("reload failed, previous configuration stays in force: "
                      + _first_line(error))
        ready = "" if self._reloads else "READY=1\n"
        self._send(f"{ready}STATUS={status[:_STATUS_LIMIT]}")

    # -- helpers -----------------------------------------------------------

    def _describe(self) -> str:
        try:
            return _first_line(self._status())
        except Exception:
            _log.failure("describing the service for systemd failed")
            return "serving"

    def _send(self, message: str) -> bool:
        return notify(message, self._environ)


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """
    Half of C{WATCHDOG_USEC}, in seconds, if the watchdog is meant for us
    (and there is a C{NOTIFY_SOCKET} to ping it on).
    """
    if not environ.get("NOTIFY_SOCKET"):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000
