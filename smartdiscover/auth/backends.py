"""
The user store that C{[auth] backend} names.
"""

from __future__ import annotations

from typing import Callable

from smartdiscover.auth.credentials import IPrincipalChecker
from smartdiscover.auth.imap import IMAPChecker
from smartdiscover.auth.ldap import LDAPChecker
from smartdiscover.auth.outbound import IConnectingReactor
from smartdiscover.auth.passwd import PasswdChecker
from smartdiscover.auth.pool import HashingPool
from smartdiscover.config.model import Model


def user_store(model: Model, current: Callable[[], Model], hashing: HashingPool,
               reactor: IConnectingReactor) -> IPrincipalChecker:
    """
    The checker of C{model}'s backend, reading the model in force from
    C{current} (the backend is read at start: changing it needs a restart).
    """
    if model.auth.backend == "ldap":
        return LDAPChecker(current, reactor)
    if model.auth.backend == "imap":
        return IMAPChecker(current, reactor)
    return PasswdChecker(current, hashing.run)
