"""
The password-file checker.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from smartdiscover.auth.credentials import IBasicCredentials, IPrincipalChecker, snapshot
from smartdiscover.auth.hashing import verify_password
from smartdiscover.config.address import AddressError, address_key
from smartdiscover.config.model import Model
from smartdiscover.config.principal import Principal

RunHash = Callable[..., "Deferred[Any]"]


@implementer(IPrincipalChecker)
class PasswdChecker:
    """
    Checks credentials against the users of the current model's password file.

    Unknown users are verified against another entry's hash, so that they
    cost the same time as a wrong password; the result is thrown away.
    The avatar ID is a L{Principal}.
    """

    credentialInterfaces = (IBasicCredentials,)

    def __init__(self, current_model: Callable[[], Model], run_hash: RunHash) -> None:
        """
        @param current_model: returns the model in force, for credentials
            that carry none.
        @param run_hash: runs L{verify_password} off the reactor thread.
        """
        self._current_model = current_model
        self._run_hash = run_hash

    def requestAvatarId(self, credentials: IBasicCredentials) -> Deferred[Principal]:
        model = snapshot(credentials, self._current_model)
        try:
            key = address_key(credentials.username, model.auth.case_sensitive_local)
        except AddressError:
            key = None
        user = model.users.get(key) if key is not None else None
        if user is not None:
            target = user.password_hash
        elif model.users:
            target = next(iter(model.users.values())).password_hash
        else:
            return fail(UnauthorizedLogin())

        def checked(matches: bool) -> Principal:
            if matches and user is not None:
                return Principal(user.address, user.display_name)
            raise UnauthorizedLogin()

        return self._run_hash(verify_password, target, credentials.password).addCallback(checked)
