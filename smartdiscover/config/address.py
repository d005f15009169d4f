"""
E-mail address normalisation: one rule, used by the loader and every checker.

The domain part is compared case-insensitively and IDNA-normalised, so an
internationalised domain and its punycode form are the same domain.  The
local part is kept as typed and folded only when the deployment says local
parts are case-insensitive.
"""

from __future__ import annotations

import functools

import idna

MAX_ADDRESS_LENGTH = 320


class AddressError(ValueError):
    """
    A string that is not a usable e-mail address.
    """


@functools.lru_cache(maxsize=4096)
def normalize_domain(domain: str) -> str:
    """
    Return the ASCII (punycode), lower-case form of C{domain}.

    Cached: IDNA checks cost about 100 us and every request needs a few.

    @raise AddressError: when C{domain} is not a valid host name.
    """
    name = domain.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise AddressError("empty domain")
    try:
        return idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as e:
        raise AddressError(f"not a valid domain name: {e}") from None


def split_address(address: str) -> tuple[str, str]:
    """
    Split C{address} into its local part and normalised domain.

    @raise AddressError: when C{address} has no C{@}, an empty part, or an
        invalid domain.
    """
    if len(address) > MAX_ADDRESS_LENGTH:
        raise AddressError("address too long")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise AddressError("not an e-mail address")
    if any(ord(c) < 0x21 or c in "\x7f" for c in local):
        raise AddressError("control characters or spaces in the local part")
    return local, normalize_domain(domain)


@functools.lru_cache(maxsize=4096)
def address_key(address: str, case_sensitive_local: bool = False) -> str:
    """
    Return the key under which C{address} is looked up.

    Two addresses name the same mailbox exactly when their keys are equal.
    """
    local, domain = split_address(address)
    if not case_sensitive_local:
        local = local.casefold()
    return f"{local}@{domain}"
