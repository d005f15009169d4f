"""
HTTP Basic credentials, decoded by one documented rule.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable

from twisted.cred.checkers import ICredentialsChecker
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface, implementer

from smartdiscover.config.principal import Principal

# Longer headers are not credentials anyone types (SECURITY.md section 8).
MAX_PASSWORD_BYTES = 1024
MAX_USERNAME_BYTES = 320


class IBasicCredentials(Interface):
    """
    A user name and password from an HTTP Basic header, and where it came from.
    """

    username = Attribute("The user name as text.")
    password = Attribute("The password as UTF-8 bytes.")
    source = Attribute("The client's IP address, for throttling and logs.")
    model = Attribute("The configuration in force when the request arrived, which the "
                      "guard, the checker and the answer all use; None: read it then.")


class IPrincipalChecker(ICredentialsChecker):
    """
    A checker of L{IBasicCredentials} whose avatar ID is a L{Principal}:
    the guard, every user store, and the realm that renders answers for it.
    """

    # Twisted types avatar IDs as bytes or ANONYMOUS; ours are Principals by
    # design, and the Portal passes them through to our realm untouched.
    def requestAvatarId(  # type: ignore[override]
            credentials: IBasicCredentials) -> Deferred[Principal]:
        """
        The L{Principal} the credentials are for, or fail with
        L{twisted.cred.error.UnauthorizedLogin}.
        """


@implementer(IBasicCredentials)
class BasicCredentials:
    __slots__ = ("username", "password", "source", "model")

    def __init__(self, username: str, password: bytes, source: str,
                 model: Any = None) -> None:
        self.username = username
        self.password = password
        self.source = source
        self.model = model

    def __repr__(self) -> str:
        # Never the password: reprs end up in logs and tracebacks.
        return f"<BasicCredentials {self.username!r} from {self.source}>"


def _text(raw: bytes) -> str:
    """
    UTF-8 if it is valid UTF-8, else Latin-1 (older Outlook sends Latin-1).
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def snapshot(credentials: IBasicCredentials, current: Callable[[], Any]) -> Any:
    """
    The configuration a check of C{credentials} uses: the one they carry,
    else the one in force now.
    """
    model = credentials.model
    return current() if model is None else model


def decode_basic(header: bytes | None, source: str,
                 model: Any = None) -> BasicCredentials | None:
    """
    Decode an C{Authorization} header value, or return L{None} when it is
    absent or not usable Basic credentials (every such case is the same 401).

    Both parts are read as UTF-8, falling back to Latin-1; the password is
    handed on as UTF-8 bytes, which is how the password file hashed it.
    """
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    encoded = encoded.strip()
    if len(encoded) > 4 * (MAX_USERNAME_BYTES + MAX_PASSWORD_BYTES + 1) // 3 + 4:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(b":")
    if not colon or not username or not password:
        return None
    if len(username) > MAX_USERNAME_BYTES or len(password) > MAX_PASSWORD_BYTES:
        return None
    return BasicCredentials(_text(username), _text(password).encode("utf-8"), source, model)
