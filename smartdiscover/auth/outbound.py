"""
Connections to user stores: TLS verified against the configured CA (or the
system's) and the server's name with service_identity, every step bounded
by the configured timeout.
"""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IProtocol

from smartdiscover.config.model import TLSServer

T = TypeVar("T")


def client_tls(server: TLSServer) -> IOpenSSLClientConnectionCreator:
    """
    TLS options that verify C{server}'s certificate and name.
    """
    if server.ca_file is not None:
        authorities = ssl.Certificate.loadPEM(server.ca_file.read_bytes())
        trust = ssl.trustRootFromCertificates([authorities])
    else:
        trust = ssl.platformTrust()
    return ssl.optionsForClientTLS(server.host, trustRoot=trust)


def connect(server: TLSServer, protocol: IProtocol, reactor: Any) -> Deferred[Any]:
    """
    Connect C{protocol} to C{server}, through TLS at once when the server
    speaks implicit TLS (ldaps, imaps); the caller upgrades the others.
    """
    endpoint = HostnameEndpoint(reactor, server.host, server.port, timeout=server.timeout)
    if server.implicit_tls:
        endpoint = wrapClientTLS(client_tls(server), endpoint)
    return bounded(connectProtocol(endpoint, protocol), server, reactor)


def bounded(d: Deferred[T], server: TLSServer, reactor: Any) -> Deferred[T]:
    """
    C{d}, failing with a timeout after C{server.timeout} seconds.
    """
    return d.addTimeout(server.timeout, reactor)
