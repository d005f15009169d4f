"""
Connections to user stores: TLS verified against the configured CA (or the
system's) and the server's name with service_identity, every step bounded
by the configured timeout.
"""

from __future__ import annotations

from typing import TypeVar

from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
)

from smartdiscover.config.model import TLSServer

T = TypeVar("T")
P = TypeVar("P", bound=IProtocol)


class IConnectingReactor(IReactorTCP, IReactorTime, IReactorPluggableNameResolver):
    """
    What reaching a user store needs of the reactor: L{HostnameEndpoint}
    resolves the name, connects over TCP and times out; L{bounded} times
    out each step.

    zope.interface has no intersection type, so this names one, as
    Twisted's own C{IDistTrialReactor} does; a reactor need not declare it.
    """


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


def connect(server: TLSServer, protocol: P, reactor: IConnectingReactor) -> Deferred[P]:
    """
    Connect C{protocol} to C{server}, through TLS at once when the server
    speaks implicit TLS (ldaps, imaps); the caller upgrades the others.
    """
    endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, server.host, server.port,
                                                       timeout=server.timeout)
    if server.implicit_tls:
        endpoint = wrapClientTLS(client_tls(server), endpoint)
    return bounded(connectProtocol(endpoint, protocol), server, reactor)


def bounded(d: Deferred[T], server: TLSServer, reactor: IReactorTime) -> Deferred[T]:
    """
    C{d}, failing with a timeout after C{server.timeout} seconds.
    """
    return d.addTimeout(server.timeout, reactor)
