"""
HTTP: SmartDiscover's authenticated POX answer against references serving
the same request over TLS with the same certificate, in one run:

- bare twisted.web (bench/http/bare.py) returning the same bytes,
- nginx (one worker) returning the same bytes as a static file,
- automx2 under gunicorn (2 workers) behind nginx (one worker) terminating
  TLS, answering the same POST from its SQLite database.

    python bench/http/run.py [--requests 15000] [--runs 3] [--soak 100000] [--reloads 100]

Keep-alive POSTs with h2load (--h1, 20 connections; SmartDiscover caches
the credentials after the first request) and a new connection per request
with wrk (Connection: close).  Prints requests/s, p50/p99 latency and
failures per server (medians of --runs), whether a sample answer is the
expected one, SmartDiscover's ratio to each reference, its memory before
and after --soak keep-alive requests, and the failures while it is sent
--reloads SIGHUPs under load.  Servers on CPU 0, load generators on CPU 1.
Needs h2load (nghttp2-client), wrk and nginx; automx2 and gunicorn are
installed into a virtualenv of their own on first use.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from automx2_ref import (Unavailable, check_answer, default_venv, ensure_venv,  # noqa: E402
                         start_automx2)
from load import Run, h2load, h2load_command, h2load_result, wrk_close, wrk_script  # noqa: E402
from servers import (BODY, PATH, ROOT, Processes, get_text, post, rss_mb,  # noqa: E402
                     smartdiscover_ini, start_bare, start_nginx, start_smartdiscover)

OURS = "smartdiscover"
AUTOMX2 = "automx2"


@dataclass
class Target:
    """A server to measure and the answer it must give."""
    name: str
    port: int
    expected: bytes
    runs: list[Run] = field(default_factory=list)     # keep-alive (h2load)
    closes: list[Run] = field(default_factory=list)   # new connections (wrk)
    soaked: list[Run] = field(default_factory=list)   # memory soak: only failures count
    answer: str = "not checked"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{PATH}"

    @property
    def failed(self) -> int:
        """Requests failed under keep-alive load, soak included."""
        return sum(r.failed for r in self.runs + self.soaked)


@dataclass
class Reloads:
    """SIGHUPs sent under keep-alive load and what the service did meanwhile."""
    signals: int
    load: Run
    applied: int | None     # from /metrics; None when the counter is not exported
    refused: int | None
    answer: str


def main() -> int:
    args = arguments()
    for tool in ("h2load", "wrk", "nginx"):
        if not shutil.which(tool):
            print(f"{tool} is missing: apt-get install nghttp2-client wrk nginx", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    work.chmod(0o755)  # nginx's workers (not root) read the answer file
    processes: Processes = []
    try:
        return measure(args, work, processes)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=15000,
                        help="keep-alive POSTs per h2load run (default 15000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per server and kind (default 3)")
    parser.add_argument("--seconds", type=int, default=5, help="of each wrk run (default 5)")
    parser.add_argument("--soak", type=int, default=100000,
                        help="keep-alive POSTs between SmartDiscover's two memory readings "
                             "(default 100000; 0: no memory check)")
    parser.add_argument("--reloads", type=int, default=100,
                        help="SIGHUPs sent to SmartDiscover under load (default 100; 0: none)")
    parser.add_argument("--reload-interval", type=float, default=0.05,
                        help="seconds between SIGHUPs (default 0.05)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 2),
                        help="also measure SmartDiscover with [server] workers = N on "
                             "every CPU (default 2 on a multi-core machine; 1: not)")
    parser.add_argument("--no-automx2", action="store_true", help="leave automx2 out")
    parser.add_argument("--automx2-venv", type=Path, default=default_venv(),
                        help=f"its virtualenv, created when missing (default {default_venv()})")
    args = parser.parse_args()
    if args.runs < 1 or args.requests < 1:
        parser.error("--runs and --requests must be at least 1")
    return args


def measure(args: argparse.Namespace, work: Path, processes: Processes) -> int:
    """Start everything, measure, print; 1 when SmartDiscover failed anything."""
    port, twistd = start_smartdiscover(work, processes)
    cafile = work / "tls" / "server.crt"
    memory = [(0, rss_mb(twistd.pid))]  # right after start, before any request
    status, answer = post(port, cafile)
    if status != 200:
        print(f"SmartDiscover answered {status}: {answer[:300]!r}", file=sys.stderr)
        return 1
    (work / "answer.xml").write_bytes(answer)  # the references serve exactly these bytes
    (work / "body.xml").write_bytes(BODY)
    ours = Target(OURS, port, answer)
    if args.soak:
        memory += soak(ours, twistd.pid, work, args.soak)
    targets, versions = references(args, work, ours, processes)
    throughput(targets, args, work)
    for target in targets:
        target.answer = sample(target, cafile)
    reloads = None
    if args.reloads:
        reloads = reload_under_load(ours, twistd.pid, work, args.reloads, args.reload_interval)
    report(args, versions, targets, memory, reloads)
    return 0 if healthy(ours, reloads) else 1


def references(args: argparse.Namespace, work: Path, ours: Target,
               processes: Processes) -> tuple[list[Target], list[str]]:
    """
    Started after the soak, so that SmartDiscover's memory is read with
    nothing else running; automx2 is left out, with the reason printed,
    when it cannot be had.

    @return: SmartDiscover and the references, and the versions measured.
    """
    targets = [ours]
    if args.workers > 1:
        port, _ = start_smartdiscover(work, processes, args.workers)
        status, answer = post(port, work / "tls" / "server.crt")
        if status != 200 or answer != ours.expected:
            raise RuntimeError(f"SmartDiscover with {args.workers} workers answered {status}")
        targets.append(Target(f"{OURS} x{args.workers}", port, ours.expected))
    targets += [Target("bare twisted.web", start_bare(work, processes), ours.expected),
               Target("nginx", start_nginx(work, processes), ours.expected)]
    versions = tool_versions()
    if not args.no_automx2:
        try:
            versions.append(ensure_venv(args.automx2_venv))
            port, answer = start_automx2(args.automx2_venv, work, work / "tls", processes)
            targets.append(Target(AUTOMX2, port, answer))
        except Unavailable as e:
            print(f"automx2 left out: {e}")
    return targets, versions


def throughput(targets: list[Target], args: argparse.Namespace, work: Path) -> None:
    """
    A warm-up run each (not counted), then --runs rounds in which every
    server is measured in turn, so that drift on the machine hits them alike.
    """
    body, log = work / "body.xml", work / "h2load.log"
    script = wrk_script(work, body)
    for target in targets:
        h2load(target.url, body, log, min(args.requests, 2000))
    for _ in range(args.runs):
        for target in targets:
            target.runs.append(h2load(target.url, body, log, args.requests))
        for target in targets:
            target.closes.append(wrk_close(target.url, args.seconds, script))


def soak(target: Target, pid: int, work: Path, total: int) -> list[tuple[int, float]]:
    """
    C{total} keep-alive POSTs in ten steps, RSS after each: growth that
    stops after the first steps is warm-up (TLS, caches), growth that goes
    on is a leak.
    """
    readings, done = [], 0
    for step in range(10):
        count = total // 10 + (1 if step < total % 10 else 0)
        if count:
            run = h2load(target.url, work / "body.xml", work / "h2load.log", count)
            target.soaked.append(run)
            done += count
            readings.append((done, rss_mb(pid)))
    return readings


def sample(target: Target, cafile: Path) -> str:
    """
    One POST after the load, and the answer bytes h2load counted: the
    answer must be the expected one, byte for byte, and every 2xx answer
    under load as long as it.
    """
    status, answer = post(target.port, cafile)
    if target.name == AUTOMX2 and check_answer(status, answer):
        return f"wrong: {check_answer(status, answer)}"
    if status != 200:
        return f"wrong: status {status}"
    if answer != target.expected:
        return f"wrong: {len(answer)} bytes differ from the {len(target.expected)} expected"
    sizes = [r for r in target.runs + target.soaked if r.body_bytes >= 0]
    if any(r.body_bytes != r.answered * len(answer) for r in sizes):
        return "wrong: answers under load not all of the expected length"
    return "same bytes" if target.name == OURS or target.name == AUTOMX2 else "same bytes as ours"


def reload_under_load(target: Target, pid: int, work: Path, count: int,
                      interval: float) -> Reloads:
    """
    SIGHUP C{count} times while h2load sends keep-alive POSTs; before each
    signal the configuration file changes (a comment alternates, written
    atomically as an administrator's tool would), so every reload reads and
    builds a new model rather than finding the same file.
    """
    before = reload_counters(target.port, work / "tls" / "server.crt")
    seconds = math.ceil(count * interval + 3)
    log = work / "reload-h2load.log"
    h2 = subprocess.Popen(h2load_command(target.url, work / "body.xml", log, seconds=seconds),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)  # the connections are open and busy before the first signal
    ini = work / "sd.ini"
    for i in range(count):
        fresh = work / "sd.ini.new"
        fresh.write_text(smartdiscover_ini(work, target.port, comment=f"reload {i % 2}"))
        os.replace(fresh, ini)
        os.kill(pid, signal.SIGHUP)
        time.sleep(interval)
    out, err = h2.communicate(timeout=seconds + 60)
    if h2.returncode != 0:
        raise RuntimeError(f"h2load failed during the reloads: {err.strip()}")
    load = h2load_result(out, log)
    after = settled_counters(target.port, work / "tls" / "server.crt")
    applied = refused = None
    if before is not None and after is not None:
        applied, refused = after[0] - before[0], after[1] - before[1]
    return Reloads(count, load, applied, refused, sample(target, work / "tls" / "server.crt"))


def reload_counters(port: int, cafile: Path) -> tuple[int, int] | None:
    """Reloads applied and refused so far, from /metrics (loopback may read it)."""
    text = get_text(port, "/metrics", cafile)
    applied = re.search(r"^smartdiscover_config_reloads(?:_total)? (\S+)", text, re.M)
    refused = re.search(r"^smartdiscover_config_reload_failures(?:_total)? (\S+)", text, re.M)
    if applied is None or refused is None:
        return None
    return int(float(applied.group(1))), int(float(refused.group(1)))


def settled_counters(port: int, cafile: Path) -> tuple[int, int] | None:
    """The counters once the last reload (folded signals included) has finished."""
    last = reload_counters(port, cafile)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = reload_counters(port, cafile)
        if now == last:
            return now
        last = now
    return last


def tool_versions() -> list[str]:
    """What was measured: SmartDiscover's commit and the tools' versions."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "smartdiscover"],
                           capture_output=True, text=True).stdout.strip()
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    h2 = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return [f"SmartDiscover {commit}{' with uncommitted changes' if dirty else ''}",
            nginx.strip().replace("nginx version: ", ""), h2.strip().replace("h2load ", "h2load/"),
            "wrk " + (wrk.split()[1] if len(wrk.split()) > 1 else "?")]


