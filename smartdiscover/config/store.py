"""
The current model, its generation number, and the reload that replaces both.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from smartdiscover.config.loader import ConfigError, ConfigProblem
from smartdiscover.config.model import Model

T = TypeVar("T")

RunInThread = Callable[..., "Deferred[Any]"]


class _Subscriber(Generic[T]):
    def __init__(self, prepare: Callable[[Model], T], commit: Callable[[T], None]):
        self.prepare = prepare
        self.commit = commit


class ConfigStore:
    """
    Holds the model every request reads, and reloads it as one unit.

    A reload reads and validates the file and lets every subscriber derive
    what it needs (TLS contexts, tables) off the reactor thread; only when
    all of that succeeded are the model and the derived objects swapped in,
    on the reactor thread.  Any failure leaves everything as it was.

    @ivar current: the model in force.
    @ivar generation: 1 for the model loaded at start, +1 per applied reload.
    @ivar last_error: why the last reload failed, or L{None} if it succeeded.
    """

    _log = Logger()

    def __init__(self, model: Model, load: Callable[[], Model],
                 run_in_thread: RunInThread) -> None:
        """
        @param model: the model loaded at start.
        @param load: reads and validates the file again; blocking.
        @param run_in_thread: runs a blocking callable away from the reactor
            thread and returns a L{Deferred} of its result.
        """
        self.current = model
        self.generation = 1
        self.last_error: str | None = None
        self.reloads = 0
        self.reload_failures = 0
        self._load = load
        self._run_in_thread = run_in_thread
        self._subscribers: list[_Subscriber[Any]] = []
        self._running = False
        self._again = False
        self._waiters: list[Deferred[bool]] = []

    def subscribe(self, prepare: Callable[[Model], T], commit: Callable[[T], None]) -> None:
        """
        Keep something derived from the model in step with it.

        C{prepare(model)} runs off the reactor thread and may raise to veto a
        reload; C{commit(result)} runs on the reactor thread when the model it
        was prepared from comes into force.  Both run once now, for the
        current model.
        """
        subscriber = _Subscriber(prepare, commit)
        subscriber.commit(subscriber.prepare(self.current))
        self._subscribers.append(subscriber)

    def reload(self) -> Deferred[bool]:
        """
        Re-read the file and swap it in if it is valid.

        Requests that arrive while a reload runs are folded into a single
        follow-up reload, which reads the file as it is then.

        @return: fires with C{True} when a new model came into force and
            C{False} when the file was refused; never fails.
        """
        waiter: Deferred[bool] = Deferred()
        self._waiters.append(waiter)
        if self._running:
            self._again = True
        else:
            self._start()
        return waiter

    def _start(self) -> None:
        self._running = True
        waiters, self._waiters = self._waiters, []
        d = maybeDeferred(self._run_in_thread, self._build)
        d.addCallbacks(self._apply, self._reject)
        d.addCallback(self._finished, waiters)

    def _build(self) -> tuple[Model, list[Any], int]:
        model = self._load()
        dropped = _dropped_users(self.current, model)
        return model, [s.prepare(model) for s in self._subscribers], dropped

    def _apply(self, built: tuple[Model, list[Any], int]) -> bool:
        model, derived, dropped = built
        if dropped > len(self.current.users) / 2:
            self._log.warn("reloading {path} drops {dropped} of {count} users",
                           path=str(model.source), dropped=dropped,
                           count=len(self.current.users))
        self.current = model
        self.generation += 1
        self.reloads += 1
        self.last_error = None
        for subscriber, value in zip(self._subscribers, derived):
            try:
                subscriber.commit(value)
            except Exception:
                self._log.failure("applying generation {generation} failed",
                                  generation=self.generation)
        self._log.info("reloaded {path}: generation {generation}",
                       path=str(model.source), generation=self.generation)
        return True

    def _reject(self, failure: Failure) -> bool:
        self.reload_failures += 1
        if failure.check(ConfigError):
            self.last_error = str(failure.value)
        else:
            self.last_error = f"{failure.type.__name__}: {failure.value}"
        self._log.error(
            "reload failed, generation {generation} stays in force:\n{error}",
            generation=self.generation, error=self.last_error)
        return False

    def _finished(self, result: bool, waiters: list[Deferred[bool]]) -> None:
        self._running = False
        if self._again:
            self._again = False
            self._start()
        for waiter in waiters:
            waiter.callback(result)


def _dropped_users(running: Model, new: Model) -> int:
    """
    How many users of the password file in force C{new} would drop.

    @raise ConfigError: when it would drop every one of them: an empty or
        emptied file is a half-written copy far more often than an intent
        (SECURITY.md section 7); start the service anew to serve no one.
    """
    if not running.users or running.auth.backend != "passwd":
        return 0
    if not new.users and new.auth.backend == "passwd":
        raise ConfigError([ConfigProblem(
            str(new.source), "auth", "passwd_file",
            f"{new.auth.passwd_file} holds no users; the running configuration has "
            f"{len(running.users)}: reload refused")])
    return len(running.users.keys() - new.users.keys())

