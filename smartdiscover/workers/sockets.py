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
