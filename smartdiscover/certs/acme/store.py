"""
The ACME state directory: the account and the certificates ACME issued.

Layout below the state directory (the systemd unit's C{StateDirectory})::

    acme/                       0700
      accounts/                 0700
        <directory-id>.json     0600  the account key (PEM) and, once
                                      registered, its URL and contact
      certificates/             0700
        <label>.pem             0600  the key, the leaf, then its chain

One file per account and per certificate, each written whole: a key and
the certificate it belongs to live in the same file, so no crash can pair
a new certificate with an old key.  Every write goes to a temporary file
in the same directory, is flushed to disk, renamed over the old one
(C{os.replace}, atomic on POSIX) and the directory itself is flushed, so
after a crash the file holds either the old bytes or the new ones, never
half of either; a temporary file a crash left behind is removed at open.

Every read checks what it reads (sizes, PEM, the key matching the leaf,
JSON shape) and raises L{StateError} naming the file, so a corrupted file
is reported and nothing in use is replaced by it.

Everything here blocks (file I/O, fsync): call it off the reactor thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from smartdiscover.certs.certificate import Chained

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
# A key and a chain of a few certificates are a few kilobytes.
MAX_FILE_BYTES = 256 * 1024
MAX_CHAIN = 10
TEMPORARY_PREFIX = ".tmp-"

# The labels of [certificates] (config/certificates.py) and file names alike.
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")

AccountKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class StateError(Exception):
    """
    A state file that cannot be used: unreadable, too large, or not what
    was written.  The message names the file and says why; the
    certificate in use stays.
    """


@dataclass(frozen=True)
class Account:
    """
    An ACME account: its key, and once registered its URL.

    @ivar directory: the CA's directory URL the account belongs to.
    @ivar uri: the account URL (L{None}: the key is made, not registered).
    @ivar registration: the registration resource as the CA returned it
        (JSON), to restore C{acme}'s C{RegistrationResource}.
    """

    directory: str
    key: AccountKey = field(repr=False)
    uri: str | None = None
    contact: tuple[str, ...] = ()
    terms_of_service: str | None = None
    registration: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredCertificate(Chained):
    """
    A certificate ACME issued, as stored.

    @ivar chain_pem: the leaf, then its issuers (PEM).
    @ivar key_pem: its private key (PKCS#8 PEM).
    """

    label: str
    path: Path
    chain: tuple[x509.Certificate, ...]
    chain_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        """
        The DNS names of the leaf's subjectAltName, as issued.
        """
        try:
            extension = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return ()
        return tuple(extension.value.get_values_for_type(x509.DNSName))


def check_label(label: str) -> str:
    """
    C{label} if it can name a file here (and a line of C{[certificates]}).

    @raise ValueError: it cannot.
    """
    if not _LABEL.match(label):
        raise ValueError(f"certificate label {label!r}: 1 to 64 ASCII letters, digits, '.', "
                         "'_' or '-', starting with a letter or digit")
    return label


def directory_id(url: str) -> str:
    """
    The file name part for a CA directory URL: an account belongs to one CA
    (staging and production are two accounts).
    """
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def generate_account_key() -> AccountKey:
    """
    A new account key: ECDSA P-256 (ES256), which Let's Encrypt and pebble
    accept and which signs faster than RSA.
    """
    return ec.generate_private_key(ec.SECP256R1())


def generate_certificate_key() -> ec.EllipticCurvePrivateKey:
    """
    A fresh key for one certificate: ECDSA P-256 (cheaper handshakes than
    RSA-2048, SECURITY.md section 10).
    """
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class AcmeStore:
    """
    The C{acme/} directory below a state directory.
    """

    def __init__(self, state_directory: Path) -> None:
        self.root = state_directory / "acme"
        self.accounts = self.root / "accounts"
        self.certificates = self.root / "certificates"

    def open(self) -> AcmeStore:
        """
        Create the directories (0700, also when they existed with looser
        modes) and remove temporary files an interrupted write left.

        @raise StateError: a directory cannot be created or is no directory.
        """
        for directory in (self.root, self.accounts, self.certificates):
            try:
                directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
                if not directory.is_dir() or directory.is_symlink():
                    raise StateError(f"{directory}: not a directory")
                os.chmod(directory, DIRECTORY_MODE)
            except OSError as e:
                raise StateError(f"{directory}: cannot be used as ACME state ({e.strerror})") \
                    from None
        for directory in (self.accounts, self.certificates):
            for leftover in directory.glob(TEMPORARY_PREFIX + "*"):
                try:
                    leftover.unlink()
                except OSError:
                    pass
        return self

    # The account.

    def account_path(self, directory: str) -> Path:
        return self.accounts / f"{directory_id(directory)}.json"

    def load_account(self, directory: str) -> Account | None:
        """
        The account for the CA at C{directory}, or L{None} if there is none.

        @raise StateError: the file is there but unusable.
        """
        path = self.account_path(directory)
        data = _read(path)
        if data is None:
            return None
        try:
            document = json.loads(data.decode("utf-8"))
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            if document.get("directory") != directory:
                raise ValueError(f"written for the directory {document.get('directory')!r}")
            key = serialization.load_pem_private_key(document["key"].encode("ascii"), None)
            if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
                raise ValueError("the key is neither ECDSA nor RSA")
            uri = document.get("uri")
            registration = document.get("registration")
            contact = document.get("contact", [])
            terms = document.get("terms_of_service")
            if uri is not None and not isinstance(uri, str):
                raise ValueError("uri is not a string")
            if registration is not None and not isinstance(registration, dict):
                raise ValueError("registration is not an object")
            if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
                raise ValueError("contact is not a list of strings")
            if terms is not None and not isinstance(terms, str):
                raise ValueError("terms_of_service is not a string")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeError) as e:
            raise StateError(f"{path}: corrupted ACME account file ({_reason(e)})") from None
        return Account(directory, key, uri, tuple(contact), terms, registration)

    def save_account(self, account: Account) -> Path:
        document = {
            "directory": account.directory,
            "key": key_pem(account.key).decode("ascii"),
            "uri": account.uri,
            "contact": list(account.contact),
            "terms_of_service": account.terms_of_service,
            "registration": account.registration,
        }
        path = self.account_path(account.directory)
        write_atomically(path, json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))
        return path

    # The certificates.

    def certificate_path(self, label: str) -> Path:
        return self.certificates / f"{check_label(label)}.pem"

    def load_certificate(self, label: str) -> StoredCertificate | None:
        """
        The certificate stored as C{label}, or L{None} if there is none.

        @raise StateError: the file is there but unusable: not PEM, no key,
            a key that is not the leaf's, too long a chain.
        """
        path = self.certificate_path(label)
        data = _read(path)
        if data is None:
            return None
        try:
            key = serialization.load_pem_private_key(data, None)
            chain = tuple(x509.load_pem_x509_certificates(data))
            if len(chain) > MAX_CHAIN:
                raise ValueError(f"{len(chain)} certificates, at most {MAX_CHAIN}")
            if key.public_key() != chain[0].public_key():
                raise ValueError("the key is not the first certificate's")
        except (ValueError, TypeError) as e:
            raise StateError(f"{path}: corrupted ACME certificate file ({_reason(e)})") from None
        pem = serialization.Encoding.PEM
        return StoredCertificate(label, path, chain,
                                 b"".join(c.public_bytes(pem) for c in chain), key_pem(key))

    def save_certificate(self, label: str, key: PrivateKeyTypes,
                         chain: tuple[x509.Certificate, ...] | list[x509.Certificate]
                         ) -> StoredCertificate:
        """
        Store C{key} and C{chain} (leaf first) as C{label}, replacing what
        was there in one step.

        @raise ValueError: no chain, or the key is not the leaf's.
        """
        if not chain:
            raise ValueError("an empty chain")
        if key.public_key() != chain[0].public_key():
            raise ValueError("the key is not the leaf's")
        pem = serialization.Encoding.PEM
        chain_pem = b"".join(c.public_bytes(pem) for c in chain)
        path = self.certificate_path(label)
        write_atomically(path, key_pem(key) + chain_pem)
        return StoredCertificate(label, path, tuple(chain), chain_pem, key_pem(key))

    def labels(self) -> list[str]:
        """
        The labels of the stored certificates, sorted.
        """
        return sorted(path.stem for path in self.certificates.glob("*.pem")
                      if _LABEL.match(path.stem))


def write_atomically(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """
    Replace C{path} by C{data} so that a crash at any point leaves the old
    bytes or the new ones: temporary file in the same directory (created
    with C{mode}), fsync, rename, fsync of the directory.
    """
    directory = path.parent
    temporary = directory / f"{TEMPORARY_PREFIX}{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)  # whatever the umask
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes | None:
    """
    The bytes of C{path} (a regular file of at most L{MAX_FILE_BYTES}), or
    L{None} when it does not exist.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise StateError(f"{path}: not a regular file")
        if status.st_size > MAX_FILE_BYTES:
            raise StateError(f"{path}: {status.st_size} bytes, larger than any state file "
                             f"({MAX_FILE_BYTES})")
        chunks = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise StateError(f"{path}: larger than any state file ({MAX_FILE_BYTES})")
    if not data:
        raise StateError(f"{path}: empty (a corrupted state file)")
    return data


def _reason(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"no {error.args[0]!r}"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
