"""
Tests for L{smartdiscover.config.networks}: networks parsed once, and the
one rule for whether a client address is in them.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config.networks import NO_NETWORKS, Networks, client_ip, is_loopback


class NetworksTests(SynchronousTestCase):
    def test_parse_normalises(self) -> None:
        """
        Addresses become host networks, host bits are dropped, IPv6 is
        compressed and lower case; empty items are skipped.
        """
        networks = Networks.parse(" 192.0.2.7/24, ,2001:DB8::/32,198.51.100.1 ")
        self.assertEqual(networks.texts, ("192.0.2.0/24", "2001:db8::/32", "198.51.100.1/32"))
        self.assertEqual(networks, Networks(networks.texts))
        self.assertFalse(Networks.parse(""))
        self.assertTrue(networks)

    def test_parse_refuses_garbage(self) -> None:
        for value in ("example.test", "192.0.2.0/33", "10.0.0.0/8; 1.2.3.4", "::1/129"):
            error = self.assertRaises(ValueError, Networks.parse, value)
            self.assertIn("is not an address or network", str(error))

    def test_membership(self) -> None:
        """
        IPv4-mapped IPv6 addresses count as IPv4, IPv6 zones are ignored;
        anything that is not an address, or not a string, is in no network.
        """
        networks = Networks.parse("10.0.0.0/24, fe80::/64")
        for host in ("10.0.0.5", "::ffff:10.0.0.5", "fe80::1%eth0"):
            self.assertIn(host, networks)
        for host in ("10.0.1.5", "", "10.0.0.5x", "proxy.example", "::1", None, 167772165):
            self.assertNotIn(host, networks)
        self.assertNotIn("10.0.0.5", NO_NETWORKS)

    def test_client_ip_and_loopback(self) -> None:
        self.assertEqual(str(client_ip("::ffff:127.0.0.1")), "127.0.0.1")
        self.assertIsNone(client_ip("not an address"))
        for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
            self.assertTrue(is_loopback(host), host)
        for host in ("10.0.0.5", "", "localhost"):
            self.assertFalse(is_loopback(host), host)
