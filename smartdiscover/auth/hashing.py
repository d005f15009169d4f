"""
Password hash verification for the schemes the password file may hold.
"""

from __future__ import annotations

import argon2
import bcrypt

_ARGON2 = argon2.PasswordHasher()
BCRYPT_MAX_PASSWORD = 72


def verify_password(password_hash: bytes, password: bytes) -> bool:
    """
    Whether C{password} matches C{password_hash} (bcrypt or argon2id).

    Blocking and slow by design (100-400 ms): never call it on the reactor
    thread.  Every kind of mismatch, including passwords bcrypt cannot take
    (over 72 bytes, where bcrypt 5 raises), is C{False}.
    """
    if password_hash.startswith(b"$argon2"):
        try:
            return _ARGON2.verify(password_hash.decode("ascii"), password)
        except (argon2.exceptions.VerificationError,
                argon2.exceptions.InvalidHashError, UnicodeDecodeError):
            return False
    # bcrypt cannot take these; hash a stand-in anyway so that the time
    # taken matches a real check.
    unusable = len(password) > BCRYPT_MAX_PASSWORD or b"\x00" in password
    try:
        matches = bcrypt.checkpw(b"-" if unusable else password, password_hash)
    except ValueError:
        return False
    return matches and not unusable


def hash_password(password: bytes, scheme: str = "bcrypt") -> bytes:
    """
    A new hash of C{password}: bcrypt (cost 12) or argon2id (argon2-cffi's
    defaults).  Blocking.

    @raise ValueError: a password bcrypt cannot take whole.
    """
    if scheme == "argon2id":
        return _ARGON2.hash(password).encode("ascii")
    if len(password) > BCRYPT_MAX_PASSWORD or b"\x00" in password:
        raise ValueError("bcrypt takes at most 72 bytes and no NUL: use --scheme argon2id")
    return bcrypt.hashpw(password, bcrypt.gensalt(12))
