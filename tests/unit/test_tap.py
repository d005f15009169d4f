"""
Tests for L{smartdiscover.tap}: options and the service tree.
"""

from __future__ import annotations

import socket
from pathlib import Path

from twisted.application.service import IService, MultiService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from smartdiscover import tap
from smartdiscover.web import listeners
from tests.helpers import MINIMAL_INI, write_config


class OptionsTests(SynchronousTestCase):
    def test_config_option(self) -> None:
        """
        --config names the file; a missing file is a usage error, not a traceback.
        """
        path = write_config(self.mktemp())
        options = tap.Options()
        options.parseOptions(["--config", str(path)])
        self.assertEqual(options["config"], str(path))
        self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                          ["--config", str(path) + ".missing"])


class MakeServiceTests(SynchronousTestCase):
    def make(self, ini: str = MINIMAL_INI) -> tuple[IService, MemoryReactorClock, Path]:
        path = write_config(Path(self.mktemp()).absolute(), ini)
        options = tap.Options()
        options.parseOptions(["--config", str(path)])
        reactor = MemoryReactorClock()
        return tap.makeService(options, reactor), reactor, path

    def test_listens_with_tls_on_configured_port(self) -> None:
        """
        Starting the service listens on the configured HTTPS port and
        interface, and creates the development certificate when none exists.
        """
        service, reactor, path = self.make(MINIMAL_INI.replace(
            "ssl:8443:", "ssl:8443:interface=127.0.0.1:"))
        self.assertIsInstance(service, MultiService)
        self.assertTrue((path.parent / "tls" / "server.crt").exists())
        self.assertTrue((path.parent / "tls" / "server.key").exists())
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([(port, interface) for port, _, _, interface in reactor.tcpServers],
                         [(8443, "127.0.0.1")])

    def test_dual_stack_by_default(self) -> None:
        """
        Without interface=, the listener binds the any-address
        L{any_address} finds for the host.
        """
        for found in ("::", "0.0.0.0"):
            self.patch(listeners, "any_address", lambda: found)
            service, reactor, _ = self.make()
            service.startService()
            self.addCleanup(service.stopService)
            self.assertEqual(reactor.tcpServers[0][3], found)


    def test_invalid_configuration_is_a_usage_error(self) -> None:
        """
        An invalid file stops start-up in the options, with every problem,
        as a usage error (twistd prints it without a traceback).
        """
        error = self.assertRaises(usage.UsageError, self.make,
                                  MINIMAL_INI.replace("security = ssl", "security = tls"))
        self.assertIn("invalid configuration", str(error))
        self.assertIn("[imap] security", str(error))

    def test_unusable_certificate_is_a_usage_error(self) -> None:
        """
        A certificate that is not PEM stops start-up in the options, with a
        clear message naming the file.
        """
        directory = Path(self.mktemp()).absolute()
        (directory / "tls").mkdir(parents=True)
        (directory / "tls" / "server.crt").write_text("not a certificate")
        (directory / "tls" / "server.key").write_text("not a key")
        path = write_config(directory)
        error = self.assertRaises(usage.UsageError, tap.Options().parseOptions,
                                  ["--config", str(path)])
        self.assertIn("server.crt", str(error))


class AnyAddressTests(SynchronousTestCase):
    """
    L{any_address}: one socket for IPv6 and IPv4 where the host can.
    """

    def test_ipv6_host(self) -> None:
        """
        Where an IPv6 socket binds, the IPv6 any-address (which also takes
        IPv4-mapped connections).
        """
        if not socket.has_ipv6:
            raise SkipTest("this host has no IPv6")
        self.assertEqual(listeners.any_address(), "::")

    def test_without_ipv6(self) -> None:
        """
        A Python without IPv6 support, or a host where an IPv6 socket does
        not bind, gets the IPv4 any-address.
        """
        self.patch(socket, "has_ipv6", False)
        self.assertEqual(listeners.any_address(), "0.0.0.0")
        self.patch(socket, "has_ipv6", True)

        class Unbindable(socket.socket):
            def bind(self, address: object) -> None:
                raise OSError("Cannot assign requested address")

        self.patch(socket, "socket", Unbindable)
        self.assertEqual(listeners.any_address(), "0.0.0.0")
