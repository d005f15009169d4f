"""
C{[server] workers = N} in the real service: processes sharing the HTTPS
port, replaced when they die, stopping with the first one, and counting
failures towards one guard (the pool alone is L{tests.unit.test_workers}).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import time
from pathlib import Path


from tests.helpers import PROJECT_ROOT, edit, write_config
from tests.integration import SynchronousTestCase
from tests.unit.test_workers import WAIT
from tests.integration.service import RunningService, free_port
from tests.integration.test_service import basic, post_status

AUTHORIZATION = basic("demo@example.test", "demo-password")


def post(port: int, cafile: Path, authorization: str = AUTHORIZATION) -> int:
    context = ssl.create_default_context(cafile=str(cafile))
    return post_status(http.client.HTTPSConnection("127.0.0.1", port, context=context,
                                                   timeout=15), authorization)


def alive(pid: int) -> bool:
    """
    Whether C{pid} runs (a zombie waiting for its parent does not).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class WorkersServiceTests(SynchronousTestCase):
    """
    The real service with C{workers = 2}: two processes answer on one port.
    """

    auth = ""  # extra [auth] lines

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).absolute()
        self.port = free_port()
        ini = edit("https = ssl:8443:", f"https = ssl:{self.port}:interface=127.0.0.1:",
                   edit("ttl = 1\n", "ttl = 1\nworkers = 2\n"))
        ini = edit("[auth]\n", "[auth]\n" + self.auth, ini)
        # The shipped demo password, so that the log shows who checked it.
        passwd = PROJECT_ROOT / "etc" / "users.passwd"
        self.config = write_config(self.directory, ini, passwd.read_text())
        self.service = RunningService(self.config, self.port)
        self.addCleanup(self.service.stop)
        self.cafile = self.directory / "tls" / "server.crt"
        self.worker_pid = self.wait_for(r"worker 1 started: pid=(\d+)")
        self.wait_for(r"\[worker-1 [^\]]*\] SmartSite \(TLS\) starting")

    def wait_for(self, pattern: str, after: int = 0) -> int:
        """
        Until the log matches C{pattern} beyond offset C{after}; the first
        group as a number, if any.
        """
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            match = re.search(pattern, self.service.log()[after:])
            if match is not None:
                return int(match.group(1)) if match.groups() else 0
            time.sleep(0.05)
        self.fail(f"no {pattern!r} in the log:\n{self.service.log()}")

    def test_both_processes_answer(self) -> None:
        """
        New connections are answered by the first process and by the
        worker: each logs its own password check (the cache is per process).
        """
        statuses = [post(self.port, self.cafile) for _ in range(24)]
        self.assertEqual(statuses, [200] * 24)
        log = self.service.log()
        self.assertRegex(log, r"\[worker-1 smartdiscover\.auth\.guard\.Guard#info\] "
                              r"authentication succeeded")
        self.assertRegex(log, r"\[smartdiscover\.auth\.guard\.Guard#info\] "
                              r"authentication succeeded")

    def test_sighup_reloads_every_process(self) -> None:
        """
        SIGHUP to the first process reloads it and the worker.
        """
        self.service.reload("reloaded")
        self.wait_for(r"\[worker-1 [^\]]*\] reloaded .*generation 2")

    def test_changed_number_applies_at_restart(self) -> None:
        """
        A reload with another number of workers says it needs a restart
        and keeps the processes it has.
        """
        self.config.write_text(self.config.read_text().replace("workers = 2", "workers = 3"))
        self.service.reload("reloaded")
        self.wait_for(r"\[server\] workers changed to 3: restart to apply")
        self.assertEqual(self.service.log().count("started: pid="), 1)

    def test_dead_worker_replaced_without_losing_connections(self) -> None:
        """
        A killed worker is started again; connections that arrive meanwhile
        wait in its socket's queue and are answered.
        """
        offset = len(self.service.log())
        os.kill(self.worker_pid, signal.SIGKILL)
        statuses = [post(self.port, self.cafile) for _ in range(24)]
        self.assertEqual(statuses, [200] * 24)
        self.wait_for(r"worker 1 exited", offset)
        replacement = self.wait_for(r"worker 1 started: pid=(\d+)", offset)
        self.assertNotEqual(replacement, self.worker_pid)

    def test_workers_stop_with_the_first_process(self) -> None:
        """
        SIGTERM to the first process stops the worker too, cleanly.
        """
        self.assertTrue(alive(self.worker_pid))
        # twistd ends as the signal it stopped on, as the default action would.
        self.assertEqual(self.service.stop(), -signal.SIGTERM)
        deadline = time.monotonic() + WAIT
        while alive(self.worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(alive(self.worker_pid))
        self.assertIn("worker 1 stopped", self.service.log())
        self.assertNotIn("worker 1 exited", self.service.log())

    def test_worker_leaves_sigint_to_the_first_process(self) -> None:
        """
        Ctrl-C reaches every process of the group; a worker ignores it and
        is stopped by the first process instead, never restarted.
        """
        os.kill(self.worker_pid, signal.SIGINT)
        self.assertEqual(post(self.port, self.cafile), 200)
        time.sleep(0.5)
        self.assertTrue(alive(self.worker_pid))
        self.assertNotIn("worker 1 exited", self.service.log())

    def test_orphaned_worker_stops(self) -> None:
        """
        A first process killed without a chance to stop its workers does
        not leave them running.
        """
        self.service.process.kill()
        self.service.process.wait()
        deadline = time.monotonic() + WAIT
        while alive(self.worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(alive(self.worker_pid))


class SharedGuardTests(SynchronousTestCase):
    """
    The guard's counters add up across processes: failures on either count
    towards the one policy.
    """

    def setUp(self) -> None:
        self.running = WorkersServiceTests("setUp")
        self.running.auth = "network_failures = 3\nfailure_delay = 0\n"
        self.running.mktemp = self.mktemp  # type: ignore[method-assign]
        self.running.addCleanup = self.addCleanup  # type: ignore[method-assign]
        self.running.setUp()

    def test_network_locked_for_every_process(self) -> None:
        """
        Three wrong guesses from one network, wherever they land, lock it
        on both processes: the right password from there is refused
        twenty times in a row (new connections spread over both), without
        a password check; with counters per process, both would still let
        it in.
        """
        port, cafile = self.running.port, self.running.cafile
        guesses = [basic("demo@example.test", f"guess-{n}") for n in range(3)]
        self.assertEqual([post(port, cafile, guess) for guess in guesses], [401] * 3)
        time.sleep(0.5)  # the events cross between the processes
        self.assertEqual([post(port, cafile) for _ in range(20)], [401] * 20)
        log = self.running.service.log()
        self.assertRegex(log, r"\[worker-1 [^\]]*\] authentication failed: "
                              r"source=\S+ reason=network-throttled")
        self.assertRegex(log, r"\[smartdiscover\.auth\.guard\.Guard#info\] "
                              r"authentication failed: source=\S+ reason=network-throttled")
        self.assertEqual(log.count("reason=rejected"), 3)
