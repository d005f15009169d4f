"""
Tests for L{smartdiscover.systemd} (sd_notify), L{smartdiscover.logs} and
the unit file C{etc/smartdiscover.service}.

The notify messages are read back from real C{AF_UNIX} datagram sockets
given as C{NOTIFY_SOCKET}.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from typing import Any, Callable

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, Logger, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover import logs
from smartdiscover.config import ConfigStore, load
from smartdiscover.config.sighup import Reload
from smartdiscover.systemd import SystemdNotifier, notify
from tests.helpers import PROJECT_ROOT, edit, run_synchronously, write_config

UNIT = PROJECT_ROOT / "etc" / "smartdiscover.service"


class Receiver:
    """
    A bound C{AF_UNIX}/C{SOCK_DGRAM} socket standing in for systemd's.
    """

    def __init__(self, test: SynchronousTestCase, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        test.addCleanup(self.sock.close)
        if abstract:
            name = f"smartdiscover-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # Short path: AF_UNIX paths are limited to 107 bytes, more than a
            # trial temp directory below /work may need.
            directory = tempfile.mkdtemp(prefix="sd-notify-")
            test.addCleanup(shutil.rmtree, directory, True)
            self.address = os.path.join(directory, "notify")
            self.sock.bind(self.address)
        self.sock.setblocking(False)

    @property
    def environ(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.address}

    def messages(self) -> list[str]:
        """
        Every datagram received so far, oldest first.
        """
        received = []
        while True:
            try:
                received.append(self.sock.recv(65536).decode("utf-8"))
            except BlockingIOError:
                return received


def fields(message: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in message.split("\n") if line)


class NotifyTests(SynchronousTestCase):
    """
    L{notify}: one datagram to C{$NOTIFY_SOCKET}, never an exception.
    """

    def test_path_socket(self) -> None:
        """
        The message arrives as one datagram at a socket named by its path.
        """
        receiver = Receiver(self)
        self.assertIs(notify("READY=1\nSTATUS=up", receiver.environ), True)
        self.assertIs(notify("WATCHDOG=1", receiver.environ), True)
        self.assertEqual(receiver.messages(), ["READY=1\nSTATUS=up", "WATCHDOG=1"])

    def test_abstract_socket(self) -> None:
        """
        A leading C{@} names a socket in the abstract namespace.
        """
        if not sys.platform.startswith("linux"):
            raise self.skipTest("the abstract namespace is Linux-only")
        receiver = Receiver(self, abstract=True)
        self.assertTrue(receiver.address.startswith("@"))
        self.assertIs(notify("READY=1", receiver.environ), True)
        self.assertEqual(receiver.messages(), ["READY=1"])

    def test_utf8(self) -> None:
        """
        Text is sent as UTF-8.
        """
        receiver = Receiver(self)
        notify("STATUS=réponse", receiver.environ)
        self.assertEqual(receiver.messages(), ["STATUS=réponse"])

    def test_no_socket(self) -> None:
        """
        Without C{NOTIFY_SOCKET} (or with an empty one) nothing is sent.
        """
        self.assertIs(notify("READY=1", {}), False)
        self.assertIs(notify("READY=1", {"NOTIFY_SOCKET": ""}), False)

    def test_unsupported_address(self) -> None:
        """
        Addresses that are neither absolute paths nor C{@names} are refused.
        """
        self.assertIs(notify("READY=1", {"NOTIFY_SOCKET": "relative/notify"}), False)
        self.assertIs(notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"}), False)

    def test_vanished_socket(self) -> None:
        """
        A socket whose file was removed gives C{False}, not an exception.
        """
        receiver = Receiver(self)
        environ = receiver.environ
        receiver.sock.close()
        os.unlink(receiver.address)
        self.assertIs(notify("READY=1", environ), False)

    def test_nobody_listening(self) -> None:
        """
        A socket file nobody is bound to any more (ECONNREFUSED) gives
        C{False}.
        """
        receiver = Receiver(self)
        receiver.sock.close()
        self.assertTrue(os.path.exists(receiver.address))
        self.assertIs(notify("READY=1", receiver.environ), False)

    def test_not_a_socket(self) -> None:
        """
        A path that is not a socket gives C{False}.
        """
        directory = tempfile.mkdtemp(prefix="sd-notify-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.assertIs(notify("READY=1", {"NOTIFY_SOCKET": directory}), False)
        self.assertIs(notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/dir/notify"}), False)


class FakeReactor:
    """
    Just what L{SystemdNotifier} uses: C{callWhenRunning} (the reactor is
    already running: call at once), and C{callLater}/C{seconds} from a
    L{Clock} for the L{LoopingCall}.
    """

    def __init__(self) -> None:
        self.clock = Clock()
        self.callLater = self.clock.callLater
        self.seconds = self.clock.seconds

    def callWhenRunning(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)


class DeferredStartReactor(FakeReactor):
    """
    A reactor not yet running: C{callWhenRunning} queues until L{run}.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callWhenRunning(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.queued.append((f, args))

    def run(self) -> None:
        for f, args in self.queued:
            f(*args)


class SystemdNotifierTests(SynchronousTestCase):
    """
    L{SystemdNotifier}: the lifecycle, watchdog and reload messages.
    """

    def make(self, reactor: FakeReactor | None = None, status: Callable[[], str] | None = None,
             **environ: str) -> tuple[SystemdNotifier, Receiver, FakeReactor]:
        receiver = Receiver(self)
        reactor = reactor or FakeReactor()
        kwargs: dict[str, Any] = {}
        if status is not None:
            kwargs["status"] = status
        notifier = SystemdNotifier(reactor, {**receiver.environ, **environ},
                                   clock=lambda: 1_234_567_890_123, **kwargs)
        self.addCleanup(lambda: notifier.running and notifier.stopService())
        return notifier, receiver, reactor

    def test_ready_when_running(self) -> None:
        """
        C{READY=1} with a C{STATUS=} once the reactor runs, not before.
        """
        reactor = DeferredStartReactor()
        notifier, receiver, _ = self.make(reactor, status=lambda: "serving generation 1")
        notifier.startService()
        self.assertEqual(receiver.messages(), [])
        reactor.run()
        self.assertEqual(receiver.messages(), ["READY=1\nSTATUS=serving generation 1"])

    def test_no_ready_if_stopped_before_running(self) -> None:
        """
        A service stopped before the reactor ran never claims readiness.
        """
        reactor = DeferredStartReactor()
        notifier, receiver, _ = self.make(reactor)
        notifier.startService()
        notifier.stopService()
        reactor.run()
        self.assertEqual(receiver.messages(), ["STOPPING=1"])

    def test_default_status(self) -> None:
        notifier, receiver, _ = self.make()
        notifier.startService()
        self.assertEqual(fields(receiver.messages()[0]), {"READY": "1", "STATUS": "serving"})

    def test_status_failure_is_contained(self) -> None:
        """
        A failing status callable does not keep C{READY=1} from being sent.
        """
        notifier, receiver, _ = self.make(status=lambda: 1 // 0)  # type: ignore[arg-type,return-value]
        notifier.startService()
        self.assertEqual(fields(receiver.messages()[0])["READY"], "1")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_watchdog(self) -> None:
        """
        With C{WATCHDOG_USEC}, C{WATCHDOG=1} right after C{READY=1} and then
        every C{WATCHDOG_USEC/2} of reactor time; none after stopping.
        """
        notifier, receiver, reactor = self.make(WATCHDOG_USEC="30000000")
        self.assertEqual(notifier.watchdog_interval, 15.0)
        notifier.startService()
        self.assertEqual([m.split("\n")[0] for m in receiver.messages()],
                         ["READY=1", "WATCHDOG=1"])
        reactor.clock.advance(14.9)
        self.assertEqual(receiver.messages(), [])
        reactor.clock.advance(0.1)
        self.assertEqual(receiver.messages(), ["WATCHDOG=1"])
        for _ in range(4):
            reactor.clock.advance(15)
        self.assertEqual(receiver.messages(), ["WATCHDOG=1"] * 4)
        notifier.stopService()
        self.assertEqual(receiver.messages(), ["STOPPING=1"])
        self.assertEqual(reactor.clock.getDelayedCalls(), [])
        reactor.clock.advance(60)
        self.assertEqual(receiver.messages(), [])

    def test_watchdog_for_this_pid(self) -> None:
        """
        C{WATCHDOG_PID} naming this process keeps the watchdog on.
        """
        notifier, receiver, reactor = self.make(WATCHDOG_USEC="2000000",
                                                WATCHDOG_PID=str(os.getpid()))
        notifier.startService()
        receiver.messages()
        reactor.clock.advance(1)
        self.assertEqual(receiver.messages(), ["WATCHDOG=1"])

    def test_no_watchdog_without_usec(self) -> None:
        for environ in ({}, {"WATCHDOG_USEC": ""}, {"WATCHDOG_USEC": "0"},
                        {"WATCHDOG_USEC": "soon"}):
            notifier, receiver, reactor = self.make(**environ)
            self.assertIsNone(notifier.watchdog_interval)
            notifier.startService()
            self.assertEqual(len(receiver.messages()), 1)
            reactor.clock.advance(3600)
            self.assertEqual(receiver.messages(), [])
            self.assertEqual(reactor.clock.getDelayedCalls(), [])
            notifier.stopService()

    def test_no_watchdog_for_another_pid(self) -> None:
        """
        C{WATCHDOG_PID} naming another process: the watchdog is not ours.
        """
        notifier, receiver, reactor = self.make(WATCHDOG_USEC="2000000",
                                                WATCHDOG_PID=str(os.getpid() + 1))
        self.assertIsNone(notifier.watchdog_interval)
        notifier.startService()
        self.assertEqual(len(receiver.messages()), 1)
        reactor.clock.advance(3600)
        self.assertEqual(receiver.messages(), [])

    def test_reloading(self) -> None:
        """
        C{reloading()} sends C{RELOADING=1} and C{MONOTONIC_USEC}, the
        injected C{CLOCK_MONOTONIC} in microseconds.
        """
        notifier, receiver, _ = self.make()
        notifier.startService()
        receiver.messages()
        notifier.reloading()
        [message] = receiver.messages()
        sent = fields(message)
        self.assertEqual(sent["RELOADING"], "1")
        self.assertEqual(sent["MONOTONIC_USEC"], "1234567890")

    def test_reloading_default_clock(self) -> None:
        """
        By default C{MONOTONIC_USEC} is C{time.monotonic_ns()} in
        microseconds.
        """
        import time
        receiver = Receiver(self)
        notifier = SystemdNotifier(FakeReactor(), receiver.environ)
        before = time.monotonic_ns() // 1000
        notifier.reloading()
        after = time.monotonic_ns() // 1000
        usec = fields(receiver.messages()[0])["MONOTONIC_USEC"]
        self.assertTrue(re.fullmatch(r"[0-9]+", usec), usec)
        self.assertTrue(before <= int(usec) <= after)

    def test_reloaded_ok(self) -> None:
        notifier, receiver, _ = self.make(status=lambda: "serving generation 2")
        notifier.startService()
        receiver.messages()
        notifier.reloading()
        notifier.reloaded(True, None)
        messages = receiver.messages()
        self.assertEqual(fields(messages[0])["RELOADING"], "1")
        self.assertEqual(fields(messages[1]),
                         {"READY": "1", "STATUS": "reloaded; serving generation 2"})

    def test_reloaded_failed(self) -> None:
        """
        A failed reload still ends with C{READY=1} (the old configuration is
        served) and C{STATUS=} carries the first line of the error.
        """
        notifier, receiver, _ = self.make()
        notifier.startService()
        receiver.messages()
        notifier.reloading()
        notifier.reloaded(False, "\n/etc/sd.ini: [imap] port: must be 1-65535\nsecond line")
        sent = fields(receiver.messages()[1])
        self.assertEqual(sent["READY"], "1")
        self.assertIn("reload failed", sent["STATUS"])
        self.assertIn("/etc/sd.ini: [imap] port: must be 1-65535", sent["STATUS"])
        self.assertNotIn("second line", sent["STATUS"])
        notifier.reloading()
        notifier.reloaded(False, None)
        self.assertIn("unknown error", fields(receiver.messages()[1])["STATUS"])

    def test_overlapping_reloads(self) -> None:
        """
        C{READY=1} follows the last of overlapping reloads only.
        """
        notifier, receiver, _ = self.make()
        notifier.startService()
        receiver.messages()
        notifier.reloading()
        notifier.reloading()
        notifier.reloaded(True)
        messages = receiver.messages()
        self.assertEqual(len(messages), 3)
        self.assertNotIn("READY", fields(messages[2]))
        notifier.reloaded(False, "broken")
        self.assertEqual(fields(receiver.messages()[0])["READY"], "1")
        notifier.reloaded(True)   # unmatched: still READY=1
        self.assertEqual(fields(receiver.messages()[0])["READY"], "1")

    def test_stopping(self) -> None:
        notifier, receiver, _ = self.make()
        notifier.startService()
        receiver.messages()
        notifier.stopService()
        self.assertEqual(receiver.messages(), ["STOPPING=1"])
        self.assertFalse(notifier.running)

    def test_without_notify_socket(self) -> None:
        """
        Outside systemd (no C{NOTIFY_SOCKET}) every call is a no-op that
        raises and logs nothing, and no watchdog runs even when
        C{WATCHDOG_USEC} is set: there is no one to ping.
        """
        reactor = FakeReactor()
        notifier = SystemdNotifier(reactor, {"WATCHDOG_USEC": "1000000"})
        with capturedLogs() as events:
            notifier.startService()
            self.assertIsNone(notifier.watchdog_interval)
            self.assertEqual(reactor.clock.getDelayedCalls(), [])
            reactor.clock.advance(5)
            notifier.reloading()
            notifier.reloaded(False, "x")
            notifier.stopService()
        self.assertEqual(list(events), [])
        self.assertFalse(notifier.running)

    def test_wired_to_config_store(self) -> None:
        """
        What SIGHUP does in the first process (L{Reload}, as tap.py wires
        it): C{reloading()}, the signal passed on to the workers, then
        C{reloaded(ok, store.last_error)} when C{store.reload()} fires.
        """
        path = write_config(self.mktemp())
        store = ConfigStore(load(path), lambda: load(path), run_synchronously)
        notifier, receiver, _ = self.make(
            status=lambda: f"serving configuration generation {store.generation}")
        notifier.startService()
        self.assertEqual(fields(receiver.messages()[0])["STATUS"],
                         "serving configuration generation 1")
        workers: list[str] = []

        class Workers:
            def reload(self) -> None:
                workers.append("SIGHUP")

        reload = Reload(store, notifier, Workers())

        path.write_text(edit("ttl = 1", "ttl = 7"), encoding="utf-8")
        reload()
        messages = receiver.messages()
        self.assertEqual(fields(messages[0])["RELOADING"], "1")
        self.assertEqual(fields(messages[1]), {
            "READY": "1", "STATUS": "reloaded; serving configuration generation 2"})

        self.assertEqual(workers, ["SIGHUP"])
        path.write_text(edit("[imap]\n", "[imap]\nport = 0\n"), encoding="utf-8")
        self.assertIs(self.successResultOf(reload()), False)
        self.flushLoggedErrors()
        status = fields(receiver.messages()[1])["STATUS"]
        self.assertIn("reload failed", status)
        self.assertIn("[imap] port", status)


class UnitFileTests(SynchronousTestCase):
    """
    C{etc/smartdiscover.service} has the directives the operations issue
    requires.
    """

    def directives(self) -> dict[str, dict[str, list[str]]]:
        sections: dict[str, dict[str, list[str]]] = {}
        current: dict[str, list[str]] | None = None
        for raw in UNIT.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            self.assertIsNotNone(current, f"directive outside a section: {raw!r}")
            self.assertIn("=", line, f"not a directive: {raw!r}")
            self.assertFalse(line.endswith("\\"), "no continuation lines expected")
            key, value = line.split("=", 1)
            assert current is not None
            current.setdefault(key.strip(), []).append(value.strip())
        return sections

    def test_sections(self) -> None:
        self.assertEqual(set(self.directives()), {"Unit", "Service", "Install"})

    def test_service_directives(self) -> None:
        service = {k: v[-1] for k, v in self.directives()["Service"].items()}
        required = {
            "Type": "notify",
            "NotifyAccess": "main",
            "ExecReload": "/bin/kill -HUP $MAINPID",
            "User": "smartdiscover",
            "Group": "smartdiscover",
            "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
            "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "PrivateDevices": "yes",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "ProtectControlGroups": "yes",
            "RestrictNamespaces": "yes",
            "LockPersonality": "yes",
            "SystemCallArchitectures": "native",
            "ReadOnlyPaths": "/etc/smartdiscover",
            "StateDirectory": "smartdiscover",
            "WatchdogSec": "30",
            "Restart": "on-failure",
            "LimitNOFILE": "65536",
        }
        for key, value in required.items():
            self.assertEqual(service.get(key), value, key)
        self.assertEqual(set(service["RestrictAddressFamilies"].split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX"})

    def test_exec_start(self) -> None:
        """
        twistd in the foreground, no pidfile, JSON lines on stdout, the
        configuration under /etc/smartdiscover.
        """
        [exec_start] = self.directives()["Service"]["ExecStart"]
        self.assertEqual(exec_start.split(), [
            "/opt/smartdiscover/venv/bin/twistd", "--nodaemon", "--pidfile=",
            "--logger=smartdiscover.logs.json_stdout", "smartdiscover",
            "--config", "/etc/smartdiscover/sd.ini"])

    def test_logger_name_resolves(self) -> None:
        """
        The C{--logger} name in the unit is importable, as twistd needs.
        """
        from twisted.python.reflect import namedAny
        [exec_start] = self.directives()["Service"]["ExecStart"]
        name = re.search(r"--logger=(\S+)", exec_start).group(1)  # type: ignore[union-attr]
        self.assertIs(namedAny(name), logs.json_stdout)

    def test_install(self) -> None:
        self.assertEqual(self.directives()["Install"]["WantedBy"], ["multi-user.target"])


class LogObserverTests(SynchronousTestCase):
    """
    L{logs.json_stdout} and L{logs.text_stdout}, as C{twistd --logger} calls
    them.
    """

    def observe(self, factory: Callable[[], ILogObserver]) -> str:
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        observer = factory()
        self.assertTrue(ILogObserver.providedBy(observer))
        log = Logger(namespace="smartdiscover.test", observer=observer)
        log.info("reloaded {count} users", count=3)
        log.debug("not shown {x}", x=1)
        log.warn("two\nlines")
        log.error("failed: {why}", why="because")
        return out.getvalue()

    def test_json_lines(self) -> None:
        """
        One JSON object per line, no record separator, debug events dropped.
        """
        output = self.observe(logs.json_stdout)
        self.assertNotIn("\x1e", output)
        lines = output.splitlines()
        self.assertEqual(len(lines), 3)
        events = [json.loads(line) for line in lines]
        self.assertEqual([e["log_level"]["name"] for e in events], ["info", "warn", "error"])
        self.assertEqual(events[0]["log_format"], "reloaded {count} users")
        self.assertEqual(events[0]["count"], 3)
        self.assertEqual(events[0]["log_namespace"], "smartdiscover.test")
        self.assertEqual(events[1]["log_format"], "two\nlines")

    def test_json_keeps_stdout_of_creation(self) -> None:
        """
        The observer writes to the C{sys.stdout} it was created with, not to
        whatever twistd later puts there.
        """
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        observer = logs.json_stdout()
        self.patch(sys, "stdout", io.StringIO())
        Logger(observer=observer).info("hello")
        self.assertEqual(json.loads(out.getvalue())["log_format"], "hello")

    def test_text(self) -> None:
        output = self.observe(logs.text_stdout)
        self.assertIn("[smartdiscover.test#info] reloaded 3 users", output)
        self.assertIn("[smartdiscover.test#error] failed: because", output)
        self.assertNotIn("not shown", output)
        self.assertEqual(len([line for line in output.splitlines()
                              if "[smartdiscover.test#" in line]), 3)
