"""
A password spray against the running service while a legitimate user logs
in from another network.

    python bench/auth/run.py [--seconds 60] [--attackers 20]

The attacker (127.0.0.1) sends wrong passwords as fast as its connections
allow, spraying over many user names and repeating some; the user
(127.0.1.2, another /24) asks with the right password twice a second.
Prints the user's latency (p50, p99, worst), the server's CPU use, and the
attacker's password verifications per minute (from the server's own log)
next to what the configured policy allows.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USER_SOURCE = "127.0.1.2"
BODY = (b'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.'
        b'com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>demo@'
        b'example.test</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/'
        b'exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
        b'</Request></Autodiscover>')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Client:
    def __init__(self, port: int, context: ssl.SSLContext, source: str) -> None:
        self.port, self.context, self.source = port, context, source
        self.connection: http.client.HTTPSConnection | None = None

    def post(self, header: str) -> int:
        for _ in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(
                    "127.0.0.1", self.port, context=self.context, timeout=30,
                    source_address=(self.source, 0))
            try:
                self.connection.request("POST", "/autodiscover/autodiscover.xml", body=BODY,
                                        headers={"Authorization": header,
                                                 "Content-Type": "text/xml"})
                response = self.connection.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
        return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--attackers", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    try:
        return run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace) -> int:
    port = free_port()
    shutil.copy(ROOT / "etc" / "users.passwd", work / "users.passwd")
    ini = (ROOT / "etc" / "sd.ini").read_text()
    ini = re.sub(r"https = ssl:\d+:", f"https = ssl:{port}:interface=127.0.0.1:", ini)
    ini = re.sub(r"http = tcp:\d+\n", "", ini)
    ini = re.sub(r"dns = .*\n", "", ini)
    (work / "sd.ini").write_text(ini)
    log = (work / "twistd.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
         "--pidfile=", "smartdiscover", "--config", str(work / "sd.ini")],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (work / "tls" / "server.crt").exists() or _closed(port):
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(work / "tls" / "server.crt"))
        context.check_hostname = False
        stop = time.monotonic() + args.seconds
        cpu_before = cpu_seconds(server.pid)
        wall_before = time.monotonic()
        attempts = [0]

        def attack(number: int) -> None:
            client = Client(port, context, "127.0.0.1")
            i = 0
            while time.monotonic() < stop:
                user = f"user{(number * 1000 + i) % 300}@example.test"
                password = f"Guess{i % 7}!"  # some guesses repeat
                client.post(authorization(user if i % 3 else "demo@example.test", password))
                attempts[0] += 1
                i += 1

        latencies: list[float] = []
        failures = [0]

        def user() -> None:
            client = Client(port, context, USER_SOURCE)
            header = authorization("demo@example.test", "demo-password")
            while time.monotonic() < stop:
                started = time.monotonic()
                status = client.post(header)
                latencies.append(time.monotonic() - started)
                if status != 200:
                    failures[0] += 1
                time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))

        threads = [threading.Thread(target=attack, args=(n,)) for n in range(args.attackers)]
        threads.append(threading.Thread(target=user))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu = (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - wall_before)
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    text = (work / "twistd.log").read_text(errors="replace")
    verified = len(re.findall(r"authentication failed: source=127\.0\.0\.1 reason=rejected", text))
    minutes = args.seconds / 60
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"legitimate user ({USER_SOURCE}): {len(latencies)} logins, {failures[0]} failed, "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"worst {latencies[-1] * 1000:.0f} ms")
    print(f"attacker (127.0.0.1, {args.attackers} connections): {attempts[0]} attempts, "
          f"{verified} password verifications = {verified / minutes:.1f} per minute "
          "(policy: network_failures=5 per lock, locks of 60 s doubling to 1800 s)")
    print(f"server CPU: {cpu * 100:.0f} % of one core over {args.seconds:.0f} s")
    return 0


def _closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


if __name__ == "__main__":
    sys.exit(main())
