"""
Runs the real service, C{twistd -n smartdiscover}, as a child process on
loopback for integration tests.
"""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import PROJECT_ROOT

START_TIMEOUT = 30.0


def free_port() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on right now.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningService:
    """
    One C{twistd} process serving the configuration at C{config}.
    """

    def __init__(self, config: Path, port: int, descriptors: int | None = None) -> None:
        """
        @param descriptors: the service's C{RLIMIT_NOFILE} (soft and hard),
            or L{None} for this process's.
        """
        self.config = config
        self.port = port
        self.log_path = config.parent / "twistd.log"
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        self._log = self.log_path.open("wb")

        def limit() -> None:
            if descriptors is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

        self.process = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=", "smartdiscover", "--config", str(config)],
            cwd=str(config.parent), env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=limit)
        self._wait_listening()

    def descriptors(self) -> int:
        """
        How many file descriptors the service holds open now.
        """
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def _wait_listening(self) -> None:
        """
        Until the reactor runs: the port accepts before that (services bind
        in startService), but only a running reactor answers, and only then
        are its SIGTERM/SIGINT handlers installed.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"twistd exited with {self.process.returncode}:\n{self.log()}")
            try:
                connection = self.probe_connection()
                connection.request("GET", "/health/live")
                connection.getresponse().read()
                connection.close()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"twistd did not listen on {self.port}:\n{self.log()}")

    def probe_connection(self) -> http.client.HTTPConnection:
        """
        The unverified HTTPS connection that start-up waits for.
        """
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=2)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def reload(self, expect: str, timeout: float = 15.0) -> None:
        """
        Send SIGHUP and wait until the log shows the outcome C{expect}
        ("reloaded" or "reload failed") once more than before.
        """
        before = self.log().count(expect)
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(expect) > before:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"twistd died on SIGHUP:\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"no {expect!r} in the log after SIGHUP:\n{self.log()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def free_udp_port() -> int:
    """
    A port on 127.0.0.1 free for both UDP and TCP right now.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            number = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", number))
                except OSError:
                    continue
            return number

