"""
Client networks: the unit in which a flood from one place is counted.
"""

from __future__ import annotations

import socket


def network_of(host: str, ipv4_labels: int = 3, ipv6_bytes: int = 7) -> bytes | str:
    """
    The network C{host} belongs to, as a hashable key: by default its /24
    (IPv4) or /56 (IPv6); IPv4-mapped IPv6 addresses count as IPv4.

    Cheap on purpose: it runs for every DNS query.
    """
    if ":" not in host:
        return host.rsplit(".", 4 - ipv4_labels)[0]
    if host[:7].lower() == "::ffff:" and "." in host:  # dual-stack socket
        return host[7:].rsplit(".", 4 - ipv4_labels)[0]
    try:
        return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])[:ipv6_bytes]
    except OSError:
        return host


def client_of(host: str) -> bytes | str:
    """
    One client's own place: an IPv4 address, or the /64 an IPv6 host picks
    its (temporary, RFC 8981) addresses from.
    """
    return network_of(host, ipv4_labels=4, ipv6_bytes=8)
