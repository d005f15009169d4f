"""
Tests for L{smartdiscover.tap}: options and the service tree.
"""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import IService, MultiService
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover import tap
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
        Without interface=, the listener binds the IPv6 any-address, which
        also accepts IPv4 (or 0.0.0.0 on hosts without IPv6).
        """
        service, reactor, _ = self.make()
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIn(reactor.tcpServers[0][3], ("::", "0.0.0.0"))

    def test_invalid_configuration_exits_with_problems(self) -> None:
        """
        An invalid file stops start-up with every problem, not a traceback.
        """
        error = self.assertRaises(SystemExit, self.make,
                                  MINIMAL_INI.replace("security = ssl", "security = tls"))
        self.assertIn("[imap] security", str(error))

    def test_unusable_certificate_exits(self) -> None:
        """
        A certificate that is not PEM stops start-up with a clear message.
        """
        directory = Path(self.mktemp()).absolute()
        (directory / "tls").mkdir(parents=True)
        (directory / "tls" / "server.crt").write_text("not a certificate")
        (directory / "tls" / "server.key").write_text("not a key")
        path = write_config(directory)
        options = tap.Options()
        options.parseOptions(["--config", str(path)])
        error = self.assertRaises(SystemExit, tap.makeService, options, MemoryReactorClock())
        self.assertIn("server.crt", str(error))
