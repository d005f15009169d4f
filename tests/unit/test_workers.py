"""
C{[server] workers = N}: processes sharing the HTTPS port through
SO_REUSEPORT, their supervision and their logs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from twisted.internet.error import ProcessTerminated
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger, LogLevel, eventAsJSON
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from smartdiscover.config import ConfigError, load
from smartdiscover.workers.guard_link import WorkerGuardLink, apply_line, decode, encode
from smartdiscover.workers.pool import WorkerPool, _WorkerProtocol
from smartdiscover.workers.sockets import shared_listening_sockets
from tests.helpers import edit, write_config

WAIT = 30.0


class WorkersConfigTests(SynchronousTestCase):
    """
    The C{workers} key of [server].
    """

    def load(self, value: str) -> int:
        ini = edit("ttl = 1\n", f"ttl = 1\nworkers = {value}\n")
        return load(write_config(self.mktemp(), ini)).workers

    def test_default_is_one(self) -> None:
        self.assertEqual(load(write_config(self.mktemp())).workers, 1)

    def test_number(self) -> None:
        self.assertEqual(self.load("4"), 4)

    def test_auto_is_one_per_usable_cpu(self) -> None:
        self.assertEqual(self.load("auto"), min(len(os.sched_getaffinity(0)), 64))

    def test_out_of_range_or_not_a_number(self) -> None:
        for value in ("0", "65", "-1", "two", "1.5"):
            error = self.assertRaises(ConfigError, self.load, value)
            self.assertIn("workers", str(error))
            self.assertIn("1-64", str(error))


class SharedSocketsTests(SynchronousTestCase):
    """
    One SO_REUSEPORT group: every socket takes a share of new connections.
    """

    def test_connections_spread_over_the_group(self) -> None:
        """
        Forty connections from distinct source ports reach both sockets
        (all on one would happen with probability 2**-39).
        """
        sockets = shared_listening_sockets("127.0.0.1", 0, 64, 2)
        for sock in sockets:
            self.addCleanup(sock.close)
        port = sockets[0].getsockname()[1]
        self.assertEqual(sockets[1].getsockname()[1], port)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        for client in clients:
            self.addCleanup(client.close)
        accepted = []
        for sock in sockets:
            count = 0
            while True:
                try:
                    connection, _ = sock.accept()
                except BlockingIOError:
                    break
                connection.close()
                count += 1
            accepted.append(count)
        self.assertEqual(sum(accepted), 40)
        self.assertTrue(all(accepted), accepted)

    def test_port_taken_by_another_group(self) -> None:
        """
        A port another socket holds without SO_REUSEPORT is refused, and no
        socket of the group is left open.
        """
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen(1)
            port = other.getsockname()[1]
            self.assertRaises(OSError, shared_listening_sockets, "127.0.0.1", port, 8, 3)


class RelayTests(SynchronousTestCase):
    """
    A worker's log reaches the first process's log, marked with the worker.
    """

    def setUp(self) -> None:
        self.events: list[dict] = []
        pool = WorkerPool("127.0.0.1", 0, 8, 2, None, Path("sd.ini"), None)  # type: ignore[arg-type]
        pool._log = Logger(namespace="smartdiscover.workers",  # type: ignore[misc]
                           observer=self.events.append)
        self.relay = _WorkerProtocol(pool, 1)

    def test_json_events_relayed_with_the_worker(self) -> None:
        """
        Events keep their format and fields; split across reads, they are
        put back together.
        """
        line = ("\x1e" + eventAsJSON({"log_format": "authentication failed: source={source}",
                                      "source": "192.0.2.1", "log_level": LogLevel.info,
                                      "log_namespace": "smartdiscover.auth.guard.Guard",
                                      "log_time": 1.0}) + "\n").encode()
        self.relay.childDataReceived(1, line[:10])
        self.assertEqual(self.events, [])
        self.relay.childDataReceived(1, line[10:])
        [event] = self.events
        self.assertEqual(event["source"], "192.0.2.1")
        self.assertEqual(event["smartdiscover_worker"], 1)
        self.assertEqual(event["log_system"], "worker-1 smartdiscover.auth.guard.Guard#info")

    def test_other_output_relayed_as_text(self) -> None:
        """
        Anything that is not a JSON event (a traceback on standard error, a
        stray print) is logged as a warning line, never dropped.
        """
        self.relay.childDataReceived(2, b"Traceback (most recent call last):\nboom")
        self.relay.childDataReceived(1, b"{not json}\n")
        texts = [event["line"] for event in self.events]
        self.assertEqual(texts, ["Traceback (most recent call last):", "{not json}"])
        self.relay.processEnded(Failure(Exception("ended")))
        self.assertIn("boom", [event.get("line") for event in self.events])


class FakeProcess:
    """
    A spawned worker: the signals it got; L{end} as if it died.
    """

    def __init__(self, pid: int, protocol: Any) -> None:
        self.pid = pid
        self.protocol = protocol
        self.signals: list[str] = []
        self.written: list[bytes] = []

    def writeToChild(self, fd: int, data: bytes) -> None:
        assert fd == 0
        self.written.append(data)

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)

    def end(self) -> None:
        self.protocol.processEnded(Failure(ProcessTerminated(signal=9)))


class SpawningClock(Clock):
    """
    A clock whose spawnProcess records what would have run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[FakeProcess, list[str], dict, dict]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], env: dict,
                     childFDs: dict) -> FakeProcess:
        process = FakeProcess(1000 + len(self.spawned), protocol)
        self.spawned.append((process, args, env, childFDs))
        return process


