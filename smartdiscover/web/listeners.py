"""
What the HTTPS and plain-HTTP listeners listen on, and the factory layers
every connection passes before HTTP: connection limits, then (with
C{haproxy:}) the PROXY header, which names the client the limits count.
"""

from __future__ import annotations

import socket
from typing import Callable

from twisted.internet.interfaces import IProtocolFactory, IReactorTime

from smartdiscover.config.model import HTTPSListener, TCPListener
from smartdiscover.config.networks import Networks
from smartdiscover.connections import ConnectionLimits, LimitedFactory
from smartdiscover.web.proxy import ProxyV2Factory


def listener_factory(listener: HTTPSListener | TCPListener, factory: IProtocolFactory,
                     proxies: Callable[[], Networks], limits: ConnectionLimits,
                     reactor: IReactorTime) -> IProtocolFactory:
    """
    C{factory}'s connections within C{limits}; with C{haproxy:}, every
    connection must come from a proxy and first send a PROXY protocol v2
    header.
    """
    limited = LimitedFactory(factory, limits, reactor)
    return ProxyV2Factory(limited, reactor, proxies) if listener.proxy_protocol else limited


def listen_description(listener: HTTPSListener | TCPListener) -> str:
    """
    A C{tcp:} endpoint description; without an interface, every address.
    """
    interface = listener.interface or any_address()
    description = f"tcp:{listener.port}:interface={interface.replace(':', chr(92) + ':')}"
    if listener.backlog is not None:
        description += f":backlog={listener.backlog}"
    return description


def any_address() -> str:
    """
    C{::} (IPv6 and IPv4-mapped, one socket) where the host has IPv6, else
    C{0.0.0.0}.
    """
    if not socket.has_ipv6:
        return "0.0.0.0"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
    except OSError:
        return "0.0.0.0"
    return "::"
