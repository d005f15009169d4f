"""
CPU per request without sockets or TLS: SmartDiscover's authenticated POX
answer against a stock twisted.web Site returning the same bytes, both fed
the same keep-alive request over an in-memory transport.

    python bench/http/inprocess.py [--requests 5000] [--rounds 3]

Prints the best of --rounds for each, in microseconds per request; the
difference is what SmartDiscover's own request path costs.  With
--profile, a cProfile listing of SmartDiscover's path follows.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.testing import StringTransport
from twisted.web import server

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bare import Fixed  # noqa: E402
from servers import AUTH, BODY, PATH, ROOT, free_port  # noqa: E402

sys.path.insert(0, str(ROOT))  # the working tree, as the servers bench/http starts

REQUEST = (f"POST {PATH} HTTP/1.1\r\nHost: mail.example.test\r\nAuthorization: {AUTH}\r\n"
           f"Content-Type: text/xml\r\nContent-Length: {len(BODY)}\r\n\r\n").encode() + BODY


class Transport(StringTransport):
    def setTcpNoDelay(self, enabled: bool) -> None:
        pass


def smartdiscover_site(work: Path) -> tuple[Any, Any]:
    """
    The service built from etc/sd.ini (a free loopback port, no plain HTTP,
    DNS or probes), started, and its HTTPS site.
    """
    from smartdiscover.tap import Options, makeService

    shutil.copy(ROOT / "etc" / "users.passwd", work / "users.passwd")
    ini = (ROOT / "etc" / "sd.ini").read_text()
    ini = re.sub(r"https = ssl:\d+:", f"https = ssl:{free_port()}:interface=127.0.0.1:", ini)
    ini = re.sub(r"(http|dns) = .*\n", "", ini)
    (work / "sd.ini").write_text(ini + "\n[health]\ninterval = 0\n")
    options = Options()
    options.parseOptions(["--config", str(work / "sd.ini")])
    service = makeService(options, reactor)
    service.startService()
    for child in service:
        factory = getattr(child, "factory", None)
        while factory is not None and not isinstance(factory, server.Site):
            factory = getattr(factory, "wrappedFactory", None)  # limits, TLS
        if factory is not None:
            return service, factory
    raise RuntimeError("no HTTPS site in the service")


def run(site: server.Site, requests: int) -> bytes:
    """
    C{requests} keep-alive requests on one connection; the last answer.
    """
    channel = site.buildProtocol(None)
    transport = Transport()
    channel.makeConnection(transport)
    last = b""
    for _ in range(requests):
        channel.dataReceived(REQUEST)
        last = transport.value()
        transport.clear()
    channel.connectionLost(None)
    return last


def first_answer(site: server.Site) -> bytes:
    """
    The first request, once its password check (bcrypt, in a thread) is done.
    """
    channel = site.buildProtocol(None)
    transport = Transport()
    channel.makeConnection(transport)
    channel.dataReceived(REQUEST)
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in transport.value() and time.monotonic() < deadline:
        reactor.iterate(0.01)
    head, _, body = transport.value().partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"SmartDiscover answered {head[:60]!r}")
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-inprocess-"))
    try:
        service, ours = smartdiscover_site(work)
        answer = first_answer(ours)
        bare = server.Site(Fixed(answer), parsePOSTFormSubmission=False)
        bare.log = lambda request: None
        for name, site in (("smartdiscover", ours), ("stock twisted.web", bare)):
            best = min(_timed(site, args.requests) for _ in range(args.rounds))
            print(f"{name:18} {best * 1e6:6.1f} us per request (best of {args.rounds} x "
                  f"{args.requests})")
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(run, ours, args.requests)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        service.stopService()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _timed(site: server.Site, requests: int) -> float:
    started = time.perf_counter()
    run(site, requests)
    return (time.perf_counter() - started) / requests


if __name__ == "__main__":
    sys.exit(main())