class WorkerPoolTests(SynchronousTestCase):
    """
    The pool's supervision on a fake clock: what it starts, restarts,
    signals and waits for.
    """

    def setUp(self) -> None:
        self.reactor = SpawningClock()
        self.pool = WorkerPool("127.0.0.1", 0, 8, 3, None, Path("/etc/sd.ini"),  # type: ignore[arg-type]
                               self.reactor, executable="/usr/bin/python3")
        self.pool._sockets = shared_listening_sockets("127.0.0.1", 0, 8, 3)
        self.addCleanup(self.pool._close_sockets)
        self.pool.startService()

    def last(self, index: int) -> FakeProcess:
        return self.pool.processes[index]

    def test_one_process_per_other_socket(self) -> None:
        """
        Workers 1 and 2 run the worker module on the configuration, each
        with its own socket as descriptor 3, without systemd's variables.
        """
        os.environ["NOTIFY_SOCKET"] = "/run/systemd/notify"
        self.addCleanup(os.environ.pop, "NOTIFY_SOCKET")
        reactor = SpawningClock()
        pool = WorkerPool("127.0.0.1", 0, 8, 3, None, Path("/etc/sd.ini"),  # type: ignore[arg-type]
                          reactor, executable="/usr/bin/python3")
        pool._sockets = self.pool._sockets
        pool.startService()
        self.assertEqual([args for _, args, _, _ in reactor.spawned], [
            ["/usr/bin/python3", "-m", "smartdiscover.workers.child",
             "--config", "/etc/sd.ini", "--index", str(index)] for index in (1, 2)])
        self.assertEqual([fds[3] for _, _, _, fds in reactor.spawned],
                         [pool._sockets[1].fileno(), pool._sockets[2].fileno()])
        for _, _, env, _ in reactor.spawned:
            self.assertNotIn("NOTIFY_SOCKET", env)

    def test_restart_backs_off_while_a_worker_dies_at_start(self) -> None:
        """
        A worker dying at once is started again after 1, 2, 4 s; one that
        lived a while after 1 s again.
        """
        delays = []
        for _ in range(3):
            self.last(1).end()
            [call] = [c for c in self.reactor.getDelayedCalls() if c.active()]
            delays.append(call.getTime() - self.reactor.seconds())
            self.reactor.advance(delays[-1])
        self.assertEqual(delays, [1.0, 2.0, 4.0])
        self.reactor.advance(60)
        self.last(1).end()
        [call] = [c for c in self.reactor.getDelayedCalls() if c.active()]
        self.assertEqual(call.getTime() - self.reactor.seconds(), 1.0)
        self.assertEqual(sorted(self.pool.processes), [2])

    def test_reload_signals_every_worker(self) -> None:
        """
        A reload of the first process is a SIGHUP to every worker.
        """
        self.pool.reload()
        self.assertEqual([self.last(i).signals for i in (1, 2)], [["HUP"], ["HUP"]])

    def test_stop_terminates_then_kills_and_waits(self) -> None:
        """
        Stopping sends SIGTERM, SIGKILL to a worker still there after the
        grace period, and finishes once every worker has ended; nothing is
        started again.
        """
        first, second = self.last(1), self.last(2)
        done = self.pool.stopService()
        self.assertEqual((first.signals, second.signals), (["TERM"], ["TERM"]))
        first.end()
        self.assertNoResult(done)
        self.reactor.advance(10)
        self.assertEqual(second.signals, ["TERM", "KILL"])
        second.end()
        self.successResultOf(done)
        self.assertEqual(self.pool._sockets, [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(len(self.reactor.spawned), 2)


class RecordingGuard:
    """
    Stands in for a L{Guard}: what was applied, and its event listeners.
    """

    def __init__(self) -> None:
        self.applied: list[Any] = []
        self.listeners: list[Any] = []

    def apply(self, event: Any) -> None:
        self.applied.append(event)

    def on_event(self, listener: Any) -> None:
        self.listeners.append(listener)


class GuardLinkTests(SynchronousTestCase):
    """
    Guard events between processes: their encoding, the worker's end and
    the first process's relay.
    """

    EVENTS = [("failed", "192.0.2.7", "demo@example.test", ""),
              ("failed", "2001:db8:0:1::5", "jörg@example.test", "address"),
              ("verified", "198.51.100.3", "demo@example.test", ""),
              ("seen", "198.51.100.4", "demo@example.test", ""),
              ("failed", "192.0.2.8", "demo@example.test", "network")]

    def test_round_trip(self) -> None:
        for event in self.EVENTS:
            self.assertEqual(decode(encode(event)), event)
            self.assertNotIn(b"\n", encode(event))

    def test_hostile_lines(self) -> None:
        """
        Anything but an event is refused with ValueError, never applied.
        """
        for line in (b"", b"{", b"[]", b"null", b'["failed", "n", "a"]',
                     b'["deleted", "n", "a", ""]', b'["failed", 5, "a", ""]',
                     b'["failed", {"hex": "zz"}, "a", ""]', b'["failed", "n", 7, ""]',
                     b'["failed", "n", "a", "yes"]', b'["failed", "n", "a", false]',
                     b'["seen", "n", "a", "address"]', b'["failed", "n", "a", "", 1]',
                     b"\xff\xfe"):
            self.assertRaises(ValueError, decode, line)
        guard = RecordingGuard()
        self.assertIsNone(apply_line(guard, b"garbage"))  # type: ignore[arg-type]
        self.assertEqual(guard.applied, [])

    def test_worker_end(self) -> None:
        """
        The worker sends its guard's events, applies the first process's,
        ignores garbage, and hears when the first process is gone.
        """
        guard, gone = RecordingGuard(), []
        link = WorkerGuardLink(guard, lambda: gone.append(True))  # type: ignore[arg-type]
        transport = StringTransport()
        link.makeConnection(transport)
        [listener] = guard.listeners
        listener(self.EVENTS[0])
        self.assertEqual(transport.value(), encode(self.EVENTS[0]) + b"\n")
        link.dataReceived(encode(self.EVENTS[1]) + b"\nnot json\n" + encode(self.EVENTS[2])
                          + b"\n")
        self.assertEqual(guard.applied, self.EVENTS[1:3])
        # The longest account a Basic header can carry passes; a line over
        # the limit is dropped, and the link stays.
        longest = ("failed", "192.0.2.7", "ü" * 8192 + "@example.test", "")
        link.dataReceived(encode(longest) + b"\n" + b"x" * 70000 + b"\n")
        self.assertEqual(guard.applied[-1], longest)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(gone, [])
        link.connectionLost(None)
        self.assertEqual(gone, [True])

    def test_first_process_relays(self) -> None:
        """
        An event from worker 1 is counted by the first process and passed
        to worker 2, not back to 1; the first process's own go to both.
        """
        guard = RecordingGuard()
        reactor = SpawningClock()
        pool = WorkerPool("127.0.0.1", 0, 8, 3, None, Path("/etc/sd.ini"),  # type: ignore[arg-type]
                          reactor, guard=guard)  # type: ignore[arg-type]
        pool._sockets = shared_listening_sockets("127.0.0.1", 0, 8, 3)
        self.addCleanup(pool._close_sockets)
        pool.startService()
        first, second = pool.processes[1], pool.processes[2]
        line = encode(self.EVENTS[0])
        first.protocol.childDataReceived(4, line[:5])
        first.protocol.childDataReceived(4, line[5:] + b"\n")
        self.assertEqual(guard.applied, [self.EVENTS[0]])
        self.assertEqual((first.written, second.written), ([], [line + b"\n"]))
        [listener] = guard.listeners
        listener(self.EVENTS[2])
        own = encode(self.EVENTS[2]) + b"\n"
        self.assertEqual((first.written, second.written), ([own], [line + b"\n", own]))
