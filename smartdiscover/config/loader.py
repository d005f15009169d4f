"""
INI file to L{Model}, with validation that names file, section and key.

Relative paths in the file are resolved against the directory that holds the
file, so the same file works from any working directory.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from smartdiscover.config.address import (
    AddressError,
    address_key,
    normalize_domain,
    split_address,
)
from smartdiscover.config.model import (
    DEFAULT_PORTS,
    SOCKET_SERVICES,
    URL_SERVICES,
    AuthSettings,
    Catalogue,
    HTTPSListener,
    Model,
    Security,
    SocketService,
    UDPAddress,
    User,
)

MAX_CONFIG_BYTES = 1024 * 1024
MAX_PASSWD_BYTES = 64 * 1024 * 1024
PASSWORD_SCHEMES = (b"$2a$", b"$2b$", b"$2y$", b"$argon2id$")
# Dovecot passwd-file scheme prefixes we accept, so one file can serve both,
# and the hash each must introduce.
DOVECOT_PREFIXES = {b"{BLF-CRYPT}": (b"$2a$", b"$2b$", b"$2y$"), b"{ARGON2ID}": (b"$argon2id$",)}

SERVER_KEYS = ("public_hostname", "domains", "https", "http", "dns", "ttl")
AUTH_KEYS = ("backend", "passwd_file", "case_sensitive_local")
SERVICE_KEYS = ("host", "port", "security")
BACKENDS = ("passwd",)
BOOLEANS = {"yes": True, "true": True, "on": True, "1": True,
            "no": False, "false": False, "off": False, "0": False}


@dataclass(frozen=True)
class ConfigProblem:
    """
    One thing wrong with a configuration, and where it is.
    """

    file: str
    section: str | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.section is not None:
            where += f": [{self.section}]"
        if self.key is not None:
            where += f" {self.key}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """
    A configuration that cannot be served; C{problems} says why.
    """

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class _Collector:
    """
    Gathers every problem of one file instead of stopping at the first.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[ConfigProblem] = []

    def add(self, section: str | None, key: str | None, message: str) -> None:
        self.problems.append(ConfigProblem(str(self.path), section, key, message))


def load(path: str | os.PathLike[str]) -> Model:
    """
    Read, validate and return the model described by the INI file at C{path}.

    Blocking (file reads, no hashing): call it off the reactor thread.

    @raise ConfigError: listing every problem found.
    """
    source = Path(path).absolute()
    problems = _Collector(source)
    parser = _read_ini(source, problems)
    if parser is None:
        raise ConfigError(problems.problems)
    model = _build(source, parser, problems)
    if problems.problems or model is None:
        raise ConfigError(problems.problems)
    return model


def _read_ini(source: Path, problems: _Collector) -> configparser.ConfigParser | None:
    try:
        with source.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        problems.add(None, None, f"cannot read the file: {e.strerror}")
        return None
    if len(raw) > MAX_CONFIG_BYTES:
        problems.add(None, None, f"larger than {MAX_CONFIG_BYTES} bytes")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problems.add(None, None, f"not UTF-8 (byte {e.start})")
        return None
    parser = configparser.ConfigParser(
        interpolation=None,
        inline_comment_prefixes=(";", "#"),
        strict=True,
        empty_lines_in_values=False,
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=str(source))
    except configparser.DuplicateOptionError as e:
        problems.add(e.section, e.option, f"given twice (line {e.lineno})")
        return None
    except configparser.DuplicateSectionError as e:
        problems.add(e.section, None, f"section given twice (line {e.lineno})")
        return None
    except configparser.MissingSectionHeaderError as e:  # a ParsingError: first
        problems.add(None, None, f"line {e.lineno}: text before the first [section]")
        return None
    except configparser.ParsingError as e:
        for lineno, line in e.errors:
            problems.add(None, None,
                         f"line {lineno}: not a [section], key = value or comment: {line}")
        return None
    except configparser.Error as e:
        problems.add(None, None, str(e).strip().splitlines()[0])
        return None
    return parser