def median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def ratio(mine: list[Run], other: list[Run]) -> str:
    """
    The ratio of the medians, and the range of the ratios within each
    round: the two servers of a round were measured minutes apart, not a
    whole run apart, so the range shows the spread without the drift.
    """
    overall = median([r.rate for r in mine]) / median([r.rate for r in other])
    rounds = sorted(a.rate / b.rate for a, b in zip(mine, other) if b.rate)
    spread = f" (rounds {rounds[0]:.2f}-{rounds[-1]:.2f})" if len(rounds) > 1 else ""
    return f"{overall:.2f}{spread}"


def report(args: argparse.Namespace, versions: list[str], targets: list[Target],
           memory: list[tuple[int, float]], reloads: Reloads | None) -> None:
    print(", ".join(versions))
    print(f"keep-alive: h2load --h1, 20 connections, {args.requests} POSTs per run; new "
          f"connections: wrk, 20 connections, {args.seconds} s per run; medians of "
          f"{args.runs} runs; servers on CPU 0 (x{args.workers}: every CPU), load on CPU 1")
    print()
    print(f"{'':18} {'keep-alive':>10} {'p50':>7} {'p99':>7} {'failed':>7}  "
          f"{'new conn':>8} {'failed':>7}  answer")
    print(f"{'':18} {'req/s':>10} {'ms':>7} {'ms':>7} {'':>7}  {'req/s':>8} {'':>7}")
    for t in targets:
        runs = t.runs
        print(f"{t.name:18} {median([r.rate for r in runs]):10.0f} "
              f"{median([r.p50_ms for r in runs]):7.2f} {median([r.p99_ms for r in runs]):7.2f} "
              f"{t.failed:7d}  {median([r.rate for r in t.closes]):8.0f} "
              f"{sum(r.failed for r in t.closes):7d}  {t.answer}")
    print()
    for t in targets:
        print(f"{t.name:18} runs: keep-alive {', '.join(f'{r.rate:.0f}' for r in t.runs)}; "
              f"new connection {', '.join(f'{r.rate:.0f}' for r in t.closes)}")
    print()
    ours = [t for t in targets if t.name.startswith(OURS)]
    for mine in ours:
        for other in targets[len(ours):]:
            print(f"{mine.name} / {other.name}: "
                  f"keep-alive {ratio(mine.runs, other.runs)}, "
                  f"new connection {ratio(mine.closes, other.closes)}")
    if len(memory) > 1:
        (_, start), (total, end) = memory[0], memory[-1]
        print()
        print(f"memory: {OURS} RSS {start:.1f} MB after start, {end:.1f} MB after {total} "
              f"keep-alive requests: growth {end - start:+.1f} MB")
        print("  RSS MB by requests: " + ", ".join(f"{n} {mb:.1f}" for n, mb in memory))
    if reloads is not None:
        print()
        applied = ("not exported" if reloads.applied is None else
                   f"{reloads.applied} applied, {reloads.refused} refused")
        print(f"reloads: {reloads.signals} SIGHUPs, {args.reload_interval * 1000:.0f} ms apart, "
              f"under keep-alive load: {reloads.load.answered} requests answered, "
              f"{reloads.load.failed} failed, p50 {reloads.load.p50_ms:.2f} ms, "
              f"p99 {reloads.load.p99_ms:.2f} ms; reloads ({applied}; signals that arrive "
              f"during a reload fold into one); afterwards: {reloads.answer}")


def healthy(ours: Target, reloads: Reloads | None) -> bool:
    """SmartDiscover failed no request and gave the expected answer throughout."""
    ok = not ours.failed and not any(r.failed for r in ours.closes) and (
        ours.answer == "same bytes")
    if reloads is not None:
        ok = ok and not reloads.load.failed and reloads.answer == "same bytes" and (
            not reloads.refused)
    return ok


if __name__ == "__main__":
    sys.exit(main())
