"""
The LDAP checker: the directory decides, by a simple bind as the user
(SECURITY.md 8), over ldaps or StartTLS with a verified certificate.
"""

from __future__ import annotations

from typing import Any, Callable, Generator

from ldaptor.protocols import pureldap
from ldaptor.protocols.ldap import ldaperrors
from ldaptor.protocols.ldap.distinguishedname import escape
from ldaptor.protocols.ldap.ldapclient import LDAPClient
from ldaptor.protocols.ldap.ldapsyntax import LDAPEntry
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger
from zope.interface import implementer

from smartdiscover.auth.credentials import IBasicCredentials, IPrincipalChecker, snapshot
from smartdiscover.auth.errors import BackendUnavailable
from smartdiscover.auth.outbound import IConnectingReactor, bounded, client_tls, connect
from smartdiscover.config.address import AddressError, split_address
from smartdiscover.config.model import LDAPSettings, Model
from smartdiscover.config.values import xml_safe
from smartdiscover.config.principal import Principal

# Result codes that mean "these credentials are wrong" rather than "the
# directory cannot answer" (RFC 4511 appendix A).
_REJECTED = (ldaperrors.LDAPInvalidCredentials, ldaperrors.LDAPInvalidDNSyntax,
             ldaperrors.LDAPNoSuchObject, ldaperrors.LDAPInappropriateAuthentication,
             ldaperrors.LDAPUnwillingToPerform, ldaperrors.LDAPInsufficientAccessRights)


@implementer(IPrincipalChecker)
class LDAPChecker:
    """
    Bind as the user: with a DN built from a template, or found by a search
    with a service account and then bound on a connection of its own.

    Empty passwords are refused before any bind: a simple bind with a DN
    and no password is an unauthenticated bind, which servers report as a
    success (RFC 4513 5.1.2).  The avatar ID is a L{Principal} whose display
    name comes from the directory.
    """

    credentialInterfaces = (IBasicCredentials,)
    _log = Logger()

    def __init__(self, current_model: Callable[[], Model],
                 reactor: IConnectingReactor) -> None:
        self._current_model = current_model
        self._reactor = reactor

    @inlineCallbacks
    def requestAvatarId(self, credentials: IBasicCredentials
                        ) -> Generator[Deferred[Any], Any, Principal]:
        settings = snapshot(credentials, self._current_model).auth.ldap
        assert settings is not None
        password = credentials.password
        if not password.strip():
            raise UnauthorizedLogin()
        try:
            local, domain = split_address(credentials.username)
        except AddressError:
            raise UnauthorizedLogin() from None
        address = f"{local}@{domain}"
        try:
            if settings.bind_dn is not None:
                dn = settings.bind_dn.format(local=escape(local), domain=escape(domain),
                                             address=escape(address))
            else:
                dn = yield self._find(settings, address)
            attributes = yield self._bind(settings, dn, password)
        except UnauthorizedLogin:
            raise
        except _REJECTED:
            raise UnauthorizedLogin() from None
        except Exception as e:
            self._log.warn("LDAP server {host}:{port} unavailable: {error}",
                           host=settings.server.host, port=settings.server.port,
                           error=f"{type(e).__name__}: {e}")
            raise BackendUnavailable() from None
        display_name = next((attributes[a.casefold()][0]
                             for a in settings.display_name_attributes
                             if attributes.get(a.casefold())), "")
        # A directory may hold anything: keep what every format can carry.
        return Principal(address, "".join(c for c in display_name if xml_safe(c))[:256])

    @inlineCallbacks
    def _client(self, settings: LDAPSettings) -> Generator[Deferred[Any], Any, LDAPClient]:
        client = yield connect(settings.server, LDAPClient(), self._reactor)
        if not settings.server.implicit_tls:
            yield bounded(client.startTLS(client_tls(settings.server)), settings.server,
                          self._reactor)
        return client

    @inlineCallbacks
    def _find(self, settings: LDAPSettings, address: str
              ) -> Generator[Deferred[Any], Any, str]:
        """
        The one DN whose C{attribute} is C{address}, found as the service
        account; the filter is built as an object, so nothing in the address
        can change its meaning (no RFC 4515 escaping to get wrong).
        """
        client = yield self._client(settings)
        try:
            if settings.service_dn is not None:
                yield bounded(client.bind(settings.service_dn,
                                          (settings.service_password or "").encode("utf-8")),
                              settings.server, self._reactor)
            search = pureldap.LDAPFilter_equalityMatch(
                attributeDesc=pureldap.LDAPAttributeDescription(settings.attribute),
                assertionValue=pureldap.LDAPAssertionValue(address))
            entries = yield bounded(
                LDAPEntry(client, settings.base).search(filterObject=search, attributes=["1.1"],
                                                        sizeLimit=2, sizeLimitIsNonFatal=True),
                settings.server, self._reactor)
        finally:
            _close(client)
        if len(entries) != 1:
            if len(entries) > 1:
                self._log.error("LDAP: {count} entries have {attribute}={address}: refusing",
                                count=len(entries), attribute=settings.attribute,
                                address=address)
            raise UnauthorizedLogin()
        return entries[0].dn.getText()

    @inlineCallbacks
    def _bind(self, settings: LDAPSettings, dn: str, password: bytes
              ) -> Generator[Deferred[Any], Any, dict[str, list[str]]]:
        """
        Bind as C{dn}; return the entry's display-name attributes.
        """
        client = yield self._client(settings)
        try:
            yield bounded(client.bind(dn, password), settings.server, self._reactor)
            entries = yield bounded(
                LDAPEntry(client, dn).search(
                    scope=pureldap.LDAP_SCOPE_baseObject,
                    attributes=list(settings.display_name_attributes)),
                settings.server, self._reactor)
        finally:
            _close(client)
        if not entries:
            return {}
        return {_text(name).casefold(): [_text(v) for v in vals]
                for name, vals in entries[0].items()}


def _text(value: object) -> str:
    """
    ldaptor hands attribute names and values over as bytes.
    """
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _close(client: LDAPClient) -> None:
    try:
        client.unbind()
    except Exception:
        if client.transport is not None:
            client.transport.abortConnection()