def _build(source: Path, parser: configparser.ConfigParser,
           problems: _Collector) -> Model | None:
    base = source.parent
    known = ("server", "auth", "urls") + SOCKET_SERVICES
    for section in parser.sections():
        if section not in known:
            problems.add(section, None, "unknown section (known: "
                         + ", ".join(known) + ")")
    if "server" not in parser:
        problems.add("server", None, "missing section")
        return None
    server = _Section(parser, "server", SERVER_KEYS, problems)
    public_hostname = server.get("public_hostname", _host, required=True)
    domains = server.get("domains", _domain_list, required=True)
    https = server.get("https", lambda v: _https_endpoint(v, base), required=True)
    http = server.get("http", _tcp_endpoint)
    dns = server.get("dns", _udp_address)
    ttl = server.get("ttl", _non_negative_int, default=1)

    auth_section = _Section(parser, "auth", AUTH_KEYS, problems)
    backend = auth_section.get("backend", _choice(BACKENDS), default="passwd")
    passwd_file = auth_section.get("passwd_file", lambda v: base / v,
                                   required=backend == "passwd")
    case_sensitive = auth_section.get("case_sensitive_local", _boolean, default=False)

    services = []
    for name in SOCKET_SERVICES:
        if name in parser:
            service = _socket_service(parser, name, public_hostname, problems)
            if service is not None:
                services.append(service)
    urls = _urls(parser, public_hostname, problems)

    users: dict[str, User] = {}
    if backend == "passwd" and passwd_file is not None:
        users = _read_passwd(passwd_file, bool(case_sensitive), problems)
    if problems.problems:
        return None
    assert public_hostname is not None and domains is not None and https is not None
    return Model(
        source=source,
        public_hostname=public_hostname,
        domains=domains,
        https=https,
        http=http,
        dns=dns,
        ttl_hours=ttl,
        auth=AuthSettings(backend, passwd_file, bool(case_sensitive)),
        catalogue=Catalogue(public_hostname, tuple(services), urls),
        users=MappingProxyType(users),
    )


class _Section:
    """
    Typed access to one section that reports unknown keys once.
    """

    def __init__(self, parser: configparser.ConfigParser, name: str,
                 keys: tuple[str, ...], problems: _Collector) -> None:
        self.name = name
        self.values = dict(parser[name]) if name in parser else {}
        self.problems = problems
        for key in self.values:
            if key not in keys:
                problems.add(name, key, "unknown key (known: " + ", ".join(keys) + ")")

    def get(self, key, convert: Callable, required: bool = False, default=None):
        raw = self.values.get(key)
        if raw is None or raw.strip() == "":
            if required:
                self.problems.add(self.name, key, "required")
            return default
        try:
            return convert(raw.strip())
        except ValueError as e:
            self.problems.add(self.name, key, str(e))
            return default


