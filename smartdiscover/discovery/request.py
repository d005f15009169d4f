"""
The Autodiscover request body (MS-OXDSCLI 2.2.3; PROTOCOLS.md section 2.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from smartdiscover.discovery.xml import UnsafeXML, parse

OUTLOOK_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
MOBILESYNC_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
OUTLOOK_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MOBILESYNC_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
REQUEST_NAMESPACES = (OUTLOOK_REQUEST, MOBILESYNC_REQUEST)
MAX_FIELD_LENGTH = 1024
# Clients send the same few bodies again and again; parsing one costs more
# than the rest of the answer.  Bodies beyond this size are parsed each time.
CACHED_BODY_SIZE = 2048
CACHED_BODIES = 1024


class InvalidRequest(ValueError):
    """
    A body that is not an Autodiscover request (ErrorCode 600).

    @ivar namespace: the request namespace when the root element had one of
        ours, so the error can be answered in the client's own format.
    """

    def __init__(self, message: str, namespace: str | None = None) -> None:
        super().__init__(message)
        self.namespace = namespace


@dataclass(frozen=True)
class AutodiscoverRequest:
    """
    What the client asked for.  C{None} fields were absent.
    """

    email_address: str | None
    legacy_dn: str | None
    response_schema: str
    namespace: str = OUTLOOK_REQUEST

    @property
    def identity(self) -> str | None:
        """
        The mailbox asked about: LegacyDN wins over EMailAddress (MS-OXDSCLI 3.2.5).
        """
        return self.legacy_dn or self.email_address


DEFAULT_REQUEST = AutodiscoverRequest(None, None, OUTLOOK_RESPONSE)


def _tolerant(namespace: str) -> str:
    # Microsoft's pages print https:// namespaces; the XSDs use http://.
    if namespace.startswith("https://schemas.microsoft.com/"):
        return "http://" + namespace[len("https://"):]
    return namespace


def parse_request(body: bytes) -> AutodiscoverRequest:
    """
    Parse a POSTed request; an empty body asks about the authenticated user.

    @raise InvalidRequest: for anything that is not a well-formed request in
        one of the two request namespaces.
    """
    if len(body) <= CACHED_BODY_SIZE:
        return _parse_small(body)  # failures are not cached: they raise
    return _parse(body)


@lru_cache(maxsize=CACHED_BODIES)
def _parse_small(body: bytes) -> AutodiscoverRequest:
    return _parse(body)


def _parse(body: bytes) -> AutodiscoverRequest:
    if not body.strip():
        return DEFAULT_REQUEST
    try:
        root = parse(body)
    except UnsafeXML as e:
        raise InvalidRequest(str(e)) from None
    namespace, _, local = _split(root.tag)
    namespace = _tolerant(namespace)
    if local != "Autodiscover" or namespace not in REQUEST_NAMESPACES:
        raise InvalidRequest("not an Autodiscover request")
    request = None
    for child in root:
        if _split(child.tag)[2] == "Request":
            if request is not None:
                raise InvalidRequest("more than one Request", namespace)
            request = child
    if request is None:
        raise InvalidRequest("no Request element", namespace)
    fields: dict[str, str] = {}
    for child in request:
        name = _split(child.tag)[2]
        if name in ("EMailAddress", "LegacyDN", "AcceptableResponseSchema"):
            if name in fields:
                raise InvalidRequest(f"{name} given twice", namespace)
            text = (child.text or "").strip()
            if len(text) > MAX_FIELD_LENGTH:
                raise InvalidRequest(f"{name} too long", namespace)
            fields[name] = text
    schema = fields.get("AcceptableResponseSchema")
    if not schema:
        raise InvalidRequest("no AcceptableResponseSchema", namespace)
    email = fields.get("EMailAddress") or None
    legacy_dn = fields.get("LegacyDN") or None
    if email is None and legacy_dn is None:
        raise InvalidRequest("neither EMailAddress nor LegacyDN", namespace)
    return AutodiscoverRequest(email, legacy_dn, _tolerant(schema), namespace)


def _split(tag: object) -> tuple[str, str, str]:
    if not isinstance(tag, str):  # comments and processing instructions
        return "", "", ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, "}", local
    return "", "", tag
