"""
The IMAP checker: the mail server decides, by a login with the user's own
credentials, over imaps or STARTTLS with a verified certificate (never in
clear text), telling it the client's address so that its own throttling
sees the real source and not SmartDiscover (SECURITY.md 3.4).
"""

from __future__ import annotations

from typing import Any, Callable, Generator

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.mail import imap4
from twisted.python.failure import Failure
from zope.interface import implementer

from smartdiscover.auth.credentials import IBasicCredentials, IPrincipalChecker, snapshot
from smartdiscover.auth.errors import BackendUnavailable
from smartdiscover.auth.outbound import IConnectingReactor, bounded, client_tls, connect
from smartdiscover.config.address import AddressError, split_address
from smartdiscover.config.model import Model
from smartdiscover.config.principal import Principal

_UNSAFE = (b"\r", b"\n", b"\0")


class _Client(imap4.IMAP4Client):
    """
    An IMAP client that says when the server's greeting has arrived.
    """

    def __init__(self) -> None:
        super().__init__()
        self.greeted: Deferred[Any] = Deferred()

    def serverGreeting(self, caps: Any) -> None:
        self.greeted.callback(caps)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.greeted.called:
            self.greeted.errback(reason)
        super().connectionLost(reason)


@implementer(IPrincipalChecker)
class IMAPChecker:
    credentialInterfaces = (IBasicCredentials,)
    _log = Logger()

    def __init__(self, current_model: Callable[[], Model],
                 reactor: IConnectingReactor) -> None:
        self._current_model = current_model
        self._reactor = reactor

    @inlineCallbacks
    def requestAvatarId(self, credentials: IBasicCredentials
                        ) -> Generator[Deferred[Any], Any, Principal]:
        settings = snapshot(credentials, self._current_model).auth.imap
        assert settings is not None
        server = settings.server
        password = credentials.password
        try:
            local, domain = split_address(credentials.username)
        except AddressError:
            raise UnauthorizedLogin() from None
        if not password.strip():
            raise UnauthorizedLogin()
        address = f"{local}@{domain}"
        login = (address if settings.login == "address" else local).encode("utf-8")
        client = _Client()
        try:
            yield connect(server, client, self._reactor)
            capabilities = yield bounded(client.greeted, server, self._reactor)
            if not capabilities:
                capabilities = yield bounded(client.getCapabilities(), server, self._reactor)
            if not server.implicit_tls:
                capabilities = yield bounded(client.startTLS(client_tls(server)), server,
                                             self._reactor)
            yield bounded(client.sendCommand(imap4.Command(
                b"ID", b'("name" "SmartDiscover" "x-originating-ip" "'
                + credentials.source.encode("ascii", "replace") + b'")')),
                server, self._reactor)
            if b"PLAIN" in (capabilities or {}).get(b"AUTH", []):
                client.registerAuthenticator(imap4.PLAINAuthenticator(login))
                yield bounded(client.authenticate(password), server, self._reactor)
            elif any(c in password for c in _UNSAFE):
                raise UnauthorizedLogin()  # LOGIN cannot carry these safely
            else:
                yield bounded(client.login(login, password), server, self._reactor)
        except UnauthorizedLogin:
            raise
        except imap4.IMAP4Exception:
            raise UnauthorizedLogin() from None  # NO [AUTHENTICATIONFAILED]
        except Exception as e:
            self._log.warn("IMAP server {host}:{port} unavailable: {error}",
                           host=server.host, port=server.port,
                           error=f"{type(e).__name__}: {e}")
            raise BackendUnavailable() from None
        finally:
            if client.transport is not None:
                client.transport.loseConnection()
        return Principal(address, "")
