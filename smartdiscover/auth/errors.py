"""
Why a credential check could not say yes or no: answered 503, never counted
as a failed login.
"""

from __future__ import annotations


class Unavailable(Exception):
    """
    The check cannot be made now; the client should try again later.
    """

    retry_after = 5


class CheckerBusy(Unavailable):
    """
    Too many checks are waiting already.
    """


class BackendUnavailable(Unavailable):
    """
    The user store (LDAP or IMAP server) cannot be reached or did not answer.
    """
