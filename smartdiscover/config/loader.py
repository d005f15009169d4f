"""
INI file to L{Model}, with validation that names file, section and key.

Relative paths in the file are resolved against the directory that holds the
file, so the same file works from any working directory.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from smartdiscover.config import values
from smartdiscover.config.acme import ACME, build_acme, check_acme
from smartdiscover.config.admin import ADMIN, build_admin, check_admin
from smartdiscover.config.address import AddressError, normalize_domain
from smartdiscover.config.dns import build_dns
from smartdiscover.config.catalogue import Setting, build_catalogue, keys_of, overlay
from smartdiscover.config.auth import build_auth
from smartdiscover.config.certificates import CERTIFICATES, build_certificates
from smartdiscover.config.health import build_health
from smartdiscover.config.model import SOCKET_SERVICES, Catalogue, Model, User
from smartdiscover.config.passwd_file import read_passwd
from smartdiscover.config.public import PUBLIC_KEYS, published
from smartdiscover.config.networks import NO_NETWORKS
from smartdiscover.config.section import Section
from smartdiscover.config.redirects import REDIRECT_ADDR, REDIRECT_URL, build_redirects
from smartdiscover.config.zone_records import RECORDS, build_records

MAX_CONFIG_BYTES = 1024 * 1024

SERVER_KEYS = ("public_hostname", "domains", "https", "http", "dns", "ttl",
               "redirect_domains", "pox_extensions", "workers", "proxies",
               "max_connections", "connections_per_source") + PUBLIC_KEYS
CATALOGUE_SECTIONS = ("urls",) + SOCKET_SERVICES
DOMAIN_PREFIX = "domain:"


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
        problem = ConfigProblem(str(self.path), section, key, message)
        if problem not in self.problems:  # a main-section value seen per domain
            self.problems.append(problem)


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
    known = ("server", "auth", "dns", "hosts", RECORDS, "health", REDIRECT_ADDR,
             REDIRECT_URL, CERTIFICATES, ACME, ADMIN) + CATALOGUE_SECTIONS
    for section in parser.sections():
        if section not in known and not section.startswith(DOMAIN_PREFIX):
            problems.add(section, None, "unknown section (known: "
                         + ", ".join(known) + ", domain:NAME)")
    if "server" not in parser:
        problems.add("server", None, "missing section")
        return None
    server = Section("server", dict(parser["server"]), SERVER_KEYS, problems.add)
    domains = server.get("domains", values.domain_list, required=True)
    https = server.get("https", lambda v: values.https_endpoint(v, base), required=True)
    http = server.get("http", values.tcp_endpoint)
    dns_listen = server.get("dns", values.udp_address)
    redirect_domains = server.get("redirect_domains", values.domain_list, default=())
    pox_extensions = server.get("pox_extensions", values.boolean, default=True)
    workers = server.get("workers", values.workers, default=1)
    proxies = server.get("proxies", values.networks, default=NO_NETWORKS)
    max_connections = server.get("max_connections", values.connections_or_auto, default=None)
    per_source = server.get("connections_per_source", values.connections, default=100)
    https, http = published(server, https, http)

    auth = build_auth(dict(parser["auth"]) if "auth" in parser else {}, base, problems.add)
    certificates = build_certificates(
        dict(parser[CERTIFICATES]) if CERTIFICATES in parser else {}, base, problems.add)
    acme = build_acme(dict(parser[ACME]) if ACME in parser else {}, base, problems.add)
    admin = build_admin(dict(parser[ADMIN]) if ADMIN in parser else {}, base, problems.add)
    health = build_health(dict(parser["health"]) if "health" in parser else {}, base,
                          problems.add)
    case_sensitive = auth.case_sensitive_local

    https_port = https.public_port if https is not None else 443
    layer = _main_layer(parser, problems)
    catalogue = build_catalogue(layer, https_port, problems.add)
    domain_catalogues = {}
    merged_layers = {}
    for domain, overrides in _domain_layers(parser, domains, problems).items():
        merged_layers[domain] = overlay(layer, overrides)
        domain_catalogue = build_catalogue(merged_layers[domain], https_port, problems.add)
        if domain_catalogue is not None:
            domain_catalogues[domain] = domain_catalogue

    users: dict[str, User] = {}
    if auth.backend == "passwd" and auth.passwd_file is not None:
        users = read_passwd(auth.passwd_file, case_sensitive,
                            lambda message: problems.add("auth", "passwd_file", message))
    redirects = {}
    if domains is not None and catalogue is not None:
        own_hosts = _own_hosts(domains, [catalogue, *domain_catalogues.values()])
        redirects = build_redirects(
            {name: dict(parser[name]) for name in (REDIRECT_ADDR, REDIRECT_URL)
             if name in parser},
            domains, redirect_domains, own_hosts, case_sensitive, problems.add)
    dns = None
    if dns_listen is not None and domains is not None and catalogue is not None:
        dns = build_dns(dns_listen, dict(parser["dns"]) if "dns" in parser else {},
                        dict(parser["hosts"]) if "hosts" in parser else {},
                        {d: domain_catalogues.get(d, catalogue) for d in domains},
                        {d: merged_layers.get(d, layer) for d in domains}, problems.add)
        if dns is not None:
            dns = build_records(dict(parser[RECORDS]) if RECORDS in parser else {}, dns,
                                {d: domain_catalogues.get(d, catalogue) for d in domains},
                                problems.add)
    if problems.problems:
        return None
    assert domains is not None and https is not None and catalogue is not None
    model = Model(
        source=source,
        public_hostname=catalogue.public_hostname,
        domains=domains,
        https=https,
        http=http,
        dns=dns,
        auth=auth,
        catalogue=catalogue,
        users=MappingProxyType(users),
        domain_catalogues=MappingProxyType(domain_catalogues),
        redirects=MappingProxyType(redirects),
        pox_extensions=pox_extensions,
        health=health,
        workers=workers,
        proxies=proxies,
        max_connections=max_connections,
        connections_per_source=per_source,
        certificates=certificates,
        acme=acme,
        admin=admin,
    )
    check_acme(model, problems.add)
    check_admin(model, problems.add)
    return None if problems.problems else model


def _main_layer(parser: configparser.ConfigParser,
                problems: _Collector) -> dict[str, dict[str, Setting]]:
    """
    The catalogue settings of the main sections ([server] keys that a domain
    may override, [urls] and the socket services).
    """
    layer: dict[str, dict[str, Setting]] = {
        "server": {key: Setting(value, "server", key)
                   for key, value in parser["server"].items() if key in keys_of("server")},
    }
    for section in parser.sections():
        if section in CATALOGUE_SECTIONS:
            allowed = keys_of(section)
            layer[section] = {}
            for key, value in parser[section].items():
                if key in allowed:
                    layer[section][key] = Setting(value, section, key)
                else:
                    problems.add(section, key, "unknown key (known: " + ", ".join(allowed) + ")")
    return layer


def _domain_layers(parser: configparser.ConfigParser, domains: tuple[str, ...] | None,
                   problems: _Collector) -> dict[str, dict[str, dict[str, Setting]]]:
    """
    The overrides of every [domain:NAME] section, keys written section.key.
    """
    layers: dict[str, dict[str, dict[str, Setting]]] = {}
    for name in parser.sections():
        if not name.startswith(DOMAIN_PREFIX):
            continue
        try:
            domain = normalize_domain(name[len(DOMAIN_PREFIX):])
        except AddressError as e:
            problems.add(name, None, f"not a domain: {e}")
            continue
        if domains is not None and domain not in domains:
            problems.add(name, None, f"{domain} is not in [server] domains")
            continue
        if domain in layers:
            problems.add(name, None, f"{domain} has another [domain:] section")
            continue
        layer: dict[str, dict[str, Setting]] = {}
        for key, value in parser[name].items():
            section, dot, option = key.partition(".")
            if not value.strip():
                problems.add(name, key, "empty value (remove the line to keep the main setting)")
            elif not dot or section not in ("server",) + CATALOGUE_SECTIONS:
                problems.add(name, key, "must be SECTION.KEY with SECTION one of: "
                             + ", ".join(("server",) + CATALOGUE_SECTIONS))
            elif option not in keys_of(section):
                problems.add(name, key, f"unknown key (known in {section}: "
                             + ", ".join(keys_of(section)) + ")")
            else:
                layer.setdefault(section, {})[option] = Setting(value, name, key)
        layers[domain] = layer
    return layers


def _own_hosts(domains: tuple[str, ...], catalogues: list[Catalogue]) -> frozenset[str]:
    """
    Every name clients use to reach this server.
    """
    hosts = {c.public_hostname for c in catalogues}
    for domain in domains:
        hosts.update((domain, f"autodiscover.{domain}"))
    return frozenset(hosts)
