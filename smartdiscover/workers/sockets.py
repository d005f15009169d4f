"""
Listening sockets that several processes share through SO_REUSEPORT.

The first process binds them all (before it drops privileges, so :443
works) and hands one to each worker; the kernel spreads new connections
over the group.  A worker that dies leaves its socket open in the first
process: connections queued meanwhile wait for its successor instead of
being refused.
"""

from __future__ import annotations

import socket
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorSocket


def shared_listening_sockets(interface: str, port: int, backlog: int,
                             count: int) -> list[socket.socket]:
    """
    C{count} non-blocking listening sockets in one SO_REUSEPORT group on
    C{interface}:C{port} (port 0: one free port for all).
    """
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((interface, port))
            port = sock.getsockname()[1]
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class AdoptedPort(Service):
    """
    A worker's HTTPS listener: the socket the first process bound, passed
    down as file descriptor C{fd}.
    """

    def __init__(self, fd: int, factory: IProtocolFactory, reactor: IReactorSocket) -> None:
        self._fd = fd
        self._factory = factory
        self._reactor = reactor
        self._port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        inherited = socket.socket(fileno=self._fd)
        try:
            # Twisted annotates a ServerFactory; any IProtocolFactory will do.
            self._port = self._reactor.adoptStreamPort(
                self._fd, inherited.family, self._factory)  # type: ignore[arg-type]
        finally:
            inherited.close()  # the reactor holds its own duplicate
        super().privilegedStartService()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        return self._port.stopListening() if self._port is not None else None
