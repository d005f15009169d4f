"""
URLs and host names as the probe handles them: the ports a test or a
non-standard deployment puts in place of 443 and 80, and the user's domain
as the limit for credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

PATH = "/autodiscover/autodiscover.xml"
DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = re.compile(r"[a-z0-9_-]{1,63}\Z", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class Ports:
    """
    Where C{https://} and C{http://} URLs that name no port connect.
    """

    https: int = 443
    http: int = 80

    def effective(self, url: str) -> str:
        """
        C{url} with the port it is reached on written out, unless standard.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or parts.port is not None:
            return url
        port = self.https if scheme == "https" else self.http
        if port == DEFAULT_PORTS[scheme]:
            return url
        return urlunsplit((parts.scheme, f"{netloc(parts.hostname or '')}:{port}",
                           parts.path, parts.query, parts.fragment))

    def autodiscover(self, scheme: str, host: str, port: int | None = None) -> str:
        """
        The Autodiscover URL on C{host} (on C{port}, else this scheme's port).

        A C{port} that is the scheme's standard one (an SRV record's 443) is
        reached where port-less URLs are: a service behind a forward
        publishes 443 while the probe, beside it, connects to the port given.
        """
        if port is None or port == DEFAULT_PORTS[scheme]:
            port = self.https if scheme == "https" else self.http
        suffix = "" if port == DEFAULT_PORTS[scheme] else f":{port}"
        return f"{scheme}://{netloc(host)}{suffix}{PATH}"


def unusable(url: str) -> str | None:
    """
    Why C{url} cannot be reached (no host, a port that is no port, a broken
    IPv6 literal), or C{None}.
    """
    try:
        parts = urlsplit(url)
        parts.port  # raises for a port out of range or not a number
    except ValueError as e:
        return str(e)
    return None if parts.hostname else "no host"


def is_hostname(host: str) -> bool:
    """
    Whether C{host} (from an MX or SRV record) is a host name a URL can
    carry: labels of letters, digits, hyphens and underscores.
    """
    host = host[:-1] if host.endswith(".") else host
    return 0 < len(host) <= 253 and all(_LABEL.match(label) for label in host.split("."))


def netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def host_port(url: str) -> tuple[str, int]:
    """
    The host (lower case, without a trailing dot) and port C{url} reaches.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    return host, parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 443)


def where(url: str) -> str:
    """
    C{host} or C{host:port} of C{url}, for check names.
    """
    host, port = host_port(url)
    return netloc(host) if port == DEFAULT_PORTS.get(urlsplit(url).scheme.lower()) \
        else f"{netloc(host)}:{port}"


def resolve(base: str, location: str) -> str:
    return urljoin(base, location.strip())


def visit_key(url: str) -> str:
    """
    What makes two URLs the same stop for the loop guard.
    """
    parts = urlsplit(url)
    host, port = host_port(url)
    return f"{parts.scheme.lower()}://{host}:{port}{parts.path.lower()}?{parts.query}"


def within(host: str, domain: str) -> bool:
    """
    Whether C{host} is C{domain} or a name under it: the hosts that may
    see the user's credentials.
    """
    host, domain = host.lower().rstrip("."), domain.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)
