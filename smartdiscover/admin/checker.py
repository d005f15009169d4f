"""
Administrators' passwords, checked against C{[admin] accounts}.

Behind its own L{smartdiscover.auth.guard.Guard}: the same policy as mail
users (throttling per network and account, identical failures, cached
successes), with counters of its own, so a spray against mail accounts
never locks an administrator out, nor the other way round.
"""

from __future__ import annotations

from typing import Callable

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from smartdiscover.auth.credentials import IBasicCredentials, IPrincipalChecker, snapshot
from smartdiscover.auth.hashing import verify_password
from smartdiscover.auth.passwd import RunHash
from smartdiscover.config.model import Model
from smartdiscover.config.principal import Principal


@implementer(IPrincipalChecker)
class AdminChecker:
    """
    The avatar ID is a L{Principal} whose address is the administrator's
    name.  An unknown name costs the same verification as a wrong
    password.
    """

    credentialInterfaces = (IBasicCredentials,)

    def __init__(self, current_model: Callable[[], Model], run_hash: RunHash) -> None:
        self._current_model = current_model
        self._run_hash = run_hash

    def requestAvatarId(self, credentials: IBasicCredentials) -> Deferred[Principal]:
        model = snapshot(credentials, self._current_model)
        admin = model.admin
        if admin is None or not admin.accounts:
            return fail(UnauthorizedLogin())
        name = credentials.username.casefold()
        stored = admin.accounts.get(name)
        target = stored if stored is not None else next(iter(admin.accounts.values()))

        def checked(matches: bool) -> Principal:
            if matches and stored is not None:
                return Principal(name)
            raise UnauthorizedLogin()

        return self._run_hash(verify_password, target, credentials.password).addCallback(checked)
