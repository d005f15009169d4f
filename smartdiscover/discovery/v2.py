"""
Autodiscover v2 (JSON): which URL serves a protocol (PROTOCOLS.md section 5).

Unauthenticated by design, so the answer depends on the domain only: every
address of a served domain gets the same status and shape, and unserved
domains always get the same error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from smartdiscover.config.address import AddressError, split_address
from smartdiscover.config.model import Catalogue, Model

# Protocol value (matched case-insensitively) -> (spelling we answer, URL key).
# AutodiscoverV1 is the POX endpoint itself.
PROTOCOLS = {
    "activesync": ("ActiveSync", "activesync"),
    "ews": ("Ews", "ews"),
    "autodiscoverv1": ("AutodiscoverV1", None),
}


@dataclass(frozen=True)
class JSONReply:
    status: int
    body: bytes


def _json(status: int, document: dict[str, str]) -> JSONReply:
    return JSONReply(status, json.dumps(document, ensure_ascii=True).encode("ascii"))


def _url(catalogue: Catalogue, key: str | None) -> str | None:
    return catalogue.autodiscover_url if key is None else catalogue.urls.get(key)


def answer_v2(model: Model, email: str | None, protocol: str | None) -> JSONReply:
    """
    Answer C{GET .../autodiscover.json?Email=EMAIL&Protocol=PROTOCOL}.
    """
    try:
        _, domain = split_address(email or "")
    except AddressError:
        return _json(400, {"ErrorCode": "InvalidEmail",
                           "ErrorMessage": "The given email address is not valid."})
    if not model.serves(domain):
        return _json(404, {"ErrorCode": "NotFound",
                           "ErrorMessage": "No settings are published for this address."})
    catalogue = model.catalogue_for(domain)
    offered = [name for name, key in PROTOCOLS.values() if _url(catalogue, key)]
    spelling, key = PROTOCOLS.get((protocol or "").lower(), (None, None))
    url = _url(catalogue, key) if spelling is not None else None
    if spelling is None or url is None:
        shown = (protocol or "")[:64]
        return _json(400, {
            "ErrorCode": "InvalidProtocol",
            "ErrorMessage": f"The given protocol value '{shown}' is invalid. "
                            f"Supported values are '{','.join(offered)}'",
        })
    return _json(200, {"Protocol": spelling, "Url": url})
