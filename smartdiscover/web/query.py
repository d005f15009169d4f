"""
Strict reading of query parameters.
"""

from __future__ import annotations

from typing import cast

from twisted.web.server import Request


def parameter(request: Request, name: bytes) -> bytes | None:
    """
    The value of query parameter C{name} (lower case), whatever the letter
    case the client used.

    @raise ValueError: when it is given more than once (a proxy in front
        might read the other one).
    """
    # http.Request's "args = None" types it as None; it is the parsed query
    # once the request line is in.
    args = cast("dict[bytes, list[bytes]] | None", request.args)
    found = [value for key, values in (args or {}).items()
             if key.lower() == name for value in values]
    if len(found) > 1:
        raise ValueError(f"{name!r} given more than once")
    return found[0] if found else None


def text(raw: bytes | None) -> str | None:
    """
    UTF-8 text; L{UnicodeDecodeError} (a L{ValueError}) otherwise.
    """
    return None if raw is None else raw.decode("utf-8")
