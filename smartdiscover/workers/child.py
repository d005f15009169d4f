"""
A worker process: C{python -m smartdiscover.workers.child --config PATH
--index N}, started by the first process's L{WorkerPool}.

It builds the same HTTPS service as the first process on the listening
socket it inherits (file descriptor 3), logs one JSON event per line on
standard output for the first process to relay, exchanges guard events
with it over standard input and file descriptor 4, reloads on SIGHUP and
stops when its standard input closes (the first process is gone).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartdiscover-worker")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--index", required=True, type=int)
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group: the first
    # process stops its workers itself (SIGTERM), in order.  (Twisted leaves
    # an ignored SIGINT ignored.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from twisted.internet import reactor
    from twisted.internet.error import ReactorNotRunning
    from twisted.internet.stdio import StandardIO
    from twisted.logger import Logger, globalLogBeginner

    from smartdiscover.config import ConfigError, load
    from smartdiscover.logs import json_stdout
    from smartdiscover.tap import build_service
    from smartdiscover.workers.guard_link import WorkerGuardLink
    from smartdiscover.workers.pool import GUARD_FD, SOCKET_FD

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    globalLogBeginner.beginLoggingTo([json_stdout()], redirectStandardIO=False)
    log = Logger(namespace="smartdiscover.workers")
    try:
        model = load(args.config)
    except ConfigError as e:
        log.error("worker {index}: invalid configuration\n{error}", index=args.index,
                  error=str(e))
        return 2
    stopping: list[bool] = []
    reactor.addSystemEventTrigger("before", "shutdown", stopping.append, True)

    def gone() -> None:  # our standard input closed
        if stopping:  # as every reader is, when we stop
            return
        log.warn("worker {index}: the first process is gone, stopping", index=args.index)
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass

    def link(guard: Any) -> None:
        StandardIO(WorkerGuardLink(guard, gone), stdin=0, stdout=GUARD_FD, reactor=reactor)

    service = build_service(args.config, model, reactor, https_socket=SOCKET_FD,
                            on_guard=link)
    service.privilegedStartService()
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
