"""
The load generators, h2load (keep-alive) and wrk (a new connection per
request), and what is read from their output.

h2load's summary has no latency percentiles, so it writes one line per
request (--log-file: start, status, microseconds) and both the percentiles
and the count of 2xx answers come from there.  wrk sends a GET unless told
otherwise, so a Lua script makes it POST the same body with the same
headers as h2load.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from servers import AUTH, pinned

CLIENTS = 20  # connections, for both tools


@dataclass
class Run:
    """One load run against one server."""
    rate: float            # requests/s
    failed: int            # not answered with 2xx (errors, timeouts, 4xx, 5xx, never done)
    answered: int          # answered with 2xx
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    body_bytes: int = -1   # answer bytes received in all (h2load only; -1: unknown)


def h2load_command(url: str, body: Path, log: Path, requests: int | None = None,
                   seconds: float | None = None) -> list[str]:
    """
    Keep-alive POSTs over HTTP/1.1 and TLS: a fixed count, or for a duration.
    h2load appends to its log file, so an old one is removed first.
    """
    log.unlink(missing_ok=True)
    amount = ["-n", str(requests)] if seconds is None else ["-D", f"{seconds:g}"]
    return pinned(1, ["h2load", "--h1", *amount, "-c", str(CLIENTS), "-t", "1",
                      "-d", str(body), "--log-file", str(log),
                      "-H", f"Authorization: {AUTH}", "-H", "Content-Type: text/xml", url])


def h2load(url: str, body: Path, log: Path, requests: int) -> Run:
    """One keep-alive run of C{requests} POSTs."""
    out = subprocess.run(h2load_command(url, body, log, requests=requests),
                         capture_output=True, text=True, check=True).stdout
    return h2load_result(out, log, requests)


def h2load_result(out: str, log: Path, requests: int | None = None) -> Run:
    """
    Read h2load's summary and per-request log.

    A request counts as answered only with a 2xx line in the log; every
    other request that was asked for is a failure.  Timed (no count asked
    for), the requests still under way when the time is up are cut off by
    h2load, not failed by the server: there every request done without a
    2xx answer is a failure, and so is every one h2load counts as failed
    (a connection lost with requests still to send).  Latency percentiles
    are over the answered requests.
    """
    rate = float(re.search(r"([\d.]+) req/s", out).group(1))
    counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, "
                       r"(\d+) failed", out)
    done, reported = int(counts.group(1)), int(counts.group(2))
    data = re.search(r"traffic: .*?, \S+ \((\d+)\) data", out)
    durations = []
    for line in log.read_text().splitlines():
        _start, status, micros = line.split("\t")[:3]
        if 200 <= int(status) < 300:
            durations.append(int(micros))
    durations.sort()
    wanted = requests if requests is not None else done
    return Run(rate=rate, failed=max(wanted - len(durations), reported), answered=len(durations),
               p50_ms=percentile(durations, 50) / 1000, p99_ms=percentile(durations, 99) / 1000,
               body_bytes=int(data.group(1)) if data else -1)


def percentile(ordered: list[int], p: float) -> float:
    """Nearest rank: the smallest value that at least p% of the values do not exceed."""
    if not ordered:
        return math.nan
    return float(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)])


WRK_SCRIPT = """
wrk.method = "POST"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/xml"
wrk.headers["Authorization"] = "{auth}"
wrk.headers["Connection"] = "close"
"""


def wrk_script(work: Path, body: Path) -> Path:
    """The Lua script that makes wrk send the same POST as h2load, on a new connection."""
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=body, auth=AUTH))
    return script


def wrk_close(url: str, seconds: int, script: Path) -> Run:
    """
    New connections per request (a full TLS handshake each) for C{seconds}.
    Failures: wrk's "Non-2xx or 3xx responses" and all its socket errors.
    """
    out = subprocess.run(pinned(1, [
        "wrk", "-t1", f"-c{CLIENTS}", f"-d{seconds}s", "-s", str(script), url]),
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    wrong = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    lost = sum(int(n) for n in errors.groups()) if errors else 0
    return Run(rate=rate, failed=wrong + lost, answered=total - wrong)
