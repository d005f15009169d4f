"""
Addresses and networks from the configuration ([server] proxies, [health]
allow, [dns] rrl_exempt), parsed once at load, and the one rule for
whether a client address is in them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(host: str) -> Address | None:
    """
    The address of C{host} as a client is counted: without an IPv6 zone,
    IPv4-mapped IPv6 as IPv4; L{None} when it is not an address.
    """
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def is_loopback(host: str) -> bool:
    address = client_ip(host)
    return address is not None and address.is_loopback


@dataclass(frozen=True)
class Networks:
    """
    Networks, normalised (C{texts}, as check-config and /health show them)
    and parsed.
    """

    texts: tuple[str, ...] = ()
    _parsed: tuple[Network, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def parse(cls, value: str) -> Networks:
        """
        Comma-separated addresses or CIDR networks.

        @raise ValueError: an item that is neither.
        """
        parsed = []
        for item in value.split(","):
            if item.strip():
                try:
                    parsed.append(ipaddress.ip_network(item.strip(), strict=False))
                except ValueError:
                    raise ValueError(f"{item.strip()!r} is not an address or network") \
                        from None
        return cls(tuple(map(str, parsed)), tuple(parsed))

    def __bool__(self) -> bool:
        return bool(self._parsed)

    def __contains__(self, host: object) -> bool:
        """
        Whether the client address C{host} lies in one of the networks.
        """
        address = client_ip(host) if isinstance(host, str) else None
        return address is not None and any(address in network for network in self._parsed)


NO_NETWORKS = Networks()
