"""
The first process's side of C{[server] workers = N}: it binds the shared
HTTPS sockets, answers on the first itself, and keeps one worker process
per other socket running.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IProcessTransport,
    IProtocolFactory,
    IReactorProcess,
    IReactorSocket,
    IReactorTime,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, eventFromJSON
from twisted.python.failure import Failure

from smartdiscover.auth.guard import Guard
from smartdiscover.workers.guard_link import MAX_LINE, apply_line, encode
from smartdiscover.workers.sockets import shared_listening_sockets

DEFAULT_BACKLOG = 50  # Twisted's listenTCP default
RESTART_DELAY = 1.0  # seconds before a dead worker is started again
MAX_RESTART_DELAY = 30.0  # after repeated quick deaths
STABLE_AFTER = 10.0  # a worker that lived this long died by accident, not at start
STOP_GRACE = 10.0  # seconds a worker gets to stop before SIGKILL
SOCKET_FD = 3  # where a worker finds its listening socket
GUARD_FD = 4  # where a worker writes its guard events (it reads ours on stdin)
# A worker must not speak to systemd: only the first process does.
PRIVATE_ENVIRONMENT = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                       "LISTEN_PID", "LISTEN_FDNAMES")


class IPoolReactor(IReactorSocket, IReactorProcess, IReactorTime):
    """
    What L{WorkerPool} needs of the reactor: it adopts the first socket,
    spawns the workers and times their restarts and stops.

    zope.interface has no intersection type, so this names one, as
    Twisted's own C{IDistTrialReactor} does; a reactor need not declare it.
    """


class WorkerPool(Service):
    """
    @ivar processes: the running workers by index (1 to N-1; the first
        process is worker 0).
    """

    _log = Logger(namespace="smartdiscover.workers")

    def __init__(self, interface: str, port: int, backlog: int, count: int,
                 factory: IProtocolFactory, config: Path, reactor: IPoolReactor,
                 executable: str = sys.executable, guard: Guard | None = None) -> None:
        self._interface = interface
        self._port_number = port
        self._backlog = backlog
        self._count = count
        self._factory = factory
        self._config = config
        self._reactor = reactor
        self._executable = executable
        self._guard = guard
        self._sockets: list[socket.socket] = []
        self._port: IListeningPort | None = None
        self._delays: dict[int, float] = {}
        self._restarts: dict[int, IDelayedCall] = {}
        self._ended: dict[int, Deferred[None]] = {}
        self.processes: dict[int, IProcessTransport] = {}

    def privilegedStartService(self) -> None:
        self._sockets = shared_listening_sockets(self._interface, self._port_number,
                                                 self._backlog, self._count)
        first = self._sockets[0]
        # Twisted annotates a ServerFactory; any IProtocolFactory will do.
        self._port = self._reactor.adoptStreamPort(
            first.fileno(), first.family, self._factory)  # type: ignore[arg-type]
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        if self._guard is not None:
            self._guard.on_event(lambda event: self._pass_on(encode(event)))
        for index in range(1, self._count):
            self._start(index)

    def reload(self) -> None:
        """
        Each worker re-reads the configuration file, as the first process does.
        """
        for process in self.processes.values():
            process.signalProcess("HUP")

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for call in self._restarts.values():
            call.cancel()
        self._restarts.clear()
        waits: list[Deferred[None]] = []
        stopped = self._port.stopListening() if self._port is not None else None
        if stopped is not None:
            waits.append(stopped)
        for index, process in list(self.processes.items()):
            waits.append(self._ended[index])
            process.signalProcess("TERM")
            kill = self._reactor.callLater(STOP_GRACE, _kill, process)
            self._ended[index].addBoth(_disarm, kill)
        return DeferredList(waits).addBoth(lambda _: self._close_sockets())

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def _start(self, index: int) -> None:
        self._restarts.pop(index, None)
        environment = {name: value for name, value in os.environ.items()
                       if name not in PRIVATE_ENVIRONMENT}
        protocol = _WorkerProtocol(self, index)
        self._ended[index] = Deferred()
        self.processes[index] = self._reactor.spawnProcess(
            protocol, self._executable,
            [self._executable, "-m", "smartdiscover.workers.child",
             "--config", str(self._config), "--index", str(index)],
            env=environment, childFDs={0: "w", 1: "r", 2: "r", GUARD_FD: "r",
                                       SOCKET_FD: self._sockets[index].fileno()})
        protocol.started = self._reactor.seconds()
        self._log.info("worker {index} started: pid={pid}", index=index,
                       pid=self.processes[index].pid)

    def _reported(self, index: int, line: bytes) -> None:
        """
        Worker C{index} counted a guard event: count it here, and pass it on
        to every other worker.
        """
        if self._guard is not None and apply_line(self._guard, line) is not None:
            self._pass_on(line, index)

    def _pass_on(self, line: bytes, source: int | None = None) -> None:
        for index, process in list(self.processes.items()):
            if index != source:
                try:
                    process.writeToChild(0, line + b"\n")
                except Exception:  # it is ending: its successor starts afresh
                    pass

    def _exited(self, index: int, started: float, reason: Failure) -> None:
        self.processes.pop(index, None)
        ended = self._ended.pop(index, None)
        if not self.running:
            self._log.info("worker {index} stopped", index=index)
        else:
            lived = self._reactor.seconds() - started
            delay = RESTART_DELAY if lived >= STABLE_AFTER else min(
                self._delays.get(index, RESTART_DELAY / 2) * 2, MAX_RESTART_DELAY)
            self._delays[index] = delay
            self._log.error("worker {index} exited ({why}); starting it again in "
                            "{delay:.0f} s", index=index, why=reason.getErrorMessage(),
                            delay=delay)
            self._restarts[index] = self._reactor.callLater(delay, self._start, index)
        if ended is not None:
            ended.callback(None)


def _disarm(_: object, kill: IDelayedCall) -> None:
    """
    The worker ended within its grace: no SIGKILL.
    """
    if kill.active():
        kill.cancel()


def _kill(process: IProcessTransport) -> None:
    try:
        process.signalProcess("KILL")
    except Exception:  # it ended meanwhile
        pass


class _WorkerProtocol(ProcessProtocol):
    """
    Relays a worker's log (one JSON event per line on its standard output)
    into this process's log, marked with the worker's index.
    """

    started = 0.0

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self._pool = pool
        self._index = index
        self._system = f"worker-{index}"
        self._buffers = {1: b"", 2: b"", GUARD_FD: b""}

    def childDataReceived(self, fd: int, data: bytes) -> None:
        if fd not in self._buffers:
            return
        *lines, self._buffers[fd] = (self._buffers[fd] + data).split(b"\n")
        if fd == GUARD_FD:
            if len(self._buffers[fd]) > MAX_LINE:  # not ours to keep
                self._buffers[fd] = b""
            for line in lines:
                self._pool._reported(self._index, line)
            return
        for line in lines:
            if line.strip():
                self._relay(line, fd)

    def _relay(self, line: bytes, fd: int) -> None:
        log = self._pool._log
        text = line.lstrip(b"\x1e").decode("utf-8", "replace")
        if fd == 1:
            try:
                event = eventFromJSON(text)
            except ValueError:
                event = None
            if isinstance(event, dict):
                level = getattr(event.get("log_level"), "name", "info")
                event["log_system"] = f"{self._system} {event.get('log_namespace')}#{level}"
                event["smartdiscover_worker"] = self._index
                log.observer(event)
                return
        log.warn("worker {index}: {line}", index=self._index, line=text,
                 log_system=self._system)

    def processEnded(self, reason: Failure) -> None:
        for fd, rest in self._buffers.items():
            if rest.strip() and fd != GUARD_FD:
                self._relay(rest, fd)
        self._pool._exited(self._index, self.started, reason)
