"""
A worker process: C{python -m smartdiscover.workers.child --config PATH
--index N}, started by the first process's L{WorkerPool}.

It builds the same HTTPS answering stack as the first process on the
listening socket it inherits (file descriptor 3), logs one JSON event per
line on standard output for the first process to relay, exchanges guard
events with it over standard input and file descriptor 4, reloads on SIGHUP
and stops when its standard input closes (the first process is gone).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, cast

if TYPE_CHECKING:  # for type checking only: a worker imports Twisted late
    from twisted.application.service import MultiService
    from twisted.internet.interfaces import IReactorFDSet, IReactorSocket

    from smartdiscover.answering import IAnsweringReactor

    class IWorkerReactor(IAnsweringReactor, IReactorSocket, IReactorFDSet):
        """
        What a worker needs of the reactor: the answering stack's, the
        inherited socket's and standard I/O's.  zope.interface has no
        intersection type, so this names one; no reactor declares it.
        """


def build_worker(path: Path, reactor: IWorkerReactor,
                 gone: Callable[[], None]) -> MultiService:
    """
    The service tree of a worker for the configuration at C{path}.

    @raise ConfigError: the configuration is invalid, or one of its
        certificates is unusable.
    """
    from twisted.application.service import MultiService
    from twisted.internet.stdio import StandardIO

    from smartdiscover.answering import build_answering
    from smartdiscover.config import load
    from smartdiscover.config.sighup import ReloadOnSignal
    from smartdiscover.certs.acme.served import load_served_certificates
    from smartdiscover.workers.guard_link import WorkerGuardLink
    from smartdiscover.workers.pool import GUARD_FD, SOCKET_FD
    from smartdiscover.workers.sockets import AdoptedPort

    model = load(path)
    certificates = load_served_certificates(model)
    top = MultiService()
    answering = build_answering(path, model, certificates, reactor, lambda: bool(top.running))
    ReloadOnSignal(answering.store.reload, reactor).setServiceParent(top)
    answering.hashing.setServiceParent(top)
    # Workers are POSIX only: mypy sees the win32 StandardIO, which lacks
    # the descriptors that twisted.internet.stdio's POSIX one takes.
    StandardIO(WorkerGuardLink(answering.guard, gone), stdin=0,  # type: ignore[call-arg]
               stdout=GUARD_FD, reactor=reactor)
    AdoptedPort(SOCKET_FD, answering.https, reactor).setServiceParent(top)
    answering.monitor.setServiceParent(top)
    return top


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartdiscover-worker")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--index", required=True, type=int)
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group: the first
    # process stops its workers itself (SIGTERM), in order.  (Twisted leaves
    # an ignored SIGINT ignored.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A reload signal before the service's own handler is in place (the
    # first process reloads its workers when ACME stored a certificate,
    # whenever that is) must not kill us, nor be lost: it is noted here
    # and delivered again once the handler is in place.
    early: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, frame: early.append(signum))

    from twisted.internet import reactor
    from twisted.internet.error import ReactorNotRunning
    from twisted.logger import Logger, globalLogBeginner

    from smartdiscover.config import ConfigError
    from smartdiscover.logs import json_stdout
    from smartdiscover.web.tls import TLSFilesError

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    globalLogBeginner.beginLoggingTo([json_stdout()], redirectStandardIO=False)
    log = Logger(namespace="smartdiscover.workers")
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

    try:
        # Typed as a few common interfaces only; the installed (POSIX)
        # reactor provides all of IWorkerReactor's.
        service = build_worker(args.config, cast("IWorkerReactor", reactor), gone)
    except (ConfigError, TLSFilesError) as e:
        log.error("worker {index}: invalid configuration\n{error}", index=args.index,
                  error=str(e))
        return 2
    service.privilegedStartService()
    service.startService()
    if early:
        os.kill(os.getpid(), signal.SIGHUP)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