def _host(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return normalize_domain(value)
    except AddressError as e:
        raise ValueError(f"{value!r} is not a host name: {e}") from None


def _domain_list(value: str) -> tuple[str, ...]:
    domains = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            domain = normalize_domain(item)
        except AddressError as e:
            raise ValueError(f"{item.strip()!r}: {e}") from None
        if domain not in domains:
            domains.append(domain)
    if not domains:
        raise ValueError("no domain given")
    return tuple(domains)


def _port(value: str) -> int:
    try:
        port = int(value, 10)
    except ValueError:
        raise ValueError(f"{value!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{value!r} is not a port number (1-65535)")
    return port


def _non_negative_int(value: str) -> int:
    try:
        number = int(value, 10)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number


def _boolean(value: str) -> bool:
    try:
        return BOOLEANS[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not yes or no") from None


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value not in options:
            raise ValueError(f"{value!r} is not one of: " + ", ".join(options))
        return value
    return convert


def split_endpoint(description: str) -> tuple[list[str], dict[str, str]]:
    """
    Split a Twisted endpoint description into positional and keyword parts.

    A backslash escapes the next character, as in Twisted
    (C{interface=\\:\\:} is the IPv6 any-address).
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(description)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if eq:
            if key in kwargs:
                raise ValueError(f"{key} given twice")
            kwargs[key] = value
        elif kwargs:
            raise ValueError(f"positional {part!r} after a keyword")
        else:
            args.append(part)
    return args, kwargs


def _https_endpoint(value: str, base: Path) -> HTTPSListener:
    args, kwargs = split_endpoint(value)
    if len(args) != 2 or args[0] != "ssl":
        raise ValueError("must look like ssl:PORT:privateKey=KEY:certKey=CERT")
    unknown = set(kwargs) - {"privateKey", "certKey", "interface", "backlog"}
    if unknown:
        raise ValueError("unknown parameter " + ", ".join(sorted(unknown))
                         + " (known: privateKey, certKey, interface, backlog)")
    if "privateKey" not in kwargs:
        raise ValueError("privateKey= is required")
    key = base / kwargs["privateKey"]
    cert = base / kwargs.get("certKey", kwargs["privateKey"])
    for path in {key, cert}:
        if path.exists() and not os.access(path, os.R_OK):
            raise ValueError(f"{path} is not readable")
    if key.exists() != cert.exists():
        missing = key if not key.exists() else cert
        raise ValueError(f"{missing} is missing (a development certificate is "
                         "only created when both files are missing)")
    backlog = _non_negative_int(kwargs["backlog"]) if "backlog" in kwargs else None
    interface = kwargs.get("interface") or None
    if interface is not None:
        interface = _ip(interface)
    return HTTPSListener(_port(args[1]), interface, backlog, cert, key)


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _tcp_endpoint(value: str) -> str:
    args, kwargs = split_endpoint(value)
    if len(args) != 2 or args[0] != "tcp":
        raise ValueError("must look like tcp:PORT[:interface=ADDRESS]")
    _port(args[1])
    unknown = set(kwargs) - {"interface", "backlog"}
    if unknown:
        raise ValueError("unknown parameter " + ", ".join(sorted(unknown)))
    if "interface" in kwargs:
        _ip(kwargs["interface"])
    return value


def _udp_address(value: str) -> UDPAddress:
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError("must look like ADDRESS:PORT ([ADDRESS]:PORT for IPv6)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return UDPAddress(_ip(host), _port(port))


def _socket_service(parser: configparser.ConfigParser, name: str,
                    public_hostname: str | None,
                    problems: _Collector) -> SocketService | None:
    section = _Section(parser, name, SERVICE_KEYS, problems)
    host = section.get("host", _host, default=public_hostname)
    security = section.get("security", _security, default=Security.SSL)
    port = section.get("port", _port, default=DEFAULT_PORTS[name][security])
    if host is None:
        return None
    return SocketService(name, host, port, security)


def _security(value: str) -> Security:
    try:
        return Security(value.lower())
    except ValueError:
        raise ValueError(f"{value!r} is not one of: ssl, starttls, none") from None


def _urls(parser: configparser.ConfigParser, public_hostname: str | None,
          problems: _Collector) -> MappingProxyType:
    section = _Section(parser, "urls", URL_SERVICES, problems)
    urls = {}
    for name in URL_SERVICES:
        url = section.get(name, lambda v: https_url(v, public_hostname))
        if url is not None:
            urls[name] = url
    return MappingProxyType(urls)


def https_url(value: str, public_hostname: str | None) -> str:
    """
    Validate an absolute https URL; a bare path is taken on C{public_hostname}.
    """
    if value.startswith("/") and not value.startswith("//"):
        if public_hostname is None:
            raise ValueError("a bare path needs [server] public_hostname")
        value = f"https://{public_hostname}{value}"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as e:
        raise ValueError(f"{value!r} is not a URL: {e}") from None
    if parts.scheme.lower() != "https":
        raise ValueError(f"{value!r} must be an https:// URL")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    if any(ord(c) < 0x21 for c in value):
        raise ValueError(f"{value!r} contains spaces or control characters")
    host = _host(parts.hostname)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(("https", netloc, parts.path or "/", parts.query, ""))


def _read_passwd(path: Path, case_sensitive: bool,
                 problems: _Collector) -> dict[str, User]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_PASSWD_BYTES + 1)
    except OSError as e:
        problems.add("auth", "passwd_file", f"cannot read {path}: {e.strerror}")
        return {}
    if len(raw) > MAX_PASSWD_BYTES:
        problems.add("auth", "passwd_file", f"{path} is larger than {MAX_PASSWD_BYTES} bytes")
        return {}
    users: dict[str, User] = {}
    for number, line in _lines(raw):
        where = f"{path}:{number}: "
        try:
            user = parse_passwd_line(line)
        except ValueError as e:
            problems.add("auth", "passwd_file", where + str(e))
            continue
        key = address_key(user.address, case_sensitive)
        if key in users:
            problems.add("auth", "passwd_file", where + f"{user.address} appears twice")
            continue
        users[key] = user
    return users


def _lines(raw: bytes) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith(b"#"):
            yield number, line


def _xml_safe(text: str) -> bool:
    """
    Whether C{text} can appear in every document we serve (XML 1.0 chars,
    no C0/C1 controls).
    """
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
                   or ord(c) in (0xFFFE, 0xFFFF) for c in text)


def parse_passwd_line(line: bytes) -> User:
    """
    Parse C{address:hash[:uid:gid:gecos:...]} (Dovecot passwd-file layout).

    The gecos field, when present, is the user's display name.
    """
    fields = line.split(b":")
    if len(fields) < 2:
        raise ValueError("expected address:hash")
    try:
        address = fields[0].decode("utf-8")
        display_name = fields[4].decode("utf-8") if len(fields) > 4 else ""
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    if not _xml_safe(display_name):
        raise ValueError("control characters in the display name")
    try:
        split_address(address)
    except AddressError as e:
        raise ValueError(f"{address!r}: {e}") from None
    password_hash = fields[1]
    schemes = PASSWORD_SCHEMES
    for prefix, introduced in DOVECOT_PREFIXES.items():
        if password_hash.startswith(prefix):
            password_hash, schemes = password_hash[len(prefix):], introduced
    if not password_hash.startswith(schemes):
        raise ValueError("unsupported password scheme (bcrypt $2b$/$2y$ or $argon2id$)")
    return User(address, password_hash, display_name)
