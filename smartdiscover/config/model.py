"""
The immutable configuration model.

Every answer SmartDiscover gives is derived from one L{Model} snapshot, so the
formats can never disagree with each other.  Instances are frozen: a reload
builds a new model and swaps one reference.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from smartdiscover.config.networks import NO_NETWORKS, Networks


class Security(enum.Enum):
    """
    How a socket service protects its connections.
    """

    SSL = "ssl"  # implicit TLS from the first byte ("TLS/SSL")
    STARTTLS = "starttls"  # plain connect, then upgrade ("Standard")
    NONE = "none"  # no TLS at all ("Standard")


# Standard ports by protocol and security (RFC 8314, RFC 6186, RFC 6120,
# XEP-0368, RFC 3261).
DEFAULT_PORTS: Mapping[str, Mapping[Security, int]] = MappingProxyType(
    {
        "smtp": {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 587},
        "imap": {Security.SSL: 993, Security.STARTTLS: 143, Security.NONE: 143},
        "pop3": {Security.SSL: 995, Security.STARTTLS: 110, Security.NONE: 110},
        "xmpp": {Security.SSL: 5223, Security.STARTTLS: 5222, Security.NONE: 5222},
        "sip": {Security.SSL: 5061, Security.STARTTLS: 5060, Security.NONE: 5060},
    }
)

SOCKET_SERVICES: tuple[str, ...] = ("imap", "pop3", "smtp", "xmpp", "sip")

URL_SERVICES: tuple[str, ...] = (
    "activesync",
    "ews",
    "syncml",
    "webdav",
    "webclient",
    "webadmin",
    "freebusy",
    "ical",
    "sms",
    "antispam",
    "install",
    "teamchat",
    "collaboration",
    "caldav",
    "carddav",
)


SIP_TRANSPORTS: tuple[str, ...] = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class SocketService:
    """
    A service clients reach over a TCP (or UDP) socket: IMAP, SMTP and so on.

    @ivar transport: SIP only: C{udp}, C{tcp} or C{tls}; L{None} otherwise.
    @ivar server_port: XMPP only: the server-to-server port on the same
        host, or L{None} when the domain does not federate.
    """

    name: str
    host: str
    port: int
    security: Security
    transport: str | None = None
    server_port: int | None = None


@dataclass(frozen=True)
class Catalogue:
    """
    Everything a client of one mail domain may be told about.

    @ivar autodiscover_url: where this domain's clients POST Autodiscover
        requests: the public host name on the public HTTPS port.
    """

    public_hostname: str
    autodiscover_url: str
    ttl_hours: int
    services: tuple[SocketService, ...]
    urls: Mapping[str, str]

    def service(self, name: str) -> SocketService | None:
        """
        The preferred (first) endpoint of service C{name}.
        """
        for service in self.services:
            if service.name == name:
                return service
        return None

    def services_named(self, name: str) -> list[SocketService]:
        """
        Every endpoint of service C{name}, in order of preference.
        """
        return [service for service in self.services if service.name == name]


@dataclass(frozen=True)
class HTTPSListener:
    """
    Where the HTTPS service listens and which certificate it presents.

    @ivar published_port: C{[server] public_https_port}, the port clients
        reach (a port forward, a container's published port), or L{None}.
    """

    port: int
    interface: str | None  # None: every address, IPv4 and IPv6
    backlog: int | None
    certificate: Path
    private_key: Path
    proxy_protocol: bool = False  # haproxy: every connection starts with a PROXY v2 header
    published_port: int | None = None

    @property
    def public_port(self) -> int:
        """
        The port every answer names: the published one, else the listening one.
        """
        return self.port if self.published_port is None else self.published_port


@dataclass(frozen=True)
class CertificateFiles:
    """
    One line of C{[certificates]}: a certificate chain and its key, served
    to the TLS clients that ask (SNI) for a name its subjectAltName lists
    (docs/certificates.md).

    @ivar label: the key of the line; names the certificate in errors,
        /health and /metrics.
    """

    label: str
    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class AcmeConfig:
    """
    The C{[acme]} section: certificates ordered and renewed by the service
    (docs/certificates.md, "ACME").

    @ivar directory: the CA's directory URL.
    @ivar contact: addresses the CA may write to (expiry, incidents).
    @ivar agree_terms: the administrator accepts the CA's terms of service.
    @ivar state: the directory that holds the account and certificates.
    @ivar ca_file: trust anchors for the CA's own HTTPS certificate (a
        private CA); L{None}: the system's.
    @ivar challenge: how names are proved unless C{challenges} says else.
    @ivar challenges: a challenge type per name.
    @ivar apex: the served domains whose own name (C{<domain>}) points here
        and is ordered too.
    @ivar order: whether this instance orders; one that does not serves
        what the ordering instance left in C{state} (a shared copy).
    """

    directory: str
    state: Path
    contact: tuple[str, ...] = ()
    agree_terms: bool = False
    ca_file: Path | None = None
    challenge: str = "http-01"
    challenges: Mapping[str, str] = field(default_factory=dict)
    apex: frozenset[str] = frozenset()
    order: bool = True


@dataclass(frozen=True)
class AdminSettings:
    """
    The C{[admin]} section: the web console's listener and its accounts
    (docs/console.md).

    @ivar listen: where the console listens; loopback unless an interface
        is given, and then over TLS with the service's certificates.
    @ivar accounts_file: the administrators' file, C{NAME:HASH} a line.
    @ivar accounts: its entries, name (case-folded) to password hash.
    @ivar session_idle: seconds a session lives without a request.
    @ivar session_lifetime: seconds a session lives at most.
    """

    listen: TCPListener
    accounts_file: Path
    accounts: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    session_idle: float = 900.0
    session_lifetime: float = 8 * 3600.0

    @property
    def over_tls(self) -> bool:
        """
        Whether the console is served over TLS: on any address but
        loopback.
        """
        interface = self.listen.interface
        return interface is None or not (interface.startswith("127.") or interface == "::1")


@dataclass(frozen=True)
class TCPListener:
    """
    A plain TCP listener (the HTTP redirect listener).

    @ivar published_port: C{[server] public_http_port}, or L{None}.
    """

    port: int
    interface: str | None  # None: every address, IPv4 and IPv6
    backlog: int | None
    proxy_protocol: bool = False  # haproxy: every connection starts with a PROXY v2 header
    published_port: int | None = None

    @property
    def public_port(self) -> int:
        """
        The port clients reach: the published one, else the listening one.
        """
        return self.port if self.published_port is None else self.published_port


@dataclass(frozen=True)
class UDPAddress:
    host: str
    port: int


@dataclass(frozen=True)
class ZoneRecord:
    """
    One record of C{[records]}, validated: C{owner} is an ASCII lower-case
    name inside a served zone, C{rtype} one of A, AAAA, CAA, CNAME, MX, SRV,
    TXT (config/zone_records.py).

    @ivar target: A/AAAA the address; CNAME, MX, SRV the target name (C{""}
        for the root: a null MX, an SRV "not offered").
    @ivar numbers: MX (preference,); SRV (priority, weight, port); CAA
        (flags,).
    @ivar strings: TXT the character-strings, each at most 255 bytes; CAA
        (tag, value).
    """

    owner: str
    rtype: str
    target: str = ""
    numbers: tuple[int, ...] = ()
    strings: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class DNSSettings:
    """
    How the DNS responder publishes the served domains.

    @ivar nameservers: NS host names at every apex (first: SOA MNAME).
    @ivar hostmaster: the SOA RNAME as an address (C{hostmaster@domain}),
        or L{None} for C{hostmaster@<each domain>}.
    @ivar mx: (preference, host) pairs published at every apex.
    @ivar hosts: addresses (A/AAAA) of host names inside the served zones.
    @ivar rrl_rate: responses per second per client prefix over UDP;
        0 turns response rate limiting off.
    @ivar rrl_slip: every Nth limited response goes out truncated (TC=1) so
        real resolvers retry over TCP; 0 drops them all.
    @ivar rrl_exempt: networks never limited (monitoring, benchmarks).
    @ivar records: the zone owner's own records (C{[records]}), in file
        order, published beside the derived ones.
    """

    listen: UDPAddress
    ttl: int = 300
    nameservers: tuple[str, ...] = ()
    hostmaster: str | None = None
    mx: tuple[tuple[int, str], ...] = ()
    hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rrl_rate: int = 20
    rrl_slip: int = 2
    rrl_exempt: Networks = NO_NETWORKS
    tcp_idle: float = 10.0
    tcp_per_source: int = 20
    records: tuple[ZoneRecord, ...] = ()


@dataclass(frozen=True)
class HealthSettings:
    """
    Active checks of every advertised endpoint.

    @ivar probes: whether endpoints are probed at all (C{[health] probes =
        no}: never, so nothing is left out and /health/ready asks only for
        the listeners).
    @ivar interval: seconds between rounds (0: at start and after each
        reload only).
    @ivar grace: seconds an endpoint may fail before C{advertise_unhealthy
        = no} leaves it out of answers (while a healthy alternative exists).
    @ivar ca_file: extra trust anchors for the checks (a private CA).
    @ivar allow: networks besides loopback that may read /health and
        /metrics.
    """

    interval: float = 300.0
    timeout: float = 10.0
    concurrency: int = 8
    grace: float = 600.0
    advertise_unhealthy: bool = True
    ca_file: Path | None = None
    allow: Networks = NO_NETWORKS
    probes: bool = True


@dataclass(frozen=True)
class Redirect:
    """
    Where an account's clients must go instead (POX Action values).

    @ivar action: C{redirectAddr} (C{target} is an address) or C{redirectUrl}
        (C{target} is an https Autodiscover URL).
    """

    action: str
    target: str


@dataclass(frozen=True)
class User:
    """
    An entry of the password file.
    """

    address: str
    password_hash: bytes = field(repr=False)
    display_name: str


@dataclass(frozen=True)
class GuardPolicy:
    """
    How failed logins are slowed down and throttled (SECURITY.md 3.3, 3.4).

    Counters decay: C{network_failures} failures per C{network_window}
    seconds from one client network (/24, /64), or C{account_failures} per
    C{account_window} against one account and place (docs/guard.md), trigger
    a lockout of C{lockout} seconds, doubling up to C{max_lockout}.
    """

    failure_delay: float = 1.0
    network_failures: int = 5
    network_window: float = 600.0
    account_failures: int = 6
    account_window: float = 1800.0
    lockout: float = 60.0
    max_lockout: float = 1800.0
    cache_ttl: float = 300.0
    max_pending: int = 16


@dataclass(frozen=True)
class TLSServer:
    """
    A backend server reached over TLS: implicit (ldaps, imaps) or upgraded
    with StartTLS/STARTTLS (ldap, imap); never in clear text.
    """

    host: str
    port: int
    implicit_tls: bool
    ca_file: Path | None  # None: the system's trust store
    timeout: float


@dataclass(frozen=True)
class LDAPSettings:
    """
    Bind as the user: a DN from C{bind_dn} (C{{local}}, C{{domain}},
    C{{address}}), or found under C{base} by C{attribute} with the service
    account, then bound on a separate connection.
    """

    server: TLSServer
    bind_dn: str | None
    base: str | None
    attribute: str
    service_dn: str | None
    service_password: str | None = field(repr=False)
    display_name_attributes: tuple[str, ...] = ("displayName", "cn")


@dataclass(frozen=True)
class IMAPSettings:
    """
    Log in to the mail server with the user's credentials.

    @ivar login: C{address} or C{local}: what the mail server expects.
    """

    server: TLSServer
    login: str


@dataclass(frozen=True)
class AuthSettings:
    backend: str
    passwd_file: Path | None
    case_sensitive_local: bool
    guard: GuardPolicy = GuardPolicy()
    ldap: LDAPSettings | None = None
    imap: IMAPSettings | None = None


@dataclass(frozen=True)
class Model:
    """
    One complete, validated configuration.
    """

    source: Path
    public_hostname: str
    domains: tuple[str, ...]
    https: HTTPSListener
    http: TCPListener | None
    dns: DNSSettings | None
    auth: AuthSettings
    catalogue: Catalogue
    users: Mapping[str, User] = field(repr=False)
    domain_catalogues: Mapping[str, Catalogue] = field(default_factory=dict)
    redirects: Mapping[str, Redirect] = field(default_factory=dict)
    pox_extensions: bool = True
    health: HealthSettings = HealthSettings()
    workers: int = 1  # processes sharing the HTTPS port (read at start)
    proxies: Networks = NO_NETWORKS  # besides loopback, who may send PROXY headers
    max_connections: int | None = None  # HTTPS and HTTP together; None: from RLIMIT_NOFILE
    connections_per_source: int = 100  # per IPv4 address or IPv6 /64
    # [certificates], in file order; [server] https's pair is the default.
    certificates: tuple[CertificateFiles, ...] = ()
    acme: AcmeConfig | None = None  # [acme]; None: no certificate is ordered
    admin: AdminSettings | None = None  # [admin]; None: no web console

    @property
    def ttl_hours(self) -> int:
        return self.catalogue.ttl_hours

    def serves(self, domain: str) -> bool:
        """
        Whether C{domain} (already normalised) is one of the served domains.
        """
        return domain in self.domains

    def catalogue_for(self, domain: str) -> Catalogue:
        """
        The services offered to users of C{domain}: its [domain:NAME]
        overrides on top of the main sections.
        """
        return self.domain_catalogues.get(domain, self.catalogue)

    def redirect_for(self, address_key: str) -> Redirect | None:
        """
        The redirect configured for the account with this address key.
        """
        return self.redirects.get(address_key)
